"""Adversarial explanations (AXAI): what a small attack pushes hardest on, pooled over image segments.

References:
    Rahnama, Tseng. An adversarial approach for explaining the predictions of deep neural
    networks. CVPR Workshops 2021. https://arxiv.org/abs/2005.10284
    Authors' code: https://github.com/atseng17/AXAI

Ask an attacker to fool the model with a tiny push; it pushes hardest on what the model
relies on. For each input x with label y (the classifier's prediction by default):

1. L2 PGD ascends the loss ``CE(f(x + d), y)``: ``d <- d + alpha g / ||g||_2``, then ``d`` is
   scaled back into the ball ``||d||_2 <= eps`` (L-inf: ``sign(g)`` and a clamp); no clamp to
   the pixel range. Defaults alpha 0.001, eps 0.2, 20 steps. It runs in the shared per-row
   optimiser (:mod:`crosslens.kernel_side.methods._search`), every step recorded: the attack
   path.
2. Per channel, every value of d strictly between that channel's 15th and 85th percentile
   is zeroed (the 15 % tails on each side are kept); the channels are summed. A pixel with a
   kept value in any channel is *strongly attacked*.
3. The image is segmented: scikit-image's quickshift (colour) or SLIC (grey) for images of
   32 pixels and more, fixed 2 x 2 blocks below (segmentation means nothing on 8 x 8), or a
   segment map given by the user.
4. A segment's score is the share of its pixels that are strongly attacked; the explanation
   is the top K segments (K = 5). Scores take few values on small images, so ties are broken
   by the segment's summed |filtered d|, then by its index (the authors' code can return more
   than K segments on ties).

[derived, measured on digits] With the defaults ``||d||`` stays below 0.02 and never reaches
eps, so d is a sum of 20 normalised loss gradients: AXAI is close to a path-averaged gradient
saliency map pooled over segments (Spearman of |d| against |grad CE| 0.996).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .._checks import check_choice, check_int, check_real, check_targets
from .._images import image_shape
from .._runtime import evaluating
from ._search import RowGradientStep, check_callbacks, search
from .pairs import check_images

__all__ = ["NORMS", "SEGMENTERS", "AdversarialExplanation", "adversarial_explanation", "channel_levels", "rank_segments",
           "segment_images", "tail_sweep"]

NORMS = ("l2", "linf")
SEGMENTERS = ("auto", "quickshift", "slic", "blocks", "pixels")
SEGMENTATION_MIN_SIZE = 32  # pixels: below, "auto" uses fixed blocks
BLOCK = 2  # pixels per side of a fixed block
QUICKSHIFT = {"kernel_size": 2, "max_dist": 6, "ratio": 0.5}  # tuned for 32-64 px scenes (the authors': 8, 10, 0.1 at 224 px)
SLIC_SEGMENTS = 40


@dataclass(frozen=True)
class AdversarialExplanation:
    """AXAI explanations of N inputs.

    Fields:
        x: (N, *input_shape); source: (N,) the attacked label (the explained class).
        perturbation: (N, *input_shape) the attack's d after ``steps`` steps.
        frames: (N, steps + 1, *input_shape) the attack path ``x + d_t``; probs: (N, steps + 1, C).
        filtered: (N, H, W) the tail-filtered d summed over channels; attacked: (N, H, W) bool,
            the strongly attacked pixels.
        segments: (N, H, W) int64 segment labels 0..S_n - 1; num_segments: (N,).
        scores: (N, S) each segment's share of strongly attacked pixels (0 past S_n);
            mass: (N, S) its summed |filtered d| (the tie breaker).
        ranking: (N, S) segment labels best first (-1 past S_n); top_k: (N, H, W) bool, the
            pixels of the top K segments.
        k, eps, alpha, steps, norm, tail: the settings.
    """

    x: torch.Tensor
    source: torch.Tensor
    perturbation: torch.Tensor
    frames: torch.Tensor
    probs: torch.Tensor
    filtered: torch.Tensor
    attacked: torch.Tensor
    segments: torch.Tensor
    num_segments: torch.Tensor
    scores: torch.Tensor
    mass: torch.Tensor
    ranking: torch.Tensor
    top_k: torch.Tensor
    k: int
    eps: float
    alpha: float
    steps: int
    norm: str
    tail: float


# ---- segmentation ------------------------------------------------------------------------------
def _blocks(count: int, height: int, width: int, size: int) -> torch.Tensor:
    rows = torch.arange(height) // size
    columns = torch.arange(width) // size
    labels = rows[:, None] * ((width + size - 1) // size) + columns[None, :]
    return labels.expand(count, height, width).clone()


def segment_images(x: torch.Tensor, method: str = "auto", *, pixel_range=(0.0, 1.0)) -> torch.Tensor:
    """(N, H, W) int64 segment labels 0..S_n - 1 for images x (N, *input_shape).

    ``method``: ``"auto"`` (quickshift for colour and SLIC for grey images of 32 pixels and
    more, 2 x 2 blocks below), ``"quickshift"``, ``"slic"``, ``"blocks"`` (2 x 2) or
    ``"pixels"``. scikit-image sees each image scaled from ``pixel_range`` to [0, 1].
    """
    check_choice(method, "segments", SEGMENTERS)
    channels, height, width = image_shape(x.shape[1:])
    if method == "auto":
        method = "blocks" if min(height, width) < SEGMENTATION_MIN_SIZE else "quickshift" if channels == 3 else "slic"
    if method in ("blocks", "pixels"):
        return _blocks(len(x), height, width, BLOCK if method == "blocks" else 1)
    from skimage.segmentation import quickshift, slic

    lo, hi = pixel_range
    images = ((x.detach().cpu().double().reshape(len(x), channels, height, width) - lo) / (hi - lo)).clamp(0, 1)
    labels = []
    for image in images.permute(0, 2, 3, 1).numpy():
        if method == "quickshift":
            if channels != 3:
                raise ValueError(f"segments='quickshift' needs colour (3-channel) images, got {channels} channel(s); "
                                 "use 'slic'")
            found = quickshift(image, **QUICKSHIFT)
        elif channels == 1:
            found = slic(image[..., 0], n_segments=SLIC_SEGMENTS, compactness=0.1, channel_axis=None, start_label=0)
        else:
            found = slic(image, n_segments=SLIC_SEGMENTS, compactness=10, channel_axis=-1, start_label=0)
        labels.append(torch.from_numpy(found.astype("int64")))
    return _relabelled(torch.stack(labels))


def _relabelled(segments: torch.Tensor) -> torch.Tensor:
    """Each image's labels renumbered 0..S_n - 1, keeping their order, all images at once."""
    n = len(segments)
    flat = segments.flatten(1).long()
    span = int(flat.max() - flat.min()) + 1
    keyed = (flat - flat.min()) + torch.arange(n, device=flat.device)[:, None] * span  # disjoint per image
    values, inverse = torch.unique(keyed, return_inverse=True)
    first = torch.searchsorted(values, torch.arange(n, device=flat.device) * span)  # each image's first label
    return (inverse - first[:, None]).reshape(segments.shape)


