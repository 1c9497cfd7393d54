"""CounterfactualExplorer: watch a generator-based counterfactual and the pixel-space baseline side by side.

References:
    Dombrowski, Gerken, Mueller, Kessel. Diffeomorphic counterfactuals with generative
    models. TPAMI 2024. https://arxiv.org/abs/2206.05075

The engine (:func:`crosslens.kernel_side.latent_counterfactual` and
:func:`~crosslens.kernel_side.pixel_counterfactual`) runs the searches. This module runs them
as background jobs of the explorer base (:mod:`crosslens._explorer`), so the kernel stays free
and a Stop button works, and streams the growing trajectories through ONE binary payload
trait (:mod:`crosslens.payload`), re-packed at most a few times a second. Late views get the
current state through ordinary trait sync. The browser scrubs every recorded frame without
the kernel.

A job is a set of rows and the methods to run on them; each row carries a generation number
that a target change bumps, so results for a row whose target changed meanwhile are dropped.
"""

from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass, replace
from typing import Callable, Iterator

import numpy as np
import torch
import traitlets

from . import _assets
from ._checks import check_class_names, check_requested, image_shape, is_one_target
from ._explorer import DONE, QUEUED, RUNNING, STATUS_NAMES, STOPPED, Explorer
from ._style import PALETTE, colormap
from .kernel_side import CounterfactualResult, latent_counterfactual, pixel_counterfactual
from .kernel_side._checks import check_choice
from .payload import quantized

__all__ = ["CounterfactualExplorer"]

METHODS = ("latent", "pixel")
ALIGNS = ("fraction", "step")


@dataclass(frozen=True)
class _Track:
    """One row's recorded trajectory, on the CPU, without the repeated records of a finished row."""

    frames: torch.Tensor  # (L, *input_shape)
    probs: torch.Tensor  # (L, C)
    record_steps: torch.Tensor  # (L,) int64
    latents: torch.Tensor | None  # (L, latent_dim)
    steps: int
    success: bool

    @classmethod
    def of(cls, result: CounterfactualResult, row: int) -> "_Track":
        steps = int(result.steps[row])
        record_steps = result.record_steps[row].cpu()
        length = int((record_steps < steps).sum()) + 1  # records after the row stopped repeat its last one
        latents = None if result.latents is None else result.latents[row, :length].detach().cpu().float()
        return cls(frames=result.frames[row, :length].detach().cpu().float(),
                   probs=result.probs[row, :length].detach().cpu().float(),
                   record_steps=record_steps[:length].clone(), latents=latents, steps=steps,
                   success=bool(result.success[row]))

    def at_step(self, step: int) -> int:
        """The last record at or before Adam step ``step`` (the final one past the end)."""
        return max(int(torch.searchsorted(self.record_steps, torch.tensor(step), right=True)) - 1, 0)

    def at_fraction(self, fraction: float) -> int:
        """The record at ``fraction`` of the trajectory (0: start, 1: the latest record)."""
        return math.floor(fraction * (len(self.record_steps) - 1) + 0.5)  # rounds halves up, as the view does


@dataclass
class _Job:
    """Search ``methods`` for ``rows`` (each at its target's ``generations``): ``run(job, stop)``."""

    rows: list[int]
    generations: list[int]
    methods: tuple[str, ...]
    run: Callable[["_Job", threading.Event], None]

    def __call__(self, stop: threading.Event) -> None:
        self.run(self, stop)


