"""Scores for explanation results: realism, size, validity under independent oracles.

References:
    Dombrowski, Gerken, Mueller, Kessel. Diffeomorphic counterfactuals with generative
    models. TPAMI 2024. https://arxiv.org/abs/2206.05075 (the measures of counterfactuals)

    Dinh, Sohl-Dickstein, Bengio. Density estimation using Real NVP. ICLR 2017.
    https://arxiv.org/abs/1605.08803 (bits per dimension of dequantised data)

    Theis, van den Oord, Bethge. A note on the evaluation of generative models. ICLR 2016.
    https://arxiv.org/abs/1511.01844 (the dequantised log-likelihood bounds the discrete one)

    Burda, Grosse, Salakhutdinov. Importance weighted autoencoders. ICLR 2016.
    https://arxiv.org/abs/1509.00519 and Ho, Chen, Srinivas, Duan, Abbeel. Flow++. ICML 2019.
    https://arxiv.org/abs/1902.00275 (the importance-weighted estimate over dequantisation noise)

A counterfactual should be valid (the classifier reaches the target), small (L1, L2 change
from the input), realistic (low bits per dimension under a flow trained on the data, close
to a real training example of the target class) and a genuine change of class rather than
an adversarial one: independent oracles, classifiers the search never saw, should agree
with the target. Adversarial pixel-space results fool the classifier while the oracles
still see the original class. How often an oracle agrees depends on the oracle (measured on
latent counterfactuals of digits: from 50 % for the shipped CNN to 97 % for a logistic
regression), so :func:`evaluate` reports each oracle under its own name and
:func:`fit_oracles` fits a standard set of them.

:func:`evaluate` scores any result that carries ``x``, ``source``, ``target`` and the point
it proposes, ``x_cf`` (counterfactuals) or ``x_proj`` (boundary projections).

Perturbation curves score attribution maps: masks made from a map paste pixels of one image
into another, and the classifier's probability of the hybrids traces a curve whose area
rates the map (the DAC score of Eckstein et al. 2021, https://arxiv.org/abs/2109.13412;
deletion and insertion curves, whose average is the AOPC of Samek et al. 2017,
https://arxiv.org/abs/1509.06321). :func:`pasted_probabilities` scores every mask of every
input in one batched forward, each distinct mask once; :func:`dac_curves` puts curves on a
common grid; :func:`aopc` rates segment rankings by deletion and insertion.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ._checks import check_choice, check_inputs, check_int, check_placement, check_targets
from ._images import gaussian_blur, image_shape
from ._runtime import DEFAULT_CHUNK_SIZE, evaluating, map_chunks
from .models.generators import dequantize

__all__ = ["ORACLES", "REMOVALS", "CounterfactualReport", "aopc", "bits_per_dim", "dac_curves", "evaluate",
           "fit_oracle", "fit_oracles", "pasted_probabilities", "removed", "spearman"]

REMOVALS = ("zero", "blur")  # named removal values of aopc (or a tensor: e.g. the training mean)
REMOVAL_BLUR = 0.1  # sigma of the "blur" removal value, as a share of the image's side

ORACLES = ("svc", "3-nn", "logistic")  # the independent oracles of fit_oracles, by name


def bits_per_dim(flow, x: torch.Tensor, *, draws: int = 10, importance_weighted: bool = False,
                 seed: int = 0) -> torch.Tensor:
    """Negative log-likelihood of each input in bits per dimension, shape (N,).

    Quantised data (``flow.levels`` set: D values on a grid of step h = 1 / (levels - 1)):
    the standard figure of Dinh et al. (2017) and Theis et al. (2016), the expectation over
    uniform dequantisation noise u on x's bin (:func:`~crosslens.kernel_side.dequantize`) of
    ``-log2(p(x + u) h^D) / D``, estimated from ``draws`` noise draws per input. It is an
    upper bound on ``-log2 P(x) / D``, P(x) the probability the flow gives x's bin (Jensen);
    a uniform model scores ``log2(levels)`` (4.09 for 17 levels). With
    ``importance_weighted=True``, the importance-weighted estimate instead (Burda et al.
    2016; Ho et al. 2019): ``-log2(mean_k p(x + u_k) h^D) / D``, the log-mean-exp over the
    draws, a tighter bound in expectation that tends to ``-log2 P(x) / D`` as ``draws``
    grows. Measured with the shipped digits-flow on the digits test split: 2.18 standard,
    2.06 importance-weighted with 100 draws (2.05 with 1000).

    Continuous data (``levels=None``, or a flow without ``levels``): the exact
    ``-log p(x) / (D ln 2)``; ``draws``, ``importance_weighted`` and ``seed`` play no part.

    Arguments:
        flow: a normalizing flow with ``log_prob(x)`` and ``input_shape``.
        x: inputs (N, *flow.input_shape); for quantised data, values on the grid or any
            point in [0, 1] (the bin of width h around it is scored).
        draws: noise draws per input; importance_weighted: the estimate above.
        seed: seeds the noise (a generator of its own: the global random state is left alone).

    Example:
        >>> from crosslens.kernel_side.models.generators import NormalizingFlow
        >>> flow = NormalizingFlow.build((1, 8, 8), blocks=2, hidden=16)
        >>> x = torch.randint(0, 17, (3, 1, 8, 8)) / 16
        >>> standard, weighted = bits_per_dim(flow, x), bits_per_dim(flow, x, importance_weighted=True)
        >>> standard.shape, bool((weighted <= standard).all())
        (torch.Size([3]), True)
    """
    if not callable(getattr(flow, "log_prob", None)) or not hasattr(flow, "input_shape"):
        raise TypeError(f"flow must be a normalizing flow with log_prob(x) and input_shape, got {type(flow).__name__}")
    check_int(draws, "draws", minimum=1)
    check_int(seed, "seed")
    if not isinstance(importance_weighted, bool):
        raise TypeError(f"importance_weighted must be True or False, got {type(importance_weighted).__name__}")
    parameter = next(flow.parameters())
    x = check_inputs(x, flow.input_shape, "x", dtype=parameter.dtype, device=parameter.device)
    if getattr(flow, "levels", None) is None:
        return -flow.log_prob(x) / (math.prod(flow.input_shape) * math.log(2))
    return dequantised_bits(dequantised_log_probs(flow, x, draws, seed), flow, importance_weighted)


def dequantised_log_probs(flow, x: torch.Tensor, draws: int, seed: int) -> torch.Tensor:
    """``log(p(x + u_k) h^D)`` for ``draws`` dequantisation draws u_k per input of a checked
    batch x, shape (draws, N): what both estimates of :func:`bits_per_dim` are made of (so
    one set of draws can give both)."""
    generator = torch.Generator(device=x.device).manual_seed(seed)
    log_probs = torch.stack([flow.log_prob(dequantize(flow, x, generator)) for _ in range(draws)])
    return log_probs - math.prod(flow.input_shape) * math.log(flow.levels - 1)


def dequantised_bits(log_probs: torch.Tensor, flow, importance_weighted: bool) -> torch.Tensor:
    """Bits per dimension, shape (N,), from :func:`dequantised_log_probs`: the standard
    estimate (the mean over the draws) or the importance-weighted one (their log-mean-exp)."""
    draws = log_probs.shape[0]
    log_prob = torch.logsumexp(log_probs, 0) - math.log(draws) if importance_weighted else log_probs.mean(0)
    return -log_prob / (math.prod(flow.input_shape) * math.log(2))


def fit_oracles(x_train, y_train, names=ORACLES) -> dict:
    """Independent oracles fitted on the flattened training split, by name: scikit-learn's
    ``SVC()`` (RBF kernel) as ``"svc"``, ``KNeighborsClassifier(3)`` as ``"3-nn"`` and
    ``LogisticRegression`` as ``"logistic"`` (``names`` picks some of :data:`ORACLES`).

    They disagree with each other on counterfactuals far more than on test digits, which is
    why :func:`evaluate` reports every oracle it is given; add a torch classifier the search
    never saw (e.g. ``load_pretrained("digits-cnn")``) to the mapping for a fourth opinion.

    Example:
        >>> from crosslens import kernel_side as ks
        >>> x_train, y_train, x_test, y_test = ks.load_digits_split()
        >>> oracles = fit_oracles(x_train, y_train)
        >>> {name: float((oracle.predict(x_test.flatten(1).numpy()) == y_test.numpy()).mean()) > 0.96
        ...  for name, oracle in oracles.items()}
        {'svc': True, '3-nn': True, 'logistic': True}
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    if isinstance(names, str):
        raise TypeError(f"names must be a sequence of oracle names from {ORACLES}, got the string {names!r}")
    names = [check_choice(name, "names", ORACLES) for name in names]
    x_train = torch.as_tensor(x_train)
    y_train = torch.as_tensor(y_train)
    if len(x_train) != len(y_train):
        raise ValueError(f"x_train and y_train must have one label per input, got {len(x_train)} and {len(y_train)}")
    x_train, y_train = x_train.detach().cpu().flatten(1).numpy(), y_train.detach().cpu().numpy()
    estimators = {"svc": SVC, "3-nn": lambda: KNeighborsClassifier(n_neighbors=3),
                  "logistic": lambda: LogisticRegression(max_iter=1000)}
    return {name: estimators[name]().fit(x_train, y_train) for name in names}


