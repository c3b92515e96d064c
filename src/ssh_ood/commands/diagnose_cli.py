"""``python -m ssh_ood diagnose``: the command line of :mod:`ssh_ood.interpret.diagnostics`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..base.file_records import read_record
from ..base.io_utils import load_json
from ..interpret.diagnostics import diagnose_population, load_diagnostics


def add_diagnose_parser(subparsers, parents: list[argparse.ArgumentParser]) -> None:
    """Register ``python -m ssh_ood diagnose``."""
    parser = subparsers.add_parser(
        "diagnose", parents=parents,
        help="clean-data diagnostics of every network of a population (no out-of-distribution data)",
        description="Compute CAM, PCA, weak-disorder, intervention and training diagnostics of each network from "
        "the clean and perturbative test sets (W <= 0.05) only, and write diagnostics.csv beside stats.csv.",
    )
    parser.add_argument("--population", type=Path, required=True, help="population folder (model_XXX subfolders)")
    parser.add_argument("--models", default=None, help="models, e.g. 0-9 (default: every trained model)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="datasets folder (default: the population manifest's; generated from its seed if missing)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run_diagnose)


def _run_diagnose(args: argparse.Namespace) -> int:
    from ..base.presets import get_preset
    from ..ood.population_datasets import population_datasets
    from ..ood.population_settings import parse_model_indices
    from ..ood.population_tables import MANIFEST_FILE
    from ..physics.datasets import ensure_datasets

    manifest_path = args.population / MANIFEST_FILE
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path}: not a population folder (no manifest.json)")
    read_record(args.population)
    manifest = load_json(manifest_path)
    preset = get_preset(manifest["preset"])
    indices = None if args.models is None else parse_model_indices(args.models, preset.n_models)
    data_dir, writable = population_datasets(args.population, manifest, args.data_dir)  # a path from a file is data
    if writable:
        ensure_datasets(preset, int(manifest["seed"]), data_dir, progress=not args.quiet)
    path = diagnose_population(args.population, data_dir, indices, progress=not args.quiet)
    print(f"wrote {path} ({len(load_diagnostics(args.population))} models)")
    return 0
