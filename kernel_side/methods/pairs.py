"""Counterfactual pairs (x_R, x_C) for discriminative attribution, from any of crosslens' sources.

References:
    Eckstein, Bates, Jefferis, Funke. Discriminative attribution from counterfactuals.
    arXiv 2109.13412 (2021). https://arxiv.org/abs/2109.13412

The authors make one CycleGAN per class pair and keep a pair only when the classifier is
sure of both images: p(i | x_R) > 0.8 and p(j | x_C) > 0.8. Here the counterfactuals come
from crosslens' own generators, with the same filter:

- ``"latent"``: Adam in a normalizing flow's (or VAE's) latent space
  (:func:`~crosslens.kernel_side.latent_counterfactual`, Dombrowski et al. 2024);
- ``"boundary"``: for an invertible classifier, the input's projection onto the decision
  boundary pushed across it, ``T^-1(z + t (z_p - z))`` with t = 2 (the mirror image;
  :func:`~crosslens.kernel_side.project_to_boundary`, Zhuang et al. 2019);
- ``"nearest"``: the nearest (L2) reference image of the target class;
- or tensors the user made elsewhere.

Results of the engine are pairs as they are: a :class:`CounterfactualResult` (x, x_cf), a
:class:`BoundaryPath` (the input and its last frame, past the boundary when t_max > 1) and a
:class:`BoundaryProjection` (the input and its mirror, made with the classifier).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from .._checks import check_choice, check_classifier, check_inputs, check_invertible_classifier, check_placement, \
    check_real, check_targets
from .._runtime import evaluating
from .boundary import BoundaryPath, BoundaryProjection, project_to_boundary
from .counterfactuals import CounterfactualResult, latent_counterfactual

__all__ = ["PAIR_SOURCES", "CounterfactualPairs", "as_pairs", "check_images", "check_pair", "counterfactual_pairs", "unpack_pairs"]

PAIR_SOURCES = ("latent", "boundary", "nearest")
MIN_CONFIDENCE = 0.8  # the authors' filter on p(i | x_R) and p(j | x_C)
MIRROR_T = 2.0


@dataclass(frozen=True)
class CounterfactualPairs:
    """Real images and their counterfactuals, with the classifier's confidence in each.

    Fields:
        x: (N, *input_shape) real images x_R; x_cf: (N, *input_shape) counterfactuals x_C.
        source: (N,) class i, the prediction of x; target: (N,) class j of x_cf.
        p_source: (N,) p(i | x); p_target: (N,) p(j | x_cf).
        index: (N,) each kept pair's position among the candidates.
        candidates: how many pairs were made before the filter; via: where x_cf came from
            (``"latent"``, ``"boundary"``, ``"nearest"``, ``"given"``, or the result type);
        min_confidence: the filter applied (0: none).
    """

    x: torch.Tensor
    x_cf: torch.Tensor
    source: torch.Tensor
    target: torch.Tensor
    p_source: torch.Tensor
    p_target: torch.Tensor
    index: torch.Tensor
    candidates: int
    via: str
    min_confidence: float

    def __len__(self) -> int:
        return len(self.x)

    @property
    def kept(self) -> int:
        """How many pairs passed the filter."""
        return len(self.x)

    def subset(self, rows) -> "CounterfactualPairs":
        """The pairs at ``rows`` (indices or a bool mask)."""
        rows = torch.as_tensor(rows)
        tensors = {f.name: getattr(self, f.name)[rows.to(getattr(self, f.name).device)]
                   for f in fields(self) if isinstance(getattr(self, f.name), torch.Tensor)}
        return CounterfactualPairs(**tensors, candidates=self.candidates, via=self.via,
                                   min_confidence=self.min_confidence)


def check_images(classifier, x, name: str = "x") -> torch.Tensor:
    """``x`` as a batch of the classifier's inputs (``input_shape``, else the shape of x's rows),
    on its device and in its dtype."""
    check_classifier(classifier)
    device, dtype = check_placement(classifier, "classifier") or (None, None)
    shape = getattr(classifier, "input_shape", None)
    if shape is None:
        if not isinstance(x, torch.Tensor) or x.ndim < 2:
            raise ValueError(f"{name} must be a batch (N, *input_shape) when the classifier has no input_shape")
        shape = tuple(x.shape[1:])
    return check_inputs(x, tuple(shape), name, dtype=dtype, device=device)


def check_pair(classifier, x, x_cf) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` and ``x_cf`` as batches of one input shape on the classifier's device and dtype."""
    x = check_images(classifier, x)
    if isinstance(x_cf, torch.Tensor) and x_cf.shape != x.shape and x_cf.numel() == x.numel():
        x_cf = x_cf.reshape(x.shape)
    x_cf = check_inputs(x_cf, tuple(x.shape[1:]), "x_cf", dtype=x.dtype, device=x.device)
    if x_cf.shape != x.shape:
        raise ValueError(f"x and x_cf must hold as many inputs of one shape (one counterfactual per input), "
                         f"got {tuple(x.shape)} and {tuple(x_cf.shape)}")
    return x, x_cf


