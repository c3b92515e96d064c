"""Ctrl-C and SIGTERM during a notebook step of ``reproduce``: exit 130 / 143 within seconds, one line naming
the step on stderr, no traceback, and neither the kernel nor a process it started left running.

The pipeline is cut to one notebook step whose cell sleeps (the real steps take minutes); everything else,
the command line, the pipeline loop, the notebook runner and its kernel, is the code ``make reproduce`` runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import nbformat
import psutil
import pytest

from ssh_ood.base.paths import REPO_ROOT

DRIVER = """
import sys
from ssh_ood.commands import cli, reproduce
reproduce.NOTEBOOKS.clear()
reproduce.NOTEBOOKS["99"] = sys.argv[1]
reproduce.NOTEBOOK_FIGURES["99"] = ()
reproduce.pipeline_steps = lambda: [reproduce._run_notebook_step("99")]
sys.exit(cli.main(["reproduce", "--preset", "smoke", "--out", sys.argv[2], "--quiet"]))
"""


def _sleeping_notebook(path, started):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("PRESET = SEED = DATA_DIR = FIGURES_DIR = None", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "import json, os, subprocess, time\n"
            "child = subprocess.Popen(['sleep', '120'])  # a process the kernel started, like a training pool\n"
            f"open({str(started)!r} + '.tmp', 'w').write(json.dumps([os.getpid(), child.pid]))\n"
            f"os.replace({str(started)!r} + '.tmp', {str(started)!r})\n"
            "time.sleep(120)"),
    ]
    nbformat.write(notebook, path)
    return path


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize(("signum", "status", "word"), [(signal.SIGINT, 130, "interrupted"),
                                                         (signal.SIGTERM, 143, "terminated (SIGTERM)")])
def test_a_signal_during_a_notebook_stops_the_run_and_its_kernel_at_once(tmp_path, signum, status, word):
    started = tmp_path / "started.json"
    notebook = _sleeping_notebook(tmp_path / "sleeping.ipynb", started)
    process = subprocess.Popen([sys.executable, "-c", DRIVER, str(notebook), str(tmp_path / "out")], cwd=REPO_ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not started.is_file():
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "the notebook's cell did not start within 120 s"
            time.sleep(0.2)
        kernel, child = json.loads(started.read_text())
        assert _running(kernel) and _running(child)
        sent = time.monotonic()
        if signum == signal.SIGINT:
            os.killpg(process.pid, signum)  # Ctrl-C in a terminal: the whole foreground process group
        else:
            os.kill(process.pid, signum)  # `kill PID`
        _, err = process.communicate(timeout=30)
        waited = time.monotonic() - sent
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == status
    assert waited < 10, f"took {waited:.1f} s to stop"
    assert "Traceback" not in err and "Error" not in err
    assert err.strip() == (f"{word}: `reproduce` stopped during step 'notebook {notebook}'; "
                           "run the same command again to resume where it stopped")
    deadline = time.monotonic() + 5  # SIGKILL is delivered asynchronously
    while (_running(kernel) or _running(child)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(kernel), "the kernel outlived the run"
    assert not _running(child), "a process started by the kernel outlived the run"
    assert not (tmp_path / "out" / "executed_notebooks" / notebook.name).exists()  # no half-run notebook saved
