"""Front-end latency: from a slider's input event to the redrawn picture, per explorer, in a real browser.

    python benchmarks/bench_view.py [--moves 100]

Starts a real JupyterLab and Chromium (the test helpers in tests/_jupyterlab.py), runs a
notebook with every explorer, puts the kernel to sleep in another request (the slider must
never wait for it), then moves each explorer's slider ``--moves`` times, one position at a
time at random intervals (like a hand), and measures in the page, for each move, the time
from the input event to the end of the redraw it causes, and the redraw's own cost. The view
redraws in the next animation frame, so the latency includes the wait for that frame (up to
16.7 ms at 60 Hz): the goal is p95 within one frame. Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _browser import run_in_kernel, write_notebook  # noqa: E402
from _jupyterlab import JupyterLab, launch_chromium, open_and_run_all, wait_cells_idle  # noqa: E402

READY = '.crosslens[data-crosslens-ready="true"]'
SLIDERS = {"boundary": (".xl-boundary", "t-slider"), "counterfactual": (".xl-counterfactual", "step-slider"),
           "attribution": (".xl-attribution", "threshold-slider"), "adversarial": (".xl-adversarial", "tail-slider"),
           "attribute": (".xl-attribute", "tau-slider")}
CELLS = [
    "import torch\n"
    "torch.set_num_threads(1)\n"
    "from crosslens import AdversarialExplorer, AttributeBrowser, AttributionExplorer, BoundaryExplorer\n"
    "from crosslens import CounterfactualExplorer, kernel_side as ks\n"
    "x_train, _, x_test, _ = ks.load_digits_split()",
    "BoundaryExplorer(ks.load_pretrained('digits-invertible'), x_test[:8], reference=x_train)",
    "explorer = CounterfactualExplorer(ks.load_pretrained('digits-mlp'), ks.load_pretrained('digits-flow'), x_test[:6],\n"
    "                                  threshold=0.99, max_steps=1000)\n"
    "explorer",
    "explorer.wait()",
    "cnn = ks.load_pretrained('digits-cnn')\n"
    "AttributionExplorer(cnn, ks.latent_counterfactual(cnn, ks.load_pretrained('digits-flow'), x_test[:6]))",
    "shapes = ks.load_shapes_split()\n"
    "AdversarialExplorer(ks.load_pretrained('shapes-cnn'), shapes.x_test[:6])",
    "AttributeBrowser(ks.load_pretrained('digits-flint'), x_test[:24], reference=x_test)",
]
PROBE = """
async ([rootSelector, role, moves]) => {
  const root = document.querySelector(rootSelector);
  const slider = root.querySelector(`input[data-role="${role}"]`);
  const last = Number(slider.max);
  const latency = [];
  const cost = [];
  for (let i = 0; i < moves; i++) {
    const value = Number(slider.value) >= last ? 0 : Number(slider.value) + 1;
    const start = performance.now();
    slider.value = String(value);
    slider.dispatchEvent(new Event("input", { bubbles: true }));
    await new Promise((resolve) => {
      const check = () => (root.crosslensDrawnAt > start ? resolve() : requestAnimationFrame(check));
      requestAnimationFrame(check);
    });
    latency.push(root.crosslensDrawnAt - start);
    cost.push(root.crosslensDrawMs);
    await new Promise((resolve) => setTimeout(resolve, 5 + 25 * Math.random()));
  }
  return { latency, cost };
}
"""


def percentile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=100)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder, JupyterLab() as lab, sync_playwright() as playwright:
        notebook = write_notebook(Path(folder) / "latency.ipynb", CELLS)
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        open_and_run_all(page, lab, lab.add_file(notebook), READY, timeout=180)
        page.wait_for_function("([sel, n]) => document.querySelectorAll(sel).length === n", arg=[READY, len(SLIDERS)],
                               timeout=120_000)
        wait_cells_idle(page, timeout=300)
        run_in_kernel(page, "import time; time.sleep(120)")  # the kernel is busy from here on
        page.wait_for_timeout(500)
        print(f"Chromium {browser.version}, JupyterLab, kernel busy in another request, {args.moves} moves per explorer")
        print(f"{'explorer':16s} {'input -> redrawn (ms)':>24s} {'redraw cost (ms)':>20s}")
        print(f"{'':16s} {'p50':>8s}{'p95':>8s}{'max':>8s} {'p50':>8s}{'p95':>8s}{'max':>4s}")
        for name, (root, role) in SLIDERS.items():
            result = page.evaluate(PROBE, [f"{root}{READY[len('.crosslens'):]}", role, args.moves])
            latency, cost = result["latency"], result["cost"]
            print(f"{name:16s} {percentile(latency, 0.5):8.1f}{percentile(latency, 0.95):8.1f}{max(latency):8.1f} "
                  f"{percentile(cost, 0.5):8.2f}{percentile(cost, 0.95):8.2f}{max(cost):6.1f}")
        print("goal: p95 input -> redrawn within one frame (16.7 ms at 60 Hz); the kernel never answered meanwhile: "
              f"{not page.evaluate('() => window.__crosslensKernelDone')}")
        browser.close()


if __name__ == "__main__":
    main()
