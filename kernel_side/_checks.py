"""Argument checks shared by every public function of the engine.

Each raises a ValueError or TypeError whose message names the argument, what was expected
and what was received, so a user never sees a traceback from deep inside torch.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["check_architecture", "check_inputs", "check_interval", "check_invertible_classifier", "check_targets"]


def check_invertible_classifier(model, name: str = "model") -> None:
    """``model`` must offer ``features``, ``inverse``, ``head`` (an nn.Linear) and ``input_shape``."""
    missing = [attr for attr in ("features", "inverse", "head") if not hasattr(model, attr)]
    if missing:
        raise TypeError(
            f"{name} must be an invertible classifier with features(x), inverse(z) and a linear "
            f"head; {type(model).__name__} lacks {', '.join(missing)}"
        )
    if not isinstance(model.head, nn.Linear):
        raise TypeError(f"{name}.head must be an nn.Linear, got {type(model.head).__name__}")
    if not hasattr(model, "input_shape"):
        raise TypeError(f"{name} must declare input_shape (the shape of one input)")


def check_inputs(x, input_shape: tuple[int, ...], name: str = "x", dtype: torch.dtype | None = None,
                 device: torch.device | None = None) -> torch.Tensor:
    """Return ``x`` as a float batch of shape (N, *input_shape) on ``device``.

    A single example of shape ``input_shape`` becomes a batch of one.
    """
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError) as error:
            raise TypeError(f"{name} must be a tensor or array of numbers, got {type(x).__name__}") from error
    if not (x.is_floating_point() or x.dtype in (torch.int64, torch.int32, torch.uint8)):
        raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}")
    shape = tuple(input_shape)
    if tuple(x.shape) == shape:
        x = x.unsqueeze(0)
    if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != shape:
        raise ValueError(
            f"{name} must have shape (N, {', '.join(map(str, shape))}) or {shape}, got {tuple(x.shape)}"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty: expected at least one input")
    x = x.to(device=device, dtype=dtype or torch.get_default_dtype())
    if not torch.isfinite(x).all():
        bad = (~torch.isfinite(x.reshape(x.shape[0], -1))).any(1).nonzero().flatten().tolist()
        raise ValueError(f"{name} contains NaN or infinite values (rows {bad[:10]})")
    return x


def check_targets(target, count: int, num_classes: int, name: str = "target") -> torch.Tensor:
    """Return ``target`` as an int64 tensor of shape (count,); one int is broadcast."""
    if isinstance(target, bool) or (isinstance(target, torch.Tensor) and target.dtype == torch.bool):
        raise TypeError(f"{name} must be a class index or a sequence of class indices, got a bool")
    try:
        target = torch.as_tensor(target)
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"{name} must be a class index or a sequence of them, got {type(target).__name__}") from error
    if target.is_floating_point() or target.is_complex():
        if not torch.equal(target, target.round()):
            raise TypeError(f"{name} must hold integer class indices, got {target.dtype}")
    target = target.long().reshape(-1)
    if target.numel() == 1:
        target = target.expand(count)
    if target.numel() != count:
        raise ValueError(f"{name} must be one class index or {count} of them (one per input), got {target.numel()}")
    out_of_range = (target < 0) | (target >= num_classes)
    if out_of_range.any():
        raise ValueError(
            f"{name} must lie in [0, {num_classes - 1}], got {target[out_of_range][0].item()}"
        )
    return target.clone()


def check_architecture(input_shape, **sizes: int) -> tuple[int, ...]:
    """Return ``input_shape`` as a tuple of positive ints; every keyword must be a positive int.

    Raises a TypeError or ValueError that names the offending argument.
    """
    try:
        shape = tuple(input_shape)
    except TypeError as error:
        raise TypeError(f"input_shape must be a tuple of ints, got {type(input_shape).__name__}") from error
    if not shape or not all(isinstance(size, int) and not isinstance(size, bool) and size > 0 for size in shape):
        raise ValueError(f"input_shape must be a non-empty tuple of positive ints, got {input_shape!r}")
    for name, value in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < 1:
            raise ValueError(f"{name} must be positive, got {value}")
    return shape


def check_interval(pair, name: str) -> tuple[float, float]:
    """Return ``pair`` as finite floats ``(low, high)`` with ``low < high``."""
    try:
        low, high = (float(bound) for bound in pair)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be a pair of numbers (low, high), got {pair!r}") from error
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"{name} must be a finite pair with low < high, got {pair!r}")
    return low, high
