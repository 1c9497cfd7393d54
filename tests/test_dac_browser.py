"""End-to-end: the AttributionExplorer in a real JupyterLab, driven by a real Chromium.

A small temporary notebook builds two explorers: one on pairs straight from
``ks.latent_counterfactual`` (given counterfactuals), one that makes its counterfactuals
with the flow (its targets can change). Lab runs with a new user's settings. Checks, with the
keyboard only: the threshold slider's Home key shows threshold -1, where the hybrid is the
real image and the restored score is the one Python reports; a method card pressed with
Enter selects that method in Python; Best mask moves the threshold to the method's best
mask in Python; the direction select swaps the images; a threshold set from Python moves
the view; the slider still redraws while the kernel is busy; the given explorer's target
select is disabled and says why, while the made explorer's target select makes a new
counterfactual in the kernel; the browser logs no error; a screenshot goes to
``artifacts/attribution_explorer.png``.
"""

from __future__ import annotations

import time

import pytest

from _browser import (
    canvas_data, finish_view, kernel_output, python_value, run_in_kernel,
    wait_canvas_change, wait_python, wait_slider_value, write_notebook,
)
from _jupyterlab import open_and_run_all, wait_cells_idle

ROOT = '.xl-attribution[data-crosslens-ready="true"]'
SLIDER = 'input[type="range"][data-role="threshold-slider"]'

CELLS = [
    "import torch\n"
    "from crosslens import AttributionExplorer, kernel_side as ks\n"
    "torch.set_num_threads(1)\n"
    "cnn, flow = ks.load_pretrained('digits-cnn'), ks.load_pretrained('digits-flow')\n"
    "x = ks.load_digits_split()[2][:4]\n"
    "explorer = AttributionExplorer(cnn, ks.latent_counterfactual(cnn, flow, x))\n"
    "explorer",
    "made = AttributionExplorer(cnn, x[:2], generator=flow, methods=['ig', 'd_ig', 'residual'])\n"
    "made",
]

pytestmark = pytest.mark.browser


def exercise_given(page, root) -> dict:
    slider, hybrid, real = root.locator(SLIDER), root.locator('canvas[data-role="hybrid-canvas"]'), \
        root.locator('canvas[data-role="real-canvas"]')
    # 1. threshold -1: the whole real image, the score Python reports
    slider.focus()
    page.keyboard.press("Home")
    wait_slider_value(page, slider, "v === 0")
    page.wait_for_function("(el) => el.dataset.threshold === '-1'", arg=root.element_handle())
    assert canvas_data(hybrid) == canvas_data(real)
    wait_python(page, "explorer.threshold", "-1.0")
    assert float(root.get_attribute("data-score")) == pytest.approx(float(python_value(page, "explorer.score")), abs=1e-6)

    # 2. a method card pressed with Enter selects the method in Python
    card = root.locator('[data-role="method-option"][data-method="residual"]')
    card.focus()
    page.keyboard.press("Enter")
    page.wait_for_function("(el) => el.dataset.method === 'residual'", arg=root.element_handle())
    assert card.get_attribute("aria-pressed") == "true"
    wait_python(page, "explorer.method", "residual")

    # 3. Best mask: the threshold moves to the method's best mask, in the view and in Python
    best = python_value(page, "explorer.best_threshold")
    before = canvas_data(hybrid)
    root.locator('[data-role="best-button"]').focus()
    page.keyboard.press("Enter")
    wait_canvas_change(page, hybrid, before)
    wait_python(page, "explorer.threshold == explorer.best_threshold", "True")
    assert float(root.get_attribute("data-threshold")) == pytest.approx(float(best))

    # 4. the direction: the hybrid pastes the other way round
    before = canvas_data(hybrid)
    root.locator('[data-role="direction-select"]').select_option("quac")
    page.wait_for_function("(el) => el.dataset.direction === 'quac'", arg=root.element_handle())
    wait_canvas_change(page, hybrid, before)
    wait_python(page, "explorer.direction, explorer.form", "quac dapi")

    # 5. Python drives the view
    kernel_output(page, "explorer.threshold = 0.5")
    page.wait_for_function("(el) => el.dataset.threshold === '0.5'", arg=root.element_handle())
    wait_slider_value(page, slider, "v === 150")

    # 6. the slider never waits for the kernel: it redraws while the kernel sleeps
    run_in_kernel(page, "import time; time.sleep(8)")
    page.wait_for_timeout(300)
    before = canvas_data(hybrid)
    slider.focus()
    page.keyboard.press("Home")
    wait_canvas_change(page, hybrid, before, timeout_ms=2_000)
    assert not page.evaluate("() => window.__crosslensKernelDone")

    # 7. the given counterfactuals fix the targets, and the view says so
    select = root.locator('[data-role="target-select"]')
    assert select.is_disabled() and "fixed by the given counterfactuals" in \
        root.locator('[data-role="target-hint"]').text_content()
    page.wait_for_function("() => window.__crosslensKernelDone === true", timeout=20_000)
    return {"best": best}


def exercise_made(page, root) -> dict:
    select = root.locator('[data-role="target-select"]')
    assert not select.is_disabled()
    old = select.input_value()
    new = next(o for o in select.locator("option:not([disabled])").evaluate_all("os => os.map(o => o.value)")
               if o not in (old, "default"))
    before = canvas_data(root.locator('canvas[data-role="counterfactual-canvas"]'))
    select.select_option(new)
    page.wait_for_function("(el) => el.dataset.busy === 'false'", arg=root.element_handle(), timeout=60_000)
    wait_canvas_change(page, root.locator('canvas[data-role="counterfactual-canvas"]'), before, timeout_ms=30_000)
    wait_python(page, "int(made.targets[0]), int(cnn(made.x_cf[:1]).argmax())", f"{new} {new}", timeout=30)
    page.wait_for_function("([el, name]) => el.querySelector('[data-role=\"status\"]').textContent"
                           ".includes(`x′ classified ${name}`)", arg=[root.element_handle(), new])
    assert root.locator('[data-role="error"]').is_hidden()
    return {"target": [old, new]}


def test_attribution_explorer_in_jupyterlab(lab, page, tmp_path):
    t0 = time.monotonic()
    name = lab.add_file(write_notebook(tmp_path / "attributions.ipynb", CELLS))
    open_and_run_all(page, lab, name, ROOT, timeout=180)
    page.wait_for_function(f"() => document.querySelectorAll('{ROOT}').length === 2", timeout=120_000)
    wait_cells_idle(page, timeout=60)
    roots = page.locator(ROOT)
    given = exercise_given(page, roots.nth(0))
    made = exercise_made(page, roots.nth(1))
    root = roots.nth(0)
    finish_view(page, lab, root, "attribution_explorer.png")
    print(f"attribution browser test: {given}, {made}, {time.monotonic() - t0:.1f}s")
