"""Trust nothing on disk: a fault-injection sweep over every file kind the commands read or skip.

One clean smoke pipeline (datasets, a two-model population with diagnostics, predictors and the precise-BN
study, the highlighted networks, the reproduce step stamps) is built once at a fixed place, saved, and put
back before every cell, so the absolute paths its manifests hold stay valid. A cell is (file kind, fault,
command): the file is damaged, the command runs in-process (``ssh_ood.commands.cli.main``; the notebook 06
loader as a call), and the outcome must be

* **repaired**: exit 0, and afterwards the file verifies against its folder's record and, where the
  pipeline is deterministic, holds the bytes of the clean run; or
* **refused**: a non-zero exit (or an exception from the loader) with one line that names the file;

never an exit 0 with the fault still there. The counts are printed in the test output, the matrix with
``pytest -s``, and a failing cell's assertion message holds the counts and the cells that failed. Faults:
deleted, truncated to half, zero-length, four bytes flipped, one field edited to another valid value (another
seed, index, epoch count or number, re-saved in the file's own format), and the same file copied in from
another run (a seed-1 population) or, where that run has none, from another model of this one. The three faults
that damage bytes in place (truncated, zero-length, flipped) go to the readers of a kind in turn, one each
(``FAULT_SWEEP_FULL=1``: all three to every reader).
"""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
import time
from collections import Counter
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import torch

from ssh_ood.base.file_records import RECORD_FILE, folder_problems, problem
from ssh_ood.base.io_utils import atomic_write_bytes, save_json
from ssh_ood.commands import reproduce, training_cli
from ssh_ood.commands.cli import main
from ssh_ood.ood.population import load_or_create_population

FAULTS = ("deleted", "truncated", "zero-length", "flipped", "edited", "copied")
#: the faults that damage bytes in place, which every reader meets in the same check (the bytes against the
#: folder's record): by default each command that reads a kind gets one of them, in turn, so that every pair
#: (kind, command) and every pair (kind, byte fault) with enough readers is swept; ``FAULT_SWEEP_FULL=1`` sweeps
#: each of them with every command (about 1.5x the time)
BYTE_FAULTS = ("truncated", "zero-length", "flipped")

# file kind -> (path relative to the pipeline root, the commands that read or skip it)
ROOT_FILES = {
    "data": "datasets/smoke",
    "pop": "runs/smoke_seed0/population",
    "hl": "runs/smoke_seed0/highlighted",
    "copies": "copies",
    "steps": "report/steps",
}
MODEL_READERS = ("train", "population", "evaluate", "highlight", "diagnose", "precise-bn", "reproduce", "loader")
KINDS = {
    "model/weights.pt": ("pop/model_000/weights.pt", ("train", "population", "evaluate", "highlight", "diagnose", "precise-bn", "reproduce")),
    "model/best_weights.pt": ("pop/model_000/best_weights.pt", ("train", "population", "evaluate", "precise-bn", "reproduce")),
    "model/config.json": ("pop/model_000/config.json", MODEL_READERS),
    "model/history.json": ("pop/model_000/history.json", MODEL_READERS + ("predict",)),
    "model/test_report.json": ("pop/model_000/test_report.json", MODEL_READERS + ("predict",)),
    "model/phase_diagram.npz": ("pop/model_000/phase_diagram.npz", ("population", "evaluate", "precise-bn", "reproduce")),
    "model/generalization_metrics.json": ("pop/model_000/generalization_metrics.json",
                                          ("population", "evaluate", "highlight", "precise-bn", "predict", "reproduce", "loader")),
    "model/files.json": ("pop/model_000/files.json", MODEL_READERS),
    "pop/stats.csv": ("pop/stats.csv", ("population", "evaluate", "highlight", "predict", "precise-bn", "reproduce", "loader")),
    "pop/manifest.json": ("pop/manifest.json", ("population", "evaluate", "highlight", "diagnose", "predict", "precise-bn", "loader")),
    "pop/summary.csv": ("pop/summary.csv", ("train", "population")),
    "pop/run.json": ("pop/run.json", ("train",)),
    "pop/diagnostics.csv": ("pop/diagnostics.csv", ("predict",)),
    "pop/files.json": ("pop/files.json", ("population", "evaluate", "highlight", "diagnose", "predict", "precise-bn", "reproduce", "loader")),
    "data/training_W0.npz": ("data/training_W0.npz", ("train", "precise-bn", "reproduce")),
    "data/test_W0.npz": ("data/test_W0.npz", ("highlight", "diagnose", "reproduce")),
    "data/datasets.json": ("data/datasets.json", ("train", "highlight", "diagnose", "reproduce")),
    "data/files.json": ("data/files.json", ("train", "highlight", "diagnose", "precise-bn", "reproduce")),
    "copy/weights.pt": ("copies/model_000/weights.pt", ("precise-bn",)),
    "copy/batchnorm_calibration.json": ("copies/model_000/batchnorm_calibration.json", ("precise-bn",)),
    "copy/phase_diagram.npz": ("copies/model_000/phase_diagram.npz", ("precise-bn",)),
    "highlighted/selection.json": ("hl/selection.json", ("reproduce",)),
    "highlighted/model weights.pt": ("hl/well_good/weights.pt", ("reproduce",)),
    "stamp/population": ("steps/population_(train_+_OOD_evaluation).json", ("reproduce",)),
}
# files rewritten with content that depends on the time (their repair is checked by verification only)
UNSTABLE = {"manifest.json", RECORD_FILE, "selection.json", "population_(train_+_OOD_evaluation).json"}


