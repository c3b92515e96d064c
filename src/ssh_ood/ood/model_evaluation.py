"""Generalization results of model folders: writing, reading, and the resumable evaluation of folders.

Per model folder the results are ``phase_diagram.npz`` (``predicted``, ``target``, ``W``, ``v``,
``set_<metric>`` arrays, grid parameters) and ``generalization_metrics.json`` (scalars, the grid and
the SHA-256 of the evaluated weights, so a retrained model is never taken as evaluated). A long
ensemble evaluation writes a small per-model checkpoint (``.generalization_partial.npz``) at most
every ``checkpoint_interval_s`` seconds; an interrupted run resumes from the rows already done.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from ..base.file_records import problem, remove
from ..base.io_utils import load_json, load_json_object, load_npz, save_json, save_npz
from ..base.run_folders import hold_folders
from ..nets.metrics import METRIC_NAMES
from ..nets.model_folders import check_recorded, load_model
from ..nets.prediction import folder_representation
from .generalization import (
    CNNEnsemble,
    GeneralizationGrid,
    GeneralizationResult,
    GridAccumulator,
    evaluate_grid,
    thread_limits,
)
from .generalization_metrics import GeneralizationCut, diagram_mae, recut

PHASE_DIAGRAM_FILE = "phase_diagram.npz"
METRICS_FILE = "generalization_metrics.json"
PARTIAL_FILE = ".generalization_partial.npz"
#: fields of generalization_metrics.json every reader relies on, with their JSON types
METRICS_FIELDS = {"grid": dict, "rmse": float, "ssim": float, "ood": dict, "clean": dict}
WEIGHT_FILES = {"last": "weights.pt", "best": "best_weights.pt"}


def weights_path(model_dir: str | Path, which: str = "last") -> Path:
    """The weights file a model folder's evaluation uses: ``weights.pt`` (last) or ``best_weights.pt``."""
    if which not in WEIGHT_FILES:
        raise ValueError(f"which must be one of {tuple(WEIGHT_FILES)}, got {which!r}")
    return Path(model_dir) / WEIGHT_FILES[which]


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes; ``FileNotFoundError`` naming it if missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_result(
    result: GeneralizationResult,
    model_dir: str | Path,
    cut: GeneralizationCut | None = None,
    provenance: dict | None = None,
) -> dict:
    """Write ``phase_diagram.npz`` and ``generalization_metrics.json`` into ``model_dir``; returns the summary.

    ``phase_diagram.npz``: ``predicted``, ``target`` float32 (n_W, n_v) fractions (exact multiples of
    1/R up to float32 rounding), ``W`` (n_W,), ``v`` (n_v,), ``n_realizations``, ``seed``, ``n_cells``,
    and ``set_<metric>`` float32 (n_W, R) for every metric of :data:`ssh_ood.nets.metrics.METRIC_NAMES`.
    ``provenance`` (e.g. which weights and their hash) is stored in the JSON.
    """
    model_dir = Path(model_dir)
    grid = result.grid
    arrays = {
        "predicted": result.predicted.astype(np.float32),
        "target": result.target.astype(np.float32),
        "W": grid.W_values,
        "v": grid.v_values,
        "n_realizations": np.int64(grid.n_realizations),
        "seed": np.int64(grid.seed),
        "n_cells": np.int64(grid.n_cells),
        **{f"set_{name}": values.astype(np.float32) for name, values in result.set_metrics.items()},
    }
    identity = {"grid": grid.to_dict(), **({"weights": provenance["weights"]} if provenance and "weights" in provenance else {})}
    save_npz(model_dir / PHASE_DIAGRAM_FILE, arrays, identity=identity)
    summary = {**result.summary(cut), **(provenance or {})}
    save_json(model_dir / METRICS_FILE, summary, identity=identity)
    return summary


def load_result(model_dir: str | Path) -> GeneralizationResult:
    """Read ``phase_diagram.npz`` of a model folder back into a :class:`GeneralizationResult`.

    Raises ``FileNotFoundError`` if it is missing and ``ValueError`` (naming the file) if an array is
    absent or has a shape inconsistent with the grid.
    """
    path = Path(model_dir) / PHASE_DIAGRAM_FILE
    set_keys = [f"set_{name}" for name in METRIC_NAMES]
    data = load_npz(path, required=("predicted", "target", "W", "v", "n_realizations", "seed", "n_cells", *set_keys))
    W, v = data["W"], data["v"]
    if W.ndim != 1 or v.ndim != 1 or W.size < 1 or v.size < 1:
        raise ValueError(f"{path}: W and v must be non-empty 1-D arrays, got shapes {W.shape} and {v.shape}")
    try:
        grid = GeneralizationGrid(
            n_W=W.size, W_max=float(W[-1]), n_realizations=int(data["n_realizations"]), n_v=v.size,
            v_max=float(v[-1]), seed=int(data["seed"]), n_cells=int(data["n_cells"]),
        )
        R = grid.n_realizations
        result = GeneralizationResult(
            grid=grid,
            predicted_counts=np.rint(np.asarray(data["predicted"], dtype=np.float64) * R).astype(np.int64),
            target_counts=np.rint(np.asarray(data["target"], dtype=np.float64) * R).astype(np.int64),
            set_metrics={name: data[f"set_{name}"].astype(np.float64) for name in METRIC_NAMES},
        )
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    check_recorded(model_dir)  # after the content: a model folder must have a record of its files
    return result


