"""FLINT (Parekh, Mozharovskyi, d'Alche-Buc, NeurIPS 2021): the shipped models keep the paper's
promises on the digits' test split (f as accurate as its BASE-f twin, g faithful to f, few
relevant attributes per input, every attribute used by some classes but not most), a post-hoc
interpreter of the shipped digits-cnn is faithful, and the interpretation tools do what they say.
Global relevance is always computed on the test split, as a signed mean over the inputs g
predicts as each class."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from crosslens import kernel_side as ks
from crosslens.kernel_side.methods import flint as flint_methods

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def flint():
    return ks.load_pretrained("digits-flint")


@pytest.fixture(scope="module")
def report(flint, digits):
    return ks.flint_metrics(flint, digits[2], digits[3])


# --- the shipped models ---------------------------------------------------------------------

def test_shipped_flint_loads_in_eval_mode_with_its_metrics(flint, report):
    assert isinstance(flint, ks.FLINT) and not flint.training and not flint.post_hoc
    assert (flint.num_attributes, flint.num_classes, flint.input_shape, flint.layers) == (12, 10, (1, 8, 8), ("net.5",))
    assert isinstance(flint.interpreter, nn.Linear) and flint.interpreter.weight.shape == (10, 12)
    assert flint.metrics["test_accuracy"] == pytest.approx(report.accuracy_f)
    assert flint.metrics["test_fidelity"] == pytest.approx(report.fidelity)
    assert flint.metrics["test_coverage"] == report.coverage.tolist()
    assert flint.metrics["train_seconds"] < 180  # trained from scratch in under 3 minutes on one thread


def test_flint_f_is_as_accurate_as_base_f_and_g_is_faithful(flint, report, digits):
    base = ks.load_pretrained("digits-flint-base")
    assert isinstance(base, ks.FlintClassifier) and base.config["hidden"] == flint.config["hidden"]
    with torch.no_grad():
        base_accuracy = (base(digits[2]).argmax(1) == digits[3]).float().mean().item()
    assert abs(report.accuracy_f - base_accuracy) <= 0.01
    assert report.accuracy_f >= 0.97 and report.accuracy_g >= 0.96
    assert report.fidelity >= 0.97


def test_shipped_flint_is_concise_and_every_attribute_is_used_by_few_classes(report):
    assert report.cns[2.0] <= 2.5
    assert list(report.cns) == [1.5, 2.0, 2.5, 3.0, 4.0, 5.0]
    assert all(a <= b for a, b in zip(report.cns.values(), list(report.cns.values())[1:]))  # tau up, CNS up
    assert report.coverage.dtype == torch.int64 and report.coverage.shape == (12,)
    assert (report.coverage >= 1).all() and (report.coverage <= 10 // 2).all()
    assert "fidelity" in report.table() and "CNS(2)" in report.table()


def test_moons_flint_attributes_are_functions_of_the_plane():
    model = ks.load_pretrained("moons-flint")
    _, _, x_test, y_test = ks.load_moons_split()
    result = ks.flint_metrics(model, x_test, y_test)
    assert model.layers == ("net.1", "net.3") and result.fidelity >= 0.95 and result.accuracy_f >= 0.95
    grid = torch.stack(torch.meshgrid(torch.linspace(-2, 3, 50), torch.linspace(-1.5, 2, 40), indexing="xy"), -1)
    with torch.no_grad():
        heat = model.attributes(grid.reshape(-1, 2)).reshape(40, 50, model.num_attributes)
    assert heat.flatten(0, 1).std(0).min() > 0.05  # every attribute varies over the plane


# --- post-hoc ---------------------------------------------------------------------------------

def test_post_hoc_interpreter_of_the_digits_cnn_is_faithful_and_leaves_it_unchanged(digits):
    cnn = ks.load_pretrained("digits-cnn")
    cnn.train()  # the user's mode: training must neither use nor change it
    before = {name: value.clone() for name, value in cnn.state_dict().items()}
    model = ks.FLINT.post_hoc(cnn, "net.4", attributes=12)  # the 64x4x4 hidden layer, after its SiLU
    assert model.post_hoc and model.layers == ("net.4",) and model.num_classes == 10
    ks.fit_flint(model, digits[0], digits[1], epochs=10, batch_size=32, fidelity_from=0, entropy_from=4,
                 progress=False)  # a short schedule: seconds (the full one: fidelity 98.1 %)
    assert cnn.training and all(module.training for module in cnn.modules())
    assert all(torch.equal(before[name], value) for name, value in cnn.state_dict().items())
    assert ks.flint_metrics(model, digits[2], digits[3]).fidelity >= 0.90


def test_bad_arguments_raise_clear_errors(flint, digits):
    cnn = ks.load_pretrained("digits-cnn")
    with pytest.raises(ValueError, match=r"layers.*'net\.99'.*valid names: net, net\.0, net\.1"):
        ks.FLINT.post_hoc(cnn, "net.99")
    with pytest.raises(ValueError, match="attributes must be an integer >= 2"):
        ks.FLINT.post_hoc(cnn, "net.4", attributes=1)
    with pytest.raises(ValueError, match="attributes must be an integer >= 2"):
        ks.FLINT.build((1, 8, 8), 10, attributes=1)
    with pytest.raises(TypeError, match="attributes must be an integer"):
        ks.FLINT.build((1, 8, 8), 10, attributes=2.5)
    with pytest.raises(ValueError, match="tau must be"):
        ks.flint_interpretation(flint, digits[2][:3], tau=1.0)
    with pytest.raises(ValueError, match="taus must be"):
        ks.flint_metrics(flint, digits[2], digits[3], taus=(0.5,))
    with pytest.raises(TypeError, match="model must be a FLINT model"):
        ks.fit_flint(cnn, digits[0], digits[1], progress=False)
    with pytest.raises(TypeError, match="model must be a FLINT model"):
        ks.flint_interpretation(cnn, digits[2][:3])
    with pytest.raises(ValueError, match="k must be an integer in"):
        ks.maximum_activating_samples(flint, digits[2][:2], k=3)
    with pytest.raises(ValueError, match="attributes must lie in"):
        ks.activation_maximisation(flint, digits[2][0], attributes=[12])


# --- interpretation -----------------------------------------------------------------------------

def test_local_interpretation_follows_the_definitions(flint, digits):
    x = digits[2][:40]
    result = ks.flint_interpretation(flint, x, tau=2.0)
    with torch.no_grad():
        phi, logits_g = flint.attributes(x), flint.interpret(x)
    assert torch.equal(result.predicted, logits_g.argmax(1)) and torch.equal(result.source, result.predicted)
    assert torch.equal(result.predicted_f, flint(x).argmax(1)) and torch.equal(result.target, result.predicted)
    torch.testing.assert_close(result.attributes, phi)
    torch.testing.assert_close(result.alpha, phi * flint.interpreter.weight[result.predicted].detach())
    torch.testing.assert_close(result.relevance.abs().amax(1), torch.ones(40))
    assert torch.equal(result.relevant, result.relevance > 0.5) and result.relevant.any(1).all()
    other = ks.flint_interpretation(flint, x, target=3, tau=4.0)
    torch.testing.assert_close(other.alpha, phi * flint.interpreter.weight[3].detach())
    assert torch.equal(other.relevant, other.relevance > 0.25)


def test_global_relevance_is_the_signed_mean_over_each_predicted_class(flint, report, digits):
    table = ks.global_relevance(flint, digits[2])
    result = ks.flint_interpretation(flint, digits[2])
    assert table.shape == (10, 12)
    for c in range(10):
        torch.testing.assert_close(table[c], result.relevance[result.predicted == c].mean(0))
    torch.testing.assert_close(table, report.relevance)
    assert torch.equal((table > 0.1).sum(0), report.coverage)


def test_maximum_activating_samples_are_the_argmax(flint, digits):
    x = digits[2][:60]
    samples = ks.maximum_activating_samples(flint, x, k=3)
    with torch.no_grad():
        phi = flint.attributes(x)
    assert samples.indices.shape == (12, 3) and samples.indices.dtype == torch.int64
    torch.testing.assert_close(phi.gather(0, samples.indices.T).T, phi.sort(0, descending=True).values[:3].T)
    torch.testing.assert_close(samples.activations, phi.sort(0, descending=True).values[:3].T)
    assert samples.per_class.shape == (10, 12, 3)
    counts = torch.bincount(samples.classes, minlength=10)
    for c in range(10):
        rows = samples.per_class[c]
        assert ((rows == -1).sum(1) == max(0, 3 - counts[c])).all()  # padded where a class has fewer
        kept = rows[rows >= 0].reshape(12, -1)
        assert (samples.classes[kept] == c).all()
        if kept.numel():
            best = torch.where(samples.classes[:, None] == c, phi, -torch.inf).max(0).values
            torch.testing.assert_close(phi.gather(0, kept[:, :1].T)[0], best)
    by_label = ks.maximum_activating_samples(flint, x, k=2, y=digits[3][:60])
    assert torch.equal(by_label.classes, digits[3][:60])


def test_activation_maximisation_is_batched_over_attributes_and_excites_each(flint, digits, monkeypatch):
    starts = []
    search = flint_methods.search
    monkeypatch.setattr(flint_methods, "search",
                        lambda start, *args, **kwargs: starts.append(start.shape) or search(start, *args, **kwargs))
    x_init = digits[2][0]
    images = ks.activation_maximisation(flint, x_init)
    assert images.shape == (12, 1, 8, 8)
    assert starts == [(12, 64)] * 12  # 12 rounds, each one search with a row per attribute
    with torch.no_grad():
        before = flint.attributes(0.3 * x_init[None])[0]
        after = flint.attributes(images).diagonal()
    assert (after > before).all()
    assert images.min() > -0.05 and images.max() < 1.05  # the range penalty holds the pixels in [0, 1]
    some = ks.activation_maximisation(flint, digits[2][:2], attributes=[4, 7], rounds=2, steps=10)
    assert some.shape == (2, 1, 8, 8)


# --- training ------------------------------------------------------------------------------------

def test_a_short_fit_by_design_trains_every_part(digits):
    model = ks.FLINT.build((1, 8, 8), 10, attributes=4, hidden=16, channels=4, width=8, seed=1)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    report = ks.fit_flint(model, digits[0][:128], digits[1][:128], epochs=2, fidelity_from=0, entropy_from=1,
                          progress=False)
    assert isinstance(report, ks.FitReport) and len(report.history) == 2 and not model.training
    assert {"val_accuracy", "val_accuracy_g", "val_fidelity", "seconds"} <= set(report.history[-1])
    changed = {name.split(".")[0] for name, value in model.state_dict().items() if not torch.equal(before[name], value)}
    assert changed == {"predictor", "psi", "interpreter", "decoder"}


def test_moons_shaped_models_read_their_hidden_layers():
    model = ks.FLINT.build((2,), 2, attributes=3, hidden=8, width=8)
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    assert model.layers == ("net.1", "net.3")
    assert model.attributes(x).shape == (5, 3) and model.decode(model.attributes(x)).shape == (5, 2)


def test_nothing_touches_the_global_random_state_or_the_modes(flint, digits):
    x, y = digits[0][:64], digits[1][:64]
    cnn = ks.load_pretrained("digits-cnn")
    calls = {
        "FLINT.build": lambda: ks.FLINT.build((1, 8, 8), 10, seed=3),
        "FLINT.post_hoc": lambda: ks.FLINT.post_hoc(cnn, "net.4", seed=3),
        "fit_flint": lambda: ks.fit_flint(ks.FLINT.build((1, 8, 8), 10, hidden=8, channels=2, width=4), x, y,
                                          epochs=1, progress=False),
        "fit (dropout)": lambda: ks.fit(ks.FlintClassifier.build((1, 8, 8), 10, hidden=8, channels=2), x, y,
                                        objective="cross_entropy", epochs=1, progress=False),
        "flint_interpretation": lambda: ks.flint_interpretation(flint, x),
        "global_relevance": lambda: ks.global_relevance(flint, x),
        "maximum_activating_samples": lambda: ks.maximum_activating_samples(flint, x),
        "activation_maximisation": lambda: ks.activation_maximisation(flint, x[0], rounds=1, steps=5),
        "flint_metrics": lambda: ks.flint_metrics(flint, x, y),
    }
    touched, modes = [], []
    flint.train()
    try:
        for name, call in calls.items():
            torch.manual_seed(1234)
            call()
            if not torch.equal(torch.get_rng_state(), torch.random.manual_seed(1234).get_state()):
                touched.append(name)
            if not all(module.training for module in flint.modules()):
                modes.append(name)
    finally:
        flint.eval()
    assert not touched, f"these drew from the global random state: {touched}"
    assert not modes, f"these left the model in another mode: {modes}"
