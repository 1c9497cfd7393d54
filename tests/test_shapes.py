"""The shapes: colour scenes drawn in code whose class is decided by one known object, and the
models shipped for them (a CNN, an invertible classifier, a flow) with both explorers on them."""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F

from crosslens import kernel_side as ks


@pytest.fixture(scope="module")
def shapes():
    return ks.load_shapes_split()


def is_red(x: torch.Tensor) -> torch.Tensor:
    """(N, H, W): pixels of the key colour (bright red, nothing like a distractor or the background)."""
    red, others = x[:, 0], x[:, 1:].amax(1)
    return (red >= 0.7) & (red - others >= 0.35)


# ---- the loader -------------------------------------------------------------------------------
def test_scenes_are_8_bit_rgb_images_with_balanced_labels(shapes):
    x_train, y_train, x_test, y_test = shapes  # unpacks like every split
    assert x_train.shape == (4000, 3, 32, 32) and x_test.shape == (1000, 3, 32, 32)
    assert x_train.dtype == x_test.dtype == torch.float32 and y_train.dtype == y_test.dtype == torch.int64
    assert shapes.x_train is x_train and shapes.y_test is y_test
    for x in (x_train, x_test):
        assert x.min() >= 0 and x.max() <= 1
        assert torch.equal(x * 255, (x * 255).round())  # 8-bit values k / 255
    assert y_train.bincount().tolist() == [1000] * 4 and y_test.bincount().tolist() == [250] * 4
    assert ks.SHAPES_CLASS_NAMES == ["circle", "square", "triangle", "cross"]
    assert y_train[:40].bincount(minlength=4).min() > 0  # shuffled, not sorted by class
    assert shapes.key_masks_train.shape == (4000, 32, 32) and shapes.key_masks_test.shape == (1000, 32, 32)
    assert shapes.key_masks_train.dtype == torch.bool


def test_loading_is_fast_and_deterministic(shapes):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a busy machine, torch's waiting worker threads inflate even the CPU time
    try:
        started = time.process_time()
        again = ks.load_shapes_split()
        assert time.process_time() - started < 2.0  # measured: 0.3-0.6 s
    finally:
        torch.set_num_threads(threads)
    for first, second in zip((*shapes, shapes.key_masks_train, shapes.key_masks_test),
                             (*again, again.key_masks_train, again.key_masks_test)):
        assert torch.equal(first, second)
    small = ks.load_shapes_split(train=8, test=1000)
    assert torch.equal(small.x_test, shapes.x_test)  # the test scenes do not depend on the training count
    assert not torch.equal(ks.load_shapes_split(train=8, test=8, seed=1).x_test, shapes.x_test[:8])
    large = ks.load_shapes_split(train=4, test=4, size=64)
    assert large.x_train.shape == (4, 3, 64, 64) and large.key_masks_test.shape == (4, 64, 64)


def test_the_key_mask_marks_the_one_red_object(shapes):
    for x, masks in ((shapes.x_train, shapes.key_masks_train), (shapes.x_test, shapes.key_masks_test)):
        red = is_red(x)
        core = -F.max_pool2d(-masks[:, None].float(), 3, 1, 1)[:, 0] > 0  # the mask less its edge
        near = F.max_pool2d(masks[:, None].float(), 3, 1, 1)[:, 0].bool()  # the mask plus its edge
        assert masks.sum((1, 2)).min() >= 25  # every key object is seen: at least 25 pixels
        assert red[core].all()  # the key colour fills the key object...
        assert not red[~near].any()  # ...and appears nowhere else


def test_the_label_is_the_kind_of_the_key_object(shapes):
    """Read each key object's kind off its mask: how much of its bounding box it fills, and
    whether its lower half holds more of it (the triangle points up). Measured: squares fill
    1.0, circles 0.69-0.90, triangles and crosses 0.47-0.68."""
    masks, labels = shapes.key_masks_test, shapes.y_test
    rows, cols = masks.any(2), masks.any(1)
    height, width = rows.sum(1), cols.sum(1)
    fill = masks.sum((1, 2)) / (height * width)
    top = rows.float().argmax(1)
    middle = top + height / 2
    lower = (masks.sum(2) * (torch.arange(32)[None] >= middle[:, None])).sum(1) / masks.sum((1, 2))
    read = torch.where(lower >= 0.575, 2, torch.where(fill >= 0.95, 1, torch.where(fill >= 0.68, 0, 3)))
    assert torch.equal(read, labels)  # measured: lower half 0.58-0.77 for triangles, at most 0.57 otherwise


@pytest.mark.parametrize("call, error, message", [
    (lambda: ks.load_shapes_split(train=0), ValueError, "train"),
    (lambda: ks.load_shapes_split(test=2.5), TypeError, "test"),
    (lambda: ks.load_shapes_split(size=8), ValueError, "size"),
    (lambda: ks.load_shapes_split(seed=-1), ValueError, "seed"),
])
def test_bad_arguments_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()
