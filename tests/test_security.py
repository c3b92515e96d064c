"""What is on disk is data, never an instruction: no write through a link, one-line refusals, confined paths,
a run's models its own, values from disk validated like the command line's (see docs/security.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ssh_ood.base import file_records
from ssh_ood.base.io_utils import atomic_write_bytes, save_json
from ssh_ood.base.run_folders import LOCK_FILE, hold_folder


# ----------------------------------------------------------------------------------------------
# no write, truncation or deletion through a symbolic link
# ----------------------------------------------------------------------------------------------
def test_a_lock_file_that_is_a_link_is_refused_and_its_target_kept(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).symlink_to(target)
    with pytest.raises(ValueError, match="symbolic link"), hold_folder(run):
        pass
    assert target.read_text() == "keep me"


def test_a_model_folder_linked_into_another_run_is_never_written_or_deleted_through(tmp_path):
    other = tmp_path / "other" / "model_000"
    file_records.open_folder(other, {"kind": "model", "seed": 1, "index": 0})
    atomic_write_bytes(other / "phase_diagram.npz", b"the other run's")
    before = {p.name: p.read_bytes() for p in other.iterdir()}
    run = tmp_path / "run"
    run.mkdir()
    (run / "model_000").symlink_to(other, target_is_directory=True)
    with hold_folder(run):
        with pytest.raises(ValueError, match="symbolic link"):
            atomic_write_bytes(run / "model_000" / "phase_diagram.npz", b"this run's")
        with pytest.raises(ValueError, match="symbolic link"):
            file_records.remove(run / "model_000" / "phase_diagram.npz")
        with pytest.raises(ValueError, match="symbolic link"):
            file_records.open_folder(run / "model_000", {"kind": "model", "seed": 0, "index": 0})
    assert {p.name: p.read_bytes() for p in other.iterdir()} == before


def test_a_file_that_is_a_link_is_refused_not_replaced(tmp_path):
    target = tmp_path / "elsewhere.json"
    target.write_text("{}")
    run = tmp_path / "run"
    run.mkdir()
    (run / "stats.json").symlink_to(target)
    with hold_folder(run), pytest.raises(ValueError, match="symbolic link"):
        save_json(run / "stats.json", {"a": 1})
    assert (run / "stats.json").is_symlink() and target.read_text() == "{}"


def test_a_folder_named_on_the_command_line_may_be_a_link(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    named = tmp_path / "named"
    named.symlink_to(real, target_is_directory=True)
    with hold_folder(named):
        save_json(named / "a.json", {"a": 1})
    assert (real / "a.json").is_file() and not os.path.islink(real / "a.json")
    assert Path(real / LOCK_FILE).is_file()


# ----------------------------------------------------------------------------------------------
# errors are one line and never advise unsafe loading
# ----------------------------------------------------------------------------------------------
class _Payload:
    """Unpickling it would create a file: the code a hostile checkpoint runs."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def test_a_malicious_checkpoint_is_refused_in_one_line_without_advice_to_load_it_unsafely(tmp_path):
    import torch

    from ssh_ood.nets.model_folders import load_model

    marker = tmp_path / "payload_ran"
    model_dir = tmp_path / "model_000"
    model_dir.mkdir()
    torch.save({"cnn_layers_1.0.weight": _Payload(marker)}, model_dir / "weights.pt")
    with pytest.raises(ValueError) as caught:
        load_model(model_dir)
    message = str(caught.value)
    assert "\n" not in message and "weights.pt" in message
    assert "weights_only=False" not in message.replace(" ", "") and "weights_only` set to `False" not in message
    assert "Python objects" in message
    assert not marker.exists()


