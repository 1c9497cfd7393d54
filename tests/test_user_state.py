"""crosslens leaves the user's world as it found it: random streams, models' train/eval modes
(also when two explorers share one model), torch's thread setting."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

import crosslens
from crosslens import kernel_side as ks


def test_no_loader_builder_or_fit_touches_the_global_random_state(digits):
    x_train, y_train = digits[0][:64], digits[1][:64]
    calls = {f"load_pretrained({name!r})": (lambda name=name: ks.load_pretrained(name)) for name in ks.PRETRAINED}
    calls.update({
        "load_digits_split": ks.load_digits_split,
        "load_moons_split": ks.load_moons_split,
        "load_lifted_moons_split": ks.load_lifted_moons_split,
        "load_shapes_split": lambda: ks.load_shapes_split(train=8, test=8),
        "InvertibleClassifier.build": lambda: ks.InvertibleClassifier.build((2,), 2, blocks=2, hidden=8, seed=3),
        "MLPClassifier.build": lambda: ks.MLPClassifier.build((2,), 2, seed=3),
        "ConvClassifier.build": lambda: ks.ConvClassifier.build((1, 8, 8), 10, channels=2, hidden=4, seed=3),
        "NormalizingFlow.build": lambda: ks.NormalizingFlow.build((2,), blocks=2, hidden=8, levels=None, seed=3),
        "VAE.build": lambda: ks.VAE.build((2,), latent_dim=2, hidden=8, seed=3),
        "fit": lambda: ks.fit(ks.MLPClassifier.build((1, 8, 8), 10, hidden=8), x_train, y_train,
                              objective="cross_entropy", epochs=2, progress=False),
        "fit (hybrid)": lambda: ks.fit(ks.InvertibleClassifier.build((1, 8, 8), 10, blocks=2, hidden=8), x_train,
                                       y_train, epochs=2, progress=False),
        "fit_flow": lambda: ks.fit_flow(ks.NormalizingFlow.build((1, 8, 8), blocks=2, hidden=8), x_train, epochs=2,
                                        progress=False),
        "fit_vae": lambda: ks.fit_vae(ks.VAE.build((1, 8, 8), latent_dim=2, hidden=8), x_train, epochs=2,
                                      progress=False),
    })
    touched = []
    for name, call in calls.items():
        torch.manual_seed(1234)
        call()
        if not torch.equal(torch.get_rng_state(), torch.random.manual_seed(1234).get_state()):
            touched.append(name)
    assert not touched, f"these reseeded or drew from the global random state: {touched}"


def test_building_the_same_seed_twice_gives_the_same_weights():
    first, second = (ks.InvertibleClassifier.build((2,), 2, blocks=2, hidden=8, seed=5) for _ in range(2))
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))


def test_training_a_shipped_model_gives_the_thread_setting_back(monkeypatch):
    from crosslens.kernel_side import pretrained

    monkeypatch.setattr(pretrained, "_train", lambda model, *args: (_ for _ in ()).throw(KeyboardInterrupt()))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(KeyboardInterrupt):
            ks.train_pretrained("moons-invertible", progress=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_two_explorers_sharing_a_model_in_train_mode_both_search_in_eval_mode(digits):
    """Each search puts the model in eval mode and gives the user's mode back; two searches that
    overlap (two explorers, two threads) must not interleave those switches."""
    flow = ks.load_pretrained("digits-flow")
    classifier = nn.Sequential(nn.Dropout(0.5), ks.load_pretrained("digits-mlp"))  # dropout: modes matter
    x = digits[2][:6]
    classifier.train()
    first = crosslens.CounterfactualExplorer(classifier, flow, x[:3], max_steps=300, threshold=0.999)
    deadline = time.monotonic() + 10
    while "running" not in first.row_status["pixel"] and time.monotonic() < deadline:  # the first one searches...
        time.sleep(0.005)
    assert first.busy, "the first explorer finished before the second one started"
    second = crosslens.CounterfactualExplorer(classifier, flow, x[3:], max_steps=600, threshold=0.999)  # ...longer
    explorers, settings = (first, second), ({"max_steps": 300}, {"max_steps": 600})
    for explorer in explorers:
        assert explorer.wait(120)
    assert classifier.training and classifier[0].training and classifier[1].training
    classifier.eval()
    for explorer, rows, steps in zip(explorers, (x[:3], x[3:]), settings):
        alone = {"latent": ks.latent_counterfactual(classifier, flow, rows, explorer.targets, threshold=0.999, **steps),
                 "pixel": ks.pixel_counterfactual(classifier, rows, explorer.targets, threshold=0.999, **steps)}
        for method, result in (("latent", explorer.result_latent), ("pixel", explorer.result_pixel)):
            assert torch.equal(result.steps, alone[method].steps)
            torch.testing.assert_close(result.x_cf, alone[method].x_cf, atol=1e-6, rtol=0)
