"""Seconds per model-epoch: the plain PyTorch loop vs the ensemble trainer, side by side on the paper's data.

(a) plain: one ``CNN_SSH`` with ``nn.Dropout``, ``torch.optim.SGD``, 2 threads (the paper's loop); also
    shown with 1 thread, a reference that other processes on the machine disturb less (2-thread OpenMP
    regions stall when a core is busy elsewhere).
(b) ensemble: the engine of ``python -m ssh_ood train`` on CPU: 2 worker processes (one thread each), each
    stepping its share of the K models with the fused kernels (``ssh_ood.nets.ensemble_training``).

Both do the paper recipe on the paper's data: 6,000 training samples (5,000 clean + 2 x 500
perturbative) in batches of 64 (94 steps per epoch) and a validation pass over 2,000 samples per epoch.
Each measurement times ``--batches`` training steps (wall clock) and scales them to 94, then adds the
measured validation pass; the rounds run interleaved (a, then b for every K) ``--repeats`` times and the
medians are reported, so the ratios are measured under the same background load. Peak memory: the
resident set (``ru_maxrss``) of the main process plus the workers' own peaks, for the largest K.

    python benchmarks/bench_training.py                    # K = 8, 32, 100; ~3 minutes on 2 cores
    python benchmarks/bench_training.py --models 8 --batches 5 --repeats 1    # a quick look
    python benchmarks/bench_training.py --device cuda --models 100            # GPU: stacked engine, 1 process
    python benchmarks/bench_training.py --models 8 --recipes paper defects mirror bulk_insensitive

``--recipes``: the ensemble rows are measured for each training recipe of :mod:`ssh_ood.nets.recipes` (the
recipe column): its own data (the defects recipe trains on 1.5x the clean samples, so more steps per
epoch), its batch construction and its step, scaled to its own number of steps per epoch.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ssh_ood.base.presets import get_preset  # noqa: E402
from ssh_ood.nets.architecture import CNN_SSH  # noqa: E402
from ssh_ood.nets.data_loaders import batch_slices, fixed_order, load_training_data, training_batch  # noqa: E402
from ssh_ood.nets.ensemble_training import (  # noqa: E402
    ModelState,
    SGDRecipe,
    default_engine,
    dropout_generator,
    evaluate_models,
    initial_model,
    train_step,
)
from ssh_ood.nets.recipes import DEFAULT_RECIPE, RECIPE_NAMES, get_recipe, load_recipe_data  # noqa: E402
from ssh_ood.nets.training_processes import tune_malloc  # noqa: E402
from ssh_ood.physics.datasets import write_datasets  # noqa: E402

PRESET = get_preset("paper")
RECIPE = SGDRecipe(PRESET.lr, PRESET.momentum, PRESET.weight_decay)


def plain_loop_seconds(data, n_batches: int, threads: int = 2) -> tuple[float, float]:
    """(wall, CPU) seconds per epoch of the plain single-model loop (nn.Dropout, torch.optim.SGD)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = CNN_SSH().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=RECIPE.lr, momentum=RECIPE.momentum, weight_decay=RECIPE.weight_decay)
    order = fixed_order(len(data.training), 0)
    steps_per_epoch = len(batch_slices(len(data.training), PRESET.batch_size))

    def step(number: int) -> None:
        x, y = training_batch(data.training, order, number % steps_per_epoch, PRESET.batch_size)
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    step(0)
    wall, cpu = time.perf_counter(), time.process_time()
    for number in range(1, n_batches + 1):
        step(number)
    scale = steps_per_epoch / n_batches
    wall, cpu = (time.perf_counter() - wall) * scale, (time.process_time() - cpu) * scale
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    model.eval()
    with torch.inference_mode():
        for first in range(0, len(data.validation), 500):
            model(data.validation.x[first : first + 500])
    model.train()
    return wall + time.perf_counter() - start_wall, cpu + time.process_time() - start_cpu


# ----------------------------------------------------------------------------------------------
# ensemble workers
# ----------------------------------------------------------------------------------------------
_WORKER: dict = {}


