"""Counterfactual engine: speed of batching and quality of latent vs pixel vs boundary-projection results.

    python benchmarks/bench_counterfactuals.py [--device cuda] [--threads 1] [--repeats 3]

On 100 correctly classified test digits, each with a random other target (seed 0), with
digits-mlp as classifier and digits-flow as generator, prints: the batched latent search at
threshold 0.9 over running the same 100 one by one (goal >= 10x); the batched search against
its floor, what its row-steps would cost if every step ran the full batch (goal <= 2x: the
shared loop costs what the search must).

Then one table per setting: threshold 0.9 with at most 1000 steps (the tutorials'), and the
paper's threshold 0.99 with at most 2000 steps (Dombrowski et al. 2024). Columns: the latent
search; the pixel search against digits-mlp (trained on inputs with uniform noise of width
0.5, a regulariser that smooths its input gradients); the pixel search against "plain CE",
the same MLP trained here with plain cross-entropy and no input noise (a few seconds); and
the foundation's boundary projection with digits-invertible, pushed to the mirror point
t = 2 of its feature-space path (as far past the boundary as the input was before it, the
closest closed-form analogue of a confident counterfactual) and clipped to [0, 1], its
validity judged by its own model since it explains that model and not digits-mlp. Rows: time
per counterfactual; success counts; the share each independent oracle sees as the target and
as the original class (the oracles disagree widely, so all are shown: scikit-learn's RBF
SVC, 3-nearest neighbours and logistic regression fitted on the training split, and the
shipped CNN digits-cnn); median L1 change; median bits/dim under digits-flow (the standard
dequantised figure); distance to the nearest training digit of the target class. Last,
lifted moons in R^10: the median distance of the counterfactuals to the data plane, latent
over pixel. Nothing here is asserted: these are measurements.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch

from crosslens import kernel_side as ks
from crosslens.kernel_side import boundary_crossing, evaluate, fit_oracles, latent_counterfactual, pixel_counterfactual
from crosslens.kernel_side.methods._face import nearest_face_point

from _timing import median_seconds

THRESHOLD = 0.9  # of the speed measurements and the lifted moons
SETTINGS = ((THRESHOLD, 1000), (0.99, 2000))  # (threshold, max_steps): the tutorials', the paper's


def digits_with_targets(classifier, x_test, y_test, count: int = 100):
    with torch.no_grad():
        correct = (classifier(x_test).argmax(1) == y_test).nonzero().flatten()[:count]
    shift = torch.randint(1, 10, (len(correct),), generator=torch.Generator().manual_seed(0))
    return x_test[correct], (y_test[correct] + shift.to(y_test.device)) % 10


@dataclass(frozen=True)
class MirrorPoints:
    """Boundary projections pushed to their mirror points, a result that :func:`ks.evaluate`
    scores: ``x``, ``x_cf`` (the mirror point), ``source``, ``target``, ``success``."""

    x: torch.Tensor
    x_cf: torch.Tensor
    source: torch.Tensor
    target: torch.Tensor
    success: torch.Tensor
    method: str = "projection"


def mirror_projection(model, x, target, threshold: float) -> MirrorPoints:
    """The mirror points ``T^-1(2 z_p - z)`` clipped to [0, 1], judged by ``model`` at ``threshold``,
    for the rows that ``model`` does not already predict as ``target`` and where ``target`` is reachable."""
    with torch.no_grad():
        z = model.features(x)
        source = model.head(z).argmax(1)
        _, reachable = nearest_face_point(model.head.weight, model.head.bias, z, source, target)
        rows = (reachable & (source != target)).nonzero().flatten()
        projection = ks.project_to_boundary(model, x[rows], target[rows])
        mirror = model.inverse(2 * projection.z_proj - projection.z).clamp(0, 1)
        confidence = model(mirror).softmax(1).gather(1, projection.target[:, None]).squeeze(1)
    return MirrorPoints(x=x[rows], x_cf=mirror, source=projection.source, target=projection.target,
                        success=confidence > threshold)


def plain_classifier(x_train, y_train, device) -> torch.nn.Module:
    """digits-mlp's architecture trained with plain cross-entropy, no input noise."""
    model = ks.MLPClassifier.build((1, 8, 8), 10)
    ks.fit(model, x_train.cpu(), y_train.cpu(), objective="cross_entropy", seed=0, progress=False)
    return model.eval().to(device)


