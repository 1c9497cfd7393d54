"""DAC engine (Eckstein et al. 2021): pairs, attributions, masks, curves, ranking, bad input."""

from __future__ import annotations

import threading
import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from crosslens import kernel_side as ks
from crosslens.kernel_side.methods.dac import dac_thresholds
from crosslens.kernel_side.metrics import dac_curves


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def cnn():
    return ks.load_pretrained("digits-cnn")


@pytest.fixture(scope="module")
def flow():
    return ks.load_pretrained("digits-flow")


@pytest.fixture(scope="module")
def pairs(cnn, flow, digits):
    return ks.counterfactual_pairs(cnn, digits[2][:24], generator=flow)


@pytest.fixture(scope="module")
def result(cnn, pairs):
    return ks.discriminative_attribution(cnn, pairs, keep_masks=True)


def probability(model, x, classes):
    with torch.no_grad():
        return model(x).softmax(1).gather(1, classes[:, None])[:, 0].double()


# --- pairs ----------------------------------------------------------------------------------

def test_latent_pairs_are_filtered_at_the_authors_confidence(pairs, cnn):
    assert pairs.via == "latent" and pairs.candidates == 24 and 20 <= len(pairs) <= 24
    assert (pairs.p_source > 0.8).all() and (pairs.p_target > 0.8).all()
    assert (pairs.source != pairs.target).all()
    assert torch.equal(cnn(pairs.x).argmax(1), pairs.source)
    assert torch.equal(cnn(pairs.x_cf).argmax(1), pairs.target)


def test_boundary_mirrors_and_nearest_images_make_pairs(digits):
    invertible = ks.load_pretrained("digits-invertible")
    x_train, y_train, x_test, _ = digits
    mirrored = ks.counterfactual_pairs(invertible, x_test[:30])
    assert mirrored.via == "boundary" and len(mirrored) >= 25
    projection = ks.project_to_boundary(invertible, x_test[:30])
    assert torch.equal(mirrored.target, projection.target[mirrored.index])
    nearest = ks.counterfactual_pairs(invertible, x_test[:30], reference=(x_train, y_train), min_confidence=0)
    assert nearest.via == "nearest" and len(nearest) == 30
    # each counterfactual is a training image of the target class, the closest one
    rows = torch.cdist(nearest.x_cf.flatten(1), x_train.flatten(1)).argmin(1)
    assert torch.equal(y_train[rows], nearest.target)
    runner_up = invertible(x_test[:30]).topk(2, dim=1).indices[:, 1]
    assert torch.equal(nearest.target, runner_up)


def test_engine_results_are_pairs_without_glue(cnn, flow, digits):
    found = ks.latent_counterfactual(cnn, flow, digits[2][:5])
    result = ks.discriminative_attribution(cnn, found, methods=["d_ig"])
    assert torch.equal(result.x, found.x) and torch.equal(result.x_cf, found.x_cf)
    assert torch.equal(result.target, found.target)
    invertible = ks.load_pretrained("digits-invertible")
    path = ks.boundary_path(invertible, digits[2][:3], steps=5)
    from_path = ks.discriminative_attribution(invertible, path, methods=["d_ig"])
    assert torch.allclose(from_path.x_cf, path.frames[:, -1])
    from_projection = ks.discriminative_attribution(invertible, path.projection, methods=["d_ig"])
    assert torch.allclose(from_projection.x_cf, path.frames[:, -1], atol=1e-4)


# --- attributions ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["digits-cnn", "digits-mlp", "digits-invertible"])
@pytest.mark.parametrize("form", ["quac", "dapi"])
def test_d_ig_is_complete(name, form, pairs):
    model = ks.load_pretrained(name)
    pairs = ks.counterfactual_pairs(model, pairs.x, pairs.x_cf, min_confidence=0)
    raw = ks.dac_attributions(model, pairs.x, pairs.x_cf, pairs.target, methods=["d_ig"], form=form,
                              normalize=False)["d_ig"]
    explained, baseline, cls = (pairs.x, pairs.x_cf, pairs.source) if form == "quac" else \
        (pairs.x_cf, pairs.x, pairs.target)
    with torch.no_grad():
        gap = (model(explained) - model(baseline)).gather(1, cls[:, None])[:, 0]
    relative = (raw.flatten(1).sum(1) - gap).abs() / gap.abs()
    assert relative.max() < 1e-3


def test_maps_are_normalised_and_d_ingrad_is_what_the_paper_defines(cnn, pairs, result):
    assert result.attributions.abs().flatten(2).amax(-1).allclose(torch.ones(1))
    d_ingrad = result.attributions[result.methods.index("d_ingrad")]
    x = pairs.x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(cnn(x).gather(1, pairs.source[:, None]).sum(), x)
    expected = (grad * (pairs.x - pairs.x_cf)).abs()
    expected = expected / expected.flatten(1).amax(1)[:, None, None, None]
    assert torch.allclose(d_ingrad, expected, atol=1e-5)
    residual = result.attributions[result.methods.index("residual")]
    assert (residual >= 0).all() and (residual.flatten(1).amin(1) == 0).all()


