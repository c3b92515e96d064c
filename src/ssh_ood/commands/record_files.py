"""``python -m ssh_ood record-files FOLDER``: record the files of a folder written before records existed.

Folders written by this version are recorded as they are written (:mod:`ssh_ood.base.file_records`). A folder
written earlier (the data shipped in ``00_demonstrations_data``, an old run) has no ``files.json``; its readers
refuse it and its skips redo it. When the folder is trusted as it is, this command records it: every folder
under ``FOLDER`` that holds files gets a record of their hashes, with an identity read from its own files
(a model folder: preset, seed and index of ``config.json``; a run or population: preset and seed; a datasets
folder: those of ``datasets.json``), and then the folder is read back through the project's readers (models
loaded, the population's ``stats.csv`` checked against its model folders, every dataset loaded), so a folder
whose content is inconsistent is refused and keeps no record. Writing into the shipped data needs
``--allow-shipped``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..base.file_records import RECORD_FILE, folder_problems, record_existing
from ..base.run_folders import hold_folder


def _raw_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable ({type(exc).__name__}); cannot record its folder") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object; cannot record its folder")
    return data


def _identity_and_check(folder: Path):
    """The identity to record ``folder`` with, the per-file identities, and the check to run once recorded."""
    from ..nets.model_folders import check_complete, load_config, load_model, model_identity, training_outcome
    from ..nets.training_run import run_identity
    from ..ood.model_evaluation import METRICS_FILE, PHASE_DIAGRAM_FILE, load_metrics, load_result

    if (folder / "config.json").is_file() and (folder / "weights.pt").is_file():
        metrics = folder / METRICS_FILE
        extra = {}
        if metrics.is_file():
            stored = _raw_json(metrics)
            evaluation = {"grid": stored.get("grid"), "weights": stored.get("weights", "last")}
            extra = {METRICS_FILE: evaluation, PHASE_DIAGRAM_FILE: evaluation}

        def check() -> None:
            check_complete(folder)
            load_config(folder)
            load_model(folder, "last")
            load_model(folder, "best")
            training_outcome(folder)
            if metrics.is_file():
                load_metrics(folder)
                load_result(folder)

        return model_identity(_raw_json(folder / "config.json")), extra, check
    if (folder / "datasets.json").is_file():
        from ..physics.datasets import dataset_specs, load_split

        manifest = _raw_json(folder / "datasets.json")

        def check() -> None:
            for spec in dataset_specs(manifest["preset"]):
                load_split(folder, spec.split, spec.W, preset=manifest["preset"])

        return {"kind": "datasets", "preset": manifest.get("preset"), "seed": manifest.get("seed")}, {}, check
    for name in ("manifest.json", "run.json"):
        if (folder / name).is_file():
            stored = _raw_json(folder / name)
            seed = stored.get("seed", stored.get("base_seed"))

            def check() -> None:
                from ..interpret.diagnostics import DIAGNOSTICS_FILE, load_diagnostics
                from ..ood.population_tables import STATS_FILE, check_phase_diagrams, load_population

                if (folder / STATS_FILE).is_file():
                    check_phase_diagrams(load_population(folder))
                if (folder / DIAGNOSTICS_FILE).is_file():
                    load_diagnostics(folder)

            return run_identity(stored.get("preset"), seed), {}, check
    if (folder / "selection.json").is_file():
        return {"kind": "highlighted"}, {}, lambda: None
    return {"kind": "results"}, {}, lambda: None


def record_folder_tree(root: str | Path) -> list[Path]:
    """Record every folder under ``root`` (deepest first, so a population is checked after its models);
    returns the records written. ``ValueError`` naming the folder and problem if one does not read back."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    folders = [d for d in sorted({root, *(p for p in root.rglob("*") if p.is_dir())}, key=lambda d: -len(d.parts))
               if any(f.is_file() and f.name != RECORD_FILE and not f.name.startswith(".") for f in d.iterdir())]
    written = []
    with hold_folder(root):
        for folder in folders:
            identity, extra, check = _identity_and_check(folder)
            record = record_existing(folder, identity, extra)
            try:
                check()
            except (ValueError, FileNotFoundError):
                record.unlink()
                raise
            problems = folder_problems(folder)
            if problems:
                record.unlink()
                raise ValueError(problems[0])
            written.append(record)
    return written


def add_record_files_parser(subparsers, parents: list[argparse.ArgumentParser]) -> None:
    """Register ``python -m ssh_ood record-files``."""
    parser = subparsers.add_parser(
        "record-files", parents=parents,
        help="record the file hashes of a trusted folder written before records existed (e.g. shipped data)",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("folder", type=Path, help="the folder; every folder under it is recorded")
    parser.set_defaults(func=_run_record_files)


def _run_record_files(args: argparse.Namespace) -> int:
    written = record_folder_tree(args.folder)
    print(f"recorded {len(written)} folders under {args.folder} (each checked by reading it back)")
    return 0