def compare(columns: dict, oracles: dict, flow, reference_set, threshold: float, max_steps: int) -> None:
    """One table: ``columns`` maps a label to ``(seconds, result)``."""
    rows = [evaluate(result, flow=flow, oracles=oracles, reference_set=reference_set).summary()
            for _, result in columns.values()]
    print()
    print(f"{f'threshold {threshold}, at most {max_steps} steps':40s}" + "".join(f"{label:>12s}" for label in columns))

    def line(label, cells):
        print(f"{label:40s}" + "".join(f"{cell:12.3f}" if isinstance(cell, float) else f"{cell:>12s}" for cell in cells))

    line("time per counterfactual (ms)", [seconds / len(result.x) * 1e3 for seconds, result in columns.values()])
    line(f"success (target prob > {threshold})",
         [f"{int(result.success.sum())}/{len(result.x)}" for _, result in columns.values()])
    line("median steps", [row["median_steps"] if row["median_steps"] is not None else "-" for row in rows])
    for key, seen in (("oracle_target", "the target"), ("oracle_source", "the original class")):
        for name in oracles:
            line(f"{name} sees {seen}", [row[key][name] for row in rows])
    for label, key in (("median L1 change", "median_l1"), ("median bits/dim (digits-flow)", "median_bits_per_dim"),
                       ("median distance to a target digit", "median_nearest_target_distance")):
        line(label, [row[key] for row in rows])


