"""DrawPad without a browser: strokes rasterised and area averaged, the value read and set from
Python, undo and clear, the canvas events (pointer, touch, keyboard) as ipycanvas delivers
them, clear errors that change nothing, and explorers following a pad."""

from __future__ import annotations

import contextvars
import math
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from crosslens import BoundaryExplorer, CounterfactualExplorer, DrawPad, kernel_side as ks
from crosslens.drawpad import stroke_coverage
from crosslens.kernel_side.methods.counterfactuals import latent_counterfactual
from crosslens.payload import unpack

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def test_digits():
    return ks.load_digits_split()[2][:10]


@pytest.fixture(scope="module")
def invertible():
    return ks.load_pretrained("digits-invertible")


@pytest.fixture(scope="module")
def searchers():
    return ks.load_pretrained("digits-mlp"), ks.load_pretrained("digits-flow")


def event(pad, name: str, **content) -> None:
    """A canvas event as ipycanvas delivers it to the kernel (the pad's interaction layer)."""
    pad._canvas._canvases[-1]._handle_frontend_event(None, {"event": name, **content}, [])


def key(pad, name: str, shift: bool = False) -> None:
    event(pad, "key_down", key=name, shift_key=shift, ctrl_key=False, meta_key=False)


def recorded_images(pad) -> list[np.ndarray]:
    """Every picture the pad puts on its canvas from now on."""
    layer = pad._canvas[0]
    images = []
    original = layer.put_image_data
    layer.put_image_data = lambda image, *args: (images.append(np.array(image)), original(image, *args))[-1]
    return images


# ---- rasterising and area averaging ---------------------------------------------------------------
def test_a_bar_along_the_grid_averages_to_exact_pixels():
    pad = DrawPad((1, 8, 8))
    pad.draw_stroke([(0, 3.5), (8, 3.5)], brush=1.0)  # a bar one input pixel wide, through row 3's middle
    expected = torch.zeros(1, 8, 8)
    expected[0, 3] = 1.0
    assert torch.equal(pad.value, expected)
    pad.clear()
    pad.draw_stroke([(0, 3.0), (8, 3.0)], brush=1.0)  # on the border of rows 2 and 3: half of each
    expected = torch.zeros(1, 8, 8)
    expected[0, 2:4] = 0.5
    assert torch.equal(pad.value, expected)
    pad.clear()
    pad.draw_stroke([(2.5, 0), (2.5, 8)], brush=3.0)  # columns 1..3 fully inked
    assert torch.equal(pad.value[0].sum(0), torch.tensor([0, 8, 8, 8, 0, 0, 0, 0.0]))


def test_strokes_average_to_their_area_at_any_display_resolution():
    for size in (64, 256, 512):
        pad = DrawPad((8, 8), size=size)
        pad.draw_stroke([(4, 4)], brush=2.0)  # a dot of radius 1: area pi
        assert abs(float(pad.value.sum()) - math.pi) < 0.03 * size / 64
        pad.clear()
        pad.draw_stroke([(1, 4), (6, 1)], brush=1.0)  # a slanted line: length x width + the round caps
        length = math.hypot(5, 3)
        assert abs(float(pad.value.sum()) - (length + math.pi / 4)) < 0.05
        assert float(pad.value.max()) <= 1.0 and float(pad.value.min()) == 0.0
    coverage = stroke_coverage([(2, 2), (2, 2)], 0.25, 4, 4)  # a repeated point is a dot
    assert coverage.shape == (4, 4) and 0 < coverage.sum() < 1


