"""Shared pieces of the real-browser tests: the JupyterLab and Chromium fixtures and page helpers.

The fixtures are registered through ``conftest.py``: one JupyterLab server per test module
(a server's workspace remembers the notebooks opened before), a fresh Chromium per test.
Skipped only outside CI when Chromium or Playwright is missing; in CI (``CI`` set) a
missing browser is a failure.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from _jupyterlab import CHROMIUM, ConsoleLog, JupyterLab, launch_chromium

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("CROSSLENS_ARTIFACTS", REPO / "artifacts"))

# Console errors we tolerate, each with the reason. Keep this list empty unless a message
# is proven to come from JupyterLab itself and not from crosslens.
BENIGN_CONSOLE_ERRORS: tuple[str, ...] = ()
# Uncaught page errors we tolerate: (message, a part of its stack), each with the reason.
BENIGN_PAGE_ERRORS: tuple[tuple[str, str], ...] = (
    # Notebook 7.6.5's keyboard-shortcuts plugin throws this on every page load, also for a
    # notebook holding only print(1) with no crosslens code loaded, in a plain `jupyter notebook`
    # as in the tests' isolated server: its pluginChanged handler reads `.schema` of a plugin
    # its settings registry does not hold (notebook_core.js, line 501).
    ("Cannot read properties of undefined (reading 'schema')", "/static/notebook/notebook_core."),
)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_browser() -> None:
    problems = []
    if not os.path.exists(CHROMIUM):
        problems.append(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("the playwright Python package is missing")
    if not problems:
        return
    message = "; ".join(problems)
    if in_ci():
        pytest.fail(f"browser test cannot run in CI: {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def lab():
    require_browser()
    server = JupyterLab()
    try:
        server.start()
        yield server
    finally:
        server.stop()
        leftovers = server.leftover_pids()
        server.cleanup()
        assert not leftovers, f"processes survived JupyterLab teardown: {leftovers}"


@pytest.fixture
def page(lab, request):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            pg = context.new_page()
            pg.set_default_timeout(30_000)
            pg.console_log = ConsoleLog(pg)
            yield pg
            rep = getattr(request.node, "rep_call", None)
            if rep is None or rep.failed:
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                try:
                    pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}-failure.png"),
                                  full_page=True)
                except Exception as exc:  # the failure itself matters more
                    print(f"could not save failure screenshot: {exc}", file=sys.stderr)
                log = pg.console_log
                print("console errors:", log.errors, "\npage errors:", log.page_errors,
                      "\nserver log tail:\n" + lab.log_tail(), file=sys.stderr)
        finally:
            browser.close()


# -- page helpers --------------------------------------------------------------------------

def canvas_data(locator) -> str:
    return locator.evaluate("c => c.toDataURL()")


def wait_canvas_change(page, locator, before: str, timeout_ms: int = 5_000) -> str:
    handle = locator.element_handle()
    try:
        page.wait_for_function(
            "([c, before]) => c.toDataURL() !== before", arg=[handle, before], timeout=timeout_ms
        )
    except Exception:
        raise AssertionError("the frame canvas did not change") from None
    return canvas_data(locator)


def read_prob(locator) -> float:
    value = locator.evaluate(
        "e => e.getAttribute('aria-valuenow') ?? e.dataset.value ?? e.getAttribute('value')"
    )
    assert value is not None, "target prob-bar exposes neither aria-valuenow nor data-value"
    return float(value)


def slider_state(slider) -> dict:
    return slider.evaluate(
        "s => ({value: Number(s.value), min: Number(s.min || 0), max: Number(s.max || 100),"
        " focused: document.activeElement === s})"
    )


def slider_track(slider):
    """``(x_of, y)``: the page x of the thumb at a fraction of ``slider``'s travel, and the track's middle y."""
    box = slider.bounding_box()
    assert box and box["width"] > 40, f"slider is not visible or too narrow: {box}"
    # Chromium's default thumb is ~16 px wide: its centre travels from left+8 to right-8.
    return (lambda frac: box["x"] + 8 + frac * (box["width"] - 16)), box["y"] + box["height"] / 2


def drag_slider(page, slider, fractions) -> None:
    """Drag ``slider``'s thumb with the mouse from the left end of its travel through ``fractions``."""
    x_of, y = slider_track(slider)
    page.mouse.move(x_of(0.0), y)
    page.mouse.down()
    for frac in fractions:
        page.mouse.move(x_of(frac), y, steps=3)
    page.mouse.up()


