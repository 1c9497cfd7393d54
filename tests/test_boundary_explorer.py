"""BoundaryExplorer without a browser: payload, state readable and settable from Python,
target recomputation, clear errors, static figures, and the inlined front-end module."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import traitlets
from matplotlib.figure import Figure

from crosslens import BoundaryExplorer, kernel_side as ks
from _explorers import assert_bad_targets_refused
from crosslens.payload import read_header, unpack

JS_DIR = Path(__file__).resolve().parents[1] / "js"

# ---- fixtures: one per shipped model ------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    model = ks.load_pretrained("digits-invertible")
    x_train, _, x_test, _ = ks.load_digits_split()
    return model, x_train, x_test[:8]


@pytest.fixture(scope="module")
def moons():
    model = ks.load_pretrained("moons-invertible")
    x_train, _, x_test, _ = ks.load_moons_split()
    return model, x_train, x_test


@pytest.fixture(scope="module")
def digits_explorer(digits):
    """Shared, read-only use. Tests that change state build their own."""
    model, x_train, x = digits
    return BoundaryExplorer(model, x, reference=x_train)


@pytest.fixture(scope="module")
def moons_explorer(moons):
    model, x_train, x = moons
    return BoundaryExplorer(model, x, reference=x_train, class_names=ks.MOONS_CLASS_NAMES)


def fresh(digits, **kwargs):
    model, x_train, x = digits
    return BoundaryExplorer(model, x, reference=x_train, **kwargs)


def synced_traits(widget):
    return {name for name in widget.trait_names(sync=True)}


# ---- payload ------------------------------------------------------------------------------
def test_explorer_sends_one_binary_payload_and_no_number_lists(digits_explorer):
    explorer = digits_explorer
    binary = [name for name in synced_traits(explorer) if isinstance(explorer.traits()[name], traitlets.Bytes)]
    assert binary == ["_payload"]
    state = explorer.get_state()
    for name, value in state.items():
        if name == "_payload":
            continue
        assert not (isinstance(value, (list, tuple)) and len(value) > 16), f"{name} holds a list of numbers"
    arrays, meta = unpack(explorer.payload, dequantize=False)
    n, k, a, steps, c = 8, 2, 9, 65, 10
    assert meta["kind"] == "image" and meta["class_names"] == [str(i) for i in range(10)]
    assert meta["image_shape"] == [1, 8, 8] and "input_shape" not in meta
    assert arrays["frames"].shape == (n, k, a, steps, 1, 8, 8) and arrays["frames"].dtype == np.uint8
    assert arrays["probs"].shape == (n, k, a, steps, c) and arrays["probs"].dtype == np.uint16
    assert arrays["t"].shape == (steps,) and arrays["amounts"].shape == (a,)
    for name in ("x", "x_proj", "importance"):
        assert arrays[name].shape == (n, 1, 8, 8) and arrays[name].dtype == np.float32
    assert arrays["source"].dtype == np.int32 and arrays["requested"].tolist() == [-1] * n
    assert len(explorer.payload) < 1_500_000


# ---- state readable and settable from Python ----------------------------------------------
def test_frame_is_the_path_frame_at_the_nearest_t(digits, digits_explorer):
    model, _, x = digits
    path = ks.boundary_path(model, x)
    explorer = fresh(digits)
    for index, step in [(0, 0), (3, 31), (5, 63)]:
        explorer.index = index
        explorer.t = max(float(path.t[step]) - 1e-4, 0.0)  # nearest grid point, no interpolation
        assert explorer.index == index and explorer._position()[3] == step
        torch.testing.assert_close(explorer.frame, path.frames[index, step], atol=1e-5, rtol=0)
        torch.testing.assert_close(explorer.probabilities, path.probs[index, step], atol=1e-5, rtol=0)
    # the front end draws the same frame from the payload (uint8, within half a step where not clipped)
    arrays, _ = unpack(explorer.payload)
    scale = read_header(explorer.payload)["arrays"]["frames"]["scale"]
    shown = torch.from_numpy(arrays["frames"][5, 0, 4, 63])
    inside = (path.frames[5, 63] > -0.5) & (path.frames[5, 63] < 1.5)
    assert (shown - path.frames[5, 63])[inside].abs().max() <= scale / 2 + 1e-5


def test_t_one_shows_the_tie_on_the_boundary(digits_explorer):
    explorer = digits_explorer
    for row in range(3):
        explorer.index, explorer.t = row, 1.0
        probs = explorer.probabilities
        source, target = int(explorer.predicted[row]), int(explorer.targets[row])
        assert abs(float(probs[source] - probs[target])) < 1e-3 and float(probs[source]) > 0.45
    explorer.index, explorer.t = 0, 0.0


def test_the_importance_overlay_says_where_it_was_expanded_and_what_it_misses(digits):
    model, x_train, x = digits
    for at in ("projection", "input"):
        explorer = BoundaryExplorer(model, x, reference=x_train, importance_at=at)
        arrays, meta = unpack(explorer.payload)
        projection = ks.project_to_boundary(model, x, importance_at=at)
        assert meta["importance_at"] == at
        np.testing.assert_allclose(arrays["importance"], projection.importance.numpy(), atol=1e-5)
        np.testing.assert_allclose(arrays["taylor_residual"], projection.relative_taylor_error.numpy(), rtol=1e-4)
    with pytest.raises(ValueError, match="importance_at must be one of"):
        BoundaryExplorer(model, x, importance_at="middle")


def test_setting_t_moves_the_frame_and_recomputes_nothing(digits, monkeypatch):
    explorer = fresh(digits)
    payload = explorer.payload
    explorer.t = 0.0
    start = explorer.frame
    torch.testing.assert_close(start, explorer.x[0], atol=1e-4, rtol=0)  # t = 0 is the input
    calls = []
    for name in ("boundary_sweep", "boundary_path", "project_to_boundary"):
        monkeypatch.setattr(ks, name, lambda *a, _n=name, **k: calls.append(_n))
    explorer.t = 1.0
    assert (explorer.frame - start).abs().max() > 0.05
    p = explorer.probabilities
    top2 = p.topk(2).indices.tolist()
    assert set(top2) == {int(explorer.predicted[0]), int(explorer.targets[0])}  # on the boundary the pair ties
    explorer.index, explorer.direction, explorer.amount = 2, 1, 1.0
    explorer.overlay, explorer.opacity = "importance", 0.3
    assert calls == [] and explorer.payload is payload


def test_along_boundary_moves_change_the_frame(digits):
    explorer = fresh(digits)
    explorer.t = 1.0
    centre = explorer.frame
    explorer.amount = 1.0
    assert (explorer.frame - centre).abs().max() > 1e-3
    explorer.direction = 1
    assert explorer.direction == 1 and explorer.amount == 1.0


def test_target_change_recomputes_with_busy_and_sends_a_new_payload(digits):
    explorer = fresh(digits)
    explorer.index = 2
    source, old_target = int(explorer.predicted[2]), int(explorer.targets[2])
    new = next(c for c in range(10) if c not in (source, old_target))
    busy = []
    explorer.observe(lambda change: busy.append(change["new"]), "busy")
    before = explorer.payload
    explorer.target = new
    assert busy == [True, False] and explorer.busy is False and explorer.error == ""
    assert explorer.payload != before and explorer.target == new
    arrays, _ = unpack(explorer.payload)
    assert arrays["target"][2] == new and arrays["requested"][2] == new
    assert arrays["target"][0] == int(explorer.targets[0])  # other inputs keep theirs
    explorer.t = 1.0
    assert set(explorer.probabilities.topk(2).indices.tolist()) == {source, new}
    # the selected input's target follows the picker; None goes back to the nearest boundary
    explorer.index = 0
    assert explorer.target is None
    explorer.index = 2
    assert explorer.target == new
    explorer.target = None
    assert int(explorer.targets[2]) == old_target


def test_bad_target_raises_and_keeps_the_previous_state(digits):
    explorer = fresh(digits)
    explorer.t = 1.5
    assert_bad_targets_refused(explorer, 1)
    assert (explorer.t, explorer.index) == (1.5, 1)


def test_failed_recomputation_raises_and_rolls_back(digits, monkeypatch):
    explorer = fresh(digits)
    payload, targets = explorer.payload, explorer.targets

    def unreachable(*args, **kwargs):
        raise ValueError("target is unreachable for rows [0]")

    monkeypatch.setattr(ks, "boundary_sweep", unreachable)
    new = next(c for c in range(10) if c not in (int(explorer.predicted[0]), int(explorer.targets[0])))
    with pytest.raises(ValueError, match="unreachable"):
        explorer.target = new
    assert explorer.target is None and explorer.payload is payload and explorer.busy is False
    assert torch.equal(explorer.targets, targets) and "unreachable" in explorer.error


def test_front_end_target_requests_report_errors_without_raising(digits):
    explorer = fresh(digits)
    sent = []
    explorer.send = lambda content, buffers=None: sent.append(content)
    payload = explorer.payload
    explorer._on_custom_msg(explorer, {"event": "target", "index": 1, "target": 42}, [])
    assert "target" in explorer.error and explorer.payload is payload and explorer.index == 1
    assert sent == [{"event": "target-done"}] and explorer.busy is False
    new = next(c for c in range(10) if c not in (int(explorer.predicted[1]), int(explorer.targets[1])))
    explorer._on_custom_msg(explorer, {"event": "target", "index": 1, "target": new}, [])
    assert explorer.error == "" and int(explorer.targets[1]) == new and len(sent) == 2


def test_bad_arguments_raise_clear_errors(digits):
    model, _, x = digits
    with pytest.raises(ValueError, match="class_names must have one name per class \\(10"):
        BoundaryExplorer(model, x, class_names=["a", "b"])
    with pytest.raises(TypeError, match="class_names"):
        BoundaryExplorer(model, x, class_names="0123456789")
    with pytest.raises(TypeError, match="unexpected keyword argument.*'colour'"):
        BoundaryExplorer(model, x, colour="red")
    with pytest.raises(ValueError, match="x must have shape"):
        BoundaryExplorer(model, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="target must be None, one class index or 8"):
        BoundaryExplorer(model, x, target=[1, 2])
    with pytest.raises(ValueError, match="steps"):
        BoundaryExplorer(model, x, steps=1)
    explorer = BoundaryExplorer(model, x[0], steps=8)  # one input, not a batch
    assert explorer.x.shape == (1, 1, 8, 8) and explorer.frame.shape == (1, 8, 8)
    for name, value in [("t", 2.5), ("index", 1), ("opacity", 2.0), ("overlay", "glow"), ("amount", 1.0)]:
        with pytest.raises(ValueError, match=rf"^{name} must"):
            setattr(explorer, name, value)


# ---- 2-feature data -------------------------------------------------------------------------
def test_moons_payload_has_regions_curves_and_every_path(moons, moons_explorer):
    model, x_train, x = moons
    explorer = moons_explorer
    arrays, meta = unpack(explorer.payload)
    assert meta["kind"] == "planar" and meta["class_names"] == ks.MOONS_CLASS_NAMES
    xmin, xmax, ymin, ymax = meta["bounds"]
    assert xmax - xmin == pytest.approx(ymax - ymin)
    assert arrays["frames"].shape == (400, 1, 1, 65, 2)
    assert arrays["probs"].shape == (400, 1, 1, 65, 2)
    assert arrays["region_probs"].shape == (200, 200, 2)
    np.testing.assert_allclose(arrays["region_probs"].sum(-1), 1, atol=2 / 255)
    offsets = arrays["curve_offsets"]
    assert offsets[0] == 0 and offsets[-1] == len(arrays["curve_points"]) > 100
    assert arrays["reference"].shape == (600, 2)
    assert len(explorer.payload) < 1_000_000
    path = ks.boundary_path(model, x[[17]])
    explorer.index, explorer.t = 17, 2.0
    torch.testing.assert_close(explorer.frame, path.frames[0, -1], atol=1e-5, rtol=0)
    explorer.index, explorer.t = 0, 0.0


def test_to_figure_returns_a_figure_for_both_kinds(digits_explorer, moons_explorer):
    for explorer in (digits_explorer, moons_explorer):
        figure = explorer.to_figure()
        assert isinstance(figure, Figure) and len(figure.axes) >= 2


# ---- front-end module --------------------------------------------------------------------
