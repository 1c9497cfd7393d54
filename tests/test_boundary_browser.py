"""End-to-end: a tutorial notebook in a real JupyterLab, driven by a real Chromium.

Runs ``notebooks/02_boundary_digits.ipynb`` (a copy, in a temporary server root) with
"Run All", waits for the BoundaryExplorer to draw, then drags the across-boundary slider
with the mouse and moves it with the arrow keys (JupyterLab steals arrow keys from
controls that do not stop propagation), checking that the frame canvas and the target
probability follow, that the browser logged no error, and saving a screenshot to
``artifacts/boundary_digits.png`` (the CI artifact).

The fixtures ``lab`` and ``page`` and the page helpers live in ``_browser.py``.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

from _browser import (
    ARTIFACTS, REPO, assert_clean_console, assert_kernel_refused_nothing, canvas_data, drag_slider, press_and_expect,
    read_prob, run_in_kernel, slider_state, slider_track, wait_canvas_change, wait_slider_value,
)
from _jupyterlab import open_and_run_all, wait_cells_idle

NOTEBOOKS = REPO / "notebooks"

READY = '[data-crosslens-ready="true"]'
SLIDER = 'input[type="range"][data-role="t-slider"]'
CANVAS = 'canvas[data-role="frame-canvas"]'
TARGET_BAR = '[data-role="prob-bar"][data-target="true"]'

pytestmark = pytest.mark.browser


def exercise_boundary_explorer(page, screenshot: Path) -> dict:
    """Drag + keyboard checks on the first widget that has an across-boundary slider."""
    root = page.locator(f"{READY}:has({SLIDER})").first
    root.scroll_into_view_if_needed()
    slider = root.locator(SLIDER).first
    canvas = root.locator(CANVAS).first
    target = root.locator(TARGET_BAR).first
    assert canvas.count() == 1, f"no {CANVAS} inside the widget"
    assert target.count() == 1, f"no {TARGET_BAR} inside the widget"

    start = slider_state(slider)
    span = start["max"] - start["min"]
    assert span > 0, f"slider has an empty range: {start}"
    x_of, y = slider_track(slider)

    # 0. The tutorial put the first digit on the boundary (explorer.t = 1.0, a frame of the
    # path): the classes tie, and the frame, an inverted feature point, leaves the pixel
    # range, which the view says instead of silently clipping.
    assert root.get_attribute("data-t") == "1", root.get_attribute("data-t")
    note = root.locator('[data-role="clip-note"]')
    assert note.is_visible() and re.fullmatch(r"\d+ % of its pixels lie outside \[0\.00, 1\.00\]: drawn clipped",
                                               note.text_content()), note.text_content()

    # 1. Drag from t=min toward the right with the mouse.
    page.mouse.click(x_of(0.0), y)  # a click on the track's left end sets t to min
    wait_slider_value(page, slider, f"v === {start['min']}")
    assert not note.is_visible(), "the input itself lies in the pixel range"
    img0, prob0 = canvas_data(canvas), read_prob(target)
    drag_slider(page, slider, (0.15, 0.3, 0.45, 0.6, 0.75))
    after_drag = slider_state(slider)
    assert after_drag["value"] > start["min"] + 0.5 * span, (
        f"dragging did not move the slider: {start} -> {after_drag}"
    )
    img1 = wait_canvas_change(page, canvas, img0)
    page.wait_for_timeout(100)  # let bars settle if drawn on the next frame
    prob1 = read_prob(target)
    assert prob1 > prob0, f"target probability did not increase across the boundary: {prob0} -> {prob1}"

    # 2. Keyboard: focused slider must receive ArrowRight/ArrowLeft (not JupyterLab).
    slider.focus()
    assert slider_state(slider)["focused"], "slider cannot take focus"
    v1 = after_drag["value"]
    press_and_expect(page, slider, "ArrowRight", 3, f"v > {v1}")
    state2 = slider_state(slider)
    assert state2["focused"], "slider lost focus after ArrowRight (JupyterLab took the key?)"
    img2 = wait_canvas_change(page, canvas, img1)
    v2 = state2["value"]
    press_and_expect(page, slider, "ArrowLeft", 2, f"v < {v2}")
    wait_canvas_change(page, canvas, img2)
    v3 = slider_state(slider)["value"]

    # 3. Scrubbing never waits for the kernel: with the kernel asleep in another request,
    # a key press still changes the frame at once.
    run_in_kernel(page, "import time; time.sleep(6)")
    page.wait_for_timeout(500)  # the request has reached the kernel
    img3 = canvas_data(canvas)
    press_and_expect(page, slider, "ArrowRight", 2, f"v > {v3}")
    wait_canvas_change(page, canvas, img3, timeout_ms=1_000)
    assert not page.evaluate("() => window.__crosslensKernelDone"), "the kernel finished before the check"
    page.wait_for_function("() => window.__crosslensKernelDone", timeout=30_000)

    screenshot.parent.mkdir(parents=True, exist_ok=True)
    root.screenshot(path=str(screenshot))
    return {"t": [start["value"], v1, v2, v3], "prob": [prob0, prob1]}


# -- the test ------------------------------------------------------------------------------

def test_boundary_digits_notebook_in_jupyterlab(lab, page):
    t0 = time.monotonic()
    nb = NOTEBOOKS / "02_boundary_digits.ipynb"
    assert nb.exists(), f"{nb} is missing"
    committed = nb.read_bytes()
    name = lab.add_file(nb)
    # The kernel must be this interpreter (the one with crosslens installed).
    spec = lab.api("GET", "/api/kernelspecs")["kernelspecs"]["python3"]["spec"]
    assert spec["argv"][0] == sys.executable, spec["argv"]

    kernel = open_and_run_all(page, lab, name, READY, timeout=180)
    assert kernel == "python3", f"notebook ran on kernel {kernel!r}"
    wait_cells_idle(page, timeout=180)
    result = exercise_boundary_explorer(page, ARTIFACTS / "boundary_digits.png")
    wait_cells_idle(page, timeout=30)
    assert_clean_console(page.console_log)
    assert_kernel_refused_nothing(lab)
    # The committed notebook was never touched (only the copy in the server root ran).
    assert nb.read_bytes() == committed, f"{nb} was modified by the browser test"
    print(f"browser test: {result}, {time.monotonic() - t0:.1f}s after server start")
