"""BoundaryExplorer: walk inputs across and along the decision boundary of an invertible classifier.

References:
    Zhuang, Dvornek, Li, Yang, Duncan. Decision explanation and feature importance for
    invertible networks. ICCV Workshops 2019. https://arxiv.org/abs/1910.00406

The engine (:mod:`crosslens.kernel_side`) does the math: it projects each input onto the
boundary in feature space, inverts whole paths of frames in one batch and, for 2-feature
models, grids the decision regions and traces the exact boundary curves. This module only
calls it, packs the results into ONE binary payload (:mod:`crosslens.payload`) and keeps the
view state (``t``, ``index``, ``direction``, ``amount``, ``target``) in traits, so that the
browser scrubs without the kernel and Python can read and set what the user sees.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import traitlets

from . import _assets, kernel_side as ks
from ._checks import check_class_names, check_requested, image_shape
from ._explorer import Explorer
from ._style import CLASS_COLORS, colormap
from .kernel_side._checks import check_choice, check_inputs, check_int, check_invertible_classifier
from .payload import quantized

__all__ = ["BoundaryExplorer"]

OVERLAYS = ("difference", "importance")


def _as_cpu(values: torch.Tensor) -> torch.Tensor:
    return values.detach().to("cpu", torch.float32)


class BoundaryExplorer(Explorer):
    """Explore how an invertible classifier's decision changes across and along its boundary.

    For each input x the engine projects z = T(x) onto the boundary hyperplane between the
    predicted class and the target class, z_p, and inverts the straight feature-space path
    ``z(t) = z + t (z_p - z)``: t = 0 is x, t = 1 lies exactly on the boundary (the nearest
    "undecided" version of x), t = 2 is its mirror image on the other side. Moving *along*
    the boundary adds ``a * sigma_k * u_k``, with u_k the top principal directions of the
    ``reference`` features inside the boundary hyperplane (``boundary_sweep``). All frames are
    computed once and sent in one binary payload; sliders never wait for the kernel. Only a
    new target is computed in the kernel again (for the selected input only).

    References:
        Zhuang, Dvornek, Li, Yang, Duncan. Decision explanation and feature importance for
        invertible networks. ICCV Workshops 2019. https://arxiv.org/abs/1910.00406

    Arguments:
        model: an invertible classifier (``features``, ``inverse``, a linear ``head``,
            ``input_shape``), e.g. ``kernel_side.load_pretrained("digits-invertible")``.
        x: one input of shape ``model.input_shape`` or a batch (N, *input_shape). Images
            (input_shape with 2+ dimensions) are shown as pictures with a picker; 2-feature
            inputs (input_shape ``(2,)``) as points on a map of the decision regions. A
            :class:`~crosslens.DrawPad` (or a list mixing pads and inputs) is followed: after
            each drawing the explorer recomputes that input's paths (in the background; see
            ``busy`` and :meth:`wait`); a requested target that the new drawing is predicted
            as falls back to the nearest boundary.
        target: None (each input's nearest boundary), one class index for every input, or a
            sequence of N (None or a class index each).
        class_names: C names for the classes (default ``"0" .. "C-1"``).
        steps: frames per path, t = linspace(0, t_max, steps). The default 65 over [0, 2]
            holds t = 0, 1 (the boundary) and 2 (the mirror) exactly.
        t_max: end of the path (2.0: the mirror point).
        reference: inputs whose features give the along-boundary directions and, on 2-D
            maps, the background points (e.g. the training set; default: x itself).

    Keyword-only options:
        n_directions: along-boundary directions K (default 2 for images, 0 for 2-D maps:
            the plain across path; at most D - 1).
        amounts: along positions in units of the reference features' std (default
            ``linspace(-1, 1, 9)``).
        resolution: decision-region grid size of 2-D maps (default 200).
        pixel_range: (lo, hi) value range shown as white..black (default: the inputs' range).
        dtype: compute the paths in this dtype (e.g. ``torch.float64`` or ``"float64"``);
            frames are sent as uint8 and probabilities as uint16 either way.
        importance_at: where the first-order importance is expanded, ``"projection"`` (x_p,
            default: no constant term there) or ``"input"`` (x); the view shows the share of
            the score gap first order misses. Frames outside ``pixel_range`` (inverted
            feature points need not be valid inputs) are drawn clipped, and the view says so.

    Traits (read and set them from Python; the view follows):
        t (float): position across the boundary in [0, t_max]; the nearest frame is shown.
        index (int): the selected input.
        direction (int), amount (float): along-boundary direction and position (in std).
        target (int or None): target class of the selected input (None: nearest boundary).
            Setting it recomputes that input's paths; a bad value raises and changes nothing.
        overlay ("difference" | "importance"), opacity (float in [0, 1]): the overlay map.
        busy (bool), error (str): read-only status shown by the front end (see
            :class:`~crosslens._explorer.Explorer` for the traits every explorer shares).

    Example:
        >>> from crosslens import BoundaryExplorer, kernel_side as ks
        >>> model = ks.load_pretrained("digits-invertible")
        >>> explorer = BoundaryExplorer(model, ks.load_digits_split()[2][:4])
        >>> explorer.t = 1.0  # on the boundary: the two classes tie
        >>> probs, source, target = explorer.probabilities, explorer.predicted[0], explorer.targets[0]
        >>> tuple(explorer.frame.shape), round(float(probs[source]), 2) == round(float(probs[target]), 2)
        ((1, 8, 8), True)
    """

    _esm = _assets.bundle("boundary_explorer.js")
    default_target = "the nearest boundary"

    t = traitlets.Float(0.0).tag(sync=True)
    direction = traitlets.Int(0).tag(sync=True)
    amount = traitlets.Float(0.0).tag(sync=True)
    overlay = traitlets.Unicode("difference").tag(sync=True)
    opacity = traitlets.Float(0.7).tag(sync=True)

    def __init__(self, model, x, target=None, class_names=None, steps: int = 65, t_max: float = 2.0,
                 reference=None, *, n_directions: int | None = None, amounts=None, resolution: int = 200,
                 pixel_range: tuple[float, float] | None = None, dtype=None, importance_at: str = "projection",
                 **unknown):
        self._reject_unknown(unknown)
        check_invertible_classifier(model)
        self._model = model
        self._input_shape = tuple(int(size) for size in model.input_shape)
        self._num_classes = int(model.head.out_features)
        self._class_names = check_class_names(class_names, self._num_classes)
        self._planar = self._input_shape == (2,)
        self._x = _as_cpu(check_inputs(self._take_inputs(x, self._input_shape), self._input_shape, "x"))
        self._reference = None if reference is None else _as_cpu(check_inputs(reference, self._input_shape, "reference"))
        self._requested = check_requested(target, len(self._x), self._num_classes)
        self._steps, self._t_max, self._dtype, self._importance_at = steps, t_max, dtype, importance_at
        self._n_directions = self._check_n_directions(n_directions)
        self._amounts = amounts
        self._pixel_range = self._pixel_range_for(pixel_range, self._x)
        along = 9 if amounts is None else len(torch.as_tensor(amounts).reshape(-1))
        frames = len(self._x) * max(self._n_directions, 1) * (along if self._n_directions else 1) * int(steps)
        self._warn_if_large(frames * (math.prod(self._input_shape) * (4 if self._planar else 1) + 2 * self._num_classes),
                            "pass fewer inputs x, fewer steps, n_directions=0 or fewer amounts")

        rows = self._compute_rows(list(range(len(self._x))), self._requested)
        self._t_grid, self._amount_grid = rows.pop("t"), rows.pop("amounts")
        self._rows = rows
        self._source, self._targets = rows["source"], rows["target"]
        self._extras = self._planar_extras(resolution) if self._planar else {}
        center = int((self._amount_grid.abs()).argmin())
        super().__init__(t=0.0, index=0, direction=0, amount=float(self._amount_grid[center]),
                         target=self._requested[0])

    # ---- argument checks ----------------------------------------------------------------
    def _check_n_directions(self, n_directions) -> int:
        dims = math.prod(self._input_shape)
        if n_directions is None:
            return 0 if self._planar or (self._reference is None and len(self._x) < 3) else min(2, dims - 1)
        return check_int(n_directions, "n_directions", minimum=0, maximum=dims - 1)

    # ---- computation (all math is in kernel_side) ---------------------------------------
    def _compute_rows(self, rows: list[int], requested: list[int | None]) -> dict[str, torch.Tensor]:
        """Paths of the given input rows: per-row tensors on the CPU, plus the t/amount grids.

        Rows heading for their nearest boundary and rows with a chosen target are two batched
        engine calls at most.
        """
        groups = {"auto": [i for i, r in enumerate(requested) if r is None],
                  "chosen": [i for i, r in enumerate(requested) if r is not None]}
        parts: dict[str, list] = {}
        order: list[int] = []
        out: dict[str, torch.Tensor] = {}
        for kind, members in groups.items():
            if not members:
                continue
            x = self._x[[rows[i] for i in members]]
            target = None if kind == "auto" else torch.tensor([requested[i] for i in members])
            if self._n_directions > 0:
                result = ks.boundary_sweep(
                    self._model, x, target, reference=self._x if self._reference is None else self._reference,
                    n_directions=self._n_directions, amounts=self._amounts, steps=self._steps, t_max=self._t_max,
                    dtype=self._dtype, importance_at=self._importance_at,
                )
                frames, probs, amounts = result.frames, result.probs, result.amounts
            else:
                result = ks.boundary_path(self._model, x, target, steps=self._steps, t_max=self._t_max, dtype=self._dtype,
                                          importance_at=self._importance_at)
                frames, probs = result.frames[:, None, None], result.probs[:, None, None]
                amounts = torch.zeros(1)
            projection = result.projection
            fields = {
                "frames": frames, "probs": probs, "x_proj": projection.x_proj, "importance": projection.importance,
                "taylor_residual": projection.relative_taylor_error,
                "source": projection.source, "target": projection.target,
            }
            for name, value in fields.items():
                parts.setdefault(name, []).append(value.detach().cpu())
            order += members
            out["t"], out["amounts"] = _as_cpu(result.t), _as_cpu(amounts)
        inverse = torch.empty(len(order), dtype=torch.long)
        inverse[torch.tensor(order)] = torch.arange(len(order))
        for name, chunks in parts.items():
            merged = torch.cat(chunks)[inverse]
            out[name] = merged.long() if name in ("source", "target") else merged.float()
        return out

    def _planar_extras(self, resolution: int) -> dict:
        # The map shows the inputs, the reference points and every boundary point, in a
        # square box so that distances look the same in both directions.
        points = [self._x, self._rows["x_proj"]] + ([] if self._reference is None else [self._reference])
        xmin, xmax, ymin, ymax = ks.padded_bounds(torch.cat(points), margin=0.06)
        half = max(xmax - xmin, ymax - ymin) / 2
        cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
        bounds = (cx - half, cx + half, cy - half, cy + half)
        regions = ks.decision_regions(self._model, bounds, resolution=resolution)
        curves = ks.boundary_curves(self._model, bounds)
        return {"bounds": bounds, "regions": regions, "curves": curves}

    # ---- payload ------------------------------------------------------------------------
    def _meta(self) -> dict:
        meta = {"kind": "planar" if self._planar else "image", "importance_at": self._importance_at}
        if self._planar:
            meta["bounds"] = list(self._extras["bounds"])
        return meta

    def _arrays(self) -> dict:
        rows = self._rows
        arrays = {"t": self._t_grid, "amounts": self._amount_grid, "x_proj": rows["x_proj"],
                  "probs": quantized(rows["probs"], "uint16", (0.0, 1.0))}
        if self._planar:
            curves = self._extras["curves"]
            points = torch.cat([c.points.detach().cpu() for c in curves]) if curves else torch.zeros(0, 2)
            arrays.update({
                "frames": rows["frames"],
                "region_probs": quantized(self._extras["regions"].probs, "uint8", (0.0, 1.0)),
                "curve_points": points, "curve_offsets": np.cumsum([0] + [len(c.points) for c in curves]),
            })
            if self._reference is not None:
                arrays["reference"] = self._reference
        else:
            lo, hi = self._pixel_range
            margin = 0.5 * (hi - lo)
            # The difference overlay is scaled by the explanation x - x_proj: full color at
            # t = 1, clipped beyond.
            difference = (self._x - rows["x_proj"]).flatten(1).abs().amax(1)
            arrays.update({
                # Frames outside the shown range are clipped to it (plus a margin): the display
                # clamps them anyway; ``frame`` reads the exact float values.
                "frames": quantized(rows["frames"], "uint8", (lo - margin, hi + margin)),
                "importance": rows["importance"],
                "importance_limit": rows["importance"].flatten(1).abs().amax(1).clamp_min(1e-12),
                "taylor_residual": rows["taylor_residual"],
                "difference_limit": difference.clamp_min(1e-12),
            })
        return arrays

    # ---- trait validation and observers -------------------------------------------------
    @traitlets.validate("t")
    def _valid_t(self, proposal):
        value = float(proposal["value"])
        if not 0.0 <= value <= self._t_max * (1 + 1e-6):
            raise ValueError(f"t must lie in [0, {self._t_max}] (t = 1 is the boundary), got {value}")
        return value

    @traitlets.validate("direction")
    def _valid_direction(self, proposal):
        value = proposal["value"]
        count = max(self._n_directions, 1)
        if not 0 <= value < count:
            raise ValueError(f"direction must lie in [0, {count - 1}] ({self._n_directions} along-boundary directions), got {value}")
        return value

    @traitlets.validate("amount")
    def _valid_amount(self, proposal):
        value = float(proposal["value"])
        lo, hi = float(self._amount_grid.min()), float(self._amount_grid.max())
        if not lo - 1e-6 <= value <= hi + 1e-6:
            raise ValueError(f"amount must lie in [{lo}, {hi}] (standard deviations along the boundary), got {value}")
        return value

    @traitlets.validate("overlay")
    def _valid_overlay(self, proposal):
        return check_choice(proposal["value"], "overlay", OVERLAYS)

    @traitlets.validate("opacity")
    def _valid_opacity(self, proposal):
        value = float(proposal["value"])
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"opacity must lie in [0, 1], got {value}")
        return value

    def _retarget(self, row: int, new: int | None, old: int | None) -> None:
        """Recompute input ``row``'s paths for ``new`` (synchronously; the view shows busy).
        A failure puts the old target back, shows the error and raises it. Holds the lock:
        a drawing followed meanwhile (:meth:`_follow`) waits, and vice versa."""
        with self._lock:
            self.set_trait("busy", True)
            try:
                rows = self._compute_rows([row], [new])
            except Exception as error:
                with self._quietly():
                    self.target = old
                with self.hold_sync():
                    self.set_trait("error", str(error))
                    self.set_trait("busy", not self._idle.is_set())
                raise
            self._store_rows([row], rows)
            self._requested[row] = new
            with self.hold_sync():
                self._payload = self._pack()
                self.set_trait("error", "")
                self.set_trait("busy", not self._idle.is_set())

    def _store_rows(self, which: list[int], computed: dict[str, torch.Tensor]) -> None:
        """Put freshly computed rows in place: new tensors, so a reader never sees half of them."""
        rows = {name: value.clone() for name, value in self._rows.items()}
        for name, value in computed.items():
            if name in rows:
                rows[name][which] = value
        self._rows = rows
        self._source, self._targets = rows["source"], rows["target"]

    def _follow(self, rows: list[int], x: torch.Tensor) -> None:
        """New drawings for inputs ``rows``: recompute their paths (all inputs' when the along
        directions come from the inputs themselves). A requested target that the new drawing
        is already predicted as falls back to the nearest boundary."""
        with self._lock:  # serialised with _retarget
            previous = self._x
            self._x = previous.clone()
            self._x[rows] = x.to(self._x)
            which = list(range(len(self._x))) if self._reference is None and self._n_directions > 0 else rows
            requested = list(self._requested)
            try:
                try:
                    computed = self._compute_rows(which, [requested[r] for r in which])
                except ValueError as error:  # the drawing is now predicted as its requested target
                    if not str(error).startswith("target must differ"):
                        raise
                    for row in rows:
                        requested[row] = None
                    computed = self._compute_rows(which, [requested[r] for r in which])
            except Exception:
                self._x = previous
                raise
            self._store_rows(which, computed)
            self._requested = requested
            self._show_requested()
            self._publish()

    # ---- what the user sees, readable from Python ---------------------------------------
    def _position(self) -> tuple[int, int, int, int]:
        """(index, direction, amount index, t index) of the frame on show (nearest grid points)."""
        ti = int((self._t_grid - self.t).abs().argmin())
        ai = int((self._amount_grid - self.amount).abs().argmin())
        return self.index, min(self.direction, self._rows["frames"].shape[1] - 1), ai, ti

    @property
    def frame(self) -> torch.Tensor:
        """The frame on show, shape ``input_shape`` (float32, CPU): the path frame at the grid
        point nearest to ``t`` (no interpolation), for the selected input, direction and amount.
        For 2-feature models it is the current position on the map."""
        return self._rows["frames"][self._position()].clone()

    @property
    def probabilities(self) -> torch.Tensor:
        """(C,) class probabilities of the frame on show."""
        return self._rows["probs"][self._position()].clone()

    @property
    def t_values(self) -> torch.Tensor:
        """(steps,) the t grid of the frames."""
        return self._t_grid.clone()

    @property
    def amount_values(self) -> torch.Tensor:
        """(A,) the along-boundary grid, in reference standard deviations."""
        return self._amount_grid.clone()

    @property
    def frames(self) -> torch.Tensor:
        """(N, K, A, steps, *input_shape) every frame (K = A = 1 without along directions)."""
        return self._rows["frames"].clone()

    @property
    def x_proj(self) -> torch.Tensor:
        """(N, *input_shape) each input's projection onto the boundary (t = 1)."""
        return self._rows["x_proj"].clone()

    # ---- static figure ------------------------------------------------------------------
    def to_figure(self, figsize: tuple[float, float] | None = None):
        """A matplotlib Figure of the current view (for papers, slides and static exports).

        Images: the input, the frame, the overlay and the probability bars. 2-feature models:
        the map (decision regions, boundary curves, points, the selected path) and the bars.
        """
        from matplotlib.figure import Figure

        n, k, a, ti = self._position()
        probs = self._rows["probs"][n, k, a, ti].numpy()
        if self._planar:
            fig = Figure(figsize=figsize or (9.5, 4.6), layout="constrained")
            grid = fig.add_gridspec(1, 2, width_ratios=[1.6, 1])
            self._draw_map(fig.add_subplot(grid[0]), n, k, a, ti)
            bars = fig.add_subplot(grid[1])
        else:
            fig = Figure(figsize=figsize or (11, 3.2), layout="constrained")
            grid = fig.add_gridspec(1, 4, width_ratios=[1, 1, 1, 1.3])
            self._draw_images([fig.add_subplot(grid[i]) for i in range(3)], n, k, a, ti)
            bars = fig.add_subplot(grid[3])
        self._draw_probabilities(bars, probs, int(self._source[n]), int(self._targets[n]),
                                 f"probabilities at t = {float(self._t_grid[ti]):.2f}")
        self._suptitle(fig, n, "Zhuang et al. 2019")
        return fig

    def _draw_images(self, axes, n, k, a, ti) -> None:
        lo, hi = self._pixel_range
        channels, height, width = image_shape(self._input_shape)
        picture = self._picture
        x, frame = self._x[n], self._rows["frames"][n, k, a, ti]
        if self.overlay == "importance":
            signed = self._rows["importance"][n]
            title = (f"importance at {'x_p' if self._importance_at == 'projection' else 'x'} "
                     f"(misses {100 * float(self._rows['taylor_residual'][n]):.0f} % of the gap)")
        else:
            signed, title = x - frame, "x − frame"
        signed = signed.reshape(channels, height, width).mean(0).numpy()
        limit = float(np.abs(signed).max()) or 1.0
        gray = {"cmap": "gray_r", "vmin": lo, "vmax": hi, "interpolation": "nearest"}
        axes[0].imshow(picture(x), **gray)
        axes[0].set_title("input x", fontsize=10)
        axes[1].imshow(picture(frame), **gray)
        outside = float(((frame < lo) | (frame > hi)).float().mean())
        clipped = f"\n{100 * outside:.0f} % of pixels outside [{lo:g}, {hi:g}], drawn clipped" if outside else ""
        axes[1].set_title(f"frame at t = {float(self._t_grid[ti]):.2f}{clipped}", fontsize=10 if not outside else 8)
        axes[2].imshow(picture(x), **gray)
        image = axes[2].imshow(signed, cmap=colormap("diverging"), vmin=-limit, vmax=limit, alpha=self.opacity,
                               interpolation="nearest")
        axes[2].set_title(title, fontsize=10 if self.overlay != "importance" else 8)
        axes[2].figure.colorbar(image, ax=axes[2], shrink=0.8)
        for axis in axes:
            axis.set_xticks([])
            axis.set_yticks([])

    def _draw_map(self, axis, n, k, a, ti) -> None:
        from matplotlib.colors import to_rgb

        extras = self._extras
        regions = extras["regions"]
        probs = regions.probs.detach().cpu().numpy()
        classes = probs.shape[-1]
        top = probs.argmax(-1)
        confidence = (probs.max(-1) - 1 / classes) / (1 - 1 / classes)
        palette = np.array([to_rgb(CLASS_COLORS[c % len(CLASS_COLORS)]) for c in range(classes)])
        alpha = (0.12 + 0.5 * confidence.clip(0, 1))[..., None]
        image = (1 - alpha) + alpha * palette[top]
        xmin, xmax, ymin, ymax = extras["bounds"]
        axis.imshow(image, origin="lower", extent=(xmin, xmax, ymin, ymax), interpolation="bilinear", aspect="auto")
        for curve in extras["curves"]:
            points = curve.points.detach().cpu().numpy()
            axis.plot(points[:, 0], points[:, 1], color="#212121", lw=1.8)
        if self._reference is not None:
            axis.scatter(self._reference[:, 0], self._reference[:, 1], s=4, color="#212121", alpha=0.2, lw=0)
        source = self._rows["source"].numpy()
        axis.scatter(self._x[:, 0], self._x[:, 1], s=12, c=[CLASS_COLORS[c % len(CLASS_COLORS)] for c in source],
                     edgecolors="white", linewidths=0.4)
        path = self._rows["frames"][n, k, a].numpy()
        boundary = int((self._t_grid - 1.0).abs().argmin())
        axis.plot(path[: boundary + 1, 0], path[: boundary + 1, 1], color="#212121", lw=2)
        axis.plot(path[boundary:, 0], path[boundary:, 1], color="#212121", lw=2, ls="--")
        axis.scatter(*self._x[n].numpy(), s=120, facecolors="none", edgecolors="#212121", linewidths=1.8)
        axis.scatter(*path[ti], s=70, color=CLASS_COLORS[int(self._rows["probs"][n, k, a, ti].argmax()) % len(CLASS_COLORS)],
                     edgecolors="#212121", linewidths=1.2, zorder=5)
        axis.set_xlim(xmin, xmax)
        axis.set_ylim(ymin, ymax)
        axis.set_title("decision regions, boundary and the selected path", fontsize=10)
