"""The project's single command-line entry point, ``python -m ssh_ood <command>``.

Each sub-command's parser and runner live in a module of this package (``training_cli``, ``population_cli``,
...), which registers it through a small ``add_<name>_parser(subparsers, parents)`` function; this file only
assembles them, each with the options of :func:`ssh_ood.commands.arguments.shared_options`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..base.interruption import exit_status, interruption_line, sigterm_raises
from ..base.presets import PRESET_NAMES
from ..base.run_folders import allow_shipped_writes
from .arguments import seed_argument, shared_options
from .diagnose_cli import add_diagnose_parser
from .gallery_cli import add_gallery_parser
from .highlight_cli import add_highlight_parser
from .population_cli import add_population_parser
from .precise_bn_cli import add_precise_bn_parser
from .predict_cli import add_predict_parser
from .recipes_cli import add_freeze_recipes_parser
from .record_files import add_record_files_parser
from .reproduce import add_reproduce_parser
from .rules_cli import add_physics_rules_parser
from .thermometer_cli import add_thermometer_parser
from .training_cli import add_train_parser


def _add_data_parser(subparsers, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "data", parents=parents,
        help="generate every dataset of a preset as .npz files",
        description="Generate the clean, perturbative and out-of-distribution datasets of docs/physics_and_methods.md §2.",
    )
    parser.add_argument("--preset", choices=PRESET_NAMES, default="quick", help="run size (default: quick)")
    parser.add_argument("--seed", type=seed_argument, default=0, help="master seed of every disorder draw (default: 0)")
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


#: the functions that register the sub-commands, in the order ``--help`` lists them
COMMANDS = (
    _add_data_parser,
    add_reproduce_parser,
    add_train_parser,
    add_population_parser,
    add_highlight_parser,
    add_diagnose_parser,
    add_predict_parser,
    add_precise_bn_parser,
    add_thermometer_parser,
    add_gallery_parser,
    add_record_files_parser,
    add_freeze_recipes_parser,
    add_physics_rules_parser,
)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every sub-command (:data:`COMMANDS`), each with the shared options
    (:func:`ssh_ood.commands.arguments.shared_options`); every seed option is checked up front
    (:func:`ssh_ood.commands.arguments.seed_argument`)."""
    parser = argparse.ArgumentParser(prog="python -m ssh_ood", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="<command>")
    parents = [shared_options()]
    for add_parser in COMMANDS:
        add_parser(subparsers, parents)
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
