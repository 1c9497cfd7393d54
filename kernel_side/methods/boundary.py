"""Decision boundaries of invertible classifiers: projections, paths across and along, 2-D curves.

References:
    Zhuang, Dvornek, Li, Yang, Duncan. Decision explanation and feature importance for
    invertible networks. ICCV Workshops 2019. https://arxiv.org/abs/1910.00406
    Authors' code: https://github.com/juntang-zhuang/explain_invertible

Projection. With z = T(x) and logits s = W z + b, the boundary between classes i and j is
the hyperplane ``g(z) = (w_i - w_j).z + b_i - b_j = 0``; its nearest point is
``z_p = z - g(z) n / ||n||^2`` with ``n = w_i - w_j``, and ``x_p = T^-1(z_p)`` is the input's
projection onto the boundary. The explanation is ``x - x_p``; the importance is its
first-order Taylor weighting ``grad_x g(x~) * (x - x_p)`` [derived: the paper only says
"first-order Taylor"]. Expanded at x~ = x_p (the default), where g(x_p) = 0, there is no
constant term and the importance sums to about g(x): measured on the digits test split the
median residual is 7.8 % of the score gap at x_p against 10.9 % at x~ = x (offered as
``importance_at="input"``); ``taylor_error`` reports the residual of every input.

Multi-class rule [derived]: by default the target is the nearest facet of the predicted
class c, ``k* = argmin_{k != c} (s_c - s_k) / ||w_c - w_k||``, whose projection lands exactly
on the true decision boundary. For another target the pairwise projection can land in a
third class's region, so the exact nearest point of the face where c and the target tie as
the top two is solved for (:mod:`crosslens.kernel_side.methods._face`).

Paths. Across: ``z(t) = z + t (z_p - z)`` for t in [0, t_max]; t = 1 lies on the boundary
and t = 2 is the mirror image of the input on the other side. Along [derived]: directions u
inside the boundary hyperplane (orthogonal to n = w_source - w_target), taken as the top
principal directions of reference features projected into the hyperplane; ``z(t) + a u``
keeps the pair's logit gap of z(t), so every such frame is exactly as ambiguous between the
two classes as the across-frame it moves from. Every frame is inverted in one batched pass.

2-D curves. For 2-feature models the boundary between i and j is a line in feature space;
inverting points of that line traces the boundary in input space exactly (no grid
contouring). Only the stretches where i and j are the top two classes are real decision
boundaries, and only those are kept [derived].
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from .._checks import (
    check_choice, check_inputs, check_int, check_interval, check_invertible_classifier, check_placement, check_real,
    check_targets,
)
from .._runtime import DEFAULT_CHUNK_SIZE, evaluating, map_chunks, model_in_dtype
from ._face import nearest_face_point

__all__ = [
    "BoundaryCurve", "BoundaryPath", "BoundaryProjection", "BoundarySweep", "DecisionRegions", "IMPORTANCE_POINTS",
    "boundary_curves", "boundary_directions", "boundary_path", "boundary_sweep", "decision_regions",
    "nearest_facet", "padded_bounds", "project_to_boundary",
]

IMPORTANCE_POINTS = ("input", "projection")


@dataclass(frozen=True)
class BoundaryProjection:
    """The projection of a batch of N inputs onto the decision boundary.

    Fields:
        x, x_proj: (N, *input_shape), the inputs and their projections onto the boundary.
        z, z_proj: (N, D), the same in feature space.
        source: (N,) the predicted class of each input; target: (N,) the class across.
        explanation: (N, *input_shape), ``x - x_proj``.
        importance: (N, *input_shape), ``grad_x g(x~) * (x - x_proj)``, expanded at x~ =
            ``importance_at`` (``"projection"``: x_proj, or ``"input"``: x).
        taylor_error: (N,), ``g(x) - importance.sum()``: how far first order is from exact.
        importance_at: where the importance was expanded.
    """

    x: torch.Tensor
    x_proj: torch.Tensor
    z: torch.Tensor
    z_proj: torch.Tensor
    source: torch.Tensor
    target: torch.Tensor
    explanation: torch.Tensor
    importance: torch.Tensor
    taylor_error: torch.Tensor
    importance_at: str

    method: ClassVar[str] = "projection"

    @property
    def relative_taylor_error(self) -> torch.Tensor:
        """(N,) ``|taylor_error| / |g(x)|``: the share of the score gap first order misses."""
        gap = self.taylor_error + self.importance.flatten(1).sum(1)
        return self.taylor_error.abs() / gap.abs().clamp_min(torch.finfo(gap.dtype).tiny)

    def out_of_range(self, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
        """(N,) the share of each projection's values outside ``[low, high]`` (the valid input
        range, e.g. pixels in [0, 1]): the inverse of a feature-space point need not be a valid
        input. A view that clips the picture to the range shows an input the model did not see."""
        low, high = check_interval((low, high), "(low, high)")
        outside = (self.x_proj < low) | (self.x_proj > high)
        return outside.flatten(1).float().mean(1)

    @property
    def distance(self) -> torch.Tensor:
        """(N,) feature-space distance ``||z - z_proj||`` to the boundary."""
        return (self.z - self.z_proj).norm(dim=1)


def nearest_facet(weight: torch.Tensor, bias: torch.Tensor, z: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """``argmin_{k != c} (s_c - s_k) / ||w_c - w_k||`` per row: the class across the nearest
    facet of the predicted class's region."""
    logits = z @ weight.T + bias
    gaps = logits.gather(1, source[:, None]) - logits  # (N, C), >= 0
    norms = (weight[source][:, None, :] - weight[None]).norm(dim=2)  # (N, C)
    ratio = gaps / norms.clamp_min(torch.finfo(z.dtype).tiny)
    ratio.scatter_(1, source[:, None], float("inf"))
    return ratio.argmin(1)


