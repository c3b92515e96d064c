"""ProjNorm, the projection norm: Yu, Yang, Wei, Ma & Steinhardt (2022), "Predicting out-of-distribution error
with the projection norm", ICML (arXiv 2202.05834), Algorithm 1.

The paper's recipe, for a classifier θ̂ fine-tuned from a pre-trained θ_0 on labelled training data:

1. pseudo-label the unlabeled target samples x̃_1..m with θ̂: ŷ_j = argmax_c f_θ̂(x̃_j)_c;
2. θ̃ = θ_0 fine-tuned on (x̃, ŷ) for a small budget of n SGD iterations;
3. θ̂_ref = θ_0 fine-tuned the same way (same seed, optimizer and n) on labelled in-distribution data;
4. ProjNorm = ||θ̂_ref - θ̃||_2 over all trainable parameters.

The larger the norm, the larger the predicted target error: it is a score, not an accuracy. θ̂ enters only through
its pseudo-labels; the shared θ_0 and the fixed budget keep both copies in the neighbourhood of θ_0 where the
paper's linear-model analysis holds.

**Adaptation to this setting.** The paper's θ_0 is an ImageNet-pre-trained backbone, the point from which the
classifier θ̂ itself was fine-tuned. These networks have no pre-trained backbone: each was trained from its
own seeded initialization (:func:`ssh_ood.nets.ensemble_training.initial_model` of its ``model_seed``). That
initialization plays θ_0's role here: both copies start where the network itself started, as both of the
paper's copies start where its classifier started. (Fine-tuning from the *trained* weights instead would fit
the network to its own predictions, a measure of its confidence, not the paper's quantity.) The optimizer is
the network's own training recipe (SGD, learning rate, momentum, weight decay of its preset), with the
paper's cosine annealing of the learning rate to 0 over the n iterations; the batches are drawn from a fixed
shuffle per pass over the set, from ``seed`` (also the seed of the dropout masks, the same for both copies).
The in-distribution set of θ̂_ref is the caller's labelled source set. Training runs on the CPU with the
project's fused engine (:func:`ssh_ood.nets.ensemble_training.train_step`), one torch thread: bitwise
reproducible for a given seed.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..base.validation import require_int
from ..nets.architecture import CNN_SSH
from ..nets.data_loaders import batch_slices
from ..nets.ensemble_training import ModelState, SGDRecipe, dropout_generator, initial_model, train_step
from ..nets.model_folders import load_config
from ..nets.training_processes import single_thread, tune_malloc

#: default fine-tuning budget: SGD iterations of each copy (the paper's code uses 50 to 500)
DEFAULT_STEPS = 100
DEFAULT_BATCH_SIZE = 64
_ORDER_STREAM = 0x706E6F72  # "pnor": the batch order's stream under the seed


@dataclass(frozen=True)
class ProjNormResult:
    """``norm``: ||θ_ref - θ̃||_2; ``reference``, ``target``: the two fine-tuned copies; ``seconds``: wall time."""

    norm: float
    reference: CNN_SSH
    target: CNN_SSH
    seconds: float


def pseudo_labels(P: np.ndarray) -> np.ndarray:
    """The network's predicted classes argmax_c P[i, c], (N,) int64, from its softmax ``P`` (N, C)."""
    P = np.asarray(P)
    if P.ndim != 2 or P.shape[0] < 1:
        raise ValueError(f"P must be an (N, C) softmax matrix with N >= 1, got shape {P.shape}")
    return P.argmax(axis=1).astype(np.int64)


def parameter_distance(a: nn.Module, b: nn.Module) -> float:
    """Euclidean distance sqrt(sum_k ||a_k - b_k||^2) over the trainable parameters of two modules of one architecture
    (BatchNorm running statistics are buffers, not parameters, and do not count)."""
    pa, pb = list(a.parameters()), list(b.parameters())
    if len(pa) != len(pb) or any(x.shape != y.shape for x, y in zip(pa, pb, strict=True)):
        raise ValueError("the two networks must have the same architecture (parameters of the same shapes)")
    with torch.no_grad():
        total = sum(float(torch.sum((x.double() - y.double()) ** 2)) for x, y in zip(pa, pb, strict=True))
    return math.sqrt(total)


