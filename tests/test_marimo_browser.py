"""End-to-end: marimo renders anywidget widgets too. A marimo app holding the boundary
explorer (``mo.ui.anywidget``), served by ``marimo run`` and opened in a real Chromium: the
view draws, its slider moved with the keyboard changes the frame, no console error."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from _browser import ARTIFACTS, canvas_data, require_browser, wait_canvas_change
from _jupyterlab import launch_chromium

pytestmark = pytest.mark.browser

APP = '''
import marimo

app = marimo.App()


@app.cell
def _():
    import marimo as mo
    import torch
    from crosslens import BoundaryExplorer, kernel_side as ks

    torch.set_num_threads(1)
    explorer = mo.ui.anywidget(BoundaryExplorer(ks.load_pretrained("digits-invertible"), ks.load_digits_split()[2][:4]))
    explorer
    return


if __name__ == "__main__":
    app.run()
'''


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_boundary_explorer_in_a_marimo_app(tmp_path):
    require_browser()
    from playwright.sync_api import sync_playwright

    (tmp_path / "app.py").write_text(APP)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "marimo", "run", "app.py", "--headless", "--host", "127.0.0.1", "--port", str(port),
         "--no-token"], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "MARIMO_SKIP_UPDATE_CHECK": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "marimo did not start"
                time.sleep(0.3)
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 1000})
                errors = []
                page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.goto(f"http://127.0.0.1:{port}/")
                root = page.locator('.crosslens[data-crosslens-ready="true"]')
                root.wait_for(timeout=90_000)
                slider, canvas = root.locator('input[data-role="t-slider"]'), root.locator('canvas[data-role="frame-canvas"]')
                before = canvas_data(canvas)
                slider.focus()
                page.keyboard.press("End")
                wait_canvas_change(page, canvas, before)
                assert root.get_attribute("data-t") == "2"
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                root.screenshot(path=str(ARTIFACTS / "boundary_marimo.png"))
                assert not errors, errors
            finally:
                browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
