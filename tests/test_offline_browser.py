"""End-to-end: every explorer saved with ``save_html`` works from disk in a real Chromium with
the network off, in the light and the dark colour scheme: the view draws, a control changed with
the keyboard changes the picture, the controls that need the kernel are disabled and say so,
and the browser logs no error."""

from __future__ import annotations

import pytest
import torch

import crosslens
from crosslens import kernel_side as ks

from _browser import ARTIFACTS, canvas_data, require_browser, wait_canvas_change
from _jupyterlab import launch_chromium

pytestmark = pytest.mark.browser

VIEWS = {  # explorer -> (a control, the canvas that follows it, the key that changes the control, presses)
    "boundary": ('input[data-role="t-slider"]', "frame-canvas", "ArrowRight", 12),
    "counterfactual": ('input[data-role="step-slider"]', "latent-frame-canvas", "ArrowLeft", 12),
    "attribution": ('input[data-role="threshold-slider"]', "hybrid-canvas", "ArrowLeft", 12),
    "adversarial": ('input[data-role="k-slider"]', "image-canvas", "ArrowLeft", 12),
    "attribute": ('[data-role="relevance-cell"]:not(.xl-fl-selected)', "attribute-picture", "Enter", 1),
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One saved page per explorer, built on a few test digits."""
    folder = tmp_path_factory.mktemp("saved")
    x = ks.load_digits_split()[2][:4]
    boundary = crosslens.BoundaryExplorer(ks.load_pretrained("digits-invertible"), x)
    counterfactual = crosslens.CounterfactualExplorer(ks.load_pretrained("digits-mlp"), ks.load_pretrained("digits-flow"),
                                                      x, threshold=0.9, max_steps=300)
    assert counterfactual.wait(120)
    cnn = ks.load_pretrained("digits-cnn")
    attribution = crosslens.AttributionExplorer(cnn, ks.latent_counterfactual(cnn, ks.load_pretrained("digits-flow"), x))
    adversarial = crosslens.AdversarialExplorer(cnn, x)
    attribute = crosslens.AttributeBrowser(ks.load_pretrained("digits-flint"), x, reference=ks.load_digits_split()[2])
    explorers = (("boundary", boundary), ("counterfactual", counterfactual), ("attribution", attribution),
                 ("adversarial", adversarial), ("attribute", attribute))
    pages = {name: explorer.save_html(folder / f"{name}.html", title=f"{name} explorer") for name, explorer in explorers}
    sizes = "".join(f"saved {name} explorer (4 digits): {path.stat().st_size / 1024:.0f} KiB\n" for name, path in pages.items())
    print(sizes, end="")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "saved_sizes.txt").write_text(sizes)
    return pages


@pytest.fixture(scope="module")
def chromium():
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("name", sorted(VIEWS))
def test_a_saved_explorer_works_from_disk_without_network(saved, chromium, name, scheme):
    context = chromium.new_context(offline=True, color_scheme=scheme, viewport={"width": 1100, "height": 1000})
    requests = []
    context.route("**/*", lambda route: (requests.append(route.request.url), route.continue_()
                                         if route.request.url.startswith(("file:", "blob:")) else route.abort()))
    page = context.new_page()
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(saved[name].as_uri())
        root = page.locator('.crosslens[data-crosslens-ready="true"]')
        root.wait_for(timeout=15_000)
        control, canvas_role, key, presses = VIEWS[name]
        slider, canvas = root.locator(control).first, root.locator(f'canvas[data-role="{canvas_role}"]')
        before = canvas_data(canvas)
        slider.focus()
        for _ in range(presses):
            page.keyboard.press(key)
        wait_canvas_change(page, canvas, before)
        assert root.locator('[data-role="target-select"]').is_disabled()
        assert "needs the live notebook" in root.locator('[data-role="target-hint"]').text_content()
        assert root.get_attribute("data-busy") == "false"
        background = root.evaluate("el => getComputedStyle(el).backgroundColor")
        red, green, blue = (float(v) for v in background[background.index("(") + 1:].rstrip(")").split(",")[:3])
        assert (red + green + blue < 200) == (scheme == "dark"), background
        assert not [url for url in requests if not url.startswith(("file:", "blob:"))], requests
        assert not errors, errors
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"saved_{name}_{scheme}.png"), full_page=True)
    finally:
        context.close()


def test_saving_writes_a_png_of_the_figure_and_names_bad_paths(saved, tmp_path):
    explorer = crosslens.BoundaryExplorer(ks.load_pretrained("moons-invertible"), torch.tensor([[0.5, 0.2]]))
    png = explorer.save_png(tmp_path / "moons.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="path must name a .png file"):
        explorer.save_png(tmp_path / "moons.jpg")
    with pytest.raises(ValueError, match="path must name an .html file"):
        explorer.save_html(tmp_path / "moons.txt")
    with pytest.raises(ValueError, match="folder .* does not exist"):
        explorer.save_html(tmp_path / "missing" / "moons.html")
