"""AdversarialExplorer (Rahnama and Tseng 2021) without a browser: the payload the view draws
from, the front-end traits, the attack settings that rerun in the kernel, new targets and
drawings, bad input."""

from __future__ import annotations

import pytest
import torch

from crosslens import AdversarialExplorer, DrawPad, kernel_side as ks
from crosslens.payload import unpack

from _explorers import assert_bad_targets_refused

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def cnn():
    return ks.load_pretrained("digits-cnn")


@pytest.fixture()
def explorer(cnn, digits):
    return AdversarialExplorer(cnn, digits[2][:4])


def test_every_tail_and_k_shows_what_the_engine_computes(cnn, digits, explorer):
    arrays, meta = unpack(explorer.payload)
    assert arrays["frames"].shape == (4, 21, 1, 8, 8) and len(meta["tails"]) == 50
    for tail in (0.05, 0.15, 0.3, 0.5):
        explorer.tail = tail
        engine = ks.adversarial_explanation(cnn, digits[2][:4], tail=tail, k=3)
        explorer.k = 3
        for row in range(4):
            explorer.index = row
            assert torch.equal(explorer.ranking, engine.ranking[row])
            assert torch.allclose(explorer.segment_scores, engine.scores[row])
            assert torch.equal(explorer.top_k, engine.top_k[row])
            # the view's filter: a value is kept at tail index t when its level <= t
            t = round(tail * 100) - 1
            levels = torch.from_numpy(arrays["levels"][row].copy())
            d = torch.from_numpy(arrays["perturbation"][row].copy())
            assert torch.allclose((d * (levels <= t)).sum(0), engine.filtered[row], atol=1e-7)
    explorer.step = 0
    assert torch.equal(explorer.frame, explorer.x[explorer.index])


def test_eps_and_steps_rerun_the_attack(cnn, digits, explorer):
    explorer.eps = 0.004
    assert explorer.wait(60)
    assert explorer.perturbation.norm().item() == pytest.approx(0.004, abs=1e-6)
    explorer.steps = 35
    assert explorer.wait(60)
    assert explorer.step == 35 and unpack(explorer.payload)[0]["frames"].shape[1] == 36
    engine = ks.adversarial_explanation(cnn, digits[2][:4], eps=0.004, steps=35)
    assert torch.allclose(explorer.perturbation, engine.perturbation[explorer.index])


def test_a_new_target_explains_that_class(cnn, explorer):
    row = 2
    other = next(c for c in range(10) if c != int(explorer.predicted[row]))
    explorer.index = row
    explorer.target = other
    assert explorer.wait(60)
    assert int(explorer.targets[row]) == other
    engine = ks.adversarial_explanation(cnn, explorer.x[row:row + 1], other)
    assert torch.equal(explorer.ranking, engine.ranking[0])
    assert_bad_targets_refused(explorer, 1)


def test_traits_refuse_bad_values_and_keep_the_state(explorer):
    explorer.tail, explorer.k = 0.2, 4
    for name, value, message in (("tail", 0.7, r"tail must lie in \[0.01, 0.5\]"),
                                 ("k", 17, r"k must be at most the number of segments of every input \(16\)"), ("eps", -1.0, "eps must be a positive"),
                                 ("steps", 0, r"steps must be an integer in \[1, 500\]"), ("step", 99, r"step must be an integer in \[0, 20\]")):
        with pytest.raises(Exception, match=message):
            setattr(explorer, name, value)
    assert (explorer.tail, explorer.k, explorer.eps, explorer.steps) == (0.2, 4, 0.2, 20) and not explorer.busy
    explorer.tail = 0.123
    assert explorer.tail == 0.12


def test_a_drawing_pad_is_explained_anew_for_each_drawing(cnn, digits):
    pad = DrawPad((1, 8, 8), value=digits[2][0], debounce=0)
    explorer = AdversarialExplorer(cnn, [digits[2][1], pad])
    before = explorer.perturbation.clone() if explorer.index == 1 else None
    pad.value = digits[2][5]
    assert explorer.wait(60)
    explorer.index = 1
    assert torch.equal(explorer.x[1], digits[2][5])
    engine = ks.adversarial_explanation(cnn, digits[2][5:6])
    assert torch.allclose(explorer.perturbation, engine.perturbation[0]) and before is None
    explorer.close()


def test_bad_input_is_refused_clearly(cnn, digits):
    x = digits[2][:2]
    with pytest.raises(ValueError, match=r"k must be at most the number of segments of every input \(16\), got 20"):
        AdversarialExplorer(cnn, x, k=20)
    with pytest.raises(ValueError, match=r"segments must be one of \('auto'"):
        AdversarialExplorer(cnn, x, segments="felzenszwalb")
    with pytest.raises(ValueError, match=r"segments must have shape \(8, 8\) or \(2, 8, 8\)"):
        AdversarialExplorer(cnn, x, segments=torch.zeros(3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="eps must be a positive"):
        AdversarialExplorer(cnn, x, eps=0.0)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) 'threshold'"):
        AdversarialExplorer(cnn, x, threshold=0.5)


def test_it_saves_a_figure_and_a_page(explorer, tmp_path):
    assert explorer.save_png(tmp_path / "axai.png").read_bytes()[:4] == b"\x89PNG"
    assert "Adversarial explorer" in explorer.save_html(tmp_path / "axai.html").read_text()


def test_it_explains_colour_scenes():
    shapes = ks.load_shapes_split()
    explorer = AdversarialExplorer(ks.load_pretrained("shapes-cnn"), shapes.x_test[:2], class_names=ks.SHAPES_CLASS_NAMES)
    assert explorer.segments.shape == (32, 32) and int(explorer.segments.max()) + 1 >= explorer.k
    arrays, _ = unpack(explorer.payload)
    assert arrays["levels"].shape == (2, 3, 32, 32) and arrays["perturbation"].shape == (2, 3, 32, 32)
    assert explorer.to_figure() is not None
