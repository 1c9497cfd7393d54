"""How faithful are segment explanations? AXAI against gradient, IG, LIME and KernelSHAP on the same segments.

References:
    Rahnama, Tseng. An adversarial approach for explaining the predictions of deep neural
    networks. CVPR Workshops 2021. https://arxiv.org/abs/2005.10284 (the comparison)
    Samek, Binder, Montavon, Lapuschkin, Mueller. Evaluating the visualization of what a deep
    neural network has learned. IEEE TNNLS 2017. https://arxiv.org/abs/1509.06321 (AOPC)
    Simonyan, Vedaldi, Zisserman. Deep inside convolutional networks. ICLR Workshops 2014
    (saliency); Sundararajan, Taly, Yan. Axiomatic attribution for deep networks. ICML 2017
    (Integrated Gradients); Ribeiro, Singh, Guestrin. "Why should I trust you?" KDD 2016
    (LIME); Lundberg, Lee. A unified approach to interpreting model predictions. NeurIPS 2017
    (KernelSHAP). All four computed with Captum.

Every method ranks the same segments of each image: AXAI by its share of strongly attacked
pixels; saliency (|gradient|) and Integrated Gradients (baseline 0, Gauss-Legendre) by the
sum of their pixel attributions over the segment (the segment's whole effect); LIME and
KernelSHAP by their coefficient of the segment (Captum's, the segments as the feature mask,
one image at a time, all samples of an image in one forward). Faithfulness is the deletion
and insertion AOPC (:func:`~crosslens.kernel_side.metrics.aopc`) with deleted pixels set to 0
and to a blurred copy (deleting to 0 favours nothing on digits, whose background is 0
already). Consistency: explanations of one class should resemble each other more than those
of two classes (Spearman of |d| within vs between classes), and the top K should survive
small noise (Jaccard of the top-K sets).
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field

import torch

from .._checks import check_choice, check_int, check_real
from .._runtime import evaluating
from ..metrics import REMOVALS, aopc, spearman
from ._captum import gradient, integrated_gradients, tracked
from .axai import AdversarialExplanation, adversarial_explanation, rank_segments
from .dac import IG_STEPS

__all__ = ["SEGMENT_METHODS", "Faithfulness", "compare_faithfulness", "explanation_consistency", "key_share",
           "segment_ranking"]

SEGMENT_METHODS = ("axai", "saliency", "integrated_gradients", "lime", "kernel_shap")
LABELS = {"axai": "AXAI", "saliency": "saliency", "integrated_gradients": "Integrated Gradients", "lime": "LIME",
          "kernel_shap": "KernelSHAP"}
SAMPLES = 1000  # LIME's and KernelSHAP's perturbed samples per image (the lime package's default)


def segment_ranking(classifier, x: torch.Tensor, segments: torch.Tensor, classes: torch.Tensor, method: str, *,
                    n_samples: int = SAMPLES, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scores (N, S), ranking (N, S))`` of each image's segments by a Captum ``method``
    (``"saliency"``, ``"integrated_gradients"``, ``"lime"``, ``"kernel_shap"``)."""
    from captum.attr import KernelShap, Lime

    check_choice(method, "method", SEGMENT_METHODS[1:])
    n = len(x)
    with evaluating(classifier), torch.enable_grad():
        if method == "saliency":
            maps = gradient(classifier, x, classes).abs()
        elif method == "integrated_gradients":
            maps = integrated_gradients(classifier, x, torch.zeros_like(x), classes, IG_STEPS)
        else:
            explainer = (Lime if method == "lime" else KernelShap)(classifier)
            mask = segments.reshape(n, 1, *segments.shape[1:])
            with torch.random.fork_rng(devices=[]):  # Captum samples from the global stream: seed it, give it back
                torch.manual_seed(seed)
                maps = torch.cat([explainer.attribute(x[i:i + 1], target=classes[i:i + 1], baselines=0.0,
                                                      feature_mask=mask[i:i + 1].expand_as(x[i:i + 1]),
                                                      n_samples=n_samples, perturbations_per_eval=n_samples)
                                  for i in range(n)])
    values = maps.detach().reshape(n, -1, *segments.shape[1:]).sum(1)
    scores, _, ranking, _ = rank_segments(values, segments, by="mean" if method in ("lime", "kernel_shap") else "sum")
    return scores, ranking


