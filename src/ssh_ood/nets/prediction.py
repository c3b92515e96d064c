"""A trained network as a function of the chain: ``predict_phase(model_dir, v, w)``, whatever it reads.

A network's input is one of several representations of the chain (:mod:`ssh_ood.physics.representations`: the
paper's densities, or what a recipe of :mod:`ssh_ood.nets.recipes` names), possibly thermometer-encoded. The model
folder's ``config.json`` records both (the recipe, ``thermometer_levels``); :func:`model_input` builds the input
from the hoppings exactly as the training data were built from the dataset files, so a caller only gives chains.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from ..physics.representations import DEFAULT_REPRESENTATION, represent
from .data_loaders import encode_input
from .model_folders import load_config, load_model
from .recipes import get_recipe

PREDICT_BATCH = 2048


def config_representation(config: Mapping) -> str:
    """The input representation a model with this ``config.json`` reads (its recipe's; the paper's densities
    for a model trained before recipes existed)."""
    variant = config.get("recipe", {}).get("variant")
    if variant is None:
        return DEFAULT_REPRESENTATION
    return get_recipe(variant.get("name")).representation


def folder_representation(model_dir: str | Path) -> str:
    """The input representation the model of ``model_dir`` reads: its ``config.json``'s, or the paper's densities
    for a folder of weights without one (a network built outside the trainer)."""
    if not (Path(model_dir) / "config.json").is_file():
        return DEFAULT_REPRESENTATION
    return config_representation(load_config(model_dir))


def require_density_input(model_dir: str | Path, purpose: str) -> None:
    """``ValueError`` unless the model of ``model_dir`` reads the paper's density images, which ``purpose`` (a reader
    that builds or edits such images itself: the clean-data probes, the unlabeled-softmax estimators, BatchNorm
    recalibration) feeds it; a network of another input representation would get meaningless input."""
    representation = folder_representation(model_dir)
    if representation != DEFAULT_REPRESENTATION:
        raise ValueError(f"{model_dir}: reads the {representation!r} representation, but {purpose} feeds density "
                         "images; not supported for this network")


def model_input(config: Mapping, v_n: np.ndarray, w_n: np.ndarray, X: np.ndarray | None = None) -> torch.Tensor:
    """The input tensor (N, C, H, H) float32 a model with ``config`` reads for the chains (v_n, w_n).

    ``X`` (N, M, M): the chains' density images if already computed (reused, not recomputed).
    """
    x = torch.from_numpy(np.ascontiguousarray(represent(config_representation(config), v_n, w_n, X))).unsqueeze(1)
    return encode_input(x, config.get("thermometer_levels"))


def _hoppings(v: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(v, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if v.ndim != 2 or v.shape != w.shape or v.shape[0] < 1:
        raise ValueError(f"v and w must both have shape (N, n_cells) with N >= 1 (w[:, -1] the closing bond); "
                         f"got {v.shape} and {w.shape}")
    return v, w


@torch.no_grad()
def predict_phase(model_dir: str | Path, v: np.ndarray, w: np.ndarray, which: str = "last",
                  batch_size: int = PREDICT_BATCH) -> np.ndarray:
    """Probability of the topological phase that a trained network gives each chain.

    Parameters
    ----------
    model_dir : a trained model's folder (``config.json``, ``weights.pt`` / ``best_weights.pt``).
    v, w : (N, n_cells) intracell and intercell hoppings of each chain, the closing bond ``w[:, -1]`` included
        (the network never sees it: its input is the open chain). ``n_cells`` must be the model's.
    which : ``"last"`` (the paper's last-epoch weights) or ``"best"``.
    batch_size : chains per forward pass.

    Returns
    -------
    p : float64 (N,), the softmax probability of class 1 (topological), evaluation mode (BatchNorm running
        statistics, no dropout). The model's input representation and encoding are read from ``config.json``.
    """
    v, w = _hoppings(v, w)
    config = load_config(model_dir)
    if v.shape[1] != config["n_cells"]:
        raise ValueError(f"{model_dir}: the model reads chains of {config['n_cells']} cells, got {v.shape[1]}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    model = load_model(model_dir, which=which, device="cpu")
    out = np.empty(v.shape[0])
    for start in range(0, v.shape[0], batch_size):
        part = slice(start, start + batch_size)
        logits = model(model_input(config, v[part], w[part]))
        out[part] = torch.softmax(logits.double(), dim=1)[:, 1].numpy()
    return out
