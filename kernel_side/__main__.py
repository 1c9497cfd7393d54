"""Train crosslens' shipped models from scratch: ``python -m crosslens.kernel_side [names]``."""

import argparse
from pathlib import Path

from .pretrained import PRETRAINED, save_pretrained, train_pretrained, weights_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train crosslens' shipped models from scratch.")
    parser.add_argument("names", nargs="*", default=sorted(PRETRAINED), help="models to train (default: all)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the weight files (default: the package's)")
    args = parser.parse_args(argv)
    out = args.out or weights_dir()
    out.mkdir(parents=True, exist_ok=True)
    for name in args.names:
        model, _, metrics = train_pretrained(name)
        save_pretrained(model, metrics, out / f"{name}.pt")
        tests = ", ".join(f"{key} {value:.4f}" for key, value in metrics.items()
                          if key.startswith("test_") and isinstance(value, float))
        print(f"{name}: {tests}, {metrics['train_seconds']:.1f} s -> {out / (name + '.pt')}")


if __name__ == "__main__":
    main()
