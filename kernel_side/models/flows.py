"""Invertible building blocks: a RealNVP-style normalizing flow written from scratch.

Every layer maps ``x -> (y, log|det dy/dx|)`` and has an exact ``inverse``. Stacked in a
:class:`Flow`, they form the invertible feature map T of an invertible classifier and, with
a standard normal base density, a normalizing flow with an exact ``log_prob``.

References:
    Dinh, Sohl-Dickstein, Bengio. Density estimation using Real NVP. ICLR 2017.
    https://arxiv.org/abs/1605.08803 (affine couplings)

    Kingma, Dhariwal. Glow: Generative flow with invertible 1x1 convolutions. NeurIPS 2018.
    https://arxiv.org/abs/1807.03039 (ActNorm)

Layers work on flat vectors ``(N, D)``; image inputs are flattened by the model that owns
the flow, and image structure enters through the coupling masks (see :func:`checkerboard_mask`)
and, with :class:`ConvAffineCoupling`, through convolutional conditioners.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ActNorm", "AffineCoupling", "CONDITIONERS", "ConvAffineCoupling", "Flow", "Permutation", "Squeeze",
    "alternating_masks", "channel_mask", "checkerboard_mask", "coupling_flow",
]

CONDITIONERS = ("mlp", "conv")


class ActNorm(nn.Module):
    r"""Per-dimension affine map ``y = (x - loc) * exp(-log_scale)``, initialised from data.

    The first batch seen in training mode sets ``loc`` and ``log_scale`` so that the output
    has zero mean and unit variance per dimension (Kingma and Dhariwal 2018).

    Arguments:
        features: the dimension D of the vectors it transforms.
    """

    def __init__(self, features: int):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(features))
        self.log_scale = nn.Parameter(torch.zeros(features))
        self.register_buffer("initialized", torch.tensor(False))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and not bool(self.initialized):
            with torch.no_grad():
                self.loc.copy_(x.mean(0))
                self.log_scale.copy_(x.std(0).clamp_min(1e-3).log())
                self.initialized.fill_(True)
        y = (x - self.loc) * torch.exp(-self.log_scale)
        return y, (-self.log_scale).sum().expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * torch.exp(self.log_scale) + self.loc


class Permutation(nn.Module):
    """A fixed permutation of the dimensions (volume preserving).

    Arguments:
        features: the dimension D.
        generator: the random generator that draws the permutation.
    """

    def __init__(self, features: int, generator: torch.Generator | None = None):
        super().__init__()
        perm = torch.randperm(features, generator=generator)
        self.register_buffer("perm", perm)
        self.register_buffer("inverse_perm", torch.argsort(perm))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[:, self.perm], x.new_zeros(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y[:, self.inverse_perm]


class Squeeze(Permutation):
    """Space to depth on flat images: ``(C, H, W) -> (4C, H/2, W/2)``, each 2x2 patch of
    pixels becoming 4 channels of one position (Dinh et al. 2017). A fixed permutation of
    the dimensions (volume preserving); the couplings after it see the image at half the
    resolution, so their 3x3 convolutions reach twice as far.

    Arguments:
        shape: ``(C, H, W)`` of the images it receives, H and W even.
    """

    def __init__(self, shape: tuple[int, int, int]):
        nn.Module.__init__(self)
        channels, height, width = shape
        perm = torch.arange(channels * height * width).reshape(channels, height // 2, 2, width // 2, 2)
        perm = perm.permute(0, 2, 4, 1, 3).reshape(-1)
        self.register_buffer("perm", perm, persistent=False)  # follows from the shape: not stored
        self.register_buffer("inverse_perm", torch.argsort(perm), persistent=False)


class AffineCoupling(nn.Module):
    r"""Affine coupling with a clamped scale (Dinh et al. 2017).

    The dimensions where ``mask == 1`` pass unchanged and condition an MLP that gives a
    scale ``s`` and shift ``t`` for the others:
    ``y = m x + (1 - m) (x exp(s) + t)``, with ``s = c tanh(s_raw / c)`` clamped to
    ``(-c, c)`` so that neither direction can blow up.

    Arguments:
        mask: a 0/1 tensor of shape (D,).
        hidden: width of the two hidden layers of the conditioner.
        clamp: the bound c of the log-scale.
    """

    def __init__(self, mask: torch.Tensor, hidden: int = 64, clamp: float = 2.0):
        super().__init__()
        features = mask.numel()
        self.register_buffer("mask", mask.float().reshape(features))
        self.register_buffer("free", 1 - self.mask, persistent=False)
        self.clamp = clamp
        self.net = nn.Sequential(
            nn.Linear(features, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 2 * features),
        )
        # Start as the identity map: zero scale and shift.
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        self._linears = (self.net[0], self.net[2], self.net[4])  # called directly: the flow runs in tight loops

    def _scale_shift(self, kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-scale and shift; only their free dimensions (``mask == 0``) are used."""
        first, second, last = self._linears
        hidden = F.silu(F.linear(F.silu(F.linear(kept, first.weight, first.bias)), second.weight, second.bias))
        raw_scale, shift = F.linear(hidden, last.weight, last.bias).chunk(2, dim=1)
        return self.clamp * torch.tanh(raw_scale / self.clamp), shift

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        kept = x * self.mask
        scale, shift = self._scale_shift(kept)
        scale = scale * self.free
        return kept + self.free * (x * torch.exp(scale) + shift), scale.sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        kept = y * self.mask
        scale, shift = self._scale_shift(kept)
        return kept + self.free * ((y - shift) * torch.exp(-scale))


