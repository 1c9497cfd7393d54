"""Scores of explanation results (crosslens.kernel_side.metrics): sizes, realism, oracles."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from crosslens import kernel_side as ks
from crosslens.kernel_side import NormalizingFlow, bits_per_dim, latent_counterfactual
from crosslens.kernel_side.metrics import ORACLES, evaluate, fit_oracle, fit_oracles


@pytest.fixture(scope="module")
def oracles(digits):
    """The standard independent oracles and the shipped CNN, which the searches never saw."""
    x_train, y_train, _, _ = digits
    return {**fit_oracles(x_train, y_train), "digits-cnn": ks.load_pretrained("digits-cnn")}


@pytest.fixture(scope="module")
def latent(digits):
    """Latent counterfactuals of 100 correctly classified test digits, random other targets (seeded)."""
    classifier, flow = ks.load_pretrained("digits-mlp"), ks.load_pretrained("digits-flow")
    _, _, x_test, y_test = digits
    with torch.no_grad():
        correct = (classifier(x_test).argmax(1) == y_test).nonzero().flatten()[:100]
    shift = torch.randint(1, 10, (100,), generator=torch.Generator().manual_seed(0))
    return latent_counterfactual(classifier, flow, x_test[correct], (y_test[correct] + shift) % 10, threshold=0.9)


def test_evaluation_measures(latent, digits):
    x_train, y_train, _, _ = digits
    report = evaluate(latent, reference_set=(x_train, y_train))
    change = (latent.x_cf - latent.x).flatten(1)
    assert torch.allclose(report.l1, change.abs().sum(1)) and torch.allclose(report.l2, change.norm(dim=1))
    row, target = 7, latent.target[7]
    brute = (x_train[y_train == target] - latent.x_cf[row]).flatten(1).norm(dim=1).min()
    assert torch.isclose(report.nearest_target_distance[row], brute, atol=1e-5)
    summary = report.summary()
    assert summary["median_bits_per_dim"] is None and summary["oracle_target"] == {} == summary["oracle_source"]
    assert summary["success_rate"] == latent.success_rate and summary["n"] == 100


def test_evaluation_scores_a_boundary_projection_directly(digits):
    x_train, y_train, x_test, _ = digits
    projection = ks.project_to_boundary(ks.load_pretrained("digits-invertible"), x_test[:30])
    report = evaluate(projection, oracles={"svc": fit_oracle(x_train, y_train)}, reference_set=(x_train, y_train))
    assert report.method == "projection" and report.success is None and report.steps is None
    assert torch.allclose(report.l2, (projection.x_proj - projection.x).flatten(1).norm(dim=1))
    assert torch.equal(report.target, projection.target) and report.nearest_target_distance.shape == (30,)
    assert set(report.summary()["oracle_target"]) == {"svc"}
    with pytest.raises(TypeError, match="result must carry x, source, target and x_cf or x_proj"):
        evaluate(projection.x)


# --- bits per dimension -------------------------------------------------------------------

def test_bits_per_dim_bounds_the_probability_of_each_bin():
    """Quantised data (a 1-D flow, 3 levels): P(bin), the density integrated over the bin
    (quadrature), against the standard dequantised figure (an upper bound on -log2 P) and the
    importance-weighted estimate (below it, and the bin probabilities it implies add up to theirs)."""
    flow = NormalizingFlow.build((1,), blocks=2, hidden=8, levels=3, seed=0).double()
    values = torch.tensor([[0.0], [0.5], [1.0]], dtype=torch.float64)
    with torch.no_grad():
        mass = []
        for value in values[:, 0]:
            x = torch.linspace(value - 0.25, value + 0.25, 20001, dtype=torch.float64)[:, None]
            mass.append(torch.trapezoid(flow.log_prob(x).exp(), x[:, 0]))
        exact = -torch.log2(torch.stack(mass))
        standard = bits_per_dim(flow, values, draws=1000)
        weighted = bits_per_dim(flow, values, draws=1000, importance_weighted=True)
    assert (standard > exact).all() and (weighted < standard).all()
    assert (2 ** -weighted).sum().item() == pytest.approx((2 ** -exact).sum().item(), abs=0.01)


def test_bits_per_dim_is_seeded_and_exact_for_continuous_flows(digits):
    flow = ks.load_pretrained("digits-flow")
    x = digits[2][:20]
    state = torch.random.get_rng_state()
    with torch.no_grad():
        first, again, other = (bits_per_dim(flow, x, seed=seed) for seed in (0, 0, 1))
        one = bits_per_dim(flow, x, draws=1, seed=3)
        one_weighted = bits_per_dim(flow, x, draws=1, seed=3, importance_weighted=True)
        by_hand = -(flow.log_prob(ks.dequantize(flow, x, torch.Generator().manual_seed(3))) - 64 * math.log(16))
    assert torch.equal(torch.random.get_rng_state(), state)  # the global random state is left alone
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert torch.allclose(one, by_hand / (64 * math.log(2))) and torch.allclose(one, one_weighted)
    continuous = NormalizingFlow.build((3,), blocks=2, hidden=8, levels=None, seed=0)
    points = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        exact = -continuous.log_prob(points) / (3 * math.log(2))
        assert torch.equal(bits_per_dim(continuous, points, draws=7, seed=2, importance_weighted=True), exact)


# --- oracles --------------------------------------------------------------------------------

def test_every_oracle_is_reported_under_its_name(latent, oracles):
    """Independent oracles disagree widely on counterfactuals: each gets its own entry."""
    report = evaluate(latent, oracles=oracles)
    assert list(report.oracle_predictions) == [*ORACLES, "digits-cnn"]
    flat = latent.x_cf.flatten(1).numpy()
    for name in ORACLES:
        assert np.array_equal(report.oracle_predictions[name].numpy(), oracles[name].predict(flat))
    with torch.no_grad():
        assert torch.equal(report.oracle_predictions["digits-cnn"], oracles["digits-cnn"](latent.x_cf).argmax(1))
    summary = report.summary()
    for name, prediction in report.oracle_predictions.items():
        assert summary["oracle_target"][name] == (prediction == latent.target).float().mean().item()
        assert summary["oracle_source"][name] == (prediction == latent.source).float().mean().item()
    agreement = summary["oracle_target"].values()
    assert max(agreement) - min(agreement) >= 0.3  # one oracle alone would tell a different story


def test_a_torch_oracle_sees_inputs_in_its_own_shape_dtype_and_mode(latent):
    """Argmax of the logits on inputs of the oracle's input_shape (the result's shape when it
    declares none), in its dtype; its training mode is given back."""
    image = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).double().train()
    flat = ks.MLPClassifier.build((64,), 10, hidden=8)
    report = evaluate(latent, oracles={"image": image, "flat": flat})
    assert image.training
    with torch.no_grad():
        assert torch.equal(report.oracle_predictions["image"], image(latent.x_cf.double()).argmax(1))
        assert torch.equal(report.oracle_predictions["flat"], flat(latent.x_cf.flatten(1)).argmax(1))
    with pytest.raises(ValueError, match=r"oracles\['odd'\] takes inputs of shape \(63,\)"):
        evaluate(latent, oracles={"odd": ks.MLPClassifier.build((63,), 10, hidden=8)})


def test_scikit_learn_is_imported_only_when_oracles_are_fitted():
    code = ("import sys, crosslens.kernel_side; "
            "print(sorted(m for m in sys.modules if m.split('.')[:2] in (['sklearn', 'svm'], "
            "['sklearn', 'neighbors'], ['sklearn', 'linear_model'])))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


@pytest.mark.parametrize("call, error, message", [
    (lambda flow, x, svc: bits_per_dim(flow, x, draws=0), ValueError, "draws"),
    (lambda flow, x, svc: bits_per_dim(flow, x, draws=2.0), TypeError, "draws"),
    (lambda flow, x, svc: bits_per_dim(flow, x, seed="0"), TypeError, "seed"),
    (lambda flow, x, svc: bits_per_dim(flow, x, importance_weighted="yes"), TypeError, "importance_weighted"),
    (lambda flow, x, svc: evaluate(svc["result"], oracles=svc["svc"]), TypeError, "oracles must be a mapping"),
    (lambda flow, x, svc: evaluate(svc["result"], oracles={0: svc["svc"]}), TypeError, "oracles must be keyed by name"),
    (lambda flow, x, svc: evaluate(svc["result"], oracles={"box": object()}), TypeError,
     r"oracles\['box'\] must offer predict"),
    (lambda flow, x, svc: evaluate(svc["result"], flow=flow, seed=0.5), TypeError, "seed"),
    (lambda flow, x, svc: fit_oracles(x, torch.zeros(3)), ValueError, "one label per input"),
    (lambda flow, x, svc: fit_oracles(x, torch.zeros(len(x)), names="svc"), TypeError, "names"),
    (lambda flow, x, svc: fit_oracles(x, torch.zeros(len(x)), names=("forest",)), ValueError, "names must be one of"),
])
def test_bad_arguments_are_named(call, error, message, latent, digits):
    x_train, y_train = digits[0][:50], digits[1][:50]
    svc = {"svc": fit_oracle(x_train, y_train), "result": latent}
    with pytest.raises(error, match=message):
        call(NormalizingFlow.build((1, 8, 8), blocks=2, hidden=4), x_train, svc)
