"""The record of every file's hash (ssh_ood.base.file_records), a full disk, a datasets folder shared by
two runs, and the shipped data verifying file by file."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import textwrap

import pytest

from ssh_ood.base import io_utils
from ssh_ood.base.file_records import (
    RECORD_FILE,
    UnverifiedFile,
    folder_problems,
    open_folder,
    problem,
    read_record,
    remove,
    verified_bytes,
)
from ssh_ood.base.io_utils import load_json, save_json
from ssh_ood.base.paths import DEMO_DIR, REPO_ROOT
from ssh_ood.commands.cli import main
from ssh_ood.interpret.diagnostics import load_diagnostics
from ssh_ood.ood.population_tables import check_phase_diagrams, load_population
from ssh_ood.physics.datasets import dataset_specs

SHIPPED = ("100_CNNs", "100_CNNs_seed1", "models", "thermometer_comparison", "reference")


def test_writes_into_a_recorded_folder_are_recorded_and_reads_verify_them(tmp_path):
    save_json(tmp_path / "loose.json", {"a": 1})  # an unrecorded folder: nothing recorded, reads unchecked
    assert not (tmp_path / RECORD_FILE).exists() and load_json(tmp_path / "loose.json") == {"a": 1}
    folder = open_folder(tmp_path / "run", {"kind": "run", "preset": "smoke", "seed": 0})
    save_json(folder / "a.json", {"x": 1}, identity={"grid": {"n_W": 4}})
    entry = read_record(folder)["files"]["a.json"]
    assert entry["bytes"] == len((folder / "a.json").read_bytes()) and entry["identity"] == {"grid": {"n_W": 4}}
    assert load_json(folder / "a.json") == {"x": 1} and folder_problems(folder) == []
    assert problem(folder / "a.json", {"grid": {"n_W": 5}}) is not None  # another identity than expected
    (folder / "a.json").write_text('{"x": 2}\n')  # valid JSON, another value
    with pytest.raises(UnverifiedFile, match=r"a.json: content differs from its record"):
        load_json(folder / "a.json")
    (folder / "b.json").write_text("{}")
    with pytest.raises(UnverifiedFile, match=r"b.json: not in its folder's record"):
        load_json(folder / "b.json")
    remove(folder / "a.json")
    assert "a.json" not in read_record(folder)["files"]
    with pytest.raises(ValueError, match=r"files of another run \(seed: 0 there, 1 here\)"):
        open_folder(folder, {"kind": "run", "preset": "smoke", "seed": 1})
    (folder / RECORD_FILE).write_text("{not json")
    with pytest.raises(UnverifiedFile, match="files.json: unreadable"):
        verified_bytes(folder / "b.json")
    open_folder(folder, {"kind": "run", "preset": "smoke", "seed": 0})  # an unreadable record starts anew
    assert read_record(folder)["files"] == {}
    with pytest.raises(UnverifiedFile, match="no record of its files"):
        verified_bytes(tmp_path / "loose.json", required=True)


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    root = tmp_path_factory.mktemp("disk")
    folder, data = root / "pop", root / "data"
    assert main(["population", "--preset", "smoke", "--seed", "0", "--out", str(folder), "--data-dir", str(data),
                 "--quiet"]) == 0
    return folder


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
            and p.name != ".run.lock"}


@pytest.mark.parametrize("failing_write", [1, 2, 5])
def test_a_full_disk_leaves_the_previous_state_and_says_so(tmp_path, population, monkeypatch, capsys, failing_write):
    """The n-th write of a re-evaluation fails with ENOSPC: the command exits 2 with one line naming the file;
    each file left is the previous one or is caught by the record, and the same command then completes."""
    import shutil

    folder = tmp_path / "pop"
    shutil.copytree(population, folder)
    before = _snapshot(folder)
    real_fsync, calls = io_utils.os.fsync, [0]

    def fsync(fd):
        calls[0] += 1
        if calls[0] == failing_write:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(io_utils.os, "fsync", fsync)
    argv = ["evaluate", "--run", str(folder), "--which", "best", "--replace-evaluations", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0] and "previous file, if any, is unchanged" in err[0]
    after = _snapshot(folder)
    assert not [p for p in after if p.name.endswith(".tmp")]  # no temporary file left behind
    changed = [p for p in before if after.get(p) != before[p]]
    for path in changed:  # a file already replaced is the new evaluation's, or the record catches it
        assert path.name in (RECORD_FILE, "phase_diagram.npz", "generalization_metrics.json")
    if failing_write == 1:
        assert changed == []
    monkeypatch.setattr(io_utils.os, "fsync", real_fsync)
    assert main(argv) == 0
    reference = tmp_path / "reference"
    shutil.copytree(population, reference)
    assert main(["evaluate", "--run", str(reference), "--which", "best", "--replace-evaluations", "--quiet"]) == 0
    for model in ("model_000", "model_001"):
        assert folder_problems(folder / model) == []
        for name in ("phase_diagram.npz", "generalization_metrics.json"):
            assert (folder / model / name).read_bytes() == (reference / model / name).read_bytes()
    assert (folder / "stats.csv").read_bytes() == (reference / "stats.csv").read_bytes()


def test_two_runs_sharing_one_datasets_folder_write_each_file_once_and_read_the_same_data(tmp_path):
    data, log = tmp_path / "data", tmp_path / "generated.log"
    script = textwrap.dedent(f"""
        import sys
        from ssh_ood.physics import datasets
        real = datasets.generate_dataset
        def logged(split, n, W, seed, **kw):
            with open({str(log)!r}, "a") as fh:
                fh.write(f"{{split}} {{W}}\\n")
            return real(split, n, W, seed, **kw)
        datasets.generate_dataset = logged
        from ssh_ood.commands.cli import main
        sys.exit(main(sys.argv[1:]))
    """)
    runs = [subprocess.Popen([sys.executable, "-c", script, "population", "--preset", "smoke", "--seed", "0",
                              "--models", "0", "--train-only", "--out", str(tmp_path / f"run{k}"), "--data-dir", str(data),
                              "--quiet"], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for k in (0, 1)]
    results = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], results
    generated = log.read_text().splitlines()
    assert len(generated) == len(dataset_specs("smoke")) == len(set(generated))  # each file written once
    assert folder_problems(data) == []
    fingerprints = {json.loads((tmp_path / f"run{k}" / "model_000" / "config.json").read_text())["data_sha256"]
                    for k in (0, 1)}
    assert len(fingerprints) == 1  # both runs read the same data


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_folder_verifies_file_by_file(name):
    root = DEMO_DIR / name
    folders = [d for d in (root, *sorted(p for p in root.rglob("*") if p.is_dir()))
               if any(f.is_file() and not f.name.startswith(".") for f in d.iterdir())]
    assert folders
    problems = [p for folder in folders for p in folder_problems(folder)]
    assert problems == []


@pytest.mark.parametrize("name", ("100_CNNs", "100_CNNs_seed1"))
def test_shipped_populations_agree_with_their_model_folders(name):
    """stats.csv row by row, diagnostics.csv's training columns, and every phase diagram set (grid, MAE, RMSE)."""
    population = load_population(DEMO_DIR / name)  # checks stats.csv against the model folders
    assert len(population.indices) == 100
    check_phase_diagrams(population)
    assert len(load_diagnostics(DEMO_DIR / name)) == 100  # checks diagnostics.csv's training columns
