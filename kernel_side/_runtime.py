"""How the engine runs a model: where it lives, in eval mode, in a chosen dtype, in bounded chunks."""

from __future__ import annotations

import contextlib
import copy
from typing import Callable, Iterator

import torch
from torch import nn

__all__ = ["DEFAULT_CHUNK_SIZE", "evaluating", "map_chunks", "model_in_dtype", "placement"]

DEFAULT_CHUNK_SIZE = 8192


@contextlib.contextmanager
def evaluating(*models) -> Iterator[None]:
    """Run every ``nn.Module`` among ``models`` in eval mode and give back the modes the user
    had; anything else (e.g. a generator that is a plain object) is left alone."""
    modules = [model for model in models if isinstance(model, nn.Module)]
    modes = [module.training for module in modules]
    for module in modules:
        module.eval()
    try:
        yield
    finally:
        for module, was_training in zip(modules, modes):
            module.train(was_training)


def model_in_dtype(model: nn.Module, dtype: torch.dtype | None) -> nn.Module:
    """``model`` itself when it already computes in ``dtype`` (or ``dtype`` is None), else a
    converted copy, so that the user's model is never changed."""
    current = next(model.parameters()).dtype
    if dtype is None or dtype == current:
        return model
    if not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point dtype such as torch.float64, got {dtype}")
    return copy.deepcopy(model).to(dtype)


def map_chunks(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
               chunk_size: int = DEFAULT_CHUNK_SIZE) -> torch.Tensor:
    """``fn`` applied to consecutive row chunks of ``x`` and concatenated: memory stays bounded."""
    if x.shape[0] <= chunk_size:
        return fn(x)
    return torch.cat([fn(chunk) for chunk in x.split(chunk_size)])


def placement(module) -> tuple[torch.device, torch.dtype] | None:
    """``(device, dtype)`` of a module's first parameter, or None (no parameters, or not a module)."""
    tensor = next(module.parameters(), None) if isinstance(module, nn.Module) else None
    return None if tensor is None else (tensor.device, tensor.dtype)
