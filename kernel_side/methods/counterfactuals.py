"""Diffeomorphic counterfactuals: gradient ascent in a generative model's latent space.

References:
    Dombrowski, Gerken, Mueller, Kessel. Diffeomorphic counterfactuals with generative
    models. TPAMI 2024. https://arxiv.org/abs/2206.05075
    Authors' code: https://github.com/annahdo/counterfactuals (``adv.py``)

With a generator g (a normalizing flow exactly, a VAE approximately) the search starts at
``z = g^-1(x)`` and runs Adam on z: each step decodes ``x' = g(z)``, clips it to the valid
range, and stops once the classifier's target probability exceeds ``threshold`` (checked
before each step, as in the authors' code); otherwise it steps on the cross-entropy of the
target. The gradient through the clip is that of a projected step [derived]: it is dropped
only for pixels at (or beyond) an edge of the range that the step would push further out.
The authors' code clips with ``x.data = clip(x.data)``, passing every gradient straight
through; measured here that lets decoded pixels beyond the range drift without bound (to
|x| ~ 1e4 on digits with a raw-pixel flow; 6 of 100 searches stuck, none with this rule).
The "conventional" baseline runs the same loop on x itself and projects x back into the
valid range after each step: its results are adversarial examples rather than realistic
members of the target class.

Batched [derived]: N searches run together in the shared per-row optimiser
(:mod:`crosslens.kernel_side.methods._search`), so every row follows exactly the trajectory
it would follow alone. With ``target=None`` each input heads for its runner-up, the class the
classifier finds second most likely. :func:`boundary_crossing` then locates where each
trajectory first changes class, to where the top two probabilities tie, by bisection: a
decision-boundary point for any classifier, invertible or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .._checks import (
    check_choice, check_classifier, check_generator, check_inputs, check_int, check_interval, check_placement,
    check_real, check_targets,
)
from .._runtime import evaluating
from ._search import RowAdam, Trace, check_callbacks, search

__all__ = [
    "BoundaryCrossing", "CounterfactualResult", "boundary_crossing", "latent_counterfactual", "pixel_counterfactual",
]

BISECTION_STEPS = 50  # halvings of a trajectory segment in boundary_crossing
CROSSINGS = ("target", "any")  # the boundary boundary_crossing locates
CLIP_MARGIN = 1e-3  # share of the clip range within which a pixel counts as on its edge


@dataclass(frozen=True)
class CounterfactualResult:
    """N counterfactual searches and their recorded trajectories.

    Fields:
        method: ``"latent"`` or ``"pixel"``; threshold: the stopping confidence.
        interrupted: True when the user stopped the search (``stop`` or Ctrl-C) before every
            row finished; unfinished rows then count as failures.
        x: (N, *input_shape) the inputs; reference: (N, *input_shape) where each search
            starts (latent: the clipped reconstruction ``g(g^-1(x))``; pixel: x).
        x_cf: (N, *input_shape) the final points; target: (N,) int64 target classes;
            source: (N,) the predicted class of each input.
        success: (N,) bool, target probability of x_cf above threshold; steps: (N,) int64
            Adam steps taken.
        record_steps: (N, S) int64, the step of each record, ``min(s * record_every, steps)``:
            the last record is always the final point.
        frames: (N, S, *input_shape); probs: (N, S, C); confidence: (N, S) probs at target.
        latents: (N, S, latent_dim) the codes of the frames, or None (pixel).
        clip: the valid input range ``(low, high)`` the search clipped to, or None.
    """

    method: str
    threshold: float
    interrupted: bool
    x: torch.Tensor
    reference: torch.Tensor
    x_cf: torch.Tensor
    target: torch.Tensor
    source: torch.Tensor
    success: torch.Tensor
    steps: torch.Tensor
    record_steps: torch.Tensor
    frames: torch.Tensor
    probs: torch.Tensor
    confidence: torch.Tensor
    latents: torch.Tensor | None
    clip: tuple[float, float] | None

    @property
    def success_rate(self) -> float:
        """Share of rows whose target confidence exceeded the threshold."""
        return self.success.float().mean().item()

    @property
    def failures(self) -> torch.Tensor:
        """Row indices of the searches that did not reach the threshold."""
        return (~self.success).nonzero().flatten()

    @property
    def num_records(self) -> int:
        """S, the number of recorded points per trajectory."""
        return self.record_steps.shape[1]


@dataclass(frozen=True)
class BoundaryCrossing:
    """Where each counterfactual trajectory crosses a decision boundary (see :func:`boundary_crossing`).

    Fields:
        x: (N, *input_shape) the crossing points; z: (N, latent_dim) their codes, or None
            when located in input space.
        position: (N,) fractional step along the trajectory (e.g. 7.31: between steps 7 and 8).
        classes: (N, 2) the class before and after the crossing: with ``into="target"`` the
            second is the target; with ``into="any"`` it may be a third class.
        gap: (N,) the difference of the top two probabilities at x (about 0 at a crossing).
        found: (N,) bool; rows whose trajectory never crosses hold their final point,
            position = steps and classes = (c, c).
    """

    x: torch.Tensor
    z: torch.Tensor | None
    position: torch.Tensor
    classes: torch.Tensor
    gap: torch.Tensor
    found: torch.Tensor


def latent_counterfactual(classifier, generator, x, target=None, *, lr: float = 0.05, max_steps: int = 1000,
                          threshold: float = 0.99, record_every: int = 1, clip=(0.0, 1.0), progress: bool = False,
                          stop=None, on_progress: Callable | None = None,
                          progress_every: int = 10) -> CounterfactualResult:
    """Counterfactuals by Adam in the latent space of ``generator`` (Dombrowski et al. 2024).

    Arguments:
        classifier: an nn.Module, ``classifier(x) -> logits`` of shape (N, C).
        generator: ``input_shape``, ``latent_dim``, ``encode(x) -> z`` and ``decode(z) -> x``
            (a normalizing flow or a VAE).
        x: (N, *input_shape) or one input.
        target: None (each input's runner-up, the class the classifier finds second most
            likely), one class index, or N of them.
        lr: Adam's learning rate on z (the authors use 5e-2 for RealNVP on MNIST).
        max_steps: the most Adam steps per row; threshold: stop once the target probability
            exceeds it, in (0, 1).
        record_every: keep every ``record_every``-th step of each trajectory (and the last).
        clip: ``(low, high)`` valid input range (x must lie in it), or None for unbounded data.
        progress: show a tqdm bar. stop: an object with ``is_set()`` (a threading.Event);
            once set, the partial result comes back with ``interrupted=True`` (Ctrl-C too).
        on_progress: called with the partial :class:`CounterfactualResult` every
            ``progress_every`` steps (for streaming to a widget).

    The models are never changed: they run in eval mode (the user's mode is restored) and no
    gradient is left on their parameters. Everything runs on the classifier's device.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> class Shift:  # a toy generator: x = z + 1
        ...     input_shape, latent_dim, exact = (2,), 2, True
        ...     def encode(self, x): return x - 1
        ...     def decode(self, z): return z + 1
        >>> classifier = nn.Linear(2, 2)
        >>> with torch.no_grad(): _ = classifier.weight.copy_(torch.eye(2)), classifier.bias.zero_()
        >>> result = latent_counterfactual(classifier, Shift(), torch.tensor([[1., 0.]]), lr=0.1, clip=None)
        >>> result.target.tolist(), result.success.tolist(), classifier(result.x_cf).argmax(1).tolist()
        ([1], [True], [1])
    """
    check_generator(generator)
    return _counterfactuals("latent", classifier, generator, x, target, lr=lr, max_steps=max_steps,
                            threshold=threshold, record_every=record_every, clip=clip, progress=progress, stop=stop,
                            on_progress=on_progress, progress_every=progress_every)


def pixel_counterfactual(classifier, x, target=None, *, lr: float = 5e-4, max_steps: int = 1000,
                         threshold: float = 0.99, record_every: int = 1, clip=(0.0, 1.0), progress: bool = False,
                         stop=None, on_progress: Callable | None = None,
                         progress_every: int = 10) -> CounterfactualResult:
    """The conventional baseline: the same Adam loop on the input itself, projected into ``clip``.

    Arguments are those of :func:`latent_counterfactual` without a generator; the authors use
    lr = 5e-4. ``classifier.input_shape`` is used when present, else the shape of one row of x.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> classifier = nn.Linear(2, 2)
        >>> with torch.no_grad(): _ = classifier.weight.copy_(torch.eye(2)), classifier.bias.zero_()
        >>> result = pixel_counterfactual(classifier, torch.tensor([[0.9, 0.1]]), 1, lr=0.05, threshold=0.6)
        >>> result.success.tolist(), bool(result.x_cf.min() >= 0 and result.x_cf.max() <= 1)
        ([True], True)
    """
    return _counterfactuals("pixel", classifier, None, x, target, lr=lr, max_steps=max_steps, threshold=threshold,
                            record_every=record_every, clip=clip, progress=progress, stop=stop,
                            on_progress=on_progress, progress_every=progress_every)


# --- argument checks ----------------------------------------------------------------------

def _input_shape(classifier, generator, x) -> tuple[int, ...]:
    shapes = {name: tuple(model.input_shape) for name, model in (("classifier", classifier), ("generator", generator))
              if model is not None and hasattr(model, "input_shape")}
    if len(set(shapes.values())) > 1:
        raise ValueError(
            f"generator and classifier must share one input_shape, got generator.input_shape "
            f"{shapes['generator']} and classifier.input_shape {shapes['classifier']}"
        )
    if shapes:
        return next(iter(shapes.values()))
    return tuple(torch.as_tensor(x).shape[1:])


def _check_in_range(x: torch.Tensor, clip) -> None:
    if clip is not None and (x.min() < clip[0] or x.max() > clip[1]):
        raise ValueError(
            f"x must lie in the clip range {clip}, got values in [{x.min().item():.3g}, {x.max().item():.3g}]; "
            "pass clip=None for unbounded data"
        )


def _check_logits(logits: torch.Tensor, count: int) -> None:
    if logits.ndim != 2 or logits.shape[0] != count or logits.shape[1] < 2:
        raise ValueError(f"classifier must return logits of shape (N, C) with C >= 2, got {tuple(logits.shape)}")


def resolve_targets(logits: torch.Tensor, target, name: str = "target") -> torch.Tensor:
    """``target`` checked against ``logits`` (N, C), or each row's runner-up class when None."""
    if target is None:
        return logits.topk(2, dim=1).indices[:, 1]
    return check_targets(target, len(logits), logits.shape[1], name).to(logits.device)


# --- the search ---------------------------------------------------------------------------

class _ClipToRange(torch.autograd.Function):
    """``x.clamp(low, high)`` whose gradient is blocked only where a descent step would push x
    further out of the range (x within ``CLIP_MARGIN`` of the range's edge, or beyond it).

    Unlike ``clamp``'s own gradient this does not depend on which side of the edge a pixel
    lands through rounding: background pixels of digits are exactly 0, their reconstructions
    ``g(g^-1(x))`` are 0 +- 1e-7, and ``clamp`` would pass or drop their gradient at random.
    """

    @staticmethod
    def forward(ctx, x, low, high):
        ctx.save_for_backward(x)
        ctx.bounds = (low, high)
        return x.clamp(low, high)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        low, high = ctx.bounds
        margin = CLIP_MARGIN * (high - low)
        outward = ((x <= low + margin) & (grad > 0)) | ((x >= high - margin) & (grad < 0))
        return grad.masked_fill(outward, 0), None, None


def _renderer(method, generator, x, clip):
    """The optimised rows at step 0 and ``render(rows) -> inputs`` (flat rows for pixels)."""
    if method == "pixel":
        return x.flatten(1), lambda rows: rows.reshape(-1, *x.shape[1:])
    codes = generator.encode(x)
    if tuple(codes.shape) != (len(x), generator.latent_dim) or not torch.isfinite(codes).all():
        raise ValueError(
            f"generator.encode(x) must give finite codes of shape (N, {generator.latent_dim}), got shape "
            f"{tuple(codes.shape)}{'' if torch.isfinite(codes).all() else ' with NaN or inf'}; is x in "
            "the generator's data range?"
        )
    decoded = generator.decode(codes[:1])  # checked once, before the search
    if tuple(decoded.shape) != (1, *x.shape[1:]):
        raise ValueError(
            f"generator.decode(z) must give inputs of the classifier's shape (N, {', '.join(map(str, x.shape[1:]))}), "
            f"got {tuple(decoded.shape)} for one code; the generator and the classifier must agree on the input shape"
        )

    def render(code):
        decoded = generator.decode(code)
        return _ClipToRange.apply(decoded, *clip) if clip else decoded

    return codes, render


def _result(method, threshold, clip, x, target, source, trace: Trace) -> CounterfactualResult:
    confidence = trace.probs.gather(2, target[:, None, None].expand(-1, trace.probs.shape[1], 1)).squeeze(2)
    return CounterfactualResult(
        method=method, threshold=threshold, interrupted=trace.interrupted, x=x, reference=trace.shown[:, 0],
        x_cf=trace.shown[:, -1], target=target, source=source, success=confidence[:, -1] > threshold,
        steps=trace.steps, record_steps=trace.record_steps, frames=trace.shown, probs=trace.probs,
        confidence=confidence, latents=trace.params, clip=clip,
    )


def _counterfactuals(method, classifier, generator, x, target, *, lr, max_steps, threshold, record_every, clip,
                     progress, stop, on_progress, progress_every) -> CounterfactualResult:
    check_classifier(classifier)
    lr = check_real(lr, "lr", 0.0)
    threshold = check_real(threshold, "threshold", 0.0, 1.0)
    check_int(max_steps, "max_steps", minimum=0)
    check_int(record_every, "record_every", minimum=1)
    check_callbacks(stop, on_progress, progress_every)
    clip = None if clip is None else check_interval(clip, "clip")
    device, dtype = check_placement(classifier, "classifier") or (None, None)
    generator_placement = check_placement(generator, "generator")
    if generator_placement and device is not None and generator_placement != (device, dtype):
        raise ValueError(
            f"generator and classifier must live on one device in one dtype, got generator on "
            f"{generator_placement} and classifier on {(device, dtype)}"
        )
    x = check_inputs(x, _input_shape(classifier, generator, x), "x", dtype=dtype, device=device)
    _check_in_range(x, clip)
    with evaluating(classifier, generator), torch.no_grad():
        logits = classifier(x)
        _check_logits(logits, len(x))
        source = logits.argmax(1)
        target = resolve_targets(logits, target)
        start, render = _renderer(method, generator, x, clip)

        def finish(trace: Trace) -> CounterfactualResult:
            return _result(method, threshold, clip, x, target, source, trace)

        trace = search(
            start, render, classifier,
            loss=lambda logits, rows: F.cross_entropy(logits, target[rows], reduction="none"),
            finished=lambda probs, rows: probs.gather(1, target[rows, None]).squeeze(1) > threshold,
            optimizer=RowAdam(lr), max_steps=max_steps, record_every=record_every, keep_params=method == "latent",
            project=None if method == "latent" or clip is None else (lambda rows: rows.clamp(*clip)),
            stop=stop, on_progress=None if on_progress is None else (lambda partial: on_progress(finish(partial))),
            progress_every=progress_every, progress=progress, desc=f"{method} counterfactuals",
        )
    return finish(trace)


# --- the first class change along a trajectory -------------------------------------------

def _top_two_gap(probs: torch.Tensor) -> torch.Tensor:
    top = probs.topk(2, dim=1).values
    return top[:, 0] - top[:, 1]


def boundary_crossing(classifier, result: CounterfactualResult, generator=None, *,
                      into: str = "target") -> BoundaryCrossing:
    """Locate where each trajectory of ``result`` crosses a decision boundary.

    ``into="target"`` (default): where the trajectory first enters the target class, the
    boundary between the target and the class just before it. ``into="any"``: where it first
    leaves its starting class. The two differ when a trajectory passes through a third class
    first (measured on digits with the shipped MLP and flow: most latent trajectories do, so
    their first crossing is a source/third-class boundary).

    Between the last record on the near side and the first one across, the segment (in latent
    space when ``result.latents`` and ``generator`` are given, else in input space) is bisected
    ``BISECTION_STEPS`` times, all rows in one batch, to where the class changes: there the top
    two probabilities tie (``gap`` ~ 1e-6 in float32). This finds decision-boundary points of
    any classifier, invertible or not. With ``record_every > 1`` a change that reverts between
    two records is not seen.

    Arguments:
        classifier: the classifier the search ran on.
        result: a :class:`CounterfactualResult`.
        generator: the generator of a latent search, to bisect in its latent space.
        into: ``"target"`` or ``"any"`` (see above).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> classifier = nn.Linear(2, 2)
        >>> with torch.no_grad(): _ = classifier.weight.copy_(torch.eye(2)), classifier.bias.zero_()
        >>> result = pixel_counterfactual(classifier, torch.tensor([[0.9, 0.1]]), 1, lr=0.05, threshold=0.6)
        >>> crossing = boundary_crossing(classifier, result)
        >>> crossing.found.tolist(), crossing.classes.tolist(), torch.allclose(crossing.x[:, 0], crossing.x[:, 1], atol=1e-5)
        ([True], [[0, 1]], True)
    """
    check_classifier(classifier)
    check_placement(classifier, "classifier")
    check_choice(into, "into", CROSSINGS)
    if not isinstance(result, CounterfactualResult):
        raise TypeError(f"result must be a CounterfactualResult, got {type(result).__name__}")
    in_latent = generator is not None and result.latents is not None
    if in_latent:
        check_generator(generator)
    points = result.latents if in_latent else result.frames.flatten(2)
    shape = result.x.shape[1:]
    clip = result.clip

    def classify(rows_points):
        shown = generator.decode(rows_points) if in_latent else rows_points.reshape(-1, *shape)
        shown = shown.clamp(*clip) if clip and in_latent else shown
        return shown, classifier(shown).softmax(1)

    classes = result.probs.argmax(2)  # (N, S)
    start = classes[:, 0]
    if into == "any":
        def near_side(predicted):  # still in the starting class
            return predicted == start
    else:
        def near_side(predicted):  # not yet in the target class
            return predicted != result.target

    across = ~near_side(classes.T).T  # (N, S) records on the far side (near_side compares along the last axis)
    found = across.any(1)
    after = across.long().argmax(1).clamp_min(1)  # the first record across
    rows = torch.arange(len(points), device=points.device)
    last = torch.full_like(after, result.num_records - 1)
    after = torch.where(found, after, last)
    before = torch.where(found, after - 1, last)
    begin, end = points[rows, before], points[rows, after]
    low = torch.zeros(len(points), 1, dtype=points.dtype, device=points.device)
    high = torch.ones_like(low)
    with evaluating(classifier, generator), torch.no_grad():
        for _ in range(BISECTION_STEPS):
            middle = (low + high) / 2
            near = near_side(classify(begin + middle * (end - begin))[1].argmax(1))
            low = torch.where(near[:, None], middle, low)
            high = torch.where(near[:, None], high, middle)
        low_x, low_probs = classify(begin + low * (end - begin))
        high_x, high_probs = classify(begin + high * (end - begin))
    low_gap, high_gap = _top_two_gap(low_probs), _top_two_gap(high_probs)
    use_high = (high_gap < low_gap) & found
    t = torch.where(use_high[:, None], high, low).squeeze(1)
    t = torch.where(found, t, torch.zeros_like(t))
    record_steps = result.record_steps.to(t.dtype)
    position = record_steps[rows, before] + t * (record_steps[rows, after] - record_steps[rows, before])
    point = torch.where(use_high[:, None], begin + high * (end - begin), begin + low * (end - begin))
    x = torch.where(use_high.reshape(-1, *[1] * len(shape)), high_x, low_x)
    return BoundaryCrossing(
        x=x, z=point if in_latent else None, position=position,
        classes=torch.where(found[:, None], torch.stack([low_probs.argmax(1), high_probs.argmax(1)], 1), start[:, None]),
        gap=torch.where(use_high, high_gap, low_gap), found=found,
    )
