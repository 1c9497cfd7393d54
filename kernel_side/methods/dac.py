"""Discriminative attribution from counterfactuals (DAC): which pixels make class i and not j.

References:
    Eckstein, Bates, Jefferis, Funke. Discriminative attribution from counterfactuals.
    arXiv 2109.13412 (2021); as DAPI in ECCV Workshops 2022. https://arxiv.org/abs/2109.13412
    Authors' code: https://github.com/funkelab/dapi; successor https://github.com/funkelab/quac

A pair is a real image x_R, predicted as class i, and a counterfactual x_C, the same image
changed so the classifier says j. Attribution maps computed with the counterfactual as the
baseline (D-methods) mark what differs in a way that matters; the standard maps (S-methods,
baseline 0) are the reference. Every map is divided by its max |a|, so signed maps lie in
[-1, 1]. For 201 thresholds ``thr = -1 + 0.01 k`` the mask ``m = any_channels(a >= thr)``
(the authors' mask code; a strict ``>`` would leave the pixel at -1 out, so thr = -1 would not
give x_R) is optionally closed and blurred, and pasted between the two images:

- direction ``"dac"`` (the paper's): ``x_H = m x_R + (1 - m) x_C``, score
  ``p_i(x_H) - p_i(x_C)``: how much of the real class the mask restores;
- direction ``"quac"`` (QuAC's): ``x_H = m x_C + (1 - m) x_R``, score ``p_j(x_H) - p_j(x_R)``.

The DAC curve plots the score against the mask size (the share of pixels in the mask,
counted before blurring), with end points (0, 0) and (1, score of the full mask), linearly
interpolated on the grid 0, 0.01, ..., 1; the DAC score is the area under it (the mean over
pairs of each pair's area is the area under the mean curve). The best single mask minimises
``size^2 + (1 - score)^2``. All thresholds of all pairs are scored in one batched forward,
each distinct mask once (on 8 x 8 digits a map has 20-45 distinct masks among the 201).

Forms of the D-attributions (logits are attributed, probabilities scored). The authors'
code attributes the counterfactual against the real image, ``IG(x_C, baseline x_R, class
j)`` (form ``"dapi"``); QuAC corrected it to ``IG(x_R, baseline x_C, class i)`` (form
``"quac"``). The form whose attributed class is the scored class matches the direction
(``"quac"`` for direction ``"dac"``, ``"dapi"`` for ``"quac"``) and is the default: measured
with flow counterfactuals on digits, AUC 0.906 against 0.761 for the other form. In a form
with explained point e, baseline b and class k:

- ``ig``: IG(x_R, baseline 0, class i); ``d_ig``: IG(e, baseline b, class k) (Captum,
  Gauss-Legendre, 50 steps: completeness to ~5e-4).
- ``ingrad``: ``|x_R * grad f_i(x_R)|``; ``d_ingrad``: ``|grad f_k(e) * (e - b)|``.
- ``dl`` / ``d_dl``: DeepLift with the baselines of ``ig`` / ``d_ig``. Its rules hold only for
  networks of linear layers and the nonlinearities Captum has rules for; it is refused for
  others (SiLU, couplings: measured 33 % and 2-24 % median completeness error) and warns
  when its attributions miss completeness by more than 1 %.
- ``gc``: Grad-CAM of class i on a conv layer (default: the last); ``d_gc``:
  ``|sum_channels upsample(df_k/dA(e) * (A(b) - A(e)))|``.
- ``random``: |N(0, 1)| smoothed; ``residual``: ``|x_R - x_C|`` minus its minimum. With
  near-minimal flow counterfactuals the residual is a strong baseline (AUC 0.877 measured
  on digits): report it.

S-methods always explain x_R for class i. Mask settings scale the authors' ones (a closing
with a 10-pixel disk and an 11 x 11 Gaussian, sigma 2, for 128-pixel images) to the image,
so on 8 x 8 digits neither applies.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_choice, check_classifier, check_int, check_real, check_targets
from .._images import image_shape, close, gaussian_blur, scaled
from .._runtime import DEFAULT_CHUNK_SIZE, evaluating
from ._captum import grad_cam, gradient, input_x_gradient, integrated_gradients, tracked
from ..metrics import dac_curves, pasted_probabilities
from .pairs import check_pair, unpack_pairs

__all__ = [
    "DAC_METHODS", "DIRECTIONS", "FORMS", "DACResult", "dac_attributions", "dac_thresholds",
    "discriminative_attribution", "matching_form",
]

DAC_METHODS = ("ig", "d_ig", "ingrad", "d_ingrad", "dl", "d_dl", "gc", "d_gc", "random", "residual")
LABELS = {"ig": "IG", "d_ig": "D-IG", "ingrad": "INGRAD", "d_ingrad": "D-INGRAD", "dl": "DL", "d_dl": "D-DL",
          "gc": "GC", "d_gc": "D-GC", "random": "random", "residual": "residual"}
STANDARD_OF = {"d_ig": "ig", "d_ingrad": "ingrad", "d_dl": "dl", "d_gc": "gc"}  # D-method -> its S-method
DIRECTIONS = ("dac", "quac")
FORMS = ("quac", "dapi")
THRESHOLDS = 201  # thr = -1 + 0.01 k, k = 0..200
GRID_POINTS = 101  # mask sizes 0, 0.01, ..., 1
IG_STEPS = 50
CLOSING_DIAMETER = 10  # pixels at 128 px (the authors' 10 x 10 ellipse)
BLUR_SIGMA = 2.0  # pixels at 128 px (OpenCV's sigma for an 11 x 11 kernel)
MIN_SIGMA = 0.3  # a scaled blur below this changes nothing visible and is skipped
DEEPLIFT_TOLERANCE = 0.01  # median relative completeness error above which DeepLift warns
# Modules whose DeepLift rule Captum implements exactly (linear ones pass through).
_DEEPLIFT_MODULES = (
    nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.Flatten, nn.Unflatten, nn.Dropout, nn.Dropout2d,
    nn.Identity, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
    nn.ReLU, nn.ELU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Softmax, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
)


def dac_thresholds() -> torch.Tensor:
    """(201,) the thresholds -1, -0.99, ..., 1 (float64)."""
    return torch.arange(THRESHOLDS, dtype=torch.float64) * 0.01 - 1


def _check_thresholds(thresholds) -> torch.Tensor:
    try:
        values = torch.as_tensor(thresholds, dtype=torch.float64).reshape(-1)
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"thresholds must be a sequence of numbers, got {type(thresholds).__name__}") from error
    if not len(values) or not torch.isfinite(values).all() or (values.diff() <= 0).any():
        raise ValueError("thresholds must be a non-empty, finite, strictly increasing sequence")
    return values


def matching_form(direction: str) -> str:
    """The D-attribution form whose attributed class is the class ``direction`` scores."""
    return "quac" if check_choice(direction, "direction", DIRECTIONS) == "dac" else "dapi"


@dataclass(frozen=True)
class DACResult:
    """Attributions of M methods for N pairs, their masks' scores and DAC curves.

    Fields:
        methods: the M method names (see ``DAC_METHODS``); direction, form: as chosen.
        x, x_cf: (N, *input_shape) real images and counterfactuals; source, target: (N,) the
            classes i of x and j of x_cf; p_source: p_i(x); p_target: p_j(x_cf).
        attributions: (M, N, *input_shape) maps divided by max |a| (signed ones in [-1, 1]).
        thresholds: (T,) float64; mask_size: (M, N, T) share of pixels in each mask;
            scores: (M, N, T) the restored score of each mask (see the module).
        grid: (G,) mask sizes 0..1; curves: (M, N, G) each pair's DAC curve on the grid.
        auc: (M, N) the area under each pair's curve; best: (M, N) the threshold index of the
            best single mask.
        masks: (M, N, T, H, W) bool, the masks before blurring, when asked for, else None
            (the hybrids use them blurred with ``blur``).
        closing, blur: the closing diameter and blur sigma used (pixels; 0: none).
    """

    methods: tuple[str, ...]
    direction: str
    form: str
    x: torch.Tensor
    x_cf: torch.Tensor
    source: torch.Tensor
    target: torch.Tensor
    p_source: torch.Tensor
    p_target: torch.Tensor
    attributions: torch.Tensor
    thresholds: torch.Tensor
    mask_size: torch.Tensor
    scores: torch.Tensor
    grid: torch.Tensor
    curves: torch.Tensor
    auc: torch.Tensor
    best: torch.Tensor
    masks: torch.Tensor | None
    closing: int
    blur: float

    @property
    def dac_score(self) -> dict[str, float]:
        """Each method's DAC score: the area under its mean curve over the pairs."""
        return {method: self.auc[m].mean().item() for m, method in enumerate(self.methods)}


