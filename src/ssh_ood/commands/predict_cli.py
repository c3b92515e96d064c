"""``python -m ssh_ood predict``: the command line of :mod:`ssh_ood.interpret.generalization_prediction` and
(``--baselines``) :mod:`ssh_ood.interpret.baselines`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..base.io_utils import atomic_write_bytes, load_json, save_json
from ..base.run_folders import hold_folder
from ..interpret.diagnostics import load_diagnostics
from ..interpret.generalization_prediction import (
    PREDICTORS_FILE,
    VALIDATION_FILE,
    describe_rule,
    make_protocol,
    merged_table,
    predictor_table,
    validate_protocol,
)
from ..ood.projection_norm import DEFAULT_STEPS
from .arguments import seed_argument


def add_predict_parser(subparsers, parents: list[argparse.ArgumentParser]) -> None:
    """Register ``python -m ssh_ood predict``."""
    parser = subparsers.add_parser(
        "predict", parents=parents,
        help="correlations and selection lifts of the clean-data diagnostics against OOD generalization",
        description="Read diagnostics.csv and stats.csv of a population; write predictors.csv (correlations with "
        "bootstrap CIs, selection lifts). --freeze writes a protocol from it; --protocol validates a frozen one.",
    )
    parser.add_argument("--population", type=Path, required=True, help="population folder (diagnostics.csv, stats.csv)")
    parser.add_argument("--freeze", type=Path, default=None, metavar="PROTOCOL",
                        help="write a protocol (expected signs, selection rule) from this discovery population")
    parser.add_argument("--validation", default="", help="with --freeze: the validation population it is meant for")
    parser.add_argument("--k", type=int, default=10, help="with --freeze: k of the selection rule (default 10)")
    parser.add_argument("--protocol", type=Path, default=None, help="validate this frozen protocol on the population")
    parser.add_argument("--seed", type=seed_argument, default=0, help="seed of the bootstrap and permutations (default 0)")
    parser.add_argument("--baselines", action="store_true",
                        help="instead: the probe against the field's label-free OOD accuracy estimators (AC, DoC, ATC, "
                        "agreement, nuclear norm, COT; ProjNorm with --projnorm); writes baselines.csv and "
                        "baseline_estimates.csv")
    parser.add_argument("--unlabeled-seed", type=seed_argument, default=2021,
                        help="with --baselines: seed of the unlabeled disordered chains (default 2021)")
    parser.add_argument("--threads", type=int, default=None, help="with --baselines: CPU threads (default: torch's)")
    parser.add_argument("--device", default=None, help="with --baselines: cpu, cuda, mps (default: the best present)")
    parser.add_argument("--probe-map", type=Path, default=None,
                        help="with --baselines: the probe's frozen isotonic map (JSON); fit here and written there if "
                        "missing (default: fit on this population, written as probe_ood_map.json in it)")
    parser.add_argument("--projnorm", action="store_true",
                        help="with --baselines: also ProjNorm (Yu et al. 2022), which fine-tunes two copies of every "
                        "network from its own initialization on the CPU (seconds per network, see --projnorm-steps)")
    parser.add_argument("--projnorm-steps", type=int, default=DEFAULT_STEPS,
                        help=f"with --projnorm: SGD iterations of each fine-tuned copy (default {DEFAULT_STEPS})")
    parser.add_argument("--projnorm-seed", type=seed_argument, default=0,
                        help="with --projnorm: seed of the fine-tunings' batch order and dropout masks (default 0)")
    parser.set_defaults(func=_run_predict)


def _run_predict(args: argparse.Namespace) -> int:
    from ..ood.population_tables import load_population

    if args.baselines:
        return _run_baselines(args)
    with hold_folder(args.population):  # one writer of the population's derived files
        table = merged_table(load_diagnostics(args.population), load_population(args.population).stats)
        directions = None
        if args.protocol is not None:
            protocol = load_json(args.protocol)
            directions = protocol["expected_signs"]
        predictors = predictor_table(table, seed=args.seed, directions=directions)
        path = atomic_write_bytes(args.population / PREDICTORS_FILE, predictors.to_csv(index=False).encode())
        columns = ["diagnostic", "spearman_ood_accuracy", "spearman_low_ood_accuracy", "spearman_high_ood_accuracy",
                   "lift10", "lift10_p"]
        shown = [c for c in columns if c in predictors]  # no lift column when k exceeds the population
        print(predictors[shown].head(15).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print(f"wrote {path}")
        if args.freeze is not None:
            protocol = make_protocol(predictors, str(args.population), args.validation, args.k)
            save_json(args.freeze, protocol)
            rule = protocol["selection_rule"]
            print(f"froze {args.freeze}: rule = top {rule['k']} by {rule['direction']} {rule['diagnostic']}")
        if args.protocol is not None:
            result = validate_protocol(load_json(args.protocol), table, seed=args.seed)
            save_json(args.population / VALIDATION_FILE, {
                "protocol": str(args.protocol), **{k: v for k, v in result.items() if k != "replication"},
                "replication": result["replication"].to_dict(orient="records")})
            print(result["replication"].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
            print(f"{result['n_replicated']} of {result['n_tested']} diagnostics replicate on {result['n_models']} networks; "
                  f"{describe_rule(result['rule'])}")
        return 0


def _run_baselines(args: argparse.Namespace) -> int:
    from ..interpret.baselines import format_table, run_baselines
    from ..ood.projection_norm import ProjNormSettings

    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be a positive integer, got {args.threads}")
    projnorm = None
    if args.projnorm:
        if args.projnorm_steps < 1:
            raise ValueError(f"--projnorm-steps must be a positive integer, got {args.projnorm_steps}")
        projnorm = ProjNormSettings(steps=args.projnorm_steps, seed=args.projnorm_seed)
    result = run_baselines(args.population, args.unlabeled_seed, args.threads, args.device, args.probe_map,
                           seed=args.seed, projnorm=projnorm)
    print(format_table(result.table))
    for path in result.paths:
        print(f"wrote {path}")
    return 0
