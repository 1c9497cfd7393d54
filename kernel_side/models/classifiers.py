"""Plain classifiers to explain: a multilayer perceptron and a small convolutional network.

They are what diffeomorphic counterfactuals explain (Dombrowski, Gerken, Mueller, Kessel.
Diffeomorphic counterfactuals with generative models. TPAMI 2024,
https://arxiv.org/abs/2206.05075): ordinary networks with no invertible structure, whose
input gradients alone give adversarial noise. Train them with
``fit(model, x, y, objective="cross_entropy")``.

Both use smooth SiLU activations, so input gradients change continuously along a search.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import check_architecture, check_choice
from .._runtime import seeded

__all__ = ["ConvClassifier", "MLPClassifier"]

POOLINGS = ("flatten", "average")


class _Classifier(nn.Module):
    """``logits = net(x)`` with the attributes the engine reads: input_shape, num_classes, config."""

    def __init__(self, net: nn.Module, input_shape: tuple[int, ...], num_classes: int, config: dict):
        super().__init__()
        self.net = net
        self.input_shape = tuple(input_shape)
        self.num_classes = int(num_classes)
        self.config = config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits, shape (N, C)."""
        return self.net(x)


class MLPClassifier(_Classifier):
    """A multilayer perceptron on flattened inputs.

    Arguments (of :meth:`build`):
        input_shape: the shape of one input, e.g. ``(10,)`` or ``(1, 8, 8)``.
        num_classes: C, the number of classes (at least 2).
        hidden: width of each hidden layer; layers: how many hidden layers.
        seed: seeds the initial weights (the global random state is left untouched).

    Example:
        >>> model = MLPClassifier.build((1, 8, 8), num_classes=10, hidden=32)
        >>> model(torch.zeros(5, 1, 8, 8)).shape
        torch.Size([5, 10])
    """

    @classmethod
    def build(cls, input_shape: tuple[int, ...], num_classes: int, hidden: int = 256, layers: int = 2,
              seed: int = 0) -> "MLPClassifier":
        shape = check_architecture(input_shape, num_classes=num_classes, hidden=hidden, layers=layers)
        widths = [math.prod(shape)] + [hidden] * layers
        with seeded(seed):
            modules: list[nn.Module] = [nn.Flatten()]
            for width_in, width_out in zip(widths[:-1], widths[1:]):
                modules += [nn.Linear(width_in, width_out), nn.SiLU()]
            modules.append(nn.Linear(widths[-1], num_classes))
            net = nn.Sequential(*modules)
        config = {"input_shape": list(shape), "num_classes": num_classes, "hidden": hidden, "layers": layers,
                  "seed": seed}
        return cls(net, shape, num_classes, config)


class ConvClassifier(_Classifier):
    """3x3 convolution blocks (each conv, SiLU, 2x2 average pooling), then an MLP head.

    Arguments (of :meth:`build`):
        input_shape: ``(channels, height, width)``, height and width divisible by ``2 ** blocks``.
        num_classes: C, the number of classes (at least 2).
        channels: output channels of the first block; each further block doubles them.
        hidden: width of the hidden layer of the head.
        blocks: the number of convolution blocks (2 for 8x8 digits; 3 for 32x32 scenes,
            whose objects span more than the 8 pixels two blocks see).
        pooling: what the head sees: ``"flatten"`` every position of the last block's
            feature map, or ``"average"`` their mean over the positions (a global average
            pooling: the head cannot tell where a feature was found, so what it learns
            about an object anywhere holds everywhere).
        seed: seeds the initial weights (the global random state is left untouched).

    Example:
        >>> model = ConvClassifier.build((1, 8, 8), num_classes=10, channels=4, hidden=16)
        >>> model(torch.zeros(5, 1, 8, 8)).shape
        torch.Size([5, 10])
        >>> ConvClassifier.build((3, 32, 32), 4, channels=4, hidden=8, blocks=3, pooling="average")(
        ...     torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 4])
    """

    @classmethod
    def build(cls, input_shape: tuple[int, ...], num_classes: int, channels: int = 32, hidden: int = 128,
              blocks: int = 2, pooling: str = "flatten", seed: int = 0) -> "ConvClassifier":
        shape = check_architecture(input_shape, num_classes=num_classes, channels=channels, hidden=hidden,
                                   blocks=blocks)
        check_choice(pooling, "pooling", POOLINGS)
        side = 2**blocks
        if len(shape) != 3 or shape[1] % side or shape[2] % side:
            raise ValueError(f"input_shape must be (channels, height, width) with height and width divisible by "
                             f"2 ** blocks = {side}, got {tuple(input_shape)}")
        with seeded(seed):
            modules: list[nn.Module] = []
            width_in = shape[0]
            for block in range(blocks):
                width_out = channels * 2**block
                modules += [nn.Conv2d(width_in, width_out, 3, padding=1), nn.SiLU(), nn.AvgPool2d(2)]
                width_in = width_out
            if pooling == "average":
                modules.append(nn.AdaptiveAvgPool2d(1))
                features = width_in
            else:
                features = width_in * (shape[1] // side) * (shape[2] // side)
            modules += [nn.Flatten(), nn.Linear(features, hidden), nn.SiLU(), nn.Linear(hidden, num_classes)]
            net = nn.Sequential(*modules)
        config = {"input_shape": list(shape), "num_classes": num_classes, "channels": channels, "hidden": hidden,
                  "blocks": blocks, "pooling": pooling, "seed": seed}
        return cls(net, shape, num_classes, config)
