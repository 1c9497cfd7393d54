"""The invertible classifier: an invertible feature map T followed by one linear layer.

References:
    Zhuang, Dvornek, Li, Yang, Duncan. Decision explanation and feature importance for
    invertible networks. ICCV Workshops 2019. https://arxiv.org/abs/1910.00406

Because T is a bijection and the head is linear, every decision boundary is a hyperplane in
feature space; :mod:`crosslens.kernel_side.methods.boundary` projects onto it in closed form. The
same T with a standard normal base density is a normalizing flow, so the model also has an
exact ``log_prob``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import check_choice, check_int
from .._runtime import seeded
from .flows import CONDITIONERS, Flow, coupling_flow

__all__ = ["InvertibleClassifier"]


class InvertibleClassifier(nn.Module):
    """``logits = head(T(x))`` with T an exactly invertible flow.

    Arguments:
        flow: the invertible feature map T on flat vectors of size D.
        num_classes: C, the number of classes of the linear head ``nn.Linear(D, C)``.
        input_shape: the shape of one input, e.g. ``(2,)`` or ``(1, 8, 8)``; D is its size.

    Example:
        >>> model = InvertibleClassifier.build((2,), num_classes=2, blocks=4, hidden=16)
        >>> x = torch.randn(3, 2)
        >>> bool(torch.allclose(model.inverse(model.features(x)), x, atol=1e-5))
        True
    """

    def __init__(self, flow: Flow, num_classes: int, input_shape: tuple[int, ...]):
        super().__init__()
        self.flow = flow
        self.input_shape = tuple(int(size) for size in input_shape)
        self.num_classes = int(num_classes)
        self.head = nn.Linear(math.prod(self.input_shape), self.num_classes)
        self.config: dict = {}

    @classmethod
    def build(
        cls,
        input_shape: tuple[int, ...],
        num_classes: int,
        blocks: int = 8,
        hidden: int = 64,
        clamp: float = 2.0,
        seed: int = 0,
        conditioner: str = "mlp",
        squeeze: int = 0,
    ) -> "InvertibleClassifier":
        """A fresh model whose feature map is :func:`~crosslens.kernel_side.models.flows.coupling_flow`
        (``blocks`` affine couplings, each followed by ActNorm) and a linear head; ``seed`` seeds
        its initial weights (the global random state is left untouched). ``conditioner``
        (``"mlp"`` or ``"conv"``) and ``squeeze`` (coarser scales for the couplings) are
        those of ``coupling_flow``: for colour images such as (3, 32, 32), convolutional
        couplings on squeezed scales keep the model small and let it see whole objects."""
        check_choice(conditioner, "conditioner", CONDITIONERS)
        check_int(squeeze, "squeeze", minimum=0)
        with seeded(seed):  # seeds the weights, never the user's random state
            flow = coupling_flow(tuple(input_shape), blocks, hidden, clamp, torch.Generator().manual_seed(seed),
                                 conditioner, squeeze)
            model = cls(flow, num_classes, input_shape)
        model.config = {
            "input_shape": list(input_shape),
            "num_classes": int(num_classes),
            "blocks": blocks,
            "hidden": hidden,
            "clamp": clamp,
            "seed": seed,
            "conditioner": conditioner,
            "squeeze": squeeze,
        }
        return model

    def _flatten(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """z = T(x), shape (N, D)."""
        return self.flow(self._flatten(x))[0]

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """x = T^-1(z), shape (N, *input_shape)."""
        return self.flow.inverse(z).reshape(z.shape[0], *self.input_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits, shape (N, C)."""
        return self.head(self.features(x))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-density of x under the flow, shape (N,)."""
        return self.flow.log_prob(self._flatten(x))

    def features_and_log_prob(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(T(x), log p(x))`` in one pass (what the hybrid training objective needs)."""
        return self.flow.encode(self._flatten(x))
