"""End-to-end: the AttributeBrowser in a real JupyterLab, driven by a real Chromium.

A small notebook shows the browser on the shipped digits-flint. Checks, with the keyboard: the
tau slider changes the relevant attributes in the view and in Python; a cell of the class x
attribute table (Enter) selects its attribute and filters the gallery to its class, in the
view and in Python, and the attribute's picture changes; "All classes" clears the filter; a
relevance bar selects its attribute; an attribute set from Python moves the view; the target
select is disabled and says why; the browser logs no error; a screenshot goes to
``artifacts/attribute_browser.png``.
"""

from __future__ import annotations

import time

import pytest

from _browser import (
    canvas_data, finish_view, kernel_output, press_and_expect,
    python_value, wait_canvas_change, wait_python, write_notebook,
)
from _jupyterlab import open_and_run_all, wait_cells_idle

ROOT = '.xl-attribute[data-crosslens-ready="true"]'

CELLS = [
    "import torch\n"
    "from crosslens import AttributeBrowser, kernel_side as ks\n"
    "torch.set_num_threads(1)\n"
    "x_test = ks.load_digits_split()[2]\n"
    "browser = AttributeBrowser(ks.load_pretrained('digits-flint'), x_test[:16], reference=x_test)\n"
    "browser",
]

pytestmark = pytest.mark.browser


def test_attribute_browser_in_jupyterlab(lab, page, tmp_path):
    t0 = time.monotonic()
    open_and_run_all(page, lab, lab.add_file(write_notebook(tmp_path / "flint.ipynb", CELLS)), ROOT, timeout=180)
    wait_cells_idle(page, timeout=60)
    root = page.locator(ROOT)

    # 1. tau: more attributes are relevant at a higher tau, in the view and in Python
    slider = root.locator('input[data-role="tau-slider"]')
    slider.focus()
    press_and_expect(page, slider, "Home", 1, "v === 0")
    wait_python(page, "browser.tau", "1.1")
    few = root.get_attribute("data-relevant")
    assert few == python_value(page, "','.join(map(str, browser.relevant_attributes))")
    press_and_expect(page, slider, "End", 1, "v === 39")
    wait_python(page, "browser.tau", "5.0")
    page.wait_for_function("([el, few]) => el.dataset.relevant.split(',').length >= few.split(',').length",
                           arg=[root.element_handle(), few])
    assert root.get_attribute("data-relevant") == python_value(page, "','.join(map(str, browser.relevant_attributes))")

    # 2. a cell of the table: its attribute, its class in the gallery, its picture
    picture = root.locator('canvas[data-role="attribute-picture"]')
    before = canvas_data(picture)
    selected = int(root.get_attribute("data-attribute"))
    other = (selected + 1) % 12
    cell = root.locator(f'[data-role="relevance-cell"][data-class="3"][data-attribute="{other}"]')
    cell.focus()
    page.keyboard.press("Enter")
    page.wait_for_function("([el, j]) => el.dataset.attribute === j && el.dataset.classFilter === '3'",
                           arg=[root.element_handle(), str(other)])
    wait_canvas_change(page, picture, before)
    wait_python(page, "browser.attribute, browser.class_filter", f"{other} 3")
    shown = root.locator('[data-role="index-option"]:not([hidden])').count()
    assert shown == len(eval(python_value(page, "browser.gallery_rows")))  # noqa: S307 (a list printed by the kernel)
    root.locator('[data-role="clear-filter"]').focus()
    page.keyboard.press("Enter")
    wait_python(page, "browser.class_filter", "None")

    # 3. a relevance bar selects its attribute; Python drives the view
    bar = root.locator('[data-role="attribute-bar"]').nth(2)
    bar.focus()
    page.keyboard.press("Enter")
    wait_python(page, "browser.attribute", bar.get_attribute("data-attribute"))
    kernel_output(page, "browser.attribute = 0")
    page.wait_for_function("(el) => el.dataset.attribute === '0'", arg=root.element_handle())

    # 4. FLINT explains its own prediction: no target to choose
    assert root.locator('[data-role="target-select"]').is_disabled()
    assert "own prediction" in root.locator('[data-role="target-hint"]').text_content()

    finish_view(page, lab, root, "attribute_browser.png")
    print(f"attribute browser test: {time.monotonic() - t0:.1f}s")
