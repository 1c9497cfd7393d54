"""Decision regions and exact decision-boundary curves of 2-feature invertible classifiers.

References:
    Zhuang, Dvornek, Li, Yang, Duncan. Decision explanation and feature importance for
    invertible networks. ICCV Workshops 2019. https://arxiv.org/abs/1910.00406

In feature space the boundary between classes i and j is the line ``(w_i - w_j).z + b_i - b_j
= 0``; inverting points of that line traces the boundary in input space exactly (no grid
contouring). Only the stretches where i and j are the top two classes are real decision
boundaries, and only those are kept [derived, METHODS.md section 1].
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from .runtime import DEFAULT_CHUNK_SIZE, evaluating, map_chunks
from .validation import check_invertible_classifier

__all__ = ["BoundaryCurve", "DecisionRegions", "boundary_curves", "decision_regions", "padded_bounds"]

MAX_SAMPLES = 1 << 18


@dataclass(frozen=True)
class DecisionRegions:
    """Class probabilities on a grid: ``probs[row, col]`` is at ``(xs[col], ys[row])``.

    Fields: xs (R,), ys (R,), probs (R, R, C).
    """

    xs: torch.Tensor
    ys: torch.Tensor
    probs: torch.Tensor


@dataclass(frozen=True)
class BoundaryCurve:
    """One stretch of the decision boundary between classes ``pair = (i, j)``: points (M, 2)."""

    pair: tuple[int, int]
    points: torch.Tensor


def _check_planar(model) -> None:
    check_invertible_classifier(model)
    if tuple(model.input_shape) != (2,):
        raise ValueError(f"model must take 2-feature inputs (input_shape (2,)), got input_shape {tuple(model.input_shape)}")


def _check_bounds(bounds) -> tuple[float, float, float, float]:
    try:
        xmin, xmax, ymin, ymax = (float(value) for value in bounds)
    except (TypeError, ValueError) as error:
        raise TypeError(f"bounds must be four numbers (xmin, xmax, ymin, ymax), got {bounds!r}") from error
    if not (xmin < xmax and ymin < ymax) or not all(map(torch.isfinite, torch.tensor([xmin, xmax, ymin, ymax]))):
        raise ValueError(f"bounds must be finite with xmin < xmax and ymin < ymax, got {bounds!r}")
    return xmin, xmax, ymin, ymax


def padded_bounds(points: torch.Tensor, margin: float = 0.1) -> tuple[float, float, float, float]:
    """The bounding box of (M, 2) points, grown by ``margin`` of its size on every side."""
    low, high = points.amin(0), points.amax(0)
    pad = (high - low) * margin
    return (float(low[0] - pad[0]), float(high[0] + pad[0]), float(low[1] - pad[1]), float(high[1] + pad[1]))


def _grid(bounds, resolution: int, like: torch.Tensor):
    xmin, xmax, ymin, ymax = bounds
    xs = torch.linspace(xmin, xmax, resolution, dtype=like.dtype, device=like.device)
    ys = torch.linspace(ymin, ymax, resolution, dtype=like.dtype, device=like.device)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return xs, ys, torch.stack([grid_x, grid_y], dim=-1).reshape(-1, 2)


def decision_regions(model, bounds, resolution: int = 200, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> DecisionRegions:
    """Class probabilities of a 2-feature model on a ``resolution x resolution`` grid over ``bounds``."""
    _check_planar(model)
    bounds = _check_bounds(bounds)
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"resolution must be an integer >= 2, got {resolution!r}")
    xs, ys, points = _grid(bounds, resolution, model.head.weight)
    with evaluating(model), torch.no_grad():
        probs = map_chunks(lambda rows: torch.softmax(model(rows), dim=1), points, chunk_size)
    return DecisionRegions(xs=xs, ys=ys, probs=probs.reshape(resolution, resolution, -1))


def _split_runs(points: torch.Tensor, keep: torch.Tensor) -> list[torch.Tensor]:
    """The maximal runs of consecutive rows of ``points`` where ``keep`` holds (2+ points each)."""
    edges = torch.diff(keep.to(torch.int8), prepend=keep.new_zeros(1, dtype=torch.int8),
                       append=keep.new_zeros(1, dtype=torch.int8))
    starts = (edges == 1).nonzero().flatten().tolist()
    stops = (edges == -1).nonzero().flatten().tolist()
    return [points[start:stop] for start, stop in zip(starts, stops) if stop - start >= 2]


def boundary_curves(model, bounds, samples: int = 4096, *, max_gap: float | None = None,
                    chunk_size: int = DEFAULT_CHUNK_SIZE) -> list[BoundaryCurve]:
    """The decision boundary of a 2-feature model inside ``bounds``, as polylines.

    For each pair of classes, ``samples`` points of the feature-space boundary line are
    inverted in one batch; the sampling is made denser (up to 2^18 points) until consecutive
    points are at most ``max_gap`` apart (default: 1/500 of the box diagonal); only stretches inside ``bounds``
    where the pair are the top two classes are returned.
    """
    _check_planar(model)
    bounds = _check_bounds(bounds)
    xmin, xmax, ymin, ymax = bounds
    if max_gap is None:
        max_gap = ((xmax - xmin) ** 2 + (ymax - ymin) ** 2) ** 0.5 / 500
    weight, bias = model.head.weight, model.head.bias
    curves = []
    with evaluating(model), torch.no_grad():
        # The features of the box tell how far along each feature-space line to sweep.
        _, _, box = _grid(bounds, 64, weight)
        box_features = map_chunks(model.features, box, chunk_size)
        for i, j in itertools.combinations(range(weight.shape[0]), 2):
            normal, offset = weight[i] - weight[j], bias[i] - bias[j]
            if normal.norm() == 0:
                continue
            anchor = -offset * normal / normal.dot(normal)
            along = torch.stack([-normal[1], normal[0]]) / normal.norm()
            reach = (box_features - anchor) @ along
            span = reach.max() - reach.min()
            low, high = float(reach.min() - 0.1 * span), float(reach.max() + 0.1 * span)
            count = samples
            for _ in range(3):  # densify until consecutive inverted points are close enough
                positions = torch.linspace(low, high, count, dtype=weight.dtype, device=weight.device)
                line = anchor + positions[:, None] * along
                inputs = map_chunks(model.inverse, line, chunk_size)
                worst_gap = float((inputs[1:] - inputs[:-1]).norm(dim=1).max())
                if worst_gap <= max_gap or count >= MAX_SAMPLES:
                    break
                count = min(int(count * math.ceil(worst_gap / max_gap)), MAX_SAMPLES)
            logits = model.head(line)
            tie = logits[:, i]
            others = logits.clone()
            others[:, [i, j]] = -float("inf")
            top_two = others.amax(1) <= tie + 1e-6 * (1 + tie.abs())
            inside = (inputs[:, 0] >= xmin) & (inputs[:, 0] <= xmax) & (inputs[:, 1] >= ymin) & (inputs[:, 1] <= ymax)
            curves += [BoundaryCurve(pair=(i, j), points=run) for run in _split_runs(inputs, top_two & inside)]
    return curves