def test_random_baseline_is_seeded_and_leaves_the_global_stream_alone(cnn, pairs):
    torch.manual_seed(7)
    before = torch.random.get_rng_state()
    first = ks.dac_attributions(cnn, pairs.x, pairs.x_cf, methods=["random"], seed=3)["random"]
    assert torch.equal(torch.random.get_rng_state(), before)
    again = ks.dac_attributions(cnn, pairs.x, pairs.x_cf, methods=["random"], seed=3)["random"]
    other = ks.dac_attributions(cnn, pairs.x, pairs.x_cf, methods=["random"], seed=4)["random"]
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_deeplift_is_refused_where_its_rules_fail_and_complete_where_they_hold(cnn, pairs):
    with pytest.raises(ValueError, match=r"DeepLift.*SiLU.*drop 'dl' and 'd_dl'"):
        ks.discriminative_attribution(cnn, pairs, methods=["d_dl"])
    assert "dl" not in ks.discriminative_attribution(cnn, pairs.subset([0])).methods
    relu = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    x, x_cf = pairs.x[:6], pairs.x_cf[:6]
    target = relu(x).topk(2, dim=1).indices[:, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        raw = ks.dac_attributions(relu, x, x_cf, target, methods=["d_dl"], normalize=False, form="dapi")["d_dl"]
    with torch.no_grad():
        gap = (relu(x_cf) - relu(x)).gather(1, target[:, None])[:, 0]
    assert torch.allclose(raw.flatten(1).sum(1), gap, rtol=1e-4, atol=1e-5)

    class Functional(nn.Module):  # a nonlinearity DeepLift cannot see: completeness fails, it warns
        def __init__(self):
            super().__init__()
            self.first, self.second = nn.Linear(64, 32), nn.Linear(32, 10)

        def forward(self, x):
            return self.second(torch.sin(3 * self.first(x.flatten(1))))

    functional = Functional()
    target = functional(x).topk(2, dim=1).indices[:, 1]
    with pytest.warns(RuntimeWarning, match="miss completeness"):
        ks.dac_attributions(functional, x, x_cf, target, methods=["d_dl"])


def test_grad_cam_maps_live_on_the_named_conv_layer(cnn, pairs):
    first = ks.dac_attributions(cnn, pairs.x, pairs.x_cf, methods=["gc"], layer="net.0")["gc"]
    last = ks.dac_attributions(cnn, pairs.x, pairs.x_cf, methods=["gc"])["gc"]
    named = ks.dac_attributions(cnn, pairs.x, pairs.x_cf, methods=["gc"], layer="net.3")["gc"]
    assert torch.equal(last, named) and not torch.equal(first, last)
    d_gc = ks.dac_attributions(cnn, pairs.x, pairs.x_cf, methods=["d_gc"])["d_gc"]
    assert (d_gc >= 0).all() and d_gc.shape == pairs.x.shape


# --- masks, scores, curves ------------------------------------------------------------------

def test_threshold_minus_one_gives_the_real_image_and_its_closed_form_score(cnn, pairs, result):
    assert result.thresholds[0] == -1 and len(result.thresholds) == 201
    assert (result.masks[:, :, 0] == 1).all() and (result.mask_size[..., 0] == 1).all()
    expected = probability(cnn, pairs.x, pairs.source) - probability(cnn, pairs.x_cf, pairs.source)
    assert torch.allclose(result.scores[..., 0], expected.expand_as(result.scores[..., 0]), atol=1e-6)
    # curve end points: (0, 0) and (1, score of the real image)
    assert (result.curves[..., 0] == 0).all()
    assert torch.allclose(result.curves[..., -1], expected.expand_as(result.curves[..., -1]), atol=1e-6)
    quac = ks.discriminative_attribution(cnn, pairs, methods=["d_ig"], direction="quac")
    expected = probability(cnn, pairs.x_cf, pairs.target) - probability(cnn, pairs.x, pairs.target)
    assert quac.form == "dapi" and torch.allclose(quac.scores[0, :, 0], expected, atol=1e-6)


def test_a_threshold_above_the_maximum_scores_zero(cnn, pairs):
    above = ks.discriminative_attribution(cnn, pairs, methods=["d_ig", "ingrad"], thresholds=[0.5, 1.0001, 2.0])
    assert (above.mask_size[..., 1:] == 0).all()
    assert above.scores[..., 1:].abs().max() < 1e-6


def test_all_thresholds_in_one_batch_equal_a_loop_over_thresholds(cnn, pairs, result):
    m = result.methods.index("d_ig")
    attribution = result.attributions[m, 0]
    for k in (0, 37, 100, 150, 200):
        mask = (attribution >= result.thresholds[k].float()).any(0, keepdim=True).float()
        hybrid = mask * pairs.x[0] + (1 - mask) * pairs.x_cf[0]
        score = probability(cnn, hybrid[None], pairs.source[:1]) - probability(cnn, pairs.x_cf[:1], pairs.source[:1])
        assert result.scores[m, 0, k].item() == pytest.approx(score.item(), abs=1e-6)
        assert result.mask_size[m, 0, k].item() == pytest.approx(mask.mean().item())


def test_curves_interpolate_the_points_and_the_best_mask_is_the_closest_to_the_corner(result):
    # masks shrink as the threshold grows; the curve passes through every (size, score) point
    assert (result.mask_size.diff(dim=-1) <= 0).all()
    m, n, k = 1, 2, 120
    size, score = result.mask_size[m, n, k].item(), result.scores[m, n, k].item()
    point = torch.tensor([size], dtype=torch.float64)
    on_point = dac_curves(result.mask_size[m, n], result.scores[m, n], point)
    assert on_point.item() == pytest.approx(score, abs=1e-9)
    distance = result.mask_size ** 2 + (1 - result.scores) ** 2
    assert torch.equal(result.best, distance.argmin(-1))
    assert torch.allclose(result.auc, torch.trapezoid(result.curves, result.grid, dim=-1))


def test_closing_and_blur_scale_with_the_image():
    small = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))
    large = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 2))
    generator = torch.Generator().manual_seed(0)
    for model, size, closing, blur in ((small, 8, 0, 0.0), (large, 128, 10, 2.0)):
        x = torch.rand(2, 3, size, size, generator=generator)
        x_cf = torch.rand(2, 3, size, size, generator=generator)
        with torch.no_grad():
            target = 1 - model(x).argmax(1)
        result = ks.discriminative_attribution(model, x, x_cf, target, methods=["d_ingrad"], keep_masks=True)
        assert (result.closing, result.blur) == (closing, pytest.approx(blur))
        assert result.masks.shape == (1, 2, 201, size, size) and result.masks.dtype == torch.bool
    # the hybrids use the masks blurred; their sizes are counted before blurring
    sharp = ks.discriminative_attribution(model, x, x_cf, target, methods=["d_ingrad"], closing=10, blur=None)
    assert torch.equal(sharp.mask_size, result.mask_size) and not torch.allclose(sharp.scores, result.scores)


