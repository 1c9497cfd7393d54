"""AttributionExplorer: which attribution method finds what separates a real image from its counterfactual.

References:
    Eckstein, Bates, Jefferis, Funke. Discriminative attribution from counterfactuals.
    arXiv 2109.13412 (2021). https://arxiv.org/abs/2109.13412

The engine (:func:`crosslens.kernel_side.discriminative_attribution`) attributes each pair
with every method, in both directions, and scores the masks at all 201 thresholds in one
batched forward. This module packs it into ONE payload: the maps, each mask as a per-pixel
level (masks shrink as the threshold grows, closing included, so mask k holds the pixels
whose level exceeds k: 201 masks in one byte per pixel), the restored scores and the curves.
The view scrubs the threshold, switches methods and directions without the kernel; only a
new target or a new drawing goes back to it (a background job).
"""

from __future__ import annotations

import numpy as np
import torch
import traitlets

from . import _assets
from ._checks import check_class_names, check_requested, is_one_target
from ._explorer import Explorer
from ._style import PALETTE
from .kernel_side._checks import check_choice
from .kernel_side._images import gaussian_blur, image_shape
from .kernel_side.methods.dac import DIRECTIONS, LABELS, STANDARD_OF, check_methods, dac_thresholds, \
    discriminative_attribution
from .kernel_side.methods.pairs import (
    MIN_CONFIDENCE, CounterfactualPairs, as_pairs, check_images, counterfactual_pairs, unpack_pairs,
)

__all__ = ["AttributionExplorer"]


