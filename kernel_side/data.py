"""The embedded default data sets, each with one fixed train/test split.

Both come with scikit-learn and work offline: ``load_digits`` (1797 8x8 images, values
0..16) and ``make_moons``. The lifted moons embed the moons in a higher dimension, where
they occupy a thin neighbourhood of a plane (Dombrowski et al. 2024,
https://arxiv.org/abs/2206.05075: data on a low-dimensional manifold is where latent
counterfactuals differ from input-space ones).
"""

from __future__ import annotations

import torch

from ._checks import check_inputs, check_int, check_real

__all__ = [
    "DIGITS_CLASS_NAMES", "LiftedMoons", "MOONS_CLASS_NAMES", "load_digits_split", "load_lifted_moons_split",
    "load_moons_split",
]

DIGITS_CLASS_NAMES = [str(digit) for digit in range(10)]
MOONS_CLASS_NAMES = ["upper moon", "lower moon"]


def _as_tensors(*arrays) -> tuple[torch.Tensor, ...]:
    return tuple(
        torch.as_tensor(array, dtype=torch.float32 if array.dtype.kind == "f" else torch.int64)
        for array in arrays
    )


def load_digits_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 digits scaled to [0, 1], as images of shape (N, 1, 8, 8).

    ``train_test_split(X / 16, y, test_size=0.2, stratify=y, random_state=0)``: 1437 training
    and 360 test images; labels are int64.
    """
    from sklearn.datasets import load_digits  # imported where used: importing crosslens stays fast
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data / 16.0, digits.target, test_size=0.2, stratify=digits.target, random_state=0
    )
    x_train, y_train, x_test, y_test = _as_tensors(x_train, y_train, x_test, y_test)
    return x_train.reshape(-1, 1, 8, 8), y_train, x_test.reshape(-1, 1, 8, 8), y_test


def load_moons_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two interleaved half moons, the toy set of Zhuang et al. (2019).

    ``make_moons(n_samples=1000, noise=0.2, random_state=0)`` split with
    ``train_test_split(test_size=0.4, random_state=42)``: 600 training, 400 test points.
    """
    from sklearn.datasets import make_moons
    from sklearn.model_selection import train_test_split

    x, y = make_moons(n_samples=1000, noise=0.2, random_state=0)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.4, random_state=42)
    return _as_tensors(x_train, y_train, x_test, y_test)


class LiftedMoons(tuple):
    """The moons of :func:`load_moons_split` lifted into R^dim: unpacks, like every split, as
    ``(x_train, y_train, x_test, y_test)``, with the plane they lie on as extras.

    Fields:
        x_train (600, dim), y_train (600,), x_test (400, dim), y_test (400,): float32 points
            and int64 labels, in the order of :func:`load_moons_split`.
        basis: (dim, 2) orthonormal columns spanning the plane the moons lie on.
    """

    def __new__(cls, x_train, y_train, x_test, y_test, basis: torch.Tensor) -> "LiftedMoons":
        split = super().__new__(cls, (x_train, y_train, x_test, y_test))
        split.basis = basis
        return split

    x_train = property(lambda self: self[0])
    y_train = property(lambda self: self[1])
    x_test = property(lambda self: self[2])
    y_test = property(lambda self: self[3])

    def manifold_distance(self, x: torch.Tensor) -> torch.Tensor:
        """Distance of each point (N, dim) to the plane of the moons, ``||(I - B B^T) x||``, shape (N,)."""
        x = check_inputs(x, (self.basis.shape[0],), "x", dtype=self.basis.dtype)
        basis = self.basis.to(x.device)
        return (x - (x @ basis) @ basis.T).norm(dim=1)


def load_lifted_moons_split(dim: int = 10, noise: float = 0.01, seed: int = 0) -> LiftedMoons:
    """The two moons embedded in R^dim by a random orthonormal basis, plus isotropic noise.

    ``x = B m + noise * e`` with m a point of :func:`load_moons_split`, B a (dim, 2) matrix
    with orthonormal columns (the QR factor of a seeded Gaussian matrix) and e standard
    normal in all ``dim`` coordinates, so a point's distance to the plane is about
    ``noise * sqrt(dim - 2)``.

    Example:
        >>> moons = load_lifted_moons_split()
        >>> x_train, y_train, x_test, y_test = moons
        >>> x_train.shape, moons.basis.shape
        (torch.Size([600, 10]), torch.Size([10, 2]))
        >>> bool(moons.manifold_distance(x_test).median() < 0.05)
        True
    """
    check_int(dim, "dim", minimum=2)
    check_real(noise, "noise", 0.0, closed="low")
    generator = torch.Generator().manual_seed(seed)
    basis = torch.linalg.qr(torch.randn(dim, 2, generator=generator, dtype=torch.float64))[0]
    x_train, y_train, x_test, y_test = load_moons_split()

    def lift(points: torch.Tensor) -> torch.Tensor:
        noises = torch.randn(len(points), dim, generator=generator, dtype=torch.float64)
        return (points.double() @ basis.T + noise * noises).float()

    return LiftedMoons(lift(x_train), y_train, lift(x_test), y_test, basis.float())
