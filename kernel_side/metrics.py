"""Scores for explanation results: realism, size, validity under independent oracles.

References:
    Dombrowski, Gerken, Mueller, Kessel. Diffeomorphic counterfactuals with generative
    models. TPAMI 2024. https://arxiv.org/abs/2206.05075 (the measures of counterfactuals)

    Dinh, Sohl-Dickstein, Bengio. Density estimation using Real NVP. ICLR 2017.
    https://arxiv.org/abs/1605.08803 (bits per dimension of quantised data)

A counterfactual should be valid (the classifier reaches the target), small (L1, L2 change
from the input), realistic (low bits per dimension under a flow trained on the data, close
to a real training example of the target class) and a genuine change of class rather than
an adversarial one: an independent oracle, a classifier the search never saw (an RBF SVC),
should agree with the target. Adversarial pixel-space results fool the classifier while the
oracle still sees the original class.

:func:`evaluate` scores any result that carries ``x``, ``source``, ``target`` and the point
it proposes, ``x_cf`` (counterfactuals) or ``x_proj`` (boundary projections).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ._checks import check_inputs, check_targets
from ._runtime import DEFAULT_CHUNK_SIZE, map_chunks

__all__ = ["CounterfactualReport", "bits_per_dim", "evaluate", "fit_oracle"]


def bits_per_dim(flow, x: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of each input in bits per dimension, shape (N,).

    For quantised data (``flow.levels`` set) the discrete convention of Dinh et al. (2017):
    the probability of the quantisation bin of x, estimated as the density at x times the
    bin volume ``(1 / (levels - 1))^D``; a uniform model scores ``log2(levels)`` (4.09 for 17
    levels). Averaged over :func:`~crosslens.kernel_side.models.generators.dequantize` draws it
    becomes the usual upper bound (measured on the digits test split with the shipped flow:
    1.89 at x, 2.18 dequantised). For continuous data (``levels=None``), ``-log p(x) / (D ln 2)``.

    Example:
        >>> from crosslens.kernel_side.models.generators import NormalizingFlow
        >>> flow = NormalizingFlow.build((1, 8, 8), blocks=2, hidden=16)
        >>> bits_per_dim(flow, torch.rand(3, 1, 8, 8)).shape
        torch.Size([3])
    """
    if not callable(getattr(flow, "log_prob", None)) or not hasattr(flow, "input_shape"):
        raise TypeError(f"flow must be a normalizing flow with log_prob(x) and input_shape, got {type(flow).__name__}")
    parameter = next(flow.parameters())
    x = check_inputs(x, flow.input_shape, "x", dtype=parameter.dtype, device=parameter.device)
    dims = math.prod(flow.input_shape)
    log_prob = flow.log_prob(x)
    levels = getattr(flow, "levels", None)
    if levels is not None:
        log_prob = log_prob - dims * math.log(levels - 1)
    return -log_prob / (dims * math.log(2))


def fit_oracle(x_train, y_train):
    """An independent oracle: scikit-learn's ``SVC()`` (RBF kernel) on the flattened inputs.

    Example:
        >>> from crosslens import kernel_side as ks
        >>> x_train, y_train, x_test, y_test = ks.load_digits_split()
        >>> oracle = fit_oracle(x_train, y_train)
        >>> float((oracle.predict(x_test.flatten(1).numpy()) == y_test.numpy()).mean()) > 0.97
        True
    """
    from sklearn.svm import SVC

    x_train = torch.as_tensor(x_train)
    y_train = torch.as_tensor(y_train)
    if len(x_train) != len(y_train):
        raise ValueError(f"x_train and y_train must have one label per input, got {len(x_train)} and {len(y_train)}")
    return SVC().fit(x_train.detach().cpu().flatten(1).numpy(), y_train.detach().cpu().numpy())


@dataclass(frozen=True)
class CounterfactualReport:
    """Per-row measures of an explanation result (all (N,) tensors on the CPU).

    Fields:
        method: the result's method; source, target: the predicted and the target class.
        success: target confidence above the threshold, or None (results without one);
        steps: optimiser steps taken, or None.
        l1, l2: size of the change ``x' - x`` from the input (x' = ``x_cf`` or ``x_proj``).
        bits_per_dim: of x' under the flow, or None.
        oracle_prediction: the oracle's class for x', or None.
        nearest_target_distance: L2 distance from x' to the nearest reference example of
            the target class, or None.
    """

    method: str
    source: torch.Tensor
    target: torch.Tensor
    success: torch.Tensor | None
    steps: torch.Tensor | None
    l1: torch.Tensor
    l2: torch.Tensor
    bits_per_dim: torch.Tensor | None
    oracle_prediction: torch.Tensor | None
    nearest_target_distance: torch.Tensor | None

    @property
    def oracle_agrees(self) -> torch.Tensor | None:
        """(N,) bool: the oracle sees the target class in x'."""
        return None if self.oracle_prediction is None else self.oracle_prediction == self.target

    def summary(self) -> dict:
        """One row of a comparison table: rates over all N rows, medians of the measures."""

        def median(values):
            return None if values is None else values.float().median().item()

        def rate(flags):
            return None if flags is None else flags.float().mean().item()

        return {
            "method": self.method,
            "n": len(self.source),
            "success_rate": rate(self.success),
            "median_steps": median(self.steps),
            "median_l1": median(self.l1),
            "median_l2": median(self.l2),
            "median_bits_per_dim": median(self.bits_per_dim),
            "oracle_target": rate(self.oracle_agrees),
            "oracle_source": rate(None if self.oracle_prediction is None else self.oracle_prediction == self.source),
            "median_nearest_target_distance": median(self.nearest_target_distance),
        }