# ---- checks --------------------------------------------------------------------------------------
def conv_layers(classifier: nn.Module) -> dict[str, nn.Module]:
    """The classifier's 2-D convolution layers by name, in order."""
    return {name: module for name, module in classifier.named_modules() if isinstance(module, nn.Conv2d)}


def check_layer(classifier: nn.Module, layer) -> tuple[str, nn.Module]:
    """``(name, module)`` of the conv layer ``layer`` names (None: the last conv layer)."""
    layers = conv_layers(classifier)
    if not layers:
        raise ValueError(f"Grad-CAM needs a convolution layer, and {type(classifier).__name__} has none; "
                         "drop 'gc' and 'd_gc' from methods")
    if layer is None:
        return list(layers.items())[-1]
    if isinstance(layer, nn.Module):
        for name, module in layers.items():
            if module is layer:
                return name, module
        raise ValueError(f"layer is not a Conv2d of the classifier; its conv layers: {', '.join(layers)}")
    if not isinstance(layer, str):
        raise TypeError(f"layer must name a conv layer (a str) or be one, got {type(layer).__name__}")
    name = check_choice(layer, "layer", list(layers))
    return name, layers[name]


def deeplift_obstacles(classifier: nn.Module) -> list[str]:
    """Names and types of the modules DeepLift has no exact rule for (empty: its rules hold
    as far as the modules show; functional calls inside ``forward`` are not visible)."""
    return [f"{name} ({type(module).__name__})" for name, module in classifier.named_modules()
            if not list(module.children()) and name and not isinstance(module, _DEEPLIFT_MODULES)]


