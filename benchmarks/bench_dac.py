"""Speed of the DAC engine (Eckstein et al. 2021), as ratios against baselines measured in the same run.

    python benchmarks/bench_dac.py [--device cuda] [--threads 1] [--repeats 5] [--pairs 200]

Prints: the 201 thresholds of one pair scored in one batched forward (over the pair's
distinct masks: a threshold whose mask equals the previous one reuses its score; and, for
comparison, over all 201 masks) against a loop of one forward per threshold (the authors'
scoring code loops; goal >= 20x), for each shipped
digits classifier; one pair attributed and scored by every method; the cost of a full method
ranking (pairs made by the flow, then attributed, scored and bootstrapped) and its table.
Nothing here is asserted: these are measurements. On the 2-core CI machine pass
``--threads 1``: two threads make these small forwards many times slower there.
"""

from __future__ import annotations

import argparse
import time

import torch

from crosslens import kernel_side as ks
from crosslens.kernel_side.methods.dac import _masks, _scores, dac_thresholds

from _timing import median_seconds


def scores_one_by_one(classifier, x, x_cf, source, attribution, thresholds):
    """The baseline: for each threshold, its mask, its hybrid and one forward pass."""
    with torch.no_grad():
        reference = classifier(x_cf[None]).softmax(1)[0, source]
        scores = []
        for threshold in thresholds.tolist():
            mask = (attribution >= threshold).any(0, keepdim=True).to(x.dtype)
            hybrid = mask * x + (1 - mask) * x_cf
            scores.append(classifier(hybrid[None]).softmax(1)[0, source] - reference)
    return torch.stack(scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--pairs", type=int, default=200, help="pairs wanted in the ranking (after the filter)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    x_test = ks.load_digits_split()[2].to(device)
    flow = ks.load_pretrained("digits-flow").to(device)
    cnn = ks.load_pretrained("digits-cnn").to(device)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, repeats {args.repeats} (median)")

    # 1. all 201 thresholds of one pair in one forward vs one forward per threshold
    thresholds = dac_thresholds()
    print("\n201 thresholds of one pair (D-IG map): one batched forward over its distinct masks, the same forward over")
    print("all 201 masks, and a loop of 201 forwards (the authors' scoring); ratio = loop / batched (goal >= 20)")
    for name in ("digits-cnn", "digits-mlp", "digits-invertible"):
        model = ks.load_pretrained(name).to(device)
        pairs = ks.counterfactual_pairs(model, x_test[:4], generator=flow)
        x, x_cf, source = pairs.x[:1], pairs.x_cf[:1], pairs.source[:1]
        attribution = ks.dac_attributions(model, x, x_cf, pairs.target[:1], methods=["d_ig"])["d_ig"]
        masks, size = _masks(attribution, thresholds, 0)
        fast, together = median_seconds(lambda: _scores(model, x, x_cf, source, _masks(attribution, thresholds, 0)[0],
                                                        0.0, 8192)[0], args.repeats, device)

        @torch.no_grad()
        def every_mask():  # the same forward over all 201 hybrids, none reused
            m = masks[0, :, None].to(x.dtype)
            return model(torch.cat([m * x + (1 - m) * x_cf, x_cf])).softmax(1)

        full, _ = median_seconds(every_mask, args.repeats, device)
        slow, apart = median_seconds(lambda: scores_one_by_one(model, x[0], x_cf[0], int(source), attribution[0],
                                                               thresholds), args.repeats, device)
        distinct = int((size[0, 1:] != size[0, :-1]).sum()) + 1
        print(f"  {name:<18} {distinct:3d} distinct masks {fast * 1e3:7.2f} ms | all 201 {full * 1e3:6.2f} ms | "
              f"loop {slow * 1e3:7.1f} ms | ratio {slow / fast:6.1f}x (all 201: {slow / full:5.1f}x)"
              f"   max |difference| {(together - apart).abs().max().item():.1e}")

    # 2. one pair, every method
    pairs = ks.counterfactual_pairs(cnn, x_test[:8], generator=flow)
    one, result = median_seconds(lambda: ks.discriminative_attribution(cnn, pairs.subset([0])), args.repeats, device)
    print(f"\none pair, {len(result.methods)} methods x 201 thresholds (digits-cnn)  {one * 1e3:8.1f} ms")
    eight, _ = median_seconds(lambda: ks.discriminative_attribution(cnn, pairs), args.repeats, device)
    print(f"{len(pairs)} pairs, same                                {eight * 1e3:8.1f} ms ({eight / len(pairs) * 1e3:.1f} ms a pair)")

    # 3. a full ranking: pairs made by the flow, then attributed, scored and bootstrapped
    candidates = min(len(x_test), int(args.pairs * 1.1) + 8)
    start = time.perf_counter()
    made = ks.counterfactual_pairs(cnn, x_test[:candidates], generator=flow)
    making = time.perf_counter() - start
    made = made.subset(torch.arange(min(args.pairs, len(made))))
    start = time.perf_counter()
    ranking = ks.dac_ranking(cnn, made)
    ranking_seconds = time.perf_counter() - start
    print(f"\nfull ranking, digits-cnn: {made.kept} pairs of {candidates} digits made in {making:.2f} s "
          f"({making / candidates * 1e3:.1f} ms a digit); {len(ranking.methods)} methods ranked in "
          f"{ranking_seconds:.2f} s ({ranking_seconds / ranking.pairs * 1e3:.1f} ms a pair, "
          f"{ranking.n_bootstrap} bootstrap resamples included)\n")
    print(ranking.table())


if __name__ == "__main__":
    main()
