"""The README tells the truth: its quickstart runs as a plain script and exits 0, and its test
command is the one .ci/run runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:] if end < 0 else README[start:end]


def test_the_quickstart_runs_as_a_script_and_exits_zero(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", section("Quickstart"), re.S)
    assert len(blocks) == 2
    script = tmp_path / "quickstart.py"
    script.write_text("\n".join(blocks))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_test_command_is_the_one_ci_runs():
    commands = re.findall(r"```bash\n(.*?)```", section("The two commands"), re.S)
    readme_command = next(line for block in commands for line in block.splitlines() if "pytest" in line)
    ci = (REPO / ".ci" / "run").read_text()
    between = ci.split("# >>> README test command (keep identical to README.md) >>>\n")[1].split("# <<<")[0]
    assert between.strip() == readme_command.strip()
    assert "bash .ci/run lab" in commands[0] and re.search(r"^bash \.ci/run\s", commands[0], re.M)
