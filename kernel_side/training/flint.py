"""Training FLINT: the predictor and its interpreter together, or the interpreter alone (post-hoc).

References:
    Parekh, Mozharovskyi, d'Alche-Buc. A framework to learn with interpretation. NeurIPS 2021,
    https://arxiv.org/abs/2010.09345; the losses as the authors' code computes them
    (https://github.com/jayneelparekh/FLINT):

    L = CE(f(x), y)                                         (dropped post-hoc)
        + gamma * MSE(d(Phi(x)), x)                         (input fidelity)
        + beta * -sum_c softmax(f(x))_c.detach() log softmax(g(x))_c   (output fidelity: f is
                                                             the target, g the prediction)
        + delta * (mean_x E(softmax|Phi(x)|) - E(softmax(mean_x |Phi(x)|)))   (conciseness,
                                                             diversity; E the entropy)
        + eta * mean |Phi(x)|                               (sparsity)

    with the warm-up of the code: beta and eta switch on at epoch ``fidelity_from``, delta at
    ``entropy_from``. The paper's MNIST schedule (12 epochs, lr 1e-4) is too short for the 1437
    training digits [measured: fidelity 0.49, a dead attribute]; rescaled to 40 epochs, lr 1e-3,
    batch 16 with the warm-ups at epochs 10 and 17 (the defaults) it trains well.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from .._checks import check_classifier, check_inputs, check_int, check_placement, check_real, check_targets
from .._runtime import evaluating, seeded
from ..models.flint import FLINT
from .loop import FitReport, check_training_settings, train_with_early_stopping

__all__ = ["fit_flint", "flint_losses"]


def _entropy(p: torch.Tensor) -> torch.Tensor:
    return -(p * p.clamp_min(1e-12).log()).sum(-1)


def flint_losses(model: FLINT, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """Every term of the objective for the batch ``x`` (labels ``y``; None post-hoc), unweighted.

    Keys: ``ce`` (f's cross-entropy; 0 post-hoc), ``reconstruction`` (MSE of d(Phi) to x),
    ``fidelity`` (cross-entropy of g against f's detached probabilities), ``entropy``
    (conciseness minus diversity), ``sparsity`` (mean |Phi|); ``logits_f``, ``logits_g``.
    """
    if model.post_hoc:  # f frozen and in eval mode: its outputs are constants
        with torch.no_grad(), evaluating(model.predictor):
            logits_f, hidden = model.predict_and_read(x)
    else:
        logits_f, hidden = model.predict_and_read(x)
    phi = model.psi(hidden)
    logits_g = model.interpreter(model.interpreter_dropout(phi))
    magnitude = phi.abs()
    zero = logits_f.new_zeros(())
    return dict(
        ce=zero if y is None else F.cross_entropy(logits_f, y),
        reconstruction=F.mse_loss(model.decode(phi), x),
        fidelity=-(logits_f.detach().softmax(1) * logits_g.log_softmax(1)).sum(1).mean(),
        entropy=_entropy(magnitude.softmax(1)).mean() - _entropy(magnitude.mean(0).softmax(0)),
        sparsity=magnitude.mean(),
        logits_f=logits_f,
        logits_g=logits_g,
    )


def fit_flint(
    model: FLINT,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int = 40,
    lr: float = 1e-3,
    batch_size: int = 16,
    gamma: float = 0.8,
    beta: float = 0.5,
    delta: float = 0.2,
    eta: float = 0.1,
    fidelity_from: int = 10,
    entropy_from: int = 17,
    weight_decay: float = 0.0,
    validation_fraction: float = 0.15,
    patience: int = 40,
    seed: int = 0,
    progress: bool = True,
) -> FitReport:
    """Train a :class:`~crosslens.kernel_side.FLINT` model in place with Adam; return a :class:`FitReport`.

    By design (``model.post_hoc`` False) f, Psi, h and d learn together; post-hoc only Psi, h
    and d learn (f's cross-entropy is dropped, f runs in eval mode without gradients and its
    parameters are left exactly as they were).

    Arguments:
        model: a :class:`FLINT` model; x: training inputs (N, *model.input_shape); y: labels (N,).
        epochs, lr, batch_size: Adam's schedule (the paper's for MNIST rescaled to small data).
        gamma: weight of the reconstruction; beta: of the output fidelity; delta: of the
            conciseness-diversity entropy term; eta: of the sparsity.
        fidelity_from: the epoch (0-based) from which beta and eta count; entropy_from: from
            which delta counts (the warm-up of the authors' code).
        weight_decay: Adam's; validation_fraction: the held-out share (stratified by y) for
            early stopping; patience: epochs without a lower validation loss before stopping.
            The validation loss is the whole objective with every term on (the warm-up
            applies to training only), so the kept epoch is judged by the final objective;
            the learning rate halves when it stalls for ``patience // 3`` epochs, as in
            :func:`~crosslens.kernel_side.fit` (so a BASE-f twin trained by ``fit`` with the
            same settings follows the same schedule).
        seed: seeds the split, the shuffling and the dropout (the global random state is left
            untouched).

    The history holds, per epoch, ``val_accuracy`` (f), ``val_accuracy_g``, ``val_fidelity``
    (share where g's and f's classes agree) and ``seconds`` (since the start); with
    ``progress`` the total time is printed at the end.
    """
    if not isinstance(model, FLINT):
        check_classifier(model, "model")
        raise TypeError(f"model must be a FLINT model (FLINT.build or FLINT.post_hoc), got {type(model).__name__}")
    check_training_settings(epochs=epochs, batch_size=batch_size, patience=patience, lr=lr,
                            validation_fraction=validation_fraction)
    weights = {name: check_real(value, name, 0.0, closed="low")
               for name, value in (("gamma", gamma), ("beta", beta), ("delta", delta), ("eta", eta))}
    check_real(weight_decay, "weight_decay", 0.0, closed="low")
    fidelity_from = check_int(fidelity_from, "fidelity_from", minimum=0)
    entropy_from = check_int(entropy_from, "entropy_from", minimum=0)
    device, dtype = check_placement(model, "model")
    from sklearn.model_selection import train_test_split  # imported where used: importing crosslens stays fast

    x = check_inputs(x, model.input_shape, "x", dtype=dtype, device=device)
    y = check_targets(y, x.shape[0], model.num_classes, "y").to(device)
    train_idx, val_idx = train_test_split(torch.arange(x.shape[0]).numpy(), test_size=validation_fraction,
                                          stratify=y.cpu().numpy(), random_state=seed)
    x_train, y_train, x_val, y_val = x[train_idx], y[train_idx], x[val_idx], y[val_idx]
    parameters = model.interpreter_parameters() if model.post_hoc else list(model.parameters())
    optimizer = torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=max(patience // 3, 1))
    generator = torch.Generator(device=device).manual_seed(seed)
    epoch = [0]  # the running epoch, advanced after each validation

    def objective(terms: dict, at: int | None) -> torch.Tensor:
        on = lambda start: at is None or at >= start  # noqa: E731  (None: every term on)
        total = terms["ce"] + weights["gamma"] * terms["reconstruction"]
        if on(fidelity_from):
            total = total + weights["beta"] * terms["fidelity"] + weights["eta"] * terms["sparsity"]
        if on(entropy_from):
            total = total + weights["delta"] * terms["entropy"]
        return total

    def batch_loss(rows: torch.Tensor) -> torch.Tensor:
        return objective(flint_losses(model, x_train[rows], y_train[rows]), epoch[0])

    started = time.perf_counter()

    def validate() -> tuple[float, dict]:
        terms = flint_losses(model, x_val, y_val)
        predicted_f, predicted_g = terms["logits_f"].argmax(1), terms["logits_g"].argmax(1)
        return objective(terms, None).item(), {
            "val_accuracy": (predicted_f == y_val).float().mean().item(),
            "val_accuracy_g": (predicted_g == y_val).float().mean().item(),
            "val_fidelity": (predicted_g == predicted_f).float().mean().item(),
            "seconds": time.perf_counter() - started,
        }

    def after_validation(val_loss: float) -> None:
        scheduler.step(val_loss)
        epoch[0] += 1

    with seeded(seed):  # dropout draws from the global stream: a forked, seeded one
        report = train_with_early_stopping(model, optimizer, batch_loss, validate, count=len(x_train),
                                           batch_size=batch_size, epochs=epochs, patience=patience,
                                           generator=generator, progress=progress,
                                           after_validation=after_validation)
    if progress:
        print(f"fit_flint: {len(report.history)} epochs in {time.perf_counter() - started:.1f} s, "
              f"kept epoch {report.best_epoch} (validation fidelity "
              f"{report.history[report.best_epoch]['val_fidelity'] if report.best_epoch >= 0 else float('nan'):.3f})")
    return report
