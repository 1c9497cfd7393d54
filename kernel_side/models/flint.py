"""FLINT: a classifier learnt together with its interpreter, or an interpreter for a trained one.

References:
    Parekh, Mozharovskyi, d'Alche-Buc. A framework to learn with interpretation. NeurIPS 2021,
    https://arxiv.org/abs/2010.09345; the authors' code: https://github.com/jayneelparekh/FLINT.

The predictor f is any classifier. The interpreter g reads some of f's hidden layers (by name,
with forward hooks), compresses them into J attribute activations ``Phi = Psi(f_I(x))``, and
predicts with one linear layer h: ``g(x) = h(Phi(x))``. A decoder d redraws the input from Phi.
:meth:`FLINT.build` makes the whole model by design (f is trained with g, the architecture of
the paper's MNIST network scaled down to small images, or an MLP for feature vectors);
:meth:`FLINT.post_hoc` wraps a trained classifier, which then stays frozen.
Train either with :func:`~crosslens.kernel_side.training.flint.fit_flint`.
"""

from __future__ import annotations

import math
import threading

import torch
from torch import nn

from .._checks import check_architecture, check_classifier, check_int
from .._runtime import evaluating, seeded
from .classifiers import _Classifier

__all__ = ["FLINT", "FlintClassifier"]

INTERPRETER_DROPOUT = 0.01  # h = Dropout(0.01) + Linear(J -> C), as in the authors' code


def _is_image(shape: tuple[int, ...]) -> bool:
    return len(shape) == 3 and shape[1] % 2 == 0 and shape[2] % 2 == 0


class FlintClassifier(_Classifier):
    """The predictor f of a FLINT model by design, also trained alone as its BASE-f twin.

    Images ``(c, h, w)`` (h, w even): the paper's MNIST network, scaled down:
    conv3x3(c -> 16)-ReLU-conv3x3(16 -> 32)-MaxPool(2)-Dropout(0.25)-ReLU (the layer the
    interpreter reads, ``"net.5"``) -> Linear(hidden)-ReLU-Dropout(0.5)-Linear(C).
    Feature vectors ``(d,)``: Linear(hidden)-ReLU-Linear(hidden)-ReLU-Linear(C); the
    interpreter reads both hidden layers (``"net.1"``, ``"net.3"``).

    Arguments (of :meth:`build`):
        input_shape: the shape of one input; num_classes: C (at least 2).
        hidden: width of the hidden fully connected layer(s); channels: of the first
            convolution (the second has twice as many); seed: the initial weights.

    Example:
        >>> f = FlintClassifier.build((1, 8, 8), 10)
        >>> f(torch.zeros(3, 1, 8, 8)).shape, f.read_layers
        (torch.Size([3, 10]), ('net.5',))
    """

    @classmethod
    def build(cls, input_shape: tuple[int, ...], num_classes: int, hidden: int = 128, channels: int = 16,
              seed: int = 0) -> "FlintClassifier":
        shape = check_architecture(input_shape, num_classes=num_classes, hidden=hidden, channels=channels)
        if len(shape) == 3 and not _is_image(shape):
            raise ValueError(f"input_shape must be (channels, height, width) with even height and width, or (d,), "
                             f"got {tuple(input_shape)}")
        if len(shape) not in (1, 3):
            raise ValueError(f"input_shape must be (channels, height, width) or (d,), got {tuple(input_shape)}")
        with seeded(seed):
            if len(shape) == 3:
                flat = 2 * channels * (shape[1] // 2) * (shape[2] // 2)
                net = nn.Sequential(
                    nn.Conv2d(shape[0], channels, 3, padding=1), nn.ReLU(),
                    nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.MaxPool2d(2), nn.Dropout(0.25), nn.ReLU(),
                    nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(), nn.Dropout(0.5), nn.Linear(hidden, num_classes),
                )
            else:
                net = nn.Sequential(nn.Linear(shape[0], hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                    nn.Linear(hidden, num_classes))
        config = {"input_shape": list(shape), "num_classes": num_classes, "hidden": hidden, "channels": channels,
                  "seed": seed}
        return cls(net, shape, num_classes, config)

    @property
    def read_layers(self) -> tuple[str, ...]:
        """The hidden layers a FLINT interpreter reads (the paper's f_I)."""
        return ("net.5",) if len(self.input_shape) == 3 else ("net.1", "net.3")


class _Branch(nn.Module):
    """Psi's part for one hidden layer: conv3x3-LeakyReLU-AdaptiveAvgPool for feature maps
    (the paper's), Linear-LeakyReLU for vectors; a flat vector out."""

    def __init__(self, shape: tuple[int, ...], width: int, pool: int):
        super().__init__()
        if len(shape) == 3:
            self.net = nn.Sequential(nn.Conv2d(shape[0], width, 3, padding=1), nn.LeakyReLU(),
                                     nn.AdaptiveAvgPool2d(pool), nn.Flatten())
            self.size = width * pool * pool
        else:
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(shape), width), nn.LeakyReLU())
            self.size = width

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.net(hidden)


