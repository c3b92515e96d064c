"""``python -m ssh_ood physics-rules``: the one-threshold physics rules on a generalization grid, band by band.

Fits each rule of :mod:`ssh_ood.physics.physics_rules` on clean chains, evaluates it on the grid the networks of a
population are evaluated on (:mod:`ssh_ood.ood.physics_baselines`) and writes a small JSON (the rules' thresholds,
overall and per-band accuracies and recalls, the ceiling per band) that notebook 09 draws beside the recipes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..base.io_utils import save_json
from ..base.paths import DEMO_DIR
from ..base.presets import PRESET_NAMES
from ..interpret.generalization_prediction import DISORDER_BANDS
from ..ood.generalization import GeneralizationGrid
from ..ood.physics_baselines import baselines_report
from ..physics.physics_rules import RULE_NAMES, fit_rule


def default_rules_file(preset: str, seed: int) -> Path:
    """Where the report of the rules on the grid of ``preset`` and ``seed`` goes by default."""
    return DEMO_DIR / "physics_rules" / f"{preset}_seed{seed}.json"


def add_physics_rules_parser(subparsers, parents: list[argparse.ArgumentParser]) -> None:
    """Register ``python -m ssh_ood physics-rules``."""
    parser = subparsers.add_parser(
        "physics-rules", parents=parents,
        help="the one-threshold physics rules (sublattice position, edge density) on a generalization grid",
        description="Fit each physics rule's threshold on clean chains, evaluate it on the generalization grid of "
        "a preset and seed (the chains the networks are evaluated on), and write its accuracy per disorder band "
        "beside the ceiling as JSON.",
    )
    parser.add_argument("--preset", choices=PRESET_NAMES, default="paper", help="grid of this preset (default: paper)")
    parser.add_argument("--seed", type=int, default=2, help="grid seed, the population's seed (default: 2)")
    parser.add_argument("--rules", nargs="+", choices=RULE_NAMES, default=list(RULE_NAMES), help="rules (default: all)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON file (default: 00_demonstrations_data/physics_rules/<preset>_seed<seed>.json)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run_physics_rules)


def _run_physics_rules(args: argparse.Namespace) -> int:
    grid = GeneralizationGrid.from_preset(args.preset, args.seed)
    rules = [fit_rule(name, n_cells=grid.n_cells) for name in args.rules]
    start = time.perf_counter()
    report = baselines_report(rules, grid, DISORDER_BANDS, progress=not args.quiet)
    report["preset"] = args.preset
    report["seconds"] = round(time.perf_counter() - start, 1)
    out = args.out if args.out is not None else default_rules_file(args.preset, args.seed)
    save_json(out, report)
    bands = [key for key in report["ceiling"] if key != "overall"]
    print(f"{'':22s}{'overall':>9s}" + "".join(f"{'W ' + band:>10s}" for band in bands))
    for name, entry in {**report["rules"], "ceiling": report["ceiling"]}.items():
        print(f"{name:22s}{entry['overall']:9.4f}" + "".join(f"{entry[band]:10.4f}" for band in bands))
    print(f"wrote {out}")
    return 0
