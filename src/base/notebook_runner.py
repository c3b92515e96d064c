"""Execute the project's notebooks headless with injected parameters (used by tests and ``make reproduce``).

Each notebook has one code cell tagged ``parameters`` (preset name, seeds, paths). :func:`run_notebook`
inserts a cell right after it that overrides chosen names, executes the notebook with ``nbclient`` and
writes the executed copy to an output folder; the committed notebook is never modified. On POSIX systems
the kernel talks to the runner over Unix-domain sockets in a private temporary folder: no TCP port is
opened, and ipykernel has no unencrypted-TCP warning to print into the user's terminal.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from .io_utils import atomic_write_bytes
from .paths import REPO_ROOT


def parameters_cell_index(notebook: nbformat.NotebookNode) -> int:
    """Index of the code cell tagged ``parameters``; ``ValueError`` if there is none."""
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return index
    raise ValueError("notebook has no code cell tagged 'parameters'")


def inject_parameters(notebook: nbformat.NotebookNode, parameters: Mapping[str, Any]) -> nbformat.NotebookNode:
    """Return a copy of ``notebook`` with a cell assigning ``parameters`` after the parameters cell."""
    notebook = nbformat.from_dict(notebook)
    if not parameters:
        return notebook
    lines = ["# Parameters injected by src.base.notebook_runner"]
    lines += [f"{name} = {value!r}" for name, value in parameters.items()]
    cell = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": ["injected-parameters"]})
    notebook.cells.insert(parameters_cell_index(notebook) + 1, cell)
    return notebook


def notebook_kernel(socket_dir: str | Path) -> KernelManager:
    """A ``python3`` kernel manager; on POSIX on Unix-domain sockets (``socket_dir``/kernel-*), else on TCP."""
    manager = KernelManager(kernel_name="python3")
    if os.name == "posix":
        manager.transport = "ipc"
        manager.ip = str(Path(socket_dir) / "kernel")
    return manager


def run_notebook(
    path: str | Path,
    output_path: str | Path,
    parameters: Mapping[str, Any] | None = None,
    timeout: int = 1800,
) -> nbformat.NotebookNode:
    """Execute the notebook at ``path`` with ``parameters`` injected; save it executed to ``output_path``.

    The kernel runs with the repository root as working directory so ``import src`` works. Values in
    ``parameters`` must be Python literals (their ``repr`` is written into the injected cell); paths are
    converted to strings. Raises ``nbclient.exceptions.CellExecutionError`` when a cell fails (the
    executed copy, with the traceback, is saved first).
    """
    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    clean = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in (parameters or {}).items()}
    notebook = inject_parameters(notebook, clean)
    env_backend = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "Agg"
    try:
        with tempfile.TemporaryDirectory(prefix="notebook-kernel-") as sockets:
            kernel = notebook_kernel(sockets)
            client = NotebookClient(notebook, km=kernel, timeout=timeout, kernel_name="python3",
                                    resources={"metadata": {"path": str(REPO_ROOT)}})
            try:
                client.execute()
            finally:
                if kernel.has_kernel:  # a kernel manager passed in is not shut down by nbclient
                    kernel.shutdown_kernel()
    finally:
        atomic_write_bytes(output_path, nbformat.writes(notebook).encode())
        if env_backend is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = env_backend
    return notebook
