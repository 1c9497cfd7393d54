"""Generators, plain classifiers and the lifted moons: what the counterfactual engine builds on."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from crosslens import kernel_side as ks
from crosslens.kernel_side import ConvClassifier, MLPClassifier, NormalizingFlow, VAE


@pytest.fixture(scope="module")
def moons():
    return ks.load_lifted_moons_split(dim=10, noise=0.01, seed=0)


@pytest.fixture(scope="module")
def digits_flow():
    return ks.load_pretrained("digits-flow")


@pytest.fixture(scope="module")
def digits_vae():
    return ks.load_pretrained("digits-vae")


@pytest.fixture(scope="module")
def digits_mlp():
    return ks.load_pretrained("digits-mlp")


def test_flow_decode_inverts_encode_to_float32_precision(digits_flow, digits):
    x = digits[2]
    with torch.no_grad():
        z = digits_flow.encode(x)
        x_back = digits_flow.decode(z)
    assert z.shape == (len(x), 64) and x_back.shape == x.shape
    assert (x_back - x).abs().max() <= 1e-5
    # the other way round, from codes the flow has never seen (in float64: decoded pixels can
    # land where the logit transform saturates, which costs float32 digits on the way back)
    flow = copy.deepcopy(digits_flow).double()
    z = torch.randn(100, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        assert (flow.encode(flow.decode(z)) - z).abs().max() <= 1e-8


def test_shipped_digits_flow_beats_the_uniform_model(digits_flow, digits):
    x_test = digits[2]
    with torch.no_grad():
        bits = ks.bits_per_dim(digits_flow, x_test, draws=100)
        weighted = ks.bits_per_dim(digits_flow, x_test, draws=100, importance_weighted=True)
        noise = ks.bits_per_dim(digits_flow, torch.rand(100, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    assert bits.shape == weighted.shape == (len(x_test),)
    # the stored metrics: the standard dequantised figure under the standard name, the
    # importance-weighted estimate (100 draws) under its own
    assert digits_flow.metrics["test_bits_per_dim"] == pytest.approx(bits.mean().item(), abs=1e-4)
    assert digits_flow.metrics["test_bits_per_dim_importance_weighted"] == pytest.approx(weighted.mean().item(), abs=1e-4)
    assert 2.1 <= bits.mean() <= 2.3 and 2.0 <= weighted.mean() <= bits.mean() - 0.1
    assert noise.mean() > math.log2(17) > bits.mean() + 1  # random pixels are far less likely than digits


def test_flow_log_prob_is_the_density_in_input_space():
    """Change of variables: the density integrates to one (a 1-D flow, by quadrature)."""
    flow = NormalizingFlow.build((1,), blocks=2, hidden=8, levels=3, seed=0).double()
    with torch.no_grad():  # the support: where the logit transform is defined
        low, high = flow.decode(torch.tensor([[-40.0], [40.0]], dtype=torch.float64))[:, 0]
        x = torch.linspace(low, high, 20001, dtype=torch.float64)[1:-1, None]
        density = flow.log_prob(x).exp()
    assert torch.trapezoid(density, x[:, 0]).item() == pytest.approx(1.0, abs=1e-3)


def test_vae_reconstructions_are_recognisable(digits_vae, digits_mlp, digits):
    x_test, y_test = digits[2], digits[3]
    with torch.no_grad():
        z = digits_vae.encode(x_test)
        reconstruction = digits_vae.decode(z)
        accuracy = (digits_mlp(reconstruction).argmax(1) == y_test).float().mean()
        mean_image_error = (x_test - digits[0].mean(0)).pow(2).mean()
    assert z.shape == (len(x_test), digits_vae.latent_dim) and reconstruction.shape == x_test.shape
    mse = (reconstruction - x_test).pow(2).mean()
    assert mse <= 0.02 and mse <= mean_image_error / 4
    assert mse.item() == pytest.approx(digits_vae.metrics["test_mse"], abs=1e-5)
    assert accuracy >= 0.9
    assert reconstruction.min() >= 0 and reconstruction.max() <= 1
    assert not digits_vae.exact and not hasattr(digits_vae, "log_prob")


@pytest.mark.parametrize("name, minimum", [("digits-mlp", 0.96), ("digits-cnn", 0.97), ("moons10-mlp", 0.95)])
def test_shipped_classifiers_are_accurate(name, minimum, digits, moons):
    model = ks.load_pretrained(name)
    x_test, y_test = (moons.x_test, moons.y_test) if name.startswith("moons10") else (digits[2], digits[3])
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    assert accuracy >= minimum
    assert accuracy == pytest.approx(model.metrics["test_accuracy"])


def test_lifted_moons_lie_near_a_plane(moons):
    x_train, y_train, x_test, y_test = ks.load_moons_split()
    lifted_x_train, lifted_y_train, lifted_x_test, lifted_y_test = moons  # unpacks like every split
    assert lifted_x_train is moons.x_train and lifted_y_test is moons.y_test
    basis = moons.basis
    assert basis.shape == (10, 2) and moons.x_train.shape == (600, 10) and moons.x_test.shape == (400, 10)
    assert torch.allclose(basis.T @ basis, torch.eye(2), atol=1e-6)
    assert torch.equal(moons.y_train, y_train) and torch.equal(moons.y_test, y_test)
    assert (moons.x_test @ basis - x_test).abs().max() < 0.06  # the plane's coordinates are the moons
    distance = moons.manifold_distance(moons.x_train)
    assert distance.median().item() == pytest.approx(0.01 * math.sqrt(8), rel=0.15)  # noise in 8 directions
    assert torch.equal(ks.load_lifted_moons_split().x_train, moons.x_train)
    assert not torch.allclose(ks.load_lifted_moons_split(seed=1).basis, basis)


def test_moons10_flow_learned_the_thin_plane(moons):
    flow = ks.load_pretrained("moons10-flow")
    with torch.no_grad():
        samples = flow.decode(torch.randn(1000, 10, generator=torch.Generator().manual_seed(0)))
        round_trip = flow.decode(flow.encode(moons.x_test))
    assert moons.manifold_distance(samples).median() <= 1.5 * 0.01 * math.sqrt(8)
    assert (round_trip - moons.x_test).abs().max() <= 1e-5
    # the plane's coordinates of the samples cover both moons
    assert (samples @ moons.basis).std(0).min() > 0.4


@pytest.mark.parametrize("name", sorted(ks.PRETRAINED))
def test_every_shipped_model_loads(name):
    model = ks.load_pretrained(name)
    recipe = ks.PRETRAINED[name]
    assert type(model) is recipe.model and not model.training
    assert model.config == {**model.config, **{key: list(value) if isinstance(value, tuple) else value
                                                for key, value in recipe.build.items()}}
    assert any(key.startswith("test_") for key in model.metrics)
    assert isinstance(model, ks.Generator) == isinstance(model, (NormalizingFlow, VAE))


def test_convolutional_couplings_on_squeezed_scales_are_exact_bijections():
    """The image flow of the shapes: conv couplings after squeezes invert to float64 precision
    and their log-determinant is the Jacobian's."""
    flow = NormalizingFlow.build((3, 8, 8), blocks=6, hidden=8, levels=None, conditioner="conv", squeeze=2).double()
    with torch.no_grad():  # leave the identity they start as
        for layer in flow.flow.layers:
            if isinstance(layer, ks.AffineCoupling):
                layer.net[-1].weight.normal_(0, 0.1, generator=torch.Generator().manual_seed(0))
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        z = flow.encode(x)
        assert (flow.decode(z) - x).abs().max() <= 1e-12 and (z - x.reshape(4, -1)).abs().max() > 0.1
    jacobian = torch.autograd.functional.jacobian(lambda row: flow.encode(row.reshape(1, 3, 8, 8))[0], x[0].reshape(-1))
    log_det = flow.log_prob(x[:1]) + 0.5 * (z[:1].pow(2).sum() + z.shape[1] * math.log(2 * math.pi))
    assert torch.linalg.slogdet(jacobian)[1].item() == pytest.approx(log_det.item(), abs=1e-9)


