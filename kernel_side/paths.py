"""Paths across and along the decision boundary, every frame inverted in one batched pass.

References:
    Zhuang, Dvornek, Li, Yang, Duncan. Decision explanation and feature importance for
    invertible networks. ICCV Workshops 2019. https://arxiv.org/abs/1910.00406

Across: ``z(t) = z + t (z_p - z)`` for t in [0, t_max]; t = 1 lies on the boundary and
t = 2 is the mirror image of the input on the other side. Along [derived]: directions u
inside the boundary hyperplane (orthogonal to n = w_source - w_target), taken as the top
principal directions of reference features projected into the hyperplane; ``z(t) + a u``
keeps the pair's logit gap of z(t), so every such frame is exactly as ambiguous between the
two classes as the across-frame it moves from.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .boundary import BoundaryProjection, project_to_boundary
from .runtime import DEFAULT_CHUNK_SIZE, evaluating, map_chunks, model_in_dtype
from .validation import check_inputs

__all__ = ["BoundaryPath", "BoundarySweep", "boundary_path", "boundary_sweep", "boundary_directions"]


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
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
    if not (isinstance(t_max, (int, float)) and 0 < t_max < float("inf")):
        raise ValueError(f"t_max must be a positive finite number, got {t_max!r}")
    return torch.linspace(0.0, float(t_max), steps)


def _across(model, x, target, steps, t_max, dtype, chunk_size):
    """The model in ``dtype``, the projection, the t grid and the across points (N, T, D)
    ``z + t (z_p - z)``, shared by every path."""
    t = _check_grid(steps, t_max)
    model = model_in_dtype(model, dtype)
    projection = project_to_boundary(model, x, target, chunk_size=chunk_size)
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


def boundary_path(model, x, target=None, steps: int = 64, t_max: float = 2.0, *, dtype: torch.dtype | None = None,
                  chunk_size: int = DEFAULT_CHUNK_SIZE) -> BoundaryPath:
    """Frames of ``z(t) = z + t (z_p - z)``, t = linspace(0, t_max, steps), for every input.

    All N x steps frames are inverted in one batched pass (chunked so memory stays bounded).
    ``dtype=torch.float64`` gives frames exact to ~1e-14 (float32 errors grow for t > 1).

    Example:
        >>> from crosslens import kernel_side as ks
        >>> model = ks.load_pretrained("digits-invertible")
        >>> path = ks.boundary_path(model, ks.load_digits_split()[2][:4], steps=16)
        >>> tuple(path.frames.shape), tuple(path.probs.shape)
        ((4, 16, 1, 8, 8), (4, 16, 10))
    """
    model, projection, t, points = _across(model, x, target, steps, t_max, dtype, chunk_size)
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
    if isinstance(n_directions, bool) or not isinstance(n_directions, int) or n_directions < 1:
        raise ValueError(f"n_directions must be a positive integer, got {n_directions!r}")
    dims = normals.shape[1]
    if n_directions > dims - 1:
        raise ValueError(f"n_directions must be at most {dims - 1} (the hyperplane's dimension), got {n_directions}")
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


def boundary_sweep(model, x, target=None, reference=None, n_directions: int = 2, amounts=None, steps: int = 64,
                   t_max: float = 2.0, *, dtype: torch.dtype | None = None,
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
    model, projection, t, across = _across(model, x, target, steps, t_max, dtype, chunk_size)
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