def test_ink_over_ink_stays_ink_and_channels_and_ranges_follow_the_pad():
    pad = DrawPad((1, 8, 8))
    for _ in range(3):
        pad.draw_stroke([(0, 3.5), (8, 3.5)], brush=1.0)
    assert float(pad.value.max()) == 1.0 and float(pad.value.sum()) == 8.0
    rgb = DrawPad((3, 6, 10), pixel_range=(-1.0, 1.0))
    assert rgb.value.shape == (3, 6, 10) and float(rgb.value.min()) == -1.0  # blank: the paper
    rgb.draw_stroke([(5.5, 0), (5.5, 6)], brush=1.0)
    assert torch.equal(rgb.value[:, :, 5], torch.ones(3, 6)) and float(rgb.value[:, :, :5].max()) == -1.0
    flat = DrawPad((8, 8))
    flat.draw_stroke([(0, 3.5), (8, 3.5)], brush=1.0)
    assert flat.value.shape == (8, 8) and torch.equal(flat.value[3], torch.ones(8))


# ---- the value, read and set from Python -----------------------------------------------------------
def test_a_digit_set_from_python_reads_back_exactly_and_is_shown(test_digits):
    pad = DrawPad((1, 8, 8))
    shown = recorded_images(pad)
    pad.value = test_digits[3]
    assert torch.equal(pad.value, test_digits[3]) and pad.value.dtype == torch.float32
    ink = np.kron(test_digits[3][0].numpy().astype(np.float64), np.ones((pad.scale, pad.scale)))
    picture = shown[-1]
    assert picture.shape == (8 * pad.scale, 8 * pad.scale, 4)  # RGBA at display resolution
    np.testing.assert_allclose(picture[..., 0], np.round(255 * (1 - ink)), atol=1)  # ink on paper, as the views draw
    # one input flattened, a batch of one and a numpy array are pictures too
    for value in (test_digits[4].flatten(), test_digits[4:5], test_digits[4].numpy()):
        pad.value = value
        assert torch.equal(pad.value, test_digits[4])
    # strokes draw on top of a picture; undo takes them back, then the pictures
    pad.draw_stroke([(0, 0.5), (8, 0.5)], brush=1.0)
    assert torch.equal(pad.value[0, 0], torch.ones(8)) and torch.equal(pad.value[0, 1:], test_digits[4][0, 1:])
    assert pad.undo() and torch.equal(pad.value, test_digits[4])
    for _ in range(3):
        pad.undo()
    assert torch.equal(pad.value, test_digits[3])
    assert pad.undo() and float(pad.value.abs().sum()) == 0
    assert pad.undo() is False and pad.history_length == 0


def test_a_starting_value_and_a_model_as_the_shape(test_digits, invertible):
    pad = DrawPad(invertible, value=test_digits[0], debounce=0)
    assert pad.input_shape == (1, 8, 8) and torch.equal(pad.value, test_digits[0]) and pad.history_length == 1
    pad.clear()
    assert float(pad.value.sum()) == 0 and pad.history_length == 2
    pad.clear()  # already blank: not another undo step
    assert pad.history_length == 2
    pad.undo()
    assert torch.equal(pad.value, test_digits[0])


def test_value_observers_hear_each_finished_stroke_once():
    pad = DrawPad((1, 8, 8))
    changes = []
    pad.observe(lambda change: changes.append(change["new"].clone()), "value")
    event(pad, "mouse_down", x=10.0, y=10.0)
    for step in range(1, 20):
        event(pad, "mouse_move", x=10.0 + 8 * step, y=10.0 + 4 * step)
    assert changes == []  # nothing until the stroke ends
    event(pad, "mouse_up", x=170.0, y=90.0)
    assert len(changes) == 1 and torch.equal(changes[0], pad.value)
    pad.undo()
    pad.clear()  # blank already: no change
    assert len(changes) == 2 and float(changes[-1].sum()) == 0