class ConvAffineCoupling(AffineCoupling):
    r"""Affine coupling whose conditioner is a small convolutional network, for images.

    The same map as :class:`AffineCoupling`, but ``s`` and ``t`` come from three convolutions
    on the kept pixels seen as an image (3x3, 1x1, 3x3, as in Glow's couplings), with the mask
    as extra input channels so the network knows which pixels it is given. Its weights do not
    grow with the image size (an MLP conditioner on a 3x32x32 image needs 9216 x hidden
    weights per coupling), and each coupling sees a 5x5 neighbourhood, so a stack of them
    mixes information across the image.

    Arguments:
        mask: a 0/1 tensor of shape (D,), D the size of ``image_shape``.
        image_shape: ``(channels, height, width)`` of the flat vectors it transforms.
        hidden: channels of the conditioner's hidden layers.
        clamp: the bound c of the log-scale.
    """

    def __init__(self, mask: torch.Tensor, image_shape: tuple[int, int, int], hidden: int = 64, clamp: float = 2.0):
        nn.Module.__init__(self)
        self.image_shape = tuple(int(size) for size in image_shape)
        channels = self.image_shape[0]
        self.register_buffer("mask", mask.float().reshape(-1))
        self.register_buffer("free", 1 - self.mask, persistent=False)
        self.clamp = clamp
        self.net = nn.Sequential(
            nn.Conv2d(2 * channels, hidden, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(hidden, hidden, 1),
            nn.SiLU(),
            nn.Conv2d(hidden, 2 * channels, 3, padding=1),
        )
        nn.init.zeros_(self.net[-1].weight)  # start as the identity map
        nn.init.zeros_(self.net[-1].bias)

    def _scale_shift(self, kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        count = kept.shape[0]
        image = kept.reshape(count, *self.image_shape)
        mask = self.mask.reshape(1, *self.image_shape).expand_as(image)
        raw_scale, shift = self.net(torch.cat([image, mask], dim=1)).chunk(2, dim=1)
        raw_scale, shift = raw_scale.reshape(count, -1), shift.reshape(count, -1)
        return self.clamp * torch.tanh(raw_scale / self.clamp), shift


class Flow(nn.Module):
    """A stack of invertible layers with a standard normal base density.

    Arguments:
        layers: modules with ``forward(x) -> (y, logdet)`` and ``inverse(y) -> x``.

    Example:
        >>> flow = Flow([AffineCoupling(torch.tensor([1., 0.])), AffineCoupling(torch.tensor([0., 1.]))])
        >>> x = torch.randn(5, 2)
        >>> bool(torch.allclose(flow.inverse(flow(x)[0]), x))
        True
    """

    def __init__(self, layers: list[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, layer_logdet = layer(x)
            logdet = logdet + layer_logdet
        return x, logdet

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, log p(x))``: the code and the exact log-density
        ``log N(z; 0, I) + log|det dz/dx|`` in one pass."""
        z, logdet = self(x)
        base = -0.5 * (z.pow(2).sum(1) + z.shape[1] * math.log(2 * math.pi))
        return z, base + logdet

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-density of ``x`` under the flow, shape (N,)."""
        return self.encode(x)[1]


def checkerboard_mask(shape: tuple[int, ...], parity: int = 0) -> torch.Tensor:
    """An image-shaped checkerboard mask over the last two dimensions, flattened to (D,)."""
    height, width = shape[-2], shape[-1]
    rows = torch.arange(height).unsqueeze(1)
    cols = torch.arange(width).unsqueeze(0)
    board = ((rows + cols + parity) % 2).float()
    return board.expand(*shape).reshape(-1).clone()


def channel_mask(shape: tuple[int, int, int], generator: torch.Generator | None = None) -> torch.Tensor:
    """An image-shaped mask that keeps a random half of the channels at every position, flattened to (D,)."""
    channels = shape[0]
    kept = torch.zeros(channels)
    kept[torch.randperm(channels, generator=generator)[: channels // 2]] = 1
    return kept[:, None, None].expand(*shape).reshape(-1).clone()


def alternating_masks(features: int, count: int, generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """``count`` masks for flat vectors: random halves, each followed by its complement."""
    masks = []
    for index in range(count):
        if index % 2 == 0:
            mask = torch.zeros(features)
            mask[torch.randperm(features, generator=generator)[: features // 2]] = 1
        else:
            mask = 1 - masks[-1]
        masks.append(mask)
    return masks


def coupling_flow(input_shape: tuple[int, ...], blocks: int, hidden: int, clamp: float,
                  generator: torch.Generator, conditioner: str = "mlp", squeeze: int = 0) -> Flow:
    """``blocks`` affine couplings, each followed by ActNorm, after an initial ActNorm.

    Image-shaped inputs (two or more dimensions) use alternating checkerboard masks; flat
    vectors use random half masks and a fixed permutation after every pair of couplings.
    ``conditioner`` is ``"mlp"`` (:class:`AffineCoupling`, any input) or ``"conv"``
    (:class:`ConvAffineCoupling`, images of shape ``(channels, height, width)``). With
    ``squeeze`` = s > 0 (images of shape ``(C, H, W)``, H and W divisible by 2^s), the
    couplings run at s coarser scales, a :class:`Squeeze` before each, ``blocks`` split evenly
    among them (the earlier scales get any extra): e.g. a (3, 32, 32) image, ``squeeze=2``
    and 6 blocks give 3 couplings on (12, 16, 16) then 3 on (48, 8, 8), and the features
    come out in that last layout, flattened. At a squeezed scale the masks cycle through
    two checkerboards, a random half of the channels (:func:`channel_mask`) and its
    complement, so that the pixels and colours of one position condition each other too
    (Dinh et al. 2017). Conditioner weights come from the global random state; masks and
    permutations from ``generator``.
    """
    features = math.prod(input_shape)
    is_image = len(input_shape) >= 2
    if (conditioner == "conv" or squeeze) and len(input_shape) != 3:
        raise ValueError(f"conditioner='conv' and squeeze > 0 need image inputs of shape (channels, height, width), "
                         f"got input_shape {tuple(input_shape)}")
    if squeeze and (input_shape[1] % 2**squeeze or input_shape[2] % 2**squeeze):
        raise ValueError(f"squeeze={squeeze} needs height and width divisible by 2 ** squeeze = {2**squeeze}, "
                         f"got input_shape {tuple(input_shape)}")
    layers: list[nn.Module] = [ActNorm(features)]
    shape = tuple(input_shape)
    scales = [blocks // squeeze + (scale < blocks % squeeze) for scale in range(squeeze)] if squeeze else [blocks]
    masks = None if is_image else iter(alternating_masks(features, blocks, generator))
    for count in scales:
        if squeeze:
            layers.append(Squeeze(shape))
            shape = (4 * shape[0], shape[1] // 2, shape[2] // 2)
        previous = None
        for index in range(count):
            if not is_image:
                mask = next(masks)
            elif squeeze and index % 4 >= 2:  # the channels of one position condition each other
                mask = channel_mask(shape, generator) if index % 4 == 2 else 1 - previous
            else:
                mask = checkerboard_mask(shape, parity=index % 2)
            previous = mask
            coupling = (ConvAffineCoupling(mask, shape, hidden=hidden, clamp=clamp) if conditioner == "conv"
                        else AffineCoupling(mask, hidden=hidden, clamp=clamp))
            layers += [coupling, ActNorm(features)]
            if not is_image and index % 2 == 1:
                layers.append(Permutation(features, generator))
    return Flow(layers)
