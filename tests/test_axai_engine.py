"""AXAI engine (Rahnama and Tseng 2021): the attack, the tail filter, segments and their ranking,
AOPC and the comparison with Captum's explainers, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crosslens import kernel_side as ks
from crosslens.kernel_side.methods.axai import channel_levels, rank_segments, tail_sweep
from crosslens.kernel_side.metrics import aopc, spearman

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def cnn():
    return ks.load_pretrained("digits-cnn")


@pytest.fixture(scope="module")
def x(digits):
    return digits[2][:16]


@pytest.fixture(scope="module")
def explained(cnn, x):
    return ks.adversarial_explanation(cnn, x)


def test_the_attack_is_l2_pgd_on_the_prediction_recorded_step_by_step(cnn, x, explained):
    with torch.no_grad():
        assert torch.equal(explained.source, cnn(x).argmax(1))
    assert explained.frames.shape == (16, 21, 1, 8, 8) and explained.probs.shape == (16, 21, 10)
    assert torch.equal(explained.frames[:, 0], x)
    steps = (explained.frames[:, 1:] - explained.frames[:, :-1]).flatten(2).norm(dim=2)
    assert torch.allclose(steps, torch.full_like(steps, 0.001), atol=1e-6)  # each step: alpha along the unit gradient
    norms = explained.perturbation.flatten(1).norm(dim=1)
    assert (norms <= 0.02 + 1e-6).all()  # 20 steps of 0.001 never reach eps = 0.2 [derived]
    tight = ks.adversarial_explanation(cnn, x, eps=0.005)
    assert torch.allclose(tight.perturbation.flatten(1).norm(dim=1), torch.full((16,), 0.005), atol=1e-6)
    linf = ks.adversarial_explanation(cnn, x, eps=0.003, norm="linf")
    assert linf.perturbation.abs().max() <= 0.003 + 1e-7 and linf.perturbation.abs().max() > 0.0029
    again = ks.adversarial_explanation(cnn, x)
    assert torch.equal(again.perturbation, explained.perturbation) and torch.equal(again.ranking, explained.ranking)


def test_with_the_defaults_d_is_close_to_a_gradient_map(cnn, x, explained):
    tracked = x.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(cnn(tracked), explained.source, reduction="sum")
    (gradient,) = torch.autograd.grad(loss, tracked)
    assert spearman(explained.perturbation.abs().flatten(1), gradient.abs().flatten(1)).mean() > 0.95


def test_the_tail_filter_keeps_each_channels_tails(explained):
    d = explained.perturbation.numpy().reshape(16, 1, 64)
    low, high = np.quantile(d, 0.15, axis=-1, keepdims=True), np.quantile(d, 0.85, axis=-1, keepdims=True)
    kept = (d <= low) | (d >= high)
    np.testing.assert_array_equal(explained.attacked.numpy().reshape(16, 64), kept.any(1))
    np.testing.assert_allclose(explained.filtered.numpy().reshape(16, 64), (d * kept).sum(1), atol=1e-7)
    # every tail in one level map: kept at tail index t when its level <= t
    tails = torch.arange(1, 51, dtype=torch.float64) / 100
    levels = channel_levels(explained.perturbation.reshape(16, 1, 8, 8), tails)
    assert torch.equal((levels <= 14).any(1), explained.attacked)
    swept = tail_sweep(explained, tails)
    assert torch.equal(swept["ranking"][:, 14], explained.ranking) and torch.allclose(swept["scores"][:, 14], explained.scores)


def test_segments_score_their_share_of_attacked_pixels_and_ties_break_by_mass_then_label():
    values = torch.tensor([[[1., 0, 1, 1], [0, 1, 0, 0]]])  # (1, 2, 4)
    segments = torch.tensor([[[0, 0, 1, 1], [2, 2, 3, 3]]])
    mass = torch.tensor([[[1., 1, 1, 1], [5, 5, 1, 1]]])
    scores, sums, ranking, counts = rank_segments(values, segments, mass)
    assert scores.tolist() == [[0.5, 1.0, 0.5, 0.0]] and counts.tolist() == [4]
    assert ranking.tolist() == [[1, 2, 0, 3]]  # 1 (share 1), then 2 before 0 (more mass), then 3
    assert sums.tolist() == [[2.0, 2.0, 10.0, 2.0]]
    scores, _, ranking, _ = rank_segments(values, segments, by="sum")
    assert scores.tolist() == [[1.0, 2.0, 1.0, 0.0]]


def test_the_top_k_are_the_best_segments_pixels(explained):
    for n in range(4):
        best = explained.ranking[n, :5]
        assert torch.equal(explained.top_k[n], torch.isin(explained.segments[n], best))
    assert explained.num_segments.tolist() == [16] * 16  # 2 x 2 blocks on 8 x 8
    assert (explained.top_k.flatten(1).sum(1) == 20).all()


def test_segmentation_fits_the_image():
    generator = torch.Generator().manual_seed(0)
    # scenes of 16 flat patches of colour, 8 x 8 pixels each
    rgb = torch.nn.functional.interpolate(torch.rand(2, 3, 4, 4, generator=generator), size=(32, 32))
    quick = ks.segment_images(rgb)
    assert quick.shape == (2, 32, 32) and quick.dtype == torch.int64
    for labels in quick:  # labels 0..S-1, every one used; no segment crosses a patch border
        assert torch.equal(labels.unique(), torch.arange(int(labels.max()) + 1))
        patches = torch.arange(16).reshape(4, 4).repeat_interleave(8, 0).repeat_interleave(8, 1)
        assert all(len(patches[labels == s].unique()) == 1 for s in labels.unique())
    assert int(quick[0].max()) + 1 >= 12
    grey = ks.segment_images(rgb[:1, :1])
    assert grey.shape == (1, 32, 32) and int(grey.max()) + 1 >= 12
    assert int(ks.segment_images(rgb, "pixels").max()) + 1 == 1024
    assert int(ks.segment_images(torch.rand(1, 1, 8, 8)).max()) + 1 == 16


def test_a_users_segment_map_is_used_for_every_input(cnn, x):
    halves = torch.zeros(8, 8, dtype=torch.long)
    halves[:, 4:] = 7  # labels need not be contiguous
    explained = ks.adversarial_explanation(cnn, x[:3], segments=halves, k=1)
    assert explained.num_segments.tolist() == [2, 2, 2] and torch.equal(explained.segments[0], (halves > 0).long())


def test_aopc_prefers_a_ranking_by_true_importance(cnn, x, explained):
    classes = explained.source
    deletion, insertion = aopc(cnn, x, explained.segments, explained.ranking, classes, removal="blur")
    reverse = torch.stack([r.flip(0) for r in explained.ranking])  # every segment present: 16 of 16
    worst_deletion, worst_insertion = aopc(cnn, x, explained.segments, reverse, classes, removal="blur")
    assert deletion.mean() > worst_deletion.mean() and insertion.mean() > worst_insertion.mean()
    # step 0 removes nothing and step S removes everything: the curve's ends are known
    every, _ = aopc(cnn, x, explained.segments, explained.ranking, classes, removal="zero")
    assert every.shape == (16,) and torch.isfinite(every).all()


def test_the_comparison_scores_every_method_on_the_same_segments_and_leaves_the_random_state(cnn, x):
    torch.manual_seed(5)
    state = torch.random.get_rng_state()
    first = ks.compare_faithfulness(cnn, x[:6], n_samples=100)
    assert torch.equal(torch.random.get_rng_state(), state)
    again = ks.compare_faithfulness(cnn, x[:6], n_samples=100)
    assert first.methods == ("axai", "saliency", "integrated_gradients", "lime", "kernel_shap")
    for method in first.methods:  # deterministic given the seed, LIME and KernelSHAP included
        for removal in ("zero", "blur"):
            assert torch.equal(first.deletion[method][removal], again.deletion[method][removal])
    assert "KernelSHAP" in first.table() and first.seconds["lime"] > first.seconds["axai"]


def test_consistency_figures(cnn, digits):
    x, y = digits[2][:40], digits[3][:40]
    figures = ks.explanation_consistency(cnn, x, y)
    assert figures["within"] > figures["between"]
    assert 0.5 < figures["jaccard"] <= 1 and figures["gradient_spearman"] > 0.95


def test_bad_input_is_refused_clearly(cnn, x):
    with pytest.raises(ValueError, match="k must be at most the number of segments: input 0 has 16"):
        ks.adversarial_explanation(cnn, x, k=17)
    with pytest.raises(ValueError, match=r"segments must have shape \(8, 8\) or \(16, 8, 8\)"):
        ks.adversarial_explanation(cnn, x, segments=torch.zeros(4, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="segments must hold integer labels"):
        ks.adversarial_explanation(cnn, x, segments=torch.zeros(8, 8))
    with pytest.raises(ValueError, match="eps must be a positive finite number, got 0.0"):
        ks.adversarial_explanation(cnn, x, eps=0)
    with pytest.raises(ValueError, match=r"norm must be one of \('l2', 'linf'\)"):
        ks.adversarial_explanation(cnn, x, norm="l1")
    with pytest.raises(ValueError, match=r"segments must be one of \('auto', 'quickshift'"):
        ks.adversarial_explanation(cnn, x, segments="watershed")
    with pytest.raises(ValueError, match="needs colour"):
        ks.segment_images(x, "quickshift")
    with pytest.raises(ValueError, match=r"removal must be one of \('zero', 'blur'\)"):
        ks.aopc(cnn, x, torch.zeros(16, 8, 8, dtype=torch.long), torch.zeros(16, 1, dtype=torch.long),
                torch.zeros(16, dtype=torch.long), removal="mean")


@pytest.fixture(scope="module")
def shapes():
    return ks.load_shapes_split()


def test_on_the_shape_scenes_the_top_segments_fall_on_the_red_object(shapes):
    classifier = ks.load_pretrained("shapes-cnn")
    explained = ks.adversarial_explanation(classifier, shapes.x_test[:100])
    assert explained.segments.shape == (100, 32, 32) and (explained.num_segments >= 5).all()  # quickshift
    axai, random = ks.key_share(explained, shapes.key_masks_test[:100])
    assert axai > random + 0.2, (axai, random)  # measured: 0.50 against 0.11
