"""What every crosslens explorer shares: one binary payload, the selected input and its
target, an error line, the inputs and class names readable from Python, and the picture of
an input for static figures."""

from __future__ import annotations

import contextlib
from typing import Iterator

import anywidget
import numpy as np
import torch
import traitlets

from . import _assets
from ._checks import image_shape

__all__ = ["Explorer"]


class Explorer(anywidget.AnyWidget):
    """Base of the explorers. A subclass sets ``_esm``, ``_x`` (N, *input_shape) on the CPU,
    ``_input_shape``, ``_class_names`` and ``_pixel_range`` before ``super().__init__``."""

    _css = _assets.stylesheet()

    _payload = traitlets.Bytes(b"").tag(sync=True)
    index = traitlets.Int(0).tag(sync=True)
    target = traitlets.Int(None, allow_none=True).tag(sync=True)
    error = traitlets.Unicode("", read_only=True).tag(sync=True)

    _quiet = False  # True while ``target`` follows the selected input without recomputing

    @traitlets.validate("index")
    def _valid_index(self, proposal):
        value = proposal["value"]
        if not 0 <= value < len(self._x):
            raise ValueError(f"index must lie in [0, {len(self._x) - 1}] (one of the {len(self._x)} inputs), got {value}")
        return value

    @contextlib.contextmanager
    def _quietly(self) -> Iterator[None]:
        """Set ``target`` without recomputing (it follows the selected input)."""
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False

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

    def _picture(self, values: torch.Tensor) -> np.ndarray:
        """One input as matplotlib's ``imshow`` draws it: RGB in [0, 1] for three channels,
        else the channel mean (shown with ``vmin, vmax = pixel_range``)."""
        channels, height, width = image_shape(self._input_shape)
        values = values.reshape(channels, height, width)
        if channels == 3:
            lo, hi = self._pixel_range
            return ((values - lo) / (hi - lo)).clamp(0, 1).permute(1, 2, 0).numpy()
        return values.mean(0).numpy()
