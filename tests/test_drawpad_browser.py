"""End-to-end: a DrawPad and the explorers following it, in a real JupyterLab and Chromium.

A small notebook shows a blank pad next to a BoundaryExplorer (``HBox([pad, explorer])``)
and, in further outputs, a CounterfactualExplorer, an AttributionExplorer, an
AdversarialExplorer and an AttributeBrowser following the same pad. The test draws a vertical bar WITH THE MOUSE; then the boundary view's frame (t = 0: the
input itself) is classified 1 instead of the blank pad's 2, the counterfactual explorer searched
again for the new drawing, the attribution explorer made and attributed a new pair for it and
the adversarial explorer attacked and segmented it and the attribute browser interpreted it (read
from the kernel, and their views say so), and ``pad.value``, read from the kernel, is the bar the
mouse drew (area averaged as the test computes it). After a page reload the pad shows its
picture again. Then the keyboard alone: Tab onto the pad (a visible focus ring), move the
cursor, draw a stroke with Space and the arrows, Tab out onto Undo (the canvas keeps Tab
otherwise), press it, and move the brush slider with the arrow keys. The pad follows the
light and the dark theme; no console error; screenshots go to ``artifacts/drawpad*.png``.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from _browser import ARTIFACTS, assert_clean_console, assert_kernel_refused_nothing, kernel_output, write_notebook
from _jupyterlab import open_and_run_all, reload_lab, save_notebook, wait_cells_idle
from crosslens.drawpad import stroke_coverage

BOUNDARY = '.xl-boundary[data-crosslens-ready="true"]'
COUNTERFACTUAL = '.xl-counterfactual[data-crosslens-ready="true"]'
ATTRIBUTION = '.xl-attribution[data-crosslens-ready="true"]'
ADVERSARIAL = '.xl-adversarial[data-crosslens-ready="true"]'
ATTRIBUTE = '.xl-attribute[data-crosslens-ready="true"]'
PAD_CANVAS = ".xl-drawpad canvas"

CELLS = [
    "import ipywidgets, torch\n"
    "from crosslens import AdversarialExplorer, AttributeBrowser, AttributionExplorer, BoundaryExplorer, CounterfactualExplorer\n"
    "from crosslens import DrawPad\n"
    "from crosslens import kernel_side as ks\n"
    "torch.set_num_threads(1)\n"
    "x_train = ks.load_digits_split()[0]\n"
    "pad = DrawPad(debounce=0.3)\n"
    "explorer = BoundaryExplorer(ks.load_pretrained('digits-invertible'), pad, reference=x_train)\n"
    "ipywidgets.HBox([pad, explorer])",
    "counterfactuals = CounterfactualExplorer(ks.load_pretrained('digits-mlp'), ks.load_pretrained('digits-flow'),\n"
    "                                         pad, max_steps=300)\n"
    "counterfactuals",
    "attributions = AttributionExplorer(ks.load_pretrained('digits-cnn'), pad, generator=ks.load_pretrained('digits-flow'),\n"
    "                                   methods=['ig', 'd_ig', 'residual'])\n"
    "attributions",
    "adversarial = AdversarialExplorer(ks.load_pretrained('digits-cnn'), pad)\n"
    "adversarial",
    "flint = ks.load_pretrained('digits-flint')\n"
    "attributes_of = AttributeBrowser(flint, pad, reference=x_train[:300])\n"
    "attributes_of",
]

pytestmark = pytest.mark.browser


def luminance(css: str) -> float:
    """Relative brightness in [0, 1] of a computed CSS colour ``rgb(r, g, b)`` / ``rgba(...)``."""
    r, g, b = (float(v) for v in css[css.index("(") + 1:-1].split(",")[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def kernel_json(page, expression: str):
    return json.loads(kernel_output(page, f"import json; print(json.dumps({expression}))"))


def wait_kernel(page, expression: str, timeout: float = 20.0, what: str = ""):
    """Poll ``expression`` in the kernel until it is true."""
    deadline = time.monotonic() + timeout
    while True:
        value = kernel_json(page, expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or expression} still false after {timeout:g} s")
        page.wait_for_timeout(100)


def draw_with_mouse(page, canvas, points, scale: int) -> list[tuple[float, float]]:
    """Drag the mouse through ``points`` (input pixels) on the pad; returns them in display pixels
    as the page placed them."""
    box = canvas.bounding_box()
    width = canvas.evaluate("c => c.width")
    ratio = box["width"] / width  # CSS pixels per display pixel
    at = [(box["x"] + x * scale * ratio, box["y"] + y * scale * ratio) for x, y in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for x, y in at[1:]:
        page.mouse.move(x, y, steps=10)
    page.mouse.up()
    return [((x - box["x"]) / ratio, (y - box["y"]) / ratio) for x, y in at]


def test_drawing_on_the_pad_drives_both_explorers(lab, page, tmp_path):
    t0 = time.monotonic()
    name = lab.add_file(write_notebook(tmp_path / "drawpad.ipynb", CELLS))
    open_and_run_all(page, lab, name, BOUNDARY, timeout=120)
    page.wait_for_selector(COUNTERFACTUAL, timeout=60_000)
    page.wait_for_selector(ATTRIBUTION, timeout=60_000)
    page.wait_for_selector(ADVERSARIAL, timeout=60_000)
    page.wait_for_selector(ATTRIBUTE, timeout=60_000)
    wait_cells_idle(page, timeout=60)
    boundary = page.locator(BOUNDARY)
    canvas = page.locator(PAD_CANVAS)
    assert canvas.count() == 1
    canvas.scroll_into_view_if_needed()
    blank = boundary.get_attribute("data-frame-class")
    assert blank == "2", f"the blank pad should be classified 2, got {blank}"
    wait_kernel(page, "not counterfactuals.busy", what="the first counterfactual search")

    # 1. A vertical bar drawn with the mouse: the boundary view now shows a 1.
    scale = kernel_json(page, "pad.scale")
    drawn = draw_with_mouse(page, canvas, [(4.0, 1.0), (4.0, 7.0)], scale)
    page.wait_for_function("(el) => el.dataset.frameClass === '1'", arg=boundary.element_handle(), timeout=15_000)
    wait_kernel(page, "not explorer.busy and not counterfactuals.busy and not attributions.busy and not adversarial.busy "
                "and not attributes_of.busy",
                what="the explorers' recomputation")
    # pad.value, read from the kernel, is the bar the mouse drew
    value = np.array(kernel_json(page, "pad.value.flatten().tolist()")).reshape(8, 8)
    brush = kernel_json(page, "pad.brush")
    coverage = stroke_coverage(np.array(drawn), brush * scale / 2, 8 * scale, 8 * scale)
    expected = coverage.reshape(8, scale, 8, scale).mean(axis=(1, 3))
    difference = float(np.abs(value - expected).max())  # the page may round the mouse positions it reports
    assert difference < 0.08, f"pad.value\n{value.round(2)}\nexpected\n{expected.round(2)}"
    assert value[1:7, 3:5].min() > 0.4 and value[:, :2].max() == 0 and value[:, 6:].max() == 0
    followed = kernel_json(page, "[bool(torch.equal(explorer.x[0], pad.value)), bool(torch.equal(counterfactuals.x[0], "
                                 "pad.value)), explorer.predicted.tolist(), counterfactuals.predicted.tolist(), "
                                 "counterfactuals.row_status]")
    assert followed[:2] == [True, True] and followed[2] == [1], followed
    print("followed:", followed)
    attributed = kernel_json(page, "[bool(torch.equal(attributions.x[0], pad.value)), attributions.predicted.tolist(), "
                                   "int(attributions.targets[0]), int(ks.load_pretrained('digits-cnn')(attributions.x_cf).argmax())]")
    assert attributed[0] and attributed[2] == attributed[3] != attributed[1][0], attributed
    page.wait_for_function("(cls) => document.querySelector('.xl-attribution [data-role=\"status\"]').textContent"
                           ".includes(`x predicted ${cls} →`)", arg=attributed[1][0], timeout=15_000)
    attacked = kernel_json(page, "[bool(torch.equal(adversarial.x[0], pad.value)), adversarial.predicted.tolist()]")
    assert attacked == [True, [1]], attacked
    page.wait_for_function("() => document.querySelector('.xl-adversarial [data-role=\"status\"]').textContent"
                           ".includes('predicted 1 ·')", timeout=15_000)
    interpreted = kernel_json(page, "[bool(torch.equal(attributes_of.x[0], pad.value)), attributes_of.predicted.tolist(), "
                                    "int(flint.interpret(pad.value[None]).argmax())]")
    assert interpreted[0] and interpreted[1] == [interpreted[2]], interpreted
    page.wait_for_function("(c) => document.querySelector('.xl-attribute [data-role=\"status\"]').textContent"
                           ".includes(`g predicts ${c} ·`)", arg=str(interpreted[2]), timeout=15_000)

    # 2. A page reload: ipycanvas' new views start blank; the pad draws its picture again
    save_notebook(page)
    reload_lab(page, BOUNDARY, count=1)
    canvas = page.locator(PAD_CANVAS)
    page.wait_for_function(f"(c) => {{ const d = c.getContext('2d').getImageData({4 * scale}, {4 * scale}, 1, 1).data;"
                           " return d[3] === 255 && d[0] < 50; }", arg=canvas.element_handle(), timeout=10_000)
    assert page.locator(BOUNDARY).get_attribute("data-frame-class") == "1"

    # 3. The keyboard alone.
    toggle = page.locator(".xl-drawpad button", has_text="Keyboard help")
    toggle.focus()
    page.keyboard.press("Tab")
    page.wait_for_function("() => document.activeElement && document.activeElement.matches('.xl-drawpad canvas')")
    assert canvas.evaluate("c => getComputedStyle(c).outlineWidth") == "3px", "no visible focus ring on the pad"
    strokes = kernel_json(page, "pad.history_length")
    for key in ["ArrowLeft"] * 4 + ["ArrowUp"] * 4 + [" "] + ["ArrowDown"] * 8 + [" "]:
        page.keyboard.press(key)
    wait_kernel(page, f"pad.history_length == {strokes + 1}", what="the keyboard stroke")
    page.wait_for_function("() => document.querySelector('[data-role=\"drawpad-status\"]').textContent"
                           ".includes('cursor at x 2, y 6, pen up')")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator(".xl-drawpad").screenshot(path=str(ARTIFACTS / "drawpad_keyboard.png"))
    page.keyboard.press("Tab")
    page.wait_for_function("() => document.activeElement && document.activeElement.textContent === 'Undo'")
    page.keyboard.press("Enter")
    wait_kernel(page, f"pad.history_length == {strokes}", what="Undo pressed with the keyboard")
    slider = page.locator(".xl-drawpad .noUi-handle")
    slider.focus()
    page.keyboard.press("ArrowRight")
    wait_kernel(page, f"pad.brush > {brush}", what="the brush slider moved with the keyboard")

    # 4. Both themes: the pad's frame and text follow JupyterLab's theme variables.
    wait_kernel(page, "not explorer.busy and not counterfactuals.busy", what="the explorers' last recomputation")
    wait_cells_idle(page, timeout=30)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    output = page.locator(".jp-OutputArea-output").first
    colors = {}
    for theme, light in (("JupyterLab Light", True), ("JupyterLab Dark", False)):
        page.evaluate("(theme) => window.jupyterapp.commands.execute('apputils:change-theme', {theme})", theme)
        page.wait_for_function("(light) => document.body.dataset.jpThemeLight === String(light)", arg=light)
        page.wait_for_timeout(300)  # the theme's stylesheet applies
        colors[theme] = page.locator(".xl-drawpad").evaluate(
            "el => { const s = getComputedStyle(el); return [s.backgroundColor, s.color]; }")
        output.screenshot(path=str(ARTIFACTS / ("drawpad.png" if light else "drawpad_dark.png")))
    light_bg, light_fg = (luminance(c) for c in colors["JupyterLab Light"])
    dark_bg, dark_fg = (luminance(c) for c in colors["JupyterLab Dark"])
    assert light_bg > 0.8 and dark_bg < 0.3 and light_fg < 0.4 and dark_fg > 0.6, colors
    assert_clean_console(page.console_log)
    assert_kernel_refused_nothing(lab)
    print(f"drawpad browser test: pad.value within {difference:.3f} of the drawn bar, {time.monotonic() - t0:.1f}s")
