"""``make lab`` / ``make dashboard`` (src/ssh_ood/commands/servers.py): ports, address line, every stop signal, a port
in use, the dashboard's token, kernels and writes."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import psutil
import pytest

from ssh_ood.base.paths import REPO_ROOT
from ssh_ood.commands import servers
from tests.browser_support import free_port, jupyter_server


def test_lab_and_dashboard_default_to_distinct_local_ports():
    assert servers.LAB_PORT != servers.DASHBOARD_PORT
    lab = servers.lab_command(servers.LAB_PORT)
    dashboard = servers.dashboard_command(servers.DASHBOARD_PORT, REPO_ROOT / servers.DASHBOARD_NOTEBOOK)
    assert "--ServerApp.ip=127.0.0.1" in lab and "--ServerApp.port=8888" in lab
    assert "--Voila.ip=127.0.0.1" in dashboard and "--port=8866" in dashboard
    for command in (lab, dashboard):  # the token travels in the environment, never on the command line
        assert not [arg for arg in command if "token" in arg.lower()]
    assert "--MappingKernelManager.cull_connected=False" in dashboard


def start(kind: str, port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ssh_ood.commands.servers", kind, "--port", str(port)], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


@pytest.mark.parametrize("kind", ["lab", "dashboard"])
def test_a_server_prints_one_line_with_its_tokened_address_and_stops_on_ctrl_c(kind):
    port = free_port()
    process = start(kind, port)
    try:
        line = process.stdout.readline()
        match = re.fullmatch(rf"(JupyterLab|Dashboard \(notebook 06\)): (http://127\.0\.0\.1:{port}/(lab)?\?token=(\S+))"
                             r"   \(Ctrl-C stops it\)\n", line)
        assert match, line
        url, token = match.group(2), match.group(4)
        if kind == "lab":  # the token printed is the server's: its API answers with it, and refuses without
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=30) as response:
                assert response.status == 200
            with pytest.raises(urllib.error.HTTPError, match="403"):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=30)
        else:
            assert url.endswith(f"/?token={token}")
        listening = {c.laddr.ip for c in psutil.net_connections("tcp")
                     if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
        assert listening == {"127.0.0.1"}  # bound to this machine only
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends to the foreground group
        assert process.wait(timeout=60) == 130
        assert "stopped" in process.stderr.read()
        assert process.stdout.read() == ""  # nothing after the one line
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_a_port_in_use_is_an_error_not_a_silent_move():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        started = time.monotonic()
        process = start("dashboard", port)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 2 and out == ""
    assert f"port {port}" in err and "PORT=" in err
    assert time.monotonic() - started < 60


def stop_with_signal(kind: str, number: int) -> str:
    """Start ``make lab`` or ``make dashboard``, send ``number`` to its process alone (as a service manager or a
    closed terminal does) and say how it ended: ``"stopped"`` (exit 128 + the signal's number, a line naming the
    signal, the server's processes gone within 30 s, the port free) or what went wrong."""
    port = free_port()
    process = start(kind, port)
    server = []
    try:
        if "token=" not in process.stdout.readline():
            return f"did not start: {process.stderr.read()[-300:]}"
        server = psutil.Process(process.pid).children(recursive=True)
        os.kill(process.pid, number)
        code = process.wait(timeout=60)
        _, alive = psutil.wait_procs(server, timeout=30)
        problems = [f"exit {code}"] * (code != 128 + number)
        problems += [f"left running: {[p.cmdline()[:4] for p in alive]}"] * bool(alive)
        problems += [f"port {port} still in use"] * (not servers.port_is_free(port))
        for child in alive:  # they hold the launcher's stderr open: end them before reading it
            with contextlib.suppress(psutil.Error):
                child.kill()
        psutil.wait_procs(alive, timeout=10)
        if f"interrupted by {signal.Signals(number).name}" not in process.stderr.read():
            problems.append("no line naming the signal")
        return "; ".join(problems) or "stopped"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        for child in server:
            with contextlib.suppress(psutil.Error):
                child.kill()
        process.wait()


@pytest.mark.parametrize("kind", ["lab", "dashboard"])
@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_server_stops_on_any_stop_signal_sent_to_it_alone(kind, number):
    """SIGINT to the launcher alone (not its group, as Ctrl-C does), SIGTERM (a service manager), SIGHUP (a closed
    terminal)."""
    assert stop_with_signal(kind, number) == "stopped"


SAVING_NOTEBOOK = """import matplotlib.pyplot as plt
from ssh_ood.base.figure_files import save_figure
fig = plt.figure()
print("saved", *[path.name for path in save_figure(fig, "probe", "figures")])"""


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_the_dashboard_needs_its_token_writes_nothing_beside_its_notebook_and_any_signal_stops_its_kernels(
        tmp_path, number):
    import nbformat

    root = tmp_path / "root"
    root.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SAVING_NOTEBOOK)]), root / "app.ipynb")
    (root / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n private")
    with jupyter_server("voila", root, tmp_path / "home", notebook="app.ipynb") as server:
        for url in (f"{server.url}/voila/files/picture.png", server.page("/voila/files/picture.png")):
            with pytest.raises(urllib.error.HTTPError, match="403|404"):
                urllib.request.urlopen(url, timeout=30)
        with urllib.request.urlopen(server.page("/"), timeout=120) as response:  # runs the notebook in a kernel
            assert "saved probe.pdf probe.png" in response.read().decode()
        assert sorted(p.name for p in root.iterdir()) == ["app.ipynb", "picture.png"]  # no figures/ beside it
        kernels = [p for p in psutil.Process(server.process.pid).children(recursive=True)
                   if "ipykernel" in " ".join(p.cmdline())]
        assert kernels
        os.kill(server.process.pid, number)
        server.process.wait(timeout=60)
        _, alive = psutil.wait_procs(kernels, timeout=30)
        assert not alive, "the dashboard's kernels outlived it"
        assert servers.port_is_free(int(server.url.rsplit(":", 1)[1]))
