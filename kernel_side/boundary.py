"""Projection of inputs onto the decision boundary of an invertible classifier.

References:
    Zhuang, Dvornek, Li, Yang, Duncan. Decision explanation and feature importance for
    invertible networks. ICCV Workshops 2019. https://arxiv.org/abs/1910.00406
    Authors' code: https://github.com/juntang-zhuang/explain_invertible

With z = T(x) and logits s = W z + b, the boundary between classes i and j is the hyperplane
``g(z) = (w_i - w_j).z + b_i - b_j = 0``; its nearest point is ``z_p = z - g(z) n / ||n||^2``
with ``n = w_i - w_j``, and ``x_p = T^-1(z_p)`` is the input's projection onto the boundary.
The explanation is ``x - x_p``; the importance is its first-order Taylor weighting
``grad_x g(x~) * (x - x_p)`` with x~ = x (default) or x_p. Since g(x_p) = 0, the importance
sums to about g(x); ``taylor_error`` reports what is left.

Multi-class rule [derived, METHODS.md section 1]: by default the target is the nearest facet
of the predicted class c, ``k* = argmin_{k != c} (s_c - s_k) / ||w_c - w_k||``, whose
projection lands exactly on the true decision boundary. For another target the pairwise
projection can land in a third class's region, so the exact nearest point of the face where
c and the target tie as the top two is solved for (:mod:`crosslens.kernel_side.face`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .face import nearest_face_point
from .runtime import DEFAULT_CHUNK_SIZE, evaluating, map_chunks, model_in_dtype
from .validation import check_inputs, check_invertible_classifier, check_targets

__all__ = ["BoundaryProjection", "IMPORTANCE_POINTS", "nearest_facet", "project_to_boundary"]

IMPORTANCE_POINTS = ("input", "projection")


@dataclass(frozen=True)
class BoundaryProjection:
    """The projection of a batch of N inputs onto the decision boundary.

    Fields:
        x, x_proj: (N, *input_shape), the inputs and their projections onto the boundary.
        z, z_proj: (N, D), the same in feature space.
        source: (N,) the predicted class of each input; target: (N,) the class across.
        explanation: (N, *input_shape), ``x - x_proj``.
        importance: (N, *input_shape), ``grad_x g(x~) * (x - x_proj)``.
        taylor_error: (N,), ``g(x) - importance.sum()``: how far first order is from exact.
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


def project_to_boundary(model, x, target=None, *, importance_at: str = "input", dtype: torch.dtype | None = None,
                        chunk_size: int = DEFAULT_CHUNK_SIZE) -> BoundaryProjection:
    """Project each input onto the decision boundary between its predicted class and ``target``.

    Arguments:
        model: an invertible classifier (``features``, ``inverse``, linear ``head``, ``input_shape``).
        x: (N, *input_shape) or one input of shape ``input_shape``.
        target: None (the nearest facet of the predicted class), one class index, or N of them.
        importance_at: ``"input"`` (gradient at x, default) or ``"projection"`` (at x_proj).
        dtype: compute in this dtype (e.g. ``torch.float64`` for exact results); the model is
            copied, never changed.

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
    if importance_at not in IMPORTANCE_POINTS:
        raise ValueError(f"importance_at must be one of {IMPORTANCE_POINTS}, got {importance_at!r}")
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
        taylor_error=gap - importance.reshape(len(x), -1).sum(1),
    )