def fit_oracle(x_train, y_train):
    """The RBF ``SVC()`` of :func:`fit_oracles` alone.

    Example:
        >>> from crosslens import kernel_side as ks
        >>> x_train, y_train, x_test, y_test = ks.load_digits_split()
        >>> oracle = fit_oracle(x_train, y_train)
        >>> float((oracle.predict(x_test.flatten(1).numpy()) == y_test.numpy()).mean()) > 0.97
        True
    """
    return fit_oracles(x_train, y_train, ("svc",))["svc"]


@dataclass(frozen=True)
class CounterfactualReport:
    """Per-row measures of an explanation result (all (N,) tensors on the CPU).

    Fields:
        method: the result's method; source, target: the predicted and the target class.
        success: target confidence above the threshold, or None (results without one);
        steps: optimiser steps taken, or None.
        l1, l2: size of the change ``x' - x`` from the input (x' = ``x_cf`` or ``x_proj``).
        bits_per_dim: of x' under the flow, the standard dequantised figure of
            :func:`bits_per_dim`, or None.
        oracle_predictions: each oracle's class for x', by the oracle's name (empty without oracles).
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
    oracle_predictions: dict[str, torch.Tensor]
    nearest_target_distance: torch.Tensor | None

    @property
    def oracle_agrees(self) -> dict[str, torch.Tensor]:
        """(N,) bool per oracle name: that oracle sees the target class in x'."""
        return {name: prediction == self.target for name, prediction in self.oracle_predictions.items()}

    def summary(self) -> dict:
        """One row of a comparison table: rates over all N rows, medians of the measures;
        ``oracle_target`` and ``oracle_source`` map each oracle's name to the share of rows
        where it sees the target, or the original class."""

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
            "oracle_target": {name: rate(agrees) for name, agrees in self.oracle_agrees.items()},
            "oracle_source": {name: rate(prediction == self.source)
                              for name, prediction in self.oracle_predictions.items()},
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