def default_methods(classifier: nn.Module) -> tuple[str, ...]:
    """Every method that applies to ``classifier``: Grad-CAM needs a conv layer, DeepLift its rules."""
    skip = set()
    if not conv_layers(classifier):
        skip |= {"gc", "d_gc"}
    if deeplift_obstacles(classifier):
        skip |= {"dl", "d_dl"}
    return tuple(method for method in DAC_METHODS if method not in skip)


def check_methods(classifier: nn.Module, methods, layer) -> tuple[str, ...]:
    """``methods`` (None: every method that applies) as a tuple of known, distinct names."""
    check_classifier(classifier)
    if methods is None:
        return default_methods(classifier)
    if isinstance(methods, str):
        methods = (methods,)
    try:
        methods = tuple(methods)
    except TypeError as error:
        raise TypeError(f"methods must be a sequence of method names, got {type(methods).__name__}") from error
    if not methods:
        raise ValueError(f"methods is empty; choose among {', '.join(DAC_METHODS)}")
    for method in methods:
        check_choice(method, "methods", DAC_METHODS)
    if len(set(methods)) != len(methods):
        raise ValueError(f"methods names a method twice: {list(methods)}")
    if {"gc", "d_gc"} & set(methods):
        check_layer(classifier, layer)
    if {"dl", "d_dl"} & set(methods):
        obstacles = deeplift_obstacles(classifier)
        if obstacles:
            raise ValueError(
                f"DeepLift's rules do not hold for this classifier: Captum has no exact rule for "
                f"{', '.join(obstacles[:4])}{' ...' if len(obstacles) > 4 else ''}, so its attributions would not sum "
                f"to the output difference; drop 'dl' and 'd_dl' (use 'ig' and 'd_ig')")
    return methods


def _check_mask_size(value, name: str, kind) -> float:
    if value is None:
        return 0
    if kind is int:
        return check_int(value, name, minimum=0)
    return check_real(value, name, 0.0, closed="low")


# ---- attributions --------------------------------------------------------------------------------
def _deeplift(classifier, inputs, baselines, classes):
    from captum.attr import DeepLift

    with warnings.catch_warnings():  # Captum announces its temporary hooks on every call
        warnings.filterwarnings("ignore", message="Setting forward, backward hooks", category=UserWarning)
        attributions = DeepLift(classifier).attribute(tracked(inputs), baselines=baselines, target=classes)
    with torch.no_grad():
        logits = classifier(torch.cat([inputs, baselines]))
        gaps = (logits[: len(inputs)] - logits[len(inputs):]).gather(1, classes[:, None])[:, 0]
    error = (attributions.flatten(1).sum(1) - gaps).abs() / gaps.abs().clamp_min(1e-6)
    if error.median() > DEEPLIFT_TOLERANCE:
        warnings.warn(f"DeepLift attributions miss completeness by {100 * error.median():.1f} % (median over the "
                      "pairs): its rules do not hold for this classifier (a functional nonlinearity in forward?); "
                      "prefer 'ig' and 'd_ig'", RuntimeWarning, stacklevel=4)
    return attributions


