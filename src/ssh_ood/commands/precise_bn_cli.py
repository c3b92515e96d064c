"""``python -m ssh_ood precise-bn``: the command line of :mod:`ssh_ood.ood.batchnorm_study`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..base.io_utils import load_json
from ..ood.batchnorm_study import NEAR_HALF, SUMMARY_FILE, precise_bn_study


def add_precise_bn_parser(subparsers, parents: list[argparse.ArgumentParser]) -> None:
    """Register ``python -m ssh_ood precise-bn``."""
    parser = subparsers.add_parser(
        "precise-bn", parents=parents,
        help="re-evaluate every network of a population with precise BatchNorm statistics (paired comparison)",
        description="Recalibrate BatchNorm statistics over the training set, evaluate on the population's grid and "
        "write precise_bn.csv and precise_bn_summary.json into the population folder (resumable).",
    )
    parser.add_argument("--population", type=Path, required=True, help="evaluated population folder (stats.csv)")
    parser.add_argument("--copies", type=Path, default=None,
                        help="folder of the recalibrated copies (default: 00_demonstrations_data/runs/precise_bn/<name>)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run_precise_bn)


def _run_precise_bn(args: argparse.Namespace) -> int:
    path = precise_bn_study(args.population, args.copies, progress=not args.quiet)
    summary = load_json(args.population / SUMMARY_FILE)
    for name in ("ood_accuracy", "mae", "strong_disorder_topological"):
        entry = summary[name]
        print(f"{name:28s} median {entry['running_median']:.3f} -> {entry['precise_median']:.3f}, paired change median "
              f"{entry['change_median']:+.3f} [q10 {entry['change_q10']:+.3f}, q90 {entry['change_q90']:+.3f}], "
              f"{entry['n_up']} up / {entry['n_down']} down, Wilcoxon p = {entry['wilcoxon_p']:.2g}")
    print(f"networks with OOD accuracy < {NEAR_HALF}: {summary['near_half_running']} as trained, "
          f"{summary['near_half_precise']} with precise BN ({summary['near_half_in_both']} in both)")
    print(f"wrote {path}")
    return 0
