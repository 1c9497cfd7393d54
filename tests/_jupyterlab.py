"""Drive a real JupyterLab or Notebook 7 in a real Chromium (Playwright, sync API) for end-to-end tests.

Everything lives under one temporary directory: Jupyter config/data/runtime dirs, Lab user
settings and workspaces, the server's root dir (a *copy* of the notebook, so a committed
notebook is never written) and the server log. Autosave is off as well.

The kernel is the interpreter running pytest: a ``python3`` kernelspec pointing at
``sys.executable`` is registered in the isolated data dir, which Jupyter searches first.

Teardown stops the server's process group (SIGTERM, then SIGKILL) and then any process
whose command line names the temporary directory (kernels run in their own session, and
their connection files live in our runtime dir), so nothing survives a test.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

# Lab user settings written before start: no autosave (never write a notebook), no news, no
# extension manager (it would query PyPI). Everything else keeps a new user's defaults: the
# tests must see what users see.
USER_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/extensionmanager-extension/plugin.jupyterlab-settings": {"enabled": False},
}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pids_mentioning(needle: str) -> list[int]:
    """Pids of processes whose command line contains ``needle`` (Linux /proc only)."""
    pids = []
    proc = Path("/proc")
    if not proc.is_dir():
        return pids
    me = os.getpid()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline:
            pids.append(int(entry.name))
    return pids


APPS = {  # front end -> (module to run, its app class for command-line settings, notebook URL prefix)
    "lab": ("jupyterlab", "LabApp", "lab/tree"),
    "notebook": ("notebook", "JupyterNotebookApp", "notebooks"),
}
THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}


class JupyterLab:
    """A JupyterLab (``app="lab"``) or Notebook 7 (``app="notebook"``) server in an isolated
    temporary tree, with a new user's settings but for ``theme`` ("light", the default, or
    "dark"). Use as a context manager."""

    def __init__(self, startup_timeout: float = 90.0, app: str = "lab", theme: str = "light"):
        self.app, self.theme = app, theme
        self.startup_timeout = startup_timeout
        self.tmp = Path(tempfile.mkdtemp(prefix="crosslens-lab-"))
        self.root = self.tmp / "root"
        self.token = secrets.token_hex(24)
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.tmp / "jupyterlab.log"
        self.proc: subprocess.Popen | None = None
        self._log = None

    # -- setup -------------------------------------------------------------------------
    def _prepare(self) -> dict:
        dirs = {
            name: self.tmp / name
            for name in ("config", "data", "runtime", "settings", "workspaces", "ipython")
        }
        for d in dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)
        self.dirs = dirs

        kernel_dir = dirs["data"] / "kernels" / "python3"
        kernel_dir.mkdir(parents=True)
        (kernel_dir / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": "Python 3 (ipykernel)",
                    "language": "python",
                    "metadata": {"debugger": False},
                }
            )
        )
        settings = dict(USER_SETTINGS)
        if self.app == "notebook":  # Notebook 7 has no extension manager, and fails on settings of a plugin it lacks
            settings.pop("@jupyterlab/extensionmanager-extension/plugin.jupyterlab-settings", None)
        if self.theme != "light":
            settings["@jupyterlab/apputils-extension/themes.jupyterlab-settings"] = {"theme": THEMES[self.theme]}
        for rel, value in settings.items():
            path = dirs["settings"] / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value))

        env = dict(os.environ)
        env.update(
            JUPYTER_CONFIG_DIR=str(dirs["config"]),
            JUPYTER_DATA_DIR=str(dirs["data"]),
            JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
            IPYTHONDIR=str(dirs["ipython"]),
            JUPYTER_PLATFORM_DIRS="1",
            # In a venv jupyter_core would search the env's share/jupyter before our data
            # dir, and the env's generic python3 kernelspec would win over ours.
            JUPYTER_PREFER_ENV_PATH="0",
            PYTHONUNBUFFERED="1",
        )
        # Do not let a user-level JUPYTER_PATH / config override the isolated setup.
        env.pop("JUPYTER_PATH", None)
        env.pop("JUPYTER_CONFIG_PATH", None)
        # The kernel must import the same crosslens as the tests (editable or not).
        return env

    def add_file(self, src: str | os.PathLike, name: str | None = None) -> str:
        """Copy ``src`` into the server root; return its path relative to the root."""
        src = Path(src)
        dest = self.root / (name or src.name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
        return dest.relative_to(self.root).as_posix()

    def start(self) -> "JupyterLab":
        env = self._prepare()
        module, app, _ = APPS[self.app]
        cmd = [
            sys.executable,
            "-m",
            module,
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--port-retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            f"--{app}.expose_app_in_browser=True",
            f"--{app}.user_settings_dir={self.dirs['settings']}",
            f"--{app}.workspaces_dir={self.dirs['workspaces']}",
            "--ServerApp.terminals_enabled=False",
            "--MappingKernelManager.cull_idle_timeout=0",
        ]
        if self.app == "lab":
            cmd += ["--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                    "--LabApp.extension_manager=readonly"]
        else:  # Notebook 7's page reads its settings through JupyterLab's server extension
            cmd += [f"--LabApp.user_settings_dir={self.dirs['settings']}",
                    f"--LabApp.workspaces_dir={self.dirs['workspaces']}"]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"JupyterLab exited with {self.proc.returncode} during startup:\n{self.log_tail()}"
                )
            try:
                status = self.api("GET", "/api/status")
                if status is not None:
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"JupyterLab did not answer within {self.startup_timeout}s:\n{self.log_tail()}"
                )
            time.sleep(0.25)
        return self

    # -- helpers -----------------------------------------------------------------------
    def api(self, method: str, path: str, body=None, timeout: float = 10.0):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else {}

    def url(self, notebook: str) -> str:
        return f"{self.base_url}/{APPS[self.app][2]}/{notebook}?token={self.token}"

    def log_tail(self, n: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])

    # -- teardown ----------------------------------------------------------------------
    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # Ask the server to shut its kernels down cleanly first.
            try:
                for k in self.api("GET", "/api/kernels", timeout=5):
                    self.api("DELETE", f"/api/kernels/{k['id']}", timeout=10)
            except Exception:
                pass
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)
        # Kernels live in their own sessions; their command lines name our runtime dir.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = _pids_mentioning(str(self.tmp))
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            end = time.monotonic() + 5
            while time.monotonic() < end and _pids_mentioning(str(self.tmp)):
                time.sleep(0.1)
        if self._log is not None:
            self._log.close()
            self._log = None

    def leftover_pids(self) -> list[int]:
        return _pids_mentioning(str(self.tmp))

    def cleanup(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "JupyterLab":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


# -- browser side ----------------------------------------------------------------------

def launch_chromium(playwright):
    return playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )


class ConsoleLog:
    """Collects console errors and uncaught page errors from a Playwright page."""

    def __init__(self, page):
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.page_errors: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.page_errors.append(f"{exc.message}\n{exc.stack}"))

    def _on_console(self, msg) -> None:
        if msg.type == "error":
            loc = msg.location or {}
            self.errors.append(f"{msg.text} @ {loc.get('url', '')}:{loc.get('lineNumber', '')}")
        elif msg.type == "warning":
            self.warnings.append(msg.text)


_RUN_ALL_JS = """
async () => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  if (!panel || !panel.sessionContext) throw new Error('current widget is not a notebook');
  await panel.context.ready;
  await panel.sessionContext.ready;
  if (!panel.sessionContext.session || !panel.sessionContext.session.kernel)
    throw new Error('notebook has no kernel (kernel selection dialog?)');
  await app.commands.execute('notebook:run-all-cells');
  return panel.sessionContext.session.kernel.name;
}
"""

_STATE_JS = """
(sel) => {
  const ready = document.querySelector(sel) !== null;
  const panel = window.jupyterapp.shell.currentWidget;
  const errs = [];
  let busy = false;
  if (panel && panel.content && panel.content.widgets) {
    for (const cell of panel.content.widgets) {
      if (cell.model.type !== 'code') continue;
      const outs = cell.model.outputs.toJSON();
      for (const o of outs)
        if (o.output_type === 'error')
          errs.push(o.ename + ': ' + o.evalue + '\\n' + (o.traceback || []).join('\\n')
                    .replace(/\\u001b\\[[0-9;]*m/g, ''));
      if (cell.promptNode && cell.promptNode.textContent.includes('*')) busy = true;
    }
  }
  return {ready, errs, busy};
}
"""


def _wait_for_notebook(page) -> None:
    """Wait until Lab has started and its current widget is a notebook with cells."""
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell", timeout=60_000)
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget;"
        " return w && w.sessionContext && w.content && w.content.widgets.length > 0; }",
        timeout=60_000,
    )


def save_notebook(page) -> None:
    """Save the current notebook (as Ctrl+S would) and wait until Lab has written it."""
    page.evaluate(
        """async () => {
            const panel = window.jupyterapp.shell.currentWidget;
            await window.jupyterapp.commands.execute('docmanager:save');
            if (panel.context.model.dirty) throw new Error('the notebook is still dirty after saving');
        }"""
    )


def reload_lab(page, ready_selector: str, count: int, timeout: float = 90.0) -> dict:
    """Reload the page, as a user would, and wait until Lab has restored the current notebook,
    reconnected to its (running) kernel and ``count`` elements match ``ready_selector`` again
    (widget views re-render from the kernel's live comms).

    Should the browser ask whether to leave a page with unsaved changes, the test answers
    "Leave" (save first to avoid it). Returns ``{"dialogs": [...], "seconds": ...}``.
    """
    dialogs: list[str] = []

    def leave(dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        if dialog.type == "beforeunload":
            dialog.accept()
        else:
            dialog.dismiss()

    start = time.monotonic()
    page.on("dialog", leave)
    try:
        page.reload(wait_until="domcontentloaded", timeout=60_000)
    finally:
        page.remove_listener("dialog", leave)
    _wait_for_notebook(page)
    page.evaluate(
        """async () => {
            const context = window.jupyterapp.shell.currentWidget.sessionContext;
            await context.ready;
            if (!context.session || !context.session.kernel) throw new Error('the notebook has no kernel after reload');
        }"""
    )
    page.wait_for_function(
        "([sel, n]) => document.querySelectorAll(sel).length === n", arg=[ready_selector, count],
        timeout=timeout * 1000,
    )
    return {"dialogs": dialogs, "seconds": round(time.monotonic() - start, 1)}


def open_and_run_all(page, lab: JupyterLab, notebook: str, ready_selector: str,
                     timeout: float = 120.0) -> str:
    """Open ``notebook`` in Lab, run all cells, wait for ``ready_selector``.

    Fails early, with the traceback, if a cell writes an error to its output.
    Returns the kernel name used.
    """
    page.goto(lab.url(notebook), wait_until="domcontentloaded", timeout=60_000)
    _wait_for_notebook(page)
    kernel_name = page.evaluate(_RUN_ALL_JS)
    deadline = time.monotonic() + timeout
    while True:
        state = page.evaluate(_STATE_JS, ready_selector)
        if state["errs"]:
            raise AssertionError("a notebook cell failed:\n" + "\n---\n".join(state["errs"]))
        if state["ready"]:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{ready_selector} did not appear within {timeout}s "
                f"(cells busy: {state['busy']})\nserver log:\n{lab.log_tail()}"
            )
        page.wait_for_timeout(250)
    return kernel_name


def wait_cells_idle(page, timeout: float = 120.0) -> None:
    """Wait until no cell shows the busy prompt ``[*]`` and no cell has an error."""
    deadline = time.monotonic() + timeout
    while True:
        state = page.evaluate(_STATE_JS, "body")
        if state["errs"]:
            raise AssertionError("a notebook cell failed:\n" + "\n---\n".join(state["errs"]))
        if not state["busy"]:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"cells still running after {timeout}s")
        page.wait_for_timeout(250)
