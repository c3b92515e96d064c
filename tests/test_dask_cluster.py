"""A real Dask cluster: ``dask scheduler`` and ``dask worker`` processes started in a folder outside the repository,
on 127.0.0.1, as a user starts them; ``python -m ssh_ood population --scheduler`` on it, from another folder too.

- With workers in the environment where the package is installed, a smoke population trains the same weights,
  bit for bit, as the in-process run.
- A worker or a scheduler whose Python lacks the package (a virtual environment with every dependency but not
  the package, :mod:`tests.isolated_env`) is named in one line with the fix, before any work is sent; and a
  worker lost to its first task later (the up-front check disabled) gives the same kind of line.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from ssh_ood.base.paths import REPO_ROOT, install_hint
from ssh_ood.base.presets import get_preset
from ssh_ood.ood.population import run_population
from ssh_ood.ood.population_settings import PopulationSettings
from ssh_ood.physics.datasets import write_datasets
from tests.isolated_env import environment_without_package

PRESET = "smoke"
BIN = Path(sys.executable).parent
START_TIMEOUT = 90  # seconds for the scheduler to write its address and the workers to register


def _stop(process: subprocess.Popen) -> None:
    """End ``process`` and everything it started (its own session: a worker's nanny and its worker)."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):  # a straggler of the group whose leader already exited
        os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def dask_cluster(folder: Path, workers: dict[str, Path], scheduler_config: dict[str, str] | None = None,
                 scheduler_python: Path | None = None) -> Iterator[str]:
    """A scheduler and one single-threaded worker per ``name -> python``, all with ``folder`` as working directory
    and listening on 127.0.0.1 only (ports chosen by the system); yields the scheduler's address once every worker
    has registered; stops them all, by process group, however the block ends.

    ``scheduler_config``: Dask configuration of the scheduler as ``DASK_...`` environment variables;
    ``scheduler_python``: run the scheduler with this Python (default: ``dask scheduler`` of this environment).
    """
    from distributed import Client

    folder.mkdir(parents=True, exist_ok=True)
    scheduler_file = folder / "scheduler.json"
    processes: list[subprocess.Popen] = []

    def start(command: list, log: str, env: dict[str, str] | None = None) -> None:
        with open(folder / log, "wb") as out:
            processes.append(subprocess.Popen([str(c) for c in command], cwd=folder, stdout=out, env=env,
                                              stderr=subprocess.STDOUT, start_new_session=True))

    try:
        scheduler = [BIN / "dask", "scheduler"] if scheduler_python is None else [
            scheduler_python, "-m", "distributed.cli.dask_scheduler"]
        start([*scheduler, "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", scheduler_file],
              "scheduler.log", {**os.environ, **(scheduler_config or {})})
        deadline = time.monotonic() + START_TIMEOUT
        while not scheduler_file.is_file():
            assert processes[0].poll() is None, (folder / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.2)
        time.sleep(0.2)  # the file is written whole before the scheduler listens; give it a moment to be read whole
        address = json.loads(scheduler_file.read_text())["address"]
        for name, python in workers.items():
            start([python, "-m", "distributed.cli.dask_worker", address, "--name", name, "--nthreads", "1",
                   "--host", "127.0.0.1", "--no-dashboard", "--local-directory", folder / f"scratch_{name}"],
                  f"worker_{name}.log")
        with Client(address, timeout=30) as client:  # the scheduler answers
            if workers:
                client.wait_for_workers(len(workers), timeout=START_TIMEOUT)
        yield address
    finally:
        for process in reversed(processes):
            _stop(process)


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> Path:
    """A working directory outside the repository."""
    folder = tmp_path_factory.mktemp("outside")
    assert not folder.resolve().is_relative_to(REPO_ROOT)
    return folder


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("datasets")
    write_datasets(PRESET, 0, folder, progress=False)
    return folder


@pytest.fixture(scope="module")
def python_without_package(tmp_path_factory) -> Path:
    python = environment_without_package(tmp_path_factory.mktemp("no_package") / "env")
    check = [str(python), "-c", "import distributed, torch\ntry:\n import ssh_ood\nexcept ModuleNotFoundError:\n print('absent')"]
    assert subprocess.run(check, capture_output=True, text=True, timeout=120).stdout.strip() == "absent"
    return python


def _population(out: Path, data_dir: Path, cwd: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "ssh_ood", "population", "--preset", PRESET, "--seed", "0", "--out", str(out),
               "--data-dir", str(data_dir), "--quiet", *extra]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)


