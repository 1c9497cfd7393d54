"""The nearest point where two classes tie as the top two of a linear classifier.

Given features z, a linear head (W, b) and a pair (i, j), the decision face between i and j
is ``F = {z' : s_i(z') = s_j(z') >= s_k(z') for every other k}`` with ``s = W z' + b``. It is
a polyhedron, so the nearest point of F is a small quadratic program (D variables, one
equality, C - 2 inequalities). [derived]

Where the pairwise projection onto ``s_i = s_j`` already keeps i and j on top, it is the
answer. For the other rows the solver enumerates active sets, batched: for every subset S of the inequalities it
projects z onto ``{s_i = s_j} and {s_i = s_k, k in S}`` in closed form (in the (C-1)-dim
space of constraint values, through the Gram matrix of the constraint normals), keeps the
candidates that satisfy every constraint and returns the nearest. The optimum is one of the
candidates (its own active set), so the answer is exact. 2^(C-2) subsets are cheap for up to
12 classes; beyond that each row is solved with SciPy's SLSQP.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

__all__ = ["ENUMERATION_MAX_CLASSES", "nearest_face_point", "nearest_face_point_slsqp"]

ENUMERATION_MAX_CLASSES = 12


def _constraints(weight, bias, z, source, target) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows a_0 = w_i - w_j (the equality), a_k = w_i - w_k (the inequalities), and their
    offsets c, so that the constraint values at z are ``a.z + c``: (N, m, D) and (N, m)."""
    num_classes = weight.shape[0]
    classes = torch.arange(num_classes, device=z.device)
    others = classes.expand(len(source), -1)
    keep = (others != source[:, None]) & (others != target[:, None])
    others = others[keep].reshape(len(source), num_classes - 2)
    partners = torch.cat([target[:, None], others], dim=1)  # (N, m): j, then the k's
    normals = weight[source][:, None, :] - weight[partners]
    offsets = bias[source][:, None] - bias[partners]
    return normals, offsets


def _tolerance(values: torch.Tensor) -> torch.Tensor:
    eps = 1e-9 if values.dtype == torch.float64 else 1e-4
    return eps * (1 + values.abs().amax(1, keepdim=True))


def nearest_face_point(weight, bias, z, source, target) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest point of the (source, target) decision face to each row of z.

    Arguments:
        weight: (C, D) and bias: (C,), the linear head.
        z: (N, D) features; source, target: (N,) class indices, source != target.

    Returns:
        ``(z_face, reachable)``: (N, D) points and an (N,) bool that is False where the face
        is empty (the two classes never tie as the top two); those rows of z_face are NaN.
    """
    normals, offsets = _constraints(weight, bias, z, source, target)
    values = torch.einsum("nmd,nd->nm", normals, z) + offsets
    # The pairwise projection onto s_i = s_j is the answer wherever it keeps i, j on top.
    pair_normal = normals[:, 0]
    step = values[:, :1] / pair_normal.pow(2).sum(1, keepdim=True)
    z_face = z - step * pair_normal
    after = values - step * (normals @ pair_normal[..., None]).squeeze(-1)
    hard = ~(after[:, 1:] >= -_tolerance(values)).all(1)
    reachable = torch.ones(len(z), dtype=torch.bool, device=z.device)
    if hard.any():
        if weight.shape[0] > ENUMERATION_MAX_CLASSES:
            z_face[hard], reachable[hard] = _solve_slsqp(normals[hard], offsets[hard], z[hard])
        else:
            z_face[hard], reachable[hard] = _enumerate_active_sets(normals[hard], values[hard], z[hard])
    return z_face, reachable


def _enumerate_active_sets(normals, values, z) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact nearest face points by enumerating every active set, batched (C <= 12)."""
    num_rows = normals.shape[1]
    # Every subset of the inequalities, the equality always active: (S, m) masks.
    subsets = torch.tensor(list(itertools.product([0.0, 1.0], repeat=num_rows - 1)), dtype=z.dtype, device=z.device)
    active = torch.cat([torch.ones(len(subsets), 1, dtype=z.dtype, device=z.device), subsets.reshape(len(subsets), -1)], 1)
    gram = normals @ normals.transpose(1, 2)  # (N, m, m)
    chunk = max(1, 65536 // len(active))
    best_multipliers = []
    reachable = []
    for rows in range(0, z.shape[0], chunk):
        g = gram[rows : rows + chunk, None]  # (n, 1, m, m)
        v = values[rows : rows + chunk, None]  # (n, 1, m)
        outer = active[:, :, None] * active[:, None, :]
        masked = g * outer + torch.diag_embed(1 - active)
        multipliers = (torch.linalg.pinv(masked) @ (v * active)[..., None]).squeeze(-1) * active  # (n, S, m)
        new_values = v - (g @ multipliers[..., None]).squeeze(-1)
        tol = _tolerance(values[rows : rows + chunk])[:, None]
        feasible = (new_values[..., 0].abs() <= tol[..., 0]) & (new_values[..., 1:] >= -tol).all(-1)
        distance = (multipliers[..., None, :] @ g @ multipliers[..., None]).squeeze(-1).squeeze(-1)
        distance = torch.where(feasible, distance, torch.full_like(distance, float("inf")))
        choice = distance.argmin(1)
        best_multipliers.append(multipliers[torch.arange(len(choice)), choice])
        reachable.append(feasible.any(1))
    multipliers = torch.cat(best_multipliers)
    reachable = torch.cat(reachable)
    z_face = z - torch.einsum("nm,nmd->nd", multipliers, normals)
    z_face[~reachable] = float("nan")
    return z_face, reachable


def nearest_face_point_slsqp(weight, bias, z, source, target) -> tuple[torch.Tensor, torch.Tensor]:
    """The same answer as :func:`nearest_face_point`, one SLSQP solve per row (any C)."""
    return _solve_slsqp(*_constraints(weight, bias, z, source, target), z)


def _solve_slsqp(normals, offsets, z) -> tuple[torch.Tensor, torch.Tensor]:
    from scipy.optimize import minimize  # imported where used: importing crosslens stays fast

    normals_np = normals.detach().cpu().double().numpy()
    offsets_np = offsets.detach().cpu().double().numpy()
    z_np = z.detach().cpu().double().numpy()
    faces, reachable = [], []
    for a, c, z0 in zip(normals_np, offsets_np, z_np):
        constraints = [
            {"type": "eq", "fun": lambda p, a=a, c=c: a[0] @ p + c[0], "jac": lambda p, a=a: a[0]},
            {"type": "ineq", "fun": lambda p, a=a, c=c: a[1:] @ p + c[1:], "jac": lambda p, a=a: a[1:]},
        ]
        result = minimize(lambda p: 0.5 * np.sum((p - z0) ** 2), z0, jac=lambda p: p - z0,
                          constraints=constraints, method="SLSQP", options={"maxiter": 500, "ftol": 1e-12})
        scale = 1 + np.abs(c).max() + np.abs(a @ z0).max()
        ok = result.success and abs(a[0] @ result.x + c[0]) < 1e-6 * scale and (a[1:] @ result.x + c[1:] >= -1e-6 * scale).all()
        faces.append(result.x if ok else np.full_like(z0, np.nan))
        reachable.append(ok)
    return (torch.as_tensor(np.stack(faces), dtype=z.dtype, device=z.device),
            torch.as_tensor(reachable, device=z.device))
