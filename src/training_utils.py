"""Training ``CNN_SSH`` with the paper's recipe: one model or an ensemble, resumable, one folder per model.

Recipe (SPEC §2, values from the preset): SGD (lr, momentum 0.9, weight decay 0.1), batch 64,
cross-entropy, up to ``max_epochs`` epochs with the paper's early-stopping rule (:func:`should_stop`).
The data order is the paper's fixed shuffle: one permutation drawn from the run's base seed, the same
every epoch and shared by all models (``shared_order=False``: one permutation per model, from its seed).
Model ``i`` of a run with base seed ``s`` has seed :func:`model_seed` ``(s, i)``, which sets its
initialization (PyTorch's default init after ``torch.manual_seed``) and its dropout generator.

:func:`train_models` trains the listed models together (engines in :mod:`src.ensemble_training`): on CPU
in worker processes with one thread each, each worker stepping a group of models with the fused kernels;
on CUDA all models as one grouped network on the device. Every model gets its own folder::

    out_dir/model_007/
        weights.pt          last-epoch state_dict (the paper kept the last epoch)
        best_weights.pt     state_dict of the epoch with the lowest validation loss
        config.json         preset, recipe, seeds, data, versions, device (written last: marks completion)
        history.json        per-epoch train/val loss and accuracy, epochs_run, stopped_early, best_epoch
        test_report.json    clean in-distribution test set, last weights (src.metrics.report_dict)
        training_curve.pdf/.png
        checkpoint.pt       only while training: resume state (model, momentum, dropout RNG, history)

and ``out_dir/summary.csv`` has one row per completed model. A run killed at any point resumes from the
last completed epoch of each model and ends, on CPU, with bitwise the weights of an uninterrupted run.
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import hashlib
import io
import math
import multiprocessing
import os
import queue as queue_module
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from .architecture import CNN_SSH, build_model, count_parameters
from .data_loaders import TrainingData, batch_slices, fixed_order, load_training_data, training_batch
from .device import select_device
from .ensemble_training import (
    ENGINES,
    ModelState,
    SGDRecipe,
    default_engine,
    dropout_generator,
    evaluate_models,
    initial_model,
    train_step,
)
from .io_utils import atomic_write_bytes, load_json, save_json
from .metrics import report_dict
from .paths import RUNS_DIR, datasets_dir
from .plotting import save_figure
from .presets import PRESET_NAMES, Preset, get_preset

SEED_STRIDE = 1_000_000
HISTORY_KEYS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")
FINAL_FILES = (
    "weights.pt",
    "best_weights.pt",
    "history.json",
    "test_report.json",
    "training_curve.pdf",
    "training_curve.png",
    "config.json",
)
# a model is complete when its results exist (the training-curve figure may be deleted to save space)
RESULT_FILES = ("weights.pt", "best_weights.pt", "history.json", "test_report.json", "config.json")
CHECKPOINT = "checkpoint.pt"
SUMMARY_COLUMNS = (
    "index",
    "seed",
    "epochs_run",
    "best_epoch",
    "stopped_early",
    "final_train_loss",
    "final_val_loss",
    "final_train_accuracy",
    "final_val_accuracy",
    "best_val_loss",
    "test_accuracy",
)
# configuration entries that must agree to resume a model or to accept a completed one
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

    It seeds the model's initialization and (through :func:`src.ensemble_training.dropout_generator`)
    its dropout masks. With base seed 0, model i has seed i.
    """
    for name, value in (("base_seed", base_seed), ("index", index)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if index >= SEED_STRIDE:
        raise ValueError(f"index must be < {SEED_STRIDE}, got {index}")
    return int(base_seed) * SEED_STRIDE + int(index)


def warmup_epochs(max_epochs: int, warmup_fraction: float) -> int:
    """Epochs before early stopping may act: ``ceil(warmup_fraction * max_epochs)`` (100 of 1000)."""
    return math.ceil(warmup_fraction * max_epochs - 1e-9)


def should_stop(val_losses: Sequence[float], patience: int, tolerance: float, warmup: int) -> bool:
    """The paper's early-stopping rule after the epoch that produced ``val_losses[-1]`` (SPEC §2).

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
            "input_noise_std": p.input_noise_std,
        }

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


def data_fingerprint(data: TrainingData) -> str:
    """SHA-256 of the training and validation inputs and labels (detects changed data on resume)."""
    digest = hashlib.sha256()
    for split in (data.training, data.validation):
        digest.update(split.x.cpu().numpy().tobytes())
        digest.update(split.y.cpu().numpy().tobytes())
    return digest.hexdigest()


def _identity(config: dict) -> dict:
    return {key: config.get(key) for key in _IDENTITY_KEYS}


def _check_same_run(model_dir: Path, stored: dict, expected: dict) -> None:
    stored_id, expected_id = _identity(stored), _identity(expected)
    if stored_id != expected_id:
        differences = [f"{k}: {stored_id[k]!r} vs {expected_id[k]!r}" for k in _IDENTITY_KEYS if stored_id[k] != expected_id[k]]
        raise ValueError(
            f"{model_dir} holds a model of a different run ({'; '.join(differences)}); "
            "choose another output folder or delete that model folder"
        )


# ----------------------------------------------------------------------------------------------
# model folders
# ----------------------------------------------------------------------------------------------
def model_dir_name(index: int) -> str:
    """``model_007`` for index 7."""
    return f"model_{index:03d}"


def is_complete(model_dir: str | Path) -> bool:
    """Whether ``model_dir`` holds a finished model: every file of ``RESULT_FILES`` present.

    ``config.json`` is written last, so a model interrupted while its final files were written is not
    complete (and is finished from its checkpoint on the next run).
    """
    model_dir = Path(model_dir)
    return all((model_dir / name).is_file() for name in RESULT_FILES)


def save_torch(path: Path, obj) -> None:
    """``torch.save(obj)`` to ``path`` atomically (a killed write leaves the previous file)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _load_torch(path: Path, map_location="cpu"):
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        raise ValueError(f"{path}: not a readable weights-only PyTorch file ({type(exc).__name__}: {exc})") from exc


def load_model(model_dir: str | Path, which: str = "last", device: str | torch.device = "cpu") -> CNN_SSH:
    """The trained model of ``model_dir`` in eval mode on ``device``.

    ``which``: ``"last"`` (``weights.pt``, last epoch) or ``"best"`` (``best_weights.pt``, lowest
    validation loss). The architecture (plain or thermometer with L levels) is read from the weights.
    Raises ``FileNotFoundError`` for a missing folder/file, ``ValueError`` for an unknown ``which`` or
    a corrupt or foreign file.
    """
    files = {"last": "weights.pt", "best": "best_weights.pt"}
    if which not in files:
        raise ValueError(f"which must be 'last' or 'best', got {which!r}")
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"{model_dir}: model folder not found")
    path = model_dir / files[which]
    state = _load_torch(path)
    if not isinstance(state, dict) or "cnn_layers_1.0.weight" not in state:
        raise ValueError(f"{path}: not a CNN_SSH state_dict")
    levels = int(state["cnn_layers_1.0.weight"].shape[1])
    model = build_model(levels if levels > 1 else None)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not fit CNN_SSH ({exc})") from exc
    return model.to(device).eval()


