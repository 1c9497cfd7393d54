"""Shipped models: the recipes that train them and the loader that rebuilds them.

Every weight file under ``weights/`` is produced by :func:`train_pretrained` from a recipe
below, trained only on the training part of the DESIGN.md splits. Reproduce them with::

    python -m crosslens.kernel_side                  # all of them
    python -m crosslens.kernel_side moons-invertible
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .classifier import InvertibleClassifier
from .data import load_digits_split, load_moons_split
from .training import FitReport, fit, random_shifts

__all__ = ["PRETRAINED", "Recipe", "load_pretrained", "save_pretrained", "train_pretrained", "weights_dir"]


@dataclass(frozen=True)
class Recipe:
    """How one shipped model is built and trained."""

    load_data: Callable
    build: dict
    fit: dict = field(default_factory=dict)


PRETRAINED = {
    # RealNVP invertible classifier on 8x8 digits (hybrid objective, 1-pixel shifts).
    "digits-invertible": Recipe(
        load_data=load_digits_split,
        build={"input_shape": (1, 8, 8), "num_classes": 10, "blocks": 8, "hidden": 64, "seed": 0},
        fit={"dequantization": 1 / 16, "augment": random_shifts(1), "seed": 0},
    ),
    # RealNVP invertible classifier on the two moons of Zhuang et al. (2019).
    "moons-invertible": Recipe(
        load_data=load_moons_split,
        build={"input_shape": (2,), "num_classes": 2, "blocks": 6, "hidden": 64, "seed": 1},
        fit={"batch_size": 64, "lr": 1e-3, "seed": 1},
    ),
}


def weights_dir() -> Path:
    return Path(str(resources.files("crosslens.kernel_side") / "weights"))


def _check_name(name: str) -> Recipe:
    if name not in PRETRAINED:
        raise ValueError(f"name must be one of {sorted(PRETRAINED)}, got {name!r}")
    return PRETRAINED[name]


def load_pretrained(name: str) -> nn.Module:
    """A shipped model, in eval mode, on the CPU (move it with ``.to(device)``).

    Example:
        >>> model = load_pretrained("moons-invertible")
        >>> model.input_shape, model.num_classes
        ((2,), 2)
    """
    _check_name(name)
    saved = torch.load(weights_dir() / f"{name}.pt", map_location="cpu", weights_only=True)
    config = saved["config"]
    model = InvertibleClassifier.build(
        tuple(config["input_shape"]), config["num_classes"], blocks=config["blocks"],
        hidden=config["hidden"], clamp=config["clamp"], seed=config["seed"],
    )
    model.load_state_dict(saved["state_dict"])
    model.metrics = dict(saved.get("metrics", {}))
    return model.eval()


def train_pretrained(name: str, progress: bool = True) -> tuple[InvertibleClassifier, FitReport, dict]:
    """Train the shipped model ``name`` from scratch; return it, its report and test metrics."""
    recipe = _check_name(name)
    torch.set_num_threads(1)  # deterministic and fastest on small models
    x_train, y_train, x_test, y_test = recipe.load_data()
    model = InvertibleClassifier.build(**recipe.build)
    started = time.perf_counter()
    report = fit(model, x_train, y_train, progress=progress, **recipe.fit)
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    metrics = {"test_accuracy": accuracy, "val_accuracy": report.val_accuracy,
               "best_epoch": report.best_epoch, "train_seconds": time.perf_counter() - started}
    return model, report, metrics


def save_pretrained(model: InvertibleClassifier, metrics: dict, path: Path) -> None:
    """Write float32 weights, the architecture and the test metrics to ``path``."""
    state = {key: value.float() if value.is_floating_point() else value for key, value in model.state_dict().items()}
    torch.save({"config": model.config, "state_dict": state, "metrics": metrics}, path)
