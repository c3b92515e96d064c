"""Execute the project's notebooks headless with injected parameters (used by tests and ``make reproduce``).

Each notebook has one code cell tagged ``parameters`` (preset name, seeds, paths). :func:`run_notebook`
inserts a cell right after it that overrides chosen names, executes the notebook with ``nbclient`` and
writes the executed copy to an output folder; the committed notebook is never modified. On POSIX systems
the kernel talks to the runner over Unix-domain sockets in a private temporary folder: no TCP port is
opened, and ipykernel has no unencrypted-TCP warning to print into the user's terminal.

The notebook runs in a worker thread while the calling (main) thread waits in short steps. So Ctrl-C and
SIGTERM (:mod:`ssh_ood.base.interruption`) reach the caller within a fraction of a second, whatever the kernel
is doing: the kernel and every process it started are killed, and the interruption propagates, without the
half-executed notebook being written. (Run in the main thread, nbclient takes SIGINT and SIGTERM for itself
and its loop can sit in a blocking poll: signals were ignored for minutes, then ended in a ZMQ traceback.)
The waiting thread also reports which code cell runs and the latest progress line a cell printed
(:class:`NotebookProgress`), for a progress display in the terminal.
"""

from __future__ import annotations

import asyncio
import atexit
import html
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from tqdm.auto import tqdm

from .io_utils import atomic_write_bytes
from .paths import REPO_ROOT

#: seconds between two looks of the waiting thread at the notebook (signal latency, progress refresh)
WAIT_STEP_S = 0.2
#: seconds a stopped notebook's thread is given to close its kernel connection
STOP_GRACE_S = 5.0
#: matplotlib backend of the kernel: figures shown by ``plt.show()`` become image outputs of the executed notebook
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


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
    lines = ["# Parameters injected by ssh_ood.base.notebook_runner"]
    lines += [f"{name} = {value!r}" for name, value in parameters.items()]
    cell = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": ["injected-parameters"]})
    notebook.cells.insert(parameters_cell_index(notebook) + 1, cell)
    return notebook


@dataclass(frozen=True)
class NotebookProgress:
    """Where a running notebook is: code cell ``cell`` of ``n_cells`` (1-based; 0 before the first), running
    since ``cell_started`` (``time.monotonic()``), and the latest progress line it printed (``line``: the last
    line of its stderr, or the text of a tqdm widget; empty if none yet)."""

    cell: int
    n_cells: int
    cell_started: float
    line: str = ""


def stream_line(text: str) -> str:
    """The last non-empty line of a stream output; tqdm redraws its bar after ``\\r``."""
    parts = [part.strip() for part in text.replace("\r", "\n").split("\n")]
    return next((part for part in reversed(parts) if part), "")


def widget_line(widget_state: Mapping[str, Mapping[str, Any]], comm_id: str) -> str:
    """The text of the widget box holding widget ``comm_id`` (a tqdm bar in a kernel with ipywidgets is an
    ``HBox`` of an HTML label, a progress bar and an HTML label); empty if ``comm_id`` is in no box."""
    reference = f"IPY_MODEL_{comm_id}"
    for state in widget_state.values():
        children = state.get("children") or []
        if reference in children:
            texts = [widget_state.get(child.removeprefix("IPY_MODEL_"), {}).get("value") for child in children]
            words = [html.unescape(t).replace("\u2007", " ").strip() for t in texts if isinstance(t, str)]
            return " ".join(w for w in words if w)
    return ""


