"""Unlabeled disordered chains and every network's softmax on them, the input of the label-free estimators.

The estimators of :mod:`ssh_ood.ood.ood_estimators` see the target distribution only through unlabeled samples.
Here the target is the generalization grid's distribution: W on the preset's grid rows
``linspace(0, grid_W_max, grid_n_W)`` and v uniform in [0, grid_v_max), drawn by the project's generator
(:func:`ssh_ood.physics.data_generation.sample_hoppings`) from a seed of its own (default
:data:`UNLABELED_SEED`, not the grid's), :data:`CHAINS_PER_W` chains per W row (3,000 chains for the paper
preset). No label is computed: only the observables X of the open chains.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from ..base.device import select_device
from ..base.presets import Preset, get_preset
from ..base.validation import require_int
from ..nets.model_folders import load_model
from ..nets.prediction import require_density_input
from ..physics.data_generation import disorder_rng, observables, sample_hoppings

UNLABELED_SEED = 2021
CHAINS_PER_W = 30
#: stream key of the unlabeled chains under their seed (the grid uses key 3, the splits 0-2)
UNLABELED_STREAM = 21


def unlabeled_chains(preset: Preset | str, seed: int = UNLABELED_SEED, chains_per_W: int = CHAINS_PER_W) -> dict[str, np.ndarray]:
    """Unlabeled chains spread over the preset's generalization grid.

    Row r of the grid (W_r = r grid_W_max / (grid_n_W - 1)) gets ``chains_per_W`` chains with v ~ U(0,
    grid_v_max), all drawn from ``disorder_rng(seed, UNLABELED_STREAM, r)``.

    Returns
    -------
    ``{"X": float32 (N, 2 n_cells, 2 n_cells), "W": float64 (N,), "v": float64 (N,)}`` with
    N = grid_n_W * chains_per_W; no labels.
    """
    preset = get_preset(preset)
    chains_per_W = require_int("chains_per_W", chains_per_W, minimum=1)
    X, W_all, v_all = [], [], []
    for row, W in enumerate(np.linspace(0.0, preset.grid_W_max, preset.grid_n_W)):
        rng = disorder_rng(seed, UNLABELED_STREAM, row)
        v = rng.uniform(0.0, preset.grid_v_max, size=chains_per_W)
        v_n, w_n = sample_hoppings(v, float(W), rng, n_cells=preset.n_cells)
        X.append(observables(v_n, w_n).astype(np.float32))
        W_all.append(np.full(chains_per_W, W))
        v_all.append(v)
    return {"X": np.concatenate(X), "W": np.concatenate(W_all), "v": np.concatenate(v_all)}


def softmax_outputs(model: torch.nn.Module, X: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Softmax (N, C) float64 of an eval-mode model on inputs X (N, H, W), in batches, without gradients.

    Real-valued input only (one channel); a thermometer-encoded network is refused with ``ValueError``.
    """
    if getattr(model, "in_channels", 1) != 1:
        raise ValueError(f"softmax_outputs takes real-valued networks (1 input channel), got {model.in_channels}")
    device = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for start in range(0, len(X), batch_size):
            batch = torch.as_tensor(X[start : start + batch_size], dtype=torch.float32, device=device)[:, None]
            out.append(torch.softmax(model(batch).double(), dim=1).cpu().numpy())
    return np.concatenate(out)


def population_softmax(
    model_dirs: Sequence[str | Path], inputs: dict[str, np.ndarray], threads: int | None = None,
    device: str | None = None, batch_size: int = 1000,
) -> dict[str, np.ndarray]:
    """Softmax of every network on every input set: name -> (M, N_name, C) float64.

    ``threads``: torch and BLAS threads on the CPU (default: torch's current setting); ``device``: as
    :func:`ssh_ood.base.device.select_device` (default: CUDA or MPS if present, else the CPU).
    """
    target = select_device(device)
    previous = torch.get_num_threads()
    limit = threads or previous
    torch.set_num_threads(limit)
    try:
        with threadpool_limits(limits=limit):
            per_model = []
            for model_dir in model_dirs:
                require_density_input(model_dir, "the unlabeled-softmax estimators")
                model = load_model(model_dir, device=target)
                per_model.append({name: softmax_outputs(model, X, batch_size) for name, X in inputs.items()})
    finally:
        torch.set_num_threads(previous)
    return {name: np.stack([outputs[name] for outputs in per_model]) for name in inputs}
