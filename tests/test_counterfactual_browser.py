"""End-to-end: the CounterfactualExplorer in a real JupyterLab, driven by a real Chromium.

A small temporary notebook builds two explorers on a few digits: a normal one, and a long
one (a threshold it hardly reaches, a huge max_steps) that is still streaming when the test
presses its Stop button. Lab runs with a new user's settings (comms included). Checks: while
the long search streams, the notebook is saved and the page reloaded, and the views come back
from the kernel's live comms; then frames stream in (the state text moves), Stop ends the
search in Python (read from the kernel, not only from the view), Run again (pressed with the
keyboard) starts the stopped searches over in Python, and Stop ends them again; once the
normal explorer has finished, dragging the position slider and pressing the arrow keys change
the frames and the target probability, also while the kernel is busy with another request;
the target select and the input picker recompute / switch inputs; the browser logs no error;
a screenshot goes to ``artifacts/counterfactual_explorer.png``.
"""

from __future__ import annotations

import sys
import time

import pytest

from _browser import (
    ARTIFACTS, assert_clean_console, assert_kernel_refused_nothing, canvas_data, drag_slider, kernel_output,
    press_and_expect, read_prob, run_in_kernel, slider_state, slider_track, wait_canvas_change, wait_slider_value,
    write_notebook,
)
from _jupyterlab import open_and_run_all, reload_lab, save_notebook, wait_cells_idle

ROOT = '.xl-counterfactual[data-crosslens-ready="true"]'
SLIDER = 'input[type="range"][data-role="step-slider"]'
LATENT_CANVAS = 'canvas[data-role="latent-frame-canvas"]'
LATENT_TARGET_BAR = '[data-role="latent-probabilities"] [data-role="prob-bar"][data-target="true"]'

CELLS = [
    "import torch\n"
    "from crosslens import CounterfactualExplorer, kernel_side as ks\n"
    "classifier, flow = ks.load_pretrained('digits-cnn'), ks.load_pretrained('digits-flow')\n"
    "x = ks.load_digits_split()[2][:5]\n"
    "explorer = CounterfactualExplorer(classifier, flow, x, max_steps=600)\n"
    "explorer",
    # still running when the test presses Stop: a threshold it hardly reaches, a huge max_steps
    "long_run = CounterfactualExplorer(classifier, flow, x[:2], threshold=0.999999, max_steps=200_000,\n"
    "                                  record_every=100)\n"
    "long_run",
]

pytestmark = pytest.mark.browser


def long_run_in_python(page) -> tuple[bool, set[str]]:
    """``(busy, row states)`` of the long explorer, as the kernel sees them."""
    out = kernel_output(page, "print(long_run.busy, *{s for states in long_run.row_status.values() for s in states})")
    busy, *states = out.split()
    return busy == "True", set(states)


def wait_busy(page, root, busy: bool, timeout_ms: int, what: str) -> None:
    """Wait until the view says the kernel is (not) busy: ``data-busy`` follows the kernel's ``busy``."""
    try:
        page.wait_for_function("([el, v]) => el.dataset.busy === v", arg=[root.element_handle(), str(busy).lower()],
                               timeout=timeout_ms)
    except Exception:
        raise AssertionError(f"{what}: the view still says busy={not busy} after {timeout_ms / 1000:g} s") from None


def reload_while_streaming(page, root) -> dict:
    """The reported sequence: while the long search streams the user saves and reloads the page,
    then (see stop_a_running_explorer) presses Stop. Nothing else may reach the kernel in between:
    a request of the test would change which request the kernel's threads publish under."""
    assert root.get_attribute("data-busy") == "true", "the long search finished before the reload"
    save_notebook(page)
    return reload_lab(page, ROOT, count=2)


def stop_a_running_explorer(page, root) -> dict:
    """The long explorer streams (its state text moves) until Stop, then stops within seconds,
    in Python too; Run again (keyboard) restarts the stopped searches in Python; Stop again."""
    assert root.get_attribute("data-busy") == "true", "the long search finished before the test could stop it"
    state = root.locator('[data-role="latent-state"]')
    first = state.text_content()
    page.wait_for_function("([el, before]) => el.textContent !== before", arg=[state.element_handle(), first],
                           timeout=20_000)  # frames stream in while the search runs
    streamed = state.text_content()
    stop = root.locator('[data-role="stop-button"]')
    assert stop.is_visible() and stop.is_enabled()
    stop.click()
    wait_busy(page, root, False, 10_000, "Stop did not stop the search")
    busy, python_states = long_run_in_python(page)
    assert not busy and "stopped" in python_states and python_states <= {"done", "stopped"}, (busy, python_states)
    assert not stop.is_visible(), "the Stop button is still shown after the search stopped"
    states = [root.locator(f'[data-role="{m}-state"]').text_content() for m in ("latent", "pixel")]
    assert any(s.startswith("stopped") for s in states), states
    rerun = root.locator('[data-role="rerun-button"]')
    assert rerun.is_visible() and rerun.is_enabled(), "no Run again button after a stop"
    rerun.focus()
    page.keyboard.press("Enter")  # keyboard operable
    wait_busy(page, root, True, 10_000, "Run again did not start the stopped searches")
    busy, rerun_states = long_run_in_python(page)
    assert busy and rerun_states & {"queued", "running"}, (busy, rerun_states)
    assert not rerun.is_visible(), "Run again is still shown while the searches run"
    stop.click()
    wait_busy(page, root, False, 10_000, "Stop did not stop the searches run again")
    busy, final_states = long_run_in_python(page)
    assert not busy and "stopped" in final_states, (busy, final_states)
    return {"streamed": [first, streamed], "after stop": states, "python": sorted(python_states)}


