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

Batched [derived]: N searches run together with a hand-written vectorised Adam that updates
only the rows still running, and a row that stops stays frozen, so every row follows exactly
the trajectory it would follow alone. :func:`boundary_crossing` then locates where each
trajectory first changes class, to where the top two probabilities tie, by bisection: a
decision-boundary point for any classifier, invertible or not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Callable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .._runtime import evaluating
from .._checks import check_inputs, check_interval, check_targets

__all__ = [
    "BoundaryCrossing", "CounterfactualResult", "boundary_crossing", "latent_counterfactual", "pixel_counterfactual",
]

METHODS = ("latent", "pixel")
ADAM_BETAS = (0.9, 0.999)  # torch.optim.Adam's defaults, as in the authors' code
ADAM_EPS = 1e-8
BISECTION_STEPS = 50  # halvings of a trajectory segment in boundary_crossing
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
    """Where each counterfactual trajectory first leaves its starting class.

    Fields:
        x: (N, *input_shape) the crossing points; z: (N, latent_dim) their codes, or None
            when located in input space.
        position: (N,) fractional step along the trajectory (e.g. 7.31: between steps 7 and 8).
        classes: (N, 2) the class before and after the crossing.
        gap: (N,) the difference of the top two probabilities at x (about 0 at a crossing).
        found: (N,) bool; rows whose trajectory never changes class hold their final point,
            position = steps and classes = (c, c).
    """

    x: torch.Tensor
    z: torch.Tensor | None
    position: torch.Tensor
    classes: torch.Tensor
    gap: torch.Tensor
    found: torch.Tensor


def latent_counterfactual(classifier, generator, x, target, *, lr: float = 0.05, max_steps: int = 1000,
                          threshold: float = 0.99, record_every: int = 1, clip=(0.0, 1.0), progress: bool = False,
                          stop=None, on_progress: Callable | None = None,
                          progress_every: int = 10) -> CounterfactualResult:
    """Counterfactuals by Adam in the latent space of ``generator`` (Dombrowski et al. 2024).

    Arguments:
        classifier: an nn.Module, ``classifier(x) -> logits`` of shape (N, C).
        generator: ``input_shape``, ``latent_dim``, ``encode(x) -> z`` and ``decode(z) -> x``
            (a normalizing flow or a VAE).
        x: (N, *input_shape) or one input; target: one class index or N of them.
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
        >>> result = latent_counterfactual(classifier, Shift(), torch.tensor([[1., 0.]]), 1, lr=0.1, clip=None)
        >>> result.success.tolist(), classifier(result.x_cf).argmax(1).tolist()
        ([True], [1])
    """
    _check_generator(generator)
    return _search("latent", classifier, generator, x, target, lr=lr, max_steps=max_steps, threshold=threshold,
                   record_every=record_every, clip=clip, progress=progress, stop=stop, on_progress=on_progress,
                   progress_every=progress_every)


def pixel_counterfactual(classifier, x, target, *, lr: float = 5e-4, max_steps: int = 1000, threshold: float = 0.99,
                         record_every: int = 1, clip=(0.0, 1.0), progress: bool = False, stop=None,
                         on_progress: Callable | None = None, progress_every: int = 10) -> CounterfactualResult:
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
    return _search("pixel", classifier, None, x, target, lr=lr, max_steps=max_steps, threshold=threshold,
                   record_every=record_every, clip=clip, progress=progress, stop=stop, on_progress=on_progress,
                   progress_every=progress_every)


# --- argument checks ----------------------------------------------------------------------

def _check_generator(generator) -> None:
    missing = [name for name in ("input_shape", "latent_dim", "encode", "decode") if not hasattr(generator, name)]
    if missing:
        raise TypeError(
            f"generator must offer input_shape, latent_dim, encode(x) and decode(z) (a normalizing flow or "
            f"a VAE); {type(generator).__name__} lacks {', '.join(missing)}"
        )


