"""Nothing silent: one writer per run folder, finite numbers or a clear error, files that are
what their names say, bounded and validated input, and shipped data that no default can overwrite.

Each class of the issue has a test here that failed before the fix; the two-process tests run the real
command line on the smoke preset.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from ssh_ood.base.paths import HIGHLIGHTED_MODELS_DIR, POPULATION_DIR, REPO_ROOT
from ssh_ood.base.presets import get_preset
from ssh_ood.commands.cli import build_parser, main
from ssh_ood.nets import training_run
from ssh_ood.nets.data_loaders import load_training_data
from ssh_ood.nets.model_folders import is_complete, load_config, load_model
from ssh_ood.nets.training_recipe import data_fingerprint
from ssh_ood.nets.training_run import train_models
from ssh_ood.ood.population_settings import PopulationSettings
from ssh_ood.physics.datasets import dataset_filename, write_datasets

SMOKE = get_preset("smoke")
FAST = {"n_workers": 1, "progress": False}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data") / "smoke"
    write_datasets(SMOKE, 0, folder, progress=False)
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
    """A finished two-model smoke run."""
    folder = tmp_path_factory.mktemp("run")
    train_models(SMOKE, data_dir, folder, [0, 1], **FAST)
    return folder


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ssh_ood", *args]


def _wait_for(predicate, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.1)


def _rewrite_npz(path, **changes) -> None:
    """Rewrite a dataset file with some arrays changed (its content hash, if any, recomputed: a consistent fake)."""
    with np.load(path, allow_pickle=False) as archive:
        data = {key: archive[key] for key in archive.files}
    data.update(changes)
    if "content_sha256" in data:
        from ssh_ood.physics.datasets import content_sha256

        data["content_sha256"] = np.asarray(content_sha256(data))
    np.savez_compressed(path, **data)


# ----------------------------------------------------------------------------------------------
# 1. two writers, one folder
# ----------------------------------------------------------------------------------------------
def test_second_writer_is_refused_naming_the_holder_and_a_killed_holder_frees_the_folder(tmp_path, data_dir):
    out = tmp_path / "run"
    common = ("--preset", "smoke", "--data", str(data_dir), "--out", str(out), "--workers", "1", "--quiet",
              "--no-early-stopping")
    first = subprocess.Popen(_command("train", *common, "--seed", "0", "--epochs", "100000"), cwd=REPO_ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: (out / "model_000" / "checkpoint.pt").is_file())
        second = subprocess.run(_command("train", *common, "--seed", "1", "--epochs", "2"), cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stderr
        assert f"in use by pid {first.pid}" in second.stderr and "Traceback" not in second.stderr
        assert first.poll() is None  # the holder goes on, untouched
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # the kernel dropped the dead holder's lock: the next writer gets the folder, and its identity
    # (run.json, fixed by the first writer) refuses a run of another seed
    with pytest.raises(ValueError, match=r"run.json: the folder holds a different run \(base_seed: 0 there, 1 here"):
        train_models(SMOKE, data_dir, out, [0], base_seed=1, max_epochs=100000, early_stopping=False, **FAST)
    assert not (out / "model_000" / "config.json").exists()  # nothing of seed 1 was written


def test_a_run_whose_data_fingerprint_alone_differs_is_refused_naming_the_blas_kernel(tmp_path, data_dir):
    """Same preset, seed and recipe, other data bits (as on a CPU where OpenBLAS picks another kernel): the
    refusal says how to reproduce the shipped data; a difference in anything else gets no such note."""
    out = tmp_path / "run"
    train_models(SMOKE, data_dir, out, [0], max_epochs=1, early_stopping=False, **FAST)
    identity = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({**identity, "data_sha256": "0" * 64}))
    main(["record-files", str(out)])  # the folder's own record accepts the edit: only the identity refuses
    with pytest.raises(ValueError, match=r"data_sha256: '0{64}' there.*Only the data fingerprint differs.*"
                                         r"OPENBLAS_CORETYPE=Haswell"):
        train_models(SMOKE, data_dir, out, [1], max_epochs=1, early_stopping=False, **FAST)
    (out / "run.json").write_text(json.dumps({**identity, "data_sha256": "0" * 64, "base_seed": 7}))
    main(["record-files", str(out)])
    with pytest.raises(ValueError, match=r"base_seed: 7 there, 0 here") as refusal:
        train_models(SMOKE, data_dir, out, [1], max_epochs=1, early_stopping=False, **FAST)
    assert "OPENBLAS" not in str(refusal.value)
    assert not (out / "model_001").exists()


def test_an_identical_command_waits_for_the_holder_and_another_is_refused(tmp_path):
    """The issue asks identical concurrent commands to keep working: the second waits, then succeeds."""
    import fcntl
    import os
    import socket

    out = tmp_path / "data"
    args = ("data", "--preset", "smoke", "--seed", "0", "--out", str(out), "--quiet")
    out.mkdir()
    fd = os.open(out / ".run.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # this test plays the first command: same command line, same host
    (out / ".run.lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "token": "t",
                                               "started": "now", "command": "python -m ssh_ood " + " ".join(args)}))
    try:
        other = subprocess.run(_command(*args[:4], "1", *args[5:]), cwd=REPO_ROOT, capture_output=True, text=True,
                               timeout=120)
        assert other.returncode == 2 and "in use by pid" in other.stderr  # another seed: refused at once
        log = tmp_path / "same.err"
        with log.open("w") as err:
            same = subprocess.Popen(_command(*args), cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=err)
        _wait_for(lambda: "the same command is running" in log.read_text() or same.poll() is not None)
        assert same.poll() is None and not (out / "datasets.json").exists()  # waiting for the holder, not refused
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    assert same.wait(timeout=120) == 0, log.read_text()
    assert (out / "datasets.json").is_file()


# ----------------------------------------------------------------------------------------------
# 2. non-finite numbers
# ----------------------------------------------------------------------------------------------
def test_a_dataset_with_one_nan_pixel_is_refused(tmp_path, data_dir):
    poisoned = tmp_path / "poisoned"
    poisoned.mkdir()
    for path in data_dir.iterdir():
        (poisoned / path.name).write_bytes(path.read_bytes())
    with np.load(poisoned / "training_W0.npz") as archive:
        X = archive["X"].copy()
    X[5, 3, 3] = np.nan
    _rewrite_npz(poisoned / "training_W0.npz", X=X)
    with pytest.raises(ValueError, match=r"training_W0.npz: 1 non-finite values .* sample 5"):
        train_models(SMOKE, poisoned, tmp_path / "run", [0], **FAST)
    assert not (tmp_path / "run" / "model_000" / "weights.pt").exists()


def test_non_finite_loss_stops_that_model_only_and_the_run_fails(tmp_path, data_dir, monkeypatch):
    original = training_run.initial_model

    def initial_model(seed, levels=None):
        model = original(seed, levels)
        if seed == 1:  # model 1 starts from NaN weights: its loss is NaN from the first batch
            with torch.no_grad():
                model.linear_layers[0].weight.fill_(float("nan"))
        return model

    monkeypatch.setattr(training_run, "initial_model", initial_model)
    with pytest.raises(training_run.TrainingFailed, match=r"1 of 2 models failed: model_001 \(seed 1\): "
                       r"non-finite loss in epoch 1"):
        train_models(SMOKE, data_dir, tmp_path / "run", [0, 1], **FAST)
    assert is_complete(tmp_path / "run" / "model_000")
    assert not is_complete(tmp_path / "run" / "model_001")
    assert "model_001" not in (tmp_path / "run" / "summary.csv").read_text().split("\n", 1)[0]


def test_non_finite_weights_and_logits_are_refused(tmp_path, trained):
    from ssh_ood.ood.generalization import GeneralizationGrid, evaluate_models_on_grid
    from ssh_ood.ood.model_evaluation import evaluate_model_dirs

    broken = tmp_path / "model_000"
    broken.mkdir()
    for path in (trained / "model_000").iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    state = torch.load(broken / "weights.pt", weights_only=True)
    state["cnn_layers_2.0.weight"][0, 0, 0, 0] = float("nan")
    torch.save(state, broken / "weights.pt")
    with pytest.raises(ValueError, match=r"weights.pt: 1 non-finite values .* 'cnn_layers_2.0.weight'"):
        load_model(broken)
    grid = GeneralizationGrid.from_preset("smoke", 0)
    with pytest.raises(ValueError, match="non-finite"):
        evaluate_model_dirs([broken], grid, progress=False)
    in_memory = load_model(trained / "model_000")  # a model built in memory: no file check sees it
    with torch.no_grad():
        in_memory.linear_layers[0].bias.fill_(float("inf"))
    with pytest.raises(ValueError, match="model 0: non-finite logits"):
        evaluate_models_on_grid([in_memory], grid, progress=False)


# ----------------------------------------------------------------------------------------------
# 3. files are what their names say
# ----------------------------------------------------------------------------------------------
def test_a_dataset_under_another_name_is_refused_and_regenerated(tmp_path):
    folder = tmp_path / "data"
    write_datasets(SMOKE, 0, folder, progress=False)
    pristine = load_training_data(folder, SMOKE)
    (folder / dataset_filename("test", 0.0)).write_bytes((folder / dataset_filename("test", 2.0)).read_bytes())
    with pytest.raises(ValueError, match=r"test_W0.npz: holds W = 2.0, but 0.0 is expected"):
        load_training_data(folder, SMOKE)
    write_datasets(SMOKE, 0, folder, progress=False)  # the up-to-date check sees it and regenerates that file
    assert torch.equal(load_training_data(folder, SMOKE).test.x, pristine.test.x)


def test_up_to_date_check_verifies_content_and_old_folders_are_regenerated_identically(tmp_path):
    from ssh_ood.physics.datasets import ensure_datasets

    folder = tmp_path / "data"
    write_datasets(SMOKE, 0, folder, progress=False)
    fingerprint = data_fingerprint(load_training_data(folder, SMOKE))
    path = folder / "training_W0.npz"
    pristine = path.read_bytes()
    with np.load(path) as archive:
        X = archive["X"].copy()
    X[0, 0, 0] = np.nan
    _rewrite_npz(path, X=X)
    write_datasets(SMOKE, 0, folder, progress=False)
    assert path.read_bytes() == pristine
    # a folder written before files carried their identity: regenerated, the same samples, the same
    # fingerprint (so the shipped populations' config.json still match)
    for name in folder.glob("*.npz"):
        with np.load(name) as archive:
            old = {key: archive[key] for key in archive.files if key not in ("preset", "content_sha256")}
        np.savez_compressed(name, **old)
    with pytest.raises(ValueError, match="older version"):
        load_training_data(folder, SMOKE)
    ensure_datasets(SMOKE, 0, folder, progress=False)
    assert data_fingerprint(load_training_data(folder, SMOKE)) == fingerprint


# ----------------------------------------------------------------------------------------------
# 4. unbounded or partial input
# ----------------------------------------------------------------------------------------------
def test_model_ranges_are_bounded_before_they_are_expanded():
    from ssh_ood.ood.population_settings import parse_model_indices

    started = time.monotonic()
    with pytest.raises(ValueError, match="99999999999 is beyond the population's 100 models"):
        parse_model_indices("0-99999999999", 100)
    assert time.monotonic() - started < 1.0


def test_unwritable_output_malformed_json_and_huge_seeds_give_one_line_errors(tmp_path, trained, capsys):
    target = tmp_path / "a_file"
    target.write_text("")
    assert main(["train", "--preset", "smoke", "--out", str(target), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {target}: exists and is not a folder") and err.count("\n") == 1
    with pytest.raises(SystemExit) as exited:
        main(["train", "--preset", "smoke", "--seed", str(10**20), "--out", str(tmp_path / "x")])
    assert exited.value.code == 2 and "--seed: must be an integer in [0, " in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    model = tmp_path / "model_000"
    model.mkdir()
    (model / "config.json").write_text("[]")
    with pytest.raises(ValueError, match=r"config.json: must hold a JSON object, found list"):
        load_config(model)
    config = json.loads((trained / "model_000" / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "index": [0]}))
    with pytest.raises(ValueError, match=r"config.json: field 'index' must be an integer, found \[0\]"):
        load_config(model)
    population = tmp_path / "population"
    population.mkdir()
    (population / "manifest.json").write_text(json.dumps({"preset": "smoke", "seed": {}}))
    assert main(["population", "--preset", "smoke", "--out", str(population), "--quiet"]) == 2
    assert "manifest.json: field 'seed' must be an integer, found {}" in capsys.readouterr().err


def test_ctrl_c_exits_130_with_one_line(tmp_path, data_dir):
    out = tmp_path / "run"
    process = subprocess.Popen(
        _command("train", "--preset", "smoke", "--data", str(data_dir), "--out", str(out), "--workers", "2",
                 "--n-models", "2", "--epochs", "100000", "--no-early-stopping", "--quiet"),
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    _wait_for(lambda: (out / "model_001" / "checkpoint.pt").is_file())
    os.killpg(process.pid, signal.SIGINT)  # like Ctrl-C in a terminal: the whole process group
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip() == "interrupted: `train` stopped; run the same command again to resume where it stopped"


# ----------------------------------------------------------------------------------------------
# 5. shipped data is read-only by default
# ----------------------------------------------------------------------------------------------
def test_no_default_output_points_into_shipped_data_and_writing_there_needs_the_flag():
    from ssh_ood.base.paths import is_shipped
    from ssh_ood.base.run_folders import allow_shipped_writes, hold_folder

    args = build_parser().parse_args(["highlight", "--population", "somewhere"])
    assert not is_shipped(args.out)
    locked_before = (POPULATION_DIR / ".run.lock").exists()  # left by an earlier write with --allow-shipped
    for shipped in (POPULATION_DIR, HIGHLIGHTED_MODELS_DIR):
        assert is_shipped(shipped)
        with pytest.raises(ValueError, match="shipped with the repository.*--allow-shipped"):
            with hold_folder(shipped):
                pass
    assert (POPULATION_DIR / ".run.lock").exists() == locked_before  # a refused writer leaves no lock
    with allow_shipped_writes(), hold_folder(HIGHLIGHTED_MODELS_DIR) as hold:
        assert hold.owner
    (HIGHLIGHTED_MODELS_DIR / ".run.lock").unlink()


def test_re_evaluation_on_another_grid_is_refused_unless_asked_and_then_rewrites_everything(
    tmp_path, data_dir, capsys
):
    from ssh_ood.ood.model_evaluation import load_metrics
    from ssh_ood.ood.population import run_population
    from ssh_ood.ood.population_tables import MANIFEST_FILE, STATS_FILE

    folder = tmp_path / "population"
    run_population(PopulationSettings(get_preset("smoke"), 0, folder, data_dir=data_dir, train_workers=1, progress=False))
    before = (folder / STATS_FILE).read_text()
    assert main(["evaluate", "--run", str(folder), "--seed", "1", "--quiet"]) == 2
    assert "--replace-evaluations" in capsys.readouterr().err
    assert (folder / STATS_FILE).read_text() == before
    assert main(["evaluate", "--run", str(folder), "--seed", "1", "--models", "0", "--replace-evaluations",
                 "--quiet"]) == 0
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert manifest["grid"]["seed"] == 1 and manifest["runs"][-1]["command"] == "evaluate"
    stats = (folder / STATS_FILE).read_text()
    for index in (0, 1):  # model 1 follows although only model 0 was named: one grid per folder
        metrics = load_metrics(folder / f"model_00{index}")
        assert metrics["grid"]["seed"] == 1 and repr(metrics["rmse"]) in stats