@dataclass(frozen=True)
class Faithfulness:
    """Deletion and insertion AOPC of each method on the same images and segments.

    Fields:
        methods: the names; seconds: {method: seconds per explanation}; deletion, insertion:
            {method: {removal: (N,) AOPC per image}}; n_samples: LIME's and KernelSHAP's.
    """

    methods: tuple[str, ...]
    seconds: dict
    deletion: dict
    insertion: dict
    n_samples: int
    removals: tuple = field(default=REMOVALS)

    def mean(self, kind: str, method: str, removal: str = "blur") -> float:
        """The mean ``kind`` (``"deletion"`` or ``"insertion"``) AOPC of ``method``."""
        return getattr(self, kind)[method][removal].mean().item()

    def table(self) -> str:
        """The methods, their AOPC (mean over the images) and their time per explanation, as text."""
        header = "".join(f"{kind[:3]}. AOPC ({removal})".rjust(19) for kind in ("deletion", "insertion")
                         for removal in self.removals)
        lines = [f"{'method':<22}{header}{'ms / image':>12}"]
        for method in self.methods:
            cells = "".join(f"{self.mean(kind, method, removal):19.3f}" for kind in ("deletion", "insertion")
                            for removal in self.removals)
            lines.append(f"{LABELS[method]:<22}{cells}{1e3 * self.seconds[method]:12.1f}")
        return "\n".join(lines) + f"\n(LIME and KernelSHAP: {self.n_samples} samples per image; higher AOPC is better)"

    def __repr__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{kind} AOPC ({removal})</th>" for kind in ("deletion", "insertion") for removal in self.removals)
        rows = "".join(
            f"<tr><td>{html.escape(LABELS[m])}</td>"
            + "".join(f"<td>{self.mean(kind, m, r):.3f}</td>" for kind in ("deletion", "insertion") for r in self.removals)
            + f"<td>{1e3 * self.seconds[m]:.1f}</td></tr>" for m in self.methods)
        return (f"<table><tr><th>method</th>{head}<th>ms / image</th></tr>{rows}</table>"
                f"<p>LIME and KernelSHAP: {self.n_samples} samples per image; higher AOPC is better.</p>")


def compare_faithfulness(classifier, x, target=None, *, methods=SEGMENT_METHODS, n_samples: int = SAMPLES,
                         removals=REMOVALS, seed: int = 0, **axai_options) -> Faithfulness:
    """Explain x with every method on AXAI's segments, time each, and score each by AOPC.

    Arguments:
        classifier, x, target: as in :func:`~crosslens.kernel_side.adversarial_explanation`;
            ``axai_options`` go to it too (eps, steps, segments, ...).
        methods: names from ``SEGMENT_METHODS``; n_samples: LIME's and KernelSHAP's samples;
        removals: the deletion values to score with (``"zero"``, ``"blur"``).
        seed: seeds LIME's and KernelSHAP's sampling (the global random state is given back).
    """
    methods = tuple(check_choice(m, "methods", SEGMENT_METHODS) for m in methods)
    n_samples = check_int(n_samples, "n_samples", minimum=10)
    removals = tuple(check_choice(r, "removals", REMOVALS) for r in removals)
    started = time.perf_counter()
    explained = adversarial_explanation(classifier, x, target, **axai_options)
    axai_seconds = (time.perf_counter() - started) / len(explained.x)
    x, segments, classes = explained.x, explained.segments, explained.source
    rankings, seconds = {}, {}
    for method in methods:
        if method == "axai":
            rankings[method], seconds[method] = explained.ranking, axai_seconds
            continue
        started = time.perf_counter()
        rankings[method] = segment_ranking(classifier, x, segments, classes, method, n_samples=n_samples, seed=seed)[1]
        seconds[method] = (time.perf_counter() - started) / len(x)
    deletion, insertion = {}, {}
    for method, ranking in rankings.items():
        scored = {removal: aopc(classifier, x, segments, ranking, classes, removal=removal) for removal in removals}
        deletion[method] = {removal: d.cpu() for removal, (d, _) in scored.items()}
        insertion[method] = {removal: i.cpu() for removal, (_, i) in scored.items()}
    return Faithfulness(methods=methods, seconds=seconds, deletion=deletion, insertion=insertion, n_samples=n_samples,
                        removals=removals)


