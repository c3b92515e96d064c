"""``make lab`` / ``make dashboard`` (src/ssh_ood/commands/servers.py): ports, address line, Ctrl-C, a port in use."""

from __future__ import annotations

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
from tests.browser_support import free_port


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