def _mirror(classifier, projection: BoundaryProjection, t: float) -> torch.Tensor:
    """``T^-1(z + t (z_p - z))``: the projection pushed across the boundary (t = 2: the mirror)."""
    check_invertible_classifier(classifier, "classifier")
    with evaluating(classifier), torch.no_grad():
        return classifier.inverse(projection.z + t * (projection.z_proj - projection.z))


def unpack_pairs(classifier, x, x_cf=None, target=None, t: float = MIRROR_T):
    """``(x, x_cf, target, via)`` from engine results or given tensors (x_cf None: make it)."""
    results = (CounterfactualPairs, CounterfactualResult, BoundaryPath, BoundaryProjection)
    if isinstance(x, results) and x_cf is not None:
        raise TypeError(f"x is a {type(x).__name__}, which holds the counterfactuals: leave x_cf out")
    if isinstance(x, CounterfactualPairs):
        return x.x, x.x_cf, x.target if target is None else target, x.via
    if isinstance(x, CounterfactualResult):
        return x.x, x.x_cf, x.target if target is None else target, f"{x.method} counterfactual"
    if isinstance(x, BoundaryPath):
        if x.t[-1] <= 1:
            raise ValueError(f"the boundary path ends at t = {x.t[-1].item():g}, on this side of the boundary; make "
                             "it with t_max > 1 (2: the mirror image) to use its last frame as the counterfactual")
        return x.projection.x, x.frames[:, -1], x.projection.target if target is None else target, "boundary path"
    if isinstance(x, BoundaryProjection):
        return x.x, _mirror(classifier, x, t), x.target if target is None else target, "boundary"
    return x, x_cf, target, "given"


def as_pairs(classifier, x, x_cf=None, target=None, *, min_confidence: float = 0.0,
             t: float = MIRROR_T) -> CounterfactualPairs:
    """Pairs from given tensors or an engine result, filtered at ``min_confidence`` (default: none)."""
    x, x_cf, target, via = unpack_pairs(classifier, x, x_cf, target, t)
    if x_cf is None:
        raise TypeError("x_cf is missing: pass the counterfactuals, an engine result as x, or use "
                        "counterfactual_pairs(..., via=...) to make them")
    return _filtered(classifier, x, x_cf, target, via, min_confidence)


def _filtered(classifier, x, x_cf, target, via: str, min_confidence: float) -> CounterfactualPairs:
    min_confidence = check_real(min_confidence, "min_confidence", 0.0, 1.0, closed="low")
    x, x_cf = check_pair(classifier, x, x_cf)
    with evaluating(classifier), torch.no_grad():
        probs = classifier(torch.cat([x, x_cf])).softmax(1)
    p_x, p_cf = probs[: len(x)], probs[len(x):]
    source = p_x.argmax(1)
    target = p_cf.argmax(1) if target is None else check_targets(target, len(x), probs.shape[1]).to(x.device)
    p_source = p_x.gather(1, source[:, None])[:, 0]
    p_target = p_cf.gather(1, target[:, None])[:, 0]
    keep = target != source
    if min_confidence > 0:
        keep &= (p_source > min_confidence) & (p_target > min_confidence)
    index = keep.nonzero().flatten()
    return CounterfactualPairs(
        x=x[index], x_cf=x_cf[index], source=source[index], target=target[index], p_source=p_source[index],
        p_target=p_target[index], index=index.cpu(), candidates=len(x), via=via, min_confidence=min_confidence)


def _runner_up(classifier, x: torch.Tensor) -> torch.Tensor:
    with evaluating(classifier), torch.no_grad():
        return classifier(x).topk(2, dim=1).indices[:, 1]


def _nearest(classifier, x: torch.Tensor, target, reference) -> tuple[torch.Tensor, torch.Tensor]:
    """The nearest reference image of each target class, and the targets (None: runner-up)."""
    if isinstance(reference, (tuple, list)) and len(reference) == 2:
        x_ref, y_ref = reference
    else:
        x_ref, y_ref = reference, None
    x_ref = check_inputs(x_ref, tuple(x.shape[1:]), "reference", dtype=x.dtype, device=x.device)
    with evaluating(classifier), torch.no_grad():
        num_classes = classifier(x[:1]).shape[1]
        if y_ref is None:
            y_ref = classifier(x_ref).argmax(1)
    y_ref = check_targets(y_ref, len(x_ref), num_classes, "reference labels").to(x.device)
    target = _runner_up(classifier, x) if target is None else check_targets(target, len(x), num_classes).to(x.device)
    missing = sorted(set(target.tolist()) - set(y_ref.tolist()))
    if missing:
        raise ValueError(f"reference holds no image of class {missing[0]}, a target; pass a larger reference set")
    distances = torch.cdist(x.flatten(1), x_ref.flatten(1))
    distances = distances.masked_fill(y_ref[None, :] != target[:, None], float("inf"))
    return x_ref[distances.argmin(1)], target


