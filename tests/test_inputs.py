"""One input rule for every public entry point, and clear errors (naming the argument) for the
inputs that used to fail deep inside torch."""

from __future__ import annotations

import copy

import pytest
import torch

import crosslens
from crosslens import kernel_side as ks


@pytest.fixture(scope="module")
def models():
    return {name: ks.load_pretrained(name) for name in ("digits-invertible", "digits-mlp", "digits-flow")}


def entry_points(models):
    """name -> call(x, model override or None) for each public function taking digits."""
    invertible, mlp, flow = models["digits-invertible"], models["digits-mlp"], models["digits-flow"]
    return {
        "project_to_boundary": lambda x, m=None: ks.project_to_boundary(m or invertible, x).x_proj,
        "boundary_path": lambda x, m=None: ks.boundary_path(m or invertible, x, steps=3).frames,
        "latent_counterfactual": lambda x, m=None: ks.latent_counterfactual(m or mlp, flow, x, max_steps=3).frames,
        "pixel_counterfactual": lambda x, m=None: ks.pixel_counterfactual(m or mlp, x, max_steps=3).frames,
        "BoundaryExplorer": lambda x, m=None: crosslens.BoundaryExplorer(m or invertible, x, steps=3).frames,
        "CounterfactualExplorer": lambda x, m=None: _finished(crosslens.CounterfactualExplorer(
            m or mlp, flow, x, max_steps=3)).result_latent.frames,
        "counterfactual_pairs": lambda x, m=None: ks.counterfactual_pairs(m or mlp, x, generator=flow).x_cf,
        "discriminative_attribution": lambda x, m=None: ks.discriminative_attribution(
            m or mlp, ks.latent_counterfactual(mlp, flow, x), methods=["d_ig"]).auc,
        "AttributionExplorer": lambda x, m=None: crosslens.AttributionExplorer(
            m or mlp, x, generator=flow, methods=["d_ig"]).x_cf,
    }


def _finished(explorer):
    assert explorer.wait(30)
    return explorer


NAMES = ["project_to_boundary", "boundary_path", "latent_counterfactual", "pixel_counterfactual", "BoundaryExplorer",
         "CounterfactualExplorer", "counterfactual_pairs", "discriminative_attribution", "AttributionExplorer"]
MODEL_ARGUMENT = {"project_to_boundary": "model", "boundary_path": "model", "BoundaryExplorer": "model"}


@pytest.mark.parametrize("name", NAMES)
def test_flat_digits_are_accepted_everywhere_as_images(models, digits, name):
    call = entry_points(models)[name]
    x = digits[2][:3]
    torch.testing.assert_close(call(x.flatten(1)), call(x), atol=0, rtol=0)  # a batch of flat inputs
    torch.testing.assert_close(call(x[0].flatten()), call(x[:1]), atol=0, rtol=0)  # one flat input


@pytest.mark.parametrize("name", NAMES)
def test_inputs_and_models_without_data_are_named(models, digits, name):
    call = entry_points(models)[name]
    with pytest.raises(ValueError, match="x is on the meta device"):
        call(digits[2][:2].to("meta"))
    model = models["digits-invertible" if name in MODEL_ARGUMENT else "digits-mlp"]
    argument = MODEL_ARGUMENT.get(name, "classifier")
    with pytest.raises(ValueError, match=f"{argument} is on the meta device"):
        call(digits[2][:2], copy.deepcopy(model).to("meta"))
    mixed = copy.deepcopy(model)
    last = mixed.head if hasattr(mixed, "head") else mixed.net[-1]
    last.double()  # a float64 head on a float32 body
    with pytest.raises(ValueError, match=f"{argument}'s floating-point parameters must share one dtype"):
        call(digits[2][:2], mixed)


def test_a_dtype_may_be_named(models, digits):
    model, x = models["digits-invertible"], digits[2][:4]
    by_name = ks.boundary_path(model, x, steps=5, dtype="float64")
    assert by_name.frames.dtype == torch.float64
    torch.testing.assert_close(by_name.frames, ks.boundary_path(model, x, steps=5, dtype=torch.float64).frames)
    assert crosslens.BoundaryExplorer(model, x, steps=5, dtype="torch.float64").frames.shape[-3:] == (1, 8, 8)
    with pytest.raises(ValueError, match="dtype must be a floating-point dtype such as torch.float64 or 'float64'"):
        ks.project_to_boundary(model, x, dtype="int32")
    with pytest.raises(ValueError, match="dtype must be a floating-point dtype"):
        ks.boundary_path(model, x, dtype="double precision")
    with pytest.raises(TypeError, match="dtype must be a torch.dtype"):
        ks.project_to_boundary(model, x, dtype=64)


def test_a_list_is_not_a_model_name():
    with pytest.raises(TypeError, match=r"name must be one of .* \(a string\), got list"):
        ks.load_pretrained(["digits-mlp"])


def test_a_generator_that_decodes_to_another_shape_is_refused_before_the_search(models, digits):
    class FlatDecoder(torch.nn.Module):
        """The digits flow, with decode giving flat (N, 64) vectors."""

        def __init__(self, flow):
            super().__init__()
            self.flow, self.input_shape, self.latent_dim = flow, flow.input_shape, flow.latent_dim

        def encode(self, x):
            return self.flow.encode(x)

        def decode(self, z):
            return self.flow.decode(z).flatten(1)

    with pytest.raises(ValueError, match=r"generator.decode\(z\) must give inputs of the classifier's shape "
                                         r"\(N, 1, 8, 8\), got \(1, 64\)"):
        ks.latent_counterfactual(models["digits-mlp"], FlatDecoder(models["digits-flow"]), digits[2][:3])
