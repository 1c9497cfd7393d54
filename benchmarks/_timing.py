"""Wall-clock timing shared by the benchmark scripts."""

from __future__ import annotations

import statistics
import time
from typing import Callable, TypeVar

import torch

T = TypeVar("T")


def median_seconds(fn: Callable[[], T], repeats: int, device: torch.device) -> tuple[float, T]:
    """Median wall time of ``fn()`` over ``repeats`` runs after one warm-up (CUDA work
    synchronised), and the value of its last run."""
    value = fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        value = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), value