def _worker_init(data_dir: str, barrier) -> None:
    torch.set_num_threads(1)
    tune_malloc()
    _WORKER["data_dir"] = data_dir
    _WORKER["data"] = {}
    _WORKER["barrier"] = barrier


def _recipe_data(recipe: str):
    if recipe not in _WORKER["data"]:
        _WORKER["data"][recipe] = load_recipe_data(_WORKER["data_dir"], PRESET, recipe, 0)
    return _WORKER["data"][recipe]


def ensemble_share_seconds(indices: list[int], n_batches: int, device: str, engine: str,
                           recipe: str = DEFAULT_RECIPE) -> tuple[float, float, float, int]:
    """Wall and CPU seconds of one epoch of this share (n_batches steps scaled to the recipe's steps per
    epoch, plus validation), and the peak RSS in KiB."""
    data = _recipe_data(recipe).to(device)
    training_recipe = get_recipe(recipe)
    states = []
    for i in indices:
        model = initial_model(i)
        training_recipe.prepare(model)
        states.append(ModelState(model.to(device), dropout_generator(i, device)))
    order = fixed_order(len(data.training), 0)
    K = len(states)
    steps_per_epoch = len(batch_slices(len(data.training), PRESET.batch_size))

    def steps(first: int, count: int) -> None:
        for number in range(first, first + count):
            x, y = training_batch(data.training, order, number % steps_per_epoch, PRESET.batch_size)
            x = training_recipe.batch_input(x, 0, 0, number)
            if recipe == DEFAULT_RECIPE:
                train_step(states, [x] * K, [y] * K, RECIPE, engine)
            else:
                training_recipe.step(states, [x] * K, [y] * K, RECIPE, engine)

    steps(0, 2)  # warm-up (numba, oneDNN primitive caches)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    if _WORKER.get("barrier") is not None:
        _WORKER["barrier"].wait()
    wall, cpu = time.perf_counter(), time.process_time()
    steps(2, n_batches)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    scale = steps_per_epoch / n_batches
    wall, cpu = (time.perf_counter() - wall) * scale, (time.process_time() - cpu) * scale
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    evaluate_models([s.model for s in states], data.validation, None, engine)
    wall += time.perf_counter() - start_wall
    cpu += time.process_time() - start_cpu
    return wall, cpu, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _share_job(args):
    return ensemble_share_seconds(*args)


