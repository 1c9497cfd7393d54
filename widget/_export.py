"""Saved explorers: one self-contained HTML page per explorer, for handouts that work without Python.

The page holds the view's module (the same bundle anywidget loads), the stylesheet, the
explorer's synced traits and its binary payload, all inlined: no CDN, no kernel, no network
(a Content-Security-Policy forbids every fetch). ``js/offline.js`` stands in for the widget
model, so sliders, pickers and overlays work as in the notebook; controls that need new math
from the kernel (the target select, Stop, Run again) are shown disabled with a note.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from . import _assets

__all__ = ["saved_page", "write_page"]

# Only what the page itself may do: inline scripts and styles, the view's module from a blob.
CONTENT_POLICY = "default-src 'none'; script-src 'unsafe-inline' blob:; style-src 'unsafe-inline'; img-src data: blob:"
# The page's own colours: JupyterLab's variables, light by default and dark where the reader
# prefers it, so the view's theme rules work outside JupyterLab too.
PAGE_STYLE = """
:root { --jp-layout-color1: #ffffff; --jp-ui-font-color1: rgba(0, 0, 0, 0.87); color-scheme: light dark; }
@media (prefers-color-scheme: dark) {
  :root {
    --jp-layout-color0: #111111; --jp-layout-color1: #212121; --jp-layout-color2: #424242;
    --jp-layout-color3: #616161; --jp-ui-font-color1: rgba(255, 255, 255, 0.87);
    --jp-ui-font-color2: rgba(255, 255, 255, 0.54); --jp-ui-font-color3: rgba(255, 255, 255, 0.38);
    --jp-border-color1: #616161; --jp-border-color2: #424242;
  }
}
body { margin: 24px; background: var(--jp-layout-color1); color: var(--jp-ui-font-color1); }
.crosslens-saved-note { font: 12px system-ui, sans-serif; color: var(--jp-ui-font-color2, #666); margin: 0 0 12px; }
"""


def _text(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _json(value) -> str:
    """JSON that cannot end its script element early ("</" is written "<\\/", the same string)."""
    return json.dumps(value).replace("</", "<\\/")


def saved_page(title: str, view: str, stylesheet: str, state: dict, payload: bytes) -> str:
    """The HTML of a saved explorer: ``view`` is the bundled ES module (its ``export default``
    has ``render``), ``state`` the synced traits (JSON), ``payload`` the binary payload."""
    loader = _assets.read_asset("offline.js")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CONTENT_POLICY}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{PAGE_STYLE}
{stylesheet}</style>
</head>
<body>
<p class="crosslens-saved-note">{html.escape(title)}: a saved crosslens view. Sliders, pickers and overlays work
offline; what needs new computation (another target, a new search) needs the live notebook.</p>
<div id="crosslens-view"></div>
<script type="application/json" id="crosslens-state">{_json(state)}</script>
<script type="text/plain" id="crosslens-payload">{_text(payload)}</script>
<script type="text/plain" id="crosslens-module">{_text(view.encode("utf-8"))}</script>
<script type="module">
{loader}
mountSaved(document.getElementById("crosslens-view"));
</script>
</body>
</html>
"""


def write_page(path, text: str) -> Path:
    """Write ``text`` to ``path`` (a ``.html`` file; folders must exist) and return the path."""
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"path must name an .html file, got {str(path)!r}")
    if not path.parent.is_dir():
        raise ValueError(f"path's folder {str(path.parent)!r} does not exist")
    path.write_text(text, encoding="utf-8")
    return path
