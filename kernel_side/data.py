"""The embedded default data sets, split exactly as DESIGN.md fixes them.

Both come with scikit-learn and work offline: ``load_digits`` (1797 8x8 images, values
0..16) and ``make_moons``.
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits, make_moons
from sklearn.model_selection import train_test_split

__all__ = ["load_digits_split", "load_moons_split", "DIGITS_CLASS_NAMES", "MOONS_CLASS_NAMES"]

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
    x, y = make_moons(n_samples=1000, noise=0.2, random_state=0)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.4, random_state=42)
    return _as_tensors(x_train, y_train, x_test, y_test)
