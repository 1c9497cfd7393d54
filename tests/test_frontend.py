"""The shared layer without a browser: the binary payload, the module inliner, the stylesheet
and the package's public names."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import crosslens
from crosslens import (
    AdversarialExplorer, AttributeBrowser, AttributionExplorer, BoundaryExplorer, CounterfactualExplorer, kernel_side as ks,
)
from crosslens import _assets
from crosslens.payload import pack, quantized, read_header, unpack

JS_DIR = Path(__file__).resolve().parents[1] / "js"


def test_payload_round_trip_keeps_shapes_dtypes_and_values():
    frames = torch.rand(3, 2, 5, 1, 8, 8) * 1.5 - 0.25
    probs = torch.softmax(torch.randn(3, 5, 10), -1)
    arrays = {
        "t": torch.linspace(0, 2, 5), "labels": torch.tensor([1, 7, 3]), "mask": torch.tensor([True, False]),
        "frames": quantized(frames, "uint8"), "probs": quantized(probs, "uint16", (0, 1)),
        "grid": np.arange(12, dtype=np.uint8).reshape(3, 4),
    }
    blob = pack(arrays, {"kind": "demo", "names": ["a", "b"]})
    assert isinstance(blob, bytes)
    header = read_header(blob)
    assert all(entry["offset"] % 8 == 0 for entry in header["arrays"].values())
    stored, meta = unpack(blob, dequantize=False)
    assert meta == {"kind": "demo", "names": ["a", "b"]}
    assert {k: v.dtype.name for k, v in stored.items()} == {
        "t": "float32", "labels": "int32", "mask": "uint8", "frames": "uint8", "probs": "uint16", "grid": "uint8"}
    values, _ = unpack(blob)
    assert values["frames"].shape == (3, 2, 5, 1, 8, 8) and values["frames"].dtype == np.float32
    scale = header["arrays"]["frames"]["scale"]
    assert np.abs(values["frames"] - frames.numpy()).max() <= scale / 2 + 1e-6
    assert np.abs(values["probs"] - probs.numpy()).max() <= 1 / 65535
    np.testing.assert_array_equal(values["labels"], [1, 7, 3])
    np.testing.assert_array_equal(values["grid"], arrays["grid"])
    assert pack(arrays, {"kind": "demo", "names": ["a", "b"]}) == blob  # deterministic


def test_payload_rejects_bad_input_naming_the_array():
    with pytest.raises(ValueError, match="'frames'"):
        pack({"frames": torch.tensor([1.0, float("nan")])})
    with pytest.raises(ValueError, match="magic"):
        unpack(b"NOPE" + bytes(12))
    with pytest.raises(ValueError, match="dtype"):
        quantized(torch.zeros(2), "int8")


VIEWS = {BoundaryExplorer: "boundary_explorer.js", CounterfactualExplorer: "counterfactual_explorer.js",
         AttributionExplorer: "attribution_explorer.js", AdversarialExplorer: "adversarial_explorer.js",
         AttributeBrowser: "attribute_browser.js"}


@pytest.mark.parametrize("widget", list(VIEWS))
def test_every_view_is_one_self_contained_module_that_parses(widget, tmp_path):
    esm = widget._esm
    entry = VIEWS[widget]
    assert not _assets._ANY_IMPORT.search(esm)  # no import left, not even a dynamic one
    assert esm.count("export default") == 1 and not re.search(r"^export (?!default)", esm, re.M)
    for source in [esm] + [p.read_text() for p in JS_DIR.glob("*.js")]:
        assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|https?://", source)
    order = _assets.module_order(entry)
    assert order[-1] == entry and order.index("explorer.js") < order.index(entry)
    assert order.index("colormaps.js") < order.index("draw.js")
    assert _assets.bundle(entry) == esm  # deterministic
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    module = tmp_path / "widget.mjs"
    module.write_text(esm)
    subprocess.run([node, "--check", str(module)], check=True, capture_output=True, timeout=30)


def test_inliner_orders_dependencies_and_rejects_what_it_cannot_inline():
    files = {
        "entry.js": 'import { b } from "./b.js";\nimport { a } from "./a.js";\nexport default { b, a };\n',
        "b.js": 'import { a } from "./a.js";\nexport function b() { return a; }\n',
        "a.js": "export const a = 1;\n",
    }
    out = _assets.inline("entry.js", files.__getitem__)
    assert _assets.module_order("entry.js", files.__getitem__) == ["a.js", "b.js", "entry.js"]
    assert "export const" not in out and "export function" not in out and "import" not in out
    assert out.index("const a = 1") < out.index("function b()") < out.index("export default")
    bad = dict(files, **{"a.js": 'import { x } from "https://cdn.example/x.js";\nexport const a = 1;\n'})
    with pytest.raises(ValueError, match="only"):
        _assets.inline("entry.js", bad.__getitem__)
    twin = dict(files, **{"b.js": 'import { a } from "./a.js";\nexport const a2 = a;\nconst a = 2;\n'})
    with pytest.raises(ValueError, match="'a'"):
        _assets.inline("entry.js", twin.__getitem__)


def test_stylesheet_is_scoped_and_themed():
    css = _assets.stylesheet()
    body = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    body = re.sub(r"@keyframes[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}", "", body)
    selectors = re.findall(r"(?:^|})\s*([^{}@]+)\{", body)
    for group in selectors:
        for selector in group.split(","):
            assert selector.strip().startswith(".crosslens"), selector
    for variable in ("--jp-layout-color1", "--jp-ui-font-color1", "--jp-border-color1", "--jp-brand-color1"):
        assert re.search(rf"var\({variable}, [^)]+\)", css), variable


def test_package_exports():
    assert crosslens.kernel_side is ks and crosslens.BoundaryExplorer is BoundaryExplorer
    assert crosslens.CounterfactualExplorer is CounterfactualExplorer
    assert crosslens.AttributionExplorer is AttributionExplorer and crosslens.AdversarialExplorer is AdversarialExplorer
    assert crosslens.AttributeBrowser is AttributeBrowser
    assert isinstance(crosslens.__version__, str)
    assert json.loads(json.dumps(BoundaryExplorer._esm))  # plain text, serialisable to the front end


def test_importing_crosslens_leaves_scikit_learn_scipy_and_matplotlib_for_later():
    """They cost seconds to import; they are imported where they are used."""
    code = ("import sys, crosslens; "
            "print(sorted(m for m in ('sklearn', 'scipy', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_the_wheel_ships_the_license_the_views_and_the_weights(tmp_path):
    import zipfile

    repo = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(repo)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("crosslens-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    for required in ("crosslens/_frontend/explorer.js", "crosslens/_frontend/crosslens.css",
                     "crosslens/kernel_side/weights/digits-flow.pt", "crosslens/kernel_side/methods/_search.py"):
        assert required in names, required
    assert not any(name.startswith(("widget/", "kernel_side/")) for name in names)  # never top-level modules
