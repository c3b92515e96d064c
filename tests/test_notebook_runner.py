"""Headless notebook execution (src.base.notebook_runner): parameters injected, repository root as working
directory, a quiet kernel, and no kernel left running, whether the notebook succeeds or fails."""

from __future__ import annotations

import nbformat
import psutil
import pytest
from nbclient.exceptions import CellExecutionError

from src.base.notebook_runner import run_notebook
from src.base.paths import REPO_ROOT


def _notebook(path, code: str):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("SEED = 0", metadata={"tags": ["parameters"]}),
                      nbformat.v4.new_code_cell(code)]
    nbformat.write(notebook, path)
    return path


def _kernels() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if "ipykernel" in " ".join(p.cmdline())]


def test_parameters_are_injected_and_the_kernel_runs_quietly_in_the_repository(tmp_path, capfd):
    source = _notebook(tmp_path / "tiny.ipynb", "import os\nprint(SEED, os.getcwd())")
    executed = run_notebook(source, tmp_path / "executed.ipynb", {"SEED": 7})
    assert executed.cells[2].outputs[0]["text"].strip() == f"7 {REPO_ROOT}"
    assert nbformat.read(source, as_version=4).cells[1].source.startswith("import os")  # the source is untouched
    assert (tmp_path / "executed.ipynb").is_file()
    assert not _kernels(), "the kernel outlived the notebook"
    assert "without encryption" not in capfd.readouterr().err  # ipykernel's warning about TCP transport


def test_a_failing_notebook_raises_keeps_its_traceback_and_stops_its_kernel(tmp_path):
    source = _notebook(tmp_path / "failing.ipynb", "raise ValueError('bad parameter')")
    with pytest.raises(CellExecutionError, match="bad parameter"):
        run_notebook(source, tmp_path / "executed.ipynb")
    assert "bad parameter" in (tmp_path / "executed.ipynb").read_text()
    assert not _kernels(), "the kernel outlived the notebook"
