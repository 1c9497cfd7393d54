"""Captum's attribution methods as the engine calls them: on a copy of the inputs that records
gradients (Captum warns when it has to switch them on), with the engine's settings.

Integrated Gradients uses Captum's Gauss-Legendre rule (completeness to ~5e-4 relative with
50 steps; the trapezoid rule is 25x worse), in batches bounded like the engine's chunks.
Shared by :mod:`crosslens.kernel_side.methods.dac` and
:mod:`crosslens.kernel_side.methods.faithfulness`.
"""

from __future__ import annotations

import torch

from .._runtime import DEFAULT_CHUNK_SIZE

__all__ = ["grad_cam", "gradient", "input_x_gradient", "integrated_gradients", "tracked"]


def tracked(inputs: torch.Tensor) -> torch.Tensor:
    """A copy of ``inputs`` that records gradients (Captum warns when it has to switch them on)."""
    return inputs.detach().clone().requires_grad_(True)


def integrated_gradients(classifier, inputs, baselines, classes, n_steps):
    from captum.attr import IntegratedGradients

    batch = max(1, DEFAULT_CHUNK_SIZE // max(1, inputs[0].numel() // 64))
    return IntegratedGradients(classifier).attribute(
        tracked(inputs), baselines=baselines, target=classes, n_steps=n_steps, method="gausslegendre",
        internal_batch_size=max(n_steps, batch))


def gradient(classifier, inputs, classes):
    from captum.attr import Saliency

    return Saliency(classifier).attribute(tracked(inputs), target=classes, abs=False)


def input_x_gradient(classifier, inputs, classes):
    from captum.attr import InputXGradient

    return InputXGradient(classifier).attribute(tracked(inputs), target=classes)


def grad_cam(classifier, layer, inputs, classes, image_hw):
    from captum.attr import LayerAttribution, LayerGradCam

    maps = LayerGradCam(classifier, layer).attribute(tracked(inputs), target=classes, relu_attributions=True)
    return LayerAttribution.interpolate(maps, image_hw, interpolate_mode="bilinear")