class ProgressClient(NotebookClient):
    """nbclient's client that keeps :attr:`progress` (a :class:`NotebookProgress`, replaced whole, so another
    thread can read it at any time) up to date as cells start and print."""

    def __init__(self, notebook: nbformat.NotebookNode, **kwargs: Any) -> None:
        super().__init__(notebook, **kwargs)
        code_cells = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
        self.code_ordinal = {index: ordinal for ordinal, index in enumerate(code_cells, start=1)}
        self.progress = NotebookProgress(0, len(code_cells), time.monotonic())

    async def async_execute_cell(self, cell, cell_index: int, execution_count: int | None = None,
                                 store_history: bool = True):
        """Record the cell as running, then execute it (nbclient)."""
        self.progress = NotebookProgress(self.code_ordinal.get(cell_index, 0), self.progress.n_cells,
                                         time.monotonic())
        return await super().async_execute_cell(cell, cell_index, execution_count, store_history)

    def output(self, outs, msg, display_id, cell_index):
        """Keep the last stderr line as the progress line, then store the output (nbclient)."""
        if msg["msg_type"] == "stream" and msg["content"].get("name") == "stderr":
            self._set_line(stream_line(msg["content"].get("text", "")))
        return super().output(outs, msg, display_id, cell_index)

    def handle_comm_msg(self, outs, msg, cell_index: int) -> None:
        """Store the widget state (nbclient), then take the text of an updated tqdm widget as progress line."""
        super().handle_comm_msg(outs, msg, cell_index)
        self._set_line(widget_line(self.widget_state, msg["content"].get("comm_id", "")))

    def _set_line(self, line: str) -> None:
        if line:
            self.progress = replace(self.progress, line=line)


class NotebookBar:
    """A terminal progress bar for :func:`run_notebook`'s ``on_progress``: the notebook's name, the code cells
    done of all, the time since it started and, for the running cell, its number, its time so far and the
    latest progress line it printed (e.g. its own tqdm bar). Redrawn on every new cell, on a new line at most
    every ``min_interval_s`` seconds, and at least every ``refresh_s`` seconds so the times move during a long
    cell; ``enabled=False`` shows nothing."""

    def __init__(self, name: str, enabled: bool = True, min_interval_s: float = 0.5, refresh_s: float = 2.0) -> None:
        self.name = name
        self.enabled = enabled
        self.min_interval_s = min_interval_s
        self.refresh_s = refresh_s
        self.bar: tqdm | None = None
        self.shown: NotebookProgress | None = None
        self.drawn = 0.0

    def __call__(self, progress: NotebookProgress) -> None:
        """Show ``progress`` (the ``on_progress`` callback)."""
        if not self.enabled:
            return
        if self.bar is None:
            self.bar = tqdm(total=progress.n_cells, desc=self.name, leave=False, dynamic_ncols=True,
                            bar_format="{desc}: {n_fmt}/{total_fmt} cells done [{elapsed}]{postfix}")
        now = time.monotonic()
        since = now - self.drawn
        new_cell = self.shown is None or progress.cell != self.shown.cell
        new_line = self.shown is not None and progress.line != self.shown.line and since >= self.min_interval_s
        if not (new_cell or new_line or since >= self.refresh_s):
            return
        self.bar.n = max(progress.cell - 1, 0)
        running = time.strftime("%M:%S", time.gmtime(now - progress.cell_started))
        text = f"cell {progress.cell} running {running}" if progress.cell else "starting the kernel"
        self.bar.set_postfix_str(f"{text}: {progress.line}" if progress.line else text, refresh=False)
        self.bar.refresh()
        self.shown, self.drawn = progress, now

    def close(self) -> None:
        """Remove the bar from the terminal."""
        if self.bar is not None:
            self.bar.close()