@pytest.mark.parametrize("shape", [(10,), (1, 8, 8), (3, 12, 20)])
def test_any_classifier_and_image_size(shape):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(int(torch.tensor(shape).prod()), 16), nn.Tanh(), nn.Linear(16, 3))
    x, x_cf = torch.rand(4, *shape), torch.rand(4, *shape)
    with torch.no_grad():
        target = (model(x).argmax(1) + 1) % 3
    result = ks.discriminative_attribution(model, x, x_cf, target)
    assert result.methods == ("ig", "d_ig", "ingrad", "d_ingrad", "dl", "d_dl", "random", "residual")
    assert result.attributions.shape == (8, 4, *shape) and torch.isfinite(result.auc).all()


# --- ranking over many pairs ----------------------------------------------------------------

@pytest.fixture(scope="module")
def ranking(cnn, flow, digits):
    return ks.dac_ranking(cnn, digits[2][:230], generator=flow, n_bootstrap=1000)


def test_counterfactual_attributions_beat_the_standard_ones_on_200_digit_pairs(ranking):
    assert ranking.pairs >= 200 and ranking.candidates == 230 and not ranking.interrupted
    scores = ranking.dac_score
    for d, s in (("d_ig", "ig"), ("d_ingrad", "ingrad")):
        comparison = ranking.comparison(d, s)
        assert scores[d] > scores[s] and comparison.low > 0, comparison
    for d in ("d_ig", "d_ingrad", "d_gc"):
        assert ranking.comparison(d, "random").low > 0
    assert "residual" in scores and "D-IG" in ranking.table() and "residual" in ranking.table()
    assert ranking.mean_curves.shape == (len(ranking.methods), 101)
    assert torch.allclose(torch.trapezoid(ranking.mean_curves, ranking.grid, dim=-1), ranking.auc.mean(1))