def _check_oracles(oracles) -> dict:
    """``oracles`` as a dict name -> oracle, each a torch classifier or offering ``predict``."""
    if oracles is None:
        return {}
    if not isinstance(oracles, Mapping):
        raise TypeError(f"oracles must be a mapping name -> oracle (e.g. fit_oracles(x_train, y_train)), "
                        f"got {type(oracles).__name__}")
    for name, oracle in oracles.items():
        if not isinstance(name, str):
            raise TypeError(f"oracles must be keyed by name (a string), got {type(name).__name__} {name!r}")
        if not (isinstance(oracle, nn.Module) or callable(getattr(oracle, "predict", None))):
            raise TypeError(f"oracles[{name!r}] must offer predict(x) (e.g. from fit_oracles) or be a torch.nn.Module "
                            f"returning logits, got {type(oracle).__name__}")
    return dict(oracles)


def _oracle_prediction(name: str, oracle, point: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """The class ``oracle`` gives each row of ``point``: the argmax of a torch classifier's
    logits on inputs of its ``input_shape`` (the result's shape when it declares none), or
    ``predict`` on the flattened rows."""
    if not isinstance(oracle, nn.Module):
        return torch.as_tensor(np.asarray(oracle.predict(point.detach().cpu().flatten(1).numpy())))
    shape = tuple(getattr(oracle, "input_shape", point.shape[1:]))
    if math.prod(shape) != point[0].numel():
        raise ValueError(f"oracles[{name!r}] takes inputs of shape {shape}, "
                         f"got results of shape {tuple(point.shape[1:])}")
    inputs = point.detach().reshape(len(point), *shape)
    device_dtype = check_placement(oracle, f"oracles[{name!r}]")
    if device_dtype is not None:
        inputs = inputs.to(*device_dtype)
    with torch.no_grad(), evaluating(oracle):
        return map_chunks(lambda rows: oracle(rows).argmax(1), inputs, chunk_size).cpu()


def evaluate(result, *, flow=None, oracles=None, reference_set=None, seed: int = 0,
             chunk_size: int = DEFAULT_CHUNK_SIZE) -> CounterfactualReport:
    """Measure a batch of explanation results.

    Arguments:
        result: a :class:`~crosslens.kernel_side.CounterfactualResult`, a
            :class:`~crosslens.kernel_side.BoundaryProjection`, or any result with ``x``,
            ``source``, ``target`` and ``x_cf`` or ``x_proj`` (``method``, ``success`` and
            ``steps`` are read when present).
        flow: a normalizing flow of the data (``log_prob``) for bits per dimension, or None.
            The figure is the standard one of :func:`bits_per_dim` (for quantised data the
            expectation over uniform dequantisation noise, 10 draws seeded by ``seed``;
            exact for continuous data), not the importance-weighted estimate.
        oracles: independent classifiers by name, e.g. ``fit_oracles(x_train, y_train)``
            plus ``{"digits-cnn": load_pretrained("digits-cnn")}``, or None. An oracle offers
            ``predict(array (N, D))`` (scikit-learn) or is a torch ``nn.Module`` returning
            logits (its class is the argmax, on inputs of its ``input_shape``). Each is
            reported under its name: they can disagree widely.
        reference_set: ``(x, y)`` real examples (the training split) for the distance to the
            nearest one of the target class, or None.
        seed: seeds the dequantisation noise of the bits per dimension.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from crosslens.kernel_side import pixel_counterfactual
        >>> classifier = nn.Linear(2, 2)
        >>> with torch.no_grad(): _ = classifier.weight.copy_(torch.eye(2)), classifier.bias.zero_()
        >>> result = pixel_counterfactual(classifier, torch.tensor([[0.9, 0.1]]), 1, lr=0.05, threshold=0.6)
        >>> report = evaluate(result, oracles={"itself": classifier},
        ...                   reference_set=(torch.tensor([[0., 1.], [1., 0.]]), torch.tensor([1, 0])))
        >>> report.summary()["success_rate"], report.summary()["oracle_target"], report.nearest_target_distance.shape
        (1.0, {'itself': 1.0}, torch.Size([1]))
    """
    point = _proposed_point(result)
    if flow is not None and not hasattr(flow, "log_prob"):
        raise TypeError(f"flow must be a normalizing flow with log_prob(x), got {type(flow).__name__}")
    oracles = _check_oracles(oracles)
    check_int(seed, "seed")
    change = (point - result.x).flatten(1)
    bits = nearest = None
    if flow is not None:
        with torch.no_grad():
            bits = bits_per_dim(flow, point, seed=seed).detach().cpu()
    predictions = {name: _oracle_prediction(name, oracle, point, chunk_size) for name, oracle in oracles.items()}
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
        bits_per_dim=bits, oracle_predictions=predictions, nearest_target_distance=nearest,
    )


