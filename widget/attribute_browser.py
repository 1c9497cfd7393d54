"""AttributeBrowser: browse the attributes a FLINT model explains itself with.

References:
    Parekh, Mozharovskyi, d'Alche-Buc. A framework to learn with interpretation. NeurIPS 2021.
    https://arxiv.org/abs/2010.09345

The engine (:mod:`crosslens.kernel_side.methods.flint`) gives, for the gallery's inputs,
the attributes, the interpreter's prediction and each attribute's local relevance; for the
reference data, the class x attribute relevance table and each attribute's maximum
activating samples (overall and per class); and each attribute's enhanced visualisation
(activation maximisation, batched over the attributes). For 2-feature models the attributes
are drawn as heat maps over the plane instead. Everything travels in ONE payload: tau, the
selected attribute and the class filter are browsed without the kernel.
"""

from __future__ import annotations

import numpy as np
import torch
import traitlets

from . import _assets
from ._checks import check_class_names
from ._explorer import Explorer
from .kernel_side import activation_maximisation, flint_interpretation, global_relevance, maximum_activating_samples
from .kernel_side._checks import check_inputs, check_int, check_real
from .kernel_side._runtime import evaluating
from .kernel_side.methods.boundary import padded_bounds
from .payload import quantized

__all__ = ["AttributeBrowser"]

GALLERY = 24  # inputs shown when x is not given
PLANE_RESOLUTION = 80  # grid points per side of the attribute heat maps of 2-feature models
RELEVANT_CLASS = 0.1  # r_{j,c} above this: the attribute serves the class (the paper's MNIST threshold)


