"""Dataset files on disk: which sets a preset needs, their names, writing and validated loading.

A preset's datasets live in one folder as ``<split>_W<W>.npz`` (e.g. ``training_W0.npz``,
``test_W0.15.npz``), each holding the arrays of :func:`ssh_ood.physics.data_generation.generate_dataset`, its
identity (split, W, seed, n_cells, preset) and a hash of its sample arrays, plus ``datasets.json``
describing all of them (preset, seed, sizes, class balance); the folder's ``files.json`` records every file's
hash (:mod:`ssh_ood.base.file_records`). Every reader checks a file against what it expects (:func:`load_split`):
the folder's record, its identity, finite values, and content equal to its hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..base.file_records import open_folder, problem, read_record, verified_bytes
from ..base.io_utils import load_json_object, load_npz, save_json, save_npz
from ..base.presets import Preset, get_preset
from ..base.run_folders import hold_folder
from .data_generation import SPLITS, generate_dataset

DATASET_KEYS = ("X", "labels", "v", "W", "v_n", "w_n", "split", "seed", "n_cells")
#: the sample arrays covered by a dataset file's content hash (stored under CONTENT_HASH)
CONTENT_KEYS = ("X", "labels", "v", "v_n", "w_n")
CONTENT_HASH = "content_sha256"


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
    """Every dataset a preset uses (docs/physics_and_methods.md §2).

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

    Files already present with the same identity (split, W, seed, n_cells, preset, size) and intact
    content (:data:`CONTENT_HASH` matches the arrays) are kept, so the run is resumable and cheap when
    nothing is missing; anything else, including files written before the identity fields existed, is
    regenerated (the same bytes: every draw comes from the seed). A folder that is up to date is only read;
    otherwise it is held (:func:`ssh_ood.base.run_folders.hold_folder`) while it is written, and a second command
    that needs it meanwhile waits and then finds the files written (each file is written once).
    ``on_dataset(done, total, spec)`` is called before each dataset is checked or generated (a progress
    report for interfaces without a console, e.g. notebook widgets).
    """
    preset = get_preset(preset)
    out_dir = Path(out_dir)
    manifest_path = out_dir / "datasets.json"
    specs = dataset_specs(preset)
    if all(_is_current(out_dir / spec.filename, spec, seed, preset) for spec in specs) and _manifest_is_current(
        out_dir, preset, seed
    ):
        return manifest_path
    identity = {"kind": "datasets", "preset": preset.name, "seed": int(seed)}
    with hold_folder(out_dir, shared=identity):  # runs needing the same datasets wait for one writer
        open_folder(out_dir, identity)
        entries = []
        for done, spec in enumerate(tqdm(specs, desc=f"datasets ({preset.name})", disable=not progress)):
            if on_dataset is not None:
                on_dataset(done, len(specs), spec)
            path = out_dir / spec.filename
            if not _is_current(path, spec, seed, preset):
                data = generate_dataset(spec.split, spec.n_samples, spec.W, seed, n_cells=preset.n_cells)
                save_npz(path, {**data, "preset": preset.name, CONTENT_HASH: content_sha256(data)})
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


def content_sha256(data: dict) -> str:
    """SHA-256 of a dataset's sample arrays (:data:`CONTENT_KEYS`: dtype, shape and bytes of each)."""
    digest = hashlib.sha256()
    for key in CONTENT_KEYS:
        array = np.ascontiguousarray(data[key])
        digest.update(f"{key}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _is_current(path: Path, spec: DatasetSpec, seed: int, preset: Preset) -> bool:
    if problem(path) is not None:  # missing, or not equal to the folder's record of it
        return False
    try:
        load_dataset(path, {"split": spec.split, "W": spec.W, "seed": seed, "n_cells": preset.n_cells,
                            "preset": preset.name, "n_samples": spec.n_samples})
    except ValueError:
        return False
    return True


def _manifest_is_current(folder: Path, preset: Preset, seed: int) -> bool:
    if problem(folder / "datasets.json") is not None:
        return False
    try:
        manifest = read_manifest(folder)
    except (FileNotFoundError, ValueError):
        return False
    files = [entry.get("file") for entry in manifest["datasets"] if isinstance(entry, dict)]
    return (manifest["preset"], manifest["seed"], manifest["n_cells"], files) == (
        preset.name, seed, preset.n_cells, [spec.filename for spec in dataset_specs(preset)])


def load_dataset(path: str | Path, expected: dict | None = None) -> dict[str, np.ndarray]:
    """Load one dataset file and check it is what it claims and what the reader expects.

    Checks: ``X`` (N, M, M) finite, ``labels`` (N,) in {0, 1}, the stored content hash equal to that of
    the arrays (a file altered after it was written is refused), and each identity field given in
    ``expected`` (``split``, ``W``, ``seed``, ``n_cells``, ``preset``, ``n_samples``) equal to the file's.
    Raises ``FileNotFoundError`` or ``ValueError`` naming the file and the field.
    """
    path = Path(path)
    data = load_npz(path, required=DATASET_KEYS, verify=False)  # the record last: a broken file is named for its fault
    if CONTENT_HASH not in data or "preset" not in data:
        raise ValueError(f"{path}: written by an older version without identity fields; regenerate the folder "
                         f"with `python -m ssh_ood data --preset <preset> --out {path.parent}`")
    X, labels = data["X"], data["labels"]
    if X.ndim != 3 or X.shape[1] != X.shape[2]:
        raise ValueError(f"{path}: X must have shape (N, M, M), got {X.shape}")
    if labels.shape != (X.shape[0],):
        raise ValueError(f"{path}: labels must have shape ({X.shape[0]},), got {labels.shape}")
    if labels.size and not np.isin(labels, (0, 1)).all():
        raise ValueError(f"{path}: labels must be 0 or 1")
    for key in ("X", "v", "v_n", "w_n"):
        bad = ~np.isfinite(data[key])
        if bad.any():
            sample = int(np.argwhere(bad)[0][0])
            raise ValueError(f"{path}: {int(bad.sum())} non-finite values (NaN or infinity) in {key!r}, "
                             f"first in sample {sample}")
    if str(data[CONTENT_HASH]) != content_sha256(data):
        raise ValueError(f"{path}: its arrays do not match its content hash (altered after it was written); "
                         f"regenerate it with `python -m ssh_ood data --preset {data['preset']} --out {path.parent}`")
    found = {"split": str(data["split"]), "W": float(data["W"]), "seed": int(data["seed"]),
             "n_cells": int(data["n_cells"]), "preset": str(data["preset"]), "n_samples": int(labels.size)}
    for key, value in (expected or {}).items():
        if found[key] != value:
            raise ValueError(f"{path}: holds {key} = {found[key]!r}, but {value!r} is expected here")
    verified_bytes(path)  # in a recorded folder, the file must also be the one recorded there
    return data


def load_split(folder: str | Path, split: str, W: float = 0.0, preset: str | None = None) -> dict[str, np.ndarray]:
    """Load ``<split>_W<W>.npz`` from a datasets folder, checked to be that split at that W.

    The file must also agree with the folder's ``datasets.json`` (preset, seed, n_cells) and, if given,
    with ``preset``; a hint names the command that generates a missing file.
    """
    folder = Path(folder)
    path = folder / dataset_filename(split, W)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: dataset not found; generate it with `python -m ssh_ood data --preset <preset> --out {folder}`"
        )
    read_record(folder)  # a datasets folder without a readable record of its files is refused
    manifest = read_manifest(folder)  # and one without its datasets.json
    expected: dict = {"split": split, "W": float(W), "preset": manifest["preset"], "seed": manifest["seed"],
                      "n_cells": manifest["n_cells"]}
    if preset is not None:
        expected["preset"] = preset
    return load_dataset(path, expected)


def read_manifest(folder: str | Path) -> dict:
    """The ``datasets.json`` of a datasets folder, its fields checked."""
    return load_json_object(Path(folder) / "datasets.json", {"preset": str, "seed": int, "n_cells": int,
                                                             "datasets": list})


def ensure_datasets(preset: Preset | str, seed: int, data_dir: str | Path, progress: bool = True) -> Path:
    """Generate the preset's datasets from ``seed`` into ``data_dir`` unless they are there and intact.

    Raises ``ValueError`` if ``data_dir`` holds the datasets of another seed or preset; files of the right
    seed and preset that are missing, altered or written by an older version are regenerated.
    """
    preset = get_preset(preset)
    data_dir = Path(data_dir)
    if (data_dir / "datasets.json").is_file():
        manifest = read_manifest(data_dir)
        if manifest["seed"] != seed or manifest["preset"] != preset.name:
            raise ValueError(
                f"{data_dir} holds the datasets of preset {manifest['preset']!r}, seed {manifest['seed']}; "
                f"this run needs preset {preset.name!r}, seed {seed}: pass another datasets folder"
            )
    write_datasets(preset, seed, data_dir, progress=progress)  # verifies every file; regenerates what is not current
    return data_dir
