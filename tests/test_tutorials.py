"""What nbval does not check in the tutorials: the figures they promise are shown."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def test_tutorial_02_shows_the_explorer_as_a_figure(tmp_path):
    notebook = nbformat.read(NOTEBOOKS / "02_boundary_digits.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    (cell,) = [cell for cell in notebook.cells if "explorer.to_figure()" in cell.source]
    assert any("image/png" in output.get("data", {}) for output in cell.outputs), cell.outputs