def _check_segments(segments, count: int, height: int, width: int) -> torch.Tensor:
    """A user's segment map: (H, W) for every input or (N, H, W), integer labels."""
    if not isinstance(segments, torch.Tensor):
        try:
            segments = torch.as_tensor(segments)
        except (TypeError, ValueError) as error:
            raise TypeError(f"segments must be a method name or an integer map, got {type(segments).__name__}") \
                from error
    if segments.is_floating_point() or segments.dtype == torch.bool:
        raise TypeError(f"segments must hold integer labels, got {segments.dtype}")
    if tuple(segments.shape) == (height, width):
        segments = segments.expand(count, height, width)
    if tuple(segments.shape) != (count, height, width):
        raise ValueError(f"segments must have shape ({height}, {width}) or ({count}, {height}, {width}) (one label "
                         f"per pixel), got {tuple(segments.shape)}")
    return _relabelled(segments.long().cpu())


# ---- scores and ranking ------------------------------------------------------------------------
def rank_segments(values: torch.Tensor, segments: torch.Tensor, tie_breaker: torch.Tensor | None = None, *,
                  by: str = "mean"):
    """Per-segment means (``by="mean"``) or sums (``by="sum"``) of ``values`` (N, H, W) over
    ``segments`` (N, H, W, labels 0..S_n - 1), and the segments ranked best first: by that
    score, then by the summed ``tie_breaker`` (default: values), then by label. Returns
    ``(scores (N, S), sums of tie_breaker (N, S), ranking (N, S), counts (N,))`` with -1 in
    ``ranking`` past each input's S_n."""
    n = len(segments)
    counts = segments.flatten(1).amax(1) + 1
    width = int(counts.max())
    flat = (segments + torch.arange(n, device=segments.device)[:, None, None] * width).flatten()
    size = torch.bincount(flat, minlength=n * width).reshape(n, width).to(values.dtype)
    total = torch.bincount(flat, weights=values.flatten(), minlength=n * width).reshape(n, width)
    means = total / size.clamp_min(1) if by == "mean" else total
    extra = values if tie_breaker is None else tie_breaker
    mass = torch.bincount(flat, weights=extra.flatten().to(values.dtype), minlength=n * width).reshape(n, width)
    present = torch.arange(width, device=segments.device)[None] < counts[:, None]
    # stable sorts, least important key first: label, then mass, then score
    order = torch.arange(width, device=segments.device).expand(n, width)
    for key in (mass, means):
        keyed = torch.where(present, key, torch.full_like(key, -torch.inf)).gather(1, order)
        order = order.gather(1, keyed.sort(dim=1, descending=True, stable=True).indices)
    ranking = torch.where(present.gather(1, order), order, torch.full_like(order, -1))
    return means * present, mass * present, ranking, counts


