"""DrawPad: draw an input with the mouse, a pen, a finger or the keyboard, and let explorers follow it.

The pad is an ipywidgets box around an ipycanvas ``MultiCanvas`` (two layers: the picture and
the keyboard cursor). Python is the pad's brain, as ipycanvas wants it: the canvas sends its
pointer and key events to the kernel, the pad keeps every stroke and draws back.

How a drawing becomes an input:

- A stroke is a polyline in *input pixel* coordinates (x to the right, y down, (0, 0) the top
  left corner of the image) with a brush diameter in input pixels.
- It is rasterised at display resolution, ``scale`` screen pixels per input pixel (an
  integer), as the coverage of each display pixel by the stroke's capsule: with d the
  distance from the pixel's centre to the polyline and r the brush radius,
  ``coverage = clip(r + 0.5 - d, 0, 1)``, exact for edges along the pixel grid and a
  one-pixel antialiasing ramp elsewhere. Strokes combine by their maximum: ink over ink
  stays ink.
- The display picture is ``max(picture set from Python, lo + (hi - lo) * coverage)`` per
  channel (every channel gets the ink), and ``value`` is its area average over each
  ``scale x scale`` block (in float64, so a picture set from Python reads back exactly).

While a stroke is drawn the canvas shows a quick preview (the browser's own round line);
when it ends the canvas shows the exact display picture the value is averaged from.

``value`` changes once per finished stroke (and on undo, clear, or a new value from Python);
explorers that follow the pad wait ``debounce`` seconds after the last change before they
recompute, so a digit drawn in several strokes is computed once.
"""

from __future__ import annotations

import html
import math
import threading
from dataclasses import dataclass
from typing import Sequence

import ipywidgets
import numpy as np
import torch
import traitlets

from .kernel_side._checks import check_inputs, check_interval, check_real

__all__ = ["DrawPad", "stroke_coverage"]

BRUSH_STEP = 0.25  # input pixels: the brush slider's and the keyboard's step
PREVIEW_INK = "#000000"
CURSOR_COLOR = "#1976d2"  # the palette's source blue: visible on the pad's paper in both themes

# ipycanvas sends every drawing command through one global manager whose batching
# (hold_canvas) is not thread-safe: pads draw from the kernel's shell and its subshells.
_CANVAS_LOCK = threading.RLock()

_STYLE = """<style>
.xl-drawpad {
  border: 1px solid var(--jp-border-color2, #e0e0e0); border-radius: 8px; padding: 6px 10px 8px;
  background: var(--jp-layout-color1, #ffffff); color: var(--jp-ui-font-color1, rgba(0, 0, 0, 0.87));
  width: max-content; max-width: 100%; box-sizing: border-box;
}
.xl-drawpad .xl-drawpad-title { font-weight: 600; white-space: nowrap; }
.xl-drawpad canvas {
  cursor: crosshair; touch-action: none; border-radius: 3px;
  outline: 1px solid var(--jp-border-color1, #bdbdbd);
}
.xl-drawpad canvas:focus-visible { outline: 3px solid var(--jp-brand-color1, #1976d2); outline-offset: 2px; }
.xl-drawpad .xl-drawpad-status, .xl-drawpad .xl-drawpad-help {
  color: var(--jp-ui-font-color2, rgba(0, 0, 0, 0.6)); font-size: var(--jp-ui-font-size1, 13px);
  max-width: 34em; line-height: 1.4;
}
.xl-drawpad .xl-drawpad-help kbd {
  font-family: var(--jp-code-font-family, monospace); border: 1px solid var(--jp-border-color1, #bdbdbd);
  border-radius: 3px; padding: 0 3px; background: var(--jp-layout-color2, #eeeeee);
}
</style>"""

