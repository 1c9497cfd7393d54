"""AdversarialExplorer: the segments a small attack pushes hardest on, explored live.

References:
    Rahnama, Tseng. An adversarial approach for explaining the predictions of deep neural
    networks. CVPR Workshops 2021. https://arxiv.org/abs/2005.10284

The engine (:func:`crosslens.kernel_side.adversarial_explanation`) runs the attack, records
its path and segments the images; :func:`~crosslens.kernel_side.methods.axai.tail_sweep`
ranks the segments at every tail percentage at once. This module packs it into ONE payload:
the path (frames and probabilities per step), the perturbation, each value's first kept tail
(one byte per value holds every tail's filter), the segments and the rankings at every tail.
The tail and K sliders, the step slider and the segment highlight work without the kernel;
a new eps, number of steps, target or drawing recomputes in the kernel (a background job).
"""

from __future__ import annotations

import numpy as np
import torch
import traitlets

from . import _assets
from ._checks import check_class_names, check_requested, image_shape, is_one_target
from ._explorer import Explorer
from .kernel_side._checks import check_choice, check_int, check_real
from .kernel_side.methods.axai import NORMS, SEGMENTERS, adversarial_explanation, tail_sweep
from .kernel_side.methods.pairs import check_images
from .payload import quantized

__all__ = ["AdversarialExplorer"]

TAILS = torch.arange(1, 51, dtype=torch.float64) / 100  # the tail slider: 1 % .. 50 %


