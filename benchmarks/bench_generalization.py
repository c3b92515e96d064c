"""Out-of-distribution evaluation speed: one model vs an ensemble of K evaluated together, side by side.

(1) Full evaluation (chain generation + winding-number labels + inference + metrics), the code path of
    ``python -m ssh_ood population`` (:func:`ssh_ood.ood.generalization.evaluate_grid` with a
    :class:`~ssh_ood.ood.generalization.CNNEnsemble`), on ``--rows`` rows of the paper's grid (R = 10
    realizations x 200 values of v = 2,000 chains per row) for 1 model and for K models. Reported:
    chains/s and model-chains/s, and the extrapolation to the paper's 200,000-chain grid for 1 model
    and for 100 models (evaluated in ensembles of K).
(2) Where the time goes, on one 2,000-chain chunk: generation alone, and inference of K models with the
    three ways of running an ensemble: ``fused`` (models one after the other, BatchNorm folded into the
    convolutions; the default on CPU), ``stacked`` (one network with K times the channels, grouped
    convolutions; the default on CUDA) and ``vmap`` (``torch.func.stack_module_state`` +
    ``functional_call`` + ``vmap``).

Untrained ``CNN_SSH`` models are used (the weights do not change the cost). Rounds run interleaved
``--repeats`` times and medians are printed, so the ratios share the same background load.

    python benchmarks/bench_generalization.py                   # ~5 minutes on a busy 2-core machine
    python benchmarks/bench_generalization.py --rows 1 --repeats 1 --ensemble 8    # a quick look
    python benchmarks/bench_generalization.py --device cuda --ensemble 100
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import numpy as np
import torch

from ssh_ood.base.device import select_device  # noqa: E402
from ssh_ood.base.presets import get_preset  # noqa: E402
from ssh_ood.nets.architecture import CNN_SSH  # noqa: E402
from ssh_ood.nets.data_loaders import TensorSplit  # noqa: E402
from ssh_ood.nets.ensemble_training import evaluate_models  # noqa: E402
from ssh_ood.nets.training_processes import available_cpus, tune_malloc  # noqa: E402
from ssh_ood.ood.generalization import CNNEnsemble, GeneralizationGrid, evaluate_grid, thread_limits  # noqa: E402
from ssh_ood.physics.data_generation import observables, winding_number  # noqa: E402

PAPER = get_preset("paper")
PAPER_GRID_CHAINS = PAPER.grid_n_W * PAPER.grid_n_realizations * PAPER.grid_n_v
PAPER_MODELS = PAPER.n_models


def make_models(n_models: int) -> list[CNN_SSH]:
    """Untrained models with non-trivial BatchNorm running statistics, in eval mode."""
    torch.manual_seed(0)
    models = []
    for _ in range(n_models):
        model = CNN_SSH()
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 2.0)
        models.append(model.eval())
    return models


def full_evaluation_seconds(models, grid, device) -> float:
    ensemble = CNNEnsemble(models, device=device)
    start = time.perf_counter()
    with torch.inference_mode():
        evaluate_grid(ensemble, len(models), grid, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def vmap_predict(models, device):
    params, buffers = torch.func.stack_module_state([m.to(device) for m in models])
    base = copy.deepcopy(models[0]).to("meta")

    def one(p, b, x):
        return torch.func.functional_call(base, (p, b), (x,))

    def predict(x):
        return torch.vmap(one, in_dims=(0, 0, None))(params, buffers, x).argmax(-1)

    return predict


def inference_seconds(method: str, models, x: torch.Tensor, y: torch.Tensor, batch_size: int, device) -> float:
    split = TensorSplit(x, y, ("bench",)).to(device)
    start = time.perf_counter()
    with torch.inference_mode():
        if method == "vmap":
            predict = vmap_predict(models, device)
            for s in range(0, len(y), batch_size):
                predict(split.x[s : s + batch_size])
        else:
            evaluate_models(models, split, None, method, batch_size if method == "fused" else None)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3, help="rows of the paper grid per full evaluation (2,000 chains each)")
    parser.add_argument("--ensemble", type=int, default=32, help="models K evaluated together")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (medians reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the full evaluation (default 1)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    device = select_device(args.device)
    tune_malloc()
    grid = GeneralizationGrid(
        n_W=args.rows, W_max=PAPER.grid_W_max, n_realizations=PAPER.grid_n_realizations,
        n_v=PAPER.grid_n_v, v_max=PAPER.grid_v_max, seed=0, n_cells=PAPER.n_cells,
    )
    ensemble = make_models(args.ensemble)
    single = ensemble[:1]
    K = args.ensemble
    cores = available_cpus()
    chunk = grid.row_hoppings(min(1, args.rows - 1))
    x = torch.from_numpy(observables(*chunk).astype(np.float32)).unsqueeze(1)
    y = torch.from_numpy(winding_number(*chunk))
    inference_cases = [(m, t) for m in ("fused", "stacked", "vmap") for t in dict.fromkeys((1, cores))]
    full_evaluation_seconds(single, GeneralizationGrid(1, 0.0, 1, 20, 2.0, 0), device)  # warm-up (numba, oneDNN)
    times: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        with thread_limits(args.threads):
            times.setdefault("full_1", []).append(full_evaluation_seconds(single, grid, device))
            times.setdefault("full_K", []).append(full_evaluation_seconds(ensemble, grid, device))
            start = time.perf_counter()
            observables(*chunk).astype(np.float32)
            winding_number(*chunk)
            times.setdefault("generation", []).append(time.perf_counter() - start)
        for method, threads in inference_cases:
            with thread_limits(threads):
                for k, models in ((1, single), (K, ensemble)):
                    batch_size = 250 if method == "fused" else max(16, 16384 // k)
                    seconds = inference_seconds(method, models, x, y, batch_size, device)
                    times.setdefault(f"{method}_{threads}_{k}", []).append(seconds)
    med = {key: statistics.median(values) for key, values in times.items()}
    n_chains = grid.n_samples
    print(f"device {device}, {cores} usable cores, rows {args.rows} x 2,000 chains, K = {K}, "
          f"medians of {args.repeats} interleaved rounds")
    print(f"\n(1) full evaluation (generation + labels + inference + metrics), {args.threads} torch thread(s)")
    print(f"{'':24s}{'1 model':>14s}{f'{K} models':>14s}{'ratio':>9s}")
    rate_1 = n_chains / med["full_1"]
    rate_K = n_chains / med["full_K"]
    print(f"{'chains/s':24s}{rate_1:14.0f}{rate_K:14.0f}{rate_K / rate_1:9.2f}")
    print(f"{'model-chains/s':24s}{rate_1:14.0f}{rate_K * K:14.0f}{rate_K * K / rate_1:9.2f}")
    one_model = PAPER_GRID_CHAINS / rate_1
    hundred_alone = PAPER_MODELS * one_model
    hundred_ensembles = PAPER_MODELS * PAPER_GRID_CHAINS / (rate_K * K)
    print(f"\npaper grid ({PAPER_GRID_CHAINS:,} chains), extrapolated:")
    print(f"  1 model                          {one_model:8.1f} s   (goal <= 30 s)")
    print(f"  100 models, one at a time        {hundred_alone / 60:8.1f} min")
    print(f"  100 models, ensembles of {K:<3d}     {hundred_ensembles / 60:8.1f} min   (goal <= 20 min)")
    chunk_chains = len(y)
    print(f"\n(2) one chunk of {chunk_chains} chains: generation + labels {med['generation'] * 1e3:.0f} ms "
          f"({chunk_chains / med['generation']:.0f} chains/s, numba on all cores)")
    print(f"{'inference, ms per model':28s}{'K = 1':>10s}{f'K = {K}':>10s}")
    for method, threads in inference_cases:
        key = f"{method}_{threads}"
        print(f"{f'{method}, {threads} thread(s)':28s}{med[f'{key}_1'] * 1e3:10.1f}{med[f'{key}_{K}'] * 1e3 / K:10.1f}")


if __name__ == "__main__":
    main()
