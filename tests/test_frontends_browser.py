"""End-to-end: every explorer in every front end users open, with a new user's settings.

JupyterLab 4 and Notebook 7, each in the light and the dark theme: one notebook holds every
explorer; each renders in the theme's colours and responds (a slider moved with the keyboard
changes its picture); re-running one explorer's cell leaves exactly one live view of it;
restarting the kernel and running everything again leaves exactly the new views; the browser
logs no error and the kernel refuses no message. Screenshots of every explorer in every front
end and theme go to ``artifacts/`` (the CI artifacts).
"""

from __future__ import annotations

import pytest

from _browser import (
    ARTIFACTS, assert_clean_console, assert_kernel_refused_nothing, canvas_data, require_browser,
    wait_canvas_change, write_notebook,
)
from _jupyterlab import ConsoleLog, JupyterLab, launch_chromium, open_and_run_all, wait_cells_idle

pytestmark = pytest.mark.browser

READY = '.crosslens[data-crosslens-ready="true"]'
VIEWS = {  # explorer -> (its root's class, a control, the canvas that follows it, the key that changes the control)
    "boundary": ("xl-boundary", 'input[data-role="t-slider"]', "frame-canvas", "End"),
    "counterfactual": ("xl-counterfactual", 'input[data-role="step-slider"]', "latent-frame-canvas", "Home"),
    "attribution": ("xl-attribution", 'input[data-role="threshold-slider"]', "hybrid-canvas", "Home"),
    "adversarial": ("xl-adversarial", 'input[data-role="k-slider"]', "image-canvas", "Home"),
    "attribute": ("xl-attribute", '[data-role="relevance-cell"]:not(.xl-fl-selected)', "attribute-picture", "Enter"),
}
CELLS = [
    "import torch\n"
    "torch.set_num_threads(1)\n"
    "from crosslens import AdversarialExplorer, AttributeBrowser, AttributionExplorer, BoundaryExplorer, CounterfactualExplorer\n"
    "from crosslens import kernel_side as ks\n"
    "x_train, _, x_test, _ = ks.load_digits_split()",
    "boundary = BoundaryExplorer(ks.load_pretrained('digits-invertible'), x_test[:4], reference=x_train)\n"
    "boundary",
    "counterfactual = CounterfactualExplorer(ks.load_pretrained('digits-mlp'), ks.load_pretrained('digits-flow'),\n"
    "                                        x_test[:3], threshold=0.9, max_steps=200)\n"
    "counterfactual",
    "cnn = ks.load_pretrained('digits-cnn')\n"
    "attribution = AttributionExplorer(cnn, ks.latent_counterfactual(cnn, ks.load_pretrained('digits-flow'), x_test[:3]))\n"
    "attribution",
    "adversarial = AdversarialExplorer(cnn, x_test[:3])\n"
    "adversarial",
    "attribute = AttributeBrowser(ks.load_pretrained('digits-flint'), x_test[:6], reference=x_test[:200])\n"
    "attribute",
]
CONFIGS = [("lab", "light"), ("lab", "dark"), ("notebook", "light"), ("notebook", "dark")]


def run_cell(page, index: int) -> None:
    """Run one cell of the current notebook, as Shift+Enter on it would."""
    page.evaluate(
        """async (index) => {
            const app = window.jupyterapp;
            const panel = app.shell.currentWidget;
            panel.content.activeCellIndex = index;
            await app.commands.execute('notebook:run-cell');
        }""",
        index,
    )


def restart_and_run_all(page) -> None:
    page.evaluate(
        """async () => {
            const panel = window.jupyterapp.shell.currentWidget;
            await panel.sessionContext.session.kernel.restart();
            await panel.sessionContext.ready;
            await window.jupyterapp.commands.execute('notebook:run-all-cells');
        }"""
    )


def respond(page, name: str, screenshot) -> None:
    """The explorer ``name`` redraws when its control changes (keyboard); a screenshot of it."""
    root_class, control, canvas_role, key = VIEWS[name]
    root = page.locator(f".{root_class}{READY[len('.crosslens'):]}")
    assert root.count() == 1, f"{root.count()} live {name} views"
    root.scroll_into_view_if_needed()
    if name == "counterfactual":
        page.wait_for_function("(el) => el.dataset.busy === 'false'", arg=root.element_handle(), timeout=60_000)
    slider, canvas = root.locator(control).first, root.locator(f'canvas[data-role="{canvas_role}"]')
    before = canvas_data(canvas)
    slider.focus()
    page.keyboard.press(key)
    wait_canvas_change(page, canvas, before)
    root.screenshot(path=str(screenshot))


def background_is_dark(page, selector: str) -> bool:
    color = page.locator(selector).first.evaluate("el => getComputedStyle(el).backgroundColor")
    red, green, blue = (float(v) for v in color[color.index("(") + 1:].rstrip(")").split(",")[:3])
    return red + green + blue < 200


@pytest.mark.parametrize("app, theme", CONFIGS)
def test_every_explorer_in_every_front_end_and_theme(app, theme, tmp_path):
    require_browser()
    from playwright.sync_api import sync_playwright

    notebook = write_notebook(tmp_path / "explorers.ipynb", CELLS)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with JupyterLab(app=app, theme=theme) as server, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
            page.set_default_timeout(30_000)
            log = ConsoleLog(page)
            open_and_run_all(page, server, server.add_file(notebook), READY, timeout=180)
            page.wait_for_function("([sel, n]) => document.querySelectorAll(sel).length === n", arg=[READY, len(VIEWS)], timeout=120_000)
            wait_cells_idle(page, timeout=120)
            assert background_is_dark(page, READY) == (theme == "dark")
            for name in VIEWS:
                respond(page, name, ARTIFACTS / f"{name}_{app}_{theme}.png")

            run_cell(page, 1)  # the boundary explorer's cell again: its old view goes, the new one works
            wait_cells_idle(page, timeout=120)
            page.wait_for_function("([sel, n]) => document.querySelectorAll(sel).length === n", arg=[READY, len(VIEWS)], timeout=60_000)
            respond(page, "boundary", tmp_path / "rerun.png")

            restart_and_run_all(page)
            wait_cells_idle(page, timeout=180)
            page.wait_for_function("([sel, n]) => document.querySelectorAll(sel).length === n", arg=[READY, len(VIEWS)], timeout=120_000)
            for name in VIEWS:
                respond(page, name, tmp_path / f"restarted_{name}.png")
            assert_clean_console(log)
            assert_kernel_refused_nothing(server)
        finally:
            browser.close()