class AttributeBrowser(Explorer):
    """Browse a FLINT model's attributes: why this prediction, which classes each attribute serves, what it looks like.

    For the selected input: the interpreter's prediction and every attribute's local
    relevance r_{j,x} as ranked bars, those above 1/tau marked relevant (a tau slider). For
    the whole model: the class x attribute relevance table r_{j,c}; a cell selects its
    attribute and filters the gallery to its class. For the selected attribute: its maximum
    activating samples (of the filtered class, if any) and its enhanced visualisation
    (activation maximisation from 0.3 x; for 2-feature models, its heat map over the plane).

    References:
        Parekh, Mozharovskyi, d'Alche-Buc. A framework to learn with interpretation.
        NeurIPS 2021. https://arxiv.org/abs/2010.09345

    Arguments:
        flint_model: a FLINT model (``ks.load_pretrained("digits-flint")``, one trained with
            ``ks.fit_flint``, or ``ks.FLINT.post_hoc(...)`` around a frozen classifier).
        x: the inputs of the gallery (default: the first 24 of ``reference``); a
            :class:`~crosslens.DrawPad` (or a list mixing pads and inputs) is followed.
        class_names: C names for the classes.

    Keyword-only options:
        reference: the data of the global table and the maximum activating samples (default: x).
        tau: the local relevance threshold, > 1 (2).
        samples: maximum activating samples per attribute (3).
        pixel_range: (lo, hi) shown as white..black (default: the inputs' range).

    Traits (read and set them from Python; the view follows):
        index: the selected input; tau: the relevance threshold; attribute: the selected
        attribute; class_filter (int or None): the class the gallery and samples show.

    Example:
        >>> from crosslens import AttributeBrowser, kernel_side as ks
        >>> browser = AttributeBrowser(ks.load_pretrained("digits-flint"), reference=ks.load_digits_split()[2])
        >>> browser.tau = 2.0
        >>> len(browser.relevant_attributes) >= 1, tuple(browser.global_relevance.shape)
        (True, (10, 12))
    """

    _esm = _assets.bundle("attribute_browser.js")
    default_target = "the interpreter's prediction"

    tau = traitlets.Float(2.0).tag(sync=True)
    attribute = traitlets.Int(0).tag(sync=True)
    class_filter = traitlets.Int(None, allow_none=True).tag(sync=True)

    def __init__(self, flint_model, x=None, class_names=None, *, reference=None, tau: float = 2.0, samples: int = 3,
                 pixel_range=None, **unknown):
        self._reject_unknown(unknown)
        for attr in ("attributes", "interpret", "interpreter", "num_attributes", "input_shape"):
            if not hasattr(flint_model, attr):
                raise TypeError(f"flint_model must be a FLINT model (ks.FLINT, ks.load_pretrained('digits-flint'), "
                                f"ks.FLINT.post_hoc(...)); {type(flint_model).__name__} lacks {attr}")
        self._model = flint_model
        self._input_shape = tuple(flint_model.input_shape)
        if x is None and reference is None:
            raise TypeError("pass x (the inputs to browse) or reference (the data to browse from)")
        if reference is not None:
            reference = check_inputs(reference, self._input_shape, "reference").detach().cpu().float()
        x = reference[:GALLERY] if x is None else self._take_inputs(x, self._input_shape)
        self._x = check_inputs(x, self._input_shape, "x").detach().cpu().float()
        self._reference = self._x if reference is None else reference
        self._samples = check_int(samples, "samples", minimum=1)
        self._planar = self._input_shape == (2,)
        self._pixel_range = self._pixel_range_for(pixel_range, torch.cat([self._x, self._reference]))
        self._global()
        self._local()
        self._class_names = check_class_names(class_names, int(self._model.num_classes))
        self._requested = [None] * len(self._x)
        super().__init__(index=0, tau=check_real(tau, "tau", 1.0), attribute=int(self._first_attribute()))

    # ---- computation (all math is in kernel_side) ---------------------------------------------
    def _local(self) -> None:
        """The gallery's interpretation: attributes, relevance, predictions of g and f."""
        local = flint_interpretation(self._model, self._x)
        with evaluating(self._model), torch.no_grad():
            self._g_probs = self._model.interpret(self._x).softmax(1).float()
        self._relevance = local.relevance.detach().cpu().float()
        self._source = local.predicted.cpu()
        self._targets = self._source.clone()
        self._f_predicted = local.predicted_f.cpu()

    def _global(self) -> None:
        """The reference's class x attribute table, the samples that activate each attribute
        most (overall and per class), and each attribute's picture."""
        self._table = global_relevance(self._model, self._reference).detach().cpu().float()
        top = maximum_activating_samples(self._model, self._reference, k=self._samples)
        self._top, self._top_by_class = top.indices.cpu(), top.per_class.cpu()
        if self._planar:
            self._bounds = padded_bounds(self._reference, margin=0.1)
            xmin, xmax, ymin, ymax = self._bounds
            xs, ys = torch.linspace(xmin, xmax, PLANE_RESOLUTION), torch.linspace(ymin, ymax, PLANE_RESOLUTION)
            grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)
            with evaluating(self._model), torch.no_grad():
                phi = self._model.attributes(grid)
                self._reference_class = self._model.interpret(self._reference).argmax(1)
            self._pictures = phi.T.reshape(-1, PLANE_RESOLUTION, PLANE_RESOLUTION).float()
        else:
            self._pictures = activation_maximisation(self._model, self._reference.mean(0, keepdim=True)).detach().cpu()

    def _first_attribute(self) -> int:
        return int(self._relevance[0].argmax())

    def _follow(self, rows: list[int], x: torch.Tensor) -> None:
        with self._lock:
            self._x = self._x.clone()
            self._x[rows] = x.cpu().float()
            self._local()
            self._publish()

    def _check_target(self, row: int, value, name: str = "target"):
        if value is not None:
            raise ValueError(f"{name}: an AttributeBrowser explains the interpreter's own prediction; there is no "
                             "target to choose")
        return value

    # ---- payload --------------------------------------------------------------------------------
    def _meta(self) -> dict:
        meta = {"kind": "planar" if self._planar else "image", "num_attributes": int(self._model.num_attributes),
                "relevant_class": RELEVANT_CLASS, "target_fixed": "FLINT explains its interpreter's own prediction",
                "post_hoc": bool(getattr(self._model, "post_hoc", False))}
        if self._planar:
            meta["bounds"] = list(self._bounds)
        return meta

    def _arrays(self) -> dict:
        used = sorted({int(i) for i in self._top.flatten().tolist() + self._top_by_class.flatten().tolist() if i >= 0})
        remap = torch.full((len(self._reference),), -1, dtype=torch.long)
        remap[used] = torch.arange(len(used))
        lookup = lambda indices: torch.where(indices >= 0, remap[indices.clamp_min(0)], indices)  # noqa: E731
        arrays = {
            "g_probs": quantized(self._g_probs, "uint16", (0.0, 1.0)),
            "f_predicted": self._f_predicted,
            "relevance": self._relevance,
            "table": self._table,
            "samples": self._reference[used],
            "top": lookup(self._top),
            "top_by_class": lookup(self._top_by_class),
            "pictures": self._pictures,
        }
        if self._planar:
            arrays["reference"] = self._reference
            arrays["reference_class"] = self._reference_class
        return arrays

    # ---- trait validation -----------------------------------------------------------------------
    @traitlets.validate("tau")
    def _valid_tau(self, proposal):
        return check_real(proposal["value"], "tau", 1.0)

    @traitlets.validate("attribute")
    def _valid_attribute(self, proposal):
        return check_int(proposal["value"], "attribute", minimum=0, maximum=int(self._model.num_attributes) - 1)

    @traitlets.validate("class_filter")
    def _valid_class_filter(self, proposal):
        value = proposal["value"]
        if value is None:
            return None
        return check_int(value, "class_filter", minimum=0, maximum=int(self._model.num_classes) - 1)

    # ---- what the user sees, readable from Python ------------------------------------------------
    @property
    def relevance(self) -> torch.Tensor:
        """(J,) the selected input's local relevance r_{j,x}."""
        with self._lock:
            return self._relevance[self.index].clone()

    @property
    def relevant_attributes(self) -> list[int]:
        """The selected input's attributes with r_{j,x} > 1/tau, most relevant first."""
        relevance = self.relevance
        order = relevance.argsort(descending=True).tolist()
        return [j for j in order if relevance[j] > 1 / self.tau]

    @property
    def global_relevance(self) -> torch.Tensor:
        """(C, J) r_{j,c} over the reference data."""
        return self._table.clone()

    @property
    def classes_of_attribute(self) -> list[int]:
        """The classes the selected attribute serves (r_{j,c} > 0.1)."""
        return (self._table[:, self.attribute] > RELEVANT_CLASS).nonzero().flatten().tolist()

    @property
    def top_samples(self) -> torch.Tensor:
        """(k, *input_shape) the selected attribute's maximum activating reference samples (of
        ``class_filter`` when set; fewer when the class has fewer samples)."""
        indices = self._top[self.attribute] if self.class_filter is None else \
            self._top_by_class[self.class_filter, self.attribute]
        return self._reference[indices[indices >= 0]].clone()

    @property
    def picture(self) -> torch.Tensor:
        """The selected attribute's enhanced visualisation (activation maximisation), or its
        heat map over the plane for 2-feature models."""
        return self._pictures[self.attribute].clone()

    @property
    def gallery_rows(self) -> list[int]:
        """The inputs the gallery shows: all, or those the interpreter predicts as ``class_filter``."""
        if self.class_filter is None:
            return list(range(len(self._x)))
        return (self._source == self.class_filter).nonzero().flatten().tolist()

    # ---- static figure --------------------------------------------------------------------------
    def to_figure(self, figsize: tuple[float, float] | None = None):
        """A matplotlib Figure of the current view: the input and its relevance bars, the class x
        attribute table, and the selected attribute's samples and picture."""
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle

        from ._style import colormap

        n, j = self.index, self.attribute
        fig = Figure(figsize=figsize or (13, 4), layout="constrained")
        grid = fig.add_gridspec(2, 5, width_ratios=[1, 1.4, 2.2, 1, 1])
        lo, hi = self._pixel_range
        image = fig.add_subplot(grid[:, 0])
        if self._planar:
            image.scatter(*self._reference.T.numpy(), s=4, c="#9e9e9e")
            image.scatter(*self._x[n].numpy(), s=60, c="#ef6c00")
        else:
            image.imshow(self._picture(self._x[n]), cmap="gray_r", vmin=lo, vmax=hi, interpolation="nearest")
            image.set_xticks([])
            image.set_yticks([])
        image.set_title(f"g predicts {self._class_names[int(self._source[n])]}", fontsize=10)
        bars = fig.add_subplot(grid[:, 1])
        relevance = self.relevance.numpy()
        order = np.argsort(-relevance)
        colors = ["#ef6c00" if relevance[k] > 1 / self.tau else "#9e9e9e" for k in order]
        bars.barh(np.arange(len(order)), relevance[order], color=colors)
        bars.set_yticks(np.arange(len(order)), [f"φ{k}" for k in order], fontsize=7)
        bars.invert_yaxis()
        bars.axvline(1 / self.tau, color="#424242", lw=1, ls=":")
        bars.set_title(f"local relevance (tau {self.tau:g})", fontsize=10)
        table = fig.add_subplot(grid[:, 2])
        limit = float(self._table.abs().max()) or 1.0
        table.imshow(self._table.numpy(), cmap=colormap("diverging"), vmin=-limit, vmax=limit, aspect="auto")
        table.set_yticks(range(len(self._class_names)), self._class_names, fontsize=7)
        table.set_xticks(range(self._table.shape[1]), [f"φ{k}" for k in range(self._table.shape[1])], fontsize=7)
        table.set_title("global relevance r(j, c)", fontsize=10)
        table.add_patch(Rectangle((j - 0.5, -0.5), 1, len(self._class_names), fill=False, ec="#ef6c00", lw=2))
        picture = fig.add_subplot(grid[:, 4])
        if self._planar:
            xmin, xmax, ymin, ymax = self._bounds
            picture.imshow(self.picture.numpy(), origin="lower", extent=(xmin, xmax, ymin, ymax),
                           cmap=colormap("sequential"), aspect="auto")
        else:
            picture.imshow(self._picture(self.picture), cmap="gray_r", vmin=lo, vmax=hi, interpolation="nearest")
        picture.set_title(f"φ{j} enhanced", fontsize=10)
        samples = self.top_samples
        for i in range(min(2, len(samples))):
            axis = fig.add_subplot(grid[i, 3])
            if self._planar:
                axis.scatter(*samples[i].numpy(), s=30)
            else:
                axis.imshow(self._picture(samples[i]), cmap="gray_r", vmin=lo, vmax=hi, interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_title(f"top sample {i + 1}", fontsize=9)
        picture.set_xticks([])
        picture.set_yticks([])
        fig.suptitle(f"input {n}: FLINT attributes (Parekh et al. 2021)", fontsize=11)
        return fig