def test_the_layout_of_convolutional_couplings_on_squeezed_scales():
    layers = list(ks.InvertibleClassifier.build((3, 32, 32), 4, blocks=7, hidden=8, conditioner="conv",
                                                squeeze=2).flow.layers)
    squeezes = [index for index, layer in enumerate(layers) if isinstance(layer, ks.Squeeze)]
    couplings = [layer for layer in layers if isinstance(layer, ks.AffineCoupling)]
    assert squeezes == [1, 10] and len(couplings) == 7  # 4 couplings on (12, 16, 16), then 3 on (48, 8, 8)
    assert [layer.image_shape for layer in couplings] == [(12, 16, 16)] * 4 + [(48, 8, 8)] * 3
    masks = [layer.mask.reshape(layer.image_shape) for layer in couplings]
    for mask in masks:
        assert mask.sum() == mask.numel() / 2
    for first, second in ((0, 1), (2, 3)):  # checkerboards, then a half of the channels, each with its complement
        assert torch.equal(masks[first] + masks[second], torch.ones_like(masks[first]))
    assert torch.equal(masks[0][0], masks[0][5]) and not torch.equal(masks[0][0, 0], masks[0][0, 1])
    assert masks[2].amax((1, 2)).equal(masks[2].amin((1, 2)))  # the same at every position
    # a squeeze is the space-to-depth permutation: each 2x2 patch becomes 4 channels of one position
    image = torch.arange(16.0).reshape(1, 1, 4, 4)
    squeezed = ks.Squeeze((1, 4, 4))(image.reshape(1, -1))[0].reshape(4, 2, 2)
    assert squeezed[:, 0, 0].tolist() == [0, 1, 4, 5] and squeezed[:, 1, 1].tolist() == [10, 11, 14, 15]
    # conv couplings have as many weights whatever the image size; an MLP coupling's grow with it
    small, large = (sum(p.numel() for p in ks.NormalizingFlow.build(shape, blocks=2, hidden=8, conditioner="conv")
                        .parameters() if p.ndim > 1) for shape in ((3, 8, 8), (3, 32, 32)))
    assert small == large


