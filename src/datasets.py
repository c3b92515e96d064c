"""Dataset files on disk: which sets a preset needs, their names, writing and validated loading.

A preset's datasets live in one folder as ``<split>_W<W>.npz`` (e.g. ``training_W0.npz``,
``test_W0.15.npz``), each holding the arrays of :func:`src.data_generation.generate_dataset` and its
parameters, plus ``datasets.json`` describing all of them (preset, seed, sizes, class balance).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .data_generation import SPLITS, generate_dataset
from .io_utils import load_json, load_npz, save_json, save_npz
from .presets import Preset, get_preset

DATASET_KEYS = ("X", "labels", "v", "W")


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset file: its split, disorder strength and size."""

    split: str
    W: float
    n_samples: int

    @property
    def filename(self) -> str:
        return dataset_filename(self.split, self.W)


def dataset_filename(split: str, W: float) -> str:
    """File name of a dataset, e.g. ``dataset_filename("test", 0.15) == "test_W0.15.npz"``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return f"{split}_W{float(W):g}.npz"


def dataset_specs(preset: Preset | str) -> list[DatasetSpec]:
    """Every dataset a preset uses (SPEC §1).

    Clean training/validation/test sets, the perturbative W = 0.01, 0.05 sets for training and
    validation (and as test sets: they join the clean test set in the PCA reference cloud), and the
    out-of-distribution test sets ``preset.ood_W``.
    """
    preset = get_preset(preset)
    specs = [
        DatasetSpec("training", 0.0, preset.n_train),
        DatasetSpec("validation", 0.0, preset.n_validation),
        DatasetSpec("test", 0.0, preset.n_test),
    ]
    for W in preset.perturbative_W:
        specs += [
            DatasetSpec("training", W, preset.n_perturbative),
            DatasetSpec("validation", W, preset.n_perturbative),
            DatasetSpec("test", W, preset.n_test),
        ]
    specs += [DatasetSpec("test", W, preset.n_test) for W in preset.ood_W]
    return specs


def write_datasets(
    preset: Preset | str, seed: int, out_dir: str | Path, progress: bool = True,
    on_dataset: Callable[[int, int, DatasetSpec], None] | None = None,
) -> Path:
    """Generate and save every dataset of ``preset`` into ``out_dir``; returns the manifest path.

    Files already present with the same preset, seed and size are kept (the run is resumable).
    ``on_dataset(done, total, spec)`` is called before each dataset is checked or generated (a progress
    report for interfaces without a console, e.g. notebook widgets).
    """
    preset = get_preset(preset)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / "datasets.json"
    entries = []
    specs = dataset_specs(preset)
    for done, spec in enumerate(tqdm(specs, desc=f"datasets ({preset.name})", disable=not progress)):
        if on_dataset is not None:
            on_dataset(done, len(specs), spec)
        path = out_dir / spec.filename
        if not _is_current(path, spec, seed, preset.n_cells):
            data = generate_dataset(spec.split, spec.n_samples, spec.W, seed, n_cells=preset.n_cells)
            save_npz(path, data)
        labels = load_npz(path, required=("labels",))["labels"]
        entries.append(
            {
                "file": spec.filename,
                "split": spec.split,
                "W": spec.W,
                "n_samples": spec.n_samples,
                "n_topological": int((labels == 1).sum()),
            }
        )
    save_json(
        manifest_path,
        {"preset": preset.name, "seed": int(seed), "n_cells": preset.n_cells, "datasets": entries},
    )
    return manifest_path


def _is_current(path: Path, spec: DatasetSpec, seed: int, n_cells: int) -> bool:
    if not path.is_file():
        return False
    try:
        data = load_npz(path, required=("seed", "n_cells", "labels"))
    except ValueError:
        return False
    return (
        int(data["seed"]) == seed and int(data["n_cells"]) == n_cells and data["labels"].size == spec.n_samples
    )


def load_dataset(path: str | Path) -> dict[str, np.ndarray]:
    """Load one dataset file and check its arrays are consistent.

    Returns the arrays of the file; ``X`` is (N, M, M) float32, ``labels`` (N,) int64 in {0, 1}.
    Raises ``FileNotFoundError`` or ``ValueError`` naming the file when it is missing or malformed.
    """
    data = load_npz(path, required=DATASET_KEYS)
    X, labels = data["X"], data["labels"]
    if X.ndim != 3 or X.shape[1] != X.shape[2]:
        raise ValueError(f"{path}: X must have shape (N, M, M), got {X.shape}")
    if labels.shape != (X.shape[0],):
        raise ValueError(f"{path}: labels must have shape ({X.shape[0]},), got {labels.shape}")
    if labels.size and not np.isin(labels, (0, 1)).all():
        raise ValueError(f"{path}: labels must be 0 or 1")
    return data


def load_split(folder: str | Path, split: str, W: float = 0.0) -> dict[str, np.ndarray]:
    """Load ``<split>_W<W>.npz`` from a datasets folder, with a hint when it does not exist."""
    path = Path(folder) / dataset_filename(split, W)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: dataset not found; generate it with `python -m src data --preset <preset> --out {folder}`"
        )
    return load_dataset(path)


def read_manifest(folder: str | Path) -> dict:
    """The ``datasets.json`` of a datasets folder."""
    return load_json(Path(folder) / "datasets.json")
