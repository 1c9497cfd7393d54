"""AttributionExplorer (Eckstein et al. 2021) without a browser: pairs from the engine, the
payload the view draws from, the traits, new targets and drawings, bad input."""

from __future__ import annotations

import pytest
import torch

from crosslens import AttributionExplorer, DrawPad, kernel_side as ks
from crosslens.kernel_side._images import gaussian_blur
from crosslens.payload import unpack

from _explorers import assert_bad_targets_refused


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def models():
    return ks.load_pretrained("digits-cnn"), ks.load_pretrained("digits-flow")


@pytest.fixture(scope="module")
def found(models, digits):
    return ks.latent_counterfactual(*models, digits[2][:4])


@pytest.fixture(scope="module")
def explorer(models, found):
    return AttributionExplorer(models[0], found)


def probability(model, x, k):
    with torch.no_grad():
        return model(x[None]).softmax(1)[0, k].item()


def test_it_opens_on_a_latent_counterfactual_result_without_glue(explorer, found):
    assert torch.equal(explorer.x, found.x) and torch.equal(explorer.x_cf, found.x_cf)
    assert torch.equal(explorer.targets, found.target) and torch.equal(explorer.predicted, found.source)
    assert explorer.methods == ("ig", "d_ig", "ingrad", "d_ingrad", "gc", "d_gc", "random", "residual")
    assert explorer.method == "d_ig" and explorer.direction == "dac" and explorer.form == "quac"


def test_what_it_shows_is_what_the_engine_computes(models, explorer, found):
    cnn = models[0]
    engine = ks.discriminative_attribution(cnn, found, keep_masks=True)
    dac = {name: value for name, value in unpack(explorer.payload)[0].items() if name.startswith("dac_")}
    levels = torch.from_numpy(dac["dac_levels"].copy()).long()
    for k in (0, 50, 100, 150, 200):  # 201 masks in one level map per method and pair
        assert torch.equal(levels > k, engine.masks[:, :, k])
    torch.testing.assert_close(torch.from_numpy(dac["dac_scores"].copy()), engine.scores.float())
    torch.testing.assert_close(torch.from_numpy(dac["dac_auc"].copy()), engine.auc.float())
    explorer.index, explorer.method = 2, "d_ingrad"
    m = engine.methods.index("d_ingrad")
    for threshold in (-1.0, -0.37, 0.0, 0.42, 1.0):
        explorer.threshold = threshold
        k = round((threshold + 1) * 100)
        assert explorer.score == pytest.approx(engine.scores[m, 2, k].item(), abs=1e-6)
        assert explorer.mask_size == pytest.approx(engine.mask_size[m, 2, k].item())
        # the hybrid on show scores what the engine says
        restored = probability(cnn, explorer.hybrid, found.source[2]) - probability(cnn, found.x_cf[2], found.source[2])
        assert restored == pytest.approx(explorer.score, abs=1e-5)
    assert explorer.auc["d_ingrad"] == pytest.approx(engine.auc[m, 2].item(), rel=1e-6)
    assert explorer.dac_score["d_ig"] == pytest.approx(engine.dac_score["d_ig"], rel=1e-6)


def test_threshold_minus_one_shows_the_real_image_and_the_direction_toggle_swaps_the_images(explorer, models):
    explorer.index, explorer.method, explorer.threshold = 0, "d_ig", -1.0
    assert explorer.mask.all() and torch.equal(explorer.hybrid, explorer.x[0])
    explorer.direction = "quac"
    assert explorer.form == "dapi" and torch.equal(explorer.hybrid, explorer.x_cf[0])
    target = int(explorer.targets[0])
    expected = probability(models[0], explorer.x_cf[0], target) - probability(models[0], explorer.x[0], target)
    assert explorer.score == pytest.approx(expected, abs=1e-6)
    explorer.direction = "dac"
    explorer.threshold = explorer.best_threshold
    assert explorer.mask_size < 1 and explorer.score > 0.5


def test_it_opens_on_a_boundary_projections_mirror_images(digits):
    invertible = ks.load_pretrained("digits-invertible")
    projection = ks.project_to_boundary(invertible, digits[2][:3])
    explorer = AttributionExplorer(invertible, projection)
    mirror = invertible.inverse(2 * projection.z_proj - projection.z).detach()
    torch.testing.assert_close(explorer.x_cf, mirror)
    assert torch.equal(explorer.targets, projection.target) and "gc" not in explorer.methods
    p_source, p_target = explorer.confidences
    assert (p_target > 0.8).all()


