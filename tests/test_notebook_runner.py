"""Headless notebook execution (ssh_ood.base.notebook_runner): parameters injected, repository root as working
directory, a quiet kernel, and no kernel left running, whether the notebook succeeds or fails."""

from __future__ import annotations

import os

import nbformat
import psutil
import pytest
from nbclient.exceptions import CellExecutionError

from ssh_ood.base.notebook_runner import run_notebook, stream_line, widget_line
from ssh_ood.base.paths import REPO_ROOT


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


def test_the_executed_copy_keeps_the_figures_it_showed(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")  # the caller's backend does not reach the kernel
    code = "import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0])\nplt.show()"
    executed = run_notebook(_notebook(tmp_path / "plot.ipynb", code), tmp_path / "executed.ipynb")
    images = [output for output in executed.cells[-1].outputs if "image/png" in output.get("data", {})]
    assert len(images) == 1
    assert nbformat.read(tmp_path / "executed.ipynb", as_version=4).cells[-1].outputs[0]["data"]["image/png"]
    assert os.environ["MPLBACKEND"] == "Agg"  # restored


def test_a_failing_notebook_raises_keeps_its_traceback_and_stops_its_kernel(tmp_path):
    source = _notebook(tmp_path / "failing.ipynb", "raise ValueError('bad parameter')")
    with pytest.raises(CellExecutionError, match="bad parameter"):
        run_notebook(source, tmp_path / "executed.ipynb")
    assert "bad parameter" in (tmp_path / "executed.ipynb").read_text()
    assert not _kernels(), "the kernel outlived the notebook"


def test_progress_names_the_running_cell_and_relays_the_cells_own_progress_line(tmp_path):
    """A cell's tqdm bar (an ipywidgets box in the kernel) and its plain stderr lines reach ``on_progress``."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("SEED = 0", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_markdown_cell("prose is no code cell"),
        nbformat.v4.new_code_cell("import time\nfrom tqdm.auto import tqdm\n"
                                  "for _ in tqdm(range(8), desc='inner loop', mininterval=0):\n    time.sleep(0.15)"),
        nbformat.v4.new_code_cell("import sys, time\nprint('epoch 3/7\\rwarming', file=sys.stderr)\ntime.sleep(1)"),
    ]
    nbformat.write(notebook, tmp_path / "progress.ipynb")
    seen = []
    run_notebook(tmp_path / "progress.ipynb", tmp_path / "executed.ipynb", on_progress=seen.append)
    assert {p.n_cells for p in seen} == {3}
    assert [p.cell for p in seen] == sorted(p.cell for p in seen) and seen[-1].cell == 3
    widget_lines = [p.line for p in seen if p.cell == 2 and p.line]
    assert widget_lines and all(line.startswith("inner loop:") for line in widget_lines)
    assert any("/8 [" in line for line in widget_lines)  # tqdm's count and times, not only the label
    assert {p.line for p in seen if p.cell == 3} <= {"", "warming"} and seen[-1].line == "warming"


def test_stream_line_keeps_the_last_redraw_and_widget_line_joins_a_boxes_labels():
    assert stream_line("a\n 10%|#  | 1/10\r 20%|## | 2/10\r\n") == "20%|## | 2/10"
    assert stream_line("\n\n") == ""
    state = {"box": {"children": ["IPY_MODEL_left", "IPY_MODEL_bar", "IPY_MODEL_right"]},
             "left": {"value": "train:\u2007\u200740%"}, "bar": {"value": 4, "max": 10},
             "right": {"value": "\u20074/10\u2007[00:02&lt;00:03]"}, "alone": {"value": "x"}}
    assert widget_line(state, "bar") == "train:  40% 4/10 [00:02<00:03]"
    assert widget_line(state, "alone") == ""