def load_history(model_dir: str | Path) -> dict:
    """``history.json`` of a model folder (per-epoch lists ``train_loss`` ... and run summary)."""
    path = Path(model_dir) / "history.json"
    history = load_json(path)
    missing = [k for k in (*HISTORY_KEYS, "epochs_run", "stopped_early", "best_epoch") if k not in history]
    if missing:
        raise ValueError(f"{path}: missing entries {missing}")
    return history


def load_config(model_dir: str | Path) -> dict:
    """``config.json`` of a model folder."""
    return load_json(Path(model_dir) / "config.json")


def plot_training_curves(history: dict, axes: Sequence[plt.Axes] | None = None) -> plt.Figure:
    """Loss and accuracy per epoch (training vs validation), best epoch marked; returns the figure."""
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    else:
        fig = axes[0].figure
    epochs = np.arange(1, len(history["train_loss"]) + 1)
    for ax, key, label in ((axes[0], "loss", "cross-entropy loss"), (axes[1], "accuracy", "accuracy")):
        ax.plot(epochs, history[f"train_{key}"], label="training (with dropout)")
        ax.plot(epochs, history[f"val_{key}"], label="validation")
        if history.get("best_epoch"):
            ax.axvline(history["best_epoch"], color="0.5", ls=":", lw=1, label="lowest validation loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
    axes[0].set_yscale("log")
    axes[1].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------
# one model's training state inside a group
# ----------------------------------------------------------------------------------------------
@dataclass
class _Slot:
    index: int
    directory: Path
    config: dict
    state: ModelState
    order: np.ndarray
    order_key: int
    noise_seed: int
    epoch: int = 0
    history: dict = field(default_factory=lambda: {key: [] for key in HISTORY_KEYS})
    best_val_loss: float = math.inf
    best_epoch: int = 0
    best_state: dict | None = None
    stopped_early: bool = False
    done: bool = False

    def checkpoint(self) -> dict:
        return {
            "format": 1,
            "config": self.config,
            "epoch": self.epoch,
            "model": self.state.model.state_dict(),
            "momentum_buffers": self.state.momentum_buffers,
            "generator_state": self.state.generator.get_state(),
            "history": self.history,
            "best_val_loss": self.best_val_loss,
            "best_epoch": self.best_epoch,
            "best_state": self.best_state,
            "stopped_early": self.stopped_early,
            "done": self.done,
        }

    def restore(self, saved: dict) -> None:
        self.state.model.load_state_dict(saved["model"])
        self.state.momentum_buffers = [
            None if b is None else b.to(next(self.state.model.parameters()).device) for b in saved["momentum_buffers"]
        ]
        self.state.generator.set_state(saved["generator_state"])
        self.epoch = int(saved["epoch"])
        self.history = {key: [float(v) for v in saved["history"][key]] for key in HISTORY_KEYS}
        self.best_val_loss = float(saved["best_val_loss"])
        self.best_epoch = int(saved["best_epoch"])
        self.best_state = saved["best_state"]
        self.stopped_early = bool(saved["stopped_early"])
        self.done = bool(saved["done"])


def _open_slot(settings: RunSettings, index: int, data: TrainingData, device: torch.device) -> _Slot:
    directory = Path(settings.out_dir) / model_dir_name(index)
    config = settings.model_config(index, len(data.training), len(data.validation))
    seed = config["model_seed"]
    model = initial_model(seed, settings.thermometer_levels).to(device).train()
    state = ModelState(model, dropout_generator(seed, device))
    order_seed = settings.base_seed if settings.shared_order else seed
    slot = _Slot(
        index=index,
        directory=directory,
        config=config,
        state=state,
        order=fixed_order(len(data.training), order_seed),
        order_key=order_seed if not settings.shared_order else -1,
        noise_seed=order_seed,
    )
    path = directory / CHECKPOINT
    if path.is_file():
        saved = _read_checkpoint(path, "cpu")  # generator states must stay CPU tensors; restore() moves the rest
        _check_same_run(directory, saved["config"], config)
        slot.restore(saved)
    return slot


def _read_checkpoint(path: Path, device) -> dict:
    saved = _load_torch(path, map_location=device)
    if not isinstance(saved, dict) or saved.get("format") != 1 or "config" not in saved:
        raise ValueError(f"{path}: not a checkpoint of this trainer; delete it to restart that model")
    return saved


def _finish(slot: _Slot, settings: RunSettings, data: TrainingData) -> None:
    """Write the final files of a finished model (config.json last) and drop its checkpoint."""
    directory = slot.directory
    model = slot.state.model
    save_torch(directory / "weights.pt", model.state_dict())
    save_torch(directory / "best_weights.pt", slot.best_state if slot.best_state is not None else model.state_dict())
    history = {
        **slot.history,
        "epochs_run": slot.epoch,
        "stopped_early": slot.stopped_early,
        "best_epoch": slot.best_epoch,
        "best_val_loss": slot.best_val_loss,
    }
    save_json(directory / "history.json", history)
    test = evaluate_models([model], data.test, settings.thermometer_levels, settings.engine)
    save_json(directory / "test_report.json", report_dict(data.test.y.cpu().numpy(), test.predictions[0]))
    fig = Figure(figsize=(9, 3.4))  # no pyplot: worker processes may have no usable interactive backend
    plot_training_curves(history, fig.subplots(1, 2))
    fig.suptitle(f"{directory.name} (seed {slot.config['model_seed']})", fontsize=10, y=1.03)
    save_figure(fig, "training_curve", directory)
    save_json(directory / "config.json", slot.config)
    (directory / CHECKPOINT).unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------------
# training a group of models in lockstep
# ----------------------------------------------------------------------------------------------
Reporter = Callable[[dict], None]


def _load_run_data(settings: RunSettings) -> TrainingData:
    """The run's datasets on its device, checked against the fingerprint taken when the run started."""
    data = load_training_data(settings.data_dir, settings.preset)
    if data_fingerprint(data) != settings.data_sha256:
        raise ValueError(f"{settings.data_dir}: the datasets changed while the run was starting; run it again")
    return data.to(settings.device)


def _train_group(settings: RunSettings, indices: Sequence[int], report: Reporter, data: TrainingData | None = None) -> None:
    """Train the models ``indices`` together until each one stops or reaches ``max_epochs``."""
    device = torch.device(settings.device)
    data = _load_run_data(settings) if data is None else data
    slots = [_open_slot(settings, index, data, device) for index in indices]
    preset = settings.preset
    n_batches = len(batch_slices(len(data.training), preset.batch_size))
    for slot in slots:
        report({"index": slot.index, "event": "start", "epoch": slot.epoch})
    while active := [slot for slot in slots if not slot.done]:
        loss_sums = torch.zeros(len(active), dtype=torch.float64, device=device)
        correct = torch.zeros(len(active), dtype=torch.float64, device=device)
        for number in range(n_batches):
            batches: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
            inputs, targets = [], []
            for slot in active:
                key = (slot.order_key, slot.epoch if preset.input_noise_std > 0 else None)
                if key not in batches:
                    batches[key] = training_batch(
                        data.training,
                        slot.order,
                        number,
                        preset.batch_size,
                        settings.thermometer_levels,
                        preset.input_noise_std,
                        slot.noise_seed,
                        slot.epoch,
                    )
                inputs.append(batches[key][0])
                targets.append(batches[key][1])
            result = train_step([s.state for s in active], inputs, targets, settings.sgd, settings.engine)
            loss_sums += result.loss_sum
            correct += result.n_correct
        validation = evaluate_models(
            [s.state.model for s in active], data.validation, settings.thermometer_levels, settings.engine
        )
        train_loss = (loss_sums / len(data.training)).cpu().numpy()
        train_accuracy = (correct / len(data.training)).cpu().numpy()
        for k, slot in enumerate(active):
            _end_epoch(slot, settings, train_loss[k], train_accuracy[k], validation.loss[k], validation.accuracy[k])
            save_torch(slot.directory / CHECKPOINT, slot.checkpoint())
            report(
                {
                    "index": slot.index,
                    "event": "epoch",
                    "epoch": slot.epoch,
                    "val_loss": slot.history["val_loss"][-1],
                    "val_accuracy": slot.history["val_accuracy"][-1],
                    "done": slot.done,
                }
            )
            if slot.done:
                _finish(slot, settings, data)
    for slot in slots:  # models whose last epoch was checkpointed before a kill
        if not is_complete(slot.directory):
            _finish(slot, settings, data)


def _end_epoch(slot: _Slot, settings: RunSettings, train_loss, train_accuracy, val_loss, val_accuracy) -> None:
    slot.epoch += 1
    values = [float(v) for v in (train_loss, val_loss, train_accuracy, val_accuracy)]  # plain floats: JSON, weights_only
    for key, value in zip(HISTORY_KEYS, values, strict=True):
        slot.history[key].append(value)
    val_loss = values[1]
    if math.isfinite(val_loss) and val_loss < slot.best_val_loss:
        slot.best_val_loss = val_loss
        slot.best_epoch = slot.epoch
        slot.best_state = {k: v.detach().clone() for k, v in slot.state.model.state_dict().items()}
    preset = settings.preset
    if settings.early_stopping and should_stop(slot.history["val_loss"], preset.patience, preset.tolerance, settings.warmup):
        slot.stopped_early = True
        slot.done = True
    if slot.epoch >= settings.max_epochs:
        slot.done = True


# ----------------------------------------------------------------------------------------------
# processes and threads
# ----------------------------------------------------------------------------------------------
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def tune_malloc() -> bool:
    """Keep freed activation buffers in the heap (glibc): raise the mmap and trim thresholds to 1 GiB.

    By default glibc serves allocations above ~128 KiB-32 MiB with fresh ``mmap`` pages and returns
    them on free, so every (B, C, 26, 26) activation of every step is page-faulted in again; on this
    CPU that made the convolutions ~3x slower. Process-wide; a no-op where glibc is absent.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):
        return False


@contextmanager
def _single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


_WORKER_EVENTS: multiprocessing.Queue | None = None
_WORKER_DATA: dict[tuple, TrainingData] = {}


def _worker_init(events: multiprocessing.Queue) -> None:
    global _WORKER_EVENTS
    _WORKER_EVENTS = events
    torch.set_num_threads(1)
    tune_malloc()
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True, name="parent-watch").start()


def _exit_with_parent(parent_pid: int, period_s: float = 0.5) -> None:
    """End this worker once the process that started it is gone.

    A parent killed by SIGKILL or SIGTERM cannot stop its pool, and the orphaned workers would go on
    training (and writing checkpoints) for hours. Exiting loses at most the epoch in progress: the
    checkpoints are written atomically at the end of each epoch.
    """
    while os.getppid() == parent_pid:
        time.sleep(period_s)
    os._exit(1)


def _train_group_in_worker(settings: RunSettings, indices: tuple[int, ...]) -> None:
    key = (settings.data_dir, settings.data_sha256, settings.device)
    if key not in _WORKER_DATA:  # a worker trains several groups: load the data once
        _WORKER_DATA.clear()
        _WORKER_DATA[key] = _load_run_data(settings)
    _train_group(settings, indices, _WORKER_EVENTS.put, _WORKER_DATA[key])


def _run_groups(settings: RunSettings, groups: list[tuple[int, ...]], n_workers: int, report: Reporter) -> None:
    """Train the groups in this process (one thread) or in ``n_workers`` spawned processes (one thread each).

    Groups are handed out dynamically, so a worker whose models stop early takes the next group. A
    worker that dies (e.g. killed by the OS) raises ``BrokenProcessPool`` instead of hanging the run.
    """
    if n_workers <= 1 or len(groups) == 1:
        tune_malloc()
        with _single_thread() if settings.engine == "fused" else nullcontext():
            for indices in groups:
                _train_group(settings, indices, report)
        return
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    pool = ProcessPoolExecutor(n_workers, mp_context=context, initializer=_worker_init, initargs=(events,))
    try:
        futures = [pool.submit(_train_group_in_worker, settings, indices) for indices in groups]
        running = set(futures)
        while running:
            _drain(events, report, timeout=0.2)
            for future in running:
                if future.done() and future.exception() is not None:
                    raise future.exception()
            running = {future for future in running if not future.done()}
        _drain(events, report, timeout=0.2)
    except BaseException:
        # stop at once (Ctrl-C, a failed group): the workers' checkpoints keep the finished epochs
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def _drain(events: multiprocessing.Queue, report: Reporter, timeout: float) -> None:
    try:
        report(events.get(timeout=timeout))
        while True:
            report(events.get_nowait())
    except queue_module.Empty:
        return


def available_cpus() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _make_groups(pending: list[int], engine: str, n_workers: int) -> list[tuple[int, ...]]:
    """Lockstep groups: all models at once for one process; else ~4 groups per worker, round robin."""
    if engine == "stacked" or n_workers <= 1:
        return [tuple(pending)]
    n_groups = min(len(pending), 4 * n_workers)
    return [tuple(pending[g::n_groups]) for g in range(n_groups)]


# ----------------------------------------------------------------------------------------------
# the public entry point
# ----------------------------------------------------------------------------------------------
def _check_indices(model_indices: Iterable[int]) -> list[int]:
    indices = list(model_indices)
    if not indices:
        raise ValueError("model_indices must name at least one model (n_models >= 1)")
    for index in indices:
        model_seed(0, index)  # validates
    if len(set(indices)) != len(indices):
        raise ValueError(f"model_indices must be distinct, got {indices}")
    return sorted(int(i) for i in indices)


def train_models(
    preset: Preset | str,
    data_dir: str | Path,
    out_dir: str | Path,
    model_indices: Iterable[int],
    base_seed: int = 0,
    device: str | torch.device | None = None,
    max_epochs: int | None = None,
    early_stopping: bool = True,
    thermometer_levels: int | None = None,
    shared_order: bool = True,
    progress: bool = True,
    n_workers: int | None = None,
    engine: str | None = None,
) -> list[Path]:
    """Train the models ``model_indices`` of a run together; returns their folders ``out_dir/model_XXX``.

    Parameters
    ----------
    preset : preset (name) giving the recipe and data sizes.
    data_dir : folder of the preset's ``.npz`` datasets (:func:`src.datasets.write_datasets`).
    out_dir : run folder; models already complete there are skipped, interrupted ones resumed.
    model_indices : which models of the run (model i has seed ``model_seed(base_seed, i)``).
    base_seed : run seed (model seeds, shared data order).
    device : ``"cpu"``, ``"cuda"``, ``"mps"``... (default: CUDA, then MPS, then CPU).
    max_epochs : overrides the preset's epoch budget.
    early_stopping : apply the paper's rule (:func:`should_stop`); otherwise run ``max_epochs``.
    thermometer_levels : train ``CNN_SSH_ThermEncod(L)`` on thermometer-encoded input.
    shared_order : one fixed data order for all models (paper); else one per model.
    progress : tqdm progress bar.
    n_workers : CPU worker processes (one thread each; default: the usable cores). On CUDA/MPS all
        models train in this process.
    engine : ``"fused"`` or ``"stacked"`` (default: fused on CPU, stacked elsewhere).

    Writes each model's folder (module docstring) and ``out_dir/summary.csv``.
    """
    preset = get_preset(preset)
    indices = _check_indices(model_indices)
    model_seed(base_seed, 0)
    max_epochs = preset.max_epochs if max_epochs is None else max_epochs
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, (int, np.integer)) or max_epochs < 1:
        raise ValueError(f"max_epochs must be a positive integer, got {max_epochs!r}")
    if thermometer_levels in (None, 0):
        thermometer_levels = None
    elif isinstance(thermometer_levels, bool) or not isinstance(thermometer_levels, (int, np.integer)) or thermometer_levels < 2:
        raise ValueError(f"thermometer_levels must be an integer >= 2, got {thermometer_levels!r}")
    device = select_device(None if device is None else str(device))
    engine = default_engine(device) if engine is None else engine
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine == "fused" and device.type != "cpu":
        raise ValueError("the fused engine runs on CPU only; use engine='stacked' on accelerators")
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1):
        raise ValueError(f"n_workers must be a positive integer, got {n_workers!r}")
    out_dir = Path(out_dir)
    data_dir = Path(data_dir)
    data = load_training_data(data_dir, preset)
    settings = RunSettings(
        preset=preset,
        data_dir=str(data_dir),
        out_dir=str(out_dir),
        base_seed=int(base_seed),
        device=str(device),
        engine=engine,
        max_epochs=int(max_epochs),
        early_stopping=bool(early_stopping),
        thermometer_levels=None if thermometer_levels is None else int(thermometer_levels),
        shared_order=bool(shared_order),
        data_sha256=data_fingerprint(data),
    )
    pending = []
    for index in indices:
        directory = out_dir / model_dir_name(index)
        expected = settings.model_config(index, len(data.training), len(data.validation))
        if is_complete(directory):
            _check_same_run(directory, load_config(directory), expected)
            continue
        if (directory / CHECKPOINT).is_file():  # fail here, before any worker starts
            _check_same_run(directory, _read_checkpoint(directory / CHECKPOINT, "cpu")["config"], expected)
        pending.append(index)
    if pending:
        if device.type != "cpu":
            n_workers = 1
        elif n_workers is None:
            n_workers = min(available_cpus(), len(pending))
        groups = _make_groups(pending, engine, n_workers)
        with _ProgressBar(len(pending), settings.max_epochs, enabled=progress) as bar:
            _run_groups(settings, groups, n_workers, bar.update)
    write_summary(out_dir)
    return [out_dir / model_dir_name(index) for index in indices]


class _ProgressBar:
    """Model-epochs done over all models (stopped models count their skipped epochs)."""

    def __init__(self, n_models: int, max_epochs: int, enabled: bool) -> None:
        self.n_models, self.max_epochs = n_models, max_epochs
        self.bar = tqdm(total=n_models * max_epochs, desc="training", unit="model-epoch", disable=not enabled)
        self.position: dict[int, int] = {}
        self.latest: dict[int, tuple[float, float]] = {}
        self.finished = 0

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()

    def update(self, event: dict) -> None:
        index = event["index"]
        target = event["epoch"]
        if event.get("done"):
            target = self.max_epochs
            self.finished += 1
        self.bar.update(max(0, target - self.position.get(index, 0)))
        self.position[index] = max(self.position.get(index, 0), target)
        if event["event"] == "epoch":
            self.latest[index] = (event["val_loss"], event["val_accuracy"])
            losses, accuracies = zip(*self.latest.values(), strict=True)
            self.bar.set_postfix(
                done=f"{self.finished}/{self.n_models}",
                epoch=event["epoch"],
                val_loss=f"{np.mean(losses):.3g}",
                val_acc=f"{np.mean(accuracies):.3f}",
                refresh=False,
            )


def training_outcome(model_dir: str | Path) -> dict:
    """Scalars of a finished model's training: epochs, final/best losses and accuracies, test accuracy."""
    model_dir = Path(model_dir)
    history = load_history(model_dir)
    report = load_json(model_dir / "test_report.json")
    return {
        "epochs_run": int(history["epochs_run"]),
        "best_epoch": int(history["best_epoch"]),
        "stopped_early": bool(history["stopped_early"]),
        "final_train_loss": history["train_loss"][-1],
        "final_val_loss": history["val_loss"][-1],
        "final_train_accuracy": history["train_accuracy"][-1],
        "final_val_accuracy": history["val_accuracy"][-1],
        "best_val_loss": history.get("best_val_loss", min(history["val_loss"])),
        "test_accuracy": report["accuracy"],
    }


def write_summary(out_dir: str | Path) -> Path:
    """``out_dir/summary.csv``: one row per completed model folder of the run (sorted by index)."""
    out_dir = Path(out_dir)
    rows = []
    for directory in sorted(out_dir.glob("model_*")):
        if not is_complete(directory):
            continue
        config = load_config(directory)
        rows.append({"index": config["index"], "seed": config["model_seed"], **training_outcome(directory)})
    rows.sort(key=lambda row: row["index"])
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_bytes(out_dir / "summary.csv", text.getvalue().encode())


# ----------------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------------
def default_run_dir(preset: str, seed: int, thermometer_levels: int | None = None) -> Path:
    """``00_demonstrations_data/runs/<preset>_seed<seed>[_thermo<L>]``."""
    suffix = f"_thermo{thermometer_levels}" if thermometer_levels else ""
    return RUNS_DIR / f"{preset}_seed{seed}{suffix}"


def add_train_parser(subparsers) -> None:
    """Register ``python -m src train``."""
    parser = subparsers.add_parser(
        "train",
        help="train an ensemble of CNNs with the paper's recipe",
        description="Train K CNN_SSH models (seeds base*10^6 + 0..K-1) together; resumable; one folder per model.",
    )
    parser.add_argument("--preset", choices=PRESET_NAMES, default="quick", help="run size (default: quick)")
    parser.add_argument("--n-models", type=int, default=None, help="number of models K (default: the preset's)")
    parser.add_argument("--seed", type=int, default=0, help="base seed of the run (default: 0)")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: 00_demonstrations_data/runs/...)")
    parser.add_argument("--data", type=Path, default=None, help="datasets folder (default: the preset's; made if missing)")
    parser.add_argument("--data-seed", type=int, default=0, help="seed used if the default datasets must be generated")
    parser.add_argument("--epochs", type=int, default=None, help="maximum epochs (default: the preset's)")
    parser.add_argument("--no-early-stopping", action="store_true", help="always run the maximum number of epochs")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: best available)")
    parser.add_argument("--thermometer-levels", type=int, default=None, help="train the thermometer-encoding variant")
    parser.add_argument("--per-model-order", action="store_true", help="one data order per model instead of a shared one")
    parser.add_argument("--workers", type=int, default=None, help="CPU worker processes (default: usable cores)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from .datasets import write_datasets

    preset = get_preset(args.preset)
    n_models = preset.n_models if args.n_models is None else args.n_models
    if n_models < 1:
        raise ValueError(f"--n-models must be >= 1, got {n_models}")
    data_dir = args.data
    if data_dir is None:
        data_dir = datasets_dir(preset.name)
        if not (data_dir / "datasets.json").is_file():
            write_datasets(preset, args.data_seed, data_dir, progress=not args.quiet)
    out = args.out if args.out is not None else default_run_dir(preset.name, args.seed, args.thermometer_levels)
    folders = train_models(
        preset,
        data_dir,
        out,
        range(n_models),
        base_seed=args.seed,
        device=args.device,
        max_epochs=args.epochs,
        early_stopping=not args.no_early_stopping,
        thermometer_levels=args.thermometer_levels,
        shared_order=not args.per_model_order,
        progress=not args.quiet,
        n_workers=args.workers,
    )
    with open(Path(out) / "summary.csv") as fh:
        sys.stdout.write(fh.read())
    print(f"wrote {len(folders)} model folders and {Path(out) / 'summary.csv'}")
    return 0
