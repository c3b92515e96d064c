"""The committed notebooks: no outputs, and the metadata the installed kernel reports.

JupyterLab rewrites ``kernelspec`` and ``language_info`` with what the kernel reports when it opens a
notebook; any difference marks the notebook modified and autosave rewrites it. So the committed metadata
must be the kernel's (``make venv`` installs the kernel as ``python3``). The Python version in
``language_info`` is the one exception: it is the version the notebooks were committed with, and a user on
another Python only sees the notebook marked modified once, which must not fail their tests.
"""

from __future__ import annotations

import re

import nbformat
import pytest
from ipykernel.ipkernel import IPythonKernel
from jupyter_client.kernelspec import KernelSpecManager

from ssh_ood.base.paths import REPO_ROOT

NOTEBOOKS = sorted(REPO_ROOT.glob("[0-9][0-9]_*.ipynb"))


def test_every_notebook_is_checked():
    from ssh_ood.commands.reproduce import NOTEBOOKS as PIPELINE_NOTEBOOKS

    assert [p.name for p in NOTEBOOKS] == sorted(PIPELINE_NOTEBOOKS.values())  # 01-08, all in the pipeline


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_is_clean_and_matches_the_kernel(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: committed with outputs"
    spec = KernelSpecManager().get_kernel_spec("python3")
    assert notebook.metadata.kernelspec == {"display_name": spec.display_name, "language": spec.language,
                                            "name": "python3"}
    committed = dict(notebook.metadata.language_info)
    kernel = dict(IPythonKernel.language_info)
    assert re.fullmatch(r"3\.\d+\.\d+", committed.pop("version")), "language_info.version is not a Python version"
    kernel.pop("version")
    assert committed == kernel, "language_info differs from the kernel's: JupyterLab would rewrite it on opening"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), "the first code cell holds the parameters"