# ---- canvas events: pointer, touch, keyboard -------------------------------------------------------
def test_mouse_and_touch_strokes_are_the_strokes_drawn_from_code():
    mouse, touch, code = DrawPad((1, 8, 8)), DrawPad((1, 8, 8)), DrawPad((1, 8, 8))
    path = [(40.0, 30.0), (60.0, 100.0), (150.0, 200.0), (210.0, 60.0)]  # display pixels (scale 32)
    event(mouse, "mouse_down", x=path[0][0], y=path[0][1])
    for x, y in path[1:]:
        event(mouse, "mouse_move", x=x, y=y)
    event(mouse, "mouse_up", x=path[-1][0], y=path[-1][1])
    event(touch, "touch_start", touches=[{"x": path[0][0], "y": path[0][1]}])
    for x, y in path[1:]:
        event(touch, "touch_move", touches=[{"x": x, "y": y}, {"x": 0.0, "y": 0.0}])  # a second finger is ignored
    event(touch, "touch_end", touches=[])
    code.draw_stroke([(x / 32, y / 32) for x, y in path])
    assert torch.equal(mouse.value, code.value) and torch.equal(touch.value, code.value)
    assert float(code.value.sum()) > 5
    # leaving the canvas ends the stroke; moves without a pressed button draw nothing
    pad = DrawPad((1, 8, 8))
    event(pad, "mouse_move", x=100.0, y=100.0)
    event(pad, "mouse_down", x=100.0, y=100.0)
    event(pad, "mouse_move", x=200.0, y=100.0)
    event(pad, "mouse_out", x=260.0, y=100.0)
    event(pad, "mouse_move", x=100.0, y=200.0)
    event(pad, "mouse_up", x=100.0, y=200.0)
    assert pad.history_length == 1 and float(pad.value[0, 6:].sum()) == 0


def test_the_keyboard_draws_undoes_clears_resizes_and_leaves(monkeypatch):
    pad = DrawPad((1, 8, 8), brush=1.0)
    focused = []
    for name in ("_undo_button", "_help_toggle"):
        monkeypatch.setattr(getattr(pad, name), "focus", lambda name=name: focused.append(name))
    assert pad._cursor == (4.0, 4.0)
    for name in ["ArrowUp"] * 1:
        key(pad, name, shift=True)  # Shift: four steps of half a pixel
    assert pad._cursor == (4.0, 2.0)
    key(pad, "ArrowLeft")
    key(pad, " ")  # pen down at (3.5, 2)
    for _ in range(8):
        key(pad, "ArrowDown")  # ... to (3.5, 6)
    assert pad.history_length == 0 and "pen down" in pad._status.value
    key(pad, " ")  # pen up: the stroke ends
    code = DrawPad((1, 8, 8), brush=1.0)
    code.draw_stroke([(3.5, 2 + k / 2) for k in range(9)])
    assert pad.history_length == 1 and torch.equal(pad.value, code.value)
    assert "cursor at x 3.5, y 6, pen up" in pad._status.value
    key(pad, "+")
    key(pad, "+")
    key(pad, "-")
    assert pad.brush == 1.25 and pad._brush_slider.value == 1.25
    key(pad, "Backspace")
    assert pad.history_length == 0 and float(pad.value.sum()) == 0
    key(pad, "Enter")
    key(pad, "ArrowRight")
    key(pad, "Escape")  # Escape lifts a pen that is down...
    assert pad.history_length == 1 and focused == []
    key(pad, "Delete")
    assert float(pad.value.sum()) == 0 and pad.history_length == 2
    key(pad, "Escape")  # ... and leaves the pad when it is up
    key(pad, "Tab")
    key(pad, "Tab", shift=True)
    assert focused == ["_undo_button", "_undo_button", "_help_toggle"]
    for _ in range(40):
        key(pad, "ArrowRight", shift=True)
    assert pad._cursor == (8.0, 6.0)  # the cursor stays on the picture
    key(pad, "z", shift=False)  # other keys do nothing
    event(pad, "key_down", key="Backspace", shift_key=False, ctrl_key=True, meta_key=False)  # nor with Ctrl
    assert pad.history_length == 2


def test_the_buttons_and_the_slider_are_the_pads_controls():
    pad = DrawPad((1, 8, 8))
    pad.draw_stroke([(4, 1), (4, 7)])
    pad._undo_button.click()
    assert pad.history_length == 0
    pad.draw_stroke([(4, 1), (4, 7)])
    pad._clear_button.click()
    assert float(pad.value.sum()) == 0 and pad.history_length == 2
    pad._brush_slider.value = 2.5
    assert pad.brush == 2.5
    pad.brush = 1.0
    assert pad._brush_slider.value == 1.0
    pad._help_toggle.value = True
    assert pad._help.layout.display == "block" and "Space" in pad._help.value


