"""Generative models behind one small interface: a normalizing flow (exact) and a VAE (approximate).

Diffeomorphic counterfactuals search in the code space of a generator g instead of in input
space, so every step decodes to a point near the data (Dombrowski, Gerken, Mueller, Kessel.
Diffeomorphic counterfactuals with generative models. TPAMI 2024,
https://arxiv.org/abs/2206.05075). A normalizing flow makes g a diffeomorphism, so the
search starts exactly at the input; a VAE's decoder is only approximately inverted by its
encoder mean, so the search starts at the reconstruction.

References:
    Dinh, Sohl-Dickstein, Bengio. Density estimation using Real NVP. ICLR 2017.
    https://arxiv.org/abs/1605.08803 (affine couplings, the logit pixel transform,
    dequantisation and bits per dimension)

    Kingma, Welling. Auto-encoding variational Bayes. ICLR 2014.
    https://arxiv.org/abs/1312.6114 (the VAE and its evidence lower bound)
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from .._checks import check_architecture, check_choice, check_int, check_real
from .._runtime import seeded
from .flows import CONDITIONERS, Flow, coupling_flow

__all__ = ["Generator", "NormalizingFlow", "VAE", "dequantize"]

LOGIT_MARGIN = 0.05  # the logit transform sees 0.05 + 0.9 x', away from 0 and 1 (Dinh et al. 2017)
OUTPUTS = ("sigmoid", "identity")
MIN_LOG_SCALE = -7.0  # floor of the VAE decoder's log-scale: constant pixels cannot drive it to -inf


@runtime_checkable
class Generator(Protocol):
    """What the counterfactual search needs from a generative model.

    ``encode(x)`` maps a batch (N, *input_shape) to codes (N, latent_dim) and ``decode(z)``
    maps codes back. ``exact`` is True when decode is the exact inverse of encode (a
    diffeomorphism, as for :class:`NormalizingFlow`); a flow also offers ``log_prob(x) -> (N,)``,
    the exact log-density in input space. A :class:`VAE` has no ``log_prob``.
    """

    input_shape: tuple[int, ...]
    latent_dim: int
    exact: bool

    def encode(self, x: torch.Tensor) -> torch.Tensor: ...

    def decode(self, z: torch.Tensor) -> torch.Tensor: ...


def _check_batch(x: torch.Tensor, shape: tuple[int, ...], name: str) -> None:
    """Shape check only: encode and decode run inside optimisation loops, where a finiteness
    check would synchronise with the device at every step."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if tuple(x.shape[1:]) != tuple(shape) or x.ndim != len(shape) + 1:
        raise ValueError(f"{name} must have shape (N, {', '.join(map(str, shape))}), got {tuple(x.shape)}")


