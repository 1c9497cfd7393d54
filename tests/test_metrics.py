"""Scores of explanation results (crosslens.kernel_side.metrics): sizes, realism, oracles."""

from __future__ import annotations

import pytest
import torch

from crosslens import kernel_side as ks
from crosslens.kernel_side import latent_counterfactual
from crosslens.kernel_side.metrics import evaluate, fit_oracle


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
    assert summary["median_bits_per_dim"] is None and summary["oracle_target"] is None
    assert summary["success_rate"] == latent.success_rate and summary["n"] == 100


def test_evaluation_scores_a_boundary_projection_directly(digits):
    x_train, y_train, x_test, _ = digits
    projection = ks.project_to_boundary(ks.load_pretrained("digits-invertible"), x_test[:30])
    report = evaluate(projection, oracle=fit_oracle(x_train, y_train), reference_set=(x_train, y_train))
    assert report.method == "projection" and report.success is None and report.steps is None
    assert torch.allclose(report.l2, (projection.x_proj - projection.x).flatten(1).norm(dim=1))
    assert torch.equal(report.target, projection.target) and report.nearest_target_distance.shape == (30,)
    assert report.summary()["oracle_target"] is not None
    with pytest.raises(TypeError, match="result must carry x, source, target and x_cf or x_proj"):
        evaluate(projection.x)