def test_a_new_page_gets_the_picture_again(test_digits):
    pad = DrawPad((1, 8, 8), value=test_digits[0])
    shown = recorded_images(pad)
    event(pad, "client_ready")  # a page reload: ipycanvas' new view starts blank
    assert len(shown) == 1 and shown[0].shape == (256, 256, 4)


# ---- bad arguments change nothing ---------------------------------------------------------------
def test_bad_arguments_raise_clear_errors_and_change_nothing(test_digits):
    cases = [
        (dict(input_shape=(2,)), ValueError, r"input_shape \(2,\) is a point with two features, not a picture"),
        (dict(input_shape=(64,)), ValueError, r"flat vector.*e\.g\. \(8, 8\) for 64 values"),
        (dict(input_shape="8x8"), TypeError, "input_shape must be"),
        (dict(input_shape=(1, 1, 8, 8)), ValueError, r"input_shape must be \(H, W\) or \(C, H, W\)"),
        (dict(input_shape=(1, 1, 8)), ValueError, "at least 2 x 2"),
        (dict(input_shape=object()), TypeError, "input_shape must be"),
        (dict(brush=0.0), ValueError, "^brush must"),
        (dict(brush="thick"), TypeError, "^brush must"),
        (dict(size=8), ValueError, "^size must"),
        (dict(size=True), TypeError, "^size must"),
        (dict(debounce=-1), ValueError, "^debounce must"),
        (dict(pixel_range=(1, 0)), ValueError, "^pixel_range must"),
        (dict(value=torch.full((1, 8, 8), 2.0)), ValueError, r"value must lie in pixel_range \[0, 1\]"),
        (dict(colour="red"), TypeError, "unexpected keyword argument.*'colour'"),
    ]
    for options, error, message in cases:
        with pytest.raises(error, match=message):
            DrawPad(**options)
    pad = DrawPad((1, 8, 8), value=test_digits[0])
    pad.draw_stroke([(0, 0.5), (8, 0.5)], brush=1.0)
    value, history, brush = pad.value.clone(), pad.history_length, pad.brush
    for bad, error, message in [
        (torch.zeros(2, 1, 8, 8), ValueError, "value must be one input"),
        (torch.zeros(3, 3), ValueError, "value must have shape"),
        (torch.full((1, 8, 8), float("nan")), ValueError, "value contains NaN"),
        (-test_digits[0], ValueError, "value must lie in pixel_range"),
        ("a digit", TypeError, "value must be a tensor"),
        (pad, TypeError, "got a DrawPad"),
    ]:
        with pytest.raises(error, match=message):
            pad.value = bad
    for points, error, message in [([], ValueError, "points must be a non-empty"), ([(1, 2, 3)], ValueError, "points"),
                                   ("abc", TypeError, "points must be"), ([(1, float("inf"))], ValueError, "finite")]:
        with pytest.raises(error, match=message):
            pad.draw_stroke(points)
    with pytest.raises(ValueError, match="^brush must"):
        pad.draw_stroke([(1, 1)], brush=99)
    with pytest.raises(ValueError, match="^brush must"):
        pad.brush = 0
    with pytest.raises(ValueError, match="^debounce must"):
        pad.debounce = 11
    assert torch.equal(pad.value, value) and pad.history_length == history and pad.brush == brush


def test_the_engine_imports_no_widget_code():
    for path in (REPO / "kernel_side").rglob("*.py"):
        source = path.read_text()
        assert not re.search(r"^\s*(from|import)\s+(ipywidgets|ipycanvas|anywidget|crosslens\.(?!kernel_side)|"
                             r"\.\.+(?!\w)|\.\.\.+\w)", source, re.M), path
        assert "from ..drawpad" not in source and "from ...drawpad" not in source, path