# ---- perturbation curves -----------------------------------------------------------------

def pasted_probabilities(classifier, pasted: torch.Tensor, canvas: torch.Tensor, classes: torch.Tensor,
                         masks: torch.Tensor, *, blur: float = 0.0,
                         chunk_size: int = DEFAULT_CHUNK_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """The probability of ``classes`` for every hybrid ``m pasted + (1 - m) canvas``, and for each canvas.

    Arguments:
        classifier: ``classifier(x) -> logits``; pasted, canvas: (N, *input_shape);
        classes: (N,) the class scored per input; masks: (N, T, H, W) bool masks in the
            input's picture (:func:`~crosslens.kernel_side._images.image_shape`; one mask
            for every channel), blurred with a Gaussian of ``blur`` pixels before pasting.

    Returns:
        ``(probs (N, T), reference (N,))``, reference being the probability of each canvas.
        Everything goes through one batched forward (chunked): each input's distinct masks
        (a mask equal to the one before it reuses its score) and the canvases.
    """
    n, t = masks.shape[:2]
    shape = pasted.shape[1:]
    image = image_shape(shape)
    distinct = torch.ones(n, t, dtype=torch.bool, device=masks.device)
    distinct[:, 1:] = (masks[:, 1:] != masks[:, :-1]).flatten(2).any(-1)
    row, level = distinct.nonzero(as_tuple=True)
    m = gaussian_blur(masks[row, level].to(pasted.dtype), blur)[:, None]  # (D, 1, H, W)
    hybrids = (m * pasted.reshape(n, *image)[row] + (1 - m) * canvas.reshape(n, *image)[row]).reshape(-1, *shape)
    with torch.no_grad():
        probs = map_chunks(lambda chunk: classifier(chunk).softmax(1), torch.cat([hybrids, canvas]), chunk_size)
    reference = probs[len(hybrids):].gather(1, classes[:, None])[:, 0]
    scored = probs[:len(hybrids)].gather(1, classes[row][:, None])[:, 0]
    runs = distinct.flatten().cumsum(0) - 1  # each mask's distinct mask, in the order of `scored`
    return scored[runs].reshape(n, t), reference


def dac_curves(mask_size: torch.Tensor, scores: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """(..., G) curves of score against mask size through (0, 0), every (size, score) point and
    (1, the score at the first point, the largest mask), linearly interpolated at the ``grid``
    sizes (Eckstein et al. 2021: the DAC score is the area under the mean curve)."""
    lead = mask_size.shape[:-1]
    size = mask_size.reshape(-1, mask_size.shape[-1]).to(grid.dtype)
    score = scores.reshape(-1, scores.shape[-1]).to(grid.dtype)
    zeros, ones = torch.zeros_like(size[:, :1]), torch.ones_like(size[:, :1])
    size = torch.cat([zeros, size, ones], 1)
    score = torch.cat([zeros, score, score[:, :1]], 1)
    size, order = size.sort(dim=1, stable=True)
    score = score.gather(1, order)
    right = torch.searchsorted(size.contiguous(), grid.expand(len(size), -1).contiguous(), right=True)
    right = right.clamp(1, size.shape[1] - 1)
    left = right - 1
    s0, s1 = size.gather(1, left), size.gather(1, right)
    f0, f1 = score.gather(1, left), score.gather(1, right)
    width = s1 - s0
    weight = torch.where(width > 0, (grid - s0) / width.clamp_min(1e-12), torch.ones_like(width))
    curves = f0 + weight.clamp(0, 1) * (f1 - f0)
    return curves.reshape(*lead, len(grid))


def removed(x: torch.Tensor, removal) -> torch.Tensor:
    """What a deleted pixel becomes: ``"zero"``, ``"blur"`` (the image blurred with a Gaussian of
    a tenth of its side, so every region changes) or a tensor broadcast to x (e.g. the training mean)."""
    if isinstance(removal, torch.Tensor):
        return removal.to(x).expand_as(x).clone()
    removal = check_choice(removal, "removal", REMOVALS)
    if removal == "zero":
        return torch.zeros_like(x)
    channels, height, width = image_shape(x.shape[1:])
    planes = x.reshape(len(x) * channels, height, width)
    return gaussian_blur(planes, REMOVAL_BLUR * max(height, width)).reshape(x.shape)


def aopc(classifier, x: torch.Tensor, segments: torch.Tensor, ranking: torch.Tensor, classes: torch.Tensor, *,
         removal="zero", chunk_size: int = DEFAULT_CHUNK_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """Deletion and insertion AOPC of segment rankings (Samek et al. 2017), per input.

    Step k = 0..S_n of input n removes (deletion) or restores (insertion) its k best segments:
    deletion AOPC = mean_k [p(x) - p(x with the k best removed)], insertion AOPC = mean_k
    [p(removed x with the k best restored) - p(removed x)], p the probability of ``classes``.
    Higher is better for both. Every step of every input is one row of one batched forward.

    Arguments:
        x: (N, *input_shape); segments: (N, H, W) labels 0..S_n - 1; ranking: (N, S) labels
            best first (-1 past S_n); classes: (N,); removal: see :func:`removed`.
    """
    n, width = ranking.shape
    removal_image = removed(x, removal)
    steps = torch.arange(width + 1, device=x.device)
    rank_of = torch.full((n, width), width, dtype=torch.long, device=x.device)  # each label's place in the ranking
    valid = ranking >= 0
    rows = torch.arange(n, device=x.device)[:, None].expand(n, width)
    rank_of[rows[valid], ranking[valid]] = torch.arange(width, device=x.device).expand(n, width)[valid]
    place = rank_of.gather(1, segments.flatten(1)).reshape(segments.shape)  # (N, H, W) rank of each pixel's segment
    masks = place[:, None] < steps[None, :, None, None]  # (N, S + 1, H, W): the k best segments
    counts = valid.sum(1)
    used = (steps[None] <= counts[:, None]).to(x.dtype)  # steps 0..S_n of each input
    with evaluating(classifier):
        deleted, original = pasted_probabilities(classifier, removal_image, x, classes, masks, chunk_size=chunk_size)
        inserted, empty = pasted_probabilities(classifier, x, removal_image, classes, masks, chunk_size=chunk_size)
    deletion = ((original[:, None] - deleted) * used).sum(1) / used.sum(1)
    insertion = ((inserted - empty[:, None]) * used).sum(1) / used.sum(1)
    return deletion, insertion


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation of each row of a with the same row of b ((N, D) each), ties
    given their mean rank."""
    def ranks(values: torch.Tensor) -> torch.Tensor:
        order = values.argsort(dim=1, stable=True)
        sorted_values = values.gather(1, order)
        position = torch.arange(values.shape[1], device=values.device, dtype=torch.float64).expand_as(values)
        # ties: the mean position of their run
        starts = torch.ones_like(sorted_values, dtype=torch.bool)
        starts[:, 1:] = sorted_values[:, 1:] != sorted_values[:, :-1]
        run = starts.cumsum(1) - 1
        total = torch.zeros_like(position).scatter_add_(1, run, position)
        size = torch.zeros_like(position).scatter_add_(1, run, torch.ones_like(position))
        mean = (total / size.clamp_min(1)).gather(1, run)
        return torch.empty_like(mean).scatter_(1, order, mean)

    ra, rb = ranks(a.double()), ranks(b.double())
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    return (ra * rb).sum(1) / (ra.norm(dim=1) * rb.norm(dim=1)).clamp_min(1e-12)
