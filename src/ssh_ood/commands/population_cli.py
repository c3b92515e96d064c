"""``python -m ssh_ood population`` and ``python -m ssh_ood evaluate``: the command line of :mod:`ssh_ood.ood.population`."""

from __future__ import annotations

import argparse
import socket
import time
from pathlib import Path

import pandas as pd

from ..base.file_records import is_recorded, read_record
from ..base.io_utils import load_json_object
from ..base.presets import PRESET_NAMES, get_preset
from ..base.run_folders import hold_folder
from ..figures.training_figures import save_training_curves
from ..nets.model_folders import check_undamaged, is_complete, load_config, model_dir_name
from ..nets.recipes import DEFAULT_RECIPE, RECIPE_NAMES
from ..ood.generalization import GeneralizationGrid
from ..ood.generalization_metrics import (
    CUT_METRICS,
    DEFAULT_CUT_METRIC,
    DEFAULT_THRESHOLD,
    GeneralizationCut,
)
from ..ood.model_evaluation import METRICS_FILE, WEIGHT_FILES, evaluate_model_dirs, is_evaluated
from ..ood.population import run_population
from ..ood.population_manifest import record_evaluation
from ..ood.population_settings import PopulationSettings, default_population_dir, parse_model_indices
from ..ood.population_tables import MANIFEST_FIELDS, MANIFEST_FILE, load_population
from .arguments import seed_argument