class CounterfactualExplorer(Explorer):
    """Step through counterfactual searches: in a generator's latent space and, for contrast, in pixel space.

    For each input x the latent search (Dombrowski et al. 2024) starts at ``z = g^-1(x)`` and
    runs Adam on z until the classifier gives the target class a probability above
    ``threshold``: every step decodes a realistic image ``g(z)``, so the path morphs the digit
    into one of the target class. The pixel search runs the same loop on x itself, the
    conventional approach: it reaches the target through faint, adversarial noise. Both
    trajectories are recorded step by step and streamed to the browser while the searches
    run (in a background thread: the kernel stays free, the Stop button or :meth:`stop` ends
    them early and keeps what was computed; the Run again button or :meth:`rerun_stopped`
    starts the stopped ones over).

    The view shows, at the chosen position, each method's frame, its difference map
    ``|x - x'|`` (the same color scale for both methods) and class probabilities; the
    confidence curves of both searches with the position marked; and a picker over the inputs.

    Position (``align``): the searches take very different numbers of steps (latent: tens,
    pixel: hundreds or the whole ``max_steps``). ``align="fraction"`` (the default) puts both
    methods at the same share of their own trajectories (``fraction`` 0 = start, 1 = the
    final, or while running the latest, frame), so the two paths are compared shape for
    shape. ``align="step"`` uses one shared Adam step axis (``step``); a search that already
    stopped holds its final frame. Setting ``step`` switches to "step", setting
    ``fraction`` to "fraction".

    References:
        Dombrowski, Gerken, Mueller, Kessel. Diffeomorphic counterfactuals with generative
        models. TPAMI 2024. https://arxiv.org/abs/2206.05075

    Arguments:
        classifier: an nn.Module, ``classifier(x) -> logits`` (N, C), e.g.
            ``kernel_side.load_pretrained("digits-mlp")``.
        generator: a normalizing flow (exact) or a VAE with ``encode``/``decode``, e.g.
            ``kernel_side.load_pretrained("digits-flow")``.
        x: one input or a batch (N, *input_shape), within ``clip``. A
            :class:`~crosslens.DrawPad` (or a list mixing pads and inputs) is followed: a new
            drawing stops the running searches, and after the pad's ``debounce`` the searches
            start over for the new drawing (the other inputs' interrupted searches resume); a
            requested target that the new drawing is predicted as falls back to the runner-up.
        target: None (each input's runner-up: the class the classifier finds second most
            likely), one class index for every input, or a sequence of N (None or an index).
            A target must differ from the input's predicted class.
        class_names: C names for the classes (default ``"0" .. "C-1"``).

    Keyword-only options:
        threshold: stop a search once the target probability exceeds it (default 0.99).
        max_steps: the most Adam steps per search (default 1000).
        compare_pixel: also run the pixel-space search (default True).
        lr, pixel_lr: Adam learning rates of the latent (0.05) and pixel (5e-4) searches,
            the authors' settings.
        record_every: record every k-th step (default 1: every step; raise it for large
            images or many steps, the payload holds every record).
        clip: the valid input range (default (0, 1)), or None for unbounded data.
        pixel_range: (lo, hi) shown as white..black (default: ``clip``, else the inputs' range).

    Traits (read and set them from Python; the view follows):
        index (int): the selected input.
        target (int or None): the selected input's requested target class (None: the
            runner-up; ``targets`` holds the resolved classes). Setting it recomputes that
            input only, in the background; a bad value raises and changes nothing.
        align ("fraction" | "step"), fraction (float in [0, 1]), step (int): the position.
        busy (bool), progress (float in [0, 1]), status (str), error (str): read-only
            state of the searches (see :class:`~crosslens._explorer.Explorer`).

    Example:
        >>> from crosslens import CounterfactualExplorer, kernel_side as ks
        >>> classifier, flow = ks.load_pretrained("digits-mlp"), ks.load_pretrained("digits-flow")
        >>> explorer = CounterfactualExplorer(classifier, flow, ks.load_digits_split()[2][:3], max_steps=50)
        >>> explorer.wait()
        True
        >>> explorer.fraction = 1.0  # the final frames
        >>> bool(explorer.probabilities[explorer.targets[explorer.index]] > 0.99), tuple(explorer.frame.shape)
        (True, (1, 8, 8))
    """

    _esm = _assets.bundle("counterfactual_explorer.js")
    default_target = "the runner-up"

    align = traitlets.Unicode("fraction").tag(sync=True)
    fraction = traitlets.Float(1.0).tag(sync=True)
    step = traitlets.Int(0).tag(sync=True)

    def __init__(self, classifier, generator, x, target=None, class_names=None, *, threshold: float = 0.99,
                 max_steps: int = 1000, compare_pixel: bool = True, lr: float = 0.05, pixel_lr: float = 5e-4,
                 record_every: int = 1, clip=(0.0, 1.0), pixel_range=None, **unknown):
        self._reject_unknown(unknown)
        if not isinstance(compare_pixel, bool):
            raise TypeError(f"compare_pixel must be True or False, got {type(compare_pixel).__name__}")
        self._classifier, self._generator = classifier, generator
        self._methods = METHODS if compare_pixel else METHODS[:1]
        self._settings = {"threshold": threshold, "max_steps": max_steps, "record_every": record_every, "clip": clip}
        self._lrs = {"latent": lr, "pixel": pixel_lr}

        # The engine validates every argument and resolves the default targets (zero-step
        # searches, which also give the first frames).
        x = self._take_inputs(x, getattr(generator, "input_shape", None))
        probe = self._search_once("pixel", x)
        self._x = probe.x.detach().cpu().float()
        self._input_shape = tuple(self._x.shape[1:])
        num_classes = probe.probs.shape[-1]
        self._source = probe.source.cpu()
        self._runner_up = probe.target.cpu()
        self._class_names = check_class_names(class_names, num_classes)
        self._requested = check_requested(target, len(self._x), num_classes)
        for row, value in enumerate(self._requested):
            self._check_target(row, value, "target" if is_one_target(target) else f"target[{row}]")
        self._targets = torch.tensor([self._resolved(row, value) for row, value in enumerate(self._requested)])
        start = self._search_once("latent", x, self._targets)
        self._clip = start.clip
        for pad in self._distinct_pads():
            if self._clip is not None and (pad.pixel_range[0] < self._clip[0] or pad.pixel_range[1] > self._clip[1]):
                raise ValueError(f"x: a DrawPad with pixel_range {pad.pixel_range} draws values outside clip "
                                 f"{tuple(self._clip)}; make the pad with pixel_range={tuple(self._clip)}")
        self._pixel_range = self._pixel_range_for(pixel_range if pixel_range is not None else self._clip, self._x)
        records = max_steps // record_every + 2
        self._warn_if_large(len(self._x) * len(self._methods) * records
                            * (2 * math.prod(self._input_shape) + 2 * num_classes + 4),
                            "pass fewer inputs x, fewer max_steps or a larger record_every")

        count = len(self._x)
        self._generation = [0] * count
        self._tracks: dict[str, list[_Track | None]] = {method: [None] * count for method in METHODS}
        self._first_tracks(list(range(count)), probe, start)
        self._status = {method: [QUEUED] * count for method in METHODS}
        self._resume: dict[str, set[int]] = {method: set() for method in METHODS}  # rows a new drawing interrupted
        super().__init__(index=0, target=self._requested[0])
        self._search(list(range(count)), self._methods)

    def _search_once(self, method: str, x, target=None, **options) -> CounterfactualResult:
        """The engine's search of ``method`` on inputs ``x`` with this explorer's settings; with
        no ``stop`` given, for zero steps (a stop already set ends a search after evaluating its
        start): the first frames, and the engine's checks and default targets."""
        if "stop" not in options:
            options["stop"] = threading.Event()
            options["stop"].set()
        arguments = dict(self._settings, lr=self._lrs[method], **options)
        if method == "latent":
            return latent_counterfactual(self._classifier, self._generator, x, target, **arguments)
        with _renamed_lr("pixel_lr"):
            return pixel_counterfactual(self._classifier, x, target, **arguments)

    def _first_tracks(self, rows: list[int], probe: CounterfactualResult, start: CounterfactualResult) -> None:
        """The tracks of ``rows`` before their searches: the zero-step latent search ``start``
        and the pixel ``probe`` (which may have run for other targets: only its frames and
        probabilities count)."""
        for j, row in enumerate(rows):
            self._tracks["latent"][row] = _Track.of(start, j)
            if "pixel" in self._methods:
                self._tracks["pixel"][row] = replace(_Track.of(probe, j), success=False)

    def _resolved(self, row: int, value: int | None) -> int:
        """The class input ``row`` heads for: ``value``, or the engine's default (the runner-up)."""
        return int(self._runner_up[row]) if value is None else value

    # ---- the background searches --------------------------------------------------------
    def _search(self, rows: list[int], methods: tuple[str, ...]) -> None:
        """Queue the searches of ``methods`` for ``rows`` (with the lock held or before any job)."""
        with self._lock:
            for method in methods:
                for row in rows:
                    self._status[method][row] = QUEUED
            self._submit(_Job(rows, [self._generation[r] for r in rows], methods, self._run_job))

    def _run_job(self, job: _Job, stop: threading.Event) -> None:
        for method in job.methods:
            self._run(job, method, stop)

    def _run(self, job: _Job, method: str, stop: threading.Event) -> None:
        with self._lock:
            live = [(r, g) for r, g in zip(job.rows, job.generations) if self._generation[r] == g]
            if stop.is_set():  # stopped before this search began: nothing to run
                for row, _ in live:
                    self._status[method][row] = STOPPED
                self._publish()
                return
            for row, _ in live:
                self._status[method][row] = RUNNING
            self._publish()
        if not live:
            return
        rows = [row for row, _ in live]
        result = self._search_once(method, self._x[rows], self._targets[rows], stop=stop,
                                   on_progress=lambda partial: self._absorb(method, live, partial, final=False))
        self._absorb(method, live, result, final=True)

    def _absorb(self, method: str, live: list[tuple[int, int]], result: CounterfactualResult, final: bool) -> None:
        """Store a (partial) result of rows ``live`` and stream it."""
        with self._lock:
            max_steps = self._settings["max_steps"]
            for j, (row, generation) in enumerate(live):
                if self._generation[row] != generation:
                    continue  # the target changed meanwhile; a newer job computes this row
                track = _Track.of(result, j)
                self._tracks[method][row] = track
                finished = track.success or track.steps >= max_steps
                self._status[method][row] = DONE if finished else STOPPED if final else RUNNING
            self._publish(final)

    def _on_dropped(self, jobs: list[_Job]) -> None:
        for job in jobs:
            for method in job.methods:
                for row in job.rows:
                    self._status[method][row] = STOPPED

    def _on_failure(self, error: BaseException) -> None:
        for method in METHODS:
            self._status[method] = [STOPPED if s in (QUEUED, RUNNING) else s for s in self._status[method]]
        super()._on_failure(error)

    def _progress(self) -> float:
        max_steps = max(self._settings["max_steps"], 1)
        shares = []
        for method in self._methods:
            for row, status in enumerate(self._status[method]):
                track = self._tracks[method][row]
                shares.append(1.0 if status in (DONE, STOPPED) else 0.0 if track is None else track.steps / max_steps)
        return float(np.mean(shares))

    def _status_text(self) -> str:
        parts = []
        for method in self._methods:
            status = self._status[method]
            done = sum(s == DONE for s in status)
            reached = sum(bool(t and t.success) for t in self._tracks[method])
            label = f"{method}: {reached}/{len(status)} reached p > {self._settings['threshold']:g}"
            if RUNNING in status or QUEUED in status:
                label += f", {done}/{len(status)} done"
            if STOPPED in status:
                label += f", {status.count(STOPPED)} stopped"
            parts.append(label)
        return " · ".join(parts)

    def rerun_stopped(self) -> None:
        """Run every stopped search again, from its input: Adam keeps no state between runs,
        so a stopped search starts over (and shows its old frames until new ones stream in).
        Finished searches are kept. Returns at once; :meth:`wait` for the worker to finish."""
        with self._lock:
            for method in self._methods:
                rows = [row for row, status in enumerate(self._status[method]) if status == STOPPED]
                if rows:
                    self._search(rows, (method,))
            self._publish()

    # ---- drawing pads -----------------------------------------------------------------------
    def _interrupt(self) -> None:
        """A pad changed: its searches are for a drawing that is gone. Stop them now (and with
        them the other inputs' running ones, which resume when the new drawing is followed)."""
        for method in self._methods:
            self._resume[method].update(row for row, status in enumerate(self._status[method])
                                        if status in (QUEUED, RUNNING))
        self.stop()

    def _follow(self, rows: list[int], x: torch.Tensor) -> None:
        """New drawings for inputs ``rows``: their first frames, predicted classes and default
        targets, then their searches from the start (and the interrupted ones of other inputs).
        A requested target that the new drawing is already predicted as falls back to the runner-up."""
        with self._lock:  # zero-step probes (milliseconds): a target chosen meanwhile waits
            probe = self._search_once("pixel", x)
            source, runner_up = probe.source.cpu(), probe.target.cpu()
            requested = list(self._requested)
            targets = self._targets.clone()
            for j, row in enumerate(rows):
                if requested[row] == int(source[j]):
                    requested[row] = None
                targets[row] = int(runner_up[j]) if requested[row] is None else requested[row]
            start = self._search_once("latent", x, targets[rows])
            self._x = self._x.clone()
            self._x[rows] = probe.x.detach().cpu().float()
            self._source, self._runner_up = self._source.clone(), self._runner_up.clone()
            self._source[rows], self._runner_up[rows] = source, runner_up
            self._requested, self._targets = requested, targets
            for row in rows:
                self._generation[row] += 1  # results of the old drawing's searches are dropped
            self._first_tracks(rows, probe, start)
            self._show_requested()
            # one batched job per set of methods: the new drawings' rows run every search, the
            # interrupted rows the searches they were in
            plan = {row: set(self._methods) for row in rows}
            for method in self._methods:
                for row in self._resume[method]:
                    plan.setdefault(row, set()).add(method)
                self._resume[method].clear()
            groups: dict[tuple[str, ...], list[int]] = {}
            for row, methods in sorted(plan.items()):
                groups.setdefault(tuple(m for m in self._methods if m in methods), []).append(row)
            for methods, members in groups.items():
                self._search(members, methods)
            self._publish()

    # ---- payload ------------------------------------------------------------------------
    def _meta(self) -> dict:
        return {
            "threshold": float(self._settings["threshold"]),
            "methods": list(self._methods),
            "generator": type(self._generator).__name__,
            "exact": bool(getattr(self._generator, "exact", False)),
        }

    def _arrays(self) -> dict:
        lo, hi = self._pixel_range
        margin = 0.5 * (hi - lo)
        arrays = {}
        for method in self._methods:
            tracks = self._tracks[method]
            lengths = [0 if t is None else len(t.record_steps) for t in tracks]
            present = [t for t in tracks if t is not None]
            frames = torch.cat([t.frames for t in present]) if present else torch.zeros(0, *self._input_shape)
            probs = torch.cat([t.probs for t in present]) if present else torch.zeros(0, len(self._class_names))
            steps = torch.cat([t.record_steps for t in present]) if present else torch.zeros(0, dtype=torch.long)
            arrays.update({
                # Ragged: the records of row i are [offsets[i], offsets[i + 1]) along the first axis.
                f"{method}_offsets": np.cumsum([0] + lengths).astype(np.int32),
                f"{method}_frames": quantized(frames, "uint16", (lo - margin, hi + margin)),
                f"{method}_probs": quantized(probs, "uint16", (0.0, 1.0)),
                f"{method}_record_steps": steps,
                f"{method}_steps": np.array([0 if t is None else t.steps for t in tracks], dtype=np.int32),
                f"{method}_success": np.array([bool(t and t.success) for t in tracks], dtype=np.uint8),
                f"{method}_status": np.array(self._status[method], dtype=np.uint8),
            })
        return arrays

    # ---- trait validation and observers -------------------------------------------------
    def _retarget(self, row: int, new: int | None, old: int | None) -> None:
        """Search input ``row`` again, in the background, for its new target."""
        with self._lock:
            self._requested[row] = new
            resolved = self._resolved(row, new)
            if resolved != int(self._targets[row]):
                self._targets[row] = resolved
                self._generation[row] += 1
                for method in self._methods:
                    self._tracks[method][row] = None
                self._search([row], self._methods)
            self._publish()

    @traitlets.validate("align")
    def _valid_align(self, proposal):
        return check_choice(proposal["value"], "align", ALIGNS)

    # Setting ``fraction`` or ``step`` (even to its current value) also picks the alignment.
    @traitlets.validate("fraction")
    def _valid_fraction(self, proposal):
        value = float(proposal["value"])
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"fraction must lie in [0, 1] (0: the input, 1: the final frame), got {value}")
        self.align = "fraction"
        return value

    @traitlets.validate("step")
    def _valid_step(self, proposal):
        value = proposal["value"]
        if not 0 <= value <= self._settings["max_steps"]:
            raise ValueError(f"step must lie in [0, {self._settings['max_steps']}] (max_steps), got {value}")
        self.align = "step"
        return value

    # ---- what the user sees, readable from Python ---------------------------------------
    def _record(self, method: str, row: int | None = None) -> tuple[_Track, int] | None:
        """The track on show for ``method`` and the index of its record at the current position."""
        track = self._tracks[method][self.index if row is None else row]
        if track is None:
            return None
        position = track.at_step(self.step) if self.align == "step" else track.at_fraction(self.fraction)
        return track, position

    def _shown(self, method: str, field: str) -> torch.Tensor | None:
        with self._lock:
            shown = self._record(method)
        if shown is None:
            return None
        track, position = shown
        return getattr(track, field)[position].clone()

    @property
    def frame(self) -> torch.Tensor | None:
        """The latent search's frame on show, shape ``input_shape`` (float32, CPU), or None
        while the selected input waits for its search."""
        return self._shown("latent", "frames")

    @property
    def probabilities(self) -> torch.Tensor | None:
        """(C,) class probabilities of :attr:`frame`."""
        return self._shown("latent", "probs")

    @property
    def pixel_frame(self) -> torch.Tensor | None:
        """The pixel search's frame on show (None without ``compare_pixel``)."""
        return self._shown("pixel", "frames")

    @property
    def pixel_probabilities(self) -> torch.Tensor | None:
        """(C,) class probabilities of :attr:`pixel_frame`."""
        return self._shown("pixel", "probs")

    @property
    def shown_steps(self) -> dict[str, int]:
        """The Adam step of the frame on show, per method."""
        with self._lock:
            shown = {method: self._record(method) for method in self._methods}
        return {method: int(s[0].record_steps[s[1]]) for method, s in shown.items() if s is not None}

    def _result(self, method: str) -> CounterfactualResult | None:
        with self._lock:
            tracks = list(self._tracks[method])
            interrupted = STOPPED in self._status[method]  # some search ended before it finished
            target = self._targets.clone()
        if method not in self._methods or any(t is None for t in tracks):
            return None
        length = max(len(t.record_steps) for t in tracks)

        def padded(values: torch.Tensor) -> torch.Tensor:  # repeat the last record, as the engine does
            return torch.cat([values, values[-1:].expand(length - len(values), *values.shape[1:])])

        frames = torch.stack([padded(t.frames) for t in tracks])
        probs = torch.stack([padded(t.probs) for t in tracks])
        confidence = probs.gather(2, target[:, None, None].expand(-1, length, 1)).squeeze(2)
        return CounterfactualResult(
            method=method, threshold=float(self._settings["threshold"]), interrupted=interrupted, x=self.x,
            reference=frames[:, 0].clone(), x_cf=frames[:, -1].clone(), target=target, source=self._source.clone(),
            success=torch.tensor([t.success for t in tracks]), steps=torch.tensor([t.steps for t in tracks]),
            record_steps=torch.stack([padded(t.record_steps) for t in tracks]), frames=frames, probs=probs,
            confidence=confidence,
            latents=torch.stack([padded(t.latents) for t in tracks]) if method == "latent" else None,
            clip=self._clip,
        )

    @property
    def result_latent(self) -> CounterfactualResult | None:
        """Every input's latent search so far (CPU, float32), or None while some input has none yet."""
        return self._result("latent")

    @property
    def result_pixel(self) -> CounterfactualResult | None:
        """Every input's pixel search so far, or None (not computed, or ``compare_pixel=False``)."""
        return self._result("pixel")

    @property
    def row_status(self) -> dict[str, list[str]]:
        """Per method, each input's search state: "queued", "running", "done" or "stopped"."""
        with self._lock:
            return {m: [STATUS_NAMES[s] for s in self._status[m]] for m in self._methods}

    # ---- static figure ------------------------------------------------------------------
    def to_figure(self, figsize: tuple[float, float] | None = None):
        """A matplotlib Figure of the current view: the input; per method the frame on show,
        ``|x - x'|`` and the class probabilities; the confidence curves with the position marked."""
        from matplotlib.figure import Figure

        n = self.index
        with self._lock:
            shown = {method: self._record(method) for method in self._methods}
        source, target = int(self._source[n]), int(self._targets[n])
        lo, hi = self._pixel_range
        channels, height, width = image_shape(self._input_shape)
        picture = self._picture
        rows = len(self._methods)
        fig = Figure(figsize=figsize or (13, 2.7 * rows), layout="constrained")
        grid = fig.add_gridspec(rows, 5, width_ratios=[1, 1, 1, 1.2, 2.2])

        x = self._x[n]
        finals = [s[0].frames[-1] for s in shown.values() if s is not None]
        limit = max([float((x - f).abs().max()) for f in finals] + [1e-6])
        axis = fig.add_subplot(grid[:, 0])
        axis.imshow(picture(x), cmap="gray_r", vmin=lo, vmax=hi, interpolation="nearest")
        axis.set_title(f"input x ({self._class_names[source]})", fontsize=10)
        curve = fig.add_subplot(grid[:, 4])
        for r, method in enumerate(self._methods):
            frame_axis, diff_axis, bars = (fig.add_subplot(grid[r, c]) for c in (1, 2, 3))
            color = PALETTE["methods"][method]
            if shown[method] is None:
                frame_axis.set_title(f"{method}: not computed", fontsize=10)
                for a in (frame_axis, diff_axis, bars):
                    a.set_axis_off()
                continue
            track, i = shown[method]
            step = int(track.record_steps[i])
            frame_axis.imshow(picture(track.frames[i]), cmap="gray_r", vmin=lo, vmax=hi, interpolation="nearest")
            frame_axis.set_title(f"{method}, step {step}", fontsize=10, color=color)
            difference = (x - track.frames[i]).abs().reshape(channels, height, width).mean(0).numpy()
            image = diff_axis.imshow(difference, cmap=colormap("sequential"), vmin=0, vmax=limit, interpolation="nearest")
            diff_axis.set_title("|x − x′|", fontsize=10)
            fig.colorbar(image, ax=diff_axis, shrink=0.8)
            self._draw_probabilities(bars, track.probs[i].numpy(), source, target, fontsize=7)
            for a in (frame_axis, diff_axis):
                a.set_xticks([])
                a.set_yticks([])
            confidence = track.probs[:, target].numpy()
            along = track.record_steps.numpy() if self.align == "step" else np.linspace(0, 1, len(confidence))
            curve.plot(along, confidence, color=color, lw=2, ls="-" if method == "latent" else "--", label=method)
            curve.scatter([along[i]], [confidence[i]], color=color, zorder=5)
        axis.set_xticks([])
        axis.set_yticks([])
        curve.axhline(self._settings["threshold"], color="#757575", lw=1, ls=":")
        curve.axvline(self.step if self.align == "step" else self.fraction, color="#424242", lw=1)
        curve.set_ylim(0, 1.02)
        curve.set_xlabel("Adam step" if self.align == "step" else "share of each path")
        curve.set_title(f"p({self._class_names[target]})", fontsize=10)
        curve.legend(frameon=False, fontsize=9)
        curve.spines[["top", "right"]].set_visible(False)
        self._suptitle(fig, n, "Dombrowski et al. 2024")
        return fig


@contextlib.contextmanager
def _renamed_lr(name: str) -> Iterator[None]:
    """Report the engine's ``lr`` error under this widget's argument name."""
    try:
        yield
    except ValueError as error:
        if str(error).startswith("lr "):
            raise ValueError(name + str(error)[2:]) from None
        raise
