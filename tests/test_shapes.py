"""The shapes: colour scenes drawn in code whose class is decided by one known object, and the
models shipped for them (a CNN, an invertible classifier, a flow) with both explorers on them."""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F

import crosslens
from crosslens import kernel_side as ks
from crosslens.payload import unpack


@pytest.fixture(scope="module")
def shapes():
    return ks.load_shapes_split()


def near_the_key(masks: torch.Tensor, pixels: int = 2) -> torch.Tensor:
    """(N, H, W): the key object's pixels and those within ``pixels`` of them."""
    return F.max_pool2d(masks[:, None].float(), 2 * pixels + 1, 1, pixels)[:, 0] > 0


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
        near = near_the_key(masks, 1)  # the mask plus its edge
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


# ---- the shipped models --------------------------------------------------------------------
@pytest.mark.parametrize("name, minimum", [("shapes-cnn", 0.99), ("shapes-invertible", 0.93)])
def test_shipped_classifiers_reach_their_accuracy(name, minimum, shapes):
    model = ks.load_pretrained(name)
    with torch.no_grad():
        accuracy = (model(shapes.x_test).argmax(1) == shapes.y_test).float().mean().item()
    assert accuracy >= minimum  # measured: 99.7 % and 94.1 %
    assert accuracy == pytest.approx(model.metrics["test_accuracy"])
    assert model.metrics["train_seconds"] < 180  # its recipe trains it in under 3 minutes on one core


def test_shipped_flow_models_the_8_bit_scenes(shapes):
    flow = ks.load_pretrained("shapes-flow")
    x = shapes.x_test[:200]
    with torch.no_grad():
        back = flow.decode(flow.encode(x))
        bits = ks.bits_per_dim(flow, x, draws=10)
        noise = ks.bits_per_dim(flow, torch.rand(50, 3, 32, 32, generator=torch.Generator().manual_seed(0)), draws=2)
    assert flow.levels == 256 and flow.metrics["noise_draws"] == 10
    assert (back - x).abs().max() <= 1e-4
    # 200 of the 1000 test scenes: near the stored figure (measured 5.11 on all of them; the
    # pixel noise alone costs 4.39, its entropy given the clean scene; a uniform model 8)
    assert bits.mean().item() == pytest.approx(flow.metrics["test_bits_per_dim"], abs=0.05)
    assert noise.mean() > 8 > bits.mean() + 2
    assert flow.metrics["train_seconds"] < 180


# ---- both explorers on colour images -------------------------------------------------------
def test_the_boundary_explorer_runs_on_the_shapes(shapes):
    explorer = crosslens.BoundaryExplorer(ks.load_pretrained("shapes-invertible"), shapes.x_test[:3],
                                          class_names=ks.SHAPES_CLASS_NAMES)
    _, meta = unpack(explorer.payload, dequantize=False)
    assert meta["image_shape"] == [3, 32, 32] and meta["class_names"] == ks.SHAPES_CLASS_NAMES
    for row in range(3):
        explorer.index, explorer.t = row, 1.0  # on the boundary: the two classes tie
        probs = explorer.probabilities
        source, target = int(explorer.predicted[row]), int(explorer.targets[row])
        assert source != target and abs(float(probs[source] - probs[target])) < 1e-3
        assert float(probs[source]) >= float(probs.max()) - 1e-3
        assert explorer.frame.shape == (3, 32, 32)


def test_the_boundary_explanation_points_at_the_key_object(shapes):
    """The known right answer: the class is the key object's kind, and the projection onto
    the boundary changes the pixels near the key object most."""
    model = ks.load_pretrained("shapes-invertible")
    projection = ks.project_to_boundary(model, shapes.x_test[:50])
    with torch.no_grad():
        logits = model(projection.x_proj)
    rows = torch.arange(50)
    assert (logits[rows, projection.source] - logits[rows, projection.target]).abs().max() < 1e-3
    change = projection.explanation.abs().sum(1)
    near = near_the_key(shapes.key_masks_test[:50])
    inside = (change * near).sum((1, 2)) / near.sum((1, 2))
    outside = (change * ~near).sum((1, 2)) / (~near).sum((1, 2))
    assert (inside > outside).float().mean() >= 0.8  # measured: 94 % of the rows, 1.9 times as much per pixel


def test_the_counterfactual_explorer_runs_on_the_shapes(shapes):
    classifier, flow = ks.load_pretrained("shapes-cnn"), ks.load_pretrained("shapes-flow")
    explorer = crosslens.CounterfactualExplorer(classifier, flow, shapes.x_test[:2], class_names=ks.SHAPES_CLASS_NAMES,
                                                max_steps=200)
    assert explorer.wait(60)
    latent = explorer.result_latent
    assert explorer.row_status["latent"] == ["done", "done"] and explorer.error == ""
    assert latent.success.all()  # measured: both in 1-2 steps
    with torch.no_grad():
        assert torch.equal(classifier(latent.x_cf).argmax(1), explorer.targets)
    assert latent.x_cf.shape == (2, 3, 32, 32) and explorer.result_pixel is not None
    assert unpack(explorer.payload)[1]["image_shape"] == [3, 32, 32]