def ensemble_seconds_per_model_epoch(pool, n_workers, K, n_batches, device, engine,
                                     recipe: str = DEFAULT_RECIPE) -> tuple[float, float, int]:
    """(wall, CPU) seconds per model-epoch of K models split over the pool's workers; summed worker peak RSS."""
    shares = [list(range(rank, K, n_workers)) for rank in range(n_workers)]
    if pool is None:
        results = [ensemble_share_seconds(shares[0], n_batches, device, engine, recipe)]
    else:
        results = pool.map(_share_job, [(share, n_batches, device, engine, recipe) for share in shares], chunksize=1)
    wall = max(w for w, _, _ in results)  # the epoch ends when the slowest worker is done
    cpu = sum(c for _, c, _ in results)
    return wall / K, cpu / K, sum(rss for _, _, rss in results)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, nargs="+", default=[8, 32, 100], help="ensemble sizes K")
    parser.add_argument("--batches", type=int, default=12, help="timed training steps per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (medians reported)")
    parser.add_argument("--workers", type=int, default=2, help="CPU worker processes of the ensemble trainer")
    parser.add_argument("--device", default="cpu", help="cpu (workers + fused engine) or cuda (stacked engine)")
    parser.add_argument("--data", type=Path, default=None, help="paper datasets folder (default: generated in a temp dir)")
    parser.add_argument("--recipes", nargs="+", choices=RECIPE_NAMES, default=[DEFAULT_RECIPE],
                        help="training recipes of the ensemble rows (default: paper)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data
        if data_dir is None:
            data_dir = Path(tmp) / "paper"
            write_datasets(PRESET, 0, data_dir, progress=False)
        data = load_training_data(data_dir, PRESET)
        device = args.device
        engine = default_engine(torch.device(device))
        cpu = device == "cpu"
        print(f"load average before: {os.getloadavg()[0]:.2f} (other processes compete for the {os.cpu_count()} cores)")
        print(f"data: {len(data.training)} training, {len(data.validation)} validation samples; "
              f"{args.batches} timed steps scaled to 94 per epoch, {args.repeats} rounds; torch {torch.__version__}")
        print(f"(b) engine {engine!r} on {device}" + (f", {args.workers} worker processes x 1 thread" if cpu else ""))
        rows = [(recipe, K) for recipe in args.recipes for K in args.models]
        plain, plain_one, ensemble, peak_rss = [], [], {row: [] for row in rows}, {}
        pool = None
        if cpu:
            context = multiprocessing.get_context("spawn")
            barrier = context.Barrier(args.workers)
            pool = context.Pool(args.workers, initializer=_worker_init, initargs=(str(data_dir), barrier))
        else:
            _worker_init(str(data_dir), None)
            torch.set_num_threads(2)
        try:
            for round_number in range(args.repeats):
                plain.append(plain_loop_seconds(data, args.batches, threads=2))
                plain_one.append(plain_loop_seconds(data, args.batches, threads=1))
                for recipe, K in rows:
                    wall, cpu_seconds, rss = ensemble_seconds_per_model_epoch(
                        pool, args.workers if cpu else 1, K, args.batches, device, engine, recipe
                    )
                    ensemble[recipe, K].append((wall, cpu_seconds))
                    peak_rss[K] = max(peak_rss.get(K, 0), rss)
                print(f"round {round_number + 1} (wall s / model-epoch): plain {plain[-1][0]:.3f}, "
                      f"plain 1 thread {plain_one[-1][0]:.3f}; "
                      + ", ".join(f"{recipe} K={K} {ensemble[recipe, K][-1][0]:.3f}" for recipe, K in rows), flush=True)
        finally:
            if pool is not None:
                pool.close()
                pool.join()
        base_wall = statistics.median(w for w, _ in plain)
        base_cpu = statistics.median(c for _, c in plain)
        print()
        print("medians; wall = elapsed seconds per model-epoch (what a run takes), "
              "CPU = CPU-seconds consumed per model-epoch")
        print(f"{'trainer':30s} {'recipe':>16s} {'wall s':>8s} {'model-epochs/s':>15s} {'speed-up':>9s} {'CPU s':>8s} {'CPU ratio':>10s}")
        print(f"{'(a) plain loop, 2 threads':30s} {'paper':>16s} {base_wall:8.3f} {1 / base_wall:15.2f} {1.0:9.2f} {base_cpu:8.3f} {1.0:10.2f}")
        one_wall = statistics.median(w for w, _ in plain_one)
        one_cpu = statistics.median(c for _, c in plain_one)
        print(f"{'    plain loop, 1 thread':30s} {'paper':>16s} {one_wall:8.3f} {1 / one_wall:15.2f} {base_wall / one_wall:9.2f} "
              f"{one_cpu:8.3f} {base_cpu / one_cpu:10.2f}")
        for recipe, K in rows:
            wall = statistics.median(w for w, _ in ensemble[recipe, K])
            cpu_seconds = statistics.median(c for _, c in ensemble[recipe, K])
            print(f"{f'(b) ensemble K={K}':30s} {recipe:>16s} {wall:8.3f} {1 / wall:15.2f} {base_wall / wall:9.2f} "
                  f"{cpu_seconds:8.3f} {base_cpu / cpu_seconds:10.2f}")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        K = max(args.models)
        main_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"\npeak memory, K={K}: workers {peak_rss[K] / 2**20:.2f} GiB + main process {main_rss / 2**20:.2f} GiB "
              f"= {(peak_rss[K] + main_rss) / 2**20:.2f} GiB (sum of per-process peak RSS)")
        if device.startswith("cuda"):
            print(f"GPU peak memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
