"""Background searches end cleanly: a script that builds an explorer and ends exits 0, and a
kernel shut down mid-search exits 0 (a thread still inside torch at interpreter exit aborts
the process: "terminate called without an active exception", exit code 134)."""

from __future__ import annotations

import subprocess
import sys
import time

BUILD_AND_LEAVE = """
from crosslens import CounterfactualExplorer, kernel_side as ks
classifier, flow = ks.load_pretrained("digits-mlp"), ks.load_pretrained("digits-flow")
x = ks.load_digits_split()[2]
explorer = CounterfactualExplorer(classifier, flow, x[:4], target=9{options})
"""


def test_a_script_that_leaves_searches_running_exits_zero():
    script = BUILD_AND_LEAVE.format(options="")  # the pixel searches run ~1000 steps: still busy at the end
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "terminate called" not in done.stderr


def test_a_kernel_shut_down_mid_search_exits_zero():
    from jupyter_client.manager import KernelManager

    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        client.execute(BUILD_AND_LEAVE.format(options=", threshold=0.999999, max_steps=100_000") + "print(explorer.busy)")
        reply = client.get_shell_msg(timeout=120)
        assert reply["content"]["status"] == "ok", reply["content"]
        time.sleep(0.5)  # the search is inside torch now
        process = manager.provisioner.process
        manager.shutdown_kernel(now=False)  # a shutdown_request, as JupyterLab, papermill and nbclient send
        assert process.wait(timeout=30) == 0
    finally:
        client.stop_channels()
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)