def _proposed_point(result) -> torch.Tensor:
    """The point a result proposes: ``x_cf`` (counterfactuals) or ``x_proj`` (projections)."""
    for field in ("x_cf", "x_proj"):
        point = getattr(result, field, None)
        if isinstance(point, torch.Tensor):
            return point
    missing = [field for field in ("x", "source", "target") if not isinstance(getattr(result, field, None), torch.Tensor)]
    raise TypeError(
        f"result must carry x, source, target and x_cf or x_proj (a CounterfactualResult or a BoundaryProjection), "
        f"got {type(result).__name__}{' without ' + ', '.join(missing) if missing else ''}"
    )


def _cpu(values) -> torch.Tensor | None:
    return None if values is None else values.detach().cpu()


def _nearest_target_distance(x_cf, target, reference_x, reference_y, chunk_size):
    def nearest(rows: torch.Tensor) -> torch.Tensor:
        pairwise = torch.cdist(x_cf[rows].flatten(1), reference_x.flatten(1))
        other_class = reference_y[None, :] != target[rows, None]
        return pairwise.masked_fill(other_class, float("inf")).min(1).values

    return map_chunks(nearest, torch.arange(len(x_cf), device=x_cf.device), chunk_size)


def evaluate(result, *, flow=None, oracle=None, reference_set=None,
             chunk_size: int = DEFAULT_CHUNK_SIZE) -> CounterfactualReport:
    """Measure a batch of explanation results.

    Arguments:
        result: a :class:`~crosslens.kernel_side.CounterfactualResult`, a
            :class:`~crosslens.kernel_side.BoundaryProjection`, or any result with ``x``,
            ``source``, ``target`` and ``x_cf`` or ``x_proj`` (``method``, ``success`` and
            ``steps`` are read when present).
        flow: a normalizing flow of the data (``log_prob``) for bits per dimension, or None.
        oracle: an independent classifier with ``predict(array (N, D))`` (see :func:`fit_oracle`), or None.
        reference_set: ``(x, y)`` real examples (the training split) for the distance to the
            nearest one of the target class, or None.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from crosslens.kernel_side import pixel_counterfactual
        >>> classifier = nn.Linear(2, 2)
        >>> with torch.no_grad(): _ = classifier.weight.copy_(torch.eye(2)), classifier.bias.zero_()
        >>> result = pixel_counterfactual(classifier, torch.tensor([[0.9, 0.1]]), 1, lr=0.05, threshold=0.6)
        >>> report = evaluate(result, reference_set=(torch.tensor([[0., 1.], [1., 0.]]), torch.tensor([1, 0])))
        >>> report.summary()["success_rate"], report.nearest_target_distance.shape
        (1.0, torch.Size([1]))
    """
    point = _proposed_point(result)
    if flow is not None and not hasattr(flow, "log_prob"):
        raise TypeError(f"flow must be a normalizing flow with log_prob(x), got {type(flow).__name__}")
    if oracle is not None and not callable(getattr(oracle, "predict", None)):
        raise TypeError(f"oracle must offer predict(x) (e.g. fit_oracle(...)), got {type(oracle).__name__}")
    change = (point - result.x).flatten(1)
    bits = oracle_prediction = nearest = None
    if flow is not None:
        with torch.no_grad():
            bits = bits_per_dim(flow, point).detach().cpu()
    if oracle is not None:
        oracle_prediction = torch.as_tensor(np.asarray(oracle.predict(point.detach().cpu().flatten(1).numpy())))
    if reference_set is not None:
        try:
            reference_x, reference_y = reference_set
        except (TypeError, ValueError) as error:
            raise TypeError("reference_set must be a pair (x, y) of examples and their labels") from error
        reference_x = check_inputs(reference_x, tuple(result.x.shape[1:]), "reference_set[0]",
                                   dtype=point.dtype, device=point.device)
        labels = torch.as_tensor(reference_y)
        reference_y = check_targets(labels, len(reference_x), max(int(labels.max()) + 1, 1), "reference_set[1]")
        nearest = _nearest_target_distance(point, result.target, reference_x, reference_y.to(point.device),
                                           chunk_size).cpu()
    return CounterfactualReport(
        method=str(getattr(result, "method", type(result).__name__)), source=result.source.cpu(),
        target=result.target.cpu(), success=_cpu(getattr(result, "success", None)),
        steps=_cpu(getattr(result, "steps", None)), l1=change.abs().sum(1).cpu(), l2=change.norm(dim=1).cpu(),
        bits_per_dim=bits, oracle_prediction=oracle_prediction, nearest_target_distance=nearest,
    )
