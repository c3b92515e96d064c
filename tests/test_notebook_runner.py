"""Headless notebook execution (src.notebook_runner): parameters injected, repository root as working
directory, and a quiet kernel."""

from __future__ import annotations

import nbformat

from src.notebook_runner import run_notebook
from src.paths import REPO_ROOT


def test_parameters_are_injected_and_the_kernel_runs_quietly_in_the_repository(tmp_path, capfd):
    notebook = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell("SEED = 0", metadata={"tags": ["parameters"]})
    notebook.cells = [parameters, nbformat.v4.new_code_cell("import os\nprint(SEED, os.getcwd())")]
    source = tmp_path / "tiny.ipynb"
    nbformat.write(notebook, source)
    executed = run_notebook(source, tmp_path / "executed.ipynb", {"SEED": 7})
    assert executed.cells[2].outputs[0]["text"].strip() == f"7 {REPO_ROOT}"
    assert nbformat.read(source, as_version=4).cells[1].source.startswith("import os")  # the source is untouched
    assert (tmp_path / "executed.ipynb").is_file()
    assert "without encryption" not in capfd.readouterr().err  # ipykernel's warning about TCP transport