def explanation_consistency(classifier, x, labels: torch.Tensor, *, noise: float = 0.01, seed: int = 0,
                            **axai_options) -> dict:
    """How consistent AXAI is, and how close to a gradient map.

    Returns a dict: ``within`` and ``between``, the mean Spearman correlation of |filtered d|
    maps between images of one class and of different classes (``labels``); ``jaccard``, the
    mean Jaccard index of each image's top-K segment set with that of the image plus Gaussian
    noise of std ``noise`` (same segments); ``gradient_spearman``, the mean Spearman of |d|
    against |grad CE| at x (d is close to a sum of normalised gradients with the defaults).
    """
    noise = check_real(noise, "noise", 0.0, closed="low")
    explained = adversarial_explanation(classifier, x, **axai_options)
    maps = explained.filtered.abs().flatten(1)
    same = labels[:, None] == labels[None, :]
    n = len(maps)
    first, second = torch.triu_indices(n, n, offset=1)
    correlations = spearman(maps[first], maps[second])
    pair_same = same[first, second]
    generator = torch.Generator(device="cpu").manual_seed(seed)
    noisy_x = explained.x + noise * torch.randn(explained.x.shape, generator=generator).to(explained.x)
    options = {key: value for key, value in axai_options.items() if key != "segments"}
    noisy = adversarial_explanation(classifier, noisy_x, explained.source, segments=explained.segments, **options)
    k = explained.k
    overlap = [len(set(a[:k].tolist()) & set(b[:k].tolist())) / len(set(a[:k].tolist()) | set(b[:k].tolist()))
               for a, b in zip(explained.ranking, noisy.ranking)]
    with evaluating(classifier), torch.enable_grad():
        inputs = tracked(explained.x)
        loss = torch.nn.functional.cross_entropy(classifier(inputs), explained.source, reduction="sum")
        (loss_gradient,) = torch.autograd.grad(loss, inputs)
    return {
        "within": correlations[pair_same].mean().item(),
        "between": correlations[~pair_same].mean().item(),
        "jaccard": sum(overlap) / len(overlap),
        "gradient_spearman": spearman(explained.perturbation.abs().flatten(1), loss_gradient.abs().flatten(1)).mean().item(),
    }


def key_share(explained: AdversarialExplanation, key_masks: torch.Tensor, *, draws: int = 100,
              seed: int = 0) -> tuple[float, float]:
    """The share of the top-K segments' pixels that fall on the known class-determining part
    (``key_masks``, (N, H, W) bool), for AXAI's ranking and for random rankings of the same
    segments (the mean over ``draws`` seeded permutations)."""
    draws = check_int(draws, "draws", minimum=1)
    key = key_masks.to(explained.segments.device)

    def share(top: torch.Tensor) -> float:
        return ((top & key).flatten(1).sum(1) / top.flatten(1).sum(1).clamp_min(1)).mean().item()

    generator = torch.Generator().manual_seed(seed)
    random_shares = []
    for _ in range(draws):
        keys = torch.rand(explained.ranking.shape, generator=generator).to(explained.scores)
        keys = torch.where(explained.ranking >= 0, keys, torch.full_like(keys, -1.0))
        order = keys.argsort(dim=1, descending=True)[:, :explained.k]  # random labels among the present ones
        top = (explained.segments[:, None] == order[:, :, None, None]).any(1)
        random_shares.append(share(top))
    return share(explained.top_k), sum(random_shares) / draws