def _check_classifier(classifier) -> None:
    if not isinstance(classifier, torch.nn.Module):
        raise TypeError(f"classifier must be a torch.nn.Module returning logits, got {type(classifier).__name__}")


def _check_positive_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_settings(classifier, lr, max_steps, threshold, record_every, clip, stop, on_progress, progress_every):
    _check_classifier(classifier)
    if isinstance(lr, bool) or not isinstance(lr, Real) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, Real) or not 0 < threshold < 1:
        raise ValueError(f"threshold must be a probability in (0, 1), got {threshold!r}")
    _check_positive_int(max_steps, "max_steps", 0)
    _check_positive_int(record_every, "record_every", 1)
    _check_positive_int(progress_every, "progress_every", 1)
    if clip is not None:
        clip = check_interval(clip, "clip")
    if stop is not None and not callable(getattr(stop, "is_set", None)):
        raise TypeError(f"stop must offer is_set() (e.g. a threading.Event), got {type(stop).__name__}")
    if on_progress is not None and not callable(on_progress):
        raise TypeError(f"on_progress must be callable, got {type(on_progress).__name__}")
    return float(lr), float(threshold), clip


def _placement(module) -> tuple[torch.device, torch.dtype] | None:
    tensor = next(module.parameters(), None) if isinstance(module, torch.nn.Module) else None
    return None if tensor is None else (tensor.device, tensor.dtype)


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


# --- the search ---------------------------------------------------------------------------

class _Adam:
    """torch.optim.Adam (weight decay 0) on some rows of one tensor; the other rows and their
    moments stay as they are."""

    def __init__(self, params: torch.Tensor, lr: float):
        self.lr = lr
        self.exp_avg = torch.zeros_like(params)
        self.exp_avg_sq = torch.zeros_like(params)

    def step(self, params: torch.Tensor, rows: torch.Tensor, grad: torch.Tensor, count: int) -> None:
        """Update ``params[rows]`` with ``grad``; this is step ``count`` (from 1) of every one of
        these rows (a search stops a row for good, so the rows still running move in lockstep)."""
        beta1, beta2 = ADAM_BETAS
        exp_avg = self.exp_avg[rows].mul_(beta1).add_(grad, alpha=1 - beta1)
        exp_avg_sq = self.exp_avg_sq[rows].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step_size = self.lr / (1 - beta1 ** count)
        denom = (exp_avg_sq.sqrt() / math.sqrt(1 - beta2 ** count)).add_(ADAM_EPS)
        params[rows] = params[rows] - step_size * exp_avg / denom
        self.exp_avg[rows] = exp_avg
        self.exp_avg_sq[rows] = exp_avg_sq


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


def _appended(stacked: list | None, fresh: list) -> list:
    """Records (steps, frames, probs, latents or None), each stacked along dim 1, followed by ``fresh``."""
    if stacked is None:
        return fresh
    return [None if old is None else torch.cat([old, new], 1) for old, new in zip(stacked, fresh)]