class AttributionExplorer(Explorer):
    """Compare attribution methods on pairs of a real image and its counterfactual (Eckstein et al. 2021).

    For each pair (x, x_cf), classified i and j, every method's attribution map is thresholded
    at 201 levels; each mask pastes pixels between the two images, and the classifier's
    score of the hybrid says how much of the decision the mask restores. The DAC curve (score
    against mask size) and its area rank the methods: counterfactual-baseline attributions
    (D-IG, D-INGRAD, ...) against the standard ones (IG, INGRAD, ...), a random map and the
    residual ``|x - x_cf|``.

    The view shows a grid of the methods, each map over the real image with its area; one
    threshold slider that shows, for the selected method, the mask, the hybrid image and the
    restored score (all thresholds are precomputed: the slider never waits for the kernel);
    the DAC curves of all methods with the current threshold marked; a direction toggle
    (``"dac"``: real pixels pasted into the counterfactual, score p_i; ``"quac"``: the
    reverse, score p_j); and a picker over the pairs.

    References:
        Eckstein, Bates, Jefferis, Funke. Discriminative attribution from counterfactuals.
        arXiv 2109.13412 (2021). https://arxiv.org/abs/2109.13412

    Arguments:
        classifier: an nn.Module, ``classifier(x) -> logits`` (N, C), e.g.
            ``kernel_side.load_pretrained("digits-cnn")``.
        x: the real images (N, *input_shape), or pairs straight from the engine: a
            :class:`~crosslens.kernel_side.CounterfactualResult` (e.g. of
            ``ks.latent_counterfactual``), a :class:`~crosslens.kernel_side.BoundaryPath`
            (its last frames, past the boundary), a
            :class:`~crosslens.kernel_side.BoundaryProjection` (its mirror images) or
            :class:`~crosslens.kernel_side.CounterfactualPairs`. A
            :class:`~crosslens.DrawPad` (or a list mixing pads and inputs) is followed: each
            new drawing gets a new counterfactual (this needs a way to make one: ``generator``,
            ``reference`` or an invertible classifier).
        x_cf: their counterfactuals (N, *input_shape); None: taken from ``x`` when it is an
            engine result, else made ``via`` one of crosslens' sources.
        target: the counterfactual classes. With given counterfactuals: None (their
            predictions), one class or N. With made ones: None (each source's default: the
            runner-up, or the nearest boundary for ``via="boundary"``), one class or a
            sequence of N (None or a class); a target can then be changed from the view.
        class_names: C names for the classes (default ``"0" .. "C-1"``).

    Keyword-only options:
        methods: the methods to compare (default: every one that applies to the classifier;
            see ``kernel_side.DAC_METHODS``).
        via, generator, reference: how counterfactuals are made (see
            :func:`~crosslens.kernel_side.counterfactual_pairs`).
        form: ``"quac"`` or ``"dapi"`` D-attributions (None: the one matching each direction).
        layer: the conv layer of Grad-CAM (default: the last).
        closing, blur: mask post-processing (default ``"auto"``: the authors' settings
            scaled to the image size, none on 8 x 8).
        seed: seeds the random baseline.
        pixel_range: (lo, hi) shown as white..black (default: the inputs' range).

    Traits (read and set them from Python; the view follows):
        index (int): the selected pair.
        target (int or None): its requested counterfactual class (made pairs only).
        method (str): the selected method; threshold (float in [-1, 1], in steps of 0.01);
            direction ("dac" | "quac").
        busy, progress, status, error: read-only state of the kernel's work.

    Example:
        >>> from crosslens import AttributionExplorer, kernel_side as ks
        >>> cnn, flow = ks.load_pretrained("digits-cnn"), ks.load_pretrained("digits-flow")
        >>> found = ks.latent_counterfactual(cnn, flow, ks.load_digits_split()[2][:3])
        >>> explorer = AttributionExplorer(cnn, found)
        >>> explorer.method, explorer.threshold = "d_ig", -1.0
        >>> bool(torch.allclose(explorer.hybrid, explorer.x[0]))  # threshold -1: the whole real image
        True
    """

    _esm = _assets.bundle("attribution_explorer.js")

    method = traitlets.Unicode("d_ig").tag(sync=True)
    threshold = traitlets.Float(0.0).tag(sync=True)
    direction = traitlets.Unicode("dac").tag(sync=True)

    def __init__(self, classifier, x, x_cf=None, target=None, class_names=None, *, methods=None, via=None,
                 generator=None, reference=None, form=None, layer=None, closing="auto", blur="auto", seed: int = 0,
                 pixel_range=None, **unknown):
        self._reject_unknown(unknown)
        self._classifier = classifier
        self._methods = check_methods(classifier, methods, layer)
        self._options = dict(form=form, layer=layer, closing=closing, blur=blur, seed=seed)
        self._make_options = dict(via=via, generator=generator, reference=reference)
        given = x_cf is not None or isinstance(x, CounterfactualPairs) or unpack_pairs(classifier, x)[1] is not None
        if given:
            if via is not None or generator is not None or reference is not None:
                raise TypeError("via, generator and reference make counterfactuals: leave them out when x_cf (or an "
                                "engine result as x) gives them")
            pairs = as_pairs(classifier, x, x_cf, target)
            if len(pairs) < pairs.candidates:
                dropped = sorted(set(range(pairs.candidates)) - set(pairs.index.tolist()))
                raise ValueError(f"x_cf[{dropped[0]}] is classified as the same class as x[{dropped[0]}]: a "
                                 "counterfactual must change the class; drop the pair or pass target=")
            self._requested = [None] * len(pairs)
        else:
            x = check_images(classifier, self._take_inputs(x, getattr(classifier, "input_shape", None)))
            num_classes = self._num_classes(x)
            self._requested = check_requested(target, len(x), num_classes)
            pairs = self._make(x, self._requested, "target" if is_one_target(target) else None)
        self._given = given
        self.default_target = "the counterfactual's class" if given else self._default_words()
        self._x = pairs.x.detach().cpu().float()
        self._input_shape = tuple(self._x.shape[1:])
        self._class_names = check_class_names(class_names, self._num_classes(pairs.x))
        self._pixel_range = self._pixel_range_for(pixel_range, torch.cat([self._x, pairs.x_cf.cpu().float()]))
        self._source, self._targets = pairs.source.cpu(), pairs.target.cpu()
        self._x_cf = pairs.x_cf.detach().cpu().float()
        self._p_source, self._p_target = pairs.p_source.cpu().float(), pairs.p_target.cpu().float()
        self._explained = self._explain_both(pairs.x, pairs.x_cf, pairs.target)
        channels, height, width = image_shape(self._input_shape)
        self._warn_if_large(2 * len(self._methods) * len(self._x) * (height * width * (1 + 4 * channels) + 201 * 8),
                            "pass fewer pairs or fewer methods")
        first = "d_ig" if "d_ig" in self._methods else self._methods[0]
        super().__init__(index=0, target=self._requested[0], method=first)

    # ---- pairs and their explanations -----------------------------------------------------------
    def _num_classes(self, x: torch.Tensor) -> int:
        parameter = next(self._classifier.parameters())
        with torch.no_grad():
            return int(self._classifier(x[:1].to(parameter.device, parameter.dtype)).shape[1])

    def _default_words(self) -> str:
        via = self._make_options["via"]
        boundary = via == "boundary" or (via is None and self._make_options["generator"] is None
                                         and self._make_options["reference"] is None)
        return "the nearest boundary" if boundary else "the runner-up"

    def _make(self, x: torch.Tensor, requested: list, name: str | None = None) -> CounterfactualPairs:
        """Pairs for inputs ``x`` with their ``requested`` targets (None: the source's default),
        in order: every row is kept (the confidences say how sure the classifier is)."""
        parts = []
        defaults = [row for row, value in enumerate(requested) if value is None]
        chosen = [row for row, value in enumerate(requested) if value is not None]
        for rows, target in ((defaults, None), (chosen, [requested[row] for row in chosen])):
            if rows:
                try:
                    parts.append((rows, counterfactual_pairs(self._classifier, x[rows], None, target,
                                                             min_confidence=0, **self._make_options)))
                except ValueError as error:
                    if name and str(error).startswith("target"):
                        raise ValueError(name + str(error)[len("target"):]) from None
                    raise
        order = torch.tensor([row for rows, _ in parts for row in rows]).argsort()
        fields = ("x", "x_cf", "source", "target", "p_source", "p_target")
        merged = {field: torch.cat([getattr(pairs, field) for _, pairs in parts])[order.to(parts[0][1].x.device)]
                  for field in fields}
        if len(merged["x"]) < len(x):
            raise ValueError("x: a counterfactual kept its input's class; pick another target")
        return CounterfactualPairs(**merged, index=torch.arange(len(x)), candidates=len(x),
                                   via=parts[0][1].via, min_confidence=0.0)

    def _explain_both(self, x: torch.Tensor, x_cf: torch.Tensor, target: torch.Tensor) -> dict:
        """What the view draws for pairs (x, x_cf) in each direction, on the CPU. The maps that no
        direction changes (S-methods, random, residual; with a fixed form, all) are computed once."""
        explained, reusable = {}, {}
        for direction in DIRECTIONS:
            explained[direction], maps = self._explain(x, x_cf, target, direction, reusable)
            fixed_form = self._options["form"] is not None
            reusable = {m: a for m, a in maps.items() if fixed_form or m not in STANDARD_OF}
        return explained

    def _explain(self, x: torch.Tensor, x_cf: torch.Tensor, target: torch.Tensor, direction: str,
                 attributions: dict) -> tuple[dict, dict]:
        """What the view draws for pairs (x, x_cf) in ``direction``, on the CPU, and the maps."""
        result = discriminative_attribution(self._classifier, x, x_cf, target, methods=self._methods,
                                            direction=direction, keep_masks=True, attributions=attributions,
                                            **self._options)
        self._mask_settings = (result.closing, result.blur)
        maps = {method: result.attributions[m] for m, method in enumerate(result.methods)}
        return {
            "form": result.form,
            "attributions": result.attributions.detach().cpu().float(),
            "levels": result.masks.sum(2, dtype=torch.uint8),  # (M, N, H, W): mask k holds level > k
            "size": result.mask_size.float(), "scores": result.scores.float(),
            "auc": result.auc.float(), "best": result.best.to(torch.int32),
        }, maps

    def _store(self, rows: list[int], pairs: CounterfactualPairs, requested: list) -> None:
        """Put the new pairs of ``rows`` and their explanations in place (with the lock held)."""
        explained = self._explain_both(pairs.x, pairs.x_cf, pairs.target)
        index = torch.tensor(rows)
        for name, values in (("_x", pairs.x), ("_x_cf", pairs.x_cf), ("_source", pairs.source),
                             ("_targets", pairs.target), ("_p_source", pairs.p_source), ("_p_target", pairs.p_target)):
            updated = getattr(self, name).clone()
            updated[index] = values.detach().cpu().to(updated.dtype)
            setattr(self, name, updated)
        for direction, new in explained.items():
            for key, values in new.items():
                if key != "form":
                    updated = self._explained[direction][key].clone()
                    updated[:, index] = values
                    self._explained[direction][key] = updated
        self._requested = requested

    # ---- kernel work: a new target or a new drawing ----------------------------------------------
    def _check_target(self, row: int, value: int | None, name: str = "target") -> int | None:
        if self._given and value is not None:
            raise ValueError(f"{name} is fixed by the given counterfactuals (x_cf); to choose targets, pass the "
                             "real images with generator= (or via=) and let the explorer make the counterfactuals")
        return super()._check_target(row, value, name)

    def _retarget(self, row: int, new: int | None, old: int | None) -> None:
        self._submit(lambda stop: self._remake([row], self._x[[row]], {row: new}))

    def _follow(self, rows: list[int], x: torch.Tensor) -> None:
        self._remake(rows, x, {})

    def _remake(self, rows: list[int], x: torch.Tensor, changes: dict) -> None:
        """New counterfactuals and explanations for ``rows`` (inputs ``x``), with ``changes`` to
        their requested targets; a request equal to the new prediction falls back to the default."""
        with self._lock:
            requested = list(self._requested)
            for row, value in changes.items():
                requested[row] = value
        parameter = next(self._classifier.parameters())
        with torch.no_grad():
            predicted = self._classifier(x.to(parameter.device, parameter.dtype)).argmax(1).cpu()
        for j, row in enumerate(rows):
            if requested[row] == int(predicted[j]):
                requested[row] = None
        pairs = self._make(x, [requested[row] for row in rows])
        with self._lock:
            self._store(rows, pairs, requested)
            self._show_requested()
            self._publish()

    # ---- payload --------------------------------------------------------------------------------
    def _meta(self) -> dict:
        closing, blur = self._mask_settings
        return {
            "methods": list(self._methods),
            "labels": {method: LABELS[method] for method in self._methods},
            "standard_of": {d: s for d, s in STANDARD_OF.items() if d in self._methods and s in self._methods},
            "forms": {direction: self._explained[direction]["form"] for direction in DIRECTIONS},
            "thresholds": len(dac_thresholds()),
            "closing": closing, "blur": blur,
            "min_confidence": MIN_CONFIDENCE,
            "target_fixed": "fixed by the given counterfactuals" if self._given else "",
            "colors": {method: PALETTE["methods"][method] for method in self._methods},
        }

    def _arrays(self) -> dict:
        arrays = {"x_cf": self._x_cf, "p_source": self._p_source, "p_target": self._p_target}
        for direction, explained in self._explained.items():
            for key, values in explained.items():
                if key != "form":
                    arrays[f"{direction}_{key}"] = values
        return arrays

    # ---- trait validation -----------------------------------------------------------------------
    @traitlets.validate("method")
    def _valid_method(self, proposal):
        return check_choice(proposal["value"], "method", self._methods)

    @traitlets.validate("threshold")
    def _valid_threshold(self, proposal):
        value = float(proposal["value"])
        if not -1.0 <= value <= 1.0:
            raise ValueError(f"threshold must lie in [-1, 1] (attributions are divided by their max |a|), got {value}")
        return round(value, 2)

    @traitlets.validate("direction")
    def _valid_direction(self, proposal):
        return check_choice(proposal["value"], "direction", DIRECTIONS)

    # ---- what the user sees, readable from Python -----------------------------------------------
    @property
    def methods(self) -> tuple[str, ...]:
        return self._methods

    @property
    def x_cf(self) -> torch.Tensor:
        """(N, *input_shape) the counterfactuals."""
        with self._lock:
            return self._x_cf.clone()

    @property
    def form(self) -> str:
        """The D-attribution form of the current direction (``"quac"`` or ``"dapi"``)."""
        return self._explained[self.direction]["form"]

    def _shown(self, key: str) -> torch.Tensor:
        m = self._methods.index(self.method)
        with self._lock:
            return self._explained[self.direction][key][m, self.index].clone()

    @property
    def _k(self) -> int:
        return round((self.threshold + 1) * 100)

    @property
    def attribution(self) -> torch.Tensor:
        """The selected method's map of the selected pair, shape ``input_shape``, in [-1, 1]."""
        return self._shown("attributions")

    @property
    def mask(self) -> torch.Tensor:
        """(H, W) bool, the mask at the current threshold (closed, before blurring)."""
        return self._shown("levels") > self._k

    @property
    def hybrid(self) -> torch.Tensor:
        """The hybrid image at the current threshold: ``m x + (1 - m) x_cf`` (direction
        ``"dac"``) or ``m x_cf + (1 - m) x`` (``"quac"``), m the blurred mask."""
        _, blur = self._mask_settings
        mask = gaussian_blur(self.mask.float()[None], blur)[0]
        with self._lock:
            x, x_cf = self._x[self.index], self._x_cf[self.index]
        pasted, canvas = (x, x_cf) if self.direction == "dac" else (x_cf, x)
        channels, height, width = image_shape(self._input_shape)
        shape = (channels, height, width)
        return (mask * pasted.reshape(shape) + (1 - mask) * canvas.reshape(shape)).reshape(self._input_shape)

    @property
    def score(self) -> float:
        """The restored score of the current mask: ``p_i(hybrid) - p_i(x_cf)`` (``"dac"``) or
        ``p_j(hybrid) - p_j(x)`` (``"quac"``)."""
        return float(self._shown("scores")[self._k])

    @property
    def mask_size(self) -> float:
        """The share of pixels in the current mask."""
        return float(self._shown("size")[self._k])

    @property
    def best_threshold(self) -> float:
        """The threshold of the selected method's best single mask (closest to size 0, score 1)."""
        return round(float(dac_thresholds()[int(self._shown("best"))]), 2)

    @property
    def auc(self) -> dict[str, float]:
        """Each method's area under the DAC curve of the selected pair, in the current direction."""
        with self._lock:
            values = self._explained[self.direction]["auc"][:, self.index]
        return {method: float(values[m]) for m, method in enumerate(self._methods)}

    @property
    def dac_score(self) -> dict[str, float]:
        """Each method's DAC score over all pairs (the mean area), in the current direction."""
        with self._lock:
            values = self._explained[self.direction]["auc"].mean(1)
        return {method: float(values[m]) for m, method in enumerate(self._methods)}

    @property
    def confidences(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(N,) p(i | x) and (N,) p(j | x_cf); the authors keep pairs with both above 0.8."""
        with self._lock:
            return self._p_source.clone(), self._p_target.clone()

    # ---- static figure --------------------------------------------------------------------------
    def to_figure(self, figsize: tuple[float, float] | None = None):
        """A matplotlib Figure of the current view: the pair, the selected method's map, mask
        and hybrid; the DAC curves of every method with the current threshold marked."""
        from matplotlib.figure import Figure

        from ._style import colormap

        n, k = self.index, self._k
        lo, hi = self._pixel_range
        label = LABELS[self.method]
        fig = Figure(figsize=figsize or (13, 5.2), layout="constrained")
        grid = fig.add_gridspec(2, 5, height_ratios=[1, 1.15])
        with self._lock:
            x, x_cf = self._x[n], self._x_cf[n]
            explained = self._explained[self.direction]
        source, target = int(self._source[n]), int(self._targets[n])
        channels, height, width = image_shape(self._input_shape)
        panels = [
            (self._picture(x), "gray_r", f"x ({self._class_names[source]})"),
            (self._picture(x_cf), "gray_r", f"x_cf ({self._class_names[target]})"),
            (self.attribution.reshape(channels, height, width).mean(0).numpy(), colormap("diverging"),
             f"{label} map"),
            (self.mask.float().numpy(), "gray_r", f"mask, thr {self.threshold:+.2f}"),
            (self._picture(self.hybrid), "gray_r", f"hybrid: Δp = {self.score:+.2f}"),
        ]
        for column, (image, cmap, title) in enumerate(panels):
            axis = fig.add_subplot(grid[0, column])
            limits = {"vmin": -1, "vmax": 1} if column == 2 else {"vmin": 0, "vmax": 1} if column == 3 else \
                {"vmin": lo, "vmax": hi}
            axis.imshow(image, cmap=cmap, interpolation="nearest", **limits)
            axis.set_title(title, fontsize=10)
            axis.set_xticks([])
            axis.set_yticks([])
        curve = fig.add_subplot(grid[1, :])
        for m, method in enumerate(self._methods):
            size, scores = explained["size"][m, n].numpy(), explained["scores"][m, n].numpy()
            order = np.argsort(size, kind="stable")
            xs = np.concatenate([[0.0], size[order], [1.0]])
            ys = np.concatenate([[0.0], scores[order], [scores[0]]])
            curve.plot(xs, ys, color=PALETTE["methods"][method], lw=2.5 if method == self.method else 1.2,
                       ls="--" if method in STANDARD_OF.values() else "-",
                       label=f"{LABELS[method]} (AUC {float(explained['auc'][m, n]):.2f})")
            curve.scatter([size[k]], [scores[k]], color=PALETTE["methods"][method], zorder=5, s=18)
        curve.set_xlim(0, 1)
        curve.set_xlabel("mask size (share of pixels)")
        name = self._class_names[source if self.direction == "dac" else target]
        curve.set_ylabel(f"restored Δp({name})")
        curve.legend(frameon=False, fontsize=8, ncols=2, loc="lower right")
        curve.spines[["top", "right"]].set_visible(False)
        self._suptitle(fig, n, f"Eckstein et al. 2021, direction {self.direction}, form {self.form}")
        return fig