_KEYS_HELP = (
    "<div class='xl-drawpad-help' data-role='drawpad-help'><b>Keyboard</b>: "
    "<kbd>Tab</kbd> to the pad, then <kbd>←</kbd> <kbd>→</kbd> <kbd>↑</kbd> <kbd>↓</kbd> move the cursor "
    "(with <kbd>Shift</kbd>: further), <kbd>Space</kbd> or <kbd>Enter</kbd> puts the pen down and lifts it "
    "(a stroke ends when the pen is lifted), <kbd>+</kbd> / <kbd>−</kbd> change the brush, "
    "<kbd>Backspace</kbd> undoes, <kbd>Delete</kbd> clears, <kbd>Tab</kbd> / <kbd>Shift</kbd>+<kbd>Tab</kbd> "
    "or <kbd>Esc</kbd> leave the pad.</div>"
)


@dataclass(frozen=True)
class _Stroke:
    points: np.ndarray  # (P, 2) float64, input pixel coordinates (x, y)
    brush: float  # diameter in input pixels


@dataclass(frozen=True)
class _Picture:
    values: np.ndarray  # (C, H, W) float64 in value units: a picture set from Python (or the blank pad)


def stroke_coverage(points, radius: float, height: int, width: int) -> np.ndarray:
    """(height, width) coverage in [0, 1] of each pixel by the capsule of radius ``radius``
    around the polyline ``points`` ((P, 2) as (x, y), in pixels; one point is a dot):
    ``clip(radius + 0.5 - d, 0, 1)`` with d the distance from the pixel's centre to the polyline."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    coverage = np.zeros((height, width), dtype=np.float64)
    if len(points) == 0:
        return coverage
    starts, ends = (points, points) if len(points) == 1 else (points[:-1], points[1:])
    reach = radius + 0.5
    for (ax, ay), (bx, by) in zip(starts, ends):
        x0 = max(int(math.floor(min(ax, bx) - reach)), 0)
        x1 = min(int(math.ceil(max(ax, bx) + reach)) + 1, width)
        y0 = max(int(math.floor(min(ay, by) - reach)), 0)
        y1 = min(int(math.ceil(max(ay, by) + reach)) + 1, height)
        if x0 >= x1 or y0 >= y1:
            continue
        px = np.arange(x0, x1, dtype=np.float64)[None, :] + 0.5
        py = np.arange(y0, y1, dtype=np.float64)[:, None] + 0.5
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        u = np.zeros(1) if length2 == 0 else np.clip(((px - ax) * dx + (py - ay) * dy) / length2, 0.0, 1.0)
        distance = np.hypot(px - (ax + u * dx), py - (ay + u * dy))
        block = coverage[y0:y1, x0:x1]
        np.maximum(block, np.clip(reach - distance, 0.0, 1.0), out=block)
    return coverage


def _pad_shape(input_shape) -> tuple[int, ...]:
    """``input_shape`` (or a model's) as (H, W) or (C, H, W), with a clear refusal otherwise."""
    source = input_shape
    if isinstance(input_shape, (str, bytes)):
        raise TypeError(f"input_shape must be (H, W) or (C, H, W) (ints), or a model with an input_shape; "
                        f"got {type(source).__name__} {input_shape!r}")
    if hasattr(input_shape, "input_shape") and not isinstance(input_shape, (tuple, list)):
        input_shape = input_shape.input_shape
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise TypeError(f"input_shape must be (H, W) or (C, H, W) (ints), or a model with an input_shape; "
                        f"got {type(source).__name__}") from None
    if not all(isinstance(size, (int, np.integer)) and not isinstance(size, bool) for size in shape):
        raise TypeError(f"input_shape must hold ints, got {shape!r}")
    shape = tuple(int(size) for size in shape)
    if len(shape) == 1:
        if shape == (2,):
            raise ValueError("input_shape (2,) is a point with two features, not a picture: a pad draws images. "
                             "Pick 2-feature inputs on the BoundaryExplorer's map instead")
        side = math.isqrt(shape[0])
        hint = f", e.g. ({side}, {side}) for {shape[0]} values" if side * side == shape[0] and side > 1 else ""
        raise ValueError(f"input_shape {shape} is a flat vector: a pad needs the picture's shape (H, W) or "
                         f"(C, H, W){hint} (the explorers take the drawing flattened where the model wants it)")
    if len(shape) not in (2, 3):
        raise ValueError(f"input_shape must be (H, W) or (C, H, W), got {shape}")
    if any(size < 1 for size in shape) or min(shape[-2:]) < 2:
        raise ValueError(f"input_shape must be a picture at least 2 x 2 pixels, got {shape}")
    return shape


def _check_float(value, name: str, low: float, high: float) -> float:
    return check_real(value, name, low, high, closed="both")


class DrawPad(ipywidgets.VBox):
    """A pad to draw one input on, with the mouse, a pen, a finger or the keyboard.

    Draw on the canvas; Undo, Clear and the Brush slider sit under it. Each finished stroke
    updates ``value``, the drawing area-averaged down to ``input_shape``, with the ink at the
    top of ``pixel_range`` (like the digits data: ink 1, paper 0). Give the pad to an explorer
    as its input (``BoundaryExplorer(model, pad)``, ``CounterfactualExplorer(classifier,
    generator, pad)``, or a list mixing pads and inputs) and the explorer follows the drawing:
    ``debounce`` seconds after the last stroke it recomputes that input.

    Keyboard: Tab to the pad; the arrow keys move a cursor (Shift: further), Space or Enter
    puts the pen down and lifts it, + and - change the brush, Backspace undoes, Delete clears,
    Tab, Shift+Tab or Escape leave the pad. Undo, Clear and the slider are ordinary controls.

    Arguments:
        input_shape: the picture's shape, (H, W) or (C, H, W) (default (1, 8, 8), the shipped
            digits), or a model (or generator) with an ``input_shape``. Every channel gets the
            ink. A flat or 2-feature shape such as (2,) is refused: there is no picture to draw.

    Keyword-only options:
        value: the starting picture (default: blank, ``pixel_range[0]`` everywhere).
        pixel_range: (lo, hi), paper and ink (default (0, 1)).
        brush: the brush diameter in input pixels (default 1.5 for small pictures, about a
            tenth of the shorter side for larger ones).
        size: the pad's longer side on screen, in CSS pixels (default 256); the display
            resolution is a whole number of screen pixels per input pixel.
        debounce: seconds without a new stroke before a following explorer recomputes
            (default 0.4; 0 recomputes at once).

    Traits and methods:
        value (torch.Tensor): (input_shape) float32; read it, or set a new picture (a tensor,
            an array, one input or a batch of one, within ``pixel_range``): the pad shows it,
            and later strokes draw on top of it. Assign a new tensor rather than changing it in place.
        brush (float): the brush diameter in input pixels.
        draw_stroke(points, brush=None): a stroke from code, points (x, y) in input pixels.
        undo(), clear(); ``history_length`` counts the undo steps.

    Example:
        >>> from crosslens import DrawPad, kernel_side as ks
        >>> pad = DrawPad((1, 8, 8))
        >>> pad.draw_stroke([(0, 3.5), (8, 3.5)], brush=1.0)  # a bar through the middle of row 3
        >>> pad.value[0, 3].tolist(), float(pad.value.sum())
        ([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], 8.0)
        >>> pad.value = ks.load_digits_split()[2][0]  # a test digit, shown on the pad
        >>> pad.undo()  # back to the bar
        True
        >>> float(pad.value.sum())
        8.0
    """

    value = traitlets.Any()
    brush = traitlets.Float(1.5)
    debounce = traitlets.Float(0.4)

    def __init__(self, input_shape=(1, 8, 8), *, value=None, pixel_range=(0.0, 1.0), brush=None, size: int = 256,
                 debounce: float = 0.4, **unknown):
        if unknown:
            raise TypeError(f"DrawPad() got unexpected keyword argument(s) {', '.join(map(repr, sorted(unknown)))}; "
                            "accepted: input_shape, value, pixel_range, brush, size, debounce")
        self._shape = _pad_shape(input_shape)
        channels = 1 if len(self._shape) == 2 else self._shape[0]
        self._channels, self._height, self._width = channels, self._shape[-2], self._shape[-1]
        self._lo, self._hi = check_interval(pixel_range, "pixel_range")
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
            raise TypeError(f"size must be an int (CSS pixels), got {type(size).__name__}")
        if not 32 <= size <= 2048:
            raise ValueError(f"size must lie in [32, 2048] (CSS pixels of the pad's longer side), got {size}")
        self._scale = max(1, round(int(size) / max(self._height, self._width)))
        self._brush_max = float(max(4.0, BRUSH_STEP * math.ceil(min(self._height, self._width) / 3 / BRUSH_STEP)))
        if brush is None:
            short = min(self._height, self._width)
            brush = 1.5 if short <= 16 else BRUSH_STEP * round(short / 10 / BRUSH_STEP)
        brush = _check_float(brush, "brush", BRUSH_STEP, self._brush_max)
        debounce = _check_float(debounce, "debounce", 0.0, 10.0)
        blank = np.full((channels, self._height, self._width), self._lo, dtype=np.float64)
        start = blank if value is None else self._as_picture(value, "value")

        self._lock = threading.RLock()
        self._history: list[_Stroke | _Picture] = [] if value is None else [_Picture(start)]
        self._blank = blank
        self._base = start  # the picture below the strokes since the last _Picture
        self._coverage = np.zeros((self._height * self._scale, self._width * self._scale))
        self._stroke: list[tuple[float, float]] | None = None  # the stroke being drawn (display pixels)
        self._stroke_brush = brush
        self._pen = ""  # "", "pointer" or "keyboard": who holds the stroke being drawn
        self._cursor = (self._width / 2, self._height / 2)  # keyboard cursor, input pixels
        self._cursor_shown = False
        self._internal = False
        self._message = ""

        self._build(brush)
        self._internal = True  # the first value is the drawing's, not a picture set from code
        try:
            super().__init__(children=self._children, value=self._compose(), brush=brush, debounce=debounce)
        finally:
            self._internal = False
        self.add_class("xl-drawpad")
        self.layout.align_self = "flex-start"  # next to an explorer in an HBox: as tall as its content
        traitlets.link((self._brush_slider, "value"), (self, "brush"))
        self._connect()
        self._render()

    # ---- the widgets ------------------------------------------------------------------------
    def _build(self, brush: float) -> None:
        from ipycanvas import MultiCanvas

        height, width, scale = self._height, self._width, self._scale
        self._caption = f"{height} × {width}" + (f", {self._channels} channels" if self._channels > 1 else "")
        self._title = ipywidgets.HTML("<div class='xl-drawpad-title'>Drawing pad</div>",
                                      layout=ipywidgets.Layout(flex="1 1 auto", width="auto"))
        self._help_toggle = ipywidgets.ToggleButton(
            value=False, description="Keyboard help", tooltip="Show how to draw with the keyboard",
            layout=ipywidgets.Layout(width="auto", flex="0 0 auto"))
        self._help = ipywidgets.HTML(_KEYS_HELP, layout=ipywidgets.Layout(display="none",
                                                                         max_width=f"{max(width * scale, 220)}px"))
        self._canvas = MultiCanvas(2, width=width * scale, height=height * scale)
        self._canvas.add_class("xl-drawpad-canvas")
        self._undo_button = ipywidgets.Button(description="Undo", tooltip="Undo the last stroke (Backspace on the pad)",
                                              layout=ipywidgets.Layout(width="auto"))
        self._clear_button = ipywidgets.Button(description="Clear", tooltip="Clear the pad (Delete on the pad)",
                                               layout=ipywidgets.Layout(width="auto"))
        self._brush_slider = ipywidgets.FloatSlider(
            value=brush, min=BRUSH_STEP, max=self._brush_max, step=BRUSH_STEP, description="Brush",
            readout_format=".2f", continuous_update=False, tooltip="Brush diameter in input pixels",
            style={"description_width": "auto"}, layout=ipywidgets.Layout(width="220px"))
        self._status = ipywidgets.HTML("")
        self._style = ipywidgets.HTML(_STYLE, layout=ipywidgets.Layout(display="none"))
        self._children = [
            ipywidgets.HBox([self._title, self._help_toggle],
                            layout=ipywidgets.Layout(align_items="center", width=f"{max(width * scale, 220)}px")),
            self._help, self._canvas,
            ipywidgets.HBox([self._undo_button, self._clear_button, self._brush_slider],
                            layout=ipywidgets.Layout(align_items="center", flex_flow="row wrap")),
            self._status, self._style,
        ]

    def _connect(self) -> None:
        canvas = self._canvas
        canvas.on_mouse_down(lambda x, y: self._pointer_down(x, y))
        canvas.on_mouse_move(lambda x, y: self._pointer_move(x, y))
        canvas.on_mouse_up(lambda x, y: self._pointer_up(x, y))
        canvas.on_mouse_out(lambda x, y: self._pointer_up(x, y))
        canvas.on_touch_start(lambda touches: touches and self._pointer_down(*touches[0]))
        canvas.on_touch_move(lambda touches: touches and self._pointer_move(*touches[0]))
        canvas.on_touch_end(lambda touches: touches or self._pointer_up(None, None))
        canvas.on_touch_cancel(lambda touches: self._pointer_up(None, None))
        canvas.on_key_down(self._on_key)
        canvas.on_client_ready(self._render)
        self._undo_button.on_click(lambda _: self.undo())
        self._clear_button.on_click(lambda _: self.clear())
        self._help_toggle.observe(self._on_help_toggle, "value")

    def _on_help_toggle(self, change) -> None:
        self._help.layout.display = "block" if change["new"] else "none"

    # ---- checks ---------------------------------------------------------------------------
    def _as_picture(self, value, name: str) -> np.ndarray:
        """``value`` as a (C, H, W) float64 picture within ``pixel_range``."""
        if isinstance(value, DrawPad):
            raise TypeError(f"{name} must be a tensor or array, got a DrawPad (read its .value)")
        batch = check_inputs(value, self._shape, name, dtype=torch.float32)
        if len(batch) != 1:
            raise ValueError(f"{name} must be one input of shape {self._shape} (or a batch of one), got {len(batch)}")
        picture = batch[0].double().reshape(self._channels, self._height, self._width).numpy()
        low, high = float(picture.min()), float(picture.max())
        if low < self._lo or high > self._hi:
            raise ValueError(f"{name} must lie in pixel_range [{self._lo:g}, {self._hi:g}], "
                             f"got values in [{low:g}, {high:g}]")
        return picture

    @traitlets.validate("value")
    def _valid_value(self, proposal):
        if self._internal:
            return proposal["value"]
        return torch.from_numpy(self._as_picture(proposal["value"], "value")).float().reshape(self._shape)

    @traitlets.validate("brush")
    def _valid_brush(self, proposal):
        return _check_float(proposal["value"], "brush", BRUSH_STEP, self._brush_max)

    @traitlets.validate("debounce")
    def _valid_debounce(self, proposal):
        return _check_float(proposal["value"], "debounce", 0.0, 10.0)

    @traitlets.observe("value")
    def _on_value(self, change) -> None:
        if self._internal:
            return
        with self._lock:  # a picture set from Python: later strokes draw on top of it
            self._end_stroke(publish=False)
            picture = change["new"].double().reshape(self._channels, self._height, self._width).numpy()
            self._push(_Picture(picture))
            self._base, self._coverage = picture, np.zeros_like(self._coverage)
            self._message = "picture set from code"
        self._render()

    # ---- properties -----------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def pixel_range(self) -> tuple[float, float]:
        return self._lo, self._hi

    @property
    def scale(self) -> int:
        """Screen pixels per input pixel (the display resolution strokes are rasterised at)."""
        return self._scale

    @property
    def history_length(self) -> int:
        """How many steps :meth:`undo` can take back (strokes, clears, pictures set from code)."""
        with self._lock:
            return len(self._history)

    # ---- what the pad computes --------------------------------------------------------------
    def _display(self) -> np.ndarray:
        """(C, H * scale, W * scale): the picture below, with the strokes' ink on every channel."""
        s = self._scale
        base = np.repeat(np.repeat(self._base, s, axis=1), s, axis=2)
        return np.maximum(base, self._lo + (self._hi - self._lo) * self._coverage[None])

    def _compose(self) -> torch.Tensor:
        """The value: the display picture area-averaged over each scale x scale block."""
        c, h, w, s = self._channels, self._height, self._width, self._scale
        averaged = self._display().reshape(c, h, s, w, s).mean(axis=(2, 4))
        return torch.from_numpy(averaged).float().reshape(self._shape)

    def _rebuild(self) -> None:
        """Base picture and stroke coverage from the history (after an undo)."""
        self._base = self._blank
        strokes: list[_Stroke] = []
        for item in self._history:
            if isinstance(item, _Picture):
                self._base, strokes = item.values, []
            else:
                strokes.append(item)
        coverage = np.zeros_like(self._coverage)
        for stroke in strokes:
            np.maximum(coverage, self._rasterise(stroke), out=coverage)
        self._coverage = coverage

    def _rasterise(self, stroke: _Stroke) -> np.ndarray:
        s = self._scale
        return stroke_coverage(stroke.points * s, stroke.brush * s / 2, self._height * s, self._width * s)

    def _push(self, item) -> None:
        # Every step is kept (a stroke is a few hundred numbers); an undo replays the strokes
        # since the last picture (a clear is one), which takes milliseconds.
        self._history.append(item)

    def _publish(self) -> None:
        """Set ``value`` from the drawing (observers, e.g. explorers, are told) and redraw."""
        value = self._compose()
        self._internal = True
        try:
            self.value = value
        finally:
            self._internal = False
        self._render()

    # ---- the public actions ----------------------------------------------------------------
    def draw_stroke(self, points: Sequence[Sequence[float]], brush: float | None = None) -> None:
        """Draw one stroke from code: ``points`` (x, y) in input pixels ((0, 0) is the top left
        corner of the picture, (W, H) the bottom right; one point is a dot), ``brush`` its
        diameter in input pixels (default: :attr:`brush`). ``value`` follows at once."""
        try:
            array = np.asarray(points, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"points must be a sequence of (x, y) pairs of numbers, got {type(points).__name__}") from None
        if array.ndim != 2 or array.shape[1] != 2 or len(array) == 0:
            raise ValueError(f"points must be a non-empty sequence of (x, y) pairs, got shape {array.shape}")
        if not np.isfinite(array).all():
            raise ValueError("points must be finite numbers")
        brush = self.brush if brush is None else _check_float(brush, "brush", BRUSH_STEP, self._brush_max)
        with self._lock:
            self._end_stroke(publish=False)
            self._add_stroke(_Stroke(array.copy(), float(brush)))
            self._publish()

    def _add_stroke(self, stroke: _Stroke) -> None:
        self._push(stroke)
        np.maximum(self._coverage, self._rasterise(stroke), out=self._coverage)
        self._message = f"stroke {sum(isinstance(item, _Stroke) for item in self._history)} drawn"

    def undo(self) -> bool:
        """Take back the last step (a stroke, a clear or a picture set from code); False when
        there is nothing to undo."""
        with self._lock:
            self._end_stroke(publish=False)
            if not self._history:
                self._message = "nothing to undo"
                self._render_status()
                return False
            self._history.pop()
            self._rebuild()
            self._message = "undone"
            self._publish()
            return True

    def clear(self) -> None:
        """Blank the pad (an undoable step)."""
        with self._lock:
            self._end_stroke(publish=False)
            if self._is_blank():
                self._message = "the pad is blank"
                self._render_status()
                return
            self._push(_Picture(self._blank))
            self._base, self._coverage = self._blank, np.zeros_like(self._coverage)
            self._message = "cleared"
            self._publish()

    def _is_blank(self) -> bool:
        return not self._coverage.any() and bool((self._base == self._lo).all())

    # ---- pointer: mouse, pen and touch (display pixels) -----------------------------------
    def _pointer_down(self, x: float, y: float) -> None:
        with self._lock:
            self._end_stroke()
            self._stroke, self._stroke_brush, self._pen = [(float(x), float(y))], self.brush, "pointer"
            self._cursor_shown = False
            self._preview_dot(x, y)

    def _pointer_move(self, x: float, y: float) -> None:
        with self._lock:
            if self._pen != "pointer" or self._stroke is None:
                return
            last = self._stroke[-1]
            if (x, y) == last:
                return
            self._stroke.append((float(x), float(y)))
            self._preview_segment(last, (x, y))

    def _pointer_up(self, x: float | None, y: float | None) -> None:
        with self._lock:
            if self._pen != "pointer" or self._stroke is None:
                return
            if x is not None and (x, y) != self._stroke[-1]:
                self._stroke.append((float(x), float(y)))
            self._end_stroke()

    def _end_stroke(self, publish: bool = True) -> None:
        """Finish the stroke being drawn, if any (with the lock held)."""
        if self._stroke is None:
            return
        points = np.asarray(self._stroke, dtype=np.float64) / self._scale
        brush = self._stroke_brush
        self._stroke, self._pen = None, ""
        self._add_stroke(_Stroke(points, brush))
        if publish:
            self._publish()

    # ---- keyboard -----------------------------------------------------------------------------
    def _on_key(self, key: str, shift: bool, ctrl: bool, meta: bool) -> None:
        if ctrl or meta:
            return
        moves = {"ArrowLeft": (-1, 0), "ArrowRight": (1, 0), "ArrowUp": (0, -1), "ArrowDown": (0, 1)}
        with self._lock:
            if key in moves:
                step = self._cursor_step() * (4 if shift else 1)
                dx, dy = moves[key]
                x = min(max(self._cursor[0] + dx * step, 0.0), float(self._width))
                y = min(max(self._cursor[1] + dy * step, 0.0), float(self._height))
                previous, self._cursor = self._cursor, (x, y)
                self._cursor_shown = True
                if self._pen == "keyboard" and self._stroke is not None and (x, y) != previous:
                    s = self._scale
                    self._stroke.append((x * s, y * s))
                    self._preview_segment((previous[0] * s, previous[1] * s), (x * s, y * s))
                self._render_cursor()
            elif key in (" ", "Spacebar", "Enter"):
                self._cursor_shown = True
                if self._pen == "keyboard":
                    self._end_stroke()
                else:
                    self._end_stroke()
                    s = self._scale
                    x, y = self._cursor[0] * s, self._cursor[1] * s
                    self._stroke, self._stroke_brush, self._pen = [(x, y)], self.brush, "keyboard"
                    self._preview_dot(x, y)
                    self._render_cursor()
            elif key in ("+", "=", "-", "_"):
                change = BRUSH_STEP if key in ("+", "=") else -BRUSH_STEP
                self.brush = min(max(self.brush + change, BRUSH_STEP), self._brush_max)
                self._render_cursor()
            elif key == "Backspace":
                self.undo()
            elif key == "Delete":
                self.clear()
            elif key == "Escape":
                if self._pen == "keyboard":
                    self._end_stroke()
                else:
                    self._leave(forward=True)
            elif key == "Tab":
                self._end_stroke()
                self._leave(forward=not shift)

    def _cursor_step(self) -> float:
        return max(0.5, round(min(self._height, self._width) / 16 * 2) / 2)

    def _leave(self, forward: bool) -> None:
        """Move the keyboard focus out of the canvas (ipycanvas keeps Tab on a focused canvas)."""
        self._cursor_shown = False
        self._render_cursor()
        (self._undo_button if forward else self._help_toggle).focus()

    # ---- drawing on the canvas --------------------------------------------------------------
    def _preview_dot(self, x: float, y: float) -> None:
        from ipycanvas import hold_canvas

        layer = self._canvas[0]
        with _CANVAS_LOCK, hold_canvas():
            layer.fill_style = self._ink_css()
            layer.fill_circle(x, y, self._stroke_brush * self._scale / 2)
            self._cursor_layer_update()

    def _preview_segment(self, start, end) -> None:
        from ipycanvas import hold_canvas

        layer = self._canvas[0]
        with _CANVAS_LOCK, hold_canvas():
            layer.stroke_style = self._ink_css()
            layer.line_width = self._stroke_brush * self._scale
            layer.line_cap = "round"
            layer.stroke_line(start[0], start[1], end[0], end[1])

    def _ink_css(self) -> str:
        return "#ffffff" if self._channels == 3 else PREVIEW_INK

    def _picture_rgba(self) -> np.ndarray:
        """The display picture as RGBA bytes: ink-on-paper gray (channel mean), or RGB for 3 channels,
        as the explorers draw inputs."""
        share = np.clip((self._display() - self._lo) / (self._hi - self._lo), 0.0, 1.0)
        if self._channels == 3:
            rgb = np.moveaxis(share, 0, -1) * 255
        else:
            gray = (1.0 - share.mean(axis=0)) * 255
            rgb = np.repeat(gray[..., None], 3, axis=-1)
        alpha = np.full(rgb.shape[:2] + (1,), 255.0)
        return np.round(np.concatenate([rgb, alpha], axis=-1)).astype(np.uint8)

    def _render(self) -> None:
        """Draw the exact display picture, the keyboard cursor and the status."""
        from ipycanvas import hold_canvas

        with self._lock:
            rgba = self._picture_rgba()
            with _CANVAS_LOCK, hold_canvas():
                self._canvas[0].clear()
                self._canvas[0].put_image_data(rgba, 0, 0)
                self._cursor_layer_update()
            self._render_status()

    def _render_cursor(self) -> None:
        from ipycanvas import hold_canvas

        with _CANVAS_LOCK, hold_canvas():
            self._cursor_layer_update()
        self._render_status()

    def _cursor_layer_update(self) -> None:
        layer = self._canvas[1]
        layer.clear()
        if not self._cursor_shown:
            return
        s = self._scale
        x, y = self._cursor[0] * s, self._cursor[1] * s
        radius = max(self.brush * s / 2, 3.0)
        layer.line_width = 2
        layer.stroke_style = CURSOR_COLOR
        layer.stroke_circle(x, y, radius)
        layer.stroke_line(x - radius - 4, y, x - radius + 2, y)
        layer.stroke_line(x + radius - 2, y, x + radius + 4, y)
        layer.stroke_line(x, y - radius - 4, x, y - radius + 2)
        layer.stroke_line(x, y + radius - 2, x, y + radius + 4)
        if self._pen == "keyboard":
            layer.fill_style = CURSOR_COLOR
            layer.fill_circle(x, y, 2.5)

    def _render_status(self) -> None:
        strokes = sum(isinstance(item, _Stroke) for item in self._history)
        parts = [f"{self._caption} input", f"{strokes} stroke{'s' if strokes != 1 else ''}",
                 f"brush {self.brush:g} px"]
        if self._cursor_shown:
            x, y = self._cursor
            parts.append(f"cursor at x {x:g}, y {y:g}, pen {'down' if self._pen == 'keyboard' else 'up'}")
        if self._message:
            parts.append(self._message)
        text = html.escape(" · ".join(parts))
        self._status.value = (f"<div class='xl-drawpad-status' data-role='drawpad-status' aria-live='polite'>"
                              f"{text}</div>")

    @traitlets.observe("brush")
    def _on_brush(self, change) -> None:
        if hasattr(self, "_status"):
            self._render_status()

    def __repr__(self) -> str:
        return f"DrawPad(input_shape={self._shape}, pixel_range=({self._lo:g}, {self._hi:g}))"
