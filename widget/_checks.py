"""Argument checks and small helpers shared by the explorers (widget side).

Each check raises a ValueError or TypeError whose message names the argument, what was
expected and what was received (the engine's own checks live in ``kernel_side._checks``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .kernel_side._checks import check_interval
from .kernel_side._images import image_shape  # one rule for the engine and the views

__all__ = ["check_class_names", "check_class_index", "check_requested", "check_pixel_range", "image_shape",
           "is_one_target"]


def check_class_names(class_names, num_classes: int) -> list[str]:
    """``num_classes`` display names (default ``"0" .. "C-1"``)."""
    if class_names is None:
        return [str(k) for k in range(num_classes)]
    if isinstance(class_names, (str, bytes)) or not isinstance(class_names, Sequence):
        raise TypeError(f"class_names must be a sequence of {num_classes} strings, got {type(class_names).__name__}")
    if len(class_names) != num_classes:
        raise ValueError(
            f"class_names must have one name per class ({num_classes} for this model), got {len(class_names)}"
        )
    return [str(name) for name in class_names]


def check_class_index(value, num_classes: int, name: str = "target") -> int | None:
    """None or a class index in [0, num_classes) (a one-element tensor is accepted)."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be None or a class index (int), got {type(value).__name__}")
    value = int(value)
    if not 0 <= value < num_classes:
        raise ValueError(f"{name} must be None or a class index in [0, {num_classes - 1}], got {value}")
    return value


def is_one_target(target) -> bool:
    """Whether ``target`` is None or one class index for every input (rather than one per input)."""
    return target is None or isinstance(target, (int, np.integer)) or (
        isinstance(target, torch.Tensor) and target.ndim == 0)


def check_requested(target, count: int, num_classes: int) -> list[int | None]:
    """A per-input list from None, one class index, or a sequence of ``count`` (None or an index each)."""
    if is_one_target(target):
        return [check_class_index(target, num_classes)] * count
    if isinstance(target, (str, bytes)) or not hasattr(target, "__len__"):
        raise TypeError(f"target must be None, a class index or a sequence of {count}, got {type(target).__name__}")
    if len(target) != count:
        raise ValueError(f"target must be None, one class index or {count} of them (one per input), got {len(target)}")
    return [check_class_index(value, num_classes, f"target[{row}]") for row, value in enumerate(target)]


def check_pixel_range(pixel_range, x: torch.Tensor) -> tuple[float, float]:
    """(lo, hi) shown as white..black; by default the range of ``x``."""
    if pixel_range is None:
        lo, hi = float(x.min()), float(x.max())
        return (lo, hi) if hi > lo else (lo, lo + 1.0)
    return check_interval(pixel_range, "pixel_range")
