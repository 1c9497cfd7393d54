"""Argument checks shared by every public function of the engine (and the widgets).

One rule: a wrong kind of thing raises a TypeError, a wrong value
a ValueError, and the message names the argument, what was expected and what was received,
so a user never sees a traceback from deep inside torch.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch
from torch import nn

__all__ = [
    "check_architecture", "check_choice", "check_classifier", "check_dtype", "check_generator", "check_inputs",
    "check_int", "check_interval", "check_placement",
    "check_invertible_classifier", "check_real", "check_targets",
]


def check_int(value, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int in ``[minimum, maximum]`` (a bool is not an int)."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = (f"in [{minimum}, {maximum}]" if minimum is not None and maximum is not None
                  else f">= {minimum}" if minimum is not None else f"<= {maximum}")
        raise ValueError(f"{name} must be an integer {bounds}, got {value}")
    return value


def check_real(value, name: str, low: float = -math.inf, high: float = math.inf, *, closed: str = "") -> float:
    """``value`` as a finite float between ``low`` and ``high``; ``closed`` names the bounds
    that are allowed ("low", "high" or "both"), the others are excluded."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    above = value >= low if closed in ("low", "both") else value > low
    below = value <= high if closed in ("high", "both") else value < high
    if not (math.isfinite(value) and above and below):
        if (low, high) == (0, math.inf):
            expected = "a non-negative finite number" if closed in ("low", "both") else "a positive finite number"
        else:
            left = "[" if closed in ("low", "both") else "("
            right = "]" if closed in ("high", "both") else ")"
            expected = f"a finite number in {left}{low:g}, {high:g}{right}"
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return value


def check_choice(value, name: str, options) -> str:
    """``value``, one of the strings ``options``."""
    options = tuple(options)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {options} (a string), got {type(value).__name__} {value!r}")
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def check_dtype(dtype, name: str = "dtype") -> torch.dtype | None:
    """None, or a floating-point ``torch.dtype`` (also given by name: ``"float64"``, ``"torch.float64"``)."""
    value = dtype
    if isinstance(dtype, str):
        value = getattr(torch, dtype.removeprefix("torch."), None)
    elif dtype is not None and not isinstance(dtype, torch.dtype):
        raise TypeError(f"{name} must be a torch.dtype such as torch.float64 (or its name), got {type(dtype).__name__}")
    if dtype is not None and not (isinstance(value, torch.dtype) and value.is_floating_point):
        raise ValueError(f"{name} must be a floating-point dtype such as torch.float64 or 'float64', got {dtype!r}")
    return value


def check_placement(module, name: str) -> tuple[torch.device, torch.dtype] | None:
    """``(device, dtype)`` where ``module`` computes, or None (not a module, or no parameters).

    Its tensors must hold data (not the ``meta`` device), live on one device, and its floating
    parameters and buffers share one dtype: anything else fails later deep inside torch.
    """
    if not isinstance(module, nn.Module):
        return None
    tensors = [*module.parameters(), *module.buffers()]
    devices = {tensor.device for tensor in tensors}
    if any(device.type == "meta" for device in devices):
        raise ValueError(f"{name} is on the meta device: its parameters hold no data; load its weights first "
                         f"(e.g. {name}.to_empty(device='cpu') and load_state_dict)")
    if len(devices) > 1:
        raise ValueError(f"{name}'s parameters must live on one device, got {sorted(map(str, devices))}; "
                         f"move it with {name}.to(device)")
    dtypes = {}
    for label, tensor in [*module.named_parameters(), *module.named_buffers()]:
        if tensor.is_floating_point():
            dtypes.setdefault(tensor.dtype, label)
    if len(dtypes) > 1:
        found = ", ".join(f"{dtype} ({label})" for dtype, label in dtypes.items())
        raise ValueError(f"{name}'s floating-point parameters must share one dtype, got {found}; "
                         f"convert it with {name}.to(torch.float32) (or float64)")
    first = next(iter(module.parameters()), None)
    return None if first is None else (first.device, first.dtype)


def check_interval(pair, name: str) -> tuple[float, float]:
    """Return ``pair`` as finite floats ``(low, high)`` with ``low < high``."""
    try:
        low, high = (float(bound) for bound in pair)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be a pair of numbers (low, high), got {pair!r}") from error
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"{name} must be a finite pair with low < high, got {pair!r}")
    return low, high


def check_classifier(model, name: str = "classifier", needs: tuple[str, ...] = ()) -> None:
    """``model`` must be an ``nn.Module`` (logits out) offering the attributes ``needs``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module returning logits, got {type(model).__name__}")
    missing = [attribute for attribute in needs if not hasattr(model, attribute)]
    if missing:
        raise TypeError(f"{name} must be a torch.nn.Module with {', '.join(needs)}; "
                        f"{type(model).__name__} lacks {', '.join(missing)}")


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


def check_generator(generator, name: str = "generator") -> None:
    """``generator`` must offer ``input_shape``, ``latent_dim``, ``encode(x)`` and ``decode(z)``."""
    missing = [attr for attr in ("input_shape", "latent_dim", "encode", "decode") if not hasattr(generator, attr)]
    if missing:
        raise TypeError(
            f"{name} must offer input_shape, latent_dim, encode(x) and decode(z) (a normalizing flow or "
            f"a VAE); {type(generator).__name__} lacks {', '.join(missing)}"
        )


def check_inputs(x, input_shape: tuple[int, ...], name: str = "x", dtype: torch.dtype | None = None,
                 device: torch.device | None = None) -> torch.Tensor:
    """Return ``x`` as a float batch of shape (N, *input_shape) on ``device``.

    One rule for every public entry point: a single example (of shape ``input_shape``, or
    flattened) becomes a batch of one, and a batch of flattened inputs (N, D) with D the size
    of ``input_shape`` takes that shape.
    """
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError) as error:
            raise TypeError(f"{name} must be a tensor or array of numbers, got {type(x).__name__}") from error
    if not (x.is_floating_point() or x.dtype in (torch.int64, torch.int32, torch.uint8)):
        raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if x.device.type == "meta":
        raise ValueError(f"{name} is on the meta device: it holds no data")
    shape = tuple(input_shape)
    size = math.prod(shape)
    if tuple(x.shape) == shape or (x.ndim == 1 and x.numel() == size and len(shape) > 1):
        x = x.reshape(1, *shape)  # one input
    elif x.ndim == 2 and x.shape[1] == size and len(shape) > 1:
        x = x.reshape(len(x), *shape)  # a batch of flattened inputs
    if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != shape:
        raise ValueError(
            f"{name} must have shape (N, {', '.join(map(str, shape))}) or (N, {size}) flattened, or be one input, "
            f"got {tuple(x.shape)}"
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
    """Return ``input_shape`` as a tuple of positive ints; every keyword must be a positive int
    (``num_classes`` at least 2)."""
    try:
        shape = tuple(input_shape)
    except TypeError as error:
        raise TypeError(f"input_shape must be a tuple of ints, got {type(input_shape).__name__}") from error
    if not shape or not all(isinstance(size, int) and not isinstance(size, bool) and size > 0 for size in shape):
        raise ValueError(f"input_shape must be a non-empty tuple of positive ints, got {input_shape!r}")
    for name, value in sizes.items():
        check_int(value, name, minimum=2 if name == "num_classes" else 1)
    return shape
