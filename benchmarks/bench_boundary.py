"""Speed of the boundary engine, as ratios against baselines measured in the same run.

    python benchmarks/bench_boundary.py [--device cuda] [--threads 1] [--repeats 5]

Prints: one projection; 256 inputs x 64 frames; the path time over a plain batched
``inverse`` of the same 16,384 feature vectors (goal <= 1.5); the payload bytes of one
explorer; the speed-up over an iterative counterfactual baseline (targeted PGD run until the
prediction flips) on the same digits. Nothing here is asserted: these are measurements.
"""

from __future__ import annotations

import argparse

import torch

import crosslens
from crosslens import kernel_side as ks

from _timing import median_seconds


def pgd_until_flip(model, x, target, step: float = 0.02, max_steps: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """Targeted L2 PGD in pixel space, batched, each input stopping when it is classified ``target``."""
    x_adv = x.clone()
    steps = torch.zeros(len(x), dtype=torch.long, device=x.device)
    active = torch.ones(len(x), dtype=torch.bool, device=x.device)
    for _ in range(max_steps):
        x_step = x_adv[active].detach().requires_grad_(True)
        logits = model(x_step)
        loss = torch.nn.functional.cross_entropy(logits, target[active], reduction="sum")
        (gradient,) = torch.autograd.grad(loss, x_step)
        norms = gradient.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (x.ndim - 1))
        x_adv[active] = (x_step - step * gradient / norms).clamp(0, 1).detach()
        steps[active] += 1
        with torch.no_grad():
            flipped = model(x_adv).argmax(1) == target
        active = ~flipped
        if not active.any():
            break
    return x_adv, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = ks.load_pretrained("digits-invertible").to(device)
    x_train, _, x_test, _ = ks.load_digits_split()
    x = x_test[:256].to(device)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, repeats {args.repeats} (median)")

    one, _ = median_seconds(lambda: ks.project_to_boundary(model, x[:1]), args.repeats, device)
    print(f"one projection                         {one * 1e3:8.2f} ms")
    batch, _ = median_seconds(lambda: ks.project_to_boundary(model, x), args.repeats, device)
    print(f"256 projections (one batch)            {batch * 1e3:8.2f} ms   ({batch / 256 * 1e3:.3f} ms each)")

    path_time, _ = median_seconds(lambda: ks.boundary_path(model, x, steps=64), args.repeats, device)
    features = torch.randn(256 * 64, 64, device=device)

    def plain_inverse():
        with torch.no_grad():
            model.inverse(features)

    inverse_time, _ = median_seconds(plain_inverse, args.repeats, device)
    print(f"256 inputs x 64 frames (boundary_path) {path_time * 1e3:8.2f} ms")
    print(f"plain inverse of 16,384 vectors        {inverse_time * 1e3:8.2f} ms")
    print(f"path / plain inverse                   {path_time / inverse_time:8.2f} x   (goal <= 1.5)")
    path64, _ = median_seconds(lambda: ks.boundary_path(model, x, steps=64, dtype=torch.float64), args.repeats, device)
    print(f"same path in float64                   {path64 * 1e3:8.2f} ms")

    explorer = crosslens.BoundaryExplorer(model.cpu(), x_test[:8], reference=x_train)
    print(f"payload of one explorer (8 digits)     {len(explorer.payload):8d} bytes")
    moons_model = ks.load_pretrained("moons-invertible")
    moons_train, _, moons_test, _ = ks.load_moons_split()
    moons_explorer = crosslens.BoundaryExplorer(moons_model, moons_test, reference=moons_train)
    print(f"payload of the moons explorer (400)    {len(moons_explorer.payload):8d} bytes")
    model.to(device)

    projection = ks.project_to_boundary(model, x)
    _, steps = pgd_until_flip(model, x, projection.target)
    pgd_time, _ = median_seconds(lambda: pgd_until_flip(model, x, projection.target), args.repeats, device)
    print(f"targeted PGD until flip (256, batched) {pgd_time * 1e3:8.2f} ms   median {steps.float().median():.0f} steps")
    print(f"boundary path speed-up over PGD        {pgd_time / path_time:8.1f} x   (path gives 64 frames, PGD one point)")
    print(f"projection speed-up over PGD           {pgd_time / batch:8.1f} x")


if __name__ == "__main__":
    main()
