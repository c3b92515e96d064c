"""Argument types and options shared by the sub-commands of ``python -m ssh_ood``."""

from __future__ import annotations

import argparse

from ..nets.training_recipe import MAX_SEED, check_seed


def seed_argument(text: str) -> int:
    """An argparse type for every seed option: an integer in [0, MAX_SEED] (all derived seeds stay valid)."""
    try:
        return check_seed(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, {MAX_SEED}], got {text!r}") from None


def shared_options() -> argparse.ArgumentParser:
    """The options every sub-command has (a parent parser): ``--allow-shipped`` (writing into the shipped data,
    see :mod:`ssh_ood.base.run_folders`)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--allow-shipped", action="store_true",
                        help="allow writing into the data shipped in 00_demonstrations_data (default: refused)")
    return parser
