"""Jupyter servers and a headless Chromium for the real-browser tests (``test_browser_*.py``).

The servers (JupyterLab, Voilà) listen on 127.0.0.1, on a free port, with a random token, and run from a
scratch folder with their own Jupyter config, data, runtime and workspace folders, so nothing outside the
test's temporary folder is read or written. :func:`jupyter_server` stops every process the server started
(its kernels included) when the test ends, whether it passed or failed.

The browser is Debian's Chromium driven by Playwright (``executable_path``; Playwright's own browser
download is not used). Without it the tests are skipped, except under ``CI=true`` where a missing
browser is an error.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from ssh_ood.base.paths import REPO_ROOT
from ssh_ood.commands import servers

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1366, "height": 900}  # the laptop screen the notebooks are designed for


def require_browser() -> str:
    """Path of Chromium and Playwright's presence; skip without them (fail under ``CI=true``)."""
    missing = []
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        missing.append(f"Chromium ({CHROMIUM}; apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install -r requirements.txt)")
    if missing:
        message = "real-browser tests need " + " and ".join(missing)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Server:
    """A running Jupyter server: its base URL, token and process."""

    url: str
    token: str
    process: subprocess.Popen

    def page(self, path: str, query: str = "") -> str:
        """URL of ``path`` on the server, with the token (and ``query``, e.g. ``"reset"``)."""
        extra = f"&{query}" if query else ""
        return f"{self.url}{path}?token={self.token}{extra}"


def _isolated_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        folder = home / name.lower()
        folder.mkdir(parents=True, exist_ok=True)
        env[name] = str(folder)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    for name in ("JUPYTER_PATH", "MPLBACKEND"):  # kernels show figures with their own inline backend
        env.pop(name, None)
    return env


def _stop(process: subprocess.Popen) -> None:
    """Terminate the server's process group and every descendant (kernels run in their own sessions)."""
    try:
        family = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    servers.stop(process)  # SIGTERM to the group (the server shuts its kernels down), SIGKILL if needed
    for child in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs(family, timeout=10)


@contextlib.contextmanager
def jupyter_server(kind: str, root: Path, home: Path, notebook: str | None = None, timeout: float = 120.0,
                   cull_idle_s: float = servers.CULL_IDLE_S, cull_interval_s: float = servers.CULL_INTERVAL_S,
                   ) -> Iterator[Server]:
    """Start ``kind`` (``"lab"`` or ``"voila"``) on ``root``; yield a :class:`Server`; stop it afterwards.

    The servers are started with the commands of ``make lab`` and ``make dashboard``
    (:mod:`ssh_ood.commands.servers`), on a free port, with the test's own settings folders. ``notebook`` (a
    path relative to ``root``) is the app Voilà serves; JupyterLab serves the folder. ``cull_idle_s`` and
    ``cull_interval_s`` set Voilà's kernel culling. The server's log goes to ``home / f"{kind}.log"``
    (shown when it fails to start).
    """
    port, token = free_port(), secrets.token_hex(16)
    if kind == "lab":
        command = [*servers.lab_command(port, root), f"--LabApp.workspaces_dir={home / 'workspaces'}",
                   f"--LabApp.user_settings_dir={home / 'user-settings'}"]
    elif kind == "voila":
        if notebook is None:
            raise ValueError("the dashboard serves one notebook: give notebook=")
        command = [*servers.dashboard_command(port, root / notebook, cull_idle_s, cull_interval_s, log_level="INFO"),
                   "--show_tracebacks=True"]
    else:
        raise ValueError(f"kind must be 'lab' or 'voila', got {kind!r}")
    settings = home / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    log_path = home / f"{kind}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=root, env={**_isolated_env(home), "JUPYTER_TOKEN": token},
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        server = Server(f"http://127.0.0.1:{port}", token, process)
        try:
            servers.wait_until_listening(process, port, timeout)
        except RuntimeError as exc:
            raise RuntimeError(f"{kind}: {exc}:\n{log_path.read_text()[-3000:]}") from None
        if kind == "lab":  # listening, and answering its API
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(server.page("/api/status"), timeout=5) as response:
                        if response.status == 200:
                            break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"lab did not answer within {timeout:g} s:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.5)
        yield server
    finally:
        _stop(process)


LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@contextlib.contextmanager
def chromium_page() -> Iterator:
    """A Playwright page of a headless Chromium at 1366 x 900; closed (with the browser) afterwards.

    Every request the browser makes is watched: a test whose pages requested any host other than this
    machine (a CDN, a font server, an update check) fails, naming the addresses.
    """
    from playwright.sync_api import sync_playwright

    executable = require_browser()
    outside: list[str] = []

    def watch(request) -> None:
        parts = urllib.parse.urlsplit(request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname not in LOCAL_HOSTS:
            outside.append(request.url)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT)
            context.on("request", watch)
            yield context.new_page()
        finally:
            browser.close()
    assert not outside, f"the pages requested hosts other than this machine: {outside}"


def copy_notebook(source: Path, destination: Path, parameters: dict | None = None) -> Path:
    """Copy a committed notebook into a test folder, with ``parameters`` injected after its parameters cell."""
    import nbformat

    from ssh_ood.base.notebook_runner import inject_parameters

    destination.parent.mkdir(parents=True, exist_ok=True)
    if not parameters:
        shutil.copyfile(source, destination)
        return destination
    notebook = inject_parameters(nbformat.read(source, as_version=4), parameters)
    nbformat.write(notebook, destination)
    return destination
