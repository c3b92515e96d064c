"""``python -m ssh_ood freeze-recipes --out FILE``: freeze the recipes protocol from the clean-data development.

Reads the development table and the paper recipe's comparison populations, applies the decision rule of
:mod:`ssh_ood.interpret.recipe_freeze` and writes the protocol that
:mod:`ssh_ood.interpret.recipe_protocol` checks. The shipped ``00_demonstrations_data/recipes_protocol.json``
was frozen this way before any network of a new recipe was evaluated out of distribution; writing over it
needs ``--allow-shipped`` (and then its git history no longer shows the freeze came first).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..base.io_utils import save_json
from ..base.paths import DEMO_DIR, POPULATION_DIR
from ..base.run_folders import check_not_shipped
from ..interpret.recipe_freeze import freeze_from_files

DEVELOPMENT_TABLE = DEMO_DIR / "recipes_development.csv"
COMPARISON_POPULATIONS = (POPULATION_DIR, DEMO_DIR / "100_CNNs_seed1")


def add_freeze_recipes_parser(subparsers, parents: list[argparse.ArgumentParser]) -> None:
    """Register ``python -m ssh_ood freeze-recipes``."""
    parser = subparsers.add_parser(
        "freeze-recipes", parents=parents,
        help="freeze the training recipes' validation protocol from the clean-data development table",
        description="Choose the main recipe by the fixed decision rule, forecast and predict each recipe's "
        "outcome, and write the protocol (JSON) that notebook 09 scores.",
    )
    parser.add_argument("--out", type=Path, required=True, help="protocol file to write (JSON)")
    parser.add_argument("--development", type=Path, default=DEVELOPMENT_TABLE,
                        help="development table (default: 00_demonstrations_data/recipes_development.csv)")
    parser.add_argument("--comparison", type=Path, nargs="+", default=list(COMPARISON_POPULATIONS),
                        help="the paper recipe's populations with published OOD results, for the forecast "
                        "(default: 00_demonstrations_data/100_CNNs and 100_CNNs_seed1)")
    parser.set_defaults(func=_run_freeze_recipes)


def _run_freeze_recipes(args: argparse.Namespace) -> int:
    check_not_shipped(args.out)
    protocol = freeze_from_files(args.development, args.comparison)
    path = save_json(args.out, protocol)
    forecasts = ", ".join(f"{r} {v:.3f}" for r, v in protocol["forecast_median_ood_accuracy"].items())
    print(f"main recipe {protocol['main_recipe']}; forecast median OOD accuracy: {forecasts}")
    print(f"wrote {path}")
    return 0