def _layer_difference_cam(classifier, layer, inputs, baselines, classes, image_hw):
    """``|sum_channels upsample(df_k/dA(inputs) * (A(baselines) - A(inputs)))|``."""
    activations = []
    handle = layer.register_forward_hook(lambda _module, _args, output: activations.append(output))
    try:
        with torch.no_grad():
            classifier(baselines)
        logits = classifier(tracked(inputs))
    finally:
        handle.remove()
    baseline_activation, activation = activations
    (gradient,) = torch.autograd.grad(logits.gather(1, classes[:, None]).sum(), activation)
    cam = (gradient * (baseline_activation - activation.detach())).sum(1, keepdim=True)
    return F.interpolate(cam, size=image_hw, mode="bilinear", align_corners=False).abs()


def _random_maps(count: int, shape: tuple[int, int, int], seed: int, device, dtype) -> torch.Tensor:
    channels, height, width = shape
    noise = torch.randn(count, height, width, generator=torch.Generator().manual_seed(seed)).abs()
    smooth = gaussian_blur(noise, max(0.5, scaled(BLUR_SIGMA, height, width)))
    return smooth[:, None].expand(count, channels, height, width).to(device, dtype)


def _normalised(maps: torch.Tensor) -> torch.Tensor:
    """Each map divided by its max |a| (an all-zero map stays zero)."""
    scale = maps.flatten(1).abs().amax(1).clamp_min(torch.finfo(maps.dtype).tiny)
    return maps / scale.reshape(-1, *[1] * (maps.ndim - 1))


def dac_attributions(classifier, x, x_cf, target=None, *, methods=None, form: str = "quac", layer=None,
                     n_steps: int = IG_STEPS, normalize: bool = True, seed: int = 0) -> dict[str, torch.Tensor]:
    """Attribution maps of the pairs (x, x_cf) by each of ``methods``, computed with Captum.

    Arguments:
        classifier: an nn.Module, ``classifier(x) -> logits`` (N, C).
        x: (N, *input_shape) real images (class i: their prediction); x_cf: their counterfactuals.
        target: the counterfactuals' class j: None (their prediction), one index or N.
        methods: names from ``DAC_METHODS`` (None: every method that applies).
        form: ``"quac"`` (explain x for class i against baseline x_cf) or ``"dapi"``
            (explain x_cf for class j against baseline x) for the D-methods.
        layer: the conv layer of ``gc`` and ``d_gc`` (a name or the module; None: the last).
        n_steps: Gauss-Legendre steps of Integrated Gradients.
        normalize: divide each map by its max |a| (False: the raw attributions, e.g. to check
            completeness: D-IG sums to ``f_k(e) - f_k(b)``).
        seed: seeds the random baseline (the global random state is left untouched).

    Returns:
        ``{method: (N, *input_shape)}``, on the classifier's device.
    """
    x, x_cf = check_pair(classifier, x, x_cf)
    methods = check_methods(classifier, methods, layer)
    form = check_choice(form, "form", FORMS)
    n_steps = check_int(n_steps, "n_steps", minimum=2)
    seed = check_int(seed, "seed")
    with evaluating(classifier):
        source, target = _pair_classes(classifier, x, x_cf, target)
        return _attributions(classifier, x, x_cf, source, target, methods, form, layer, n_steps, normalize, seed)


def _pair_classes(classifier, x, x_cf, target) -> tuple[torch.Tensor, torch.Tensor]:
    """(i, j) per pair: the prediction of x, and ``target`` or the prediction of x_cf."""
    with torch.no_grad():
        logits = classifier(torch.cat([x, x_cf]))
    source = logits[: len(x)].argmax(1)
    if target is None:
        target = logits[len(x):].argmax(1)
        same = (target == source).nonzero().flatten()
        if len(same):
            raise ValueError(
                f"x_cf[{same[0].item()}] is classified as the same class as x[{same[0].item()}] (class "
                f"{source[same[0]].item()}): a counterfactual must change the class; pass target= or drop the pair")
    else:
        target = check_targets(target, len(x), logits.shape[1]).to(x.device)
        same = (target == source).nonzero().flatten()
        if len(same):
            raise ValueError(f"target must differ from the class of x: pair {same[0].item()} has both as class "
                             f"{source[same[0]].item()}")
    return source, target