def batch_order(n_samples: int, steps: int, batch_size: int, seed: int) -> list[np.ndarray]:
    """Indices of the ``steps`` batches of a fine-tuning on ``n_samples`` samples.

    Pass p over the set is the permutation ``default_rng([seed, p, stream]).permutation(n_samples)`` cut into
    consecutive batches of ``min(batch_size, n_samples)`` (the last one of a pass may be smaller); passes follow
    one another until ``steps`` batches are drawn. Two sets of the same size get the same order.
    """
    n_samples = require_int("n_samples", n_samples, minimum=1)
    steps = require_int("steps", steps, minimum=1)
    batch_size = require_int("batch_size", batch_size, minimum=1)
    batches: list[np.ndarray] = []
    epoch = 0
    while len(batches) < steps:
        order = np.random.default_rng([int(seed), epoch, _ORDER_STREAM]).permutation(n_samples)
        batches += [order[s] for s in batch_slices(n_samples, min(batch_size, n_samples))]
        epoch += 1
    return batches[:steps]


def _as_split(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    y_array = np.asarray(y)
    if x.ndim != 3 or x.shape[0] < 1:
        raise ValueError(f"{name} inputs must be (N, M, M) observables with N >= 1, got shape {tuple(x.shape)}")
    if y_array.shape != (x.shape[0],):
        raise ValueError(f"{name} labels must have shape ({x.shape[0]},), got {y_array.shape}")
    if not np.isin(y_array, (0, 1)).all():
        raise ValueError(f"{name} labels must be classes 0 or 1")
    return x[:, None], torch.as_tensor(y_array.astype(np.int64))


def cosine_lr(lr: float, step: int, steps: int) -> float:
    """Learning rate of iteration ``step`` (0-based) of ``steps``: lr (1 + cos(pi step / steps)) / 2, the paper's
    cosine annealing to 0 (``torch.optim.lr_scheduler.CosineAnnealingLR`` with T_max = steps, eta_min = 0)."""
    return lr * (1.0 + math.cos(math.pi * step / steps)) / 2.0


def projection_norm(initial: CNN_SSH, source_x: np.ndarray, source_labels: np.ndarray, target_x: np.ndarray,
                    target_pseudo_labels: np.ndarray, recipe: SGDRecipe, steps: int = DEFAULT_STEPS,
                    batch_size: int = DEFAULT_BATCH_SIZE, seed: int = 0) -> ProjNormResult:
    """ProjNorm ||θ_ref - θ̃||_2 of one network (Yu et al. 2022, Algorithm 1; module docstring for the adaptation).

    Parameters
    ----------
    initial : θ_0, the network both copies start from (left unchanged; real-valued input, one channel).
    source_x, source_labels : (N_s, M, M) labelled in-distribution observables and their classes (N_s,) in {0, 1}.
    target_x, target_pseudo_labels : (N_t, M, M) unlabeled target observables and the network's pseudo-labels
        (:func:`pseudo_labels` of its softmax on them), (N_t,) in {0, 1}.
    recipe : SGD learning rate (annealed to 0 by :func:`cosine_lr`), momentum and weight decay.
    steps : fine-tuning budget, SGD iterations of each copy (>= 1).
    batch_size : samples per iteration (>= 1).
    seed : batch order (:func:`batch_order`) and dropout masks, the same for both copies.

    Returns
    -------
    :class:`ProjNormResult`; ``norm`` is 0 when the target set and its pseudo-labels equal the source set and its
    labels (the two copies see the same batches and masks and end bitwise equal).
    """
    steps = require_int("steps", steps, minimum=1)
    batch_size = require_int("batch_size", batch_size, minimum=1)
    seed = require_int("seed", seed, minimum=0)
    if not isinstance(initial, CNN_SSH) or initial.in_channels != 1:
        raise ValueError("projection_norm takes a real-valued CNN_SSH (one input channel) as the initial network")
    if not (recipe.lr > 0 and recipe.momentum >= 0 and recipe.weight_decay >= 0):
        raise ValueError(f"recipe needs lr > 0, momentum >= 0 and weight_decay >= 0, got {recipe}")
    sets = [_as_split(source_x, source_labels, "source"), _as_split(target_x, target_pseudo_labels, "target")]
    if sets[0][0].shape[1:] != sets[1][0].shape[1:]:
        raise ValueError(f"source and target observables differ in size: {tuple(sets[0][0].shape[1:])} and "
                         f"{tuple(sets[1][0].shape[1:])}")
    start = time.perf_counter()
    states = [ModelState(copy.deepcopy(initial).train(), dropout_generator(seed)) for _ in sets]
    orders = [batch_order(len(y), steps, batch_size, seed) for _, y in sets]
    with single_thread():
        for step in range(steps):
            inputs = [x[order[step]] for (x, _), order in zip(sets, orders, strict=True)]
            targets = [y[order[step]] for (_, y), order in zip(sets, orders, strict=True)]
            lr = cosine_lr(recipe.lr, step, steps)
            train_step(states, inputs, targets, SGDRecipe(lr, recipe.momentum, recipe.weight_decay), "fused")
    reference, target = (state.model.eval() for state in states)
    return ProjNormResult(parameter_distance(reference, target), reference, target, time.perf_counter() - start)


# ----------------------------------------------------------------------------------------------
# a population
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProjNormSettings:
    """The fine-tuning budget of :func:`population_projection_norms`: ``steps`` iterations of ``batch_size``
    samples per copy, batch order and dropout from ``seed``."""

    steps: int = DEFAULT_STEPS
    batch_size: int = DEFAULT_BATCH_SIZE
    seed: int = 0

    def __post_init__(self) -> None:
        require_int("steps", self.steps, minimum=1)
        require_int("batch_size", self.batch_size, minimum=1)
        require_int("seed", self.seed, minimum=0)


def population_projection_norms(model_dirs: Sequence[str | Path], source_x: np.ndarray, source_labels: np.ndarray,
                                target_x: np.ndarray, target_softmax: np.ndarray,
                                settings: ProjNormSettings = ProjNormSettings()) -> pd.DataFrame:
    """:func:`projection_norm` of every network, each from its own initialization (θ_0 = ``initial_model`` of the
    ``model_seed`` in its ``config.json``) with its own recipe's SGD settings.

    ``target_softmax``: (M, N_t, C) softmax of the M networks on ``target_x``, whose argmax are the pseudo-labels.
    Returns one row per network: ``projnorm``, ``projnorm_seconds`` (wall time of its two fine-tunings),
    ``projnorm_steps``, ``projnorm_batch_size``, ``projnorm_seed``. Keeps freed activation buffers in this
    process's heap (:func:`ssh_ood.nets.training_processes.tune_malloc`, as the trainer's workers do).
    """
    if len(model_dirs) != len(target_softmax):
        raise ValueError(f"{len(model_dirs)} networks but {len(target_softmax)} softmax matrices")
    tune_malloc()
    rows = []
    for model_dir, P in zip(model_dirs, target_softmax, strict=True):
        config = load_config(model_dir)
        if config.get("thermometer_levels"):
            raise ValueError(f"{model_dir}: ProjNorm takes real-valued networks, this one is thermometer-encoded")
        recipe = SGDRecipe(float(config["recipe"]["lr"]), float(config["recipe"]["momentum"]),
                           float(config["recipe"]["weight_decay"]))
        result = projection_norm(initial_model(int(config["model_seed"])), source_x, source_labels, target_x,
                                 pseudo_labels(P), recipe, settings.steps, settings.batch_size, settings.seed)
        rows.append({"projnorm": result.norm, "projnorm_seconds": result.seconds, "projnorm_steps": settings.steps,
                     "projnorm_batch_size": settings.batch_size, "projnorm_seed": settings.seed})
    return pd.DataFrame(rows)