def test_building_is_seeded_and_leaves_the_global_random_state_alone():
    state = torch.random.get_rng_state()
    first, second = (MLPClassifier.build((3,), 2, hidden=4, seed=5) for _ in range(2))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    other = MLPClassifier.build((3,), 2, hidden=4, seed=6)
    assert not torch.equal(first.net[1].weight, other.net[1].weight)


def test_training_functions_run(digits):
    x, y = digits[0][:100], digits[1][:100]
    flow = NormalizingFlow.build((1, 8, 8), blocks=2, hidden=16)
    report = ks.fit_flow(flow, x, epochs=2, progress=False)
    assert len(report.history) == 2 and report.best_epoch in (0, 1) and not flow.training
    vae = VAE.build((1, 8, 8), latent_dim=2, hidden=16)
    assert len(ks.fit_vae(vae, x, epochs=2, progress=False).history) == 2
    for model in (MLPClassifier.build((1, 8, 8), 10, hidden=16),
                  ConvClassifier.build((1, 8, 8), 10, channels=4, hidden=8)):
        report = ks.fit(model, x, y, objective="cross_entropy", epochs=2, progress=False)
        assert len(report.history) == 2 and 0 <= report.val_accuracy <= 1
    continuous = NormalizingFlow.build((10,), blocks=2, hidden=8, levels=None)
    assert ks.fit_flow(continuous, torch.randn(50, 10), epochs=1, progress=False).best_epoch == 0


def test_interrupting_training_keeps_the_best_weights(digits, monkeypatch):
    flow = NormalizingFlow.build((1, 8, 8), blocks=2, hidden=16)
    calls = {"count": 0}
    original = flow.log_prob

    def interrupting(x):
        calls["count"] += 1
        if calls["count"] > 4:  # after the first epoch (3 batches and the validation pass)
            raise KeyboardInterrupt
        return original(x)

    monkeypatch.setattr(flow, "log_prob", interrupting)
    report = ks.fit_flow(flow, digits[0][:120], epochs=5, batch_size=40, validation_fraction=0.2, progress=False)
    assert report.interrupted and report.best_epoch == 0 and len(report.history) == 1