def channel_levels(d: torch.Tensor, tails: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) uint8: for each value of d (N, C, H, W), the index of the first of the
    increasing ``tails`` (T,) at which it is kept (it lies at or beyond its channel's ``tail``
    or ``1 - tail`` quantile; strictly between them it is zeroed), T when none keeps it.
    A larger tail keeps more, so one index per value holds every tail's filter."""
    flat = d.flatten(2)  # (N, C, H W)
    q = torch.cat([tails, 1 - tails]).to(flat.dtype)
    bounds = torch.quantile(flat, q, dim=-1)  # (2T, N, C)
    low, high = bounds[: len(tails)], bounds[len(tails):]
    kept = (flat[None] <= low[..., None]) | (flat[None] >= high[..., None])  # (T, N, C, H W)
    never = torch.full_like(flat, len(tails), dtype=torch.long)
    first = torch.where(kept.any(0), kept.long().argmax(0), never)
    return first.to(torch.uint8).reshape(d.shape)


def _at_tail(d: torch.Tensor, levels: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The tail-filtered d summed over channels (N, H, W), and the strongly attacked pixels, at tail index t."""
    kept = levels <= t
    return (d * kept).sum(1), kept.any(1)


def _project(x0: torch.Tensor, eps: float, norm: str):
    """Back into the ``eps`` ball around the flat inputs ``x0`` (the rows never leave the batch:
    the attack runs every row for all its steps)."""
    def project(params: torch.Tensor) -> torch.Tensor:
        d = params - x0
        if norm == "linf":
            return x0 + d.clamp(-eps, eps)
        return x0 + d * (eps / d.norm(dim=1, keepdim=True).clamp_min(eps))
    return project


def adversarial_explanation(classifier, x, target=None, *, eps: float = 0.2, alpha: float = 0.001, steps: int = 20,
                            norm: str = "l2", tail: float = 0.15, segments="auto", k: int = 5,
                            pixel_range=(0.0, 1.0), stop=None) -> AdversarialExplanation:
    """Explain each prediction by the segments a small attack pushes hardest on (Rahnama and Tseng 2021).

    Arguments:
        classifier: an nn.Module, ``classifier(x) -> logits`` (N, C).
        x: (N, *input_shape) images or one image.
        target: the class explained and attacked: None (the prediction), one index or N.
        eps: the attack's budget (the radius of the norm ball, > 0); alpha: its step size;
            steps: its number of steps; norm: ``"l2"`` (the paper's) or ``"linf"``.
        tail: the share kept in each tail of each channel's perturbation (0.15).
        segments: ``"auto"``, ``"quickshift"``, ``"slic"``, ``"blocks"``, ``"pixels"`` (see
            :func:`segment_images`) or an integer map (H, W) or (N, H, W) of the user's.
        k: how many segments the explanation keeps (at most every input's segment count).
        pixel_range: the images' value range, for the segmentation.
        stop: an object with ``is_set()``; once set, the attack ends where it is.

    Deterministic: the attack has no randomness and the segmenters are seeded.

    Example:
        >>> from crosslens import kernel_side as ks
        >>> cnn = ks.load_pretrained("digits-cnn")
        >>> explained = ks.adversarial_explanation(cnn, ks.load_digits_split()[2][:4])
        >>> tuple(explained.segments.shape), int(explained.num_segments[0]), explained.top_k.flatten(1).sum(1).tolist()
        ((4, 8, 8), 16, [20, 20, 20, 20])
    """
    x = check_images(classifier, x)
    eps = check_real(eps, "eps", 0.0)
    alpha = check_real(alpha, "alpha", 0.0)
    steps = check_int(steps, "steps", minimum=1)
    norm = check_choice(norm, "norm", NORMS)
    tail = check_real(tail, "tail", 0.0, 0.5, closed="high")
    k = check_int(k, "k", minimum=1)
    check_callbacks(stop, None, 1)
    channels, height, width = image_shape(x.shape[1:])
    if isinstance(segments, str):
        labels = segment_images(x, segments, pixel_range=pixel_range)
    else:
        labels = _check_segments(segments, len(x), height, width)
    labels = labels.to(x.device)
    counts = labels.flatten(1).amax(1) + 1
    if k > int(counts.min()):
        row = int(counts.argmin())
        raise ValueError(f"k must be at most the number of segments: input {row} has {int(counts[row])}; "
                         f"pass a smaller k or finer segments")

    with evaluating(classifier):
        with torch.no_grad():
            logits = classifier(x)
        source = logits.argmax(1) if target is None else check_targets(target, len(x), logits.shape[1]).to(x.device)
        start = x.flatten(1)
        with torch.no_grad():
            trace = search(
                start, lambda params: params.reshape(x.shape), classifier,
                lambda logits, rows: -F.cross_entropy(logits, source[rows], reduction="none"),
                lambda probs, rows: torch.zeros(len(rows), dtype=torch.bool, device=x.device),
                RowGradientStep(alpha, norm), max_steps=steps, project=_project(start, eps, norm), stop=stop)
    frames = trace.shown
    d = (frames[:, -1] - x).detach()
    planes = d.reshape(len(x), channels, height, width)
    filtered, attacked = _at_tail(planes, channel_levels(planes, torch.tensor([tail])), 0)
    scores, mass, ranking, counts = rank_segments(attacked.to(x.dtype), labels, filtered.abs())
    chosen = ranking[:, :k]
    top_k = (labels[:, None] == chosen[:, :, None, None]).any(1)
    return AdversarialExplanation(
        x=x, source=source, perturbation=d, frames=frames.detach(), probs=trace.probs.detach(), filtered=filtered,
        attacked=attacked, segments=labels, num_segments=counts, scores=scores, mass=mass, ranking=ranking,
        top_k=top_k, k=k, eps=eps, alpha=alpha, steps=steps, norm=norm, tail=tail,
    )


def tail_sweep(explained: AdversarialExplanation, tails) -> dict:
    """Every tail's explanation at once, for the explorer's tail slider.

    Returns a dict: ``levels`` (N, C, H, W) uint8, each value's first kept tail index (see
    :func:`channel_levels`); ``scores`` (N, T, S) and ``ranking`` (N, T, S) each segment's
    share of strongly attacked pixels and the segments best first (ties as in
    :func:`adversarial_explanation`) at each of the T ``tails``.
    """
    tails = torch.as_tensor(tails, dtype=explained.perturbation.dtype).reshape(-1)
    n, t = len(explained.x), len(tails)
    channels, height, width = image_shape(explained.x.shape[1:])
    planes = explained.perturbation.reshape(n, channels, height, width)
    levels = channel_levels(planes, tails)
    # every (image, tail) is one row of one ranking: (N T, H, W)
    kept = levels[:, None] <= torch.arange(t, device=levels.device)[None, :, None, None, None]  # (N, T, C, H, W)
    filtered = (planes[:, None] * kept).sum(2).flatten(0, 1)
    attacked = kept.any(2).flatten(0, 1).to(planes.dtype)
    scores, _, ranking, _ = rank_segments(attacked, explained.segments.repeat_interleave(t, 0), filtered.abs())
    return {"levels": levels, "scores": scores.reshape(n, t, -1), "ranking": ranking.reshape(n, t, -1)}