def test_traits_refuse_bad_values_and_keep_the_state(explorer):
    explorer.method, explorer.threshold, explorer.direction = "residual", 0.25, "dac"
    for name, value, message in (("method", "sg", r"method must be one of \('ig'"),
                                 ("threshold", 1.5, r"threshold must lie in \[-1, 1\]"),
                                 ("direction", "both", r"direction must be one of \('dac', 'quac'\)")):
        with pytest.raises(Exception, match=message):
            setattr(explorer, name, value)
    assert (explorer.method, explorer.threshold, explorer.direction) == ("residual", 0.25, "dac")
    explorer.threshold = 0.123
    assert explorer.threshold == 0.12  # the view's grid of 201 thresholds
    with pytest.raises(Exception, match="target is fixed by the given counterfactuals"):
        explorer.target = 3
    assert explorer.target is None


def test_made_pairs_follow_a_new_target(models, digits):
    cnn, flow = models
    explorer = AttributionExplorer(cnn, digits[2][:3], generator=flow, methods=["ig", "d_ig", "residual"])
    assert explorer.default_target == "the runner-up"
    before = explorer.x_cf.clone()
    new = next(k for k in range(10) if k not in (int(explorer.predicted[1]), int(explorer.targets[1])))
    explorer.index = 1
    explorer.target = new
    assert explorer.wait(60)
    assert int(explorer.targets[1]) == new and int(cnn(explorer.x_cf[1:2]).argmax(1)) == new
    assert torch.equal(explorer.x_cf[[0, 2]], before[[0, 2]])  # the other pairs are kept
    alone = ks.discriminative_attribution(cnn, explorer.x[1:2], explorer.x_cf[1:2], new, methods=["ig", "d_ig", "residual"])
    assert explorer.auc["d_ig"] == pytest.approx(alone.auc[1, 0].item(), rel=1e-5)
    assert_bad_targets_refused(explorer, 1)


def test_a_drawing_pad_gets_a_new_counterfactual_for_each_drawing(models, digits):
    cnn, flow = models
    pad = DrawPad((1, 8, 8), value=digits[2][0], debounce=0)
    explorer = AttributionExplorer(cnn, [digits[2][1], pad], generator=flow, methods=["d_ig", "random"])
    first = explorer.x_cf[1].clone()
    pad.value = digits[2][5]
    assert explorer.wait(60)
    assert torch.equal(explorer.x[1], digits[2][5]) and not torch.equal(explorer.x_cf[1], first)
    assert int(cnn(explorer.x_cf[1:2]).argmax(1)) == int(explorer.targets[1]) != int(explorer.predicted[1])
    explorer.close()
    with pytest.raises(TypeError, match="via, generator and reference make counterfactuals"):
        AttributionExplorer(cnn, pad, digits[2][:1], generator=flow)


def test_bad_input_is_refused_clearly(models, found):
    cnn = models[0]
    with pytest.raises(ValueError, match=r"x_cf\[0\] is classified as the same class as x\[0\]"):
        AttributionExplorer(cnn, found.x, found.x)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) 'threshold'; accepted: classifier, x"):
        AttributionExplorer(cnn, found, threshold=0.5)
    with pytest.raises(ValueError, match=r"methods must be one of"):
        AttributionExplorer(cnn, found, methods=["d_ig", "lime"])
    with pytest.raises(ValueError, match=r"layer must be one of \('net.0', 'net.3'\)"):
        AttributionExplorer(cnn, found, layer="features.9")
    with pytest.raises(ValueError, match="x and x_cf must hold as many inputs"):
        AttributionExplorer(cnn, found.x, found.x_cf[:2])
    with pytest.raises(TypeError, match="x_cf is missing and nothing can make it"):
        AttributionExplorer(cnn, found.x)


def test_a_blurred_mask_makes_a_soft_hybrid():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(4, 2))
    x, x_cf = torch.rand(2, 3, 40, 40), torch.rand(2, 3, 40, 40)
    with torch.no_grad():
        target = 1 - model(x).argmax(1)
    explorer = AttributionExplorer(model, x, x_cf, target, methods=["d_ingrad"])
    explorer.method, explorer.threshold = "d_ingrad", 0.3
    soft = gaussian_blur(explorer.mask.float()[None], 2.0 * 40 / 128)[0]
    torch.testing.assert_close(explorer.hybrid, soft * x[0] + (1 - soft) * x_cf[0])
    assert ((soft > 0) & (soft < 1)).any()


def test_it_saves_a_figure_and_a_page(explorer, tmp_path):
    assert explorer.save_png(tmp_path / "dac.png").read_bytes()[:4] == b"\x89PNG"
    page = explorer.save_html(tmp_path / "dac.html").read_text()
    assert "Attribution explorer" in page and "https://" not in page