# ----------------------------------------------------------------------------------------------
# a run folder's models are its own; values from disk validated like the command line's
# ----------------------------------------------------------------------------------------------
def _model_folder(run: Path, index: int, base_seed: int = 0, **changes) -> Path:
    """A complete model folder as the trainer records it (files of the right kinds; weights not needed here)."""
    from ssh_ood.nets.model_folders import RESULT_FILES, open_model_folder

    config = {"preset": "smoke", "index": index, "model_seed": base_seed * 1_000_000 + index, "base_seed": base_seed,
              "recipe": {}, "n_cells": 50, "thermometer_levels": None, "shared_order": False, "data_sha256": "0" * 64,
              **changes}
    model_dir = run / f"model_{index:03d}"
    open_model_folder(model_dir, config)
    history = {"train_loss": [1.0, 0.5], "val_loss": [1.1, 0.6], "train_accuracy": [0.5, 0.9],
               "val_accuracy": [0.5, 0.8], "epochs_run": 2, "stopped_early": False, "best_epoch": 2}
    contents = {"history.json": history, "test_report.json": {"accuracy": 0.8}, "config.json": config}
    for name in RESULT_FILES:
        if name in contents:
            save_json(model_dir / name, contents[name])
        else:
            atomic_write_bytes(model_dir / name, b"weights")
    return model_dir


def test_a_model_folder_copied_in_under_another_index_is_refused_by_name(tmp_path):
    import shutil

    from ssh_ood.nets.model_folders import write_summary

    run = tmp_path / "run"
    _model_folder(run, 0)
    _model_folder(run, 1)
    shutil.rmtree(run / "model_001")
    shutil.copytree(run / "model_000", run / "model_001")  # a duplicate: model 0 twice
    with pytest.raises(ValueError, match="model_001") as caught:
        write_summary(run)
    assert "\n" not in str(caught.value) and not (run / "summary.csv").exists()


def test_a_model_of_another_run_is_refused_by_name(tmp_path):
    import shutil

    from ssh_ood.nets.model_folders import write_summary

    run, other = tmp_path / "run", tmp_path / "other"
    _model_folder(run, 0)
    _model_folder(other, 1, base_seed=3)
    shutil.copytree(other / "model_001", run / "model_001")  # its own record and config: only its run differs
    with pytest.raises(ValueError, match="model_001.*another run"):
        write_summary(run)


def test_a_negative_seed_in_config_json_is_refused_like_on_the_command_line(tmp_path):
    from ssh_ood.nets.model_folders import load_config
    from ssh_ood.nets.training_recipe import check_seed

    model_dir = _model_folder(tmp_path / "run", 0, base_seed=-1, model_seed=-1_000_000)
    with pytest.raises(ValueError) as on_the_command_line:
        check_seed(-1, "base_seed")
    with pytest.raises(ValueError, match="config.json: field 'base_seed'") as from_disk:
        load_config(model_dir)
    assert str(on_the_command_line.value) in str(from_disk.value)  # the same validator, the same words


def test_a_model_seed_in_config_json_that_its_run_seed_and_index_do_not_give_is_refused(tmp_path):
    from ssh_ood.nets.model_folders import load_config

    model_dir = _model_folder(tmp_path / "run", 2, model_seed=7)
    with pytest.raises(ValueError, match="config.json: field 'model_seed'"):
        load_config(model_dir)


# ----------------------------------------------------------------------------------------------
# workers die with their parent
# ----------------------------------------------------------------------------------------------
def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(folder.rglob("*")) if p.is_file()}


def kill_population_with_live_workers(tmp_path: Path, workers: list[str]) -> tuple[list, dict, dict]:
    """Start a smoke population (``workers``: its worker options) in a subprocess, ``kill -9`` it once its
    workers train; returns the workers still alive 5 s later and the folder's files right after the workers
    ended and 2 s later. The survivors are killed before returning."""
    import signal
    import subprocess
    import sys
    import time

    import psutil

    out, data = tmp_path / "pop", tmp_path / "data"
    command = [sys.executable, "-m", "ssh_ood", "population", "--preset", "smoke", "--models", "0-1", "--out", str(out),
               "--data-dir", str(data), "--quiet", "--train-only", *workers]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    descendants = []
    try:
        deadline = time.monotonic() + 300
        while not any(out.glob("model_*/checkpoint.pt")):  # both workers started, one already training
            assert process.poll() is None, f"the population ended before its workers trained: {process.stderr.read()}"
            assert time.monotonic() < deadline, "the workers did not start training within 300 s"
            time.sleep(0.1)
        descendants = psutil.Process(process.pid).children(recursive=True)
        assert descendants
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        _, alive = psutil.wait_procs(descendants, timeout=5)
        ended = _snapshot(out)
        time.sleep(2)
        return alive, ended, _snapshot(out)
    finally:
        for child in descendants:
            if child.is_running():
                child.kill()
        if process.poll() is None:
            process.kill()
            process.wait()


