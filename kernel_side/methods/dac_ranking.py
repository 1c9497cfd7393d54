"""Ranking attribution methods by their DAC score over a data set, with paired bootstrap CIs.

References:
    Eckstein, Bates, Jefferis, Funke. Discriminative attribution from counterfactuals.
    arXiv 2109.13412 (2021). https://arxiv.org/abs/2109.13412

The pairs stream through in chunks (tensors, a :class:`CounterfactualPairs`, an engine
result, or a DataLoader of pairs or of inputs whose counterfactuals are made on the fly), so
memory stays bounded by one chunk: each chunk is filtered, attributed and scored
(:func:`~crosslens.kernel_side.discriminative_attribution`), and only each pair's area under
its curve and the running sum of the curves are kept. Stopping (``stop``, Ctrl-C) keeps the
table of the pairs done so far.

A D-method beats its S-method when the paired bootstrap CI of the mean AUC difference (the
same pairs resampled for both) excludes 0 [the paper reports mean DAC curves; the CI is how
this library states "beats"].
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from typing import Iterable

import torch
from tqdm.auto import tqdm

from .._checks import check_int, check_real
from ._search import check_callbacks
from .counterfactuals import CounterfactualResult
from .boundary import BoundaryPath, BoundaryProjection
from .dac import IG_STEPS, LABELS, STANDARD_OF, check_methods, discriminative_attribution
from .pairs import MIN_CONFIDENCE, MIRROR_T, CounterfactualPairs, counterfactual_pairs, unpack_pairs

__all__ = ["Comparison", "DACRanking", "dac_ranking"]

BOOTSTRAP_CHUNK = 250  # resamples drawn at once


@dataclass(frozen=True)
class Comparison:
    """The paired difference of two methods' mean AUC over the same pairs.

    Fields: method, baseline (method names); difference: mean AUC(method) - AUC(baseline);
    low, high: its bootstrap confidence interval.
    """

    method: str
    baseline: str
    difference: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        """True when the confidence interval lies entirely above or below 0."""
        return self.low > 0 or self.high < 0


@dataclass(frozen=True, repr=False)
class DACRanking:
    """Attribution methods ranked by DAC score over many pairs.

    Fields:
        methods: the M method names; direction, form: as in :func:`discriminative_attribution`.
        auc: (M, n) float64, each pair's area under its curve, for the n pairs scored.
        grid: (G,) mask sizes; mean_curves: (M, G) the mean DAC curves.
        candidates: pairs made or given before the filter; min_confidence: the filter.
        comparisons: each D-method against its S-method, every method against ``random``,
            and each D-method against ``residual`` (those present), with ``confidence`` CIs
            from ``n_bootstrap`` paired resamples.
        interrupted: True when stopped before every chunk was scored; seconds: wall time.
    """

    methods: tuple[str, ...]
    direction: str
    form: str
    auc: torch.Tensor
    grid: torch.Tensor
    mean_curves: torch.Tensor
    candidates: int
    min_confidence: float
    comparisons: tuple[Comparison, ...]
    confidence: float
    n_bootstrap: int
    interrupted: bool
    seconds: float

    @property
    def pairs(self) -> int:
        """n, how many pairs passed the filter and were scored."""
        return self.auc.shape[1]

    @property
    def dac_score(self) -> dict[str, float]:
        """Each method's DAC score (mean AUC over the pairs), best first."""
        scores = {method: self.auc[m].mean().item() for m, method in enumerate(self.methods)}
        return dict(sorted(scores.items(), key=lambda item: -item[1]))

    def comparison(self, method: str, baseline: str) -> Comparison:
        """The comparison of ``method`` against ``baseline``."""
        for each in self.comparisons:
            if (each.method, each.baseline) == (method, baseline):
                return each
        raise KeyError(f"no comparison of {method!r} against {baseline!r}; there are "
                       f"{', '.join(f'{c.method} vs {c.baseline}' for c in self.comparisons)}")

    def _heading(self) -> str:
        stopped = " (stopped early)" if self.interrupted else ""
        return (f"DAC scores over {self.pairs} pairs{stopped} ({self.candidates} made, kept at confidence > "
                f"{self.min_confidence:g}); direction {self.direction!r}, D-form {self.form!r}")

    def table(self) -> str:
        """The ranking and the comparisons as plain text."""
        level = f"{100 * self.confidence:g} % CI"
        lines = [self._heading(), "", f"{'method':<12}{'DAC score':>10}"]
        lines += [f"{LABELS[method]:<12}{score:>10.3f}" for method, score in self.dac_score.items()]
        lines += ["", f"{'comparison':<24}{'difference':>11}  {level}"]
        for c in self.comparisons:
            mark = "  excludes 0" if c.excludes_zero else ""
            lines.append(f"{LABELS[c.method] + ' - ' + LABELS[c.baseline]:<24}{c.difference:>+11.3f}  "
                         f"[{c.low:+.3f}, {c.high:+.3f}]{mark}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        escape = html.escape
        ranking = "".join(f"<tr><td>{escape(LABELS[m])}</td><td>{s:.3f}</td></tr>" for m, s in self.dac_score.items())
        rows = "".join(
            f"<tr><td>{escape(LABELS[c.method])} − {escape(LABELS[c.baseline])}</td><td>{c.difference:+.3f}</td>"
            f"<td>[{c.low:+.3f}, {c.high:+.3f}]</td><td>{'yes' if c.excludes_zero else 'no'}</td></tr>"
            for c in self.comparisons)
        return (f"<p>{escape(self._heading())}</p><table><tr><th>method</th><th>DAC score</th></tr>{ranking}</table>"
                f"<table><tr><th>comparison</th><th>difference</th><th>{100 * self.confidence:g} % CI</th>"
                f"<th>excludes 0</th></tr>{rows}</table>")


def _chunks(data, x_cf, target, batch_size: int) -> tuple[Iterable, int | None]:
    """The data as chunks ``(x, x_cf or None, target or None)`` and their total size (None: unknown)."""
    if isinstance(data, CounterfactualPairs):
        data, x_cf, target = data.x, data.x_cf, data.target
    elif isinstance(data, (CounterfactualResult, BoundaryPath, BoundaryProjection)):
        raise TypeError(f"data is a {type(data).__name__}: pass counterfactual_pairs(classifier, data) (which "
                        "filters it) or its x and x_cf")
    if isinstance(data, torch.Tensor):
        if x_cf is not None and not isinstance(x_cf, torch.Tensor):
            raise TypeError(f"x_cf must be a tensor like data, got {type(x_cf).__name__}")
        target = None if target is None else torch.as_tensor(target).reshape(-1).expand(len(data))

        def tensor_chunks():
            for start in range(0, len(data), batch_size):
                rows = slice(start, start + batch_size)
                yield (data[rows], None if x_cf is None else x_cf[rows], None if target is None else target[rows])

        return tensor_chunks(), len(data)
    if x_cf is not None or target is not None:
        raise TypeError("x_cf and target go with tensor data; a DataLoader yields pairs (x, x_cf) or inputs")
    try:
        iterator = iter(data)
    except TypeError as error:
        raise TypeError(f"data must be a tensor, CounterfactualPairs or an iterable of batches (a DataLoader), "
                        f"got {type(data).__name__}") from error
    dataset = getattr(data, "dataset", None)
    total = len(dataset) if dataset is not None and hasattr(dataset, "__len__") else None
    return (_batch_parts(batch) for batch in iterator), total


def _batch_parts(batch):
    """A DataLoader batch as (x, x_cf or None, None): a tensor of inputs, ``(x, x_cf)`` pairs, or
    ``(x, labels)`` inputs (labels are not used: class i is the classifier's prediction)."""
    if isinstance(batch, torch.Tensor):
        return batch, None, None
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        if len(batch) >= 2 and isinstance(batch[1], torch.Tensor) and batch[1].shape == batch[0].shape:
            return batch[0], batch[1], None
        return batch[0], None, None
    raise TypeError(f"each batch must be a tensor of inputs or a sequence (x, x_cf) or (x, labels), got "
                    f"{type(batch).__name__}")


def _bootstrap(auc: torch.Tensor, pairs_of: list[tuple[int, int]], n_bootstrap: int, confidence: float,
               seed: int) -> list[tuple[float, float, float]]:
    """Mean difference and percentile CI of ``auc[a] - auc[b]`` for each (a, b), all from the
    same paired resamples of the pairs."""
    if not pairs_of:
        return []
    differences = torch.stack([auc[a] - auc[b] for a, b in pairs_of])  # (K, n)
    n = differences.shape[1]
    generator = torch.Generator().manual_seed(seed)
    means = []
    for start in range(0, n_bootstrap, BOOTSTRAP_CHUNK):
        rows = torch.randint(n, (min(BOOTSTRAP_CHUNK, n_bootstrap - start), n), generator=generator)
        means.append(differences[:, rows].mean(-1))  # (K, chunk)
    means = torch.cat(means, 1)
    tail = (1 - confidence) / 2
    low, high = torch.quantile(means, torch.tensor([tail, 1 - tail], dtype=means.dtype), dim=1)
    return [(d.item(), lo.item(), hi.item()) for d, lo, hi in zip(differences.mean(1), low, high)]


def _comparisons(methods: tuple[str, ...]) -> list[tuple[str, str]]:
    present = set(methods)
    wanted = [(d, s) for d, s in STANDARD_OF.items() if d in present and s in present]
    wanted += [(m, "random") for m in methods if m != "random" and "random" in present]
    wanted += [(d, "residual") for d in STANDARD_OF if d in present and "residual" in present]
    return wanted


def dac_ranking(classifier, data, x_cf=None, target=None, *, via: str | None = None, generator=None,
                reference=None, min_confidence: float = MIN_CONFIDENCE, methods=None, direction: str = "dac",
                form: str | None = None, layer=None, n_steps: int = IG_STEPS, closing="auto", blur="auto",
                batch_size: int = 64, n_bootstrap: int = 2000, confidence: float = 0.95, seed: int = 0,
                threshold: float = 0.99, max_steps: int = 1000, t: float = MIRROR_T, progress: bool = False,
                stop=None) -> DACRanking:
    """Rank attribution methods by DAC score over a data set of pairs (Eckstein et al. 2021).

    Arguments:
        classifier: an nn.Module, ``classifier(x) -> logits`` (N, C).
        data: (N, *input_shape) real images (with ``x_cf``: the pairs; without: their
            counterfactuals are made ``via`` one of crosslens' sources, chunk by chunk), a
            :class:`CounterfactualPairs`, or an iterable of batches (a DataLoader) yielding
            ``(x, x_cf)`` pairs, or inputs (a tensor or ``(x, labels)``).
        x_cf, target: the counterfactuals and their classes, for tensor ``data``.
        via, generator, reference, min_confidence, threshold, max_steps, t: how pairs are
            made and filtered (see :func:`counterfactual_pairs`; the authors keep a pair when
            both confidences exceed 0.8).
        methods, direction, form, layer, n_steps, closing, blur: as in
            :func:`discriminative_attribution`.
        batch_size: pairs per chunk (tensor data; a DataLoader's batches are used as they are).
        n_bootstrap, confidence: paired bootstrap resamples and the CI level; seed seeds the
            resampling and the random baseline (the global random state is left untouched).
        progress: show a tqdm bar. stop: an object with ``is_set()``; once set (or on
            Ctrl-C) the ranking of the pairs scored so far comes back with ``interrupted=True``.

    Example:
        >>> from crosslens import kernel_side as ks
        >>> cnn, flow = ks.load_pretrained("digits-cnn"), ks.load_pretrained("digits-flow")
        >>> ranking = ks.dac_ranking(cnn, ks.load_digits_split()[2][:40], generator=flow,
        ...                          methods=["ig", "d_ig", "random"], n_bootstrap=200)
        >>> ranking.comparison("d_ig", "ig").difference > 0
        True
    """
    check_callbacks(stop, None, 1)
    methods = check_methods(classifier, methods, layer)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    n_bootstrap = check_int(n_bootstrap, "n_bootstrap", minimum=1)
    confidence = check_real(confidence, "confidence", 0.0, 1.0)
    seed = check_int(seed, "seed")
    if isinstance(data, (CounterfactualResult, BoundaryPath, BoundaryProjection)) and x_cf is None:
        data, x_cf, target, _ = unpack_pairs(classifier, data, None, target, t)
    chunks, total = _chunks(data, x_cf, target, batch_size)
    options = dict(methods=methods, direction=direction, form=form, layer=layer, n_steps=n_steps, closing=closing,
                   blur=blur, seed=seed)
    started = time.perf_counter()
    aucs, curve_sum, candidates, interrupted = [], None, 0, False
    result = None
    bar = tqdm(total=total, desc="DAC ranking", unit="pair", disable=not progress)
    try:
        for x_chunk, cf_chunk, target_chunk in chunks:
            if stop is not None and stop.is_set():
                interrupted = True
                break
            pairs = counterfactual_pairs(
                classifier, x_chunk, cf_chunk, target_chunk, via=None if cf_chunk is not None else via,
                generator=generator, reference=reference, min_confidence=min_confidence, t=t, threshold=threshold,
                max_steps=max_steps, stop=stop)
            candidates += pairs.candidates
            if len(pairs):
                result = discriminative_attribution(classifier, pairs, **options)
                aucs.append(result.auc)
                chunk_sum = result.curves.sum(1)
                curve_sum = chunk_sum if curve_sum is None else curve_sum + chunk_sum
            bar.update(pairs.candidates)
            bar.set_postfix(kept=sum(len(a[0]) for a in aucs))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    if result is None:
        raise ValueError(f"no pair passed the filter (of {candidates} made, none had both confidences above "
                         f"{min_confidence:g}); lower min_confidence or check the counterfactuals")
    auc = torch.cat(aucs, 1)
    wanted = _comparisons(methods)
    index = {method: m for m, method in enumerate(methods)}
    intervals = _bootstrap(auc, [(index[a], index[b]) for a, b in wanted], n_bootstrap, confidence, seed)
    return DACRanking(
        methods=methods, direction=result.direction, form=result.form, auc=auc, grid=result.grid,
        mean_curves=curve_sum / auc.shape[1], candidates=candidates, min_confidence=float(min_confidence),
        comparisons=tuple(Comparison(a, b, *interval) for (a, b), interval in zip(wanted, intervals)),
        confidence=confidence, n_bootstrap=n_bootstrap, interrupted=interrupted,
        seconds=time.perf_counter() - started,
    )
