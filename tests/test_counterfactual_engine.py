"""Counterfactual engine (Dombrowski et al. 2024): batching, stopping, validity, boundary crossings, bad input."""

from __future__ import annotations

import threading

import pytest
import torch
import torch.nn.functional as F

from crosslens import kernel_side as ks
from crosslens.kernel_side.methods.counterfactuals import boundary_crossing, latent_counterfactual, pixel_counterfactual
from crosslens.kernel_side.metrics import evaluate, fit_oracles

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def classifier():
    return ks.load_pretrained("digits-mlp")


@pytest.fixture(scope="module")
def flow():
    return ks.load_pretrained("digits-flow")


@pytest.fixture(scope="module")
def hundred(digits, classifier):
    """100 correctly classified test digits, each with a random other target (seeded)."""
    _, _, x_test, y_test = digits
    with torch.no_grad():
        correct = (classifier(x_test).argmax(1) == y_test).nonzero().flatten()[:100]
    shift = torch.randint(1, 10, (100,), generator=torch.Generator().manual_seed(0))
    return x_test[correct], (y_test[correct] + shift) % 10


@pytest.fixture(scope="module")
def searches(classifier, flow, hundred):
    x, target = hundred
    return (latent_counterfactual(classifier, flow, x, target, threshold=0.9),
            pixel_counterfactual(classifier, x, target, threshold=0.9))


# --- the search ---------------------------------------------------------------------------

def test_latent_and_pixel_searches_reach_the_target(searches, classifier, flow, hundred):
    x, target = hundred
    for result in searches:
        assert result.x_cf.min() >= 0 and result.x_cf.max() <= 1
        with torch.no_grad():
            confidence = classifier(result.x_cf).softmax(1)[torch.arange(100), target]
        assert torch.equal(result.success, confidence > 0.9)
        assert torch.allclose(confidence, result.confidence[:, -1], atol=1e-6)
        assert torch.equal(result.record_steps[:, -1], result.steps) and (result.record_steps[:, 0] == 0).all()
        assert torch.equal(result.frames[:, -1], result.x_cf)
    latent, pixel = searches
    assert latent.success_rate >= 0.99 and (latent.steps <= 1000).all()
    assert (latent.reference - x).abs().max() < 1e-4  # an exact flow starts at the input itself
    assert latent.latents.shape == (100, latent.num_records, flow.latent_dim) and pixel.latents is None
    assert torch.equal(latent.failures, (~latent.success).nonzero().flatten())


def test_latent_counterfactuals_are_real_digits_of_the_target(searches, classifier, flow, digits):
    """The paper's claim: independent oracles agree with latent results far more than with pixel ones
    (by how much depends on the oracle: every one of the standard set is asked)."""
    x_train, y_train, _, _ = digits
    oracles = fit_oracles(x_train, y_train)
    latent, pixel = (evaluate(result, flow=flow, oracles=oracles, reference_set=(x_train, y_train)).summary()
                     for result in searches)
    assert latent["oracle_target"]["svc"] >= 0.7
    assert all(latent["oracle_target"][name] - pixel["oracle_target"][name] >= 0.3 for name in oracles)
    assert latent["median_bits_per_dim"] < pixel["median_bits_per_dim"]
    assert latent["median_nearest_target_distance"] < pixel["median_nearest_target_distance"]


@pytest.mark.parametrize("method", ["latent", "pixel"])
def test_each_row_follows_its_own_trajectory(classifier, flow, hundred, method):
    x, target = hundred[0][:6], hundred[1][:6]

    def search(rows):
        if method == "latent":
            return latent_counterfactual(classifier, flow, x[rows], target[rows], threshold=0.9, max_steps=60)
        return pixel_counterfactual(classifier, x[rows], target[rows], lr=5e-3, threshold=0.9, max_steps=60)

    together = search(slice(None))
    assert len(set(together.steps.tolist())) > 1  # rows stop at different steps
    for row in range(6):
        alone = search(slice(row, row + 1))
        length = alone.num_records
        assert alone.steps[0] == together.steps[row]
        assert (alone.frames[0] - together.frames[row, :length]).abs().max() < 1e-5
        assert (together.frames[row, length:] == together.x_cf[row]).all()  # frozen once stopped


