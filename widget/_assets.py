"""Front-end assets: the ES modules and CSS shipped in ``crosslens._frontend`` (folder ``js/``).

anywidget loads a widget's ``_esm`` as ONE module from a blob URL, where relative imports
cannot resolve. :func:`bundle` therefore inlines a widget module and the helper modules it
imports (``import { a, b } from "./helper.js";``) into one ES module string: helpers first,
in dependency order, each once, with their import lines removed and ``export`` dropped from
their declarations; the entry keeps its ``export default``. Top-level names must be unique
across the inlined modules (checked). Only relative imports of sibling ``.js`` files are
allowed: the front end never loads anything from the network.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

__all__ = ["FRONTEND_PACKAGE", "read_asset", "module_order", "bundle", "stylesheet"]

FRONTEND_PACKAGE = "crosslens._frontend"

_IMPORT = re.compile(r"^import\s+\{([^}]*)\}\s+from\s+([\"'])(\.\/[\w.-]+\.js)\2;?[ \t]*\r?\n", re.M)
# any other import: a static one, or a dynamic ``import(...)`` outside comments (JSDoc types
# may name ``import("./sibling.js").Type``)
_ANY_IMPORT = re.compile(r"^\s*import\b|^(?!\s*(?:\*|/\*|//)).*\bimport\s*\(", re.M)
_EXPORT_DECL = re.compile(r"^export\s+(?=(?:async\s+)?function\b|const\b|let\b|class\b)", re.M)
_EXPORT_OTHER = re.compile(r"^export\s+(?!default\b)(?!(?:async\s+)?function\b|const\b|let\b|class\b)", re.M)
_TOP_LEVEL = re.compile(r"^(?:export\s+)?(?:async\s+)?(?:function\*?|const|let|class)\s+([A-Za-z_$][\w$]*)", re.M)


def read_asset(name: str) -> str:
    """The text of ``js/<name>`` as installed (package data of ``crosslens._frontend``)."""
    return resources.files(FRONTEND_PACKAGE).joinpath(name).read_text(encoding="utf-8")


def _imports(source: str, name: str) -> tuple[list[str], str]:
    """The sibling modules ``source`` imports, and ``source`` without those import lines."""
    deps = [match.group(3)[2:] for match in _IMPORT.finditer(source)]
    for match in _IMPORT.finditer(source):
        if " as " in match.group(1):
            raise ValueError(f"{name}: 'import {{ a as b }}' is not supported by the inliner")
    body = _IMPORT.sub("", source)
    if _ANY_IMPORT.search(body):
        raise ValueError(f"{name}: only `import {{ ... }} from \"./sibling.js\";` lines can be inlined")
    return deps, body


def module_order(entry: str, read=read_asset) -> list[str]:
    """``entry`` and every module it imports, dependencies first (depth-first, stable)."""
    order: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise ValueError(f"import cycle: {' -> '.join(visiting + [name])}")
        visiting.append(name)
        for dep in _imports(read(name), name)[0]:
            visit(dep)
        visiting.pop()
        order.append(name)

    visit(entry)
    return order


def inline(entry: str, read=read_asset) -> str:
    """One ES module holding ``entry`` and its helpers (see the module docstring)."""
    names = module_order(entry, read)
    declared: dict[str, str] = {}
    parts = []
    for name in names:
        body = _imports(read(name), name)[1]
        for symbol in _TOP_LEVEL.findall(body):
            if symbol in declared:
                raise ValueError(f"top-level name {symbol!r} is declared in both {declared[symbol]} and {name}")
            declared[symbol] = name
        if name != entry:
            if _EXPORT_OTHER.search(body) or re.search(r"^export\s+default\b", body, re.M):
                raise ValueError(f"{name}: helpers may only export declarations (export function/const/class)")
            body = _EXPORT_DECL.sub("", body)
        parts.append(f"// ---- {name} ----\n{body.strip()}\n")
    return "\n".join(parts)


@functools.lru_cache(maxsize=None)
def bundle(entry: str) -> str:
    """:func:`inline` over the installed assets, cached per entry module."""
    return inline(entry)


@functools.lru_cache(maxsize=None)
def stylesheet(name: str = "crosslens.css") -> str:
    """The shared stylesheet."""
    return read_asset(name)
