"""Clean-data diagnostics of a population: seconds per network, one torch/BLAS thread vs the defaults.

    .venv/bin/python benchmarks/bench_diagnostics.py [--population DIR] [--models 10] [--rounds 3]

Diagnoses the first ``--models`` networks of the shipped population (paper datasets, 500 test chains per
W) in interleaved rounds, once with :func:`ssh_ood.interpret.diagnostics.diagnose_population`'s single-thread setting and
once with torch's and BLAS's default thread counts, and prints the medians, their ratio and the projected
time for 100 networks (goal: <= 5 min on the project's 2-core CPU).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from ssh_ood.base.io_utils import load_json  # noqa: E402
from ssh_ood.base.paths import POPULATION_DIR  # noqa: E402
from ssh_ood.interpret.diagnostics import CleanData, model_diagnostics  # noqa: E402
from ssh_ood.physics.datasets import ensure_datasets  # noqa: E402


def diagnose(dirs: list[Path], data: CleanData, threads: int | None) -> float:
    """Seconds to diagnose ``dirs`` with ``threads`` torch and BLAS threads (None: the defaults)."""
    default = torch.get_num_threads()
    start = time.perf_counter()
    if threads is None:
        for directory in dirs:
            model_diagnostics(directory, data)
    else:
        torch.set_num_threads(threads)
        with threadpool_limits(limits=threads):
            for directory in dirs:
                model_diagnostics(directory, data)
        torch.set_num_threads(default)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=Path, default=POPULATION_DIR)
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    manifest = load_json(args.population / "manifest.json")
    data_dir = Path(manifest["data_dir"])
    ensure_datasets(manifest["preset"], int(manifest["seed"]), data_dir, progress=False)
    dirs = sorted(args.population.glob("model_*"))[: args.models]
    load_start = time.perf_counter()
    data = CleanData.load(data_dir)
    load_seconds = time.perf_counter() - load_start
    diagnose(dirs[:1], data, 1)  # warm-up: imports, numba and torch initialization
    times: dict[str, list[float]] = {"one thread": [], "default threads": []}
    for _ in range(args.rounds):
        times["one thread"].append(diagnose(dirs, data, 1))
        times["default threads"].append(diagnose(dirs, data, None))
    medians = {name: statistics.median(values) / len(dirs) for name, values in times.items()}
    print(f"{len(dirs)} networks x {args.rounds} interleaved rounds; data loaded once in {load_seconds:.2f} s "
          f"(torch default threads: {torch.get_num_threads()})")
    for name, seconds in medians.items():
        print(f"  {name:16s} median {seconds:.3f} s per network -> 100 networks in {100 * seconds / 60:.1f} min")
    print(f"  default / one thread: {medians['default threads'] / medians['one thread']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