def model_calls_seconds(classifier, flow, x, target, steps, repeats, device) -> float:
    """What the search's model calls alone cost: at each step, decode, classify and
    differentiate the rows that the search ran at that step (``steps`` per row), nothing else."""
    codes = flow.encode(x).detach()
    active = [int((steps >= step).sum()) for step in range(int(steps.max()) + 1)]

    def calls() -> None:
        for rows in active:
            point = codes[:rows].clone().requires_grad_(True)
            loss = torch.nn.functional.cross_entropy(classifier(flow.decode(point).clamp(0, 1)), target[:rows],
                                                     reduction="sum")
            torch.autograd.grad(loss, point)

    return median_seconds(calls, repeats, device)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    classifier = ks.load_pretrained("digits-mlp").to(device)
    flow = ks.load_pretrained("digits-flow").to(device)
    invertible = ks.load_pretrained("digits-invertible").to(device)
    x_train, y_train, x_test, y_test = (tensor.to(device) for tensor in ks.load_digits_split())
    x, target = digits_with_targets(classifier, x_test, y_test)
    count = len(x)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, repeats {args.repeats} "
          f"(median), {count} digits, threshold {THRESHOLD}")

    batched, latent = median_seconds(
        lambda: latent_counterfactual(classifier, flow, x, target, threshold=THRESHOLD), args.repeats, device)
    start = time.perf_counter()
    for row in range(count):
        latent_counterfactual(classifier, flow, x[row:row + 1], target[row:row + 1], threshold=THRESHOLD)
    alone = time.perf_counter() - start
    print(f"latent, {count} in one batch              {batched * 1e3:9.1f} ms")
    print(f"latent, one by one                      {alone * 1e3:9.1f} ms")
    print(f"batched speed-up                        {alone / batched:9.1f} x   (goal >= 10)")
    full_steps = 10  # every row runs them all: its least likely class, at a threshold out of reach
    with torch.no_grad():
        least_likely = classifier(x).argmin(1)
    full_time, full = median_seconds(lambda: latent_counterfactual(
        classifier, flow, x, least_likely, threshold=1 - 1e-6, max_steps=full_steps), args.repeats, device)
    step_time = full_time / full_steps
    row_steps = int(latent.steps.sum())
    floor = row_steps / count * step_time
    print(f"latent row-steps {row_steps} (median {latent.steps.median().item():.0f}, max {latent.steps.max().item()}) "
          f"= {row_steps / count:.1f} full-batch steps of {step_time * 1e3:.1f} ms"
          + ("" if bool((full.steps == full_steps).all()) else " (some rows stopped early: floor underestimated)"))
    print(f"floor, ms per counterfactual            {floor / count * 1e3:9.2f} ms")
    print(f"batched search / floor                  {batched / floor:9.2f} x   (goal <= 2)")
    model_only = model_calls_seconds(classifier, flow, x, target, latent.steps, args.repeats, device)
    print(f"its model calls alone, same schedule    {model_only * 1e3:9.1f} ms = {model_only / floor:.2f} x the floor "
          f"(search / model calls {batched / model_only:.2f} x)")
    crossing_time, _ = median_seconds(lambda: boundary_crossing(classifier, latent, flow), args.repeats, device)
    print(f"boundary_crossing of the latent results {crossing_time * 1e3:9.1f} ms")

    started = time.perf_counter()
    plain = plain_classifier(x_train, y_train, device)
    with torch.no_grad():
        plain_test = (plain(x_test).argmax(1) == y_test).float().mean().item()
        plain_wrong = int((plain(x).argmax(1) != classifier(x).argmax(1)).sum())
    print(f"plain CE: digits-mlp's MLP trained without input noise in {time.perf_counter() - started:.1f} s, "
          f"test accuracy {plain_test:.3f}, disagrees with digits-mlp on {plain_wrong} of the {count} digits")
    oracles = {**fit_oracles(x_train.cpu(), y_train.cpu()), "digits-cnn": ks.load_pretrained("digits-cnn").to(device)}
    for threshold, max_steps in SETTINGS:
        searches = {
            "latent": lambda: latent_counterfactual(classifier, flow, x, target, threshold=threshold,
                                                    max_steps=max_steps),
            "pixel": lambda: pixel_counterfactual(classifier, x, target, threshold=threshold, max_steps=max_steps),
            "pixel, CE": lambda: pixel_counterfactual(plain, x, target, threshold=threshold, max_steps=max_steps),
            "projection": lambda: mirror_projection(invertible, x, target, threshold),
        }
        columns = {label: median_seconds(search, args.repeats, device) for label, search in searches.items()}
        compare(columns, oracles, flow, (x_train, y_train), threshold, max_steps)

    moons = ks.load_lifted_moons_split(dim=10, noise=0.01, seed=0)
    moons_classifier = ks.load_pretrained("moons10-mlp").to(device)
    moons_flow = ks.load_pretrained("moons10-flow").to(device)
    points, labels = moons.x_test.to(device), moons.y_test.to(device)
    with torch.no_grad():
        correct = moons_classifier(points).argmax(1) == labels
    points, other = points[correct], 1 - labels[correct]
    moons_latent = latent_counterfactual(moons_classifier, moons_flow, points, other, threshold=THRESHOLD, clip=None)
    moons_pixel = pixel_counterfactual(moons_classifier, points, other, threshold=THRESHOLD, clip=None)
    distances = [moons.manifold_distance(result.x_cf.cpu()).median().item() for result in (moons_latent, moons_pixel)]
    print()
    print(f"lifted moons R^10, {len(points)} test points: success latent {moons_latent.success_rate:.2f}, "
          f"pixel {moons_pixel.success_rate:.2f}")
    print(f"median distance to the data plane     latent {distances[0]:.4f}   pixel {distances[1]:.4f}   "
          f"pixel / latent {distances[1] / distances[0]:.1f} x   (goal >= 5)")


if __name__ == "__main__":
    main()
