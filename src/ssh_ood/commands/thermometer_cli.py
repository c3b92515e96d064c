"""``python -m ssh_ood thermometer-compare``: train, evaluate and draw the real-valued vs thermometer comparison.

The experiment is :mod:`ssh_ood.ood.thermometer_experiment`, its figure
:func:`ssh_ood.figures.thermometer_figures.figure_encoding_comparison`; this module writes both to ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..base.figure_files import save_figure
from ..base.file_records import open_folder
from ..base.io_utils import atomic_write_bytes, save_json
from ..base.paths import datasets_dir
from ..base.presets import PRESET_NAMES, get_preset
from ..base.provenance import git_state
from ..base.run_folders import hold_folder
from ..figures.thermometer_figures import figure_encoding_comparison
from ..ood.thermometer_experiment import (
    BATCHNORM_MODES,
    COMPARED_COLUMNS,
    compare_encodings,
    comparison_command,
    default_comparison_dir,
    summarize_comparison,
)
from ..physics.datasets import write_datasets
from .arguments import seed_argument


def add_thermometer_parser(subparsers, parents: list[argparse.ArgumentParser]) -> None:
    """Register ``python -m ssh_ood thermometer-compare``."""
    parser = subparsers.add_parser(
        "thermometer-compare", parents=parents,
        help="train and evaluate real-valued vs thermometer-encoded ensembles with the same seeds",
        description="Train n models on the real-valued observables and n on their thermometer encoding (same "
        "seeds, recipe and data), evaluate both on the generalization grid, and write comparison.csv, "
        "comparison.json and Fig_thermometer_generalization (PDF + PNG) to --out. Resumable.",
    )
    parser.add_argument("--preset", choices=PRESET_NAMES, default="quick", help="recipe, data and grid (default: quick)")
    parser.add_argument("--seed", type=seed_argument, default=0, help="run seed (default: 0)")
    parser.add_argument("--models", type=int, default=None, help="models per encoding (default: the preset's)")
    parser.add_argument("--levels", type=int, default=None, help="thermometer channels L (default: the preset's)")
    parser.add_argument("--data-dir", type=Path, default=None, help="datasets folder (default: the preset's; made if missing)")
    parser.add_argument("--out", type=Path, default=None,
                        help="run folder (default: 00_demonstrations_data/runs/thermometer_<preset>_seed<seed>)")
    parser.add_argument("--real-valued-from", type=Path, default=None,
                        help="reuse the real-valued models of this finished and evaluated run with the same preset "
                        "and seed, e.g. a population folder; it is only read, so a shipped population is fine "
                        "(default: train them under --out)")
    parser.add_argument("--batchnorm", choices=BATCHNORM_MODES, default="running",
                        help="running: evaluate the networks as trained; precise: with BatchNorm statistics "
                        "averaged over the training set (output names get the suffix _precise_bn) (default: running)")
    parser.add_argument("--threshold", type=float, default=0.2, help="well generalizing iff RMSE <= this (default 0.2)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run_thermometer_compare)


def _run_thermometer_compare(args: argparse.Namespace) -> int:
    preset = get_preset(args.preset)
    n_models = args.models if args.models is not None else preset.thermometer_compare_models
    levels = args.levels if args.levels is not None else preset.thermometer_compare_levels
    data_dir = args.data_dir or datasets_dir(preset.name)
    out = args.out or default_comparison_dir(preset.name, args.seed)
    with hold_folder(out):  # first: a busy, unwritable or shipped folder fails before any work
        open_folder(out, {"kind": "results"})  # its tables and figures enter the folder's record of files
        write_datasets(preset, args.seed, data_dir, progress=not args.quiet)
        table = compare_encodings(preset, args.seed, n_models, levels, data_dir, out, progress=not args.quiet,
                                  real_valued_dir=args.real_valued_from, batchnorm=args.batchnorm)
        suffix = "_precise_bn" if args.batchnorm == "precise" else ""
        atomic_write_bytes(out / f"comparison{suffix}.csv", table.to_csv(index=False, lineterminator="\n").encode())
        summary = summarize_comparison(table, args.threshold)
        command = comparison_command(preset.name, args.seed, n_models, levels, args.batchnorm, args.threshold)
        save_json(out / f"comparison{suffix}.json", {"command": command, "preset": preset.name, "seed": args.seed,
                                                     "levels": levels, "n_models": n_models, "batchnorm": args.batchnorm,
                                                     "commit": git_state()["commit"], **summary})
        figure = figure_encoding_comparison(table, args.threshold, batchnorm=args.batchnorm,
                                            run=f"{preset.name} preset, seed {args.seed}")
        save_figure(figure, f"Fig_thermometer_generalization{suffix}", out)
    for encoding, entry in summary["encodings"].items():
        print(f"{encoding:18s} n={entry['n_models']:3d}  well generalizing {entry['well_generalizing_fraction']:.2f}")
        for column in COMPARED_COLUMNS:
            m = entry[column]
            print(f"    {column:15s} min {m['min']:.3f}  median {m['median']:.3f}  max {m['max']:.3f}")
    for column, paired in summary["paired"].items():
        p = "n/a" if paired["wilcoxon_p"] is None else f"{paired['wilcoxon_p']:.3g}"
        print(f"paired {column:15s} median difference {paired['median_difference']:+.3f}  Wilcoxon p = {p}")
    print(f"wrote {out / f'comparison{suffix}.csv'}")
    return 0