def _path(root: Path, where: str) -> Path:
    head, _, rest = where.partition("/")
    return root / ROOT_FILES[head] / rest


def _commands(root: Path) -> dict[str, list[str] | None]:
    p, d = _path(root, "pop/"), _path(root, "data/")
    return {
        "train": ["train", "--preset", "smoke", "--seed", "0", "--n-models", "2", "--out", str(p), "--data", str(d),
                  "--workers", "1", "--quiet"],
        "population": ["population", "--preset", "smoke", "--seed", "0", "--out", str(p), "--data-dir", str(d), "--quiet"],
        "evaluate": ["evaluate", "--run", str(p), "--quiet"],
        "highlight": ["highlight", "--population", str(p), "--preset", "smoke", "--data", str(d), "--out",
                      str(_path(root, "hl/")), "--quiet"],
        "diagnose": ["diagnose", "--population", str(p), "--data-dir", str(d), "--quiet"],
        "predict": ["predict", "--population", str(p)],
        "precise-bn": ["precise-bn", "--population", str(p), "--copies", str(_path(root, "copies/")), "--quiet"],
        "reproduce": ["reproduce", "--preset", "smoke", "--seed", "0", "--out", str(root), "--quiet"],
        "loader": None,
    }


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """The clean pipeline, built at ``work`` and saved in ``clean``; another run (seed 1) for copied files."""
    cpu = _cpu_seconds()
    base = tmp_path_factory.mktemp("sweep")
    work, clean, other = base / "work", base / "clean", base / "other"
    patch = pytest.MonkeyPatch()
    steps = reproduce.pipeline_steps()[:3]  # data, population, highlight: the steps whose stamps guard work
    patch.setattr(reproduce, "pipeline_steps", lambda: steps)
    patch.setattr(reproduce, "write_report", lambda ctx, records: ctx.report_dir / "report.md")
    # the train command's training-curve figures, which nothing reads back, as placeholders: drawing them would
    # take most of a redo
    patch.setattr(training_cli, "save_training_curves", lambda model_dir: [
        atomic_write_bytes(Path(model_dir) / f"training_curve.{ext}", b"placeholder") for ext in ("pdf", "png")])
    commands = _commands(work)
    for name in ("reproduce", "diagnose", "predict", "precise-bn"):
        assert _run(commands[name])[0] == 0, name
    assert _run(["population", "--preset", "smoke", "--seed", "1", "--models", "0", "--out", str(other / "pop"),
                 "--data-dir", str(other / "data"), "--quiet"])[0] == 0
    shutil.copytree(work, clean)
    print(f"\nclean pipeline built in {_cpu_seconds() - cpu:.1f} s of CPU")
    yield work, clean, other
    patch.undo()


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return sum(u.ru_utime + u.ru_stime for u in usage)


