"""Counterfactual engine: speed of batching and quality of latent vs pixel vs boundary-projection results.

    python benchmarks/bench_counterfactuals.py [--device cuda] [--threads 1] [--repeats 3]

On 100 correctly classified test digits, each with a random other target (seed 0), at
threshold 0.9 with digits-mlp as classifier and digits-flow as generator, prints: the batched
latent search over running the same 100 one by one (goal >= 10x); the batched search against
its floor, what its row-steps would cost if every step ran the full batch (goal <= 2x: the
shared loop costs what the search must); time per counterfactual;
success counts; the share an independent oracle (RBF SVC on the training split) sees as the
target and as the original class; median L1 change; median flow bits/dim; distance to the
nearest training digit of the target class. The third column is the foundation's boundary
projection with digits-invertible, pushed to the mirror point t = 2 of its feature-space path
(as far past the boundary as the input was before it, the closest closed-form analogue of a
confident counterfactual) and clipped to [0, 1]; its validity is judged by its own model
(digits-invertible), since it explains that model and not digits-mlp. Last, lifted moons in
R^10: the median distance of the counterfactuals to the data plane, latent over pixel.
Nothing here is asserted: these are measurements.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch

from crosslens import kernel_side as ks
from crosslens.kernel_side import boundary_crossing, evaluate, fit_oracle, latent_counterfactual, pixel_counterfactual
from crosslens.kernel_side.methods._face import nearest_face_point

from _timing import median_seconds

THRESHOLD = 0.9


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


def mirror_projection(model, x, target) -> MirrorPoints:
    """The mirror points ``T^-1(2 z_p - z)`` clipped to [0, 1], judged by ``model``, for the
    rows that ``model`` does not already predict as ``target`` and where ``target`` is reachable."""
    with torch.no_grad():
        z = model.features(x)
        source = model.head(z).argmax(1)
        _, reachable = nearest_face_point(model.head.weight, model.head.bias, z, source, target)
        rows = (reachable & (source != target)).nonzero().flatten()
        projection = ks.project_to_boundary(model, x[rows], target[rows])
        mirror = model.inverse(2 * projection.z_proj - projection.z).clamp(0, 1)
        confidence = model(mirror).softmax(1).gather(1, projection.target[:, None]).squeeze(1)
    return MirrorPoints(x=x[rows], x_cf=mirror, source=projection.source, target=projection.target,
                        success=confidence > THRESHOLD)


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
    pixel_time, pixel = median_seconds(
        lambda: pixel_counterfactual(classifier, x, target, threshold=THRESHOLD), args.repeats, device)
    projection_time, mirror = median_seconds(lambda: mirror_projection(invertible, x, target), args.repeats, device)
    crossing_time, _ = median_seconds(lambda: boundary_crossing(classifier, latent, flow), args.repeats, device)
    print(f"boundary_crossing of the latent results {crossing_time * 1e3:9.1f} ms")

    oracle = fit_oracle(x_train.cpu(), y_train.cpu())
    results = (latent, pixel, mirror)
    rows = [evaluate(result, flow=flow, oracle=oracle, reference_set=(x_train, y_train)).summary() for result in results]
    print()
    print(f"{'':36s}" + "".join(f"{row['method']:>12s}" for row in rows))
    times = (batched, pixel_time, projection_time)
    print(f"{'time per counterfactual (ms)':36s}" + "".join(f"{t / len(r.x) * 1e3:12.2f}" for t, r in zip(times, results)))
    print(f"{'success (target prob > 0.9)':36s}" + "".join(f"{f'{int(r.success.sum())}/{len(r.x)}':>12s}" for r in results))
    for label, key in (("median steps", "median_steps"), ("oracle sees the target", "oracle_target"),
                       ("oracle sees the original class", "oracle_source"), ("median L1 change", "median_l1"),
                       ("median bits/dim (digits-flow)", "median_bits_per_dim"),
                       ("median distance to a target digit", "median_nearest_target_distance")):
        print(f"{label:36s}" + "".join(f"{row[key]:12.3f}" if row[key] is not None else f"{'-':>12s}" for row in rows))

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