def add_population_parser(subparsers, parents: list[argparse.ArgumentParser]) -> None:
    """Register ``python -m ssh_ood population`` and ``python -m ssh_ood evaluate``."""
    parser = subparsers.add_parser(
        "population", parents=parents,
        help="train and evaluate a population of CNNs (the paper's 100), resumable, optionally on Dask",
        description="Train N CNNs with the paper's recipe, evaluate each on the generalization grid, and write "
        "per-model folders, stats.csv and manifest.json.",
    )
    parser.add_argument("--preset", choices=PRESET_NAMES, default="quick", help="run size (default: quick)")
    parser.add_argument("--seed", type=seed_argument, default=0, help="population seed: data, model seeds, grid (default: 0)")
    parser.add_argument("--out", type=Path, default=None,
                        help="population folder (default: 00_demonstrations_data/runs/<preset>_seed<seed>_population)")
    parser.add_argument("--models", default=None, help="models to handle, e.g. 0-24 or 0-3,7 (default: all of the preset)")
    parser.add_argument("--data-dir", type=Path, default=None, help="datasets folder (default: the preset's; made if missing)")
    parser.add_argument("--scheduler", default=None, help="Dask scheduler address tcp://HOST:PORT to run chunks on")
    parser.add_argument("--workers", type=int, default=1, help="without --scheduler: local Dask worker processes (default 1: in-process)")
    parser.add_argument("--chunk-size", type=int, default=None, help="models per Dask task (default: spread over the workers)")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    parser.add_argument("--recipe", choices=RECIPE_NAMES, default=DEFAULT_RECIPE,
                        help="training recipe (default: paper; see ssh_ood.nets.recipes for each one's hypothesis)")
    _add_cut_arguments(parser)
    parser.add_argument("--train-only", action="store_true",
                        help="train without evaluating on the generalization grid (evaluate later with the same command)")
    parser.add_argument("--training-figures", action="store_true",
                        help="draw each model's training_curve.pdf/png from its history.json")
    parser.add_argument("--replace-evaluations", action="store_true",
                        help="re-evaluate models evaluated on another grid (default: refused)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run_population_cli)

    evaluate = subparsers.add_parser(
        "evaluate", parents=parents,
        help="evaluate trained models of a run folder on the generalization grid",
        description="Write phase_diagram.npz and generalization_metrics.json into each model folder of a run.",
    )
    evaluate.add_argument("--run", type=Path, required=True, help="run folder with model_XXX subfolders")
    evaluate.add_argument("--models", default=None, help="models, e.g. 0-3 (default: every trained model of the run)")
    evaluate.add_argument("--preset", choices=PRESET_NAMES, default=None, help="grid of this preset (default: the models')")
    evaluate.add_argument("--seed", type=seed_argument, default=0, help="disorder seed of the grid (default: 0)")
    evaluate.add_argument("--which", choices=tuple(WEIGHT_FILES), default="last", help="weights to evaluate (default: last)")
    _add_cut_arguments(evaluate)
    evaluate.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    evaluate.add_argument("--threads", type=int, default=1, help="torch threads for inference (default 1)")
    evaluate.add_argument("--replace-evaluations", action="store_true",
                          help="re-evaluate every evaluated model of the run on this grid and rewrite stats.csv and "
                          "manifest.json (default: a run evaluated on another grid or weights is refused)")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.set_defaults(func=_run_evaluate_cli)


def _add_cut_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cut-metric", choices=CUT_METRICS, default=DEFAULT_CUT_METRIC,
                        help="diagram error of the well-generalizing cut (default mae: the paper's cut on the metric "
                        "its 'RMSE' column behaves like; rmse applies the number to a true RMSE)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help="well generalizing iff the cut metric <= this (default 0.2, the paper's)")


def _cut(args: argparse.Namespace) -> GeneralizationCut:
    return GeneralizationCut(args.cut_metric, args.threshold)


def _run_population_cli(args: argparse.Namespace) -> int:
    preset = get_preset(args.preset)
    out = args.out if args.out is not None else default_population_dir(preset.name, args.seed)
    indices = None if args.models is None else parse_model_indices(args.models, preset.n_models)
    settings = PopulationSettings(
        preset, args.seed, out, model_indices=indices, data_dir=args.data_dir, scheduler=args.scheduler,
        workers=args.workers, chunk_size=args.chunk_size, device=args.device, cut=_cut(args),
        progress=not args.quiet, train_only=args.train_only,
        replace_evaluations=args.replace_evaluations, recipe=args.recipe,
    )
    stats_path = run_population(settings)
    if args.training_figures:
        with hold_folder(out):
            for index in range(preset.n_models) if indices is None else indices:
                save_training_curves(settings.model_dir(index))
    if args.train_only:
        print(f"trained; evaluate later with the same command without --train-only ({out})")
        return 0
    stats = pd.read_csv(stats_path)
    print(stats[["model_index", "epochs_run", "test_accuracy", "ood_accuracy", "mae", "rmse", "ssim", "well_generalizing"]]
          .to_string(index=False))
    for metric in CUT_METRICS:
        cut = GeneralizationCut(metric, args.threshold)
        print(f"{int((stats[metric] <= cut.threshold).sum())} of {len(stats)} models well generalizing ({cut.label})")
    print(f"wrote {stats_path}")
    return 0


def _population_manifest(run: Path) -> dict | None:
    """The manifest of a population folder, verified (the folder must be recorded and, once its record lists
    a manifest, hold it); None for a plain run folder. A manifest cannot be redone (it holds the history of
    the population's runs), so one that does not verify is refused."""
    path = run / MANIFEST_FILE
    if not path.is_file() and not (is_recorded(run) and MANIFEST_FILE in read_record(run)["files"]):
        return None
    read_record(run)
    return load_json_object(path, MANIFEST_FIELDS)


def _stats_agree(run: Path) -> bool:
    """Whether the run's ``stats.csv`` verifies and summarizes its model folders (else it is rewritten)."""
    try:
        load_population(run)
    except (ValueError, FileNotFoundError):
        return False
    return True


def _run_evaluate_cli(args: argparse.Namespace) -> int:
    started = time.time()
    run = args.run
    if not run.is_dir():
        raise FileNotFoundError(f"{run}: run folder not found")
    folders = [d for d in run.glob("model_*") if d.name[len("model_"):].isdigit()]
    check_undamaged(sorted(folders))  # a damaged model is refused, never silently left out
    trained = sorted(d for d in folders if is_complete(d))
    if args.models is None:
        dirs = trained
        if not dirs:
            raise FileNotFoundError(f"{run}: no trained model folders (model_XXX)")
    else:
        size = 1 + max((int(d.name[len("model_"):]) for d in folders), default=-1)
        dirs = [run / model_dir_name(i) for i in parse_model_indices(args.models, max(size, 1))]
    manifest_path = run / MANIFEST_FILE
    manifest = _population_manifest(run)  # before any work: a population whose manifest does not verify is refused
    preset = args.preset if args.preset is not None else load_config(dirs[0])["preset"]
    grid = GeneralizationGrid.from_preset(preset, args.seed)
    if args.replace_evaluations:  # every evaluated model follows: the folder keeps results of one grid
        dirs = sorted({*dirs, *(d for d in trained if (d / METRICS_FILE).is_file())})
    stale = [d for d in dirs if not is_evaluated(d, grid, args.which)]
    summaries = evaluate_model_dirs(
        dirs, grid, which=args.which, cut=_cut(args), device=args.device,
        inference_threads=args.threads, progress=not args.quiet, replace=args.replace_evaluations,
    )
    if manifest is not None:
        described = (manifest["grid"], manifest.get("evaluated_weights"), GeneralizationCut.stored_in(manifest))
        if stale or described != (grid.to_dict(), WEIGHT_FILES[args.which], _cut(args)) or not _stats_agree(run):
            entry = {"started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)), "command": "evaluate",
                     "models_done_now": [int(d.name[len("model_"):]) for d in stale],
                     "wall_time_s": round(time.time() - started, 3), "host": socket.gethostname()}
            print(f"rewrote {record_evaluation(run, grid, args.which, _cut(args), entry)} and {manifest_path}")
    print(f"{'model':12s}{'ood acc':>9s}{'clean acc':>11s}{'mae':>8s}{'rmse':>8s}{'ssim':>8s}  well ({_cut(args).label})")
    for model_dir, summary in zip(dirs, summaries, strict=True):
        print(f"{model_dir.name:12s}{summary['ood']['accuracy']:9.3f}{summary['clean']['accuracy']:11.3f}"
              f"{summary['mae']:8.3f}{summary['rmse']:8.3f}{summary['ssim']:8.3f}  {summary['well_generalizing']}")
    return 0
