"""Interpreting a FLINT model: local and global relevance of its attributes, the samples and
images that excite each attribute, and the paper's fidelity and conciseness figures.

References:
    Parekh, Mozharovskyi, d'Alche-Buc. A framework to learn with interpretation. NeurIPS 2021,
    https://arxiv.org/abs/2010.09345 (Sections 3.3 and 4; code: jayneelparekh/FLINT).

With Phi the attribute activations and w_{j,c} = ``model.interpreter.weight[c, j]``, the
explanation of an input x for the class c^ that g predicts is
``alpha_j = phi_j(x) w_{j,c^}`` and its local relevance ``r_{j,x} = alpha_j / max_i |alpha_i|``;
the attributes with ``r_{j,x} > 1/tau`` are the relevant ones. The global relevance
``r_{j,c}`` is the (signed) mean of ``r_{j,x}`` over the inputs g predicts as c; pairs with
``r_{j,c} > 0.1`` form the global interpretation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .._checks import check_inputs, check_int, check_interval, check_placement, check_real, check_targets
from .._runtime import DEFAULT_CHUNK_SIZE, evaluating
from ..models.flint import FLINT
from ._search import RowAdam, check_callbacks, search

__all__ = [
    "FlintInterpretation", "FlintReport", "MaxActivatingSamples", "activation_maximisation", "flint_interpretation",
    "flint_metrics", "global_relevance", "maximum_activating_samples",
]

DEFAULT_TAUS = (1.5, 2.0, 2.5, 3.0, 4.0, 5.0)
RELEVANCE_THRESHOLD = 0.1  # r_{j,c} above it: the pair (j, c) is in the global interpretation (MNIST's)


def _check_flint(model) -> tuple[torch.device, torch.dtype]:
    if not isinstance(model, FLINT):
        raise TypeError(f"model must be a FLINT model (FLINT.build or FLINT.post_hoc), got {type(model).__name__}")
    return check_placement(model, "model")


@torch.no_grad()
def _outputs(model: FLINT, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """f's logits, Phi and g's logits of ``x`` in eval mode, in bounded chunks."""
    with evaluating(model):
        parts = [model.outputs(chunk) for chunk in x.split(DEFAULT_CHUNK_SIZE)]
    return tuple(torch.cat(column) for column in zip(*parts))


def _relevance(model: FLINT, phi: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """alpha (N, J) and r (N, J); a row whose alpha is all zero has relevance zero."""
    alpha = phi * model.interpreter.weight.detach()[target]
    scale = alpha.abs().amax(1, keepdim=True)
    return alpha, torch.where(scale > 0, alpha / scale.clamp_min(torch.finfo(alpha.dtype).tiny), 0.0)


@dataclass(frozen=True)
class FlintInterpretation:
    """Local interpretations: which attributes make g predict what it predicts, per input.

    Fields (N inputs, J attributes):
        x: (N, *input_shape) the inputs.
        attributes: (N, J) Phi(x).
        predicted: (N,) the class g predicts; predicted_f: (N,) the class f predicts.
        target: (N,) the class explained (``predicted`` unless one was asked for).
        alpha: (N, J) phi_j(x) w_{j,target}, each attribute's contribution to g's logit.
        relevance: (N, J) r_{j,x} = alpha / max_i |alpha_i|, in [-1, 1].
        relevant: (N, J) bool, r_{j,x} > 1 / tau.
        tau: the threshold parameter (> 1).
    """

    x: torch.Tensor
    attributes: torch.Tensor
    predicted: torch.Tensor
    predicted_f: torch.Tensor
    target: torch.Tensor
    alpha: torch.Tensor
    relevance: torch.Tensor
    relevant: torch.Tensor
    tau: float

    @property
    def source(self) -> torch.Tensor:
        """The class g predicts (the engine's common field name)."""
        return self.predicted


def flint_interpretation(model: FLINT, x: torch.Tensor, target=None, *, tau: float = 2.0) -> FlintInterpretation:
    """The local interpretation of each input (Parekh et al. 2021, Section 3.3).

    Arguments:
        model: a :class:`~crosslens.kernel_side.FLINT` model; x: inputs (N, *model.input_shape).
        target: the class to explain per input (one int or N); default the class g predicts.
        tau: an attribute is relevant when r_{j,x} > 1 / tau (tau > 1; the paper's 2).

    Example:
        >>> from crosslens import kernel_side as ks
        >>> model = ks.load_pretrained("digits-flint")
        >>> result = flint_interpretation(model, ks.load_digits_split()[2][:5])
        >>> result.relevance.shape, bool(result.relevant.any(1).all())
        (torch.Size([5, 12]), True)
    """
    device, dtype = _check_flint(model)
    tau = check_real(tau, "tau", 1.0)
    x = check_inputs(x, model.input_shape, "x", dtype=dtype, device=device)
    logits_f, phi, logits_g = _outputs(model, x)
    predicted = logits_g.argmax(1)
    target = predicted if target is None else check_targets(target, len(x), model.num_classes).to(device)
    alpha, relevance = _relevance(model, phi, target)
    return FlintInterpretation(x=x, attributes=phi, predicted=predicted, predicted_f=logits_f.argmax(1),
                               target=target, alpha=alpha, relevance=relevance, relevant=relevance > 1 / tau,
                               tau=tau)


def _class_means(values: torch.Tensor, classes: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(C, J) mean of the rows of ``values`` per class; zero for a class no row has."""
    members = F.one_hot(classes, num_classes).to(values.dtype)  # (N, C)
    return (members.T @ values) / members.sum(0).clamp_min(1)[:, None]


def global_relevance(model: FLINT, x: torch.Tensor) -> torch.Tensor:
    """r_{j,c}: the signed mean of r_{j,x} over the inputs of ``x`` that g predicts as c, (C, J).

    Signed: an attribute that speaks against a class lowers it. A class g predicts for none of
    ``x`` gets a row of zeros (no evidence). Pass held-out inputs (the tests and the tutorial
    use the digits' test split) to describe the model as it generalises.
    """
    result = flint_interpretation(model, x)
    return _class_means(result.relevance, result.predicted, model.num_classes)


@dataclass(frozen=True)
class MaxActivatingSamples:
    """The inputs that excite each attribute most (Parekh et al. 2021, Section 4).

    Fields (J attributes, k samples, C classes):
        indices: (J, k) int64 rows of ``x``, most activating first; activations: (J, k) their phi_j.
        per_class: (C, J, k) int64 the same within each class, -1 where a class has fewer than
            k inputs.
        classes: (N,) the class of each input used for ``per_class`` (labels when given, else g's).
    """

    indices: torch.Tensor
    activations: torch.Tensor
    per_class: torch.Tensor
    classes: torch.Tensor


def maximum_activating_samples(model: FLINT, x: torch.Tensor, k: int = 3, y=None) -> MaxActivatingSamples:
    """The k inputs of ``x`` with the largest phi_j, for every attribute j, overall and per class.

    Arguments:
        model: a :class:`~crosslens.kernel_side.FLINT` model; x: inputs (N, *model.input_shape).
        k: samples per attribute (1 <= k <= N).
        y: labels (N,) to group the inputs by (as the authors' code does); default the class
            g predicts.
    """
    device, dtype = _check_flint(model)
    x = check_inputs(x, model.input_shape, "x", dtype=dtype, device=device)
    k = check_int(k, "k", minimum=1, maximum=len(x))
    _, phi, logits_g = _outputs(model, x)
    classes = logits_g.argmax(1) if y is None else check_targets(y, len(x), model.num_classes, "y").to(device)
    top = phi.topk(k, dim=0)  # (k, J)
    members = classes[None, :, None] == torch.arange(model.num_classes, device=device)[:, None, None]  # (C, N, 1)
    scores = torch.where(members, phi[None], -torch.inf)  # (C, N, J)
    per_class = scores.topk(k, dim=1)  # (C, k, J)
    indices = torch.where(per_class.values > -torch.inf, per_class.indices, -1).transpose(1, 2)
    return MaxActivatingSamples(indices=top.indices.T.contiguous(), activations=top.values.T.contiguous(),
                                per_class=indices.contiguous(), classes=classes)


def _total_variation(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic TV_L1 per row: the mean |difference| of vertical plus horizontal neighbours
    (images (N, C, H, W)); zero for other inputs."""
    if x.ndim != 4:
        return x.new_zeros(len(x))
    vertical = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).mean(1)
    horizontal = (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(1).mean(1)
    return vertical + horizontal


def activation_maximisation(
    model: FLINT,
    x_init: torch.Tensor,
    attributes=None,
    *,
    rounds: int = 12,
    steps: int = 50,
    lr: float = 0.05,
    init_scale: float = 0.3,
    activation_weight: float = 2.0,
    range_weight: float = 10.0,
    tv_weight: float = 6.0,
    bounds=(0.0, 1.0),
    stop=None,
    progress: bool = False,
) -> torch.Tensor:
    """Inputs enhanced to excite each attribute, all attributes in one batch (Parekh et al. 2021, Section 4).

    Each attribute j gets one row of the shared per-row Adam search
    (:func:`~crosslens.kernel_side.methods._search.search`), started at the partial
    initialisation ``init_scale * x_init`` and maximising
    ``activation_weight * phi_j(x') - range_weight * P(x') - tv_weight * TV_L1(x')``, with P the
    summed distance of the pixels outside ``bounds`` and TV_L1 the mean absolute difference of
    neighbouring pixels [derived: P a sum, so that every pixel out of range pays more than the
    attribute gains (measured: as a mean, pixels drift to -5); TV a mean, so that the paper's
    weight holds for any image size]. ``rounds`` successive searches of ``steps`` steps, the
    learning rate halved each round (Adam restarts each round).

    Arguments:
        model: a :class:`~crosslens.kernel_side.FLINT` model.
        x_init: one input (shared by every attribute) or one per attribute (J', *input_shape),
            e.g. each attribute's maximum activating sample.
        attributes: the attributes to enhance (ints in [0, J)); default all J.
        bounds: the valid input range (low, high), or None for no range penalty.
        stop: an object with ``is_set()``; once set, the images end where they are.

    Returns:
        (J', *input_shape): the enhanced inputs, in the order of ``attributes``.
    """
    device, dtype = _check_flint(model)
    chosen = torch.arange(model.num_attributes, device=device) if attributes is None else \
        check_targets(attributes, _count(attributes), model.num_attributes, "attributes").to(device)
    for name, value in (("rounds", rounds), ("steps", steps)):
        check_int(value, name, minimum=1)
    lr = check_real(lr, "lr", 0.0)
    for name, value in (("init_scale", init_scale), ("activation_weight", activation_weight),
                        ("range_weight", range_weight), ("tv_weight", tv_weight)):
        check_real(value, name, 0.0, closed="low")
    low, high = (None, None) if bounds is None else check_interval(bounds, "bounds")
    check_callbacks(stop, None, 1)
    x_init = check_inputs(x_init, model.input_shape, "x_init", dtype=dtype, device=device)
    if len(x_init) not in (1, len(chosen)):
        raise ValueError(f"x_init must be one input or one per attribute ({len(chosen)}), got {len(x_init)}")
    shape = model.input_shape
    start = (init_scale * x_init).expand(len(chosen), *shape).reshape(len(chosen), -1)
    shown: dict[str, torch.Tensor] = {}

    def render(params: torch.Tensor) -> torch.Tensor:
        shown["x"] = params.reshape(len(params), *shape)
        return shown["x"]

    def loss(phi: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        x = shown["x"]
        out_of_range = 0.0 if low is None else ((low - x).relu() + (x - high).relu()).flatten(1).sum(1)
        activation = phi.gather(1, chosen[rows, None]).squeeze(1)
        return -activation_weight * activation + range_weight * out_of_range + tv_weight * _total_variation(x)

    with torch.no_grad(), evaluating(model):
        for round_ in range(rounds):
            trace = search(start, render, model.attributes, loss, lambda phi, rows: torch.zeros_like(rows, dtype=bool),
                           RowAdam(lr / 2**round_), max_steps=steps, record_every=steps, stop=stop,
                           progress=progress, desc=f"activation maximisation, round {round_ + 1}/{rounds}")
            start = trace.shown[:, -1].reshape(len(chosen), -1)
            if trace.interrupted:
                break
    return start.reshape(len(chosen), *shape)


def _count(values) -> int:
    return torch.as_tensor(values).numel() if not isinstance(values, torch.Tensor) else values.numel()


@dataclass(frozen=True)
class FlintReport:
    """The paper's figures for a FLINT model on labelled data (Parekh et al. 2021, Section 5).

    Fields:
        accuracy_f, accuracy_g: the accuracy of f and of g; fidelity: the share of inputs where
            g predicts f's class.
        cns: {tau: CNS(tau)}, the mean number of relevant attributes (r_{j,x} > 1/tau) per input.
        coverage: (J,) int64, the number of classes c with r_{j,c} > ``threshold``.
        relevance: (C, J) the global relevance r_{j,c} it was counted from (signed means over
            the inputs g predicts as c).
        threshold: the relevance threshold (0.1).
    """

    accuracy_f: float
    accuracy_g: float
    fidelity: float
    cns: dict
    coverage: torch.Tensor
    relevance: torch.Tensor
    threshold: float

    def table(self) -> str:
        """The figures as aligned text."""
        lines = [f"accuracy f  {100 * self.accuracy_f:5.1f} %", f"accuracy g  {100 * self.accuracy_g:5.1f} %",
                 f"fidelity    {100 * self.fidelity:5.1f} %"]
        lines += [f"CNS({tau:g}){' ' * max(0, 6 - len(f'{tau:g}'))}{value:6.2f}" for tau, value in self.cns.items()]
        coverage = " ".join(map(str, self.coverage.tolist()))
        lines.append(f"classes per attribute (r_jc > {self.threshold:g}): {coverage}")
        return "\n".join(lines)


def flint_metrics(model: FLINT, x: torch.Tensor, y, taus=DEFAULT_TAUS, *,
                  threshold: float = RELEVANCE_THRESHOLD) -> FlintReport:
    """Accuracy of f and g, fidelity of g to f, conciseness CNS(tau) and each attribute's
    coverage of classes on ``(x, y)`` (use held-out data).

    Example:
        >>> from crosslens import kernel_side as ks
        >>> _, _, x_test, y_test = ks.load_digits_split()
        >>> report = flint_metrics(ks.load_pretrained("digits-flint"), x_test, y_test)
        >>> report.fidelity > 0.97, report.coverage.shape
        (True, torch.Size([12]))
    """
    device, dtype = _check_flint(model)
    x = check_inputs(x, model.input_shape, "x", dtype=dtype, device=device)
    y = check_targets(y, len(x), model.num_classes, "y").to(device)
    try:
        taus = tuple(check_real(tau, "taus", 1.0) for tau in taus)
    except TypeError as error:
        raise TypeError(f"taus must be a sequence of numbers > 1, got {taus!r}") from error
    threshold = check_real(threshold, "threshold")
    logits_f, phi, logits_g = _outputs(model, x)
    predicted_f, predicted = logits_f.argmax(1), logits_g.argmax(1)
    _, relevance = _relevance(model, phi, predicted)
    table = _class_means(relevance, predicted, model.num_classes)
    return FlintReport(
        accuracy_f=(predicted_f == y).float().mean().item(),
        accuracy_g=(predicted == y).float().mean().item(),
        fidelity=(predicted == predicted_f).float().mean().item(),
        cns={tau: (relevance > 1 / tau).sum(1).float().mean().item() for tau in taus},
        coverage=(table > threshold).sum(0),
        relevance=table,
        threshold=threshold,
    )
