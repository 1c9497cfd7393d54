"""Training classifiers: the hybrid objective for invertible ones, cross-entropy for any.

References:
    Zhuang et al. 2019 (https://arxiv.org/abs/1910.00406) train with cross-entropy alone.
    Measured here on the digits: cross-entropy alone lets the features grow without
    bound, float32 inversion then fails away from the data and boundary projections become
    noise. The default hybrid objective adds the flow's negative log-likelihood per dimension,
    as in Nalisnick et al., Hybrid models with deep and invertible features, ICML 2019
    (https://arxiv.org/abs/1902.02767): ``CE + 0.1 * NLL / D`` with uniform dequantisation.
    Plain classifiers (:mod:`crosslens.kernel_side.models.classifiers`) train with cross-entropy.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_choice, check_classifier, check_inputs, check_placement, check_targets
from .._runtime import seeded
from .loop import FitReport, check_training_settings, train_with_early_stopping

__all__ = ["fit", "random_shifts"]

OBJECTIVES = ("hybrid", "cross_entropy")


def _objective(model, x, y, objective, nll_weight):
    if objective == "cross_entropy":
        logits = model(x)
        return F.cross_entropy(logits, y), logits
    z, log_prob = model.features_and_log_prob(x)
    logits = model.head(z)
    nll_per_dim = -log_prob.mean() / z.shape[1]
    return F.cross_entropy(logits, y) + nll_weight * nll_per_dim, logits


def fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    objective: str = "hybrid",
    nll_weight: float = 0.1,
    dequantization: float = 0.0,
    epochs: int = 200,
    batch_size: int = 128,
    lr: float = 2e-3,
    weight_decay: float = 1e-5,
    validation_fraction: float = 0.15,
    patience: int = 25,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> FitReport:
    """Train ``model`` in place with Adam and early stopping; return a :class:`FitReport`.

    Arguments:
        model: a classifier with ``input_shape`` and ``num_classes``: an
            :class:`InvertibleClassifier`, or any other for ``objective="cross_entropy"``.
        x: training inputs (N, *model.input_shape); y: labels (N,).
        objective: ``"hybrid"`` (cross-entropy + ``nll_weight`` x NLL per dimension, default;
            invertible classifiers only) or ``"cross_entropy"``.
        dequantization: width of the uniform noise added to each training input (1/16 for
            digits, whose pixels take 17 levels; 0 for continuous data).
        validation_fraction: held-out share of ``x`` (stratified) for early stopping; the
            weights of the epoch with the lowest validation objective are kept.
        patience: epochs without improvement before stopping.
        augment: ``augment(batch, generator) -> batch`` applied to each training batch, e.g.
            :func:`random_shifts` for images.
        seed: seeds the split, the shuffling, the dequantisation noise and any dropout (the
            global random state is left untouched).

    The learning rate halves whenever the validation objective stalls for ``patience // 3``
    epochs. Interrupting (Ctrl-C, or the notebook's stop button) keeps the best weights so far.
    """
    check_choice(objective, "objective", OBJECTIVES)
    check_training_settings(epochs=epochs, batch_size=batch_size, patience=patience, lr=lr,
                            validation_fraction=validation_fraction)
    check_classifier(model, "model", needs=("input_shape", "num_classes"))
    device, dtype = check_placement(model, "model")
    if objective == "hybrid" and not (hasattr(model, "features_and_log_prob") and hasattr(model, "head")):
        raise TypeError(
            f"model must be an invertible classifier (features_and_log_prob and head) for objective='hybrid'; "
            f"train a {type(model).__name__} with objective='cross_entropy'"
        )
    from sklearn.model_selection import train_test_split  # imported where used: importing crosslens stays fast

    x = check_inputs(x, model.input_shape, "x", dtype=dtype, device=device)
    y = check_targets(y, x.shape[0], model.num_classes, "y").to(device)
    train_idx, val_idx = train_test_split(
        torch.arange(x.shape[0]).numpy(), test_size=validation_fraction,
        stratify=y.cpu().numpy(), random_state=seed,
    )
    x_train, y_train, x_val, y_val = x[train_idx], y[train_idx], x[val_idx], y[val_idx]
    generator = torch.Generator(device=device).manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=max(patience // 3, 1))

    def batch_loss(rows: torch.Tensor) -> torch.Tensor:
        inputs = x_train[rows]
        if augment is not None:
            inputs = augment(inputs, generator)
        if dequantization:
            noise = torch.rand(inputs.shape, generator=generator, device=device, dtype=inputs.dtype)
            inputs = inputs + dequantization * (noise - 0.5)
        return _objective(model, inputs, y_train[rows], objective, nll_weight)[0]

    def validate() -> tuple[float, dict]:
        val_loss, logits = _objective(model, x_val, y_val, objective, nll_weight)
        return val_loss.item(), {"val_accuracy": (logits.argmax(1) == y_val).float().mean().item()}

    with seeded(seed):  # what draws from the global stream (dropout) draws from a forked, seeded one
        return train_with_early_stopping(model, optimizer, batch_loss, validate, count=len(x_train),
                                         batch_size=batch_size, epochs=epochs, patience=patience,
                                         generator=generator, progress=progress, after_validation=scheduler.step)


def random_shifts(max_shift: int = 1) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    """Augmentation for image batches (N, ..., H, W): each image moves by up to ``max_shift``
    pixels in each direction, padded with zeros (the background of the digits)."""

    def shift(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        height, width = images.shape[-2:]
        padded = torch.nn.functional.pad(images, (max_shift,) * 4)
        offsets = torch.randint(0, 2 * max_shift + 1, (images.shape[0], 2), generator=generator, device=images.device)
        rows = offsets[:, 0, None] + torch.arange(height, device=images.device)  # (N, H)
        cols = offsets[:, 1, None] + torch.arange(width, device=images.device)  # (N, W)
        batch = torch.arange(images.shape[0], device=images.device)[:, None, None]
        moved = padded.movedim((-2, -1), (1, 2))[batch, rows[:, :, None], cols[:, None, :]]
        return moved.movedim((1, 2), (-2, -1))

    return shift