def exercise_explorer(page, root, screenshot) -> dict:
    root.scroll_into_view_if_needed()
    slider = root.locator(SLIDER)
    canvas = root.locator(LATENT_CANVAS)
    target = root.locator(LATENT_TARGET_BAR)
    assert canvas.count() == 1 and target.count() == 1
    start = slider_state(slider)
    assert start["value"] == start["max"] == 100, f"the view should start at the final frames: {start}"
    x_of, y = slider_track(slider)

    # 1. Drag from the start of each path towards its end.
    page.mouse.click(x_of(0.0), y)
    wait_slider_value(page, slider, "v === 0")
    img0, prob0 = canvas_data(canvas), read_prob(target)
    drag_slider(page, slider, (0.2, 0.4, 0.6, 0.8, 0.9))
    dragged = slider_state(slider)
    assert dragged["value"] >= 80, f"dragging did not move the slider: {dragged}"
    img1 = wait_canvas_change(page, canvas, img0)
    page.wait_for_timeout(100)
    prob1 = read_prob(target)
    assert prob1 > prob0 + 0.2, f"the target probability did not rise along the latent path: {prob0} -> {prob1}"

    # 2. Keyboard: the focused slider gets the arrow keys (not JupyterLab).
    slider.focus()
    v1 = dragged["value"]
    press_and_expect(page, slider, "ArrowLeft", 40, f"v <= {v1 - 40}")
    assert slider_state(slider)["focused"], "slider lost focus (JupyterLab took the key?)"
    img2 = wait_canvas_change(page, canvas, img1)
    assert read_prob(target) < prob1

    # 3. Scrubbing never waits for the kernel.
    run_in_kernel(page, "import time; time.sleep(6)")
    page.wait_for_timeout(500)
    v2 = slider_state(slider)["value"]
    press_and_expect(page, slider, "ArrowRight", 40, f"v >= {v2 + 40}")
    wait_canvas_change(page, canvas, img2, timeout_ms=1_000)
    assert not page.evaluate("() => window.__crosslensKernelDone"), "the kernel finished before the check"
    page.wait_for_function("() => window.__crosslensKernelDone", timeout=30_000)

    # 4. Position by Adam step: one arrow key is one step.
    root.locator('[data-role="align-select"]').select_option("step")
    page.wait_for_function("(el) => el.dataset.align === 'step'", arg=root.element_handle())
    slider.focus()
    page.keyboard.press("Home")
    wait_slider_value(page, slider, "v === 0")
    img3 = canvas_data(canvas)
    press_and_expect(page, slider, "ArrowRight", 1, "v === 1")
    wait_canvas_change(page, canvas, img3)
    assert root.get_attribute("data-latent-step") == "1"

    # 5. Another input from the picker; another target recomputes it in the kernel.
    root.locator('[data-role="index-option"][data-index="2"]').click()
    page.wait_for_function("(el) => el.dataset.index === '2'", arg=root.element_handle())
    select = root.locator('[data-role="target-select"]')
    old = select.input_value()
    new = next(o for o in select.locator("option:not([disabled])").evaluate_all("os => os.map(o => o.value)")
               if o != old)
    select.select_option(new)
    page.wait_for_function(
        "([el, c]) => el.querySelector('[data-role=\"latent-probabilities\"] [data-target=\"true\"]')"
        ".closest('[data-role=\"prob-row\"]').dataset.class === c", arg=[root.element_handle(), new])
    page.wait_for_function("(el) => el.dataset.busy === 'false'", arg=root.element_handle(), timeout=60_000)
    assert root.locator('[data-role="latent-state"]').text_content().startswith("reached")
    assert root.locator('[data-role="error"]').is_hidden()

    root.locator('[data-role="align-select"]').select_option("fraction")
    slider.focus()
    page.keyboard.press("End")
    page.set_viewport_size({"width": 1400, "height": 1700})  # the whole widget below Lab's toolbar
    root.scroll_into_view_if_needed()
    page.wait_for_timeout(200)
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    root.screenshot(path=str(screenshot))
    return {"probs": [prob0, prob1], "slider": [start["value"], v1, v2], "target": [old, new]}


def test_counterfactual_explorer_in_jupyterlab(lab, page, tmp_path):
    t0 = time.monotonic()
    name = lab.add_file(write_notebook(tmp_path / "counterfactuals.ipynb", CELLS))
    spec = lab.api("GET", "/api/kernelspecs")["kernelspecs"]["python3"]["spec"]
    assert spec["argv"][0] == sys.executable, spec["argv"]
    open_and_run_all(page, lab, name, ROOT, timeout=180)
    roots = page.locator(ROOT)
    page.wait_for_function(f"() => document.querySelectorAll('{ROOT}').length === 2", timeout=120_000)
    reloaded = reload_while_streaming(page, roots.nth(1))
    stopped = stop_a_running_explorer(page, roots.nth(1))
    explorer = roots.nth(0)
    page.wait_for_function("(el) => el.dataset.busy === 'false'", arg=explorer.element_handle(), timeout=120_000)
    wait_cells_idle(page, timeout=60)
    result = exercise_explorer(page, explorer, ARTIFACTS / "counterfactual_explorer.png")
    assert_clean_console(page.console_log)
    assert_kernel_refused_nothing(lab)
    print(f"counterfactual browser test: reload {reloaded}, {stopped}, {result}, {time.monotonic() - t0:.1f}s")
