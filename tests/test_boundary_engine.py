"""The boundary engine (Zhuang et al. 2019): exactness, the multi-class rules, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import directed_hausdorff

from crosslens import kernel_side as ks
from crosslens.kernel_side.methods._face import nearest_face_point, nearest_face_point_slsqp

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def moons():
    return ks.load_moons_split()


@pytest.fixture(scope="module")
def digits_model():
    return ks.load_pretrained("digits-invertible")


@pytest.fixture(scope="module")
def moons_model():
    return ks.load_pretrained("moons-invertible")


def pair_gap(model, x, source, target):
    with torch.no_grad():
        logits = model(x)
    return logits.gather(1, source[:, None]).squeeze(1) - logits.gather(1, target[:, None]).squeeze(1)


# --- data and shipped models ------------------------------------------------------------

def test_splits_follow_the_design(digits, moons):
    x_train, y_train, x_test, y_test = digits
    assert x_train.shape == (1437, 1, 8, 8) and x_test.shape == (360, 1, 8, 8)
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.int64
    assert 0 <= x_train.min() and x_train.max() <= 1
    assert moons[0].shape == (600, 2) and moons[2].shape == (400, 2)


@pytest.mark.parametrize("name, minimum", [("digits-invertible", 0.97), ("moons-invertible", 0.95)])
def test_shipped_models_reach_their_accuracy(name, minimum):
    model = ks.load_pretrained(name)
    _, _, x_test, y_test = ks.PRETRAINED[name].load_data()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    assert accuracy >= minimum
    assert not model.training


def test_shipped_weights_are_small():
    for name in ks.PRETRAINED:
        assert (ks.pretrained.weights_dir() / f"{name}.pt").stat().st_size < 2 * 1024 * 1024


def test_unknown_pretrained_name_is_named():
    with pytest.raises(ValueError, match="name must be one of"):
        ks.load_pretrained("imagenet")


# --- the invertible network ---------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
def test_round_trip_float32_and_float64(digits_model, digits, device):
    model = digits_model.to(device)
    x = digits[2].to(device)
    with torch.no_grad():
        assert (model.inverse(model.features(x)) - x).abs().max() <= 1e-5
        double = ks._runtime.model_in_dtype(model, torch.float64)
        x64 = x.double()
        assert (double.inverse(double.features(x64)) - x64).abs().max() <= 1e-12
    assert next(model.parameters()).dtype == torch.float32  # the user's model is untouched
    digits_model.to("cpu")


def test_log_prob_is_a_density_on_the_moons(moons_model):
    # Integrate exp(log_prob) over a grid that holds the data: close to 1.
    xs = torch.linspace(-3, 4, 351)
    ys = torch.linspace(-3, 3.5, 326)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        mass = moons_model.log_prob(grid).exp().sum() * (xs[1] - xs[0]) * (ys[1] - ys[0])
    assert 0.95 < mass.item() < 1.02


def test_fit_is_seedable_and_keeps_the_best_weights(moons):
    x, y = moons[0], moons[1]
    runs = []
    for _ in range(2):
        model = ks.InvertibleClassifier.build((2,), 2, blocks=2, hidden=8, seed=3)
        report = ks.fit(model, x, y, epochs=6, patience=3, seed=3, progress=False)
        runs.append(model.head.weight.detach().clone())
        assert not model.training and 0 <= report.best_epoch < len(report.history)
    assert torch.equal(runs[0], runs[1])
    ce_model = ks.InvertibleClassifier.build((2,), 2, blocks=2, hidden=8)
    ks.fit(ce_model, x, y, objective="cross_entropy", epochs=2, progress=False)
    with pytest.raises(ValueError, match="objective"):
        ks.fit(ce_model, x, y, objective="hinge")
    with pytest.raises(ValueError, match="y must lie in"):
        ks.fit(ce_model, x, y + 5)


def test_random_shifts_move_whole_images():
    images = torch.zeros(64, 1, 8, 8)
    images[:, :, 3, 4] = 1
    moved = ks.random_shifts(1)(images, torch.Generator().manual_seed(0))
    rows, cols = moved[:, 0].nonzero()[:, 1], moved[:, 0].nonzero()[:, 2]
    assert moved.sum() == 64  # nothing lost at the centre
    assert set(rows.tolist()) == {2, 3, 4} and set(cols.tolist()) == {3, 4, 5}


# --- projection onto the boundary ---------------------------------------------------------

def test_projection_lands_on_the_boundary_for_every_test_digit(digits_model, digits):
    projection = ks.project_to_boundary(digits_model, digits[2])
    gap = pair_gap(digits_model, projection.x_proj, projection.source, projection.target)
    assert gap.abs().max() <= 1e-4
    assert (projection.target != projection.source).all()
    torch.testing.assert_close(projection.explanation, projection.x - projection.x_proj)


def test_projection_distance_matches_the_closed_form(digits_model, digits):
    projection = ks.project_to_boundary(digits_model, digits[2], dtype=torch.float64)
    weight = digits_model.head.weight.double()
    bias = digits_model.head.bias.double()
    normal = weight[projection.source] - weight[projection.target]
    g = (normal * projection.z).sum(1) + bias[projection.source] - bias[projection.target]
    expected = g.abs() / normal.norm(dim=1)
    torch.testing.assert_close(projection.distance, expected, rtol=1e-6, atol=0)


def test_nearest_facet_never_lands_in_a_third_class(digits_model, digits):
    projection = ks.project_to_boundary(digits_model, digits[2])
    with torch.no_grad():
        logits = digits_model(projection.x_proj)
    top_two = logits.topk(2, dim=1).indices.sort(1).values
    pair = torch.stack([projection.source, projection.target], 1).sort(1).values
    assert torch.equal(top_two, pair)


def test_side_of_the_boundary(digits_model, digits):
    projection = ks.project_to_boundary(digits_model, digits[2][:64], dtype=torch.float64)
    double = ks._runtime.model_in_dtype(digits_model, torch.float64)
    step = 0.01 * projection.explanation
    with torch.no_grad():
        towards_source = double(projection.x_proj + step).argmax(1)
        across = double(projection.x_proj - step).argmax(1)
    assert torch.equal(towards_source, projection.source)
    assert torch.equal(across, projection.target)


def test_explicit_targets_get_the_exact_face_point(digits_model, digits):
    x = digits[2][:60]
    with torch.no_grad():
        predicted = digits_model(x).argmax(1)
    target = (predicted + 1 + torch.arange(60) % 9) % 10
    projection = ks.project_to_boundary(digits_model, x, target, dtype=torch.float64)
    logits = projection.z_proj @ digits_model.head.weight.double().T + digits_model.head.bias.double()
    tie = logits.gather(1, projection.source[:, None]).squeeze(1)
    assert (tie - logits.gather(1, target[:, None]).squeeze(1)).abs().max() < 1e-9
    assert (logits <= tie[:, None] + 1e-9).all()  # nobody above the tied pair
    # The plain pairwise projection lands in a third class for some of these pairs ...
    weight, bias = digits_model.head.weight.double(), digits_model.head.bias.double()
    normal = weight[projection.source] - weight[target]
    g = (normal * projection.z).sum(1) + bias[projection.source] - bias[target]
    pairwise = projection.z - (g / normal.pow(2).sum(1))[:, None] * normal
    pairwise_top = (pairwise @ weight.T + bias).argmax(1)
    assert ((pairwise_top != projection.source) & (pairwise_top != target)).any()
    # ... and the batched solver agrees with an independent SLSQP solve on every row.
    reference, reachable = nearest_face_point_slsqp(weight, bias, projection.z, projection.source, target)
    assert reachable.all()
    torch.testing.assert_close(projection.z_proj, reference, atol=1e-5, rtol=0)


def test_an_unreachable_target_is_said_clearly():
    model = ks.InvertibleClassifier.build((2,), 3, blocks=2, hidden=4).eval()
    with torch.no_grad():  # classes along one axis: 0 and 2 never share the top two
        model.head.weight.copy_(torch.tensor([[-1.0, 0.0], [0.0, 0.0], [1.0, 0.0]]))
        model.head.bias.copy_(torch.tensor([0.0, 1.0, 0.0]))
    z, reachable = nearest_face_point(model.head.weight, model.head.bias, torch.tensor([[-2.0, 0.5]]),
                                      torch.tensor([0]), torch.tensor([2]))
    assert not reachable.any() and z.isnan().all()
    x = model.inverse(torch.tensor([[-2.0, 0.5]])).detach()
    with pytest.raises(ValueError, match="target is unreachable for rows \\[0\\]"):
        ks.project_to_boundary(model, x, target=2)
    assert ks.project_to_boundary(model, x, target=1).target.item() == 1


@pytest.mark.parametrize("importance_at", ["input", "projection"])
def test_taylor_importance_approximates_the_logit_gap(digits_model, digits, importance_at):
    projection = ks.project_to_boundary(digits_model, digits[2], importance_at=importance_at)
    gap = pair_gap(digits_model, projection.x, projection.source, projection.target)
    torch.testing.assert_close(projection.taylor_error, gap - projection.importance.flatten(1).sum(1))
    # First order explains most of the gap on typical digits.
    assert (projection.taylor_error.abs() / gap.abs()).median() < 0.5


def test_importance_is_expanded_at_the_projection_by_default_where_first_order_misses_less(digits_model, digits):
    at_projection = ks.project_to_boundary(digits_model, digits[2])
    at_input = ks.project_to_boundary(digits_model, digits[2], importance_at="input")
    assert at_projection.importance_at == "projection" and at_input.importance_at == "input"
    gap = at_projection.taylor_error + at_projection.importance.flatten(1).sum(1)
    torch.testing.assert_close(at_projection.relative_taylor_error, at_projection.taylor_error.abs() / gap.abs())
    assert at_projection.relative_taylor_error.median() < at_input.relative_taylor_error.median()


def test_projections_report_how_much_leaves_the_pixel_range(digits_model, digits):
    projection = ks.project_to_boundary(digits_model, digits[2])
    share = projection.out_of_range(0.0, 1.0)
    manual = ((projection.x_proj < 0) | (projection.x_proj > 1)).flatten(1).float().mean(1)
    torch.testing.assert_close(share, manual)
    assert share.mean() > 0.1  # a real effect on digits: a view that clips must say so
    assert (ks.project_to_boundary(digits_model, digits[2][:3]).out_of_range(-100, 100) == 0).all()


def test_the_default_path_holds_the_boundary_and_the_mirror_exactly(digits_model, digits):
    path = ks.boundary_path(digits_model, digits[2][:8])
    assert len(path.t) == 65 and {0.0, 1.0, 2.0} <= set(path.t.tolist())
    on_boundary = path.probs[:, path.t.tolist().index(1.0)]
    rows = torch.arange(8)
    tie = on_boundary[rows, path.projection.source] - on_boundary[rows, path.projection.target]
    assert tie.abs().max() < 1e-4


def test_a_single_input_is_a_batch_of_one(digits_model, digits):
    projection = ks.project_to_boundary(digits_model, digits[2][0])
    assert projection.x_proj.shape == (1, 1, 8, 8)


def test_the_engine_leaves_the_model_as_it_was(moons_model, moons):
    moons_model.train()
    before = {key: value.clone() for key, value in moons_model.state_dict().items()}
    ks.boundary_path(moons_model, moons[2][:5], dtype=torch.float64)
    assert moons_model.training
    moons_model.eval()
    for key, value in moons_model.state_dict().items():
        assert torch.equal(value, before[key])


# --- paths across and along the boundary --------------------------------------------------

def test_boundary_path_frames_and_probabilities(digits_model, digits):
    x = digits[2][:16]
    path = ks.boundary_path(digits_model, x, steps=65, t_max=2.0, dtype=torch.float64)
    assert path.frames.shape == (16, 65, 1, 8, 8) and path.probs.shape == (16, 65, 10)
    torch.testing.assert_close(path.frames[:, 0], x.double(), atol=1e-12, rtol=0)
    torch.testing.assert_close(path.frames[:, 32], path.projection.x_proj, atol=1e-12, rtol=0)
    source, target = path.projection.source, path.projection.target
    p_source = path.probs.gather(2, source[:, None, None].expand(-1, 65, 1)).squeeze(2)
    p_target = path.probs.gather(2, target[:, None, None].expand(-1, 65, 1)).squeeze(2)
    torch.testing.assert_close(p_source[:, 32], p_target[:, 32])  # they tie at t = 1
    assert (p_target[:, -1] > p_source[:, -1]).all()  # and the mirror point is across
    torch.testing.assert_close(path.probs.sum(2), torch.ones(16, 65, dtype=torch.float64))


def test_path_frames_are_the_inverted_feature_points(digits_model, digits):
    path = ks.boundary_path(digits_model, digits[2][:4], steps=8, dtype=torch.float64)
    projection = path.projection
    double = ks._runtime.model_in_dtype(digits_model, torch.float64)
    with torch.no_grad():
        features = double.features(path.frames.reshape(-1, 1, 8, 8)).reshape(4, 8, -1)
    expected = projection.z[:, None] + path.t[None, :, None] * (projection.z_proj - projection.z)[:, None]
    torch.testing.assert_close(features, expected, atol=1e-10, rtol=0)


def test_sweep_moves_along_the_boundary(digits_model, digits):
    x_train, _, x_test, _ = digits
    sweep = ks.boundary_sweep(digits_model, x_test[:6], reference=x_train, n_directions=3, steps=9, dtype=torch.float64)
    assert sweep.frames.shape == (6, 3, 9, 9, 1, 8, 8) and sweep.probs.shape == (6, 3, 9, 9, 10)
    weight = digits_model.head.weight.double()
    normals = weight[sweep.projection.source] - weight[sweep.projection.target]
    assert (torch.einsum("nkd,nd->nk", sweep.directions, normals).abs() < 1e-9).all()
    gram = sweep.directions @ sweep.directions.transpose(1, 2)
    torch.testing.assert_close(gram, torch.eye(3, dtype=torch.float64).expand(6, 3, 3))
    across = ks.boundary_path(digits_model, x_test[:6], steps=9, dtype=torch.float64)
    torch.testing.assert_close(sweep.frames[:, 1, 4], across.frames)  # amount 0 is the plain path
    # Moving along keeps the pair's logit gap of the across frame it starts from.
    logit_gap = lambda probs: (probs.log().gather(-1, sweep.projection.source.view(6, 1, 1, 1, 1).expand(6, 3, 9, 9, 1))
                               - probs.log().gather(-1, sweep.projection.target.view(6, 1, 1, 1, 1).expand(6, 3, 9, 9, 1)))
    gaps = logit_gap(sweep.probs)
    torch.testing.assert_close(gaps, gaps[:, :, 4:5].expand_as(gaps), atol=1e-8, rtol=0)


def test_large_batches_are_chunked(digits_model, digits):
    x = digits[2][:10]
    whole = ks.boundary_path(digits_model, x, steps=16)
    chunked = ks.boundary_path(digits_model, x, steps=16, chunk_size=7)
    torch.testing.assert_close(whole.frames, chunked.frames)


# --- 2-D helpers ---------------------------------------------------------------------------

def test_moons_boundary_curve_matches_the_grid_contour(moons_model, moons):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bounds = ks.padded_bounds(torch.cat([moons[0], moons[2]]))
    curves = ks.boundary_curves(moons_model, bounds)
    assert curves and all(curve.pair == (0, 1) for curve in curves)
    regions = ks.decision_regions(moons_model, bounds, resolution=500)
    assert regions.probs.shape == (500, 500, 2)
    figure = plt.figure()
    contour = plt.contour(regions.xs.numpy(), regions.ys.numpy(),
                          (regions.probs[..., 0] - regions.probs[..., 1]).numpy(), levels=[0])
    grid_curve = np.concatenate(contour.allsegs[0])
    plt.close(figure)
    inverted = np.concatenate([curve.points.numpy() for curve in curves])
    hausdorff = max(directed_hausdorff(grid_curve, inverted)[0], directed_hausdorff(inverted, grid_curve)[0])
    assert hausdorff <= 0.02


def test_curves_keep_only_real_decision_boundaries():
    model = ks.InvertibleClassifier.build((2,), 3, blocks=2, hidden=4).eval()
    with torch.no_grad():
        model.head.weight.copy_(torch.tensor([[-1.0, 0.0], [0.0, 0.0], [1.0, 0.0]]))
        model.head.bias.copy_(torch.tensor([0.0, 1.0, 0.0]))
    curves = ks.boundary_curves(model, (-3, 3, -3, 3))
    assert sorted({curve.pair for curve in curves}) == [(0, 1), (1, 2)]  # 0 and 2 never meet
    for curve in curves:
        with torch.no_grad():
            top_two = model(curve.points).topk(2, dim=1).indices.sort(1).values
        assert (top_two == torch.tensor(curve.pair)).all()


# --- bad input -----------------------------------------------------------------------------

class NotInvertible(torch.nn.Module):
    input_shape = (2,)

    def forward(self, x):
        return x


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"x": torch.zeros(3, 5)}, ValueError, r"x must have shape \(N, 1, 8, 8\)"),
        ({"x": torch.zeros(0, 1, 8, 8)}, ValueError, "x is empty"),
        ({"x": torch.full((2, 1, 8, 8), float("nan"))}, ValueError, "x contains NaN or infinite"),
        ({"x": torch.full((2, 1, 8, 8), float("inf"))}, ValueError, "x contains NaN or infinite"),
        ({"x": torch.zeros(2, 1, 8, 8, dtype=torch.complex64)}, TypeError, "x must hold real numbers"),
        ({"x": "digits"}, TypeError, "x must be a tensor"),
        ({"target": 10}, ValueError, r"target must lie in \[0, 9\]"),
        ({"target": -1}, ValueError, r"target must lie in \[0, 9\]"),
        ({"target": [1, 2, 3]}, ValueError, "target must be one class index or 2 of them"),
        ({"target": 2.5}, TypeError, "target must hold integer class indices"),
        ({"target": True}, TypeError, "target must be a class index"),
        ({"importance_at": "middle"}, ValueError, "importance_at must be one of"),
    ],
)
def test_bad_input_is_named(digits_model, digits, kwargs, error, message):
    arguments = {"x": digits[2][:2], **kwargs}
    with pytest.raises(error, match=message):
        ks.project_to_boundary(digits_model, **arguments)


def test_target_equal_to_the_prediction_is_refused(digits_model, digits):
    x = digits[2][:3]
    with torch.no_grad():
        predicted = digits_model(x).argmax(1)
    with pytest.raises(ValueError, match="target must differ from the predicted class; rows \\[0, 1, 2\\]"):
        ks.project_to_boundary(digits_model, x, predicted)


def test_models_without_the_invertible_parts_are_refused(moons):
    with pytest.raises(TypeError, match="model must be an invertible classifier.*lacks features, inverse, head"):
        ks.project_to_boundary(NotInvertible(), moons[2])
    with pytest.raises(TypeError, match="model must be an invertible classifier"):
        ks.boundary_path(torch.nn.Linear(2, 2), moons[2])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m, x: ks.boundary_path(m, x, steps=1), "steps must be an integer >= 2"),
        (lambda m, x: ks.boundary_path(m, x, t_max=float("nan")), "t_max must be a positive finite number"),
        (lambda m, x: ks.boundary_sweep(m, x, n_directions=2), r"n_directions must be an integer in \[1, 1\]"),
        (lambda m, x: ks.boundary_sweep(m, x, amounts=[float("inf")]), "amounts must be"),
        (lambda m, x: ks.boundary_path(m, x, dtype=torch.int32), "dtype must be a floating-point dtype"),
        (lambda m, x: ks.decision_regions(m, (1, 0, 0, 1)), "bounds must be finite with xmin < xmax"),
        (lambda m, x: ks.boundary_curves(m, "everywhere"), "bounds must be four numbers"),
        (lambda m, x: ks.decision_regions(m, (0, 1, 0, 1), resolution=1), "resolution must be an integer >= 2"),
    ],
)
def test_bad_path_and_planar_arguments_are_named(moons_model, moons, call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call(moons_model, moons[2][:4])


def test_planar_helpers_need_two_features(digits_model):
    with pytest.raises(ValueError, match=r"model must take 2-feature inputs"):
        ks.decision_regions(digits_model, (0, 1, 0, 1))