# ---- explorers following a pad -----------------------------------------------------------------------
def test_the_boundary_explorer_follows_the_pad(invertible, test_digits, digits):
    x_train = digits[0]
    pad = DrawPad((1, 8, 8), debounce=0)
    explorer = BoundaryExplorer(invertible, pad, reference=x_train)
    assert explorer.x.shape == (1, 1, 8, 8) and float(explorer.x.sum()) == 0  # the blank pad
    assert unpack(explorer.payload)[1]["pad_rows"] == [0]
    for digit in test_digits[:3]:
        pad.value = digit
        assert explorer.wait(30)
        alone = BoundaryExplorer(invertible, digit, reference=x_train)
        assert torch.equal(explorer.x[0], digit) and torch.equal(explorer.predicted, alone.predicted)
        torch.testing.assert_close(explorer.frames, alone.frames, atol=1e-5, rtol=0)
        arrays, _ = unpack(explorer.payload)
        np.testing.assert_array_equal(arrays["x"][0], digit.numpy())  # the view shows the new input
    # strokes drawn quickly one after another are followed once, after the last
    pad.debounce = 0.3
    calls = []
    original = explorer._compute_rows
    explorer._compute_rows = lambda *args: (calls.append(args[0]), original(*args))[-1]
    pad.clear()
    for column in (2.5, 4.5, 6.5):
        pad.draw_stroke([(column, 1), (column, 7)])
    assert explorer.busy  # waiting out the debounce
    assert explorer.wait(30) and calls == [[0]]
    assert torch.equal(explorer.x[0], pad.value)
    explorer.close()
    pad.value = test_digits[5]  # a closed explorer no longer follows
    time.sleep(0.4)
    assert not torch.equal(explorer.x[0], pad.value)


def test_an_input_row_that_follows_a_pad_among_others(invertible, test_digits):
    pad = DrawPad((8, 8), debounce=0)  # (8, 8) pictures fit a (1, 8, 8) model: as many values
    x = [test_digits[:2], pad, test_digits[2]]
    explorer = BoundaryExplorer(invertible, x, steps=9)  # along directions from x itself: all rows recompute
    assert explorer.x.shape == (4, 1, 8, 8) and unpack(explorer.payload)[1]["pad_rows"] == [2]
    explorer.index = 0
    explorer.target = next(c for c in range(10) if c not in (int(explorer.predicted[0]), int(explorer.targets[0])))
    before = explorer.frames
    pad.value = test_digits[7][0]
    assert explorer.wait(30)
    assert torch.equal(explorer.x[[0, 1, 3]], test_digits[[0, 1, 2]]) and torch.equal(explorer.x[2], test_digits[7])
    alone = BoundaryExplorer(invertible, torch.cat([test_digits[:2], test_digits[7:8], test_digits[2:3]]), steps=9,
                             target=[explorer.target, None, None, None])
    torch.testing.assert_close(explorer.frames, alone.frames, atol=1e-5, rtol=0)
    assert not torch.equal(before, explorer.frames)


def test_a_requested_target_the_new_drawing_is_predicted_as_falls_back_to_the_default(invertible, test_digits):
    pad = DrawPad((1, 8, 8), value=test_digits[0], debounce=0)  # a 7
    explorer = BoundaryExplorer(invertible, pad, steps=9)
    explorer.target = 3
    assert explorer.targets.tolist() == [3]
    pad.value = test_digits[2]  # a 3: it cannot head for 3 any more
    assert explorer.wait(30) and explorer.predicted.tolist() == [3]
    assert explorer.target is None and int(explorer.targets[0]) != 3 and explorer.error == ""


def test_the_follow_runs_in_the_context_of_the_request_that_changed_the_pad(invertible, test_digits):
    request = contextvars.ContextVar("request", default=None)
    pad = DrawPad((1, 8, 8), debounce=0.1)
    explorer = BoundaryExplorer(invertible, pad, steps=9)
    seen = []
    original = explorer._follow
    explorer._follow = lambda rows, x: (seen.append((request.get(), threading.current_thread().name)),
                                        original(rows, x))[-1]

    def a_request():
        request.set("the mouse_up of a stroke")
        pad.draw_stroke([(4, 1), (4, 7)])

    thread = threading.Thread(target=a_request)
    thread.start()
    thread.join()
    assert explorer.wait(30)
    assert seen == [("the mouse_up of a stroke", "crosslens-BoundaryExplorer")]