class _Attributes(nn.Module):
    """Psi: every read layer through its branch, concatenated, then Linear(J)-LeakyReLU."""

    def __init__(self, shapes: list[tuple[int, ...]], attributes: int, width: int, pool: int):
        super().__init__()
        self.branches = nn.ModuleList(_Branch(shape, width, pool) for shape in shapes)
        self.head = nn.Sequential(nn.Linear(sum(branch.size for branch in self.branches), attributes), nn.LeakyReLU())

    def forward(self, hidden: list[torch.Tensor]) -> torch.Tensor:
        return self.head(torch.cat([branch(h) for branch, h in zip(self.branches, hidden)], 1))


def _decoder(input_shape: tuple[int, ...], attributes: int, hidden: int) -> nn.Module:
    """d: Phi -> input. Images: Linear -> (2, h/2, w/2) -> ConvT(x2) -> ReLU -> ConvT -> ReLU (the
    paper's, one upsampling fewer; the ReLUs assume non-negative pixels); else an MLP."""
    if _is_image(input_shape):
        channels, height, width = input_shape
        return nn.Sequential(
            nn.Linear(attributes, 2 * (height // 2) * (width // 2)), nn.Unflatten(1, (2, height // 2, width // 2)),
            nn.ConvTranspose2d(2, 16, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(16, channels, 3, padding=1), nn.ReLU(),
        )
    return nn.Sequential(nn.Linear(attributes, hidden), nn.ReLU(), nn.Linear(hidden, math.prod(input_shape)),
                         nn.Unflatten(1, tuple(input_shape)))


def _named_modules(model: nn.Module) -> dict[str, nn.Module]:
    return {name: module for name, module in model.named_modules() if name}


class FLINT(nn.Module):
    """A predictor f with its interpreter g = h o Psi (reading f's hidden layers) and decoder d.

    References:
        Parekh, Mozharovskyi, d'Alche-Buc. A framework to learn with interpretation. NeurIPS
        2021, https://arxiv.org/abs/2010.09345 (code: jayneelparekh/FLINT).

    Build one with :meth:`build` (by design) or :meth:`post_hoc` (around a trained classifier).

    Attributes:
        predictor: f (``model(x)`` returns its logits); interpreter: h, an ``nn.Linear`` J -> C
            whose ``weight[c, j]`` is w_{j,c}; psi: Psi; decoder: d.
        num_attributes: J; num_classes: C; input_shape: the shape of one input.
        layers: the names (in ``predictor``) of the hidden layers Psi reads.
        post_hoc: True when f is a given trained model that training leaves unchanged.
        config: what :meth:`build` needs to rebuild it (None for a post-hoc model).

    Example:
        >>> model = FLINT.build((1, 8, 8), 10, attributes=12)
        >>> x = torch.zeros(4, 1, 8, 8)
        >>> model(x).shape, model.attributes(x).shape, model.interpret(x).shape, model.layers
        (torch.Size([4, 10]), torch.Size([4, 12]), torch.Size([4, 10]), ('net.5',))
        >>> model.decode(model.attributes(x)).shape
        torch.Size([4, 1, 8, 8])
    """

    def __init__(self, predictor: nn.Module, layers: tuple[str, ...], hidden_shapes: list[tuple[int, ...]],
                 input_shape: tuple[int, ...], num_classes: int, attributes: int, *, post_hoc: bool,
                 width: int, pool: int, decoder_hidden: int, config: dict | None):
        super().__init__()
        self.predictor = predictor
        self.psi = _Attributes(hidden_shapes, attributes, width, pool)
        self.interpreter_dropout = nn.Dropout(INTERPRETER_DROPOUT)
        self.interpreter = nn.Linear(attributes, num_classes)
        self.decoder = _decoder(input_shape, attributes, decoder_hidden)
        self.layers = tuple(layers)
        self.input_shape = tuple(input_shape)
        self.num_classes = int(num_classes)
        self.num_attributes = int(attributes)
        self.post_hoc = bool(post_hoc)
        self.config = config

    # --- construction -------------------------------------------------------------------

    @classmethod
    def build(cls, input_shape: tuple[int, ...], num_classes: int, attributes: int = 12, *, hidden: int = 128,
              channels: int = 16, width: int = 64, pool: int = 2, seed: int = 0) -> "FLINT":
        """FLINT by design: f a :class:`FlintClassifier` (images or feature vectors), read
        where the paper reads it.

        Arguments:
            input_shape: ``(c, h, w)`` with even h, w, or ``(d,)``; num_classes: C.
            attributes: J, the number of attributes (at least 2; 12 for the 8x8 digits).
            hidden, channels: f's sizes (:class:`FlintClassifier`); width: Psi's channels
                (feature maps) or units (vectors); pool: Psi's pooled side for feature maps.
            seed: seeds every initial weight (the global random state is left untouched).
        """
        shape = check_architecture(input_shape, num_classes=num_classes, hidden=hidden, channels=channels,
                                   width=width, pool=pool)
        attributes = _check_attributes(attributes)
        with seeded(seed):
            predictor = FlintClassifier.build(shape, num_classes, hidden=hidden, channels=channels, seed=seed)
            hidden_shapes = _hidden_shapes(predictor, predictor.read_layers, shape)
            model = cls(predictor, predictor.read_layers, hidden_shapes, shape, num_classes, attributes,
                        post_hoc=False, width=width, pool=pool, decoder_hidden=hidden, config=None)
        model.config = {"input_shape": list(shape), "num_classes": num_classes, "attributes": attributes,
                        "hidden": hidden, "channels": channels, "width": width, "pool": pool, "seed": seed}
        return model

    @classmethod
    def post_hoc(cls, model: nn.Module, layers, attributes: int = 12, input_shape=None, *, width: int = 64,
                 pool: int = 2, decoder_hidden: int = 128, seed: int = 0) -> "FLINT":
        """An interpreter for the trained classifier ``model`` (frozen: training leaves it unchanged).

        Arguments:
            model: an ``nn.Module`` returning logits (N, C).
            layers: the name of a submodule of ``model`` (as in ``model.named_modules()``), or
                several, whose outputs Psi reads, e.g. ``"net.4"`` for the shipped digits-cnn.
            attributes: J (at least 2).
            input_shape: the shape of one input; default ``model.input_shape``.
            seed: seeds Psi, h and d (the global random state is left untouched).

        The layers' shapes and C are read off one forward pass of a zero input, in eval mode.
        """
        check_classifier(model, "model")
        if isinstance(model, FLINT):
            raise TypeError("model must be a classifier, not a FLINT model: pass its predictor")
        if input_shape is None:
            if not hasattr(model, "input_shape"):
                raise TypeError(f"input_shape is needed: {type(model).__name__} has no input_shape attribute")
            input_shape = model.input_shape
        shape = check_architecture(input_shape, width=width, pool=pool, decoder_hidden=decoder_hidden)
        attributes = _check_attributes(attributes)
        layers = _check_layers(model, layers)
        hidden_shapes, num_classes = _hidden_shapes(model, layers, shape, with_classes=True)
        with seeded(seed):
            flint = cls(model, layers, hidden_shapes, shape, num_classes, attributes, post_hoc=True, width=width,
                        pool=pool, decoder_hidden=decoder_hidden, config=None)
        return flint

    # --- the parts ----------------------------------------------------------------------

    def outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One pass: ``(f's logits (N, C), Phi (N, J), g's logits (N, C))``."""
        logits, hidden = self.predict_and_read(x)
        phi = self.psi(hidden)
        return logits, phi, self.interpreter(self.interpreter_dropout(phi))

    def predict_and_read(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """f's logits and the outputs of the read layers, in the order of :attr:`layers`."""
        return _read(self.predictor, self.layers, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """f's class logits, shape (N, C)."""
        return self.predictor(x)

    def attributes(self, x: torch.Tensor) -> torch.Tensor:
        """Phi(x), the attribute activations (N, J) (LeakyReLU outputs: non-negative but for a small leak)."""
        return self.psi(self.predict_and_read(x)[1])

    def interpret(self, x: torch.Tensor) -> torch.Tensor:
        """g's class logits h(Phi(x)), shape (N, C)."""
        return self.outputs(x)[2]

    def decode(self, phi: torch.Tensor) -> torch.Tensor:
        """d(Phi): the input redrawn from its attributes, shape (N, *input_shape)."""
        return self.decoder(phi)

    def train(self, mode: bool = True) -> "FLINT":
        """Set the mode of Psi, h and d; a post-hoc model's predictor keeps its own (the user's)."""
        if not self.post_hoc:
            return super().train(mode)
        self.training = mode
        for module in (self.psi, self.interpreter_dropout, self.interpreter, self.decoder):
            module.train(mode)
        return self

    def interpreter_parameters(self) -> list[nn.Parameter]:
        """The parameters of Psi, h and d (what post-hoc training learns)."""
        return [*self.psi.parameters(), *self.interpreter.parameters(), *self.decoder.parameters()]


def _read(model: nn.Module, layers: tuple[str, ...], x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``model(x)`` and the outputs of its submodules ``layers``. The hooks live for this one
    call and record only this thread's pass, so two threads can share a model."""
    captured: dict[str, torch.Tensor] = {}
    owner = threading.get_ident()

    def keeper(name):
        def hook(module, inputs, output):
            if threading.get_ident() == owner:
                captured[name] = output
        return hook

    modules = _named_modules(model)
    handles = [modules[name].register_forward_hook(keeper(name)) for name in layers]
    try:
        logits = model(x)
    finally:
        for handle in handles:
            handle.remove()
    missing = [name for name in layers if name not in captured]
    if missing:
        raise ValueError(f"layers: {', '.join(map(repr, missing))} did not run in the forward pass of "
                         f"{type(model).__name__}; name layers its forward uses")
    return logits, [captured[name] for name in layers]


def _check_attributes(attributes) -> int:
    return check_int(attributes, "attributes", minimum=2)


def _check_layers(model: nn.Module, layers) -> tuple[str, ...]:
    names = (layers,) if isinstance(layers, str) else layers
    try:
        names = tuple(names)
    except TypeError as error:
        raise TypeError(f"layers must be a layer name or a sequence of them, got {type(layers).__name__}") from error
    if not names or not all(isinstance(name, str) for name in names):
        raise TypeError(f"layers must be a layer name or a non-empty sequence of names, got {layers!r}")
    valid = list(_named_modules(model))
    unknown = [name for name in names if name not in valid]
    if unknown:
        raise ValueError(f"layers must name submodules of the model; {type(model).__name__} has no "
                         f"{', '.join(map(repr, unknown))}; valid names: {', '.join(valid)}")
    if len(set(names)) != len(names):
        raise ValueError(f"layers must be distinct, got {names!r}")
    return names


@torch.no_grad()
def _hidden_shapes(model: nn.Module, layers: tuple[str, ...], input_shape: tuple[int, ...], with_classes=False):
    """The shapes of one input's outputs at ``layers`` (and C), from a zero input in eval mode."""
    first = next(model.parameters(), None)
    x = torch.zeros(1, *input_shape, dtype=first.dtype if first is not None else None,
                    device=first.device if first is not None else None)
    with evaluating(model):
        logits, hidden = _read(model, layers, x)
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"model must return logits of shape (N, C) with C >= 2, got {tuple(logits.shape)}")
    shapes = [tuple(h.shape[1:]) for h in hidden]
    for name, shape in zip(layers, shapes):
        if len(shape) not in (1, 3):
            raise ValueError(f"layers: {name!r} gives outputs of shape {shape} per input; Psi reads vectors (d,) or "
                             f"feature maps (c, h, w)")
    return (shapes, logits.shape[1]) if with_classes else shapes
