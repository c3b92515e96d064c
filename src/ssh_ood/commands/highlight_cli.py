"""``python -m ssh_ood highlight``: the command line of :mod:`ssh_ood.interpret.highlighted_models`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..interpret.highlighted_models import DEFAULT_HIGHLIGHT_DIR, SelectionRule, highlight_population
from ..ood.generalization_metrics import CUT_METRICS, DEFAULT_CUT_METRIC, DEFAULT_THRESHOLD, GeneralizationCut
from .arguments import seed_argument


def add_highlight_parser(subparsers, parents: list[argparse.ArgumentParser]) -> None:
    """Register ``python -m ssh_ood highlight``."""
    from ..base.presets import PRESET_NAMES

    parser = subparsers.add_parser(
        "highlight", parents=parents,
        help="score every network's CAM and choose the four highlighted networks",
        description="Compute the CAM score of every network of a population, its correlation with the RMSE and "
        "OOD accuracy, and copy the most typical network of each class (well/poorly generalizing x good/"
        "misleading CAM) to <out>/<category>/ with a provenance.json.",
    )
    parser.add_argument("--population", type=Path, required=True, help="population folder (with stats.csv)")
    parser.add_argument("--preset", choices=PRESET_NAMES, default="quick", help="datasets preset (default: quick)")
    parser.add_argument("--seed", type=seed_argument, default=0, help="seed of the datasets if they must be generated (default: 0)")
    parser.add_argument("--data", type=Path, default=None, help="datasets folder (default: 00_demonstrations_data/datasets/<preset>)")
    parser.add_argument("--out", type=Path, default=DEFAULT_HIGHLIGHT_DIR,
                        help="output folder (default: 00_demonstrations_data/runs/highlighted; the shipped networks in "
                        "00_demonstrations_data/models are replaced only with --allow-shipped)")
    parser.add_argument("--cut-metric", choices=CUT_METRICS, default=DEFAULT_CUT_METRIC,
                        help="diagram error of the well-generalizing cut (default: mae)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help="well generalizing iff the cut metric <= this (default: 0.2)")
    parser.add_argument("--score-cut", type=float, default=None, help="good CAM iff score >= this (default: the population median)")
    parser.add_argument("--batch-size", type=int, default=256, help="samples per forward pass (default: 256)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run_highlight)


def _run_highlight(args) -> int:
    from ..base.paths import datasets_dir
    from ..ood.population_tables import load_population
    from ..physics.datasets import write_datasets

    population = load_population(args.population)
    data_dir = args.data or datasets_dir(args.preset)
    write_datasets(args.preset, args.seed, data_dir, progress=not args.quiet)
    result = highlight_population(
        population, data_dir, args.out, SelectionRule(GeneralizationCut(args.cut_metric, args.threshold), args.score_cut), args.batch_size, not args.quiet
    )
    for category, choice in result.choices.items():
        print(f"{category:18s} model {choice.model_index:3d}  {args.cut_metric} {choice.error:.3f}  CAM score {choice.score:.3f}  ({choice.note})")
    for metric, corr in result.correlations.items():
        print(f"CAM score vs {metric}: Pearson {corr['pearson_r']:.3f}, Spearman {corr['spearman_rho']:.3f} (n = {corr['n']})")
    print(f"wrote {Path(args.out) / 'selection.json'}")
    return 0