def test_a_dataloader_of_pairs_or_of_inputs_streams_to_the_same_ranking(cnn, flow, digits):
    x = digits[2][:40]
    pairs = ks.counterfactual_pairs(cnn, x, generator=flow, min_confidence=0)
    options = dict(methods=["ig", "d_ig"], n_bootstrap=100)  # (random maps are drawn per chunk)
    whole = ks.dac_ranking(cnn, pairs.x, pairs.x_cf, **options)
    loader = DataLoader(TensorDataset(pairs.x, pairs.x_cf), batch_size=7)
    streamed = ks.dac_ranking(cnn, loader, **options)
    assert torch.allclose(whole.auc, streamed.auc) and streamed.candidates == len(pairs)
    inputs = DataLoader(TensorDataset(x, digits[3][:40]), batch_size=16)
    made = ks.dac_ranking(cnn, inputs, generator=flow, **options)
    assert made.candidates == 40 and made.pairs == whole.pairs


def test_a_stopped_ranking_keeps_the_pairs_done(cnn, pairs):
    stop = threading.Event()

    class StopAfterTwo:
        def __iter__(self):
            for start in range(0, len(pairs), 5):
                if start == 10:
                    stop.set()
                yield pairs.x[start:start + 5], pairs.x_cf[start:start + 5]

    ranking = ks.dac_ranking(cnn, StopAfterTwo(), methods=["d_ig", "random"], stop=stop, n_bootstrap=50)
    assert ranking.interrupted and ranking.pairs == 10 and "stopped early" in ranking.table()


# --- bad input ------------------------------------------------------------------------------

def test_bad_input_is_refused_clearly(cnn, pairs):
    with pytest.raises(ValueError, match="x and x_cf must hold as many inputs of one shape"):
        ks.discriminative_attribution(cnn, pairs.x, pairs.x_cf[:3])
    with pytest.raises(ValueError, match=r"x_cf must have shape"):
        ks.discriminative_attribution(cnn, pairs.x, torch.zeros(len(pairs), 1, 4, 4))
    with pytest.raises(ValueError, match=r"layer must be one of \('net\.0', 'net\.3'\), got 'conv9'"):
        ks.discriminative_attribution(cnn, pairs, methods=["gc"], layer="conv9")
    with pytest.raises(ValueError, match=r"methods must be one of \('ig', 'd_ig',.*'residual'\), got 'sg'"):
        ks.discriminative_attribution(cnn, pairs, methods=["d_ig", "sg"])
    with pytest.raises(ValueError, match="Grad-CAM needs a convolution layer"):
        ks.discriminative_attribution(ks.load_pretrained("digits-mlp"), pairs, methods=["d_gc"])
    with pytest.raises(ValueError, match=r"direction must be one of \('dac', 'quac'\)"):
        ks.discriminative_attribution(cnn, pairs, direction="both")
    with pytest.raises(ValueError, match="x_cf\\[0\\] is classified as the same class as x\\[0\\]"):
        ks.discriminative_attribution(cnn, pairs.x, pairs.x)
    with pytest.raises(TypeError, match="leave x_cf out"):
        ks.discriminative_attribution(cnn, pairs, pairs.x_cf)
    with pytest.raises(TypeError, match="x_cf is missing and nothing can make it"):
        ks.counterfactual_pairs(cnn, pairs.x)
    with pytest.raises(ValueError, match=r"via must be one of \('latent', 'boundary', 'nearest'\)"):
        ks.counterfactual_pairs(cnn, pairs.x, via="cyclegan")
    with pytest.raises(ValueError, match="thresholds must be a non-empty, finite, strictly increasing"):
        ks.discriminative_attribution(cnn, pairs, thresholds=[0.5, 0.2])
    assert dac_thresholds()[-1] == 1


def test_colour_scenes_with_an_invertible_models_mirror_images():
    shapes = ks.load_shapes_split()
    invertible = ks.load_pretrained("shapes-invertible")
    pairs = ks.counterfactual_pairs(invertible, shapes.x_test[:24])
    assert len(pairs) >= 16
    result = ks.discriminative_attribution(invertible, pairs, methods=["ig", "d_ig", "random"])
    assert (result.closing, result.blur) == (2, pytest.approx(0.5))  # the authors' settings scaled to 32 px
    scores = result.dac_score  # measured: D-IG 0.61, IG 0.51, random 0.51
    assert scores["d_ig"] > scores["ig"] + 0.05 and scores["d_ig"] > scores["random"] + 0.05


def test_maps_that_no_direction_changes_can_be_given(cnn, pairs, result):
    unchanged = ("ig", "ingrad", "gc", "random", "residual")
    given = {m: result.attributions[i] for i, m in enumerate(result.methods) if m in unchanged}
    computed = ks.discriminative_attribution(cnn, pairs, direction="quac")
    reused = ks.discriminative_attribution(cnn, pairs, direction="quac", attributions=given)
    assert torch.equal(computed.attributions, reused.attributions) and torch.equal(computed.scores, reused.scores)