def load_metrics(model_dir: str | Path) -> dict:
    """``generalization_metrics.json`` of a model folder, its fields checked (:data:`METRICS_FIELDS`).

    A file written before the MAE existed gets ``mae`` from its ``phase_diagram.npz`` (the diagrams it
    was computed from) and its RMSE cut as ``generalization_cut``; the file itself is not rewritten.
    """
    model_dir = Path(model_dir)
    metrics = load_json_object(model_dir / METRICS_FILE, METRICS_FIELDS)
    check_recorded(model_dir)
    if "mae" not in metrics:
        result = load_result(model_dir)
        metrics["mae"] = diagram_mae(result.predicted, result.target)
    if "generalization_cut" not in metrics:
        metrics["generalization_cut"] = GeneralizationCut.stored_in(metrics, str(model_dir / METRICS_FILE)).to_dict()
        metrics.pop("rmse_threshold", None)
    return metrics


def is_evaluated(model_dir: str | Path, grid: GeneralizationGrid, which: str = "last") -> bool:
    """Whether ``model_dir`` holds an evaluation on ``grid`` of its current ``which`` weights, every file of it
    equal to the folder's record (anything else is evaluated again)."""
    model_dir = Path(model_dir)
    expected = {"grid": grid.to_dict(), "weights": which}
    if any(problem(model_dir / name, expected) for name in (PHASE_DIAGRAM_FILE, METRICS_FILE)) or problem(
            weights_path(model_dir, which)):
        return False
    try:
        metrics = load_metrics(model_dir)
        return (
            metrics.get("grid") == grid.to_dict()
            and metrics.get("weights") == which
            and metrics.get("weights_sha256") == file_sha256(weights_path(model_dir, which))
        )
    except (FileNotFoundError, ValueError):
        return False


def _check_model_dir(model_dir: Path, which: str) -> None:
    if not model_dir.is_dir():
        raise FileNotFoundError(f"{model_dir}: model folder not found")
    path = weights_path(model_dir, which)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found (is the model trained?)")


def _load_partial(model_dir: Path, grid: GeneralizationGrid, which: str, sha: str) -> dict | None:
    path = model_dir / PARTIAL_FILE
    if problem(path) is not None:
        return None
    try:
        data = load_npz(path, required=("grid", "weights", "weights_sha256", "rows_done"))
    except ValueError:
        return None
    same = (str(data["grid"]) == _grid_key(grid) and str(data["weights"]) == which and str(data["weights_sha256"]) == sha)
    return data if same else None


def _grid_key(grid: GeneralizationGrid) -> str:
    return ",".join(f"{k}={v}" for k, v in grid.to_dict().items())


def evaluate_model_dirs(
    model_dirs: Iterable[str | Path],
    grid: GeneralizationGrid,
    which: str = "last",
    cut: GeneralizationCut | None = None,
    device: str | torch.device | None = None,
    engine: str | None = None,
    batch_size: int | None = None,
    chunk_size: int = 2000,
    inference_threads: int | None = 1,
    generation_threads: int | None = None,
    progress: bool = True,
    force: bool = False,
    checkpoint_interval_s: float = 60.0,
    replace: bool = False,
    read_only: bool = False,
) -> list[dict]:
    """Evaluate the trained models of several folders together; write their results; return summaries.

    Folders already evaluated on ``grid`` with their current weights are skipped (their stored summary
    is returned, and rewritten if ``cut`` changed or it predates the MAE); ``force`` redoes them. The others are
    evaluated as one ensemble, with a checkpoint per model at most every ``checkpoint_interval_s``
    seconds, resumed after an interruption.

    Parameters
    ----------
    model_dirs : model folders (``weights.pt`` / ``best_weights.pt`` from :mod:`ssh_ood.nets.training_run`).
    grid : the grid (:meth:`GeneralizationGrid.from_preset`).
    which : ``"last"`` (the paper's last-epoch weights) or ``"best"`` (lowest validation loss).
    cut : the well-generalizing cut (default MAE <= 0.2).
    device, engine, batch_size : inference settings (see :class:`CNNEnsemble`).
    chunk_size : chains generated at once.
    inference_threads : torch intra-op threads during inference (None: leave as is). The default, one,
        is the robust choice on CPU: the convolutions of these 5-9-channel networks gain at most ~2x from a
        second thread on an idle machine, but ran up to 10x slower with two OpenMP threads on a loaded
        2-core machine (``benchmarks/bench_generalization.py``); use processes (``population --workers``)
        for more cores.
    generation_threads : numba threads of the chain generator (None: all cores).
    force : re-evaluate folders already evaluated.
    checkpoint_interval_s : least time between two checkpoints of the rows done.
    replace : replace evaluations made on another grid or of other weights (``which``); without it such a
        folder is refused, so that no folder silently mixes results of two grids.
    read_only : write nothing (e.g. into a shipped population): return the stored summaries, with ``cut``
        applied; ``ValueError`` naming a folder not evaluated on ``grid`` with its current weights.

    Returns
    -------
    One summary dictionary (the content of ``generalization_metrics.json``) per folder, in order.
    """
    cut = GeneralizationCut() if cut is None else cut
    if not (math.isfinite(checkpoint_interval_s) and checkpoint_interval_s >= 0):
        raise ValueError(f"checkpoint_interval_s must be finite and >= 0, got {checkpoint_interval_s}")
    model_dirs = [Path(d) for d in model_dirs]
    if not model_dirs:
        raise ValueError("model_dirs must name at least one model folder")
    for model_dir in model_dirs:
        _check_model_dir(model_dir, which)
        if not replace:
            _check_same_evaluation(model_dir, grid, which)
    if read_only:
        for model_dir in model_dirs:
            if not is_evaluated(model_dir, grid, which):
                raise ValueError(f"{model_dir}: not evaluated on grid {grid.to_dict()} with its current {which!r} "
                                 "weights, and only read here: evaluate it in its own run first")
        return [recut(load_metrics(d), cut) for d in model_dirs]
    writes = force or any(not is_evaluated(d, grid, which) or recut(load_metrics(d), cut) != load_json(d / METRICS_FILE)
                          for d in model_dirs)
    with hold_folders([d.parent for d in model_dirs]) if writes else nullcontext():  # only writers hold
        return _evaluate_model_dirs(model_dirs, grid, which, cut, device, engine, batch_size, chunk_size,
                                    inference_threads, generation_threads, progress, force, checkpoint_interval_s)