def test_pads_that_do_not_fit_are_refused_and_left_alone(invertible, searchers, test_digits):
    moons = ks.load_pretrained("moons-invertible")
    cases = [
        (lambda pad: BoundaryExplorer(invertible, pad), DrawPad((28, 28)),
         r"x is a DrawPad of \(28, 28\) pictures \(784 values\), but the model takes \(1, 8, 8\)"),
        (lambda pad: BoundaryExplorer(moons, pad), DrawPad((1, 2, 2)), "x is a DrawPad, but the model takes 2-feature"),
        (lambda pad: BoundaryExplorer(invertible, [test_digits[:2], pad]), DrawPad((4, 4)), r"x\[1\] is a DrawPad"),
        (lambda pad: BoundaryExplorer(invertible, [pad, "seven"]), DrawPad((1, 8, 8)), r"x\[1\] must be a tensor"),
        (lambda pad: CounterfactualExplorer(*searchers, pad), DrawPad((1, 8, 8), pixel_range=(0, 16)),
         r"x: a DrawPad with pixel_range \(0.0, 16.0\) draws values outside clip \(0.0, 1.0\)"),
    ]
    for build, pad, message in cases:
        observers = list(pad._trait_notifiers["value"]["change"])
        with pytest.raises((ValueError, TypeError), match=message):
            build(pad)
        assert pad._trait_notifiers["value"]["change"] == observers, "a refused explorer observes the pad"


def test_the_counterfactual_explorer_restarts_its_searches_for_a_new_drawing(searchers, test_digits):
    classifier, flow = searchers
    pad = DrawPad((1, 8, 8), value=test_digits[0], debounce=1.0)
    # row 0: a search that runs for long; row 1: the pad
    explorer = CounterfactualExplorer(classifier, flow, [test_digits[1], pad], threshold=0.999999, max_steps=100_000,
                                      record_every=100)
    deadline = time.monotonic() + 10
    while "running" not in explorer.row_status["latent"] and time.monotonic() < deadline:
        time.sleep(0.01)
    pad.value = test_digits[2]
    stopped = time.monotonic()
    while explorer.row_status["latent"] != ["stopped", "stopped"] and time.monotonic() - stopped < 5:
        time.sleep(0.01)
    assert explorer.row_status["latent"] == ["stopped", "stopped"]  # the old drawing's searches stopped at once
    assert explorer.busy  # ... and start over after the debounce
    deadline = time.monotonic() + 10
    while "running" not in explorer.row_status["latent"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert torch.equal(explorer.x[1], test_digits[2]) and explorer.row_status["latent"] == ["running", "running"]
    explorer.stop()
    assert explorer.wait(30)
    result = explorer.result_latent
    assert result.interrupted
    torch.testing.assert_close(result.reference[1], flow.decode(flow.encode(test_digits[2:3]))[0].detach(),
                               atol=1e-5, rtol=0)  # the new drawing's search started from the new drawing
    explorer.close()


def test_the_counterfactual_explorer_follows_to_the_same_result_as_a_fresh_one(searchers, test_digits):
    classifier, flow = searchers
    pad = DrawPad((1, 8, 8), debounce=0)
    explorer = CounterfactualExplorer(classifier, flow, pad, max_steps=150, compare_pixel=False)
    pad.value = test_digits[6]
    assert explorer.wait(60)
    target = explorer.targets
    alone = latent_counterfactual(classifier, flow, test_digits[6:7], target, max_steps=150)
    result = explorer.result_latent
    assert torch.equal(result.steps, alone.steps) and not result.interrupted
    torch.testing.assert_close(result.x_cf, alone.x_cf, atol=1e-5, rtol=0)
    assert explorer.row_status == {"latent": ["done"]} and explorer.status.startswith("latent: 1/1 reached")