def test_the_vectorised_adam_is_torch_adam(classifier, hundred):
    x, target = hundred[0][:1], hundred[1][:1]
    result = pixel_counterfactual(classifier, x, target, lr=1e-3, max_steps=25, threshold=0.999)
    point = x.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([point], lr=1e-3)
    for _ in range(25):
        optimizer.zero_grad()
        F.cross_entropy(classifier(point), target).backward()
        optimizer.step()
        with torch.no_grad():
            point.clamp_(0, 1)
    assert result.steps.item() == 25
    assert (result.x_cf - point.detach()).abs().max() < 1e-5


def test_records_every_few_steps(classifier, flow, hundred):
    x, target = hundred[0][:4], hundred[1][:4]
    every = latent_counterfactual(classifier, flow, x, target, threshold=0.9, max_steps=60)
    sparse = latent_counterfactual(classifier, flow, x, target, threshold=0.9, max_steps=60, record_every=4)
    expected = torch.minimum(4 * torch.arange(sparse.num_records)[None], sparse.steps[:, None])
    assert torch.equal(sparse.record_steps, expected)
    assert sparse.num_records == (int(every.steps.max()) + 3) // 4 + 1
    assert torch.allclose(sparse.frames, every.frames.gather(
        1, expected.reshape(4, -1, 1, 1, 1).expand(-1, -1, *x.shape[1:])), atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_runs_on_the_classifier_device(classifier, flow, hundred, device):
    classifier, flow = ks.load_pretrained("digits-mlp").to(device), ks.load_pretrained("digits-flow").to(device)
    result = latent_counterfactual(classifier, flow, hundred[0][:3], hundred[1][:3], threshold=0.9)
    assert result.x_cf.device.type == device and result.success.all()


def test_the_users_models_are_left_as_they_were(flow, hundred):
    classifier = ks.load_pretrained("digits-mlp").train()
    next(classifier.parameters()).requires_grad_(False)
    flags = [parameter.requires_grad for parameter in classifier.parameters()]
    state = {key: value.clone() for key, value in classifier.state_dict().items()}
    latent_counterfactual(classifier, flow, hundred[0][:3], hundred[1][:3], threshold=0.9, max_steps=20)
    assert classifier.training and not flow.training
    assert [parameter.requires_grad for parameter in classifier.parameters()] == flags
    assert all(parameter.grad is None for parameter in [*classifier.parameters(), *flow.parameters()])
    assert all(torch.equal(value, classifier.state_dict()[key]) for key, value in state.items())


def test_stop_and_ctrl_c_return_the_partial_result(classifier, flow, hundred):
    x, target = hundred
    stop = threading.Event()
    seen = []

    def on_progress(partial):
        seen.append(int(partial.steps.max()))
        stop.set()

    result = latent_counterfactual(classifier, flow, x, target, threshold=0.999, stop=stop,
                                   on_progress=on_progress, progress_every=3)
    assert seen == [3] and result.interrupted and int(result.steps.max()) == 3
    assert torch.equal(result.frames[:, -1], result.x_cf) and not result.success[result.steps == 3].any()

    class CtrlC(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner, self.calls = classifier, 0

        def forward(self, inputs):
            self.calls += 1
            if self.calls == 6:
                raise KeyboardInterrupt
            return self.inner(inputs)

    result = latent_counterfactual(CtrlC(), flow, x, target, threshold=0.999)
    assert result.interrupted and int(result.steps.max()) == 3 and result.num_records == 4


# --- boundary crossings -------------------------------------------------------------------

@pytest.mark.parametrize("into", ["target", "any"])
def test_boundary_crossings_are_where_the_top_two_tie(searches, classifier, flow, into):
    latent, pixel = searches
    for result, generator in ((latent, flow), (latent, None), (pixel, None)):
        crossing = boundary_crossing(classifier, result, generator, into=into)
        assert crossing.found[result.success].all()
        found = crossing.found
        with torch.no_grad():
            top = classifier(crossing.x[found]).softmax(1).topk(2, dim=1)
        assert (top.values[:, 0] - top.values[:, 1]).max() < 1e-5
        assert (crossing.gap[found] < 1e-5).all()
        assert torch.equal(top.indices.sort(1).values, crossing.classes[found].sort(1).values)
        if into == "any":  # where the trajectory first leaves its class
            assert torch.equal(crossing.classes[:, 0], result.source)
        else:  # where it first enters the target class
            assert torch.equal(crossing.classes[found, 1], result.target[found])
        assert ((crossing.position >= 0) & (crossing.position <= result.steps)).all()
        assert (crossing.z is not None) == (generator is not None)
    crossing = boundary_crossing(classifier, latent, flow, into=into)
    with torch.no_grad():
        assert (flow.decode(crossing.z).clamp(0, 1) - crossing.x).abs().max() < 1e-6


def test_many_latent_paths_pass_a_third_class_before_the_target(searches, classifier, flow):
    latent = searches[0]
    first = boundary_crossing(classifier, latent, flow, into="any")
    into_target = boundary_crossing(classifier, latent, flow, into="target")
    third = first.classes[:, 1] != latent.target
    assert 0.2 < third.float().mean() < 1  # the first crossing is often not into the target
    assert (into_target.position[third] > first.position[third]).all()


def test_without_a_target_each_input_heads_for_its_runner_up(classifier, flow, hundred):
    x = hundred[0][:20]
    with torch.no_grad():
        runner_up = classifier(x).topk(2, dim=1).indices[:, 1]
    for result in (latent_counterfactual(classifier, flow, x, threshold=0.9),
                   pixel_counterfactual(classifier, x, threshold=0.9, max_steps=50)):
        assert torch.equal(result.target, runner_up)
    assert latent_counterfactual(classifier, flow, x, threshold=0.9).success.all()


# --- bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize("change, error, message", [
    ({"target": 10}, ValueError, "target must lie in \\[0, 9\\]"),
    ({"target": [1, 2]}, ValueError, "target must be one class index or 3"),
    ({"x": torch.full((3, 1, 8, 8), float("nan"))}, ValueError, "x contains NaN"),
    ({"x": torch.full((3, 1, 8, 8), 2.0)}, ValueError, "x must lie in the clip range"),
    ({"x": torch.zeros(3, 63)}, ValueError, "x must have shape"),
    ({"lr": 0}, ValueError, "lr must be a positive"),
    ({"threshold": 1.0}, ValueError, r"threshold must be a finite number in \(0, 1\)"),
    ({"max_steps": 2.5}, TypeError, "max_steps must be an integer"),
    ({"record_every": 0}, ValueError, "record_every must be an integer >= 1"),
    ({"clip": (1, 0)}, ValueError, "clip must be a finite pair"),
    ({"stop": True}, TypeError, "stop must offer is_set"),
    ({"on_progress": 3}, TypeError, "on_progress must be callable"),
    ({"generator": object()}, TypeError, "generator must offer input_shape"),
    ({"classifier": lambda x: x}, TypeError, "classifier must be a torch.nn.Module"),
])
def test_bad_input_is_named(classifier, flow, digits, change, error, message):
    arguments = {"classifier": classifier, "generator": flow, "x": digits[2][:3], "target": 1} | change
    with pytest.raises(error, match=message):
        latent_counterfactual(**arguments)


def test_generator_and_classifier_must_agree_on_the_input_shape(flow):
    moons_classifier = ks.load_pretrained("moons10-mlp")
    with pytest.raises(ValueError, match="generator and classifier must share one input_shape"):
        latent_counterfactual(moons_classifier, flow, torch.zeros(2, 10), 1, clip=None)


def test_latent_counterfactuals_stay_on_the_lifted_moons():
    """In R^10 the data lie on a plane: latent steps follow it, pixel steps leave it."""
    moons = ks.load_lifted_moons_split(dim=10, noise=0.01, seed=0)
    classifier, flow = ks.load_pretrained("moons10-mlp"), ks.load_pretrained("moons10-flow")
    with torch.no_grad():
        correct = classifier(moons.x_test).argmax(1) == moons.y_test
    x, target = moons.x_test[correct][:100], 1 - moons.y_test[correct][:100]
    latent = latent_counterfactual(classifier, flow, x, target, threshold=0.9, clip=None)
    pixel = pixel_counterfactual(classifier, x, target, threshold=0.9, clip=None)
    assert latent.success_rate >= 0.95
    latent_distance, pixel_distance = (moons.manifold_distance(result.x_cf).median() for result in (latent, pixel))
    assert 5 * latent_distance <= pixel_distance
