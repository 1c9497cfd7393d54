"""How good are counterfactuals? The measures of Dombrowski et al., one row per method.

References:
    Dombrowski, Gerken, Mueller, Kessel. Diffeomorphic counterfactuals with generative
    models. TPAMI 2024. https://arxiv.org/abs/2206.05075

A counterfactual should be valid (the classifier reaches the target), small (L1, L2 change
from the input), realistic (low bits per dimension under a flow trained on the data, close
to a real training example of the target class) and a genuine change of class rather than
an adversarial one: an independent oracle, a classifier the search never saw (an RBF SVC),
should agree with the target. Adversarial pixel-space results fool the classifier while the
oracle still sees the original class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.svm import SVC

from .methods.counterfactuals import CounterfactualResult
from .models.generators import bits_per_dim
from ._runtime import DEFAULT_CHUNK_SIZE, map_chunks
from ._checks import check_inputs, check_targets

__all__ = ["CounterfactualReport", "evaluate", "fit_oracle"]


def fit_oracle(x_train, y_train) -> SVC:
    """An independent oracle: scikit-learn's ``SVC()`` (RBF kernel) on the flattened inputs.

    Example:
        >>> from crosslens import kernel_side as ks
        >>> x_train, y_train, x_test, y_test = ks.load_digits_split()
        >>> oracle = fit_oracle(x_train, y_train)
        >>> float((oracle.predict(x_test.flatten(1).numpy()) == y_test.numpy()).mean()) > 0.97
        True
    """
    x_train = torch.as_tensor(x_train)
    y_train = torch.as_tensor(y_train)
    if len(x_train) != len(y_train):
        raise ValueError(f"x_train and y_train must have one label per input, got {len(x_train)} and {len(y_train)}")
    return SVC().fit(x_train.detach().cpu().flatten(1).numpy(), y_train.detach().cpu().numpy())


@dataclass(frozen=True)
class CounterfactualReport:
    """Per-row measures of a :class:`CounterfactualResult` (all (N,) tensors on the CPU).

    Fields:
        method: the search method; source, target: the predicted and the target class.
        success: target confidence above the threshold; steps: Adam steps taken.
        l1, l2: size of the change ``x_cf - x`` from the input.
        bits_per_dim: of x_cf under the flow, or None.
        oracle_prediction: the oracle's class for x_cf, or None.
        nearest_target_distance: L2 distance from x_cf to the nearest reference example of
            the target class, or None.
    """

    method: str
    source: torch.Tensor
    target: torch.Tensor
    success: torch.Tensor
    steps: torch.Tensor
    l1: torch.Tensor
    l2: torch.Tensor
    bits_per_dim: torch.Tensor | None
    oracle_prediction: torch.Tensor | None
    nearest_target_distance: torch.Tensor | None

    @property
    def oracle_agrees(self) -> torch.Tensor | None:
        """(N,) bool: the oracle sees the target class in x_cf."""
        return None if self.oracle_prediction is None else self.oracle_prediction == self.target

    def summary(self) -> dict:
        """One row of a comparison table: rates over all N rows, medians of the measures."""

        def median(values):
            return None if values is None else values.float().median().item()

        def rate(flags):
            return None if flags is None else flags.float().mean().item()

        return {
            "method": self.method,
            "n": len(self.success),
            "success_rate": rate(self.success),
            "median_steps": median(self.steps),
            "median_l1": median(self.l1),
            "median_l2": median(self.l2),
            "median_bits_per_dim": median(self.bits_per_dim),
            "oracle_target": rate(self.oracle_agrees),
            "oracle_source": rate(None if self.oracle_prediction is None else self.oracle_prediction == self.source),
            "median_nearest_target_distance": median(self.nearest_target_distance),
        }


def _nearest_target_distance(x_cf, target, reference_x, reference_y, chunk_size):
    def nearest(rows: torch.Tensor) -> torch.Tensor:
        pairwise = torch.cdist(x_cf[rows].flatten(1), reference_x.flatten(1))
        other_class = reference_y[None, :] != target[rows, None]
        return pairwise.masked_fill(other_class, float("inf")).min(1).values

    return map_chunks(nearest, torch.arange(len(x_cf), device=x_cf.device), chunk_size)


def evaluate(result: CounterfactualResult, *, flow=None, oracle=None, reference_set=None,
             chunk_size: int = DEFAULT_CHUNK_SIZE) -> CounterfactualReport:
    """Measure a batch of counterfactuals.

    Arguments:
        result: a :class:`CounterfactualResult`.
        flow: a normalizing flow of the data (``log_prob``) for bits per dimension, or None.
        oracle: an independent classifier with ``predict(array (N, D))`` (see :func:`fit_oracle`), or None.
        reference_set: ``(x, y)`` real examples (the training split) for the distance to the
            nearest one of the target class, or None.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from crosslens.kernel_side.methods.counterfactuals import pixel_counterfactual
        >>> classifier = nn.Linear(2, 2)
        >>> with torch.no_grad(): _ = classifier.weight.copy_(torch.eye(2)), classifier.bias.zero_()
        >>> result = pixel_counterfactual(classifier, torch.tensor([[0.9, 0.1]]), 1, lr=0.05, threshold=0.6)
        >>> report = evaluate(result, reference_set=(torch.tensor([[0., 1.], [1., 0.]]), torch.tensor([1, 0])))
        >>> report.summary()["success_rate"], report.nearest_target_distance.shape
        (1.0, torch.Size([1]))
    """
    if not isinstance(result, CounterfactualResult):
        raise TypeError(f"result must be a CounterfactualResult, got {type(result).__name__}")
    if flow is not None and not hasattr(flow, "log_prob"):
        raise TypeError(f"flow must be a normalizing flow with log_prob(x), got {type(flow).__name__}")
    if oracle is not None and not callable(getattr(oracle, "predict", None)):
        raise TypeError(f"oracle must offer predict(x) (e.g. fit_oracle(...)), got {type(oracle).__name__}")
    change = (result.x_cf - result.x).flatten(1)
    bits = oracle_prediction = nearest = None
    if flow is not None:
        with torch.no_grad():
            bits = bits_per_dim(flow, result.x_cf).detach().cpu()
    if oracle is not None:
        oracle_prediction = torch.as_tensor(np.asarray(oracle.predict(result.x_cf.detach().cpu().flatten(1).numpy())))
    if reference_set is not None:
        try:
            reference_x, reference_y = reference_set
        except (TypeError, ValueError) as error:
            raise TypeError("reference_set must be a pair (x, y) of examples and their labels") from error
        reference_x = check_inputs(reference_x, tuple(result.x.shape[1:]), "reference_set[0]",
                                   dtype=result.x_cf.dtype, device=result.x_cf.device)
        reference_y = check_targets(reference_y, len(reference_x), result.probs.shape[2], "reference_set[1]")
        nearest = _nearest_target_distance(result.x_cf, result.target, reference_x,
                                           reference_y.to(result.x_cf.device), chunk_size).cpu()
    return CounterfactualReport(
        method=result.method, source=result.source.cpu(), target=result.target.cpu(), success=result.success.cpu(),
        steps=result.steps.cpu(), l1=change.abs().sum(1).cpu(), l2=change.norm(dim=1).cpu(), bits_per_dim=bits,
        oracle_prediction=oracle_prediction, nearest_target_distance=nearest,
    )