def counterfactual_pairs(classifier, x, x_cf=None, target=None, *, via: str | None = None, generator=None,
                         reference=None, min_confidence: float = MIN_CONFIDENCE, t: float = MIRROR_T,
                         threshold: float = 0.99, max_steps: int = 1000, progress: bool = False,
                         stop=None) -> CounterfactualPairs:
    """Pairs (x_R, x_C) whose classes the classifier is sure of, with the authors' filter.

    Arguments:
        classifier: an nn.Module, ``classifier(x) -> logits`` (N, C).
        x: (N, *input_shape) real images, or an engine result holding pairs (a
            :class:`CounterfactualResult`, :class:`BoundaryPath` or :class:`BoundaryProjection`).
        x_cf: (N, *input_shape) counterfactuals made elsewhere, or None to make them ``via``.
        target: the counterfactual classes j: None (the runner-up for ``"latent"`` and
            ``"nearest"``, the nearest boundary for ``"boundary"``, the prediction of given
            counterfactuals), one index or N.
        via: ``"latent"`` (needs ``generator``), ``"boundary"`` (an invertible classifier) or
            ``"nearest"`` (needs ``reference``); None picks the one the arguments allow.
        generator: a normalizing flow or VAE for ``"latent"``.
        reference: the images to pick from for ``"nearest"``: a tensor (classes: the
            classifier's predictions) or ``(images, labels)``.
        min_confidence: keep a pair only if p(i | x) and p(j | x_cf) exceed it (0.8, the
            authors'); 0 keeps every pair whose classes differ.
        t: how far ``"boundary"`` pushes across (2: the mirror image).
        threshold, max_steps, progress, stop: for the latent search.

    Returns:
        the kept :class:`CounterfactualPairs`; ``candidates`` and ``index`` say what was dropped.

    Example:
        >>> from crosslens import kernel_side as ks
        >>> x = ks.load_digits_split()[2][:20]
        >>> pairs = ks.counterfactual_pairs(ks.load_pretrained("digits-cnn"), x, generator=ks.load_pretrained("digits-flow"))
        >>> pairs.via, pairs.candidates, bool((pairs.p_target > 0.8).all())
        ('latent', 20, True)
    """
    check_classifier(classifier)
    if x_cf is not None or isinstance(x, (CounterfactualResult, BoundaryPath, BoundaryProjection)):
        if via is not None:
            raise TypeError("via makes the counterfactuals: leave it out when x_cf (or an engine result) gives them")
        return as_pairs(classifier, x, x_cf, target, min_confidence=min_confidence,
                        t=check_real(t, "t", 1.0, closed=""))
    via = _pick_source(classifier, via, generator, reference)
    x = check_images(classifier, x)
    if via == "latent":
        if generator is None:
            raise TypeError("via='latent' needs generator= (a normalizing flow or VAE)")
        found = latent_counterfactual(classifier, generator, x, target, threshold=threshold, max_steps=max_steps,
                                      progress=progress, stop=stop, record_every=max_steps)
        x_cf, target = found.x_cf, found.target
    elif via == "boundary":
        check_invertible_classifier(classifier, "classifier")
        projection = project_to_boundary(classifier, x, target)
        x_cf, target = _mirror(classifier, projection, check_real(t, "t", 1.0, closed="")), projection.target
    else:
        if reference is None:
            raise TypeError("via='nearest' needs reference= (images, or (images, labels))")
        x_cf, target = _nearest(classifier, x, target, reference)
    return _filtered(classifier, x, x_cf, target, via, min_confidence)


def _pick_source(classifier, via, generator, reference) -> str:
    if via is not None:
        return check_choice(via, "via", PAIR_SOURCES)
    if generator is not None:
        return "latent"
    if reference is not None:
        return "nearest"
    if all(hasattr(classifier, attr) for attr in ("features", "inverse", "head")):
        return "boundary"
    raise TypeError("x_cf is missing and nothing can make it: pass x_cf, or generator= (via 'latent'), or "
                    "reference= (via 'nearest'), or use an invertible classifier (via 'boundary')")