class _NotebookThread(threading.Thread):
    """Executes ``client``'s notebook on its own event loop; :meth:`stop` kills the kernel from another thread."""

    def __init__(self, client: ProgressClient, manager: AsyncKernelManager) -> None:
        super().__init__(name="notebook-runner", daemon=True)
        self.client = client
        self.manager = manager
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task | None = None
        self.error: BaseException | None = None
        # waited on instead of join(): in CPython 3.11 a join interrupted by Ctrl-C can mark a running thread as
        # ended (the handling added for bpo-45274), and every later join then returns at once
        self.done = threading.Event()

    def run(self) -> None:
        try:
            asyncio.run(self._execute())  # then cancels what nbclient left pending and closes the loop
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread, which raises it
            self.error = exc
        finally:
            self.done.set()

    async def _execute(self) -> None:
        self.loop, self.task = asyncio.get_running_loop(), asyncio.current_task()
        try:
            await self.client.async_execute()
        finally:
            if self.manager.has_kernel:  # a kernel manager passed in is not shut down by nbclient
                await self.manager.shutdown_kernel()

    def stop(self) -> None:
        """Kill the kernel's process group (the kernel and what it started; it runs in a session of its own),
        cancel the execution and give the thread :data:`STOP_GRACE_S` seconds to close its connections."""
        provisioner = getattr(self.manager, "provisioner", None)
        process = getattr(provisioner, "process", None)
        if process is not None and process.poll() is None:
            try:
                group = os.getpgid(process.pid)
                if group != os.getpgrp():  # never our own group
                    os.killpg(group, signal.SIGKILL)
                else:
                    process.kill()
                process.wait(STOP_GRACE_S)  # reap it: a killed child left unwaited stays a zombie of this process
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        if self.loop is not None and self.task is not None:
            try:
                self.loop.call_soon_threadsafe(self.task.cancel)
            except RuntimeError:  # the loop has closed: the thread is finishing
                pass
        self.done.wait(STOP_GRACE_S)
        atexit.unregister(self.client._cleanup_kernel)  # nbclient's exit hook would try again, with a traceback


def notebook_kernel(socket_dir: str | Path) -> AsyncKernelManager:
    """A ``python3`` kernel manager; on POSIX on Unix-domain sockets (``socket_dir``/kernel-*), else on TCP."""
    manager = AsyncKernelManager(kernel_name="python3")
    if os.name == "posix":
        manager.transport = "ipc"
        manager.ip = str(Path(socket_dir) / "kernel")
    return manager


def run_notebook(
    path: str | Path,
    output_path: str | Path,
    parameters: Mapping[str, Any] | None = None,
    timeout: int = 1800,
    on_progress: Callable[[NotebookProgress], None] | None = None,
) -> nbformat.NotebookNode:
    """Execute the notebook at ``path`` with ``parameters`` injected; save it executed to ``output_path``.

    The kernel runs with the repository root as working directory so the notebooks find the data folder by relative
    paths, and with Jupyter's inline matplotlib backend, so the executed copy shows the figures. Values in
    ``parameters`` must be Python literals (their ``repr`` is written into the injected cell); paths are
    converted to strings. ``timeout``: seconds a cell may run. ``on_progress`` is called in the calling thread
    every :data:`WAIT_STEP_S` seconds with the notebook's :class:`NotebookProgress`.

    Raises ``nbclient.exceptions.CellExecutionError`` when a cell fails (the executed copy, with the
    traceback, is saved first). A ``KeyboardInterrupt`` (Ctrl-C, or SIGTERM within
    :func:`ssh_ood.base.interruption.sigterm_raises`) kills the kernel and propagates; nothing is saved then.
    """
    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    clean = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in (parameters or {}).items()}
    notebook = inject_parameters(notebook, clean)
    env_backend = os.environ.get("MPLBACKEND")
    # Jupyter's inline backend, whatever the caller's: the executed copy keeps every shown figure as a PNG output
    os.environ["MPLBACKEND"] = INLINE_BACKEND
    interrupted = False
    try:
        with tempfile.TemporaryDirectory(prefix="notebook-kernel-") as sockets:
            kernel = notebook_kernel(sockets)
            client = ProgressClient(notebook, km=kernel, timeout=timeout, kernel_name="python3",
                                    resources={"metadata": {"path": str(REPO_ROOT)}})
            runner = _NotebookThread(client, kernel)
            runner.start()
            try:
                while not runner.done.wait(WAIT_STEP_S):
                    if on_progress is not None:
                        on_progress(client.progress)
            except BaseException:
                interrupted = True
                runner.stop()
                raise
            if runner.error is not None:
                raise runner.error
    finally:
        if not interrupted:
            atomic_write_bytes(output_path, nbformat.writes(notebook).encode())
        if env_backend is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = env_backend
    return notebook
