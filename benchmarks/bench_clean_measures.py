"""Clean-data generalization measures: seconds per network of ``clean_data_measures`` against the 2 s goal.

    .venv/bin/python benchmarks/bench_clean_measures.py [--population DIR] [--models 5] [--chains 1000]

Generates ``--chains`` clean test chains in memory (``generate_dataset("test", n, W=0, seed=0)``, nothing
written), runs :func:`ssh_ood.interpret.clean_measures.clean_data_measures` once on the first network as a
warm-up, then on the first ``--models`` networks of the shipped population, and prints the median seconds
per network, its ratio to the 2 s goal and the projected time for 100 networks.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from ssh_ood.base.paths import POPULATION_DIR  # noqa: E402
from ssh_ood.interpret.clean_measures import clean_data_measures  # noqa: E402
from ssh_ood.nets.model_folders import load_model  # noqa: E402
from ssh_ood.physics.data_generation import generate_dataset  # noqa: E402

GOAL_SECONDS = 2.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=Path, default=POPULATION_DIR)
    parser.add_argument("--models", type=int, default=5)
    parser.add_argument("--chains", type=int, default=1000)
    args = parser.parse_args()
    data = generate_dataset("test", args.chains, 0.0, seed=0)
    X, y = data["X"][:, None], data["labels"]
    dirs = sorted(args.population.glob("model_*"))[: args.models]
    clean_data_measures(load_model(dirs[0]), X, y)  # warm-up: imports and torch.func initialization
    seconds = []
    for directory in dirs:
        model = load_model(directory)
        start = time.perf_counter()
        clean_data_measures(model, X, y)
        seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    print(f"{len(dirs)} networks, {args.chains} clean chains: median {median:.2f} s per network "
          f"(min {min(seconds):.2f}, max {max(seconds):.2f}); ratio to the {GOAL_SECONDS:g} s goal "
          f"{median / GOAL_SECONDS:.2f}; 100 networks ~ {100 * median / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