def _check_same_evaluation(model_dir: Path, grid: GeneralizationGrid, which: str) -> None:
    """``ValueError`` if ``model_dir`` holds an evaluation on another grid or of other weights (a file that does
    not verify against the folder's record is no evaluation: it is redone)."""
    if problem(model_dir / METRICS_FILE) is not None:
        return
    stored = load_metrics(model_dir)
    if stored["grid"] != grid.to_dict() or stored.get("weights", which) != which:
        raise ValueError(f"{model_dir / METRICS_FILE}: evaluated on grid {stored['grid']} with weights "
                         f"{stored.get('weights')!r}, not grid {grid.to_dict()} with {which!r}; pass "
                         "--replace-evaluations to re-evaluate (the run's stats.csv and manifest.json follow)")


def _evaluate_model_dirs(model_dirs, grid, which, cut, device, engine, batch_size, chunk_size,
                         inference_threads, generation_threads, progress, force, checkpoint_interval_s) -> list[dict]:
    summaries: dict[int, dict] = {}
    pending = []
    for position, model_dir in enumerate(model_dirs):
        if not force and is_evaluated(model_dir, grid, which):
            stored = load_json(model_dir / METRICS_FILE)
            summary = recut(load_metrics(model_dir), cut)
            if summary != stored:
                save_json(model_dir / METRICS_FILE, summary, identity={"grid": grid.to_dict(), "weights": which})
            summaries[position] = summary
        else:
            pending.append(position)
    if pending:
        hashes = {p: file_sha256(weights_path(model_dirs[p], which)) for p in pending}
        models = [load_model(model_dirs[p], which=which, device="cpu") for p in pending]
        ensemble = CNNEnsemble(models, device=device, engine=engine, batch_size=batch_size,
                               names=[str(model_dirs[p]) for p in pending],
                               representations=[folder_representation(model_dirs[p]) for p in pending])
        accumulator = GridAccumulator(grid, len(pending))
        done_by_all = np.ones(grid.n_W, dtype=bool)  # rows every model has in its checkpoint
        for k, p in enumerate(pending):
            state = None if force else _load_partial(model_dirs[p], grid, which, hashes[p])
            done_by_all &= accumulator.restore_model(k, state) if state is not None else False
        accumulator.rows_done = done_by_all
        last_save = [time.monotonic()]

        def checkpoint(acc: GridAccumulator) -> None:
            if time.monotonic() - last_save[0] < checkpoint_interval_s or acc.rows_done.all():
                return
            for k, p in enumerate(pending):
                extra = {"grid": _grid_key(grid), "weights": which, "weights_sha256": hashes[p]}
                save_npz(model_dirs[p] / PARTIAL_FILE, {**acc.model_state(k), **extra})
            last_save[0] = time.monotonic()

        with thread_limits(inference_threads, generation_threads), torch.inference_mode():
            evaluate_grid(ensemble, len(pending), grid, accumulator, chunk_size, progress, checkpoint)
        for k, p in enumerate(pending):
            provenance = {"weights": which, "weights_sha256": hashes[p]}
            summaries[p] = save_result(accumulator.result(k), model_dirs[p], cut, provenance)
            remove(model_dirs[p] / PARTIAL_FILE)
    return [summaries[p] for p in range(len(model_dirs))]