def _weights(folder: Path, index: int, name: str) -> dict[str, torch.Tensor]:
    return torch.load(folder / f"model_{index:03d}" / name, map_location="cpu", weights_only=True)


def test_population_on_a_real_cluster_matches_the_in_process_run(outside, data_dir):
    with dask_cluster(outside / "cluster", {"w1": Path(sys.executable), "w2": Path(sys.executable)}) as address:
        on_cluster = _population(outside / "on_cluster", data_dir, outside, "--scheduler", address, "--chunk-size", "1")
    assert on_cluster.returncode == 0, on_cluster.stderr
    run_population(PopulationSettings(get_preset(PRESET), 0, outside / "in_process", data_dir=data_dir, train_workers=1,
                                      progress=False))
    manifest = json.loads((outside / "on_cluster" / "manifest.json").read_text())
    assert manifest["runs"][-1]["scheduler"] == address
    for index in range(2):  # the smoke preset's two models
        for name in ("weights.pt", "best_weights.pt"):
            ours, reference = _weights(outside / "on_cluster", index, name), _weights(outside / "in_process", index, name)
            assert list(ours) == list(reference)
            for key, tensor in reference.items():
                assert torch.equal(ours[key], tensor), (index, name, key)


def test_a_worker_without_the_package_is_named_in_one_line(outside, data_dir, python_without_package):
    from distributed import Client

    workers = {"good": Path(sys.executable), "bare": python_without_package}
    with dask_cluster(outside / "mixed", workers) as address:
        with Client(address, timeout=30) as client:
            by_name = {info["name"]: worker for worker, info in client.scheduler_info(n_workers=-1)["workers"].items()}
        result = _population(outside / "refused", data_dir, outside, "--scheduler", address)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [f"error: the Dask workers at {by_name['bare']} cannot import ssh_ood: install this package in "
                     f"the workers' environment ({install_hint()})"], result.stderr
    assert install_hint() == f"pip install {REPO_ROOT}"  # from this checkout
    assert not list((outside / "refused").glob("model_*"))  # refused before any work was sent


def test_a_scheduler_without_the_package_is_named_in_one_line(outside, data_dir, python_without_package):
    """The scheduler unpickles the task graph, so it needs the package too; checked before the workers."""
    with dask_cluster(outside / "bare_scheduler", {}, scheduler_python=python_without_package) as address:
        result = _population(outside / "refused_by_scheduler", data_dir, outside, "--scheduler", address)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: the Dask scheduler at {address} cannot import ssh_ood: install this package in the scheduler's and "
        f"workers' environment ({install_hint()})"], result.stderr


def test_a_worker_lost_to_its_first_task_later_gives_one_line_too(outside, data_dir, python_without_package):
    """A worker that cannot unpickle its task drops out of the cluster; the scheduler gives up on the task after
    ``allowed-failures`` such deaths (0 here, so the first) and the command names the worker and the fix."""
    late = ("import sys\nfrom ssh_ood.ood import dask_workers\n"
            "dask_workers.check_cluster_imports = lambda client: None  # as if the worker joined after the check\n"
            "from ssh_ood.commands.cli import main\nsys.exit(main(sys.argv[1:]))")
    config = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
    with dask_cluster(outside / "bare_only", {"bare": python_without_package}, config) as address:
        command = [sys.executable, "-c", late, "population", "--preset", PRESET, "--seed", "0", "--out",
                   str(outside / "late"), "--data-dir", str(data_dir), "--scheduler", address, "--quiet"]
        result = subprocess.run(command, cwd=outside, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the Dask worker at tcp://127.0.0.1:"), result.stderr
    assert lines[0].endswith(f"cannot import ssh_ood dies this way (its log then shows ModuleNotFoundError): install "
                             f"this package in the workers' environment ({install_hint()})"), result.stderr
    assert "ModuleNotFoundError: No module named 'ssh_ood'" in (outside / "bare_only" / "worker_bare.log").read_text()
