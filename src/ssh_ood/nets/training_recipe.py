"""The paper's training recipe as data: model seeds, the early-stopping rule, a run's settings and identity.

:class:`RunSettings` holds everything a group of models needs to train; :meth:`RunSettings.model_config`
is what each model folder's ``config.json`` records, and :meth:`RunSettings.run_identity` is the part
shared by every model of a run folder (``run.json``, see :mod:`ssh_ood.base.run_folders`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..base.presets import Preset
from ..base.validation import require_int
from .architecture import build_model, count_parameters
from .data_loaders import TrainingData
from .ensemble_training import SGDRecipe
from .recipes import DEFAULT_RECIPE, Recipe, get_recipe

SEED_STRIDE = 1_000_000
#: largest run seed: every model seed ``seed * SEED_STRIDE + index`` must fit torch's signed 64-bit seed
#: (numpy accepts any non-negative integer)
MAX_SEED = (2**63 - 1) // SEED_STRIDE - 1
# the part of a model's configuration shared by every model of a run folder (run.json)
RUN_IDENTITY_KEYS = ("preset", "recipe", "base_seed", "thermometer_levels", "n_cells", "shared_order", "data_sha256")
_IDENTITY_KEYS = (
    "preset",
    "recipe",
    "model_seed",
    "base_seed",
    "index",
    "thermometer_levels",
    "n_cells",
    "shared_order",
    "data_sha256",
    "device_type",
)


# ----------------------------------------------------------------------------------------------
# seeds and the early-stopping rule
# ----------------------------------------------------------------------------------------------
def model_seed(base_seed: int, index: int) -> int:
    """Seed of model ``index`` of a run with base seed ``base_seed``: ``base_seed * 10**6 + index``.

    It seeds the model's initialization and (through :func:`ssh_ood.nets.ensemble_training.dropout_generator`)
    its dropout masks. With base seed 0, model i has seed i.
    """
    check_seed(base_seed, "base_seed")
    index = require_int("index", index, minimum=0, maximum=SEED_STRIDE - 1)
    return int(base_seed) * SEED_STRIDE + index


def warmup_epochs(max_epochs: int, warmup_fraction: float) -> int:
    """Epochs before early stopping may act: ``ceil(warmup_fraction * max_epochs)`` (100 of 1000)."""
    return math.ceil(warmup_fraction * max_epochs - 1e-9)


def should_stop(val_losses: Sequence[float], patience: int, tolerance: float, warmup: int) -> bool:
    """The paper's early-stopping rule after the epoch that produced ``val_losses[-1]`` (docs/physics_and_methods.md §4).

    If the last validation loss is a new minimum, continue. Otherwise stop iff at least ``warmup``
    epochs have run and each of the last ``patience`` losses lies within ``tolerance`` of the minimum
    so far (a plateau). A rising loss never stops training; non-finite losses never count as a plateau.
    """
    if patience < 1 or tolerance < 0 or warmup < 0:
        raise ValueError(f"need patience >= 1, tolerance >= 0, warmup >= 0; got {patience}, {tolerance}, {warmup}")
    epoch = len(val_losses)
    if epoch == 0:
        return False
    current = float(val_losses[-1])
    best_before = min((float(v) for v in val_losses[:-1] if math.isfinite(v)), default=math.inf)
    if math.isfinite(current) and current < best_before:
        return False
    if epoch < max(warmup, patience):
        return False
    best = min(best_before, current) if math.isfinite(current) else best_before
    return all(math.isfinite(v) and v - best <= tolerance for v in val_losses[-patience:])


# ----------------------------------------------------------------------------------------------
# configuration of a run
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunSettings:
    """Everything a group of models needs to train (picklable, sent to worker processes)."""

    preset: Preset
    data_dir: str
    out_dir: str
    base_seed: int
    device: str
    engine: str
    max_epochs: int
    early_stopping: bool
    thermometer_levels: int | None
    shared_order: bool
    data_sha256: str
    recipe_name: str = DEFAULT_RECIPE

    @property
    def training_recipe(self) -> Recipe:
        """The :class:`ssh_ood.nets.recipes.Recipe` the run trains with (the paper's by default)."""
        return get_recipe(self.recipe_name)

    @property
    def warmup(self) -> int:
        return warmup_epochs(self.max_epochs, self.preset.warmup_fraction)

    @property
    def sgd(self) -> SGDRecipe:
        return SGDRecipe(self.preset.lr, self.preset.momentum, self.preset.weight_decay)

    def recipe(self) -> dict:
        p = self.preset
        return {
            "optimizer": "SGD",
            "loss": "cross_entropy",
            "lr": p.lr,
            "momentum": p.momentum,
            "weight_decay": p.weight_decay,
            "batch_size": p.batch_size,
            "max_epochs": self.max_epochs,
            "early_stopping": self.early_stopping,
            "patience": p.patience,
            "tolerance": p.tolerance,
            "warmup_fraction": p.warmup_fraction,
            "warmup_epochs": self.warmup,
            # a recipe other than the paper's adds its name and settings; the paper's record stays as it was
            **({"variant": self.training_recipe.record()} if self.recipe_name != DEFAULT_RECIPE else {}),
        }

    def run_identity(self) -> dict:
        """What every model of the run folder shares (:data:`RUN_IDENTITY_KEYS`), as ``run.json`` stores it."""
        config = self.model_config(0, 0, 0)
        return {key: config[key] for key in RUN_IDENTITY_KEYS}

    def model_config(self, index: int, n_training: int, n_validation: int) -> dict:
        device = torch.device(self.device)
        return {
            "preset": self.preset.name,
            "recipe": self.recipe(),
            "model_seed": model_seed(self.base_seed, index),
            "base_seed": self.base_seed,
            "index": index,
            "thermometer_levels": self.thermometer_levels,
            "n_cells": self.preset.n_cells,
            "shared_order": self.shared_order,
            "data_order": (
                "fixed shuffle (same every epoch) drawn from "
                + ("the base seed, shared by all models" if self.shared_order else "the model seed")
            ),
            "data_dir": self.data_dir,
            "data_sha256": self.data_sha256,
            "n_training_samples": n_training,
            "n_validation_samples": n_validation,
            "architecture": "CNN_SSH_ThermEncod" if self.thermometer_levels else "CNN_SSH",
            "n_parameters": count_parameters(build_model(self.thermometer_levels)),
            "dropout": "Bernoulli(0.5) keep bits from the model's own torch.Generator (src.fast_dropout)",
            "engine": self.engine,
            "device": str(device),
            "device_type": device.type,
            "torch_version": str(torch.__version__),
            "numpy_version": str(np.__version__),
            "preset_fields": self.preset.to_dict(),
        }


def check_seed(seed: int, name: str = "seed") -> int:
    """``seed`` as an int if it is an integer in [0, :data:`MAX_SEED`]; ``ValueError`` naming ``name`` if not."""
    return require_int(name, seed, minimum=0, maximum=MAX_SEED)


def data_fingerprint(data: TrainingData) -> str:
    """SHA-256 of the training and validation inputs and labels (detects changed data on resume)."""
    digest = hashlib.sha256()
    for split in (data.training, data.validation):
        digest.update(split.x.cpu().numpy().tobytes())
        digest.update(split.y.cpu().numpy().tobytes())
    return digest.hexdigest()


def _identity(config: dict) -> dict:
    return {key: config.get(key) for key in _IDENTITY_KEYS}


def check_same_run(model_dir: Path, stored: dict, expected: dict) -> None:
    stored_id, expected_id = _identity(stored), _identity(expected)
    if stored_id != expected_id:
        differences = [f"{k}: {stored_id[k]!r} vs {expected_id[k]!r}" for k in _IDENTITY_KEYS if stored_id[k] != expected_id[k]]
        raise ValueError(
            f"{model_dir} holds a model of a different run ({'; '.join(differences)}); "
            "choose another output folder or delete that model folder"
        )


