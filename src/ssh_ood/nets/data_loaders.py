"""From the ``.npz`` datasets (or straight from the generator) to PyTorch tensors, batches and devices.

docs/physics_and_methods.md §2-§4: the network sees X as (N, 1, M, M) float32 (M = 50 sites), labels as int64. Training and
validation sets are the clean set with the perturbative W = 0.01 and 0.05 sets appended (never the
test set, which stays clean). Batches follow a fixed shuffle: one permutation, drawn from a seed, reused
every epoch, as in the paper, where every run used the same fixed order. With ``thermometer_levels = L`` the inputs are thermometer-encoded batch by batch (N, L, M, M).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..base.presets import Preset, get_preset
from ..physics.data_generation import generate_dataset
from ..physics.datasets import dataset_filename, load_split
from ..physics.no_peeking import require_clean
from ..physics.representations import DEFAULT_REPRESENTATION, represent
from ..physics.thermometer_encoding import thermometer_encode

SPLIT_NAMES = ("training", "validation", "test")


@dataclass(frozen=True)
class TensorSplit:
    """One split as tensors: ``x`` (N, 1, M, M) float32 in [0, 1], ``y`` (N,) int64 in {0, 1}.

    ``sources`` names the dataset files concatenated into it, in order.
    """

    x: torch.Tensor
    y: torch.Tensor
    sources: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.x.ndim != 4 or self.x.shape[1] != 1 or self.x.dtype != torch.float32:
            raise ValueError(f"x must be float32 of shape (N, 1, M, M), got {self.x.dtype} {tuple(self.x.shape)}")
        if self.y.shape != (self.x.shape[0],) or self.y.dtype != torch.int64:
            raise ValueError(f"y must be int64 of shape ({self.x.shape[0]},), got {self.y.dtype} {tuple(self.y.shape)}")

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to(self, device: torch.device | str) -> TensorSplit:
        """Copy to ``device`` (through pinned memory when it is a CUDA device)."""
        device = torch.device(device)
        if device == self.x.device:
            return self
        x, y = self.x, self.y
        if device.type == "cuda":
            x, y = x.pin_memory(), y.pin_memory()
        return TensorSplit(x.to(device, non_blocking=True), y.to(device, non_blocking=True), self.sources)


@dataclass(frozen=True)
class TrainingData:
    """The three splits a training run uses (training and validation include the perturbative sets)."""

    training: TensorSplit
    validation: TensorSplit
    test: TensorSplit

    def to(self, device: torch.device | str) -> TrainingData:
        return TrainingData(self.training.to(device), self.validation.to(device), self.test.to(device))


def to_tensors(data: dict[str, np.ndarray], name: str = "dataset") -> tuple[torch.Tensor, torch.Tensor]:
    """``X`` (N, M, M) and ``labels`` (N,) of a dataset dictionary -> (N, 1, M, M) float32, (N,) int64."""
    X = np.asarray(data["X"])
    labels = np.asarray(data["labels"])
    if X.ndim != 3 or X.shape[1] != X.shape[2]:
        raise ValueError(f"{name}: X must have shape (N, M, M), got {X.shape}")
    if labels.shape != (X.shape[0],):
        raise ValueError(f"{name}: labels must have shape ({X.shape[0]},), got {labels.shape}")
    x = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)).unsqueeze(1)
    return x, torch.from_numpy(labels.astype(np.int64))


def _concatenate(parts: list[tuple[str, dict[str, np.ndarray]]]) -> TensorSplit:
    tensors = [to_tensors(data, name) for name, data in parts]
    sizes = {x.shape[2:] for x, _ in tensors}
    if len(sizes) != 1:
        raise ValueError(f"datasets {[name for name, _ in parts]} have different observable sizes {sizes}")
    x = torch.cat([x for x, _ in tensors])
    y = torch.cat([y for _, y in tensors])
    return TensorSplit(x, y, tuple(name for name, _ in parts))


def _split_parts(split: str, preset: Preset) -> list[tuple[float, int]]:
    """(W, expected size) of the files making up ``split``: clean, then perturbative (not for test)."""
    n_clean = {"training": preset.n_train, "validation": preset.n_validation, "test": preset.n_test}[split]
    parts = [(0.0, n_clean)]
    if split != "test":
        parts += [(W, preset.n_perturbative) for W in preset.perturbative_W]
    # training, early stopping (validation) and the test report never see out-of-distribution data
    require_clean([W for W, _ in parts], f"{split} data of preset {preset.name!r}")
    return parts


def represented(data: dict[str, np.ndarray], representation: str) -> dict[str, np.ndarray]:
    """A dataset dictionary whose ``X`` is the input ``representation`` of its chains
    (:func:`ssh_ood.physics.representations.represent`, from its hoppings; ``density`` keeps ``X`` itself)."""
    if representation == DEFAULT_REPRESENTATION:
        return data
    return {**data, "X": represent(representation, data["v_n"], data["w_n"], data["X"])}


def load_training_data(data_dir: str | Path, preset: Preset | str,
                       representation: str = DEFAULT_REPRESENTATION) -> TrainingData:
    """Training, validation and clean test splits of ``preset`` from the ``.npz`` files in ``data_dir``.

    ``representation``: what the network reads (:mod:`ssh_ood.physics.representations`; default the paper's
    densities, the files' ``X``), computed from each file's hoppings.

    Raises ``FileNotFoundError`` for a missing file (with the command that generates it) and
    ``ValueError`` when a file is malformed or its size is not the preset's (data of another preset).
    """
    preset = get_preset(preset)
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(
            f"{data_dir}: datasets folder not found; generate it with "
            f"`python -m ssh_ood data --preset {preset.name} --out {data_dir}`"
        )
    splits = {}
    for split in SPLIT_NAMES:
        parts = []
        for W, expected in _split_parts(split, preset):
            data = load_split(data_dir, split, W, preset=preset.name)
            name = dataset_filename(split, W)
            if data["labels"].size != expected:
                raise ValueError(
                    f"{data_dir / name}: {data['labels'].size} samples, but preset {preset.name!r} expects "
                    f"{expected}; use the datasets of that preset (python -m ssh_ood data --preset {preset.name})"
                )
            parts.append((name, represented(data, representation)))
        splits[split] = _concatenate(parts)
    return TrainingData(**splits)


def generate_training_data(preset: Preset | str, seed: int) -> TrainingData:
    """Like :func:`load_training_data`, straight from the generator (nothing written to disk)."""
    preset = get_preset(preset)
    splits = {}
    for split in SPLIT_NAMES:
        parts = [
            (dataset_filename(split, W), generate_dataset(split, n, W, seed, n_cells=preset.n_cells))
            for W, n in _split_parts(split, preset)
        ]
        splits[split] = _concatenate(parts)
    return TrainingData(**splits)


def fixed_order(n_samples: int, seed: int) -> np.ndarray:
    """The fixed shuffle: a permutation of ``range(n_samples)`` drawn from ``seed`` (int64 array)."""
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    return np.random.default_rng([int(seed), 0x6F72646572]).permutation(n_samples)


def batch_slices(n_samples: int, batch_size: int) -> list[slice]:
    """Consecutive batches over ``n_samples`` positions; the last one may be smaller (no sample dropped)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return [slice(start, min(start + batch_size, n_samples)) for start in range(0, n_samples, batch_size)]


def encode_input(x: torch.Tensor, thermometer_levels: int | None) -> torch.Tensor:
    """The network input for raw observables ``x`` (N, 1, M, M): ``x`` itself or its thermometer code."""
    if not thermometer_levels:
        return x
    return thermometer_encode(x.clamp(0.0, 1.0), int(thermometer_levels))


def training_batch(
    split: TensorSplit,
    order: np.ndarray,
    number: int,
    batch_size: int,
    thermometer_levels: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch ``number`` of an epoch of ``split`` in the fixed ``order``: (input, label).

    Inputs are (B, 1, M, M), or (B, L, M, M) thermometer-encoded.
    """
    if order.shape != (len(split),):
        raise ValueError(f"order must be a permutation of {len(split)} samples, got shape {order.shape}")
    positions = batch_slices(len(split), batch_size)[number]
    batch_index = torch.as_tensor(order[positions], device=split.x.device)
    x = split.x.index_select(0, batch_index)
    return encode_input(x, thermometer_levels), split.y.index_select(0, batch_index)


def evaluation_batches(
    split: TensorSplit, batch_size: int, thermometer_levels: int | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(input, label) batches of ``split`` in file order, without noise (validation, test)."""
    for positions in batch_slices(len(split), batch_size):
        yield encode_input(split.x[positions], thermometer_levels), split.y[positions]