class NormalizingFlow(nn.Module):
    r"""A RealNVP normalizing flow x <-> z with a standard normal base density (Dinh et al. 2017).

    With ``levels`` set, the data are taken to be quantised to ``levels`` values
    ``k / (levels - 1)`` in [0, 1] (17 for scikit-learn's digits). The flow then first maps
    each value to ``x' = ((levels - 1) x + 0.5) / levels`` (the centre of its dequantisation
    bin in [0, 1]) and applies the logit transform ``y = logit(0.05 + 0.9 x')``, an exact
    bijection from an open box around [0, 1] onto R. With ``levels=None`` the data are
    continuous and enter the couplings unchanged.

    Arguments (of :meth:`build`):
        input_shape: the shape of one input, e.g. ``(1, 8, 8)`` or ``(10,)``.
        blocks: the number of affine couplings; hidden: width of their conditioners.
        levels: the number of quantisation levels of the data, or None for continuous data
            (256 for 8-bit images such as :func:`~crosslens.kernel_side.load_shapes_split`).
        clamp: bound of each coupling's log-scale.
        seed: seeds weights, masks and permutations (the global random state is left untouched).
        conditioner, squeeze: the couplings' conditioners (``"mlp"`` or ``"conv"``) and the
            number of coarser scales they run at, as in
            :func:`~crosslens.kernel_side.models.flows.coupling_flow`.

    Example:
        >>> flow = NormalizingFlow.build((1, 8, 8), blocks=2, hidden=16)
        >>> x = torch.rand(4, 1, 8, 8)
        >>> z = flow.encode(x)
        >>> z.shape, flow.log_prob(x).shape
        (torch.Size([4, 64]), torch.Size([4]))
        >>> bool((flow.decode(z) - x).abs().max() < 1e-5)
        True
    """

    exact = True

    def __init__(self, flow: Flow, input_shape: tuple[int, ...], levels: int | None = None):
        super().__init__()
        self.flow = flow
        self.input_shape = tuple(input_shape)
        self.latent_dim = math.prod(self.input_shape)
        self.levels = levels
        self.config: dict = {}

    @classmethod
    def build(cls, input_shape: tuple[int, ...], blocks: int = 8, hidden: int = 128, levels: int | None = 17,
              clamp: float = 2.0, seed: int = 0, conditioner: str = "mlp", squeeze: int = 0) -> "NormalizingFlow":
        shape = check_architecture(input_shape, blocks=blocks, hidden=hidden)
        if levels is not None:
            check_int(levels, "levels (None for continuous data)", minimum=2)
        check_real(clamp, "clamp", 0.0)
        check_choice(conditioner, "conditioner", CONDITIONERS)
        check_int(squeeze, "squeeze", minimum=0)
        with seeded(seed):
            flow = coupling_flow(shape, blocks, hidden, clamp, torch.Generator().manual_seed(seed), conditioner,
                                 squeeze)
        model = cls(flow, shape, levels)
        model.config = {"input_shape": list(shape), "blocks": blocks, "hidden": hidden, "levels": levels,
                        "clamp": clamp, "seed": seed, "conditioner": conditioner, "squeeze": squeeze}
        return model

    def _pixel_affine(self) -> tuple[float, float]:
        """``(a, b)`` with ``0.05 + 0.9 x' = a x + b``, the argument of the logit."""
        squeeze = 1 - 2 * LOGIT_MARGIN
        return squeeze * (self.levels - 1) / self.levels, LOGIT_MARGIN + squeeze * 0.5 / self.levels

    def _to_unconstrained(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The pixel transform on flat x: ``(y, log|det dy/dx|)``."""
        if self.levels is None:
            return x, x.new_zeros(x.shape[0])
        scale, offset = self._pixel_affine()
        p = scale * x + offset
        log_p, log_not_p = torch.log(p), torch.log1p(-p)
        return log_p - log_not_p, (math.log(scale) - log_p - log_not_p).sum(1)

    def _from_unconstrained(self, y: torch.Tensor) -> torch.Tensor:
        if self.levels is None:
            return y
        scale, offset = self._pixel_affine()
        return (torch.sigmoid(y) - offset) / scale

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """z = g^-1(x), shape (N, latent_dim)."""
        _check_batch(x, self.input_shape, "x")
        return self.flow(self._to_unconstrained(x.reshape(x.shape[0], -1))[0])[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """x = g(z), shape (N, *input_shape): the exact inverse of :meth:`encode`."""
        _check_batch(z, (self.latent_dim,), "z")
        return self._from_unconstrained(self.flow.inverse(z)).reshape(z.shape[0], *self.input_shape)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-density of x in input space (nats), shape (N,)."""
        _check_batch(x, self.input_shape, "x")
        y, logdet = self._to_unconstrained(x.reshape(x.shape[0], -1))
        return self.flow.log_prob(y) + logdet


def dequantize(flow: NormalizingFlow, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """x plus uniform noise over its quantisation bin of width ``1 / (flow.levels - 1)``
    (Dinh et al. 2017); x itself when the flow models continuous data (``levels=None``).

    Training on dequantised data keeps the density from collapsing onto the discrete values;
    :func:`~crosslens.kernel_side.metrics.bits_per_dim` averages over such draws of its own
    (pass it the quantised x, not a dequantised one).
    """
    if flow.levels is None:
        return x
    noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) - 0.5
    return x + noise / (flow.levels - 1)


class VAE(nn.Module):
    r"""A variational autoencoder with Gaussian codes (Kingma and Welling 2014).

    Encoder and decoder are two-hidden-layer MLPs on flattened inputs; the decoder's
    likelihood is Gaussian with one learned scale per input dimension (floored at
    ``exp(-7)``). ``encode`` gives the encoder mean, ``decode`` the decoder mean, so
    ``decode(encode(x))`` only approximates x (``exact = False``).

    Arguments (of :meth:`build`):
        input_shape: the shape of one input.
        latent_dim: the code size; hidden: width of the hidden layers.
        output: ``"sigmoid"`` for data in [0, 1] such as images (the decoder mean stays in
            (0, 1)), or ``"identity"`` for continuous data.
        seed: seeds the initial weights (the global random state is left untouched).

    Example:
        >>> vae = VAE.build((1, 8, 8), latent_dim=4, hidden=32)
        >>> x = torch.rand(5, 1, 8, 8)
        >>> vae.encode(x).shape, vae.decode(vae.encode(x)).shape, vae.elbo(x).shape
        (torch.Size([5, 4]), torch.Size([5, 1, 8, 8]), torch.Size([5]))
    """

    exact = False

    def __init__(self, encoder: nn.Module, decoder: nn.Module, input_shape: tuple[int, ...], latent_dim: int,
                 output: str = "sigmoid"):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.input_shape = tuple(input_shape)
        self.latent_dim = int(latent_dim)
        self.output = output
        self.log_scale = nn.Parameter(torch.zeros(math.prod(self.input_shape)))
        self.config: dict = {}

    @classmethod
    def build(cls, input_shape: tuple[int, ...], latent_dim: int = 8, hidden: int = 128, output: str = "sigmoid",
              seed: int = 0) -> "VAE":
        shape = check_architecture(input_shape, latent_dim=latent_dim, hidden=hidden)
        check_choice(output, "output", OUTPUTS)
        features = math.prod(shape)

        def mlp(width_in: int, width_out: int) -> nn.Sequential:
            return nn.Sequential(nn.Linear(width_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, width_out))

        with seeded(seed):
            model = cls(mlp(features, 2 * latent_dim), mlp(latent_dim, features), shape, latent_dim, output)
        model.config = {"input_shape": list(shape), "latent_dim": latent_dim, "hidden": hidden, "output": output,
                        "seed": seed}
        return model

    def _decoder_mean(self, z: torch.Tensor) -> torch.Tensor:
        out = self.decoder(z)
        return torch.sigmoid(out) if self.output == "sigmoid" else out

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder mean, shape (N, latent_dim)."""
        _check_batch(x, self.input_shape, "x")
        return self.encoder(x.reshape(x.shape[0], -1)).chunk(2, dim=1)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder mean, shape (N, *input_shape)."""
        _check_batch(z, (self.latent_dim,), "z")
        return self._decoder_mean(z).reshape(z.shape[0], *self.input_shape)

    def elbo(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The evidence lower bound on log p(x) (nats) from one reparameterised sample, shape (N,)."""
        _check_batch(x, self.input_shape, "x")
        flat = x.reshape(x.shape[0], -1)
        mean, log_var = self.encoder(flat).chunk(2, dim=1)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        reconstruction = self._decoder_mean(mean + torch.exp(0.5 * log_var) * noise)
        log_scale = self.log_scale.clamp_min(MIN_LOG_SCALE)
        log_likelihood = (-0.5 * ((flat - reconstruction) * torch.exp(-log_scale)).pow(2) - log_scale
                          - 0.5 * math.log(2 * math.pi)).sum(1)
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var).sum(1)
        return log_likelihood - kl