class _Trajectories:
    """The current point of every row and the records taken so far.

    Records are stacked once, when a result is first asked for after them: a search that
    streams partial results (``on_progress``) copies its records per call, instead of
    stacking every record again.
    """

    def __init__(self, method, threshold, x, reference, target, source, latents, clip):
        self.method, self.threshold, self.clip = method, threshold, clip
        self.x, self.reference, self.target, self.source = x, reference, target, source
        self.frame = reference.clone()
        self.latent = None if latents is None else latents.clone()
        self.probs = None
        self.steps = torch.zeros(len(x), dtype=torch.long, device=x.device)  # steps behind the current point
        self.pending: list[tuple] = []  # records not stacked yet
        self.stacked: list | None = None  # the records before them

    def update(self, rows, frames, probs, latents, steps) -> None:
        if self.probs is None:
            self.probs = probs.new_zeros(len(self.x), probs.shape[1])
        self.frame[rows], self.probs[rows], self.steps[rows] = frames, probs, steps
        if latents is not None:
            self.latent[rows] = latents

    def snapshot(self) -> tuple:
        latent = None if self.latent is None else self.latent.clone()
        return self.steps.clone(), self.frame.clone(), self.probs.clone(), latent

    def record(self) -> None:
        self.pending.append(self.snapshot())

    def result(self, interrupted: bool) -> CounterfactualResult:
        if self.pending:
            fresh = [None if values[0] is None else torch.stack(values, 1) for values in zip(*self.pending)]
            self.stacked, self.pending = _appended(self.stacked, fresh), []
        records = self.stacked
        if records is None or not torch.equal(records[0][:, -1], self.steps):  # the last record is the current point
            records = _appended(records, [None if value is None else value.unsqueeze(1) for value in self.snapshot()])
        steps, frames, probs, latents = records
        confidence = probs.gather(2, self.target[:, None, None].expand(-1, probs.shape[1], 1)).squeeze(2)
        return CounterfactualResult(
            method=self.method, threshold=self.threshold, interrupted=interrupted, x=self.x, reference=self.reference,
            x_cf=self.frame.clone(), target=self.target, source=self.source,
            success=confidence[:, -1] > self.threshold, steps=self.steps.clone(),
            record_steps=steps, frames=frames, probs=probs, confidence=confidence, latents=latents, clip=self.clip,
        )


def _starting_point(method, generator, x, clip):
    """The optimised tensor at step 0, the point it shows, and ``render(params) -> input``."""
    if method == "pixel":
        return x.clone(), x, lambda point: point
    codes = generator.encode(x)
    if tuple(codes.shape) != (len(x), generator.latent_dim) or not torch.isfinite(codes).all():
        raise ValueError(
            f"generator.encode(x) must give finite codes of shape (N, {generator.latent_dim}), got shape "
            f"{tuple(codes.shape)}{'' if torch.isfinite(codes).all() else ' with NaN or inf'}; is x in "
            "the generator's data range?"
        )

    def render(code):
        decoded = generator.decode(code)
        return _ClipToRange.apply(decoded, *clip) if clip else decoded

    return codes, render(codes), render


def _search(method, classifier, generator, x, target, *, lr, max_steps, threshold, record_every, clip, progress,
            stop, on_progress, progress_every) -> CounterfactualResult:
    lr, threshold, clip = _check_settings(classifier, lr, max_steps, threshold, record_every, clip, stop,
                                          on_progress, progress_every)
    placement = _placement(classifier)
    device, dtype = placement if placement else (None, None)
    generator_placement = _placement(generator)
    if placement and generator_placement and generator_placement != placement:
        raise ValueError(
            f"generator and classifier must live on one device in one dtype, got generator on "
            f"{generator_placement} and classifier on {placement}"
        )
    x = check_inputs(x, _input_shape(classifier, generator, x), "x", dtype=dtype, device=device)
    _check_in_range(x, clip)
    with evaluating(classifier, generator), torch.no_grad():
        logits = classifier(x)
        if logits.ndim != 2 or logits.shape[0] != len(x) or logits.shape[1] < 2:
            raise ValueError(f"classifier must return logits of shape (N, C) with C >= 2, got {tuple(logits.shape)}")
        source = logits.argmax(1)
        target = check_targets(target, len(x), logits.shape[1]).to(source.device)
        params, reference, render = _starting_point(method, generator, x, clip)
        trajectories = _Trajectories(method, threshold, x, reference, target, source,
                                     params if method == "latent" else None, clip)
        optimizer = _Adam(params, lr)
        active = torch.ones(len(x), dtype=torch.bool, device=x.device)
        bar = tqdm(total=max_steps, desc=f"{method} counterfactuals", disable=not progress)
        interrupted = False
        try:
            for step in range(max_steps + 1):
                rows = active.nonzero().flatten()
                with torch.enable_grad():
                    point = params[rows].requires_grad_(True)
                    shown = render(point)
                    logits = classifier(shown)
                probs = logits.detach().softmax(1)
                trajectories.update(rows, shown.detach(), probs, point.detach() if method == "latent" else None,
                                    step)
                going = (probs.gather(1, target[rows, None]).squeeze(1) <= threshold) & (step < max_steps)
                active[rows] = going
                if step % record_every == 0:
                    trajectories.record()
                if not going.any():
                    break
                if on_progress is not None and step and step % progress_every == 0:
                    on_progress(trajectories.result(interrupted=False))
                if stop is not None and stop.is_set():
                    interrupted = True
                    break
                with torch.enable_grad():
                    loss = F.cross_entropy(logits[going], target[rows[going]], reduction="sum")
                    (grad,) = torch.autograd.grad(loss, point)
                optimizer.step(params, rows[going], grad[going], step + 1)
                if clip is not None and method == "pixel":
                    params[rows[going]] = params[rows[going]].clamp(*clip)
                bar.update(1)
                bar.set_postfix(running=int(going.sum()))
        except KeyboardInterrupt:
            if trajectories.probs is None:  # nothing evaluated yet: no partial result to give
                raise
            interrupted = True
        finally:
            bar.close()
        return trajectories.result(interrupted)


