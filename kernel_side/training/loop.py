"""The training loop behind every model the engine ships: shuffled mini-batches, early
stopping on a validation loss, interruptible, keeping the best weights, and the one report
every ``fit_*`` returns (:func:`~crosslens.kernel_side.training.classifiers.fit`,
:func:`~crosslens.kernel_side.training.generators.fit_flow`,
:func:`~crosslens.kernel_side.training.generators.fit_vae`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from .._checks import check_int, check_real

__all__ = ["FitReport", "check_training_settings", "train_with_early_stopping"]


@dataclass(frozen=True)
class FitReport:
    """What a fit did.

    Fields:
        best_epoch: the epoch whose weights were kept (-1 when none finished).
        val_loss: its validation loss (the fit's objective on the held-out part).
        history: one dict per epoch (epoch, train_loss, val_loss, and e.g. val_accuracy).
        interrupted: True when Ctrl-C (or the notebook's stop button) ended the fit early.
    """

    best_epoch: int
    val_loss: float
    history: tuple[dict, ...]
    interrupted: bool

    @property
    def val_accuracy(self) -> float | None:
        """The validation accuracy of the best epoch (classifiers), else None."""
        return self.history[self.best_epoch].get("val_accuracy") if self.best_epoch >= 0 else None


def check_training_settings(*, epochs, batch_size, patience, lr, validation_fraction) -> None:
    """Raise the error that names the first setting of the wrong kind or out of range."""
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("patience", patience)):
        check_int(value, name, minimum=1)
    check_real(lr, "lr", 0.0)
    check_real(validation_fraction, "validation_fraction", 0.0, 1.0)


def train_with_early_stopping(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    validate: Callable[[], tuple[float, dict]],
    *,
    count: int,
    batch_size: int,
    epochs: int,
    patience: int,
    generator: torch.Generator,
    progress: bool,
    after_validation: Callable[[float], None] | None = None,
) -> FitReport:
    """Train ``model`` in place; it ends in eval mode with the weights of its best epoch.

    Each epoch shuffles the ``count`` training rows with ``generator`` and steps ``optimizer``
    on ``batch_loss(rows)`` (the mean loss of those rows) for every mini-batch; then, in eval
    mode without gradients, ``validate()`` gives the validation loss and extra figures for the
    history (e.g. ``{"val_accuracy": 0.97}``), and ``after_validation(loss)`` runs (e.g. a
    learning-rate scheduler). Training stops after ``patience`` epochs without a lower
    validation loss. Interrupting (Ctrl-C, or the notebook's stop button) keeps the best weights.
    """
    best = {"loss": float("inf"), "epoch": -1, "state": copy.deepcopy(model.state_dict())}
    history: list[dict] = []
    interrupted = False
    bar = tqdm(range(epochs), desc="training", disable=not progress)
    try:
        for epoch in bar:
            model.train()
            order = torch.randperm(count, generator=generator, device=generator.device)
            total = 0.0
            for start in range(0, count, batch_size):
                rows = order[start : start + batch_size]
                loss = batch_loss(rows)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * len(rows)
            model.eval()
            with torch.no_grad():
                val_loss, extra = validate()
            history.append({"epoch": epoch, "train_loss": total / count, "val_loss": val_loss, **extra})
            if after_validation is not None:
                after_validation(val_loss)
            bar.set_postfix(val_loss=f"{val_loss:.3f}", **{name: f"{value:.3f}" for name, value in extra.items()})
            if val_loss < best["loss"]:
                best = {"loss": val_loss, "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
            elif epoch - best["epoch"] >= patience:
                break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
        model.load_state_dict(best["state"])
        model.eval()
    return FitReport(best_epoch=best["epoch"], val_loss=best["loss"], history=tuple(history), interrupted=interrupted)
