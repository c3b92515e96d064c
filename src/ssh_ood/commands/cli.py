"""The project's single command-line entry point, ``python -m ssh_ood <command>``.

Each sub-command lives in the module that does its work and registers itself here through a small
``add_<name>_parser`` function; this file only assembles them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..base.interruption import exit_status, interruption_line, sigterm_raises
from ..base.presets import PRESET_NAMES
from ..base.run_folders import allow_shipped_writes
from ..figures.gallery import add_gallery_parser
from ..interpret.diagnostics import add_diagnose_parser
from ..interpret.generalization_prediction import add_predict_parser
from ..interpret.highlighted_models import add_highlight_parser
from ..nets.training_recipe import MAX_SEED, check_seed
from ..ood.batchnorm_study import add_precise_bn_parser
from .population_cli import add_population_parser
from .record_files import add_record_files_parser
from .reproduce import add_reproduce_parser
from .thermometer_cli import add_thermometer_parser
from .training_cli import add_train_parser


def _add_data_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "data",
        help="generate every dataset of a preset as .npz files",
        description="Generate the clean, perturbative and out-of-distribution datasets of SPEC §1.",
    )
    parser.add_argument("--preset", choices=PRESET_NAMES, default="quick", help="run size (default: quick)")
    parser.add_argument("--seed", type=int, default=0, help="master seed of every disorder draw (default: 0)")
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default: 00_demonstrations_data/datasets/<preset>)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run_data)


def _run_data(args: argparse.Namespace) -> int:
    from ..base.paths import datasets_dir
    from ..physics.datasets import read_manifest, write_datasets

    out = args.out if args.out is not None else datasets_dir(args.preset)
    manifest = write_datasets(args.preset, args.seed, out, progress=not args.quiet)
    for entry in read_manifest(out)["datasets"]:
        print(f"{entry['file']:24s} {entry['n_samples']:6d} samples, {entry['n_topological']:6d} topological")
    print(f"wrote {manifest}")
    return 0


def seed_argument(text: str) -> int:
    """An argparse type for every seed option: an integer in [0, MAX_SEED] (all derived seeds stay valid)."""
    try:
        return check_seed(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, {MAX_SEED}], got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The parser of every sub-command, with the options common to all of them added here.

    Every ``--seed`` / ``--data-seed`` is checked up front by :func:`seed_argument`, and every command
    gets ``--allow-shipped`` (writing into the shipped data, see :mod:`ssh_ood.base.run_folders`).
    """
    parser = argparse.ArgumentParser(prog="python -m ssh_ood", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="<command>")
    _add_data_parser(subparsers)
    add_reproduce_parser(subparsers)
    add_train_parser(subparsers)
    add_population_parser(subparsers)
    add_highlight_parser(subparsers)
    add_diagnose_parser(subparsers)
    add_predict_parser(subparsers)
    add_precise_bn_parser(subparsers)
    add_thermometer_parser(subparsers)
    add_gallery_parser(subparsers)
    add_record_files_parser(subparsers)
    for command in subparsers.choices.values():
        for action in command._actions:
            if action.dest in ("seed", "data_seed", "unlabeled_seed"):
                action.type = seed_argument
        command.add_argument("--allow-shipped", action="store_true",
                             help="allow writing into the data shipped in 00_demonstrations_data (default: refused)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors in one line (exit 2), Ctrl-C (exit 130) and SIGTERM (exit 143) in one line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with allow_shipped_writes(args.allow_shipped), sigterm_raises():
            return args.func(args)
    except (ValueError, OSError) as exc:  # OSError: a failed write (full disk...), named by the writer
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interruption:  # SIGTERM too (ssh_ood.base.interruption.Terminated)
        print(f"\n{interruption_line(args.command, interruption)}", file=sys.stderr)
        return exit_status(interruption)


if __name__ == "__main__":
    sys.exit(main())
