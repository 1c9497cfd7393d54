"""How the engine runs a model: where it lives, in eval mode, in a chosen dtype, in bounded chunks."""

from __future__ import annotations

import contextlib
import copy
import threading
import weakref
from typing import Callable, Iterator

import torch
from torch import nn

from ._checks import check_dtype

__all__ = ["DEFAULT_CHUNK_SIZE", "evaluating", "map_chunks", "model_in_dtype", "seeded"]

DEFAULT_CHUNK_SIZE = 8192


_MODES_LOCK = threading.Lock()
_USERS: "weakref.WeakKeyDictionary[nn.Module, list]" = weakref.WeakKeyDictionary()  # module -> [users, own mode]


@contextlib.contextmanager
def evaluating(*models) -> Iterator[None]:
    """Run every ``nn.Module`` among ``models`` in eval mode and give back the modes the user
    had; anything else (e.g. a generator that is a plain object) is left alone.

    Safe for overlapping use (two explorers searching with one model in two threads): each
    module and submodule counts its users under a lock, the first user saves the module's own
    mode and the last one restores it, so a model is in eval mode for as long as any search
    runs and ends in exactly the modes it had, submodule by submodule.
    """
    modules = {id(sub): sub for model in models if isinstance(model, nn.Module) for sub in model.modules()}
    with _MODES_LOCK:
        for module in modules.values():
            entry = _USERS.setdefault(module, [0, module.training])
            entry[0] += 1
            module.training = False
    try:
        yield
    finally:
        with _MODES_LOCK:
            for module in modules.values():
                entry = _USERS[module]
                entry[0] -= 1
                if entry[0] == 0:
                    module.training = entry[1]
                    del _USERS[module]


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Draw from torch's global random stream seeded with ``seed`` (e.g. to initialise a
    model's weights), and give the user's stream back untouched afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def model_in_dtype(model: nn.Module, dtype) -> nn.Module:
    """``model`` itself when it already computes in ``dtype`` (or ``dtype`` is None), else a
    converted copy, so that the user's model is never changed. ``dtype`` may be named ("float64")."""
    dtype = check_dtype(dtype)
    current = next(model.parameters()).dtype
    if dtype is None or dtype == current:
        return model
    return copy.deepcopy(model).to(dtype)


def map_chunks(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
               chunk_size: int = DEFAULT_CHUNK_SIZE) -> torch.Tensor:
    """``fn`` applied to consecutive row chunks of ``x`` and concatenated: memory stays bounded."""
    if x.shape[0] <= chunk_size:
        return fn(x)
    return torch.cat([fn(chunk) for chunk in x.split(chunk_size)])
