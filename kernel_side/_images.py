"""Image operations the methods share, batched in torch: Gaussian blur and morphological closing.

Every function takes a batch of single-channel maps (B, H, W) and works for any size; what a
method tuned for 128-pixel images is scaled to the image with :func:`scaled`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["close", "gaussian_blur", "image_shape", "scaled"]

REFERENCE_SIZE = 128  # pixels: the image size the published mask settings were tuned for


def image_shape(input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``(channels, height, width)`` in which an input of ``input_shape`` is seen as a picture:
    (C, H, W) as is (leading axes merged into channels), (H, W) as one channel, (D,) as a
    1 x D strip (features side by side)."""
    shape = tuple(int(size) for size in input_shape)
    if len(shape) >= 3:
        return (math.prod(shape[:-2]), shape[-2], shape[-1])
    if len(shape) == 2:
        return (1, *shape)
    return (1, 1, shape[0])


def scaled(size: float, height: int, width: int) -> float:
    """``size`` (in pixels of a 128-pixel image) scaled to an image of ``height`` x ``width``."""
    return size * min(height, width) / REFERENCE_SIZE


def _disk(diameter: int, device, dtype) -> torch.Tensor:
    """(1, 1, d, d) an elliptic structuring element of ``diameter`` pixels (OpenCV's MORPH_ELLIPSE)."""
    centre = (diameter - 1) / 2
    grid = torch.arange(diameter, device=device, dtype=dtype) - centre
    inside = grid[:, None] ** 2 + grid[None, :] ** 2 <= (diameter / 2) ** 2 + 1e-9
    return inside.to(dtype)[None, None]


def _dilate(maps: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    size = kernel.shape[-1]
    before, after = (size - 1) // 2, size // 2
    padded = F.pad(maps[:, None], (before, after, before, after))  # outside counts as 0
    return (F.conv2d(padded, kernel) > 0.5)[:, 0]


def close(masks: torch.Tensor, diameter: int) -> torch.Tensor:
    """Morphological closing (dilation, then erosion) of bool masks (B, H, W) with a disk of
    ``diameter`` pixels; pixels outside the image count as set for the erosion, so a full mask
    stays full. A diameter below 2 leaves the masks as they are."""
    if diameter < 2:
        return masks
    kernel = _disk(diameter, masks.device, torch.float32)
    dilated = _dilate(masks.float(), kernel)
    return ~_dilate((~dilated).float(), kernel)


def gaussian_blur(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur float maps (B, H, W) with a Gaussian of ``sigma`` pixels (kernel 2 * ceil(3 sigma) + 1,
    replicated edges, so a constant map stays constant). ``sigma`` 0 leaves them as they are."""
    if sigma <= 0:
        return maps
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, device=maps.device, dtype=maps.dtype)
    weights = torch.exp(-0.5 * (offsets / sigma) ** 2)
    weights = weights / weights.sum()
    out = maps[:, None]
    height, width = maps.shape[-2:]
    if width > 1:
        out = F.conv2d(F.pad(out, (radius, radius, 0, 0), mode="replicate"), weights.reshape(1, 1, 1, -1))
    if height > 1:
        out = F.conv2d(F.pad(out, (0, 0, radius, radius), mode="replicate"), weights.reshape(1, 1, -1, 1))
    return out[:, 0]