def _attributions(classifier, x, x_cf, source, target, methods, form, layer, n_steps, normalize, seed):
    explained, baseline, cls = (x, x_cf, source) if form == "quac" else (x_cf, x, target)
    image = image_shape(x.shape[1:])
    image_hw = image[1:]
    maps = {}
    with torch.enable_grad():
        for method in methods:
            if method == "ig":
                a = integrated_gradients(classifier, x, torch.zeros_like(x), source, n_steps)
            elif method == "d_ig":
                a = integrated_gradients(classifier, explained, baseline, cls, n_steps)
            elif method == "ingrad":
                a = input_x_gradient(classifier, x, source).abs()
            elif method == "d_ingrad":
                a = (gradient(classifier, explained, cls) * (explained - baseline)).abs()
            elif method == "dl":
                a = _deeplift(classifier, x, torch.zeros_like(x), source)
            elif method == "d_dl":
                a = _deeplift(classifier, explained, baseline, cls)
            elif method in ("gc", "d_gc"):
                _, module = check_layer(classifier, layer)
                images = x.reshape(len(x), *image)
                if method == "gc":
                    cam = grad_cam(classifier, module, x, source, image_hw)
                else:
                    cam = _layer_difference_cam(classifier, module, explained, baseline, cls, image_hw)
                a = cam.expand_as(images).reshape(x.shape)
            elif method == "random":
                a = _random_maps(len(x), image, seed, x.device, x.dtype).reshape(x.shape)
            else:  # residual
                a = (x - x_cf).abs()
                a = a - a.flatten(1).amin(1).reshape(-1, *[1] * (a.ndim - 1))
            a = a.detach()
            maps[method] = _normalised(a) if normalize else a
    return maps


# ---- masks, scores and curves --------------------------------------------------------------------
def _masks(attributions: torch.Tensor, thresholds: torch.Tensor, closing: int):
    """(N, T, H, W) bool masks ``any_channels(a >= thr)``, closed, and (N, T) their sizes."""
    n = len(attributions)
    image = image_shape(attributions.shape[1:])
    strongest = attributions.reshape(n, *image).amax(1)  # any over channels of a >= thr
    masks = strongest[:, None] >= thresholds.to(strongest)[None, :, None, None]
    t, (height, width) = len(thresholds), image[1:]
    masks = close(masks.reshape(n * t, height, width), closing).reshape(n, t, height, width)
    return masks, masks.flatten(2).float().mean(-1)


def _scores(classifier, pasted, canvas, cls, masks, blur, chunk_size):
    """(N, T) ``p_k(m pasted + (1 - m) canvas) - p_k(canvas)``, m the blurred masks."""
    probs, reference = pasted_probabilities(classifier, pasted, canvas, cls, masks, blur=blur, chunk_size=chunk_size)
    return probs - reference[:, None]


