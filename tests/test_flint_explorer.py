"""AttributeBrowser (Parekh et al. 2021) without a browser: what it shows is what the FLINT
engine computes, its traits, 2-feature models, drawings, bad input."""

from __future__ import annotations

import pytest
import torch

from crosslens import AttributeBrowser, DrawPad, kernel_side as ks
from crosslens.payload import unpack

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def flint():
    return ks.load_pretrained("digits-flint")


@pytest.fixture(scope="module")
def browser(flint, digits):
    return AttributeBrowser(flint, digits[2][:12], class_names=ks.DIGITS_CLASS_NAMES, reference=digits[2])


def test_what_it_shows_is_what_the_engine_computes(flint, digits, browser):
    x_test = digits[2]
    local = ks.flint_interpretation(flint, x_test[:12])
    browser.index, browser.tau = 4, 2.0
    assert torch.allclose(browser.relevance, local.relevance[4])
    expected = [j for j in local.relevance[4].argsort(descending=True).tolist() if local.relevance[4, j] > 0.5]
    assert browser.relevant_attributes == expected and torch.equal(browser.predicted, local.predicted)
    assert torch.allclose(browser.global_relevance, ks.global_relevance(flint, x_test))
    top = ks.maximum_activating_samples(flint, x_test, k=3)
    browser.attribute = 5
    assert torch.equal(browser.top_samples, x_test[top.indices[5]])
    browser.class_filter = 3
    wanted = top.per_class[3, 5]
    assert torch.equal(browser.top_samples, x_test[wanted[wanted >= 0]])
    assert browser.gallery_rows == (local.predicted == 3).nonzero().flatten().tolist()
    enhanced = ks.activation_maximisation(flint, x_test.mean(0, keepdim=True))
    torch.testing.assert_close(browser.picture, enhanced[5])
    arrays, meta = unpack(browser.payload)
    assert arrays["table"].shape == (10, 12) and arrays["pictures"].shape == (12, 1, 8, 8)
    assert meta["target_fixed"] and meta["num_attributes"] == 12
    browser.class_filter = None


def test_traits_refuse_bad_values_and_keep_the_state(browser):
    browser.tau, browser.attribute, browser.class_filter = 3.0, 2, None
    for name, value, message in (("tau", 1.0, "tau must be a finite number"), ("attribute", 12, r"attribute must be"),
                                 ("class_filter", 10, "class_filter must be"), ("target", 3, "explains the interpreter")):
        with pytest.raises(Exception, match=message):
            setattr(browser, name, value)
    assert (browser.tau, browser.attribute, browser.class_filter, browser.target) == (3.0, 2, None, None)


def test_a_post_hoc_interpreter_is_browsed_like_flint(digits):
    x_train, y_train, x_test, _ = digits
    model = ks.FLINT.post_hoc(ks.load_pretrained("digits-cnn"), layers=["net.4"], attributes=8)
    ks.fit_flint(model, x_train, y_train, epochs=3, batch_size=64, progress=False)
    browser = AttributeBrowser(model, x_test[:6], reference=x_test[:200])
    assert unpack(browser.payload)[1]["post_hoc"] and browser.global_relevance.shape == (10, 8)


def test_attributes_of_a_2_feature_model_are_heat_maps_over_the_plane():
    moons = ks.load_moons_split()
    browser = AttributeBrowser(ks.load_pretrained("moons-flint"), moons[2][:20], reference=moons[2])
    arrays, meta = unpack(browser.payload)
    assert meta["kind"] == "planar" and arrays["pictures"].shape[1:] == (80, 80) and len(meta["bounds"]) == 4
    browser.attribute = 1
    assert browser.picture.shape == (80, 80) and browser.picture.std() > 0
    assert browser.to_figure() is not None


def test_a_drawing_pad_is_interpreted_anew(flint, digits):
    pad = DrawPad((1, 8, 8), value=digits[2][0], debounce=0)
    browser = AttributeBrowser(flint, [digits[2][1], pad], reference=digits[2][:100])
    pad.value = digits[2][7]
    assert browser.wait(30)
    browser.index = 1
    assert torch.allclose(browser.relevance, ks.flint_interpretation(flint, digits[2][7:8]).relevance[0])
    browser.close()


def test_bad_input_is_refused_clearly(flint, digits):
    with pytest.raises(TypeError, match="flint_model must be a FLINT model"):
        AttributeBrowser(ks.load_pretrained("digits-cnn"), digits[2][:3])
    with pytest.raises(TypeError, match="pass x .* or reference"):
        AttributeBrowser(flint)
    with pytest.raises(ValueError, match="tau must be"):
        AttributeBrowser(flint, digits[2][:3], tau=0.5)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) 'k'"):
        AttributeBrowser(flint, digits[2][:3], k=3)


def test_it_saves_a_figure_and_a_page(browser, tmp_path):
    assert browser.save_png(tmp_path / "flint.png").read_bytes()[:4] == b"\x89PNG"
    assert "Attribute browser" in browser.save_html(tmp_path / "flint.html").read_text()
