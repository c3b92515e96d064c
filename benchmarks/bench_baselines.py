"""Benchmark of the baselines table (``python -m ssh_ood predict --baselines``) on a 100-network population.

Times each stage of :mod:`ssh_ood.interpret.baselines` on the shipped seed-0 population, read only (nothing is
written into it): drawing the 3,000 unlabeled chains, every network's softmax on them and on the clean test
set (model loading included), the label-free estimates, the clean-data measures of
:mod:`ssh_ood.interpret.clean_measures` (one thread each, model loading included), and the table (bootstrap CIs and
permutation lifts); with ``--projnorm-networks K``, also ProjNorm (two fine-tunings per network, default budget)
on the first K networks, reported per network and scaled to the population, apart from the total.
Cheap stages are repeated and their median taken; the softmax and the clean measures run ``--softmax-repeats``
times (default 1). Prints each stage, the total and its ratio to the issue's target of 5 minutes on 2 cores.

Usage: ``.venv/bin/python benchmarks/bench_baselines.py [--threads 2] [--repeats 3] [--softmax-repeats 1]
[--projnorm-networks 0]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ssh_ood.interpret.baselines import (  # noqa: E402
    CLEAN_MEASURES,
    CLEAN_METHODS,
    baseline_table,
    network_estimates,
    population_clean_measures,
)
from ssh_ood.interpret.diagnostics import load_diagnostics  # noqa: E402
from ssh_ood.nets.model_folders import model_dir_name  # noqa: E402
from ssh_ood.ood.population_tables import load_population  # noqa: E402
from ssh_ood.ood.projection_norm import ProjNormSettings, population_projection_norms  # noqa: E402
from ssh_ood.ood.unlabeled_softmax import population_softmax, unlabeled_chains  # noqa: E402
from ssh_ood.physics.datasets import (
    ensure_datasets,  # noqa: E402
    load_split,  # noqa: E402
)

TARGET_S = 300.0


def timed(fn, repeats: int):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=Path, default=Path("00_demonstrations_data/100_CNNs"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--softmax-repeats", type=int, default=1)
    parser.add_argument("--projnorm-networks", type=int, default=0, help="time ProjNorm on this many networks")
    args = parser.parse_args()
    population = load_population(args.population)
    manifest = population.manifest
    data_dir = Path(manifest["data_dir"])
    ensure_datasets(manifest["preset"], int(manifest["seed"]), data_dir, progress=False)
    source = load_split(data_dir, "test", 0.0)
    indices = [int(i) for i in population.stats["model_index"]]
    dirs = [args.population / model_dir_name(i) for i in indices]
    unlabeled_chains(manifest["preset"])  # numba compilation, once per machine (cached on disk), not timed
    stages = {}
    chains, stages["unlabeled chains"] = timed(lambda: unlabeled_chains(manifest["preset"]), args.repeats)
    softmax, stages["softmax, all networks"] = timed(
        lambda: population_softmax(dirs, {"target": chains["X"], "source": source["X"]}, args.threads), args.softmax_repeats)
    estimates, stages["estimates"] = timed(
        lambda: network_estimates(softmax["target"], softmax["source"], source["labels"]), args.repeats)
    measures, stages["clean-data measures"] = timed(
        lambda: population_clean_measures(args.population, manifest, indices), args.softmax_repeats)
    clean = [c for c in CLEAN_METHODS if c != "test_accuracy"]
    merged = (population.stats[["model_index", "test_accuracy", "ood_accuracy"]]
              .merge(estimates.assign(model_index=indices), on="model_index")
              .merge(measures, on="model_index")
              .merge(load_diagnostics(args.population)[["model_index", *clean]], on="model_index"))
    _, stages["table (bootstrap, permutations)"] = timed(lambda: baseline_table(merged, extra=CLEAN_MEASURES),
                                                         args.repeats)
    print(f"{len(dirs)} networks, {len(chains['X'])} unlabeled chains + {len(source['X'])} clean test chains, "
          f"{args.threads} threads")
    for name, seconds in stages.items():
        print(f"  {name:34s} {seconds:8.2f} s")
    total = sum(stages.values())
    print(f"  {'total':34s} {total:8.2f} s  = {total / TARGET_S:.2f} x the 5-minute target")
    if args.projnorm_networks > 0:
        k = min(args.projnorm_networks, len(dirs))
        settings = ProjNormSettings()
        _, seconds = timed(lambda: population_projection_norms(dirs[:k], source["X"], source["labels"], chains["X"],
                                                               softmax["target"][:k], settings), 1)
        print(f"  ProjNorm ({settings.steps} steps per copy), {k} networks: {seconds / k:.2f} s per network, "
              f"{seconds / k * len(dirs) / 60:.1f} min for all {len(dirs)} (not in the total)")


if __name__ == "__main__":
    main()
