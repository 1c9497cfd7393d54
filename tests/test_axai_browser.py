"""End-to-end: the AdversarialExplorer in a real JupyterLab, driven by a real Chromium.

A small notebook shows the explorer on a few digits. Checks: the tail and K sliders (keyboard)
change the top segments in the view and in Python; hovering a segment on the image with the
mouse, or focusing its bar with the keyboard, highlights it; the step slider walks the attack
path; the eps slider reruns the attack in the kernel (busy, then Python's perturbation has the
new norm); the target select explains another class; the browser logs no error; a
screenshot goes to ``artifacts/adversarial_explorer.png``.
"""

from __future__ import annotations

import time

import pytest

from _browser import (
    canvas_data, finish_view, press_and_expect, python_value,
    wait_canvas_change, wait_python, write_notebook,
)
from _jupyterlab import open_and_run_all, wait_cells_idle

ROOT = '.xl-adversarial[data-crosslens-ready="true"]'

CELLS = [
    "import torch\n"
    "from crosslens import AdversarialExplorer, kernel_side as ks\n"
    "torch.set_num_threads(1)\n"
    "cnn = ks.load_pretrained('digits-cnn')\n"
    "explorer = AdversarialExplorer(cnn, ks.load_digits_split()[2][:4])\n"
    "explorer",
]

pytestmark = pytest.mark.browser


def test_adversarial_explorer_in_jupyterlab(lab, page, tmp_path):
    t0 = time.monotonic()
    open_and_run_all(page, lab, lab.add_file(write_notebook(tmp_path / "axai.ipynb", CELLS)), ROOT, timeout=180)
    wait_cells_idle(page, timeout=60)
    root = page.locator(ROOT)
    image = root.locator('canvas[data-role="image-canvas"]')
    slider = lambda role: root.locator(f'input[data-role="{role}"]')  # noqa: E731

    # 1. tail and K: the top segments change in the view and in Python
    top = root.get_attribute("data-top")
    assert top == python_value(page, "','.join(map(str, explorer.ranking[:5].tolist()))")
    slider("tail-slider").focus()
    press_and_expect(page, slider("tail-slider"), "End", 1, "v === 49")
    page.wait_for_function("(el) => el.dataset.tail === '0.5'", arg=root.element_handle())
    wait_python(page, "explorer.tail", "0.5")
    slider("k-slider").focus()
    press_and_expect(page, slider("k-slider"), "ArrowLeft", 2, "v === 2")
    page.wait_for_function("(el) => el.dataset.k === '3'", arg=root.element_handle())
    wait_python(page, "explorer.k, ','.join(map(str, explorer.ranking[:3].tolist()))",
                f"3 {root.get_attribute('data-top')}")

    # 2. hover a segment with the mouse, then focus a bar with the keyboard: it is highlighted
    before = canvas_data(image)
    box = image.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] * 0.9)
    page.wait_for_function("(el) => el.dataset.hover === '15'", arg=root.element_handle())  # bottom-right 2 x 2 block
    wait_canvas_change(page, image, before)
    page.mouse.move(0, 0)
    page.wait_for_function("(el) => el.dataset.hover === '-1'", arg=root.element_handle())
    bar = root.locator('[data-role="segment-bar"]').nth(1)
    bar.focus()
    page.wait_for_function("([el, s]) => el.dataset.hover === s", arg=[root.element_handle(), bar.get_attribute("data-segment")])

    # 3. the attack path
    frame = root.locator('canvas[data-role="frame-canvas"]')
    before = canvas_data(frame)
    slider("step-slider").focus()
    press_and_expect(page, slider("step-slider"), "Home", 1, "v === 0")
    wait_canvas_change(page, frame, before)
    wait_python(page, "explorer.step", "0")

    # 4. eps reruns the attack in the kernel
    slider("eps-slider").focus()
    press_and_expect(page, slider("eps-slider"), "Home", 1, "v === 0")
    wait_python(page, "explorer.eps", "0.005")
    page.wait_for_function("(el) => el.dataset.busy === 'false'", arg=root.element_handle(), timeout=30_000)
    wait_python(page, "round(explorer.perturbation.norm().item(), 4)", "0.005")

    # 5. another class explained
    select = root.locator('[data-role="target-select"]')
    other = next(o for o in select.locator("option:not([disabled])").evaluate_all("os => os.map(o => o.value)")
                 if o != "default")
    select.select_option(other)
    wait_python(page, "int(explorer.targets[0])", other, timeout=30)
    page.wait_for_function("([el, c]) => el.querySelector('[data-role=\"status\"]').textContent"
                           ".includes(`explaining ${c}`)", arg=[root.element_handle(), other])
    assert root.locator('[data-role="error"]').is_hidden()

    finish_view(page, lab, root, "adversarial_explorer.png")
    print(f"adversarial browser test: {time.monotonic() - t0:.1f}s")