def _area(curves: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return torch.trapezoid(curves, grid, dim=-1)


def discriminative_attribution(classifier, x, x_cf=None, target=None, *, methods=None, direction: str = "dac",
                               form: str | None = None, layer=None, n_steps: int = IG_STEPS,
                               closing: int | str | None = "auto", blur: float | str | None = "auto",
                               thresholds=None, keep_masks: bool = False, seed: int = 0, attributions=None,
                               chunk_size: int = DEFAULT_CHUNK_SIZE) -> DACResult:
    """Attribute the pairs (x, x_cf) by each method, score its masks at 201 thresholds, and
    give each method's DAC curves and scores (Eckstein et al. 2021).

    Arguments:
        classifier: an nn.Module, ``classifier(x) -> logits`` (N, C): MLP, CNN or invertible.
        x: (N, *input_shape) real images, or counterfactual pairs straight from the engine
            (a :class:`~crosslens.kernel_side.CounterfactualPairs`, a
            :class:`~crosslens.kernel_side.CounterfactualResult`, or a boundary path or
            projection: see :func:`~crosslens.kernel_side.counterfactual_pairs`); then leave
            ``x_cf`` out.
        x_cf: (N, *input_shape) their counterfactuals.
        target: the counterfactuals' classes j: None (their predictions), one index or N.
        methods: names from ``DAC_METHODS`` (None: every method that applies to the classifier).
        direction: ``"dac"`` (paste real pixels into the counterfactual, score class i; the
            paper's) or ``"quac"`` (paste counterfactual pixels into the real image, score j).
        form: ``"quac"`` or ``"dapi"`` D-attributions (None: the one matching ``direction``).
        layer: the conv layer of Grad-CAM (name or module; None: the last conv layer).
        n_steps: Gauss-Legendre steps of Integrated Gradients (50).
        closing: diameter in pixels of the disk closing each mask, or ``"auto"`` (10 pixels
            at 128 px, scaled to the image; none below 2) or None.
        blur: sigma in pixels of the Gaussian blurring each mask, or ``"auto"`` (2 at 128 px,
            scaled; none below 0.3) or None.
        thresholds: None (the 201 thresholds -1, -0.99, ..., 1) or a 1-D increasing sequence.
        keep_masks: keep every mask (``masks`` field; for the explorer).
        attributions: maps already computed for some of the methods (``{method: (N,
            *input_shape)}``, normalised, e.g. another direction's result for the S-methods,
            which no direction or form changes); the others are computed.
        seed: seeds the random baseline (the global random state is left untouched; the maps
            are drawn in the order of the pairs).
        chunk_size: the most hybrids per forward pass.

    Example:
        >>> import torch
        >>> from crosslens import kernel_side as ks
        >>> cnn, flow = ks.load_pretrained("digits-cnn"), ks.load_pretrained("digits-flow")
        >>> found = ks.latent_counterfactual(cnn, flow, ks.load_digits_split()[2][:4])
        >>> result = ks.discriminative_attribution(cnn, found, methods=["ig", "d_ig"])
        >>> tuple(result.scores.shape), result.form
        ((2, 4, 201), 'quac')
    """
    x, x_cf, target, _ = unpack_pairs(classifier, x, x_cf, target)
    if x_cf is None:
        raise TypeError("x_cf is missing: pass the counterfactuals, or an engine result (or counterfactual_pairs) "
                        "as x")
    x, x_cf = check_pair(classifier, x, x_cf)
    methods = check_methods(classifier, methods, layer)
    direction = check_choice(direction, "direction", DIRECTIONS)
    form = matching_form(direction) if form is None else check_choice(form, "form", FORMS)
    n_steps = check_int(n_steps, "n_steps", minimum=2)
    seed = check_int(seed, "seed")
    chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    if not isinstance(keep_masks, bool):
        raise TypeError(f"keep_masks must be True or False, got {type(keep_masks).__name__}")
    _, height, width = image_shape(x.shape[1:])
    closing = round(scaled(CLOSING_DIAMETER, height, width)) if closing == "auto" else \
        _check_mask_size(closing, "closing", int)
    blur = scaled(BLUR_SIGMA, height, width) if blur == "auto" else _check_mask_size(blur, "blur", float)
    thresholds = dac_thresholds() if thresholds is None else _check_thresholds(thresholds)
    closing = closing if closing >= 2 else 0
    blur = blur if blur >= MIN_SIGMA else 0.0

    with evaluating(classifier):
        source, target = _pair_classes(classifier, x, x_cf, target)
        given = dict(attributions or {})
        missing = tuple(method for method in methods if method not in given)
        maps = {**given, **_attributions(classifier, x, x_cf, source, target, missing, form, layer, n_steps, True, seed)}
        pasted, canvas, cls = (x, x_cf, source) if direction == "dac" else (x_cf, x, target)
        sizes, scores, kept = [], [], []
        for method in methods:
            masks, size = _masks(maps[method], thresholds, closing)
            scores.append(_scores(classifier, pasted, canvas, cls, masks, blur, chunk_size))
            sizes.append(size)
            if keep_masks:
                kept.append(masks.cpu())
        with torch.no_grad():
            p_source = classifier(x).softmax(1).gather(1, source[:, None])[:, 0]
            p_target = classifier(x_cf).softmax(1).gather(1, target[:, None])[:, 0]
    mask_size, scores = torch.stack(sizes).cpu().double(), torch.stack(scores).cpu().double()
    grid = torch.linspace(0, 1, GRID_POINTS, dtype=torch.float64)
    curves = dac_curves(mask_size, scores, grid)
    best = (mask_size ** 2 + (1 - scores) ** 2).argmin(-1)
    return DACResult(
        methods=methods, direction=direction, form=form, x=x.detach(), x_cf=x_cf.detach(), source=source,
        target=target, p_source=p_source, p_target=p_target,
        attributions=torch.stack([maps[method] for method in methods]), thresholds=thresholds,
        mask_size=mask_size, scores=scores, grid=grid, curves=curves, auc=_area(curves, grid), best=best,
        masks=torch.stack(kept) if keep_masks else None, closing=int(closing), blur=float(blur),
    )