class AdversarialExplorer(Explorer):
    """Explain predictions by the image segments a small adversarial attack pushes hardest on (AXAI).

    For each input the attack (L2 PGD on the explained class, ``steps`` steps of size
    ``alpha`` within ``eps``) is recorded step by step; its perturbation's per-channel tails
    mark the strongly attacked pixels, and each segment scores the share of its pixels that
    are strongly attacked. The view shows the image with its segments and the top K
    highlighted, the tail-filtered perturbation, a step slider over the attack path (the
    adversarial image and its prediction), and the segment scores as a ranked bar list;
    hovering a segment (or its bar) highlights it. The tail and K sliders work without the
    kernel; eps and steps recompute there (debounced), as do a new target or drawing.

    References:
        Rahnama, Tseng. An adversarial approach for explaining the predictions of deep neural
        networks. CVPR Workshops 2021. https://arxiv.org/abs/2005.10284

    Arguments:
        classifier: an nn.Module, ``classifier(x) -> logits`` (N, C).
        x: images (N, *input_shape) or one image; a :class:`~crosslens.DrawPad` (or a list
            mixing pads and images) is followed.
        target: the class explained: None (each input's prediction), one class or a sequence
            of N (None or a class).
        class_names: C names for the classes (default ``"0" .. "C-1"``).

    Keyword-only options:
        eps, alpha, steps, norm: the attack (0.2, 0.001, 20, ``"l2"``; ``"linf"``).
        segments: the segmentation (see :func:`~crosslens.kernel_side.segment_images`) or an
            integer map (H, W) or (N, H, W).
        tail: the share kept in each tail (0.15); k: the segments kept (5).
        pixel_range: (lo, hi) of the images (default: their range).

    Traits (read and set them from Python; the view follows):
        index, target: the selected input and its explained class (None: the prediction).
        tail (float in [0.01, 0.5], steps of 0.01), k (int): the explanation shown.
        eps (float), steps (int): the attack; setting them recomputes every input.
        step (int in [0, steps]): the point of the attack path shown.
        busy, progress, status, error: read-only state of the kernel's work.

    Example:
        >>> from crosslens import AdversarialExplorer, kernel_side as ks
        >>> explorer = AdversarialExplorer(ks.load_pretrained("digits-cnn"), ks.load_digits_split()[2][:3])
        >>> explorer.k, explorer.tail = 3, 0.2
        >>> int(explorer.top_k.sum()), len(explorer.segment_scores)  # 3 blocks of 2 x 2 pixels, of 16
        (12, 16)
    """

    _esm = _assets.bundle("adversarial_explorer.js")
    default_target = "the predicted class"

    tail = traitlets.Float(0.15).tag(sync=True)
    k = traitlets.Int(5).tag(sync=True)
    eps = traitlets.Float(0.2).tag(sync=True)
    steps = traitlets.Int(20).tag(sync=True)
    step = traitlets.Int(20).tag(sync=True)

    def __init__(self, classifier, x, target=None, class_names=None, *, eps: float = 0.2, alpha: float = 0.001,
                 steps: int = 20, norm: str = "l2", segments="auto", tail: float = 0.15, k: int = 5,
                 pixel_range=None, **unknown):
        self._reject_unknown(unknown)
        self._classifier = classifier
        x = check_images(classifier, self._take_inputs(x, getattr(classifier, "input_shape", None)))
        self._x = x.detach().cpu().float()
        self._input_shape = tuple(self._x.shape[1:])
        self._pixel_range = self._pixel_range_for(pixel_range, self._x)
        with torch.no_grad():
            num_classes = int(classifier(x[:1]).shape[1])
        self._class_names = check_class_names(class_names, num_classes)
        self._requested = check_requested(target, len(self._x), num_classes)
        self._attack = {"alpha": check_real(alpha, "alpha", 0.0), "norm": check_choice(norm, "norm", NORMS)}
        if isinstance(segments, str):
            check_choice(segments, "segments", SEGMENTERS)
        self._segmentation = segments
        self._generation = 0  # bumped by every new eps or steps: older jobs' results are dropped
        self._rows = self._explain(list(range(len(self._x))), self._x, eps, steps, self._requested,
                                   "target" if is_one_target(target) else None)
        self._source = torch.stack([row["source"] for row in self._rows])
        self._targets = torch.tensor([row["explained"] for row in self._rows])
        k = self._check_k(k)
        self._step_at_end = False  # True while a new number of steps is computed: show its last step
        channels, height, width = image_shape(self._input_shape)
        self._warn_if_large(len(self._x) * ((steps + 3) * channels * height * width * 2 + 60 * 50 * 8),
                            "pass fewer inputs x or fewer steps")
        super().__init__(index=0, target=self._requested[0], eps=eps, steps=steps, step=steps, tail=tail, k=k)

    # ---- computation (all math is in kernel_side) -------------------------------------------
    def _explain(self, rows: list[int], x: torch.Tensor, eps, steps, requested: list, name: str | None = None) -> list:
        """Per row: the attack path, perturbation, segments and every tail's ranking (CPU)."""
        segments = self._segmentation
        if isinstance(segments, torch.Tensor) and segments.ndim == 3:
            segments = segments[rows]
        parameter = next(self._classifier.parameters())
        x = x.to(parameter.device, parameter.dtype)
        with torch.no_grad():
            predicted = self._classifier(x).argmax(1).cpu()
        target = torch.tensor([predicted[j] if value is None else value for j, value in enumerate(requested)])
        try:
            explained = adversarial_explanation(self._classifier, x, target, eps=eps, steps=steps, segments=segments,
                                                k=1, pixel_range=self._pixel_range, **self._attack)
        except ValueError as error:
            if name and str(error).startswith("target"):
                raise ValueError(name + str(error)[len("target"):]) from None
            raise
        swept = tail_sweep(explained, TAILS)
        out = []
        for j in range(len(rows)):
            count = int(explained.num_segments[j])
            out.append({
                "source": predicted[j], "explained": int(explained.source[j]),
                "frames": explained.frames[j].cpu().float(), "probs": explained.probs[j].cpu().float(),
                "perturbation": explained.perturbation[j].cpu().float(),
                "levels": swept["levels"][j].cpu(), "segments": explained.segments[j].cpu(),
                "scores": swept["scores"][j, :, :count].cpu().float(),
                "ranking": swept["ranking"][j, :, :count].cpu(),
            })
        return out

    def _most_k(self) -> int:
        return min(int(row["segments"].max()) + 1 for row in self._rows)

    def _recompute(self, rows: list[int], x: torch.Tensor, generation: int) -> None:
        """New explanations for ``rows`` (their inputs ``x``) with the current eps, steps and targets."""
        with self._lock:
            requested = [self._requested[row] for row in rows]
        found = self._explain(rows, x, self.eps, self.steps, requested)
        with self._lock:
            if generation != self._generation:
                return  # eps or steps changed meanwhile: a newer job recomputes everything
            for j, row in enumerate(rows):
                self._rows[row] = found[j]
            self._x = self._x.clone()
            self._x[rows] = x.cpu().float()
            self._source = torch.stack([row["source"] for row in self._rows])
            self._targets = torch.tensor([row["explained"] for row in self._rows])
            most = len(self._rows[0]["frames"]) - 1
            if self._step_at_end or self.step > most:
                self.step = most
            self._step_at_end = False
            if self.k > self._most_k():
                self.k = self._most_k()
            self._publish()

    def _submit_rows(self, rows: list[int], x: torch.Tensor) -> None:
        generation = self._generation
        self._submit(lambda stop: self._recompute(rows, x, generation))

    def _retarget(self, row: int, new: int | None, old: int | None) -> None:
        with self._lock:
            self._requested = list(self._requested)
            self._requested[row] = new
            self._submit_rows([row], self._x[[row]])

    def _follow(self, rows: list[int], x: torch.Tensor) -> None:
        with torch.no_grad():
            predicted = self._classifier(x.to(next(self._classifier.parameters()))).argmax(1).cpu()
        with self._lock:
            self._requested = list(self._requested)
            for j, row in enumerate(rows):
                if self._requested[row] == int(predicted[j]):
                    self._requested[row] = None  # the new drawing is that class: explain its prediction
            self._show_requested()
        self._recompute(rows, x, self._generation)

    @traitlets.observe("eps", "steps")
    def _on_attack(self, change) -> None:
        if not self._ready:
            return
        with self._lock:
            self._generation += 1
            self._step_at_end = self._step_at_end or change["name"] == "steps"
            self._submit_rows(list(range(len(self._x))), self._x.clone())

    # ---- payload ------------------------------------------------------------------------------
    def _meta(self) -> dict:
        return {"tails": TAILS.tolist(), "alpha": self._attack["alpha"], "norm": self._attack["norm"],
                "attack_steps": len(self._rows[0]["frames"]) - 1}

    def _arrays(self) -> dict:
        lo, hi = self._pixel_range
        margin = 0.5 * (hi - lo)
        width = max(len(row["scores"][0]) for row in self._rows)

        def padded(values: torch.Tensor, fill) -> torch.Tensor:
            return torch.nn.functional.pad(values, (0, width - values.shape[-1]), value=fill)

        stack = lambda name: torch.stack([row[name] for row in self._rows])  # noqa: E731
        return {
            "frames": quantized(stack("frames"), "uint16", (lo - margin, hi + margin)),
            "probs": quantized(stack("probs"), "uint16", (0.0, 1.0)),
            "perturbation": stack("perturbation"),
            "levels": stack("levels"),
            "segments": stack("segments").to(torch.int32),
            "num_segments": np.array([int(row["segments"].max()) + 1 for row in self._rows], dtype=np.int32),
            "scores": torch.stack([padded(row["scores"], 0.0) for row in self._rows]),
            "ranking": torch.stack([padded(row["ranking"], -1) for row in self._rows]).to(torch.int32),
        }

    # ---- trait validation ----------------------------------------------------------------------
    @traitlets.validate("tail")
    def _valid_tail(self, proposal):
        value = float(proposal["value"])
        if not 0.01 <= value <= 0.5:
            raise ValueError(f"tail must lie in [0.01, 0.5] (the share kept in each tail of the perturbation), got {value}")
        return round(value, 2)

    @traitlets.validate("k")
    def _valid_k(self, proposal):
        return self._check_k(proposal["value"])

    def _check_k(self, value) -> int:
        value, most = check_int(value, "k", minimum=1), self._most_k()
        if value > most:
            raise ValueError(f"k must be at most the number of segments of every input ({most}), got {value}")
        return value

    @traitlets.validate("eps")
    def _valid_eps(self, proposal):
        return check_real(proposal["value"], "eps", 0.0)

    @traitlets.validate("steps")
    def _valid_steps(self, proposal):
        return check_int(proposal["value"], "steps", minimum=1, maximum=500)

    @traitlets.validate("step")
    def _valid_step(self, proposal):
        most = len(self._rows[0]["frames"]) - 1
        return check_int(proposal["value"], "step", minimum=0, maximum=most)

    # ---- what the user sees, readable from Python ------------------------------------------------
    def _row(self) -> dict:
        with self._lock:
            return self._rows[self.index]

    @property
    def _t(self) -> int:
        return round(self.tail * 100) - 1

    @property
    def segments(self) -> torch.Tensor:
        """(H, W) the selected input's segment labels."""
        return self._row()["segments"].clone()

    @property
    def segment_scores(self) -> torch.Tensor:
        """(S,) each segment's share of strongly attacked pixels at the current tail."""
        return self._row()["scores"][self._t].clone()

    @property
    def ranking(self) -> torch.Tensor:
        """(S,) the segments best first at the current tail."""
        return self._row()["ranking"][self._t].clone()

    @property
    def top_k(self) -> torch.Tensor:
        """(H, W) bool, the pixels of the top K segments at the current tail."""
        row = self._row()
        return torch.isin(row["segments"], row["ranking"][self._t][: self.k])

    @property
    def perturbation(self) -> torch.Tensor:
        """The selected input's perturbation d after all the attack's steps."""
        return self._row()["perturbation"].clone()

    @property
    def frame(self) -> torch.Tensor:
        """The attack path at ``step``: ``x + d_step``."""
        return self._row()["frames"][self.step].clone()

    @property
    def probabilities(self) -> torch.Tensor:
        """(C,) the class probabilities of :attr:`frame`."""
        return self._row()["probs"][self.step].clone()

    # ---- static figure ------------------------------------------------------------------------
    def to_figure(self, figsize: tuple[float, float] | None = None):
        """A matplotlib Figure of the current view: the image with the top K segments, the
        tail-filtered perturbation, the attack frame at ``step`` and the ranked segment scores."""
        from matplotlib.figure import Figure
        from skimage.segmentation import mark_boundaries

        from ._style import colormap

        n, row = self.index, self._row()
        channels, height, width = image_shape(self._input_shape)
        fig = Figure(figsize=figsize or (13, 3.4), layout="constrained")
        axes = fig.subplots(1, 4, width_ratios=[1, 1, 1, 1.3])
        picture = self._picture(self._x[n])
        rgb = picture if channels == 3 else np.repeat(1 - (picture[..., None] - self._pixel_range[0])
                                                      / (self._pixel_range[1] - self._pixel_range[0]), 3, axis=2)
        shaded = rgb * np.where(self.top_k.numpy()[..., None], 1.0, 0.35)
        axes[0].imshow(mark_boundaries(shaded.clip(0, 1), row["segments"].numpy(), color=(1, 0.8, 0)))
        axes[0].set_title(f"top {self.k} segments (tail {self.tail:.0%})", fontsize=10)
        levels = row["levels"].reshape(channels, height, width)
        d = row["perturbation"].reshape(channels, height, width)
        filtered = (d * (levels <= self._t)).sum(0).abs().numpy()
        axes[1].imshow(filtered, cmap=colormap("sequential"), interpolation="nearest")
        axes[1].set_title("|filtered d|", fontsize=10)
        frame = self._picture(row["frames"][self.step])
        axes[2].imshow(frame, cmap="gray_r", vmin=self._pixel_range[0], vmax=self._pixel_range[1],
                       interpolation="nearest")
        probs = row["probs"][self.step]
        axes[2].set_title(f"step {self.step}: p({self._class_names[int(self._targets[n])]}) = "
                          f"{float(probs[int(self._targets[n])]):.2f}", fontsize=10)
        for axis in axes[:3]:
            axis.set_xticks([])
            axis.set_yticks([])
        shown = row["ranking"][self._t][:12]
        scores = row["scores"][self._t][shown].numpy()
        axes[3].barh(np.arange(len(shown)), scores, color=["#ef6c00" if i < self.k else "#9e9e9e" for i in range(len(shown))])
        axes[3].set_yticks(np.arange(len(shown)), [f"segment {int(s)}" for s in shown], fontsize=8)
        axes[3].invert_yaxis()
        axes[3].set_xlim(0, 1)
        axes[3].set_title("share of strongly attacked pixels", fontsize=10)
        axes[3].spines[["top", "right"]].set_visible(False)
        source = self._class_names[int(self._source[n])]
        fig.suptitle(f"input {n}: predicted {source}, explaining {self._class_names[int(self._targets[n])]} "
                     f"(Rahnama and Tseng 2021)", fontsize=11)
        return fig