# ----------------------------------------------------------------------------------------------
# paths from files are data
# ----------------------------------------------------------------------------------------------
def test_a_manifest_pointing_its_datasets_outside_the_allowed_folders_is_refused_and_nothing_written_there(
        tmp_path, capsys):
    from ssh_ood.commands.cli import main

    population, elsewhere = tmp_path / "population", tmp_path / "system" / "datasets"
    file_records.open_folder(population, {"kind": "run", "preset": "smoke", "seed": 0})
    # a manifest edited with its record updated (records are integrity checks, not signatures)
    save_json(population / "manifest.json", {"preset": "smoke", "seed": 0, "data_dir": str(elsewhere)})
    assert main(["diagnose", "--population", str(population), "--quiet"]) != 0
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "manifest.json" in errors[0] and "'data_dir'" in errors[0] and "--data-dir" in errors[0]
    assert not (tmp_path / "system").exists()


def test_a_path_from_a_file_is_resolved_before_it_is_judged(tmp_path):
    from ssh_ood.base.safe_paths import confined_path

    run = tmp_path / "run"
    (run / "data").mkdir(parents=True)
    assert confined_path(str(run / "data"), run / "manifest.json", "data_dir", [run], "--data-dir") == run / "data"
    for escape in (str(run / ".." / "elsewhere"), "/etc", 3, ""):
        with pytest.raises(ValueError, match="manifest.json: field 'data_dir'"):
            confined_path(escape, run / "manifest.json", "data_dir", [run], "--data-dir")
    (run / "data" / "link").symlink_to("/etc", target_is_directory=True)
    with pytest.raises(ValueError, match="points outside"):
        confined_path(str(run / "data" / "link"), run / "manifest.json", "data_dir", [run], "--data-dir")


WORKER = """import sys
from ssh_ood.nets.training_processes import worker_init
worker_init(None)
print("ready", flush=True)
sum(range(10**12))  # native work that holds the GIL for minutes, as a long compiled kernel may
"""
PARENT = """import subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", sys.argv[1]])
print(worker.pid, flush=True)
time.sleep(600)
"""


def test_a_pool_worker_busy_in_native_code_still_dies_with_its_parent():
    """A watcher thread cannot run while native code holds the GIL; the kernel's parent-death signal can."""
    import signal
    import subprocess
    import sys

    import psutil

    parent = subprocess.Popen([sys.executable, "-c", PARENT, WORKER], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    worker = None
    try:
        worker = psutil.Process(int(parent.stdout.readline()))
        assert parent.stdout.readline() == "ready\n"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        _, alive = psutil.wait_procs([worker], timeout=5)
        assert not alive, "the worker outlived its parent by 5 s"
    finally:
        if worker is not None and worker.is_running():
            worker.kill()
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_a_negative_seed_in_a_population_manifest_is_refused_like_on_the_command_line(tmp_path, capsys):
    from ssh_ood.commands.cli import main

    population = tmp_path / "population"
    file_records.open_folder(population, {"kind": "run", "preset": "smoke", "seed": 0})
    save_json(population / "manifest.json", {"preset": "smoke", "seed": -1, "data_dir": str(tmp_path / "data")})
    assert main(["diagnose", "--population", str(population), "--data-dir", str(tmp_path / "data"), "--quiet"]) != 0
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "manifest.json: field 'seed': seed must be an integer" in errors[0]
    assert not (tmp_path / "data").exists()
