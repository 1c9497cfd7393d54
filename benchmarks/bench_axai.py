"""Speed and faithfulness of AXAI (Rahnama and Tseng 2021) against Captum's explainers, measured in one run.

    python benchmarks/bench_axai.py [--threads 1] [--images 48] [--samples 1000]

For the digits (digits-cnn, 2 x 2 blocks) and the shapes scenes (shapes-cnn, quickshift
segments), on the same images and the same segments: the time per explanation of AXAI
(batched over the images, and one image at a time) and of saliency, Integrated Gradients,
LIME and KernelSHAP (``--samples`` perturbed samples each, all of an image in one forward),
the ratio LIME / AXAI and KernelSHAP / AXAI (goal >= 10), and the deletion and insertion AOPC
of every method (deleting to 0 and to a blurred copy). Then LIME's AOPC and time as its sample
count grows (the count it needs to match AXAI), and, on the shapes, the share of the top-K
segments' pixels on the known class-determining object for AXAI and for a random ranking.
Nothing here is asserted: these are measurements. On the 2-core CI machine pass
``--threads 1``.
"""

from __future__ import annotations

import argparse
import time

import torch

from crosslens import kernel_side as ks
from crosslens.kernel_side.methods.faithfulness import segment_ranking


def data_sets(images: int):
    x_digits = ks.load_digits_split()[2][:images]
    shapes = ks.load_shapes_split()
    return {
        "digits (digits-cnn, 2 x 2 blocks)": (ks.load_pretrained("digits-cnn"), x_digits, None),
        "shapes (shapes-cnn, quickshift)": (ks.load_pretrained("shapes-cnn"), shapes.x_test[:images],
                                            shapes.key_masks_test[:images]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--samples", type=int, default=1000, help="LIME's and KernelSHAP's samples per image")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {args.images} images, "
          f"LIME / KernelSHAP {args.samples} samples")
    for name, (classifier, x, keys) in data_sets(args.images).items():
        print(f"\n== {name}")
        ks.adversarial_explanation(classifier, x[:2])  # warm-up
        faithfulness = ks.compare_faithfulness(classifier, x, n_samples=args.samples)
        started = time.perf_counter()
        for image in x:
            ks.adversarial_explanation(classifier, image[None])
        alone = (time.perf_counter() - started) / len(x)
        print(faithfulness.table())
        axai = faithfulness.seconds["axai"]
        print(f"AXAI one image at a time: {1e3 * alone:.1f} ms")
        for method in ("lime", "kernel_shap"):
            print(f"{method} / AXAI time: {faithfulness.seconds[method] / axai:6.1f}x batched, "
                  f"{faithfulness.seconds[method] / alone:6.1f}x one image at a time   (goal >= 10)")

        explained = ks.adversarial_explanation(classifier, x)
        target = faithfulness.mean("deletion", "axai", "blur")
        print(f"LIME by sample count (AXAI's deletion AOPC, blur: {target:.3f}):")
        for samples in (25, 50, 100, 200, 500, 1000):
            started = time.perf_counter()
            _, ranking = segment_ranking(classifier, explained.x, explained.segments, explained.source, "lime",
                                         n_samples=samples)
            seconds = (time.perf_counter() - started) / len(x)
            deletion, _ = ks.aopc(classifier, explained.x, explained.segments, ranking, explained.source, removal="blur")
            print(f"  {samples:5d} samples: deletion AOPC {deletion.mean():.3f}, {1e3 * seconds:7.1f} ms / image "
                  f"({seconds / axai:5.1f}x AXAI)")
        if keys is not None:
            axai_share, random_share = ks.key_share(explained, keys)
            print(f"share of the top-{explained.k} segments' pixels on the class-determining object: AXAI "
                  f"{axai_share:.3f}, random ranking {random_share:.3f}")


if __name__ == "__main__":
    main()
