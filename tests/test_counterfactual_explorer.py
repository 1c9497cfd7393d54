"""CounterfactualExplorer without a browser: the streamed payload, stop, per-input target
recomputation, position state readable and settable from Python, clear errors."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import traitlets
from matplotlib.figure import Figure

from crosslens import CounterfactualExplorer, _explorer, counterfactual_explorer, kernel_side as ks
from crosslens.kernel_side.methods.counterfactuals import latent_counterfactual, pixel_counterfactual
from _explorers import assert_bad_targets_refused
from crosslens.payload import read_header, unpack


@pytest.fixture(scope="module")
def models():
    return ks.load_pretrained("digits-mlp"), ks.load_pretrained("digits-flow")


@pytest.fixture(scope="module")
def x():
    return ks.load_digits_split()[2][:4]


@pytest.fixture(scope="module")
def finished(models, x):
    """Shared, read-only use: a finished explorer. Tests that change state build their own."""
    explorer = CounterfactualExplorer(*models, x, max_steps=150)
    assert explorer.wait(30)
    return explorer


def build(models, x, **options) -> CounterfactualExplorer:
    return CounterfactualExplorer(*models, x, **options)


def rows_of(arrays: dict, method: str, name: str, row: int) -> np.ndarray:
    offsets = arrays[f"{method}_offsets"]
    return arrays[f"{method}_{name}"][offsets[row]:offsets[row + 1]]


def runner_up(classifier, x) -> torch.Tensor:
    with torch.no_grad():
        return classifier(x).topk(2, dim=1).indices[:, 1]


# ---- payload --------------------------------------------------------------------------------
def test_payload_decodes_to_the_engines_trajectories(models, x, finished):
    classifier, flow = models
    explorer = finished
    target = runner_up(classifier, x)
    assert torch.equal(explorer.targets, target)  # target=None: the runner-up class
    binary = [n for n in explorer.trait_names(sync=True) if isinstance(explorer.traits()[n], traitlets.Bytes)]
    assert binary == ["_payload"]
    for name, value in explorer.get_state().items():
        assert name == "_payload" or not (isinstance(value, (list, tuple)) and len(value) > 16), name
    arrays, meta = unpack(explorer.payload)
    header = read_header(explorer.payload)["arrays"]
    assert meta["methods"] == ["latent", "pixel"] and meta["class_names"] == [str(k) for k in range(10)]
    assert meta["image_shape"] == [1, 8, 8] and meta["threshold"] == 0.99 and meta["exact"] is True
    engine = {
        "latent": latent_counterfactual(classifier, flow, x, target, max_steps=150),
        "pixel": pixel_counterfactual(classifier, x, target, max_steps=150),
    }
    for method, result in engine.items():
        ours = getattr(explorer, f"result_{method}")
        assert torch.equal(ours.steps, result.steps) and torch.equal(ours.success, result.success)
        torch.testing.assert_close(ours.frames, result.frames, atol=1e-5, rtol=0)
        torch.testing.assert_close(ours.confidence, result.confidence, atol=1e-5, rtol=0)
        assert torch.equal(ours.record_steps, result.record_steps) and ours.interrupted is False
        scale = header[f"{method}_frames"]["scale"]
        for row in range(len(x)):
            length = int(result.steps[row]) + 1  # record_every=1: one record per step, none repeated
            assert np.array_equal(rows_of(arrays, method, "record_steps", row), np.arange(length))
            frames = torch.from_numpy(rows_of(arrays, method, "frames", row))
            assert (frames - result.frames[row, :length]).abs().max() <= scale / 2 + 1e-6
            probs = torch.from_numpy(rows_of(arrays, method, "probs", row))
            assert (probs - result.probs[row, :length]).abs().max() <= 1 / 65535
        assert arrays[f"{method}_status"].tolist() == [2] * len(x)  # done
        assert arrays[f"{method}_steps"].tolist() == result.steps.tolist()
    assert explorer.status.startswith("latent: 4/4 reached p > 0.99")
    assert explorer.progress == 1.0 and explorer.busy is False and explorer.error == ""


def test_frames_stream_in_while_the_search_runs(models, x, monkeypatch):
    monkeypatch.setattr(_explorer, "MIN_INTERVAL", 0.0)  # every progress report is sent
    seen = []
    explorer = build(models, x, max_steps=60, threshold=0.999)
    explorer.observe(lambda change: seen.append((change["new"], explorer.progress)), "_payload")
    running = []
    explorer.observe(lambda change: running.append(change["new"]), "busy")
    assert explorer.wait(30)
    assert len(seen) >= 6 and running[-1] is False
    progress = [p for _, p in seen]
    assert progress == sorted(progress) or max(np.diff(progress)) >= -1e-9
    lengths = [unpack(blob)[0]["pixel_offsets"][-1] for blob, _ in seen]
    assert lengths == sorted(lengths) and lengths[-1] > lengths[0]  # the pixel trajectories grow
    statuses = {tuple(unpack(blob)[0]["pixel_status"]) for blob, _ in seen}
    assert (1, 1, 1, 1) in statuses and (2, 2, 2, 2) in statuses  # running, then done


# ---- stop --------------------------------------------------------------------------------------
def test_stop_keeps_the_partial_trajectories(models, x):
    explorer = build(models, x[:2], threshold=0.999999, max_steps=100_000, record_every=10)
    assert explorer.busy and not explorer.wait(0.5)  # still running after half a second
    explorer._on_custom_msg(explorer, {"event": "stop"}, [])  # the view's Stop button
    assert explorer.wait(10) and explorer.busy is False
    latent = explorer.result_latent
    assert latent.interrupted and (latent.steps > 0).all() and (latent.steps < 100_000).all()
    assert "stopped" in explorer.row_status["latent"] or "stopped" in explorer.row_status["pixel"]
    arrays, _ = unpack(explorer.payload)
    assert 3 in arrays["latent_status"].tolist() + arrays["pixel_status"].tolist()
    explorer.fraction = 0.5  # what was computed stays explorable
    assert explorer.frame.shape == (1, 8, 8)
    # a new target starts a fresh search for that input only
    explorer.target = next(c for c in range(10) if c not in (int(explorer.predicted[0]), int(explorer.targets[0])))
    assert explorer.busy
    explorer.stop()
    assert explorer.wait(10)


def test_rerun_starts_the_stopped_searches_over_and_keeps_the_finished_ones(models, x):
    explorer = build(models, x[:2], threshold=0.999999, max_steps=3000, record_every=10, compare_pixel=False)
    explorer.wait(0.3)
    explorer.stop()
    assert explorer.wait(10) and "stopped" in explorer.row_status["latent"]
    finished = [row for row, s in enumerate(explorer.row_status["latent"]) if s == "done"]
    kept = {row: explorer._tracks["latent"][row] for row in finished}
    explorer._on_custom_msg(explorer, {"event": "rerun"}, [])  # the view's Run again button
    assert explorer.busy and set(explorer.row_status["latent"]) <= {"queued", "running", "done"}
    assert explorer.wait(120)
    assert explorer.row_status["latent"] == ["done", "done"] and not explorer.result_latent.interrupted
    assert all(explorer._tracks["latent"][row] is track for row, track in kept.items())
    reached = explorer.result_latent.success | (explorer.result_latent.steps == 3000)
    assert reached.all()
    explorer.rerun_stopped()  # nothing stopped: nothing to do
    assert not explorer.busy


def test_a_failing_search_reports_and_wait_raises(models, x, monkeypatch):
    def broken(*args, stop, **kwargs):
        if stop.is_set():  # the constructor's zero-step probe
            return pixel_counterfactual(*args, stop=stop, **kwargs)
        raise ValueError("the pixel search broke")

    monkeypatch.setattr(counterfactual_explorer, "pixel_counterfactual", broken)
    explorer = build(models, x[:2], max_steps=20)
    with pytest.raises(RuntimeError, match="the pixel search broke"):
        explorer.wait(10)
    assert "the pixel search broke" in explorer.error and explorer.busy is False
    assert explorer.row_status["latent"] == ["done", "done"] and explorer.row_status["pixel"] == ["stopped"] * 2
    explorer.rerun_stopped()  # runs (and fails) again: the error is the new run's
    assert explorer.error == "" or "pixel search broke" in explorer.error
    with pytest.raises(RuntimeError, match="the pixel search broke"):
        explorer.wait(10)
    assert explorer.row_status["latent"] == ["done", "done"] and explorer.row_status["pixel"] == ["stopped"] * 2


# ---- targets -----------------------------------------------------------------------------------
def test_target_change_recomputes_only_that_input(models, x):
    classifier, flow = models
    explorer = build(models, x, max_steps=150)
    assert explorer.wait(30)
    before = {m: [explorer._tracks[m][r] for r in range(4)] for m in ("latent", "pixel")}
    explorer.index = 2
    source, old = int(explorer.predicted[2]), int(explorer.targets[2])
    assert explorer.target is None  # the runner-up
    new = next(c for c in range(10) if c not in (source, old))
    explorer.target = new
    assert explorer.row_status["latent"][2] in ("queued", "running")
    assert explorer.wait(30) and explorer.target == new
    assert explorer.targets.tolist() == [int(t) for t in runner_up(classifier, x)[:2]] + [new, explorer.targets[3]]
    for method in ("latent", "pixel"):
        for row in (0, 1, 3):
            assert explorer._tracks[method][row] is before[method][row]  # other inputs untouched
    alone = latent_counterfactual(classifier, flow, x[2:3], new, max_steps=150)
    torch.testing.assert_close(explorer.result_latent.x_cf[2], alone.x_cf[0], atol=1e-5, rtol=0)
    arrays, _ = unpack(explorer.payload)
    assert arrays["target"].tolist()[2] == new
    # the target follows the selected input; None goes back to the runner-up
    explorer.index = 0
    assert explorer.target is None and int(explorer.targets[0]) == int(runner_up(classifier, x)[0])
    explorer.index = 2
    assert explorer.target == new
    explorer.target = None
    assert explorer.target is None and int(explorer.targets[2]) == old
    explorer.wait(30)


def test_target_change_while_running_drops_the_stale_search(models, x):
    classifier, flow = models
    explorer = build(models, x[:2], threshold=0.9999, max_steps=200)
    explorer.index = 1
    new = next(c for c in range(10) if c not in (int(explorer.predicted[1]), int(explorer.targets[1])))
    explorer.target = new  # while the first search of input 1 (for the old target) runs
    assert explorer.wait(60)
    alone = latent_counterfactual(classifier, flow, x[1:2], new, threshold=0.9999, max_steps=200)
    result = explorer.result_latent
    assert result.target.tolist()[1] == new and int(result.steps[1]) == int(alone.steps[0])
    torch.testing.assert_close(result.probs[1, -1], alone.probs[0, -1], atol=1e-5, rtol=0)


def test_bad_target_raises_and_keeps_the_previous_state(models, x, finished):
    explorer = finished
    explorer.fraction = 0.5
    assert_bad_targets_refused(explorer, 1)
    assert (explorer.index, explorer.fraction) == (1, 0.5)


# ---- position ------------------------------------------------------------------------------------
def test_position_traits_pick_the_frames_on_show(finished):
    explorer = finished
    latent, pixel = explorer.result_latent, explorer.result_pixel
    explorer.index = 0
    explorer.fraction = 0.0
    assert explorer.align == "fraction" and explorer.shown_steps == {"latent": 0, "pixel": 0}
    torch.testing.assert_close(explorer.frame, latent.reference[0])  # the reconstruction g(g^-1(x))
    torch.testing.assert_close(explorer.pixel_frame, explorer.x[0])
    explorer.fraction = 1.0
    torch.testing.assert_close(explorer.frame, latent.x_cf[0])
    torch.testing.assert_close(explorer.pixel_probabilities, pixel.probs[0, -1])
    explorer.step = 3  # a shared Adam step: switches the alignment
    assert explorer.align == "step" and explorer.shown_steps == {"latent": 3, "pixel": 3}
    torch.testing.assert_close(explorer.probabilities, latent.probs[0, 3])
    explorer.step = 150  # past the latent search's end: it holds its final frame
    assert explorer.shown_steps == {"latent": int(latent.steps[0]), "pixel": int(pixel.steps[0])}
    torch.testing.assert_close(explorer.frame, latent.x_cf[0])
    explorer.fraction = 1.0
    assert explorer.align == "fraction"
    for name, value in [("step", 151), ("fraction", 1.5), ("align", "time"), ("index", 4)]:
        with pytest.raises(ValueError, match=rf"^{name} must"):
            setattr(explorer, name, value)


def test_latent_only_and_one_input(models, x):
    explorer = build(models, x[0], compare_pixel=False, max_steps=50, target=3, class_names=list("abcdefghij"))
    assert explorer.wait(20)
    arrays, meta = unpack(explorer.payload)
    assert meta["methods"] == ["latent"] and not any(k.startswith("pixel") for k in arrays)
    assert explorer.result_pixel is None and explorer.pixel_frame is None and explorer.x.shape == (1, 1, 8, 8)
    assert explorer.targets.tolist() == [3] and explorer.class_names[3] == "d"
    assert isinstance(explorer.to_figure(), Figure)


def test_to_figure_shows_both_methods(finished):
    figure = finished.to_figure()
    assert isinstance(figure, Figure) and len(figure.axes) >= 8


# ---- argument errors -----------------------------------------------------------------------------
def test_bad_arguments_raise_clear_errors(models, x):
    classifier, flow = models
    cases = [
        (dict(class_names=["a", "b"]), ValueError, r"class_names must have one name per class \(10"),
        (dict(colour="red"), TypeError, "unexpected keyword argument.*'colour'"),
        (dict(target=[1, 2]), ValueError, "target must be None, one class index or 4"),
        (dict(target=99), ValueError, r"target must be None or a class index in \[0, 9\]"),
        (dict(lr=-1.0), ValueError, "^lr must"),
        (dict(pixel_lr=0.0), ValueError, "^pixel_lr must"),
        (dict(threshold=1.5), ValueError, "^threshold must"),
        (dict(max_steps=-3), ValueError, "^max_steps must"),
        (dict(compare_pixel="yes"), TypeError, "^compare_pixel must"),
    ]
    for options, error, message in cases:
        with pytest.raises(error, match=message):
            CounterfactualExplorer(classifier, flow, x, **options)
    with torch.no_grad():
        predicted = int(classifier(x[:1]).argmax(1))
    with pytest.raises(ValueError, match="target must differ from the predicted class of input 0"):
        CounterfactualExplorer(classifier, flow, x[:1], target=predicted)
    with pytest.raises(ValueError, match=r"target\[0\] must differ"):
        CounterfactualExplorer(classifier, flow, x[:2], target=[predicted, None])
    with pytest.raises(ValueError, match="x must have shape"):
        CounterfactualExplorer(classifier, flow, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="x must lie in the clip range"):
        CounterfactualExplorer(classifier, flow, x * 3)
    with pytest.raises(TypeError, match="generator must offer"):
        CounterfactualExplorer(classifier, object(), x)


# ---- front-end module ----------------------------------------------------------------------------
def test_wait_times_out_while_running(models, x):
    explorer = build(models, x[:1], threshold=0.999999, max_steps=100_000, record_every=50)
    started = time.monotonic()
    assert explorer.wait(0.2) is False and time.monotonic() - started < 2
    explorer.close()  # closing stops the search
    assert explorer.wait(10)
