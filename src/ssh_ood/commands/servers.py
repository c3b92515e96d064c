"""``make lab`` and ``make dashboard``: JupyterLab and the Voilà dashboard, each on its own port of 127.0.0.1.

``python -m ssh_ood.commands.servers lab|dashboard [--port N]`` starts the server with a fresh random token,
waits until it listens, and prints one line with the address to open, token included::

    JupyterLab: http://127.0.0.1:8888/lab?token=...   (Ctrl-C stops it)

The servers log only warnings and errors (their start-up chatter is off). Both listen on 127.0.0.1 only,
JupyterLab on :data:`LAB_PORT` and the dashboard on :data:`DASHBOARD_PORT` by default, so both can run at
once; a port in use is an error (exit 2) rather than a silent move to another port. The token reaches the
server through the environment (``JUPYTER_TOKEN``), not its command line. Ctrl-C, SIGTERM and SIGHUP alike
stop the server and its kernels, free the port, and exit with 128 + the signal's number (130, 143, 129).

The dashboard (notebook 06, :mod:`ssh_ood.commands.voila_app`) shuts a page's kernel down when the page is
closed or reloaded, and culls kernels left idle and unconnected for :data:`CULL_IDLE_S` seconds (checked
every :data:`CULL_INTERVAL_S` s): a tab closed without notice (a crashed browser, a lost network) still
frees its kernel. The browser tests start their servers with the same commands (``tests/browser_support``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ..base.paths import REPO_ROOT

HOST = "127.0.0.1"
LAB_PORT = 8888
DASHBOARD_PORT = 8866
DASHBOARD_NOTEBOOK = "06_100_cnns_analysis.ipynb"
CULL_IDLE_S = 600  # a dashboard kernel idle and without a page for 10 min is shut down
CULL_INTERVAL_S = 60
START_TIMEOUT_S = 120.0
QUIET = "WARN"  # the servers' log level: warnings and errors only


def lab_command(port: int, root: Path = REPO_ROOT) -> list[str]:
    """Command line of JupyterLab serving ``root`` on ``HOST:port`` (token from ``JUPYTER_TOKEN``)."""
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.ip={HOST}", f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0", f"--ServerApp.root_dir={root}", f"--ServerApp.log_level={QUIET}",
        f"--LabApp.log_level={QUIET}",
        # notebook_shim serves classic-notebook extensions, which JupyterLab does not need; loading it reads
        # the deprecated ServerApp.token and prints a DeprecationWarning at every start
        '--ServerApp.jpserver_extensions={"notebook_shim": False}',
        # no news feed and no update check: nothing is fetched from the internet
        "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # JupyterLab refuses to run as root (containers) without it
        command.append("--allow-root")
    return command


def dashboard_command(port: int, notebook: Path, cull_idle_s: float = CULL_IDLE_S,
                      cull_interval_s: float = CULL_INTERVAL_S, log_level: str = QUIET) -> list[str]:
    """Command line of the Voilà dashboard of ``notebook`` on ``HOST:port`` (token from ``JUPYTER_TOKEN``).

    Kernels idle (no execution) and without a connected page for ``cull_idle_s`` seconds are shut down,
    checked every ``cull_interval_s`` seconds. ``log_level``: Voilà's (``"INFO"`` logs every kernel started).
    """
    return [
        sys.executable, "-m", "ssh_ood.commands.voila_app", "--no-browser", f"--Voila.ip={HOST}", f"--port={port}",
        "--Voila.port_retries=0", f"--Voila.log_level={log_level}",
        f"--MappingKernelManager.cull_idle_timeout={cull_idle_s:g}",
        f"--MappingKernelManager.cull_interval={cull_interval_s:g}", "--MappingKernelManager.cull_connected=False",
        str(notebook),
    ]


def server_url(kind: str, port: int, token: str) -> str:
    """The address to open: JupyterLab's ``/lab`` or the dashboard's page, with the token."""
    path = "/lab" if kind == "lab" else "/"
    return f"http://{HOST}:{port}{path}?token={token}"


def port_is_free(port: int) -> bool:
    """Whether nothing listens on ``HOST:port`` (connections of a stopped server left in TIME_WAIT do not count:
    the servers bind with ``SO_REUSEADDR`` too)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def wait_until_listening(process: subprocess.Popen, port: int, timeout: float = START_TIMEOUT_S) -> None:
    """Return once ``HOST:port`` accepts connections; raise RuntimeError if ``process`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode} before listening on port {port}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not listen on port {port} within {timeout:g} s")
        time.sleep(0.3)


def stop(process: subprocess.Popen) -> None:
    """Stop the server's process group (SIGTERM: the server shuts its kernels down), then SIGKILL if needed;
    kernels left over (each in its own session, out of the group's reach) are killed last."""
    import psutil

    kernels = []
    with contextlib.suppress(psutil.Error):
        kernels = psutil.Process(process.pid).children(recursive=True)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    _, left = psutil.wait_procs(kernels, timeout=10)
    for kernel in left:
        with contextlib.suppress(psutil.Error):
            kernel.kill()


#: the signals that stop a server like Ctrl-C (exit status 128 + the signal's number: 130, 143, 129)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """One of :data:`STOP_SIGNALS` arrived."""

    def __init__(self, number: int):
        super().__init__(number)
        self.number = int(number)
        self.name = signal.Signals(number).name


@contextlib.contextmanager
def stop_signals_interrupt():
    """Within the block, each of :data:`STOP_SIGNALS` raises :class:`Stopped` (by default SIGTERM and SIGHUP
    would end this process at once, leaving the server, in its own session, listening with its kernels)."""

    def interrupt(number, frame):
        raise Stopped(number)

    previous = {number: signal.signal(number, interrupt) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def serve(kind: str, port: int | None = None) -> int:
    """Run JupyterLab (``"lab"``) or the dashboard (``"dashboard"``) until Ctrl-C; the exit status."""
    names = {"lab": "JupyterLab", "dashboard": "Dashboard (notebook 06)"}
    if kind not in names:
        raise ValueError(f"kind must be 'lab' or 'dashboard', got {kind!r}")
    port = (LAB_PORT if kind == "lab" else DASHBOARD_PORT) if port is None else port
    if not port_is_free(port):
        print(f"error: port {port} of {HOST} is in use; choose another with PORT=<port> make {kind}", file=sys.stderr)
        return 2
    token = secrets.token_urlsafe(24)
    command = lab_command(port) if kind == "lab" else dashboard_command(port, REPO_ROOT / DASHBOARD_NOTEBOOK)
    env = {**os.environ, "JUPYTER_TOKEN": token}
    # its own session: Ctrl-C reaches only this process, which stops the server (JupyterLab would otherwise
    # stop to ask "Shutdown this Jupyter server (y/[n])?")
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, start_new_session=True)
    try:
        with stop_signals_interrupt():
            wait_until_listening(process, port)
            print(f"{names[kind]}: {server_url(kind, port, token)}   (Ctrl-C stops it)", flush=True)
            return process.wait()
    except Stopped as stopped:
        stop(process)
        print(f"\ninterrupted by {stopped.name}: {names[kind]} stopped, port {port} free", file=sys.stderr)
        return 128 + stopped.number
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if process.poll() is None:
            stop(process)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ssh_ood.commands.servers lab|dashboard [--port N]``."""
    parser = argparse.ArgumentParser(prog="python -m ssh_ood.commands.servers", description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("lab", "dashboard"))
    parser.add_argument("--port", type=int, default=None,
                        help=f"port on {HOST} (default: {LAB_PORT} for lab, {DASHBOARD_PORT} for the dashboard)")
    args = parser.parse_args(argv)
    return serve(args.kind, args.port)


if __name__ == "__main__":
    sys.exit(main())
