"""The base every crosslens explorer stands on.

An explorer computes everything its view needs with :mod:`crosslens.kernel_side`, packs it
into ONE binary payload (:mod:`crosslens.payload`) and keeps the view state in traits, so
that the browser scrubs without the kernel and Python reads and sets what the user sees.
What every explorer shares lives here, mirrored by ``js/explorer.js`` in the browser:

- the payload, with the inputs, their predicted and target classes and the shared metadata
  (class names, image shape, pixel range, the palette, the status names);
- the selected input (``index``) and its requested target (``target``; None means the
  method's default), which follows the selected input, is checked against the prediction,
  and on change asks the subclass to recompute (:meth:`Explorer._retarget`);
- the status protocol: ``busy``, ``progress``, ``status`` and ``error`` (read-only traits);
- background jobs with :meth:`~Explorer.stop`, :meth:`~Explorer.wait` and throttled
  publishing; each job runs in the context of the request that started it and every worker
  stops and joins at interpreter exit. (A plain thread has no request of its own: ipykernel 7
  then sends its widget updates under the request it handled last and routes the page's next
  messages for that comm to that request's subshell; after a page reload that subshell is
  gone and the page's Stop never arrives. A thread dying inside torch at exit aborts Python.)
- the view's requests (custom messages ``target``, ``stop``, ``rerun``), size warnings, and
  the pieces of ``to_figure`` that every explorer draws;
- drawing pads (:class:`~crosslens.DrawPad`) as inputs: :meth:`Explorer._take_inputs` reads
  them, the base observes them, and after a pad's ``debounce`` with no new stroke one
  background job hands the new drawings to the subclass's :meth:`Explorer._follow` (what a
  new drawing made obsolete is stopped at once by :meth:`Explorer._interrupt`).
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import inspect
import math
import threading
import time
import warnings
import weakref
from collections import deque
from types import MappingProxyType
from typing import Callable, ClassVar, Iterator, Mapping

import anywidget
import numpy as np
import torch
import traitlets

from . import _assets
from ._checks import check_class_index, check_pixel_range, image_shape
from ._style import PALETTE, SOURCE_COLOR, TARGET_COLOR
from .drawpad import DrawPad
from .kernel_side._checks import check_inputs
from .payload import pack

__all__ = ["Explorer", "LARGE_PAYLOAD"]

LARGE_PAYLOAD = 32 * 2**20  # bytes; above this an explorer warns at construction
MIN_INTERVAL = 0.2  # seconds between streamed payloads (plus the time to send one at ~50 MB/s)
STATUS_NAMES = ("queued", "running", "done", "stopped")  # per-row job states, sent as uint8
QUEUED, RUNNING, DONE, STOPPED = range(len(STATUS_NAMES))
EXIT_JOIN_SECONDS = 10.0

_LIVE_WORKERS: "weakref.WeakSet[Explorer]" = weakref.WeakSet()


class _PadJob:
    """The background job that brings new drawings in (:meth:`Explorer._follow_pads`); Stop
    does not drop it, so the explorer never falls behind its pads."""

    def __init__(self, run: Callable[[threading.Event], None]):
        self._run = run

    def __call__(self, stop: threading.Event) -> None:
        self._run(stop)


@atexit.register
def _stop_every_worker() -> None:
    """At interpreter exit (a script's end, a kernel shutdown) stop every search and wait for
    it: a thread still inside torch when the interpreter finalises aborts the process."""
    for explorer in list(_LIVE_WORKERS):
        explorer._shutdown(EXIT_JOIN_SECONDS)


class Explorer(anywidget.AnyWidget):
    """Base of the explorers.

    A subclass sets ``_x`` (N, *input_shape) on the CPU, ``_input_shape``, ``_class_names``,
    ``_pixel_range``, ``_source`` and ``_targets`` ((N,) predicted and resolved target
    classes) and ``_requested`` (N requested targets, None or a class each), then calls
    ``super().__init__(**traits)``; it implements :meth:`_arrays` (its part of the payload)
    and :meth:`_retarget` (what a new target for one input recomputes). To accept drawing
    pads it passes its ``x`` through :meth:`_take_inputs` first and implements
    :meth:`_follow` (what new drawings recompute), and :meth:`_interrupt` where a new drawing
    makes running work obsolete.

    Traits (shared by every explorer):
        index (int): the selected input.
        target (int or None): the requested target of the selected input; None is the
            method's default (see ``targets`` for the resolved classes).
        busy (bool), progress (float in [0, 1]), status (str), error (str): read-only
            state of the work in the kernel, shown by the view.
    """

    _css = _assets.stylesheet()

    _payload = traitlets.Bytes(b"").tag(sync=True)
    index = traitlets.Int(0).tag(sync=True)
    target = traitlets.Int(None, allow_none=True).tag(sync=True)
    busy = traitlets.Bool(False, read_only=True).tag(sync=True)
    progress = traitlets.Float(0.0, read_only=True).tag(sync=True)
    status = traitlets.Unicode("", read_only=True).tag(sync=True)
    error = traitlets.Unicode("", read_only=True).tag(sync=True)

    #: What ``target=None`` means for this explorer, in words for messages and the view.
    default_target: ClassVar[str] = "the default target"

    _ready = False  # True once constructed: before that, traits are set without side effects
    _quiet = False  # True while ``target`` follows the selected input without recomputing
    _closing = False  # True once the explorer is shut down: nothing is sent to the view any more
    _worker: threading.Thread | None = None
    _watching = False  # True while the explorer observes its pads
    _pads: Mapping[int, DrawPad] = MappingProxyType({})  # input row -> its pad (an own dict from _take_inputs)

    def __init__(self, **traits):
        self._lock = threading.RLock()
        self._jobs: deque[tuple[Callable, contextvars.Context]] = deque()
        self._idle = threading.Event()
        self._idle.set()
        self._stop_event = threading.Event()
        self._failure: BaseException | None = None
        self._last_sent = -math.inf
        self._pad_rows: set[int] = set()  # rows whose pad changed since the last _follow
        self._pad_deadline = -math.inf  # when the pads' debounce ends (time.monotonic)
        super().__init__(_payload=self._pack(), **traits)
        self.on_msg(self._on_custom_msg)
        self._ready = True
        for pad in self._distinct_pads():  # last: a constructor that failed leaves the pads alone
            pad.observe(self._on_pad_value, "value")
        self._watching = bool(self._pads)

    # ---- constructor helpers ---------------------------------------------------------------
    def _reject_unknown(self, unknown: dict) -> None:
        """TypeError naming unexpected keyword arguments and listing the accepted ones (read
        from the subclass's signature)."""
        if unknown:
            parameters = inspect.signature(type(self).__init__).parameters.values()
            accepted = [p.name for p in parameters if p.name != "self" and p.kind is not p.VAR_KEYWORD]
            raise TypeError(
                f"{type(self).__name__}() got unexpected keyword argument(s) "
                f"{', '.join(map(repr, sorted(unknown)))}; accepted: {', '.join(accepted)}"
            )

    def _take_inputs(self, x, input_shape: tuple[int, ...] | None = None, name: str = "x"):
        """``x`` with its drawing pads read, remembering which input row follows which pad.

        ``x`` may be a :class:`~crosslens.DrawPad` (one input), or a list or tuple mixing pads
        and inputs (one input or a batch each, in order); then the result is an (N,
        *input_shape) tensor (``input_shape``: what the explorer's model takes, default the
        pads' shape; a pad fits when it has as many values). Anything else is returned as
        given, for the subclass's own checks.
        """
        self._pads = {}
        if isinstance(x, DrawPad):
            items, names = [x], [name]
        elif isinstance(x, (list, tuple)) and any(isinstance(item, DrawPad) for item in x):
            items, names = list(x), [f"{name}[{i}]" for i in range(len(x))]
        else:
            return x
        pads = [(item, where) for item, where in zip(items, names) if isinstance(item, DrawPad)]
        if input_shape is None:
            shapes = sorted({pad.input_shape for pad, _ in pads})
            if len(shapes) > 1:
                raise ValueError(f"{name}: the pads draw pictures of different shapes {shapes}; use one shape")
            shape = shapes[0]
        else:
            shape = tuple(int(size) for size in input_shape)
        for pad, where in pads:
            if shape == (2,):
                raise ValueError(f"{where} is a DrawPad, but the model takes 2-feature inputs (points on a map), "
                                 "not pictures; pass the points as a tensor")
            if math.prod(pad.input_shape) != math.prod(shape):
                raise ValueError(
                    f"{where} is a DrawPad of {pad.input_shape} pictures ({math.prod(pad.input_shape)} values), but "
                    f"the model takes {shape} inputs ({math.prod(shape)} values); make the pad with DrawPad({shape})")
        batches = []
        for item, where in zip(items, names):
            if isinstance(item, DrawPad):
                self._pads[sum(len(b) for b in batches)] = item
                batches.append(item.value.reshape(1, *shape).float())
            else:
                batches.append(check_inputs(item, shape, where).detach().to("cpu", torch.float32))
        return torch.cat(batches)

    def _pixel_range_for(self, pixel_range, x: torch.Tensor) -> tuple[float, float]:
        """``pixel_range``, or by default one that holds ``x`` and every pad's paper and ink."""
        if pixel_range is None and self._pads:
            ranges = [pad.pixel_range for pad in self._pads.values()]
            pixel_range = (min(min(lo for lo, _ in ranges), float(x.min())),
                           max(max(hi for _, hi in ranges), float(x.max())))
        return check_pixel_range(pixel_range, x)

    def _warn_if_large(self, size: float, advice: str) -> None:
        """Warn when the payload will be about ``size`` bytes or more; ``advice`` says what to pass."""
        if size > LARGE_PAYLOAD:
            warnings.warn(f"{type(self).__name__} may send about {size / 2**20:.0f} MiB to the browser; {advice} "
                          "to keep the notebook light", stacklevel=3)

    def _check_target(self, row: int, value: int | None, name: str = "target") -> int | None:
        """``value`` for input ``row``: None or a class other than the input's prediction."""
        if value is not None and value == int(self._source[row]):
            raise ValueError(
                f"{name} must differ from the predicted class of input {row} ({self._class_names[value]!r}, "
                f"class {value}); pick another class or None for {self.default_target}"
            )
        return value

    # ---- the payload ---------------------------------------------------------------------------
    def _arrays(self) -> dict:
        """The subclass's arrays of the payload (see :mod:`crosslens.payload`)."""
        raise NotImplementedError

    def _meta(self) -> dict:
        """The subclass's metadata of the payload."""
        return {}

    def _pack(self) -> bytes:
        lo, hi = self._pixel_range
        meta = {
            "class_names": self._class_names,
            "image_shape": list(image_shape(self._input_shape)),
            "pixel_range": [lo, hi],
            "default_target": self.default_target,
            "palette": PALETTE,
            "status_names": list(STATUS_NAMES),
            "pad_rows": sorted(self._pads),
            **self._meta(),
        }
        requested = [-1 if value is None else value for value in self._requested]
        arrays = {"x": self._x, "source": self._source, "target": self._targets,
                  "requested": np.array(requested, dtype=np.int32), **self._arrays()}
        return pack(arrays, meta)

    # ---- index and target ----------------------------------------------------------------------
    @traitlets.validate("index")
    def _valid_index(self, proposal):
        value = proposal["value"]
        if not 0 <= value < len(self._x):
            raise ValueError(f"index must lie in [0, {len(self._x) - 1}] (one of the {len(self._x)} inputs), got {value}")
        return value

    @traitlets.validate("target")
    def _valid_target(self, proposal):
        value = check_class_index(proposal["value"], len(self._class_names))
        if self._ready and not self._quiet:
            self._check_target(self.index, value)
        return value

    @contextlib.contextmanager
    def _quietly(self) -> Iterator[None]:
        """Set ``target`` without recomputing (it follows the selected input)."""
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False

    def _show_requested(self) -> None:
        """``target`` shows the selected input's requested target again, without recomputing
        (after the kernel changed a request, e.g. for a new drawing)."""
        if self.target != self._requested[self.index]:
            with self._quietly():
                self.target = self._requested[self.index]

    @traitlets.observe("index")
    def _on_index(self, change):
        if self._ready:
            with self._quietly():
                self.target = self._requested[change["new"]]

    @traitlets.observe("target")
    def _on_target(self, change):
        # traitlets skips validators for None; None is always a valid request
        if not self._ready or self._quiet or change["new"] == self._requested[self.index]:
            return
        self._retarget(self.index, change["new"], change["old"])

    def _retarget(self, row: int, new: int | None, old: int | None) -> None:
        """Recompute input ``row`` for the requested target ``new`` (None: the default)."""
        raise NotImplementedError

    # ---- requests from the view ----------------------------------------------------------------
    def _on_custom_msg(self, _widget, content, _buffers) -> None:
        """``{"event": "target", "index": i, "target": k | None}``, ``{"event": "stop"}`` and
        ``{"event": "rerun"}``. Errors go to the ``error`` trait: nothing raises in the kernel."""
        if not isinstance(content, dict):
            return
        event = content.get("event")
        if event == "stop":
            self.stop()
        elif event == "rerun":
            self.rerun_stopped()
        elif event == "target":
            try:
                if content.get("index") is not None:
                    self.index = int(content["index"])
                self.target = content.get("target")
            except (ValueError, TypeError, traitlets.TraitError) as error:
                self.set_trait("error", str(error))
            finally:
                self.send({"event": "target-done"})

    def rerun_stopped(self) -> None:
        """Run the stopped work again (explorers with background jobs override this)."""

    # ---- background jobs -----------------------------------------------------------------------
    def _submit(self, job: Callable[[threading.Event], None]) -> None:
        """Queue ``job(stop)`` for the background worker (started on demand), to run in the
        context of the request that submits it: its messages to the view then carry that
        request as their parent, wherever the worker thread came from."""
        with self._lock:
            if self._stop_event.is_set():
                self._stop_event = threading.Event()
            self._failure = None  # a new request clears the last failure: wait() reports the newest
            self.set_trait("error", "")
            self._jobs.append((job, contextvars.copy_context()))
            self._idle.clear()
            self.set_trait("busy", True)
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name=f"crosslens-{type(self).__name__}",
                                                daemon=True)
                _LIVE_WORKERS.add(self)
                self._worker.start()

    def _work(self) -> None:
        context = None
        while True:
            with self._lock:
                if not self._jobs:
                    self._worker = None
                    (context or contextvars.copy_context()).run(self._settle)
                    return
                job, context = self._jobs.popleft()
                stop = self._stop_event
            try:
                context.run(job, stop)
            except Exception as error:  # shown in the view; wait() raises it
                with self._lock:
                    self._failure = error
                    self._jobs.clear()
                    context.run(self._on_failure, error)

    def _settle(self) -> None:
        """The queue is empty: publish the final state and go idle (with the lock held)."""
        self._publish()
        self.set_trait("busy", False)
        self._idle.set()

    def _on_failure(self, error: BaseException) -> None:
        """A job raised ``error`` (with the lock held): queued jobs are dropped."""
        self.set_trait("error", f"{type(error).__name__}: {error}")

    def _publish(self, final: bool = True) -> None:
        """Send the current state; while work streams (``final=False``) at most every
        MIN_INTERVAL seconds plus the time to send the last payload. Call with the lock held."""
        if not self._ready or self._closing:
            return
        if not final and time.monotonic() - self._last_sent < MIN_INTERVAL + len(self._payload) / 50e6:
            return
        with self.hold_sync():
            self._payload = self._pack()
            self.set_trait("progress", self._progress())
            self.set_trait("status", self._status_text())
        self._last_sent = time.monotonic()

    def _progress(self) -> float:
        return 0.0 if self.busy else 1.0

    def _status_text(self) -> str:
        return ""

    def stop(self) -> None:
        """Stop the background work now: the running job returns what it computed, queued
        ones are dropped (not the one that brings a pad's new drawing in). Returns at once;
        :meth:`wait` for the worker to finish."""
        with self._lock:
            self._stop_event.set()
            kept = [entry for entry in self._jobs if isinstance(entry[0], _PadJob) and not self._closing]
            dropped = [job for job, _ in self._jobs if not isinstance(job, _PadJob)]
            self._jobs = deque(kept)
            self._on_dropped(dropped)

    def _on_dropped(self, jobs: list[Callable]) -> None:
        """Queued ``jobs`` were dropped by :meth:`stop` (with the lock held)."""

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the background work is finished (True) or ``timeout`` seconds passed
        (False). Raises the error of a job that failed in the background."""
        finished = self._idle.wait(timeout)
        if self._failure is not None:
            raise RuntimeError(f"a background computation of {type(self).__name__} failed: {self._failure}") \
                from self._failure
        return finished

    def _shutdown(self, timeout: float) -> None:
        """Stop the work and wait up to ``timeout`` seconds for the worker thread to end."""
        self._closing = True
        self.stop()
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout)

    def close(self) -> None:
        """Stop following the pads, stop the background work, wait for it, and close the widget."""
        if self._ready:  # (a constructor that failed leaves nothing to stop)
            if self._watching:
                self._watching = False
                for pad in self._distinct_pads():
                    pad.unobserve(self._on_pad_value, "value")
            self._shutdown(EXIT_JOIN_SECONDS)
        super().close()

    # ---- drawing pads as inputs -----------------------------------------------------------------
    def _distinct_pads(self) -> list[DrawPad]:
        return list({id(pad): pad for pad in self._pads.values()}.values())

    def _on_pad_value(self, change) -> None:
        """A pad's drawing changed (a finished stroke, an undo, a clear, a value set from code):
        stop what it made obsolete now, and follow it once no stroke came for the pad's
        ``debounce`` seconds, in a background job of this request (the one that changed the pad)."""
        if self._closing:
            return
        pad = change["owner"]
        with self._lock:
            self._pad_rows.update(row for row, each in self._pads.items() if each is pad)
            self._pad_deadline = time.monotonic() + pad.debounce
            self._interrupt()
            self._submit(_PadJob(self._follow_pads))

    def _follow_pads(self, stop: threading.Event) -> None:
        """Wait out the debounce, then hand every changed row's new drawing to :meth:`_follow`.
        A later change moves the deadline; a job that finds nothing left to do returns."""
        while not self._closing:
            with self._lock:
                remaining = self._pad_deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(remaining, 0.05))
        with self._lock:
            rows = sorted(self._pad_rows)
            self._pad_rows.clear()
        if self._closing or not rows:
            return
        x = torch.stack([self._pads[row].value.reshape(self._input_shape).float() for row in rows])
        self._follow(rows, x)

    def _interrupt(self) -> None:
        """A pad changed (with the lock held): stop work its old drawing made obsolete."""

    def _follow(self, rows: list[int], x: torch.Tensor) -> None:
        """Recompute inputs ``rows``, whose pads now hold ``x`` (len(rows), *input_shape), and
        publish (in the background worker; a failure is shown and raised by :meth:`wait`)."""
        raise NotImplementedError

    # ---- what the user sees, readable from Python ----------------------------------------------
    @property
    def x(self) -> torch.Tensor:
        """(N, *input_shape) the inputs."""
        return self._x.clone()

    @property
    def class_names(self) -> list[str]:
        return list(self._class_names)

    @property
    def payload(self) -> bytes:
        """The binary payload the front end draws from (see :mod:`crosslens.payload`)."""
        return self._payload

    @property
    def predicted(self) -> torch.Tensor:
        """(N,) each input's predicted class."""
        return self._source.clone()

    @property
    def targets(self) -> torch.Tensor:
        """(N,) the class each input heads for (defaults resolved)."""
        with self._lock:
            return self._targets.clone()

    # ---- saving -------------------------------------------------------------------------------
    def save_html(self, path, *, title: str | None = None):
        """Write the explorer as ONE self-contained HTML page (view, styles, state and payload
        inlined; no CDN, no kernel, no network) and return its path. Sliders, pickers and
        overlays work from disk; controls that need the kernel are shown disabled."""
        from ._export import saved_page, write_page

        traits = set(type(self).class_trait_names(sync=True)) - set(anywidget.AnyWidget.class_trait_names(sync=True))
        with self._lock:
            state = {name: getattr(self, name) for name in sorted(traits - {"_payload"})}
            payload = self._payload
        state.update(busy=False, progress=1.0, _offline=True)
        page = saved_page(title or type(self).__name__, self._esm, self._css, state, payload)
        return write_page(path, page)

    def save_png(self, path, *, dpi: int = 150):
        """Write what :meth:`to_figure` draws to a PNG file and return its path."""
        from pathlib import Path

        path = Path(path)
        if path.suffix.lower() != ".png":
            raise ValueError(f"path must name a .png file, got {str(path)!r}")
        self.to_figure().savefig(path, dpi=dpi)
        return path

    # ---- static figures ------------------------------------------------------------------------
    def _picture(self, values: torch.Tensor) -> np.ndarray:
        """One input as matplotlib's ``imshow`` draws it: RGB in [0, 1] for three channels,
        else the channel mean (shown with ``vmin, vmax = pixel_range``)."""
        channels, height, width = image_shape(self._input_shape)
        values = values.reshape(channels, height, width)
        if channels == 3:
            lo, hi = self._pixel_range
            return ((values - lo) / (hi - lo)).clamp(0, 1).permute(1, 2, 0).numpy()
        return values.mean(0).numpy()

    def _draw_probabilities(self, axis, probs, source: int, target: int, title: str | None = None,
                            fontsize: float | None = None) -> None:
        """Horizontal class probability bars, the predicted and the target class coloured."""
        colors = ["#9e9e9e"] * len(probs)
        colors[source], colors[target] = SOURCE_COLOR, TARGET_COLOR
        positions = np.arange(len(probs))
        axis.barh(positions, probs, color=colors)
        axis.set_yticks(positions, self._class_names, fontsize=fontsize)
        axis.invert_yaxis()
        axis.set_xlim(0, 1)
        axis.spines[["top", "right"]].set_visible(False)
        if title:
            axis.set_title(title, fontsize=10)

    def _suptitle(self, figure, row: int, citation: str) -> None:
        """The figure's title: the input, its predicted and its target class, the paper."""
        source, target = int(self._source[row]), int(self._targets[row])
        figure.suptitle(f"input {row}: predicted {self._class_names[source]} → target "
                        f"{self._class_names[target]} ({citation})", fontsize=11)
