"""Cost and quality of FLINT (Parekh et al. 2021), measured in one run.

    python benchmarks/bench_flint.py [--threads 1] [--epochs 40]

Trains FLINT on the digits from scratch by the shipped recipe and its BASE-f twin (the same
predictor without the interpreter) and prints their train times (the goal: FLINT under 3
minutes on this CPU) and the time ratio; the test accuracies of f and g, the fidelity of g to
f, CNS(tau) and the attributes' class coverage (the paper's table); a post-hoc interpreter of
the frozen shipped digits-cnn (its fit time and fidelity); and the cost of interpreting: the
local relevance of the whole test split, the global table, the maximum activating samples,
and activation maximisation of every attribute at once against one attribute at a time.
Nothing here is asserted: these are measurements. On the 2-core CI machine pass ``--threads 1``.
"""

from __future__ import annotations

import argparse
import time

import torch

from crosslens import kernel_side as ks

from _timing import median_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    x_train, y_train, x_test, y_test = ks.load_digits_split()
    cpu = torch.device("cpu")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")

    # 1. training by design, and its twin
    flint, _, flint_metrics = ks.train_pretrained("digits-flint", progress=False)
    base, _, base_metrics = ks.train_pretrained("digits-flint-base", progress=False)
    print(f"\ntrain from scratch: FLINT {flint_metrics['train_seconds']:.1f} s (goal < 180 s), BASE-f "
          f"{base_metrics['train_seconds']:.1f} s: {flint_metrics['train_seconds'] / base_metrics['train_seconds']:.1f}x")
    report = ks.flint_metrics(flint, x_test, y_test)
    with torch.no_grad():
        base_accuracy = (base(x_test).argmax(1) == y_test).float().mean().item()
    print(report.table())
    print(f"BASE-f accuracy {base_accuracy:.3f}; FLINT-f - BASE-f {report.accuracy_f - base_accuracy:+.3f} "
          "(the paper on MNIST: 98.9 and 98.9, FLINT-g 98.3, fidelity 98.7)")

    # 2. post-hoc: an interpreter for the frozen digits-cnn
    cnn = ks.load_pretrained("digits-cnn")
    post_hoc = ks.FLINT.post_hoc(cnn, layers=["net.4"], attributes=12)
    started = time.perf_counter()
    ks.fit_flint(post_hoc, x_train, y_train, progress=False)
    fitted = time.perf_counter() - started
    print(f"\npost-hoc interpreter of digits-cnn ('net.4'): fit {fitted:.1f} s, fidelity "
          f"{ks.flint_metrics(post_hoc, x_test, y_test).fidelity:.3f}")

    # 3. interpreting
    local, _ = median_seconds(lambda: ks.flint_interpretation(flint, x_test), args.repeats, cpu)
    table, _ = median_seconds(lambda: ks.global_relevance(flint, x_test), args.repeats, cpu)
    top, _ = median_seconds(lambda: ks.maximum_activating_samples(flint, x_test), args.repeats, cpu)
    start = x_test.mean(0, keepdim=True)
    batched, _ = median_seconds(lambda: ks.activation_maximisation(flint, start), 1, cpu)
    single, _ = median_seconds(lambda: ks.activation_maximisation(flint, start, attributes=[0]), 1, cpu)
    attributes = flint.num_attributes
    print(f"\nlocal relevance of {len(x_test)} digits {1e3 * local:.1f} ms; global table {1e3 * table:.1f} ms; "
          f"maximum activating samples {1e3 * top:.1f} ms")
    print(f"activation maximisation of all {attributes} attributes at once {batched:.2f} s, one attribute "
          f"{single:.2f} s: batching saves {attributes * single / batched:.1f}x over one at a time")


if __name__ == "__main__":
    main()