@pytest.mark.parametrize("call, error, message", [
    (lambda: NormalizingFlow.build((0, 8)), ValueError, "input_shape"),
    (lambda: NormalizingFlow.build((1, 8, 8), blocks=0), ValueError, "blocks"),
    (lambda: NormalizingFlow.build((1, 8, 8), levels=1), ValueError, "levels"),
    (lambda: NormalizingFlow.build((1, 8, 8), clamp=0.0), ValueError, "clamp"),
    (lambda: VAE.build((1, 8, 8), output="tanh"), ValueError, "output"),
    (lambda: VAE.build((1, 8, 8), latent_dim=2.5), TypeError, "latent_dim"),
    (lambda: MLPClassifier.build((4,), num_classes=1), ValueError, "num_classes"),
    (lambda: MLPClassifier.build(4, num_classes=2), TypeError, "input_shape"),
    (lambda: ConvClassifier.build((10,), num_classes=2), ValueError, "input_shape"),
    (lambda: ConvClassifier.build((1, 8, 8), num_classes=2, blocks=4), ValueError, "divisible by 2 \\*\\* blocks"),
    (lambda: ConvClassifier.build((1, 8, 8), num_classes=2, pooling="max"), ValueError, "pooling"),
    (lambda: NormalizingFlow.build((1, 8, 8), conditioner="cnn"), ValueError, "conditioner"),
    (lambda: NormalizingFlow.build((10,), conditioner="conv"), ValueError, "conditioner='conv'"),
    (lambda: ks.InvertibleClassifier.build((1, 8, 8), 2, squeeze=-1), ValueError, "squeeze"),
    (lambda: ks.InvertibleClassifier.build((3, 12, 12), 2, squeeze=3), ValueError, "divisible by 2 \\*\\* squeeze"),
    (lambda: ks.load_lifted_moons_split(dim=1), ValueError, "dim"),
    (lambda: ks.load_lifted_moons_split(noise=-1.0), ValueError, "noise"),
    (lambda: ks.load_lifted_moons_split().manifold_distance(torch.zeros(3, 2)), ValueError, "x must have shape"),
    (lambda: ks.load_pretrained("digits-gan"), ValueError, "name must be one of"),
    (lambda: ks.fit_flow(VAE.build((2,)), torch.zeros(4, 2)), TypeError, "model must be a NormalizingFlow"),
    (lambda: ks.fit_vae(VAE.build((2,)), torch.zeros(4, 2), epochs=0), ValueError, "epochs"),
    (lambda: ks.fit_vae(VAE.build((2,)), torch.zeros(4, 2), lr=0.0), ValueError, "lr"),
    (lambda: ks.fit_vae(VAE.build((2,)), torch.zeros(4, 2), validation_fraction=1.0), ValueError,
     "validation_fraction"),
    (lambda: ks.fit_vae(VAE.build((2,)), torch.zeros(4, 3)), ValueError, "x must have shape"),
    (lambda: ks.fit(MLPClassifier.build((2,), 2), torch.zeros(4, 2), [0, 1, 0, 1]), TypeError,
     "objective='cross_entropy'"),
    (lambda: ks.fit(torch.nn.Linear(2, 2), torch.zeros(4, 2), [0, 1, 0, 1], objective="cross_entropy"), TypeError,
     "model must be a torch.nn.Module with input_shape"),
    (lambda: ks.bits_per_dim(MLPClassifier.build((2,), 2), torch.zeros(4, 2)), TypeError,
     "flow must be a normalizing flow"),
    (lambda: ks.bits_per_dim(NormalizingFlow.build((2,), blocks=2, hidden=4), torch.full((1, 2), float("nan"))),
     ValueError, "x contains NaN"),
    (lambda: NormalizingFlow.build((2,), blocks=2, hidden=4).encode(torch.zeros(3, 5)), ValueError,
     "x must have shape"),
    (lambda: NormalizingFlow.build((2,), blocks=2, hidden=4).decode(torch.zeros(3)), ValueError, "z must have shape"),
    (lambda: VAE.build((2,)).decode([[0.0] * 8]), TypeError, "z must be a torch.Tensor"),
])
def test_bad_arguments_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()