def _restore(clean: Path, work: Path) -> None:
    """Put the clean pipeline back at ``work`` as hard links: every writer of the project replaces files
    (a new inode, :func:`ssh_ood.base.atomic_files.replace_atomically`) and every fault below unlinks first, so the
    clean files are never changed through a link. The folder locks, written in place, are left out."""
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(clean, work, copy_function=os.link, ignore=shutil.ignore_patterns(".run.lock"))


def _write(path: Path, data: bytes) -> None:
    path.unlink(missing_ok=True)  # a new inode: the clean copy behind a hard link stays as it was
    path.write_bytes(data)


def _run(argv: list[str] | None, root: Path | None = None) -> tuple[int, str]:
    """Exit status and stderr of a command run in-process (``None``: the notebook 06 loader)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        if argv is None:
            try:
                load_or_create_population(_path(root, "pop/"), "smoke", create=False)
            except (ValueError, OSError) as exc:
                return 1, f"error: {exc}"
            return 0, ""
        code = main(argv)
    return code, err.getvalue() + (out.getvalue() if code else "")


def _edit(path: Path) -> None:
    """Change one field to another valid value (another preset, seed, index, number), keeping the format."""
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        if path.name == RECORD_FILE:
            data["identity"] = {**data["identity"], "seed": data["identity"].get("seed", 0) + 1}
        else:
            key = next(k for k in ("index", "seed", "base_seed", "epochs_run", "accuracy", "mae", "step", "kind",
                                   "source_weights_sha256", "rule") if k in data)
            value = data[key]
            data[key] = (value + 1 if isinstance(value, int) and not isinstance(value, bool)
                         else value * 0.5 if isinstance(value, float) else "other" if isinstance(value, str) else {})
        _write(path, json.dumps(data, indent=2).encode())
    elif path.suffix == ".csv":
        lines = path.read_text().splitlines()
        cells = lines[1].split(",")
        cells[2] = str(int(cells[2]) + 1) if cells[2].isdigit() else "0.123"
        lines[1] = ",".join(cells)
        _write(path, ("\n".join(lines) + "\n").encode())
    elif path.suffix == ".pt":
        state = torch.load(path, weights_only=True)
        name = next(iter(state))
        state[name] = state[name] * 1.5 if state[name].is_floating_point() else state[name] + 1
        buffer = io.BytesIO()
        torch.save(state, buffer)
        _write(path, buffer.getvalue())
    elif path.suffix == ".npz":
        import numpy as np

        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        arrays["seed"] = np.asarray(arrays["seed"]) + 1
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        _write(path, buffer.getvalue())
    else:
        raise AssertionError(f"no edit for {path}")


def _fault(path: Path, fault: str, other: Path | None) -> bool:
    """Apply ``fault`` to ``path``; False where it does not apply (no file of that kind elsewhere)."""
    data = path.read_bytes()
    if fault == "deleted":
        path.unlink()
    elif fault == "truncated":
        _write(path, data[: len(data) // 2])
    elif fault == "zero-length":
        _write(path, b"")
    elif fault == "flipped":
        middle = len(data) // 2
        _write(path, data[:middle] + bytes(b ^ 0x5A for b in data[middle:middle + 4]) + data[middle + 4:])
    elif fault == "edited":
        _edit(path)
    elif fault == "copied":
        if other is None or not other.is_file():
            return False
        _write(path, other.read_bytes())
    return True


def _other_file(kind: str, path: Path, other: Path) -> Path | None:
    """A valid file of the same name from another run (seed 1) or, where that run has none, another model."""
    rel = KINDS[kind][0]
    head, _, rest = rel.partition("/")
    candidates = {"pop": other / "pop" / rest, "data": other / "data" / rest}
    source = candidates.get(head)
    if source is not None and source.is_file():
        return source
    sibling = Path(str(path).replace("model_000", "model_001"))
    return sibling if sibling != path and sibling.is_file() else None


def _outcome(code: int, message: str, path: Path, clean_bytes: bytes) -> str:
    if code != 0:  # one error line naming the file or its folder (reproduce adds a line of what to do)
        errors = [line for line in message.splitlines() if line.startswith("error:")]
        names_it = len(errors) == 1 and (path.name in errors[0] or str(path.parent) in errors[0])
        return "refused" if names_it and "Traceback" not in message else f"refused badly: {message!r}"
    if path.name == RECORD_FILE:
        return "repaired" if not folder_problems(path.parent) else "SILENT"
    if problem(path) is not None:
        return "SILENT"
    if path.name not in UNSTABLE and path.read_bytes() != clean_bytes:
        return "SILENT (differs from the clean run)"
    return "repaired"


def test_every_fault_is_repaired_or_refused_by_every_command_that_reads_or_skips_the_file(pipeline, capsys):
    work, clean, other = pipeline
    commands = _commands(work)
    started, cpu = time.perf_counter(), _cpu_seconds()
    results: dict[tuple[str, str, str], str] = {}
    full = os.environ.get("FAULT_SWEEP_FULL") == "1"
    for kind, (rel, readers) in KINDS.items():
        clean_path = _path(clean, rel)
        clean_bytes = clean_path.read_bytes()
        for fault in FAULTS:
            for position, command in enumerate(readers):
                if not full and fault in BYTE_FAULTS and BYTE_FAULTS[position % len(BYTE_FAULTS)] != fault:
                    continue
                _restore(clean, work)
                path = _path(work, rel)
                if not _fault(path, fault, _other_file(kind, path, other)):
                    continue
                code, message = _run(commands[command], work)
                results[kind, fault, command] = _outcome(code, message, path, clean_bytes)
                if os.environ.get("FAULT_SWEEP_TRACE"):
                    print(f"{time.perf_counter() - started:7.1f} s {kind} {fault} {command}: {results[kind, fault, command]}"
                          f" | {message.strip()[-300:]}", flush=True)
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    counts = Counter(outcome.split(":")[0] for outcome in results.values())
    summary = (f"fault sweep{' (full)' * full}: {len(results)} cells ({len(KINDS)} file kinds x {len(FAULTS)} faults x "
               f"the commands reading each) in {seconds:.1f} s ({cpu:.1f} s of CPU): {dict(counts)}")
    with capsys.disabled():  # the counts show in the normal test output; the matrix below with `pytest -s`
        print(f"\n{summary}")
    for kind in KINDS:
        for fault in FAULTS:
            row = {c: results[kind, fault, c] for c in commands if (kind, fault, c) in results}
            if row:
                print(f"  {kind:34s} {fault:12s} " + "  ".join(f"{c}={o[:8]}" for c, o in row.items()))
    bad = {cell: outcome for cell, outcome in results.items() if outcome not in ("repaired", "refused")}
    assert not bad, f"{len(bad)} of {len(results)} cells neither repaired nor refused ({dict(counts)}): {bad}"


# ----------------------------------------------------------------------------------------------
# the security kinds: a path from a file, a symbolic link, a foreign model, kill -9 with live workers (each stop
# signal to each server is tests/test_servers.py's). A cell is refused (one error line naming the file or folder) or harmless (exit 0, and
# nothing written outside the folders named on the command line or through the link, no foreign model in the
# tables, no worker or server process left); anything else is UNSAFE.
# ----------------------------------------------------------------------------------------------
def _manifest_path_outside(work: Path, outside: Path) -> Path:
    path = _path(work, "pop/manifest.json")
    manifest = json.loads(path.read_text())
    manifest["data_dir"] = str(outside / "datasets")
    path.unlink()  # a new inode: the clean copy stays as it was
    save_json(path, manifest)  # re-recorded: records are integrity checks, not signatures
    return path


def _lock_linked(work: Path, outside: Path) -> Path:
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "precious").write_text("keep me")
    lock = _path(work, "pop/.run.lock")
    lock.unlink(missing_ok=True)
    lock.symlink_to(outside / "precious")
    return lock


def _model_linked(work: Path, outside: Path) -> Path:
    model = _path(work, "pop/model_001")
    outside.mkdir(parents=True, exist_ok=True)
    shutil.copytree(model, outside / "model_001")
    shutil.rmtree(model)
    (outside / "model_001" / "generalization_metrics.json").unlink()  # to be redone: a write through the link
    model.symlink_to(outside / "model_001", target_is_directory=True)
    return model


def _foreign_model(source: Callable[[Path], Path]) -> Callable[[Path, Path], Path]:
    def apply(work: Path, outside: Path) -> Path:
        model = _path(work, "pop/model_001")
        shutil.rmtree(model)
        shutil.copytree(source(work), model)
        return model
    return apply


def _harmless(kind: str, work: Path, outside: Path, before: dict) -> str | None:
    """Why an exit 0 of a cell of ``kind`` is not harmless, or None."""
    after = {str(p): p.read_bytes() for p in sorted(outside.rglob("*")) if p.is_file()} if outside.exists() else {}
    if after != before:
        return "wrote outside the folders it was given"
    stats = _path(work, "pop/stats.csv")
    if kind.startswith("foreign") and stats.is_file():
        import pandas as pd

        table = pd.read_csv(stats)
        if table["model_index"].duplicated().any() or (table["model_seed"] >= 1_000_000).any():
            return "a foreign model in stats.csv"
    return None


SECURITY_KINDS: dict[str, tuple[Callable[[Path, Path], Path], tuple[str, ...]]] = {
    "path from a file/manifest data_dir": (_manifest_path_outside, ("diagnose*", "precise-bn", "population", "loader")),
    "symlink/.run.lock": (_lock_linked, ("train", "population", "evaluate", "diagnose", "precise-bn")),
    "symlink/model folder": (_model_linked, ("population", "evaluate", "precise-bn", "loader")),
    "foreign model/another run": (_foreign_model(lambda work: work.parent / "other" / "pop" / "model_000"),
                                  ("train", "population", "evaluate", "highlight", "loader")),
    "foreign model/duplicate": (_foreign_model(lambda work: _path(work, "pop/model_000")),
                                ("train", "population", "evaluate", "highlight", "loader")),
}


def test_every_security_fault_is_refused_or_harmless(pipeline, capsys, tmp_path):
    from tests.test_security import kill_population_with_live_workers

    work, clean, _ = pipeline
    outside = work.parent / "outside"
    commands = {**_commands(work), "diagnose*": ["diagnose", "--population", str(_path(work, "pop/")), "--quiet"]}
    started = time.perf_counter()
    results: dict[tuple[str, str], str] = {}
    for kind, (apply, readers) in SECURITY_KINDS.items():
        for command in readers:
            _restore(clean, work)
            shutil.rmtree(outside, ignore_errors=True)
            path = apply(work, outside)
            before = {str(p): p.read_bytes() for p in sorted(outside.rglob("*")) if p.is_file()} if outside.exists() else {}
            code, message = _run(commands[command], work)
            if code != 0:
                errors = [line for line in message.splitlines() if line.startswith("error:")]
                named = len(errors) == 1 and (path.name in errors[0] or str(path.parent) in errors[0])
                results[kind, command] = "refused" if named and "Traceback" not in message else f"refused badly: {message!r}"
            else:
                why = _harmless(kind, work, outside, before)
                results[kind, command] = "harmless" if why is None else f"UNSAFE: {why}"
    _restore(clean, work)
    for name, workers in (("training pool", []), ("dask workers", ["--workers", "2"])):
        alive, ended, later = kill_population_with_live_workers(tmp_path / name.replace(" ", "_"), workers)
        results["kill -9 with live workers", name] = ("stopped" if not alive and later == ended else
                                                      f"UNSAFE: {len(alive)} alive, wrote after: {later != ended}")
    counts = Counter(outcome.split(":")[0] for outcome in results.values())
    with capsys.disabled():
        print(f"\nsecurity sweep: {len(results)} cells in {time.perf_counter() - started:.1f} s: {dict(counts)}")
        for kind in dict.fromkeys(k for k, _ in results):
            print(f"  {kind:38s} " + "  ".join(f"{c}={o[:9]}" for (k, c), o in results.items() if k == kind))
    bad = {cell: outcome for cell, outcome in results.items() if outcome not in ("refused", "harmless", "stopped")}
    assert not bad, f"{len(bad)} of {len(results)} security cells neither refused nor harmless: {bad}"
