"""``python -m ssh_ood train``: the command line of :func:`ssh_ood.nets.training_run.train_models`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..base.file_records import problem, verified_bytes
from ..base.paths import datasets_dir
from ..base.presets import PRESET_NAMES, get_preset
from ..base.run_folders import hold_folder
from ..figures.training_figures import save_training_curves
from ..nets.recipes import DEFAULT_RECIPE, RECIPE_NAMES
from ..nets.training_recipe import SEED_STRIDE
from ..nets.training_run import default_run_dir, train_models
from .arguments import seed_argument


def add_train_parser(subparsers, parents: list[argparse.ArgumentParser]) -> None:
    """Register ``python -m ssh_ood train``."""
    parser = subparsers.add_parser(
        "train", parents=parents,
        help="train an ensemble of CNNs with the paper's recipe",
        description="Train K CNN_SSH models (seeds base*10^6 + 0..K-1) together; resumable; one folder per model.",
    )
    parser.add_argument("--preset", choices=PRESET_NAMES, default="quick", help="run size (default: quick)")
    parser.add_argument("--n-models", type=int, default=None, help="number of models K (default: the preset's)")
    parser.add_argument("--seed", type=seed_argument, default=0, help="base seed of the run (default: 0)")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: 00_demonstrations_data/runs/...)")
    parser.add_argument("--data", type=Path, default=None, help="datasets folder (default: the preset's; made if missing)")
    parser.add_argument("--data-seed", type=seed_argument, default=0, help="seed used if the default datasets must be generated")
    parser.add_argument("--epochs", type=int, default=None, help="maximum epochs (default: the preset's)")
    parser.add_argument("--no-early-stopping", action="store_true", help="always run the maximum number of epochs")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: best available)")
    parser.add_argument("--thermometer-levels", type=int, default=None, help="train the thermometer-encoding variant")
    parser.add_argument("--per-model-order", action="store_true", help="one data order per model instead of a shared one")
    parser.add_argument("--workers", type=int, default=None, help="CPU worker processes (default: usable cores)")
    parser.add_argument("--recipe", choices=RECIPE_NAMES, default=DEFAULT_RECIPE,
                        help="training recipe (default: paper; see ssh_ood.nets.recipes for each one's hypothesis)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from ..physics.datasets import read_manifest, write_datasets

    preset = get_preset(args.preset)
    n_models = preset.n_models if args.n_models is None else args.n_models
    if not 1 <= n_models <= SEED_STRIDE:
        raise ValueError(f"--n-models must be between 1 and {SEED_STRIDE}, got {n_models}")
    out = args.out if args.out is not None else default_run_dir(preset.name, args.seed, args.thermometer_levels)
    with hold_folder(out):  # first: a busy, unwritable or shipped folder fails before any data is generated
        data_dir = args.data
        if data_dir is None:
            data_dir = datasets_dir(preset.name)
            seed = read_manifest(data_dir)["seed"] if (data_dir / "datasets.json").is_file() else args.data_seed
            write_datasets(preset, seed, data_dir, progress=not args.quiet)  # checks the files, makes what is missing
        folders = train_models(
            preset,
            data_dir,
            out,
            range(n_models),
            base_seed=args.seed,
            device=args.device,
            max_epochs=args.epochs,
            early_stopping=not args.no_early_stopping,
            thermometer_levels=args.thermometer_levels,
            shared_order=not args.per_model_order,
            progress=not args.quiet,
            n_workers=args.workers,
            recipe=args.recipe,
        )
        for folder in folders:  # drawn once; a deleted figure is drawn again
            if problem(folder / "training_curve.png") is not None:
                save_training_curves(folder)
    sys.stdout.write(verified_bytes(Path(out) / "summary.csv", required=True).decode())
    print(f"wrote {len(folders)} model folders and {Path(out) / 'summary.csv'}")
    return 0
