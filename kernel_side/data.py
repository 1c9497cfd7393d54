"""The embedded default data sets, each with one fixed train/test split.

Both come with scikit-learn and work offline: ``load_digits`` (1797 8x8 images, values
0..16) and ``make_moons``. The lifted moons embed the moons in a higher dimension, where
they occupy a thin neighbourhood of a plane (Dombrowski et al. 2024,
https://arxiv.org/abs/2206.05075: data on a low-dimensional manifold is where latent
counterfactuals differ from input-space ones). The shapes are colour scenes drawn in code
(:func:`load_shapes_split`), large enough for segments to mean something, whose class is
decided by one known part of the picture.
"""

from __future__ import annotations

import math

import torch

from ._checks import check_inputs, check_int, check_real

__all__ = [
    "DIGITS_CLASS_NAMES", "LiftedMoons", "MOONS_CLASS_NAMES", "SHAPES_CLASS_NAMES", "ShapeScenes",
    "load_digits_split", "load_lifted_moons_split", "load_moons_split", "load_shapes_split",
]

DIGITS_CLASS_NAMES = [str(digit) for digit in range(10)]
MOONS_CLASS_NAMES = ["upper moon", "lower moon"]
SHAPES_CLASS_NAMES = ["circle", "square", "triangle", "cross"]


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


# ---- the shapes: colour scenes whose class is decided by one known object -------------------
# Sizes are given for 32x32 scenes and scale with ``size``. Hues are fractions of the circle.
KEY_RADIUS = (4.5, 7.0)  # the key object's half-size
DISTRACTOR_RADIUS = (3.0, 6.0)
DISTRACTORS = (2, 4)  # fewest and most distractors per scene
KEY_HUE = 15 / 360  # the key object is red: hue within +-15 degrees of 0, saturated and bright
DISTRACTOR_HUES = (80 / 360, 280 / 360)  # yellow-green through blue to violet: never red
NOISE = 0.02  # standard deviation of the pixel noise, before 8-bit quantisation
CLEARANCE = 1.2  # distractors keep their bounding circles (radius x this) clear of the key's
PLACEMENT_ROUNDS = 100


class ShapeScenes(tuple):
    """The scenes of :func:`load_shapes_split`: unpacks, like every split, as
    ``(x_train, y_train, x_test, y_test)``, with the class-determining part of each scene as extras.

    Fields:
        x_train (N, 3, size, size), y_train (N,), x_test (M, 3, size, size), y_test (M,): float32
            RGB scenes in [0, 1] (8-bit values k / 255) and int64 labels, indices into
            :data:`SHAPES_CLASS_NAMES`.
        key_masks_train (N, size, size), key_masks_test (M, size, size): bool, True on the
            pixels of the key object (the red one), the only part of a scene its label depends on.
    """

    def __new__(cls, x_train, y_train, x_test, y_test, key_masks_train: torch.Tensor,
                key_masks_test: torch.Tensor) -> "ShapeScenes":
        split = super().__new__(cls, (x_train, y_train, x_test, y_test))
        split.key_masks_train = key_masks_train
        split.key_masks_test = key_masks_test
        return split

    x_train = property(lambda self: self[0])
    y_train = property(lambda self: self[1])
    x_test = property(lambda self: self[2])
    y_test = property(lambda self: self[3])