# --- the first class change along a trajectory -------------------------------------------

def _top_two_gap(probs: torch.Tensor) -> torch.Tensor:
    top = probs.topk(2, dim=1).values
    return top[:, 0] - top[:, 1]


def boundary_crossing(classifier, result: CounterfactualResult, generator=None) -> BoundaryCrossing:
    """Locate where each trajectory of ``result`` first changes its predicted class.

    Between the last record still in the starting class and the first one out of it, the
    segment (in latent space when ``result.latents`` and ``generator`` are given, else in
    input space) is bisected ``BISECTION_STEPS`` times, all rows in one batch, to the point
    where the class changes: there the top two probabilities tie (``gap`` ~ 1e-6 in float32).
    This finds decision-boundary points of any classifier, invertible or not. With
    ``record_every > 1`` a change that reverts between two records is not seen.

    Arguments:
        classifier: the classifier the search ran on.
        result: a :class:`CounterfactualResult`.
        generator: the generator of a latent search, to bisect in its latent space.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> classifier = nn.Linear(2, 2)
        >>> with torch.no_grad(): _ = classifier.weight.copy_(torch.eye(2)), classifier.bias.zero_()
        >>> result = pixel_counterfactual(classifier, torch.tensor([[0.9, 0.1]]), 1, lr=0.05, threshold=0.6)
        >>> crossing = boundary_crossing(classifier, result)
        >>> crossing.found.tolist(), torch.allclose(crossing.x[:, 0], crossing.x[:, 1], atol=1e-5)
        ([True], True)
    """
    _check_classifier(classifier)
    if not isinstance(result, CounterfactualResult):
        raise TypeError(f"result must be a CounterfactualResult, got {type(result).__name__}")
    in_latent = generator is not None and result.latents is not None
    if in_latent:
        _check_generator(generator)
    points = result.latents if in_latent else result.frames.flatten(2)
    shape = result.x.shape[1:]
    clip = result.clip

    def classify(rows_points):
        shown = generator.decode(rows_points) if in_latent else rows_points.reshape(-1, *shape)
        shown = shown.clamp(*clip) if clip and in_latent else shown
        return shown, classifier(shown).softmax(1)

    classes = result.probs.argmax(2)  # (N, S)
    start = classes[:, 0]
    changed = classes != start[:, None]
    found = changed.any(1)
    after = changed.long().argmax(1).clamp_min(1)  # first record out of the starting class
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
            same = classify(begin + middle * (end - begin))[1].argmax(1) == start
            low = torch.where(same[:, None], middle, low)
            high = torch.where(same[:, None], high, middle)
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
        classes=torch.stack([start, torch.where(found, high_probs.argmax(1), start)], 1),
        gap=torch.where(use_high, high_gap, low_gap), found=found,
    )