def press_and_expect(page, slider, key, times, condition):
    """Press ``key`` on the focused slider and wait until its value ``v`` meets ``condition``."""
    before = slider_state(slider)
    for _ in range(times):
        page.keyboard.press(key)
    try:
        wait_slider_value(page, slider, condition)
    except Exception:
        raise AssertionError(
            f"{key} on the focused slider did not change it (was {before}, now {slider_state(slider)}): "
            "JupyterLab probably swallowed the key"
        ) from None


def wait_slider_value(page, slider, predicate_js: str, timeout_ms: int = 3_000) -> None:
    page.wait_for_function(
        f"(s) => {{ const v = Number(s.value); return {predicate_js}; }}",
        arg=slider.element_handle(),
        timeout=timeout_ms,
    )


def run_in_kernel(page, code: str) -> None:
    """Send ``code`` to the notebook's kernel without waiting for it (as another cell would);
    ``window.__crosslensKernelDone`` turns true when the kernel has finished it."""
    page.evaluate(
        """(code) => {
            const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
            window.__crosslensKernelDone = false;
            kernel.requestExecute({code}).done.then(() => { window.__crosslensKernelDone = true; });
        }""",
        code,
    )


def kernel_output(page, code: str, timeout_ms: int = 30_000) -> str:
    """Run ``code`` in the notebook's kernel (on the main shell, as a cell would) and return what
    it printed; raises with the kernel's error if it failed. Reads the kernel's own state, not
    the view's."""
    return page.evaluate(
        """async ([code, timeout]) => {
            const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
            const future = kernel.requestExecute({code, store_history: false});
            let out = '', error = null;
            future.onIOPub = (msg) => {
                if (msg.header.msg_type === 'stream') out += msg.content.text;
                else if (msg.header.msg_type === 'error') error = `${msg.content.ename}: ${msg.content.evalue}`;
            };
            const timer = new Promise((_, reject) =>
                setTimeout(() => reject(new Error(`the kernel did not answer within ${timeout} ms`)), timeout));
            await Promise.race([future.done, timer]);
            if (error) throw new Error(error);
            return out;
        }""",
        [code, timeout_ms],
    )


def python_value(page, expression: str) -> str:
    """``str(expression)`` as the notebook's kernel prints it."""
    return kernel_output(page, f"print({expression})").strip()


def wait_python(page, expression: str, expected: str, timeout: float = 15.0) -> None:
    """Poll the kernel until ``expression`` prints ``expected`` (the kernel's state, not the view's)."""
    deadline = time.monotonic() + timeout
    while (value := python_value(page, expression)) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"{expression} is {value!r} in the kernel, expected {expected!r}")
        page.wait_for_timeout(100)


def assert_clean_console(log: ConsoleLog) -> None:
    errors = [e for e in log.errors if not any(b in e for b in BENIGN_CONSOLE_ERRORS)]
    page_errors = [e for e in log.page_errors
                   if not any(e.startswith(message) and where in e for message, where in BENIGN_PAGE_ERRORS)]
    assert not page_errors, f"uncaught page errors: {page_errors}"
    assert not errors, f"browser console errors: {errors}"


def assert_kernel_refused_nothing(lab) -> None:
    """No message from the page was turned away by the kernel: ipykernel logs a request it
    cannot route ("Cannot handle comm_msg <id>: ...") to the server log and drops it (a Stop
    button or target select that does nothing)."""
    refused = [line for line in lab.log_tail(n=100_000).splitlines() if "Cannot handle" in line]
    assert not refused, "the kernel dropped messages from the page:\n" + "\n".join(refused)


def finish_view(page, lab, root, screenshot: str) -> None:
    """The end of a view's test: a screenshot of it to ``artifacts/<screenshot>``, then no error
    logged by the browser and no message of the page refused by the kernel."""
    root.scroll_into_view_if_needed()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    root.screenshot(path=str(ARTIFACTS / screenshot))
    assert_clean_console(page.console_log)
    assert_kernel_refused_nothing(lab)


def write_notebook(path: Path, cells: list[str]) -> Path:
    """A notebook of code cells (no outputs) for a test to open in Lab."""
    notebook = {
        "cells": [{"cell_type": "code", "execution_count": None, "id": f"cell-{i}", "metadata": {}, "outputs": [],
                   "source": source} for i, source in enumerate(cells)],
        "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook, indent=1))
    return path