def _hsv_to_rgb(hue: torch.Tensor, saturation: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Colours (N, 3) from hue in [0, 1) (a fraction of the circle), saturation and value in [0, 1]."""
    k = (torch.tensor([5.0, 3.0, 1.0]) + 6 * hue[:, None]) % 6
    return value[:, None] * (1 - saturation[:, None] * torch.clamp(torch.minimum(k, 4 - k), 0, 1))


def _signed_distance(kind: int, dx: torch.Tensor, dy: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Signed distance (negative inside, in pixels) of offsets (dx, dy) from an object of
    ``kind`` and half-size r. Circle of radius r; square of half-side 0.85 r; upright
    equilateral triangle of circumradius 1.15 r, centred on its bounding box; plus sign with
    arms of half-length r and half-width 0.35 r."""
    if kind == 0:
        return torch.sqrt(dx * dx + dy * dy) - r
    ax, ay = dx.abs(), dy.abs()
    if kind == 1:
        return torch.maximum(ax, ay) - 0.85 * r
    if kind == 2:
        big = 1.15 * r
        return torch.maximum(dy - 0.75 * big, 0.866 * ax - 0.5 * dy - 0.375 * big)
    return torch.minimum(torch.maximum(ax - r, ay - 0.35 * r), torch.maximum(ax - 0.35 * r, ay - r))


def _coverage(kind: torch.Tensor, center: torch.Tensor, radius: torch.Tensor, size: int) -> torch.Tensor:
    """How much of each pixel one object per scene covers, (N, size, size) in [0, 1]: the
    signed distance d of the object's kind, anti-aliased as ``clamp(0.5 - d, 0, 1)``."""
    grid = torch.arange(size, dtype=torch.float32) + 0.5  # pixel centres
    coverage = torch.empty(len(kind), size, size)
    for index in range(len(SHAPES_CLASS_NAMES)):  # each kind on its own scenes
        rows = (kind == index).nonzero()[:, 0]
        dy = grid[None, :, None] - center[rows, 0, None, None]
        dx = grid[None, None, :] - center[rows, 1, None, None]
        distance = _signed_distance(index, dx, dy, radius[rows, None, None])
        coverage[rows] = distance.neg_().add_(0.5).clamp_(0, 1)
    return coverage


def _uniform(generator: torch.Generator, count: int, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(count, generator=generator)


def _draw_scenes(labels: torch.Tensor, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Scenes (N, 3, size, size) for the given key kinds, and the key objects' masks (N, size, size)."""
    count, scale = len(labels), size / 32

    def place(radius: torch.Tensor) -> torch.Tensor:  # centres (N, 2) that keep the object inside the frame
        margin = radius + scale
        return margin[:, None] + (size - 2 * margin[:, None]) * torch.rand(len(radius), 2, generator=generator)

    # background: a dim, greyish colour with a gentle linear gradient
    base = _hsv_to_rgb(torch.rand(count, generator=generator), _uniform(generator, count, 0.0, 0.25),
                       _uniform(generator, count, 0.1, 0.35))
    angle = _uniform(generator, count, 0.0, 2 * math.pi)
    slope = _uniform(generator, count, 0.0, 0.15) / size
    grid = torch.arange(size, dtype=torch.float32) + 0.5 - size / 2
    ramp = ((slope * torch.sin(angle))[:, None, None] * grid[None, :, None]
            + (slope * torch.cos(angle))[:, None, None] * grid[None, None, :])
    scenes = (base[:, :, None, None] + ramp[:, None]).clamp_(0, 1)

    key_radius = scale * _uniform(generator, count, *KEY_RADIUS)
    key_center = place(key_radius)
    present = torch.arange(DISTRACTORS[1])[None] < torch.randint(DISTRACTORS[0], DISTRACTORS[1] + 1, (count, 1),
                                                                 generator=generator)
    for slot in range(DISTRACTORS[1]):  # distractors first, clear of the key, which is drawn last
        radius = scale * _uniform(generator, count, *DISTRACTOR_RADIUS)
        center = place(radius)
        crowded = (center - key_center).norm(dim=1) < CLEARANCE * (radius + key_radius) + scale
        for _ in range(PLACEMENT_ROUNDS):  # redraw the positions that touch the key, batched over scenes,
            if not crowded.any():  # and shrink those objects a little each time (no smaller than the smallest)
                break
            radius[crowded] = (0.95 * radius[crowded]).clamp_min(scale * DISTRACTOR_RADIUS[0])
            center[crowded] = place(radius[crowded])
            crowded = (center - key_center).norm(dim=1) < CLEARANCE * (radius + key_radius) + scale
        present[:, slot] &= ~crowded  # no room left beside the key (rare): this scene has one distractor less
        kind = torch.randint(0, len(SHAPES_CLASS_NAMES), (count,), generator=generator)
        color = _hsv_to_rgb(_uniform(generator, count, *DISTRACTOR_HUES), _uniform(generator, count, 0.5, 1.0),
                            _uniform(generator, count, 0.6, 1.0))
        rows = present[:, slot].nonzero()[:, 0]
        alpha = _coverage(kind[rows], center[rows], radius[rows], size)[:, None]
        scenes[rows] = scenes[rows].lerp_(color[rows, :, None, None].expand(-1, -1, size, size), alpha)

    hue = _uniform(generator, count, -KEY_HUE, KEY_HUE) % 1
    color = _hsv_to_rgb(hue, _uniform(generator, count, 0.8, 1.0), _uniform(generator, count, 0.8, 1.0))
    alpha = _coverage(labels, key_center, key_radius, size)
    scenes.lerp_(color[:, :, None, None].expand(-1, -1, size, size), alpha[:, None])
    scenes.add_(torch.randn(scenes.shape, generator=generator), alpha=NOISE)
    scenes = scenes.clamp_(0, 1).mul_(255).round_().div_(255)  # 8-bit pixels, as a saved image has
    return scenes, alpha > 0.5


def load_shapes_split(train: int = 4000, test: int = 1000, size: int = 32, seed: int = 0) -> ShapeScenes:
    """Colour scenes of shapes whose class is the kind of the one red object: a data set whose
    right explanation is known.

    Each scene (3 x size x size, RGB in [0, 1], quantised to 8 bits) has a dim, greyish
    background with a gentle gradient, 2 to 4 distractor shapes of random kinds, sizes,
    positions and colours (hues from yellow-green to violet, never red), and exactly one
    *key* object, the only red one, drawn clear of the distractors. The label is the key
    object's kind, one of :data:`SHAPES_CLASS_NAMES` (circle, square, triangle, cross);
    distractors come in the same kinds, so only the key object tells the class, and its
    pixels are returned as ``key_masks_train`` / ``key_masks_test``. Every scene also has
    Gaussian pixel noise (standard deviation 0.02) before quantisation. Classes are balanced
    (exactly, when the counts are multiples of 4) and shuffled.

    Arguments:
        train, test: the number of training and test scenes.
        size: the side of a scene in pixels (at least 16; object sizes scale with it).
        seed: seeds the scenes; training and test scenes come from separate streams, so the
            test scenes do not depend on ``train``.

    Example:
        >>> shapes = load_shapes_split()
        >>> x_train, y_train, x_test, y_test = shapes
        >>> x_train.shape, shapes.key_masks_test.shape
        (torch.Size([4000, 3, 32, 32]), torch.Size([1000, 32, 32]))
        >>> SHAPES_CLASS_NAMES[int(y_test[0])]
        'square'
    """
    check_int(train, "train", minimum=1)
    check_int(test, "test", minimum=1)
    check_int(size, "size", minimum=16)
    check_int(seed, "seed", minimum=0)
    parts = []
    for stream, count in ((2 * seed, train), (2 * seed + 1, test)):
        generator = torch.Generator().manual_seed(stream)
        labels = (torch.arange(count) % len(SHAPES_CLASS_NAMES))[torch.randperm(count, generator=generator)]
        scenes, masks = _draw_scenes(labels, size, generator)
        parts.append((scenes, labels, masks))
    (x_train, y_train, masks_train), (x_test, y_test, masks_test) = parts
    return ShapeScenes(x_train, y_train, x_test, y_test, masks_train, masks_test)