def _pair_gap(logits: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``g = s_source - s_target`` per row."""
    return logits.gather(1, source[:, None]).squeeze(1) - logits.gather(1, target[:, None]).squeeze(1)


def _taylor_importance(model, point, x, x_proj, source, target):
    """``grad g(point) * (x - x_proj)`` with g = s_source - s_target, batched."""
    with torch.enable_grad():
        point = point.detach().requires_grad_(True)
        (gradient,) = torch.autograd.grad(_pair_gap(model(point), source, target).sum(), point)
    return gradient * (x - x_proj)


def resolve_targets(model, x: torch.Tensor, target, chunk_size: int = DEFAULT_CHUNK_SIZE):
    """Features, predicted classes and checked targets (the nearest facet where ``target`` is None)."""
    z = map_chunks(model.features, x, chunk_size)
    source = model.head(z).argmax(1)
    weight, bias = model.head.weight, model.head.bias
    if target is None:
        return z, source, nearest_facet(weight, bias, z, source)
    target = check_targets(target, x.shape[0], model.head.out_features).to(z.device)
    same = (target == source).nonzero().flatten().tolist()
    if same:
        raise ValueError(
            f"target must differ from the predicted class; rows {same[:10]} are already predicted "
            f"as their target (class {target[same[0]].item()}); pick another target or None for the nearest boundary"
        )
    return z, source, target


def project_to_boundary(model, x, target=None, *, importance_at: str = "projection", dtype=None,
                        chunk_size: int = DEFAULT_CHUNK_SIZE) -> BoundaryProjection:
    """Project each input onto the decision boundary between its predicted class and ``target``.

    Arguments:
        model: an invertible classifier (``features``, ``inverse``, linear ``head``, ``input_shape``).
        x: (N, *input_shape) or one input of shape ``input_shape``.
        target: None (the nearest facet of the predicted class), one class index, or N of them.
        importance_at: ``"projection"`` (the first-order expansion at x_proj, default) or
            ``"input"`` (at x).
        dtype: compute in this dtype (e.g. ``torch.float64`` or ``"float64"`` for exact
            results); the model is copied, never changed.

    Raises:
        ValueError: bad shape or non-finite x; a target out of range, equal to the predicted
            class, or unreachable (the two classes never tie as the top two).

    Example:
        >>> from crosslens import kernel_side as ks
        >>> model = ks.load_pretrained("moons-invertible")
        >>> projection = ks.project_to_boundary(model, ks.load_moons_split()[2][:5])
        >>> logits = model(projection.x_proj)
        >>> bool(((logits[:, 0] - logits[:, 1]).abs() < 1e-4).all())
        True
    """
    check_invertible_classifier(model)
    check_placement(model, "model")
    check_choice(importance_at, "importance_at", IMPORTANCE_POINTS)
    model = model_in_dtype(model, dtype)
    parameter = model.head.weight
    x = check_inputs(x, model.input_shape, "x", dtype=parameter.dtype, device=parameter.device)
    with evaluating(model), torch.no_grad():
        z, source, target = resolve_targets(model, x, target, chunk_size)
        z_proj, reachable = nearest_face_point(model.head.weight, model.head.bias, z, source, target)
        if not reachable.all():
            rows = (~reachable).nonzero().flatten().tolist()
            raise ValueError(
                f"target is unreachable for rows {rows[:10]}: classes {source[rows[0]].item()} and "
                f"{target[rows[0]].item()} never tie as the top two classes; pick another target or None"
            )
        x_proj = map_chunks(model.inverse, z_proj, chunk_size)
        point = x if importance_at == "input" else x_proj
        importance = torch.cat([
            _taylor_importance(model, *rows)
            for rows in zip(*(t.split(chunk_size) for t in (point, x, x_proj, source, target)))
        ])
        gap = _pair_gap(model.head(z), source, target)
    return BoundaryProjection(
        x=x, x_proj=x_proj, z=z, z_proj=z_proj, source=source, target=target,
        explanation=x - x_proj, importance=importance,
        taylor_error=gap - importance.reshape(len(x), -1).sum(1), importance_at=importance_at,
    )

# --- paths across and along the boundary ---------------------------------------------------

@dataclass(frozen=True)
class BoundaryPath:
    """Frames of each input's straight feature-space path across the boundary.

    Fields:
        t: (T,) path positions in [0, t_max]; t = 1 is on the boundary.
        frames: (N, T, *input_shape), the inverted frames.
        probs: (N, T, C), the class probabilities of every frame.
        projection: the :class:`BoundaryProjection` the path runs through.
    """

    t: torch.Tensor
    frames: torch.Tensor
    probs: torch.Tensor
    projection: BoundaryProjection


@dataclass(frozen=True)
class BoundarySweep:
    """The across-path shifted along K directions inside the boundary hyperplane.

    Fields:
        t: (T,) across positions; amounts: (A,) along positions, in units of the reference
            features' standard deviation along each direction (0 at index A // 2).
        directions: (N, K, D) unit feature-space directions orthogonal to the pair's normal.
        scales: (N, K) that standard deviation (one unit of ``amounts``).
        frames: (N, K, A, T, *input_shape); probs: (N, K, A, T, C).
        projection: the :class:`BoundaryProjection` of the inputs.
    """

    t: torch.Tensor
    amounts: torch.Tensor
    directions: torch.Tensor
    scales: torch.Tensor
    frames: torch.Tensor
    probs: torch.Tensor
    projection: BoundaryProjection


def _check_grid(steps: int, t_max: float) -> torch.Tensor:
    steps = check_int(steps, "steps", minimum=2)
    return torch.linspace(0.0, check_real(t_max, "t_max", 0.0), steps)


def _across(model, x, target, steps, t_max, dtype, importance_at, chunk_size):
    """The model in ``dtype``, the projection, the t grid and the across points (N, T, D)
    ``z + t (z_p - z)``, shared by every path."""
    t = _check_grid(steps, t_max)
    model = model_in_dtype(model, dtype)
    projection = project_to_boundary(model, x, target, importance_at=importance_at, chunk_size=chunk_size)
    t = t.to(projection.z)
    points = projection.z[:, None] + t[None, :, None] * (projection.z_proj - projection.z)[:, None]
    return model, projection, t, points


def render(model, points: torch.Tensor, chunk_size: int = DEFAULT_CHUNK_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """Invert feature-space points (..., D) and give their class probabilities (..., C).

    Probabilities come from the head at the feature point itself, exact in any dtype.
    """
    flat = points.reshape(-1, points.shape[-1])
    frames = map_chunks(model.inverse, flat, chunk_size)
    probs = torch.softmax(model.head(flat), dim=-1)
    return frames.reshape(*points.shape[:-1], *frames.shape[1:]), probs.reshape(*points.shape[:-1], -1)


def boundary_path(model, x, target=None, steps: int = 65, t_max: float = 2.0, *, dtype=None,
                  importance_at: str = "projection", chunk_size: int = DEFAULT_CHUNK_SIZE) -> BoundaryPath:
    """Frames of ``z(t) = z + t (z_p - z)``, t = linspace(0, t_max, steps), for every input.

    All N x steps frames are inverted in one batched pass (chunked so memory stays bounded).
    The default 65 steps over [0, 2] hold t = 0, 1 (the boundary) and 2 (the mirror) exactly.
    ``dtype=torch.float64`` gives frames exact to ~1e-14 (float32 errors grow for t > 1).
    ``importance_at`` is passed to :func:`project_to_boundary`.

    Example:
        >>> from crosslens import kernel_side as ks
        >>> model = ks.load_pretrained("digits-invertible")
        >>> path = ks.boundary_path(model, ks.load_digits_split()[2][:4], steps=16)
        >>> tuple(path.frames.shape), tuple(path.probs.shape)
        ((4, 16, 1, 8, 8), (4, 16, 10))
    """
    model, projection, t, points = _across(model, x, target, steps, t_max, dtype, importance_at, chunk_size)
    with evaluating(model), torch.no_grad():
        frames, probs = render(model, points, chunk_size)
    return BoundaryPath(t=t, frames=frames, probs=probs, projection=projection)


def boundary_directions(model, reference, normals: torch.Tensor, n_directions: int = 2,
                        chunk_size: int = DEFAULT_CHUNK_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """Top principal directions of ``reference`` features inside each hyperplane.

    Arguments:
        reference: (M, *input_shape) inputs whose features span the directions (the training set).
        normals: (N, D) hyperplane normals.

    Returns:
        ``(directions, scales)``: (N, K, D) orthonormal directions orthogonal to each normal
        and (N, K) the reference features' standard deviation along them.
    """
    n_directions = check_int(n_directions, "n_directions", minimum=1, maximum=normals.shape[1] - 1)
    parameter = model.head.weight
    reference = check_inputs(reference, model.input_shape, "reference", dtype=parameter.dtype, device=parameter.device)
    with evaluating(model), torch.no_grad():
        features = map_chunks(model.features, reference, chunk_size)
        centered = features - features.mean(0)
        unit = normals / normals.norm(dim=1, keepdim=True)
        # Remove each normal from the reference features, then take their principal directions.
        inside = centered[None] - (centered @ unit.T).T[:, :, None] * unit[:, None, :]  # (N, M, D)
        _, singular, vh = torch.linalg.svd(inside, full_matrices=False)
    directions = vh[:, :n_directions]
    scales = singular[:, :n_directions] / max(features.shape[0] - 1, 1) ** 0.5
    return directions, scales


def boundary_sweep(model, x, target=None, reference=None, n_directions: int = 2, amounts=None, steps: int = 65,
                   t_max: float = 2.0, *, dtype=None, importance_at: str = "projection",
                   chunk_size: int = DEFAULT_CHUNK_SIZE) -> BoundarySweep:
    """Every frame of ``z + t (z_p - z) + a s_k u_k`` for all t, all amounts a, all K directions.

    Arguments:
        reference: inputs whose features give the along-boundary directions (default: x).
        n_directions: K, the number of directions per input.
        amounts: (A,) along positions in units of s_k (default ``linspace(-1, 1, 9)``:
            measured on digits, frames at 2 s_k leave the pixel range in ~20 % of pixels,
            at 1 s_k in ~10 %, on the boundary itself in ~3 %).

    ``frames[:, k, A // 2]`` (amount 0) is the plain across path of :func:`boundary_path`.
    """
    model, projection, t, across = _across(model, x, target, steps, t_max, dtype, importance_at, chunk_size)
    amounts = torch.linspace(-1.0, 1.0, 9) if amounts is None else torch.as_tensor(amounts, dtype=torch.float32).reshape(-1)
    if not torch.isfinite(amounts).all() or amounts.numel() == 0:
        raise ValueError("amounts must be a non-empty sequence of finite numbers")
    weight = model.head.weight.detach()
    normals = weight[projection.source] - weight[projection.target]
    directions, scales = boundary_directions(
        model, projection.x if reference is None else reference, normals, n_directions, chunk_size
    )
    amounts = amounts.to(projection.z)
    shifts = amounts[None, None, :, None] * (scales[..., None, None] * directions[:, :, None, :])  # (N, K, A, D)
    points = across[:, None, None] + shifts[:, :, :, None]  # (N, K, A, T, D)
    with evaluating(model), torch.no_grad():
        frames, probs = render(model, points, chunk_size)
    return BoundarySweep(t=t, amounts=amounts, directions=directions, scales=scales, frames=frames,
                         probs=probs, projection=projection)

# --- 2-feature models: decision regions and exact boundary curves --------------------------

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
    check_placement(model, "model")
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
    resolution = check_int(resolution, "resolution", minimum=2)
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
