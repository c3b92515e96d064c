"""The training run: trains the models of a run folder with a recipe (the paper's by default), one model or an
ensemble, resumable, one folder per model.

Recipe (docs/physics_and_methods.md §4, values from the preset): SGD (lr, momentum 0.9, weight decay 0.1), batch 64,
cross-entropy, up to ``max_epochs`` epochs with the paper's early-stopping rule (:func:`should_stop`).
The data order is the paper's fixed shuffle: one permutation drawn from the run's base seed, the same
every epoch and shared by all models (``shared_order=False``: one permutation per model, from its seed).
Model ``i`` of a run with base seed ``s`` has seed :func:`model_seed` ``(s, i)``, which sets its
initialization (PyTorch's default init after ``torch.manual_seed``) and its dropout generator.

:func:`train_models` trains the listed models together (engines in :mod:`ssh_ood.nets.ensemble_training`): on CPU
in worker processes with one thread each, each worker stepping a group of models with the fused kernels;
on CUDA all models as one grouped network on the device. Every model gets its own folder::

    out_dir/model_007/
        weights.pt          last-epoch state_dict (the paper kept the last epoch)
        best_weights.pt     state_dict of the epoch with the lowest validation loss
        config.json         preset, recipe, seeds, data, versions, device (written last: marks completion)
        history.json        per-epoch train/val loss and accuracy, epochs_run, stopped_early, best_epoch
        test_report.json    clean in-distribution test set, last weights (ssh_ood.nets.metrics.report_dict)
        checkpoint.pt       only while training: resume state (model, momentum, dropout RNG, history)
        files.json          SHA-256 and identity of each file above (ssh_ood.base.file_records): a file that
                            does not verify is not done; a model that cannot resume restarts from its seed

and ``out_dir/summary.csv`` has one row per completed model. ``out_dir/run.json`` fixes the run's identity
(preset, seed, recipe, data fingerprint) when the folder is first written, and a run holds the folder
(``out_dir/.run.lock``, :mod:`ssh_ood.base.run_folders`) while it writes: a second run on it stops at once. A run
killed at any point resumes from the last completed epoch of each model and ends, on CPU, with bitwise the
weights of an uninterrupted run. A model whose loss becomes non-finite stops (its checkpoint keeps the last
finite epoch), the others go on, and :func:`train_models` then raises :class:`TrainingFailed` naming it.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..base.device import select_device
from ..base.file_records import RECORD_FILE, open_folder, problem, remove
from ..base.io_utils import save_json
from ..base.paths import RUNS_DIR
from ..base.presets import Preset, get_preset
from ..base.run_folders import IDENTITY_FILE, check_identity, hold_folder
from ..base.validation import optional_int, require_int
from .data_loaders import TrainingData, batch_slices, fixed_order, training_batch
from .ensemble_training import (
    ENGINES,
    ModelState,
    default_engine,
    dropout_generator,
    evaluate_models,
    initial_model,
)
from .metrics import report_dict
from .model_folders import (
    CHECKPOINT,
    HISTORY_KEYS,
    is_complete,
    load_config,
    load_torch,
    model_dir_name,
    open_model_folder,
    save_torch,
    write_summary,
)
from .recipes import DEFAULT_RECIPE, get_recipe, load_recipe_data
from .training_processes import (
    Reporter,
    available_cpus,
    drain,
    make_groups,
    single_thread,
    tune_malloc,
    worker_init,
    worker_report,
)
from .training_recipe import (
    RunSettings,
    check_same_run,
    data_fingerprint,
    model_seed,
    should_stop,
)


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
    failure: str | None = None

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
    model = initial_model(seed, settings.thermometer_levels)
    settings.training_recipe.prepare(model)
    model = model.to(device).train()
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
    saved = _usable_checkpoint(directory, "cpu")  # generator states must stay CPU tensors; restore() moves the rest
    open_model_folder(directory, config)
    if saved is not None:
        check_same_run(directory, saved["config"], config)
        slot.restore(saved)
    else:  # the model restarts from its seed: whatever its folder held (results of other weights, a checkpoint
        # that does not verify) goes
        for path in directory.iterdir():
            if path.is_file() and path.name not in (RECORD_FILE, ".run.lock"):
                remove(path)
    return slot


def _usable_checkpoint(directory: Path, device) -> dict | None:
    """The model's checkpoint if there is one that verifies against the folder's record, else None (the
    model then restarts from its seed: on CPU the same result as a clean run)."""
    path = directory / CHECKPOINT
    if problem(path) is not None:
        return None
    saved = load_torch(path, map_location=device)
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
    save_json(directory / "config.json", slot.config)
    remove(directory / CHECKPOINT)


# ----------------------------------------------------------------------------------------------
# training a group of models in lockstep
# ----------------------------------------------------------------------------------------------

def _load_run_data(settings: RunSettings) -> TrainingData:
    """The run's datasets on its device, checked against the fingerprint taken when the run started."""
    data = load_recipe_data(settings.data_dir, settings.preset, settings.recipe_name, settings.base_seed)
    if data_fingerprint(data) != settings.data_sha256:
        raise ValueError(f"{settings.data_dir}: the datasets changed while the run was starting; run it again")
    return data.to(settings.device)


def _train_group(settings: RunSettings, indices: Sequence[int], report: Reporter, data: TrainingData | None = None) -> None:
    """Train the models ``indices`` together until each one stops or reaches ``max_epochs``."""
    device = torch.device(settings.device)
    data = _load_run_data(settings) if data is None else data
    slots = [_open_slot(settings, index, data, device) for index in indices]
    preset = settings.preset
    recipe = settings.training_recipe
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
                key = (slot.order_key, slot.epoch if recipe.name != DEFAULT_RECIPE else None)
                if key not in batches:
                    x, y = training_batch(
                        data.training, slot.order, number, preset.batch_size, settings.thermometer_levels
                    )
                    batches[key] = (recipe.batch_input(x, slot.noise_seed, slot.epoch, number), y)
                inputs.append(batches[key][0])
                targets.append(batches[key][1])
            result = recipe.step([s.state for s in active], inputs, targets, settings.sgd, settings.engine)
            loss_sums += result.loss_sum
            correct += result.n_correct
        validation = evaluate_models(
            [s.state.model for s in active], data.validation, settings.thermometer_levels, settings.engine
        )
        train_loss = (loss_sums / len(data.training)).cpu().numpy()
        train_accuracy = (correct / len(data.training)).cpu().numpy()
        for k, slot in enumerate(active):
            _end_epoch(slot, settings, train_loss[k], train_accuracy[k], validation.loss[k], validation.accuracy[k])
            if slot.failure is None:  # a failed model keeps the checkpoint of its last finite epoch
                save_torch(slot.directory / CHECKPOINT, slot.checkpoint())
            report(
                {
                    "index": slot.index,
                    "event": "epoch",
                    "epoch": slot.epoch,
                    "val_loss": slot.history["val_loss"][-1],
                    "val_accuracy": slot.history["val_accuracy"][-1],
                    "done": slot.done,
                    "failure": slot.failure,
                }
            )
            if slot.done and slot.failure is None:
                _finish(slot, settings, data)
    for slot in slots:  # models whose last epoch was checkpointed before a kill
        if slot.failure is None and not is_complete(slot.directory):
            _finish(slot, settings, data)


def _end_epoch(slot: _Slot, settings: RunSettings, train_loss, train_accuracy, val_loss, val_accuracy) -> None:
    slot.epoch += 1
    values = [float(v) for v in (train_loss, val_loss, train_accuracy, val_accuracy)]  # plain floats: JSON, weights_only
    for key, value in zip(HISTORY_KEYS, values, strict=True):
        slot.history[key].append(value)
    if not (math.isfinite(values[0]) and math.isfinite(values[1])):
        slot.failure = (f"{slot.directory.name} (seed {slot.config['model_seed']}): non-finite loss in epoch {slot.epoch} "
                        f"(training {values[0]}, validation {values[1]})")
        slot.done = True
        return
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


_WORKER_DATA: dict[tuple, TrainingData] = {}


def _train_group_in_worker(settings: RunSettings, indices: tuple[int, ...]) -> None:
    key = (settings.data_dir, settings.data_sha256, settings.device)
    if key not in _WORKER_DATA:  # a worker trains several groups: load the data once
        _WORKER_DATA.clear()
        _WORKER_DATA[key] = _load_run_data(settings)
    _train_group(settings, indices, worker_report, _WORKER_DATA[key])


def _run_groups(settings: RunSettings, groups: list[tuple[int, ...]], n_workers: int, report: Reporter) -> None:
    """Train the groups in this process (one thread) or in ``n_workers`` spawned processes (one thread each).

    Groups are handed out dynamically, so a worker whose models stop early takes the next group. A
    worker that dies (e.g. killed by the OS) raises ``BrokenProcessPool`` instead of hanging the run.
    """
    if n_workers <= 1 or len(groups) == 1:
        tune_malloc()
        with single_thread() if settings.engine == "fused" else nullcontext():
            for indices in groups:
                _train_group(settings, indices, report)
        return
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    pool = ProcessPoolExecutor(n_workers, mp_context=context, initializer=worker_init, initargs=(events,))
    try:
        futures = [pool.submit(_train_group_in_worker, settings, indices) for indices in groups]
        running = set(futures)
        while running:
            drain(events, report, timeout=0.2)
            for future in running:
                if future.done() and future.exception() is not None:
                    raise future.exception()
            running = {future for future in running if not future.done()}
        drain(events, report, timeout=0.2)
    except BaseException:
        # stop at once (Ctrl-C, a failed group): the workers' checkpoints keep the finished epochs
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


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


def _check_run_identity(out_dir: Path, settings: RunSettings, create: bool) -> None:
    """:func:`check_identity` of the run; a refusal on ``data_sha256`` alone says where rounding can come from.

    The inputs come from an SVD (LAPACK through OpenBLAS), and OpenBLAS picks its kernel by CPU: the last bits of
    a few float32 inputs, and so the fingerprint, can differ between machines while the chains and labels are
    the same. The shipped populations of seeds 1-3 record the Haswell kernel's data (``OPENBLAS_CORETYPE=Haswell``).
    """
    identity = settings.run_identity()
    try:
        check_identity(out_dir, identity, create=create)
    except ValueError as refusal:
        check_identity(out_dir, {k: v for k, v in identity.items() if k != "data_sha256"}, create=False)
        raise ValueError(f"{refusal}. Only the data fingerprint differs: the inputs come from an SVD whose last bits "
                         "depend on the CPU kernel OpenBLAS picks; the shipped populations of seeds 1, 2 and 3 were "
                         "computed with its Haswell kernel: start Python with OPENBLAS_CORETYPE=Haswell in the "
                         "environment to reproduce their data bit for bit") from None


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
    recipe: str | None = None,
    read_only: bool = False,
) -> list[Path]:
    """Train the models ``model_indices`` of a run together; returns their folders ``out_dir/model_XXX``.

    Parameters
    ----------
    preset : preset (name) giving the recipe and data sizes.
    data_dir : folder of the preset's ``.npz`` datasets (:func:`ssh_ood.physics.datasets.write_datasets`).
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
    recipe : training recipe of :mod:`ssh_ood.nets.recipes` (default ``"paper"``, the paper's, recorded as before).
    read_only : only check that the models are complete and of this run (preset, seed, recipe, data),
        writing nothing in ``out_dir`` (e.g. a shipped population); ``ValueError`` naming the missing ones.

    Writes each model's folder (module docstring) and ``out_dir/summary.csv``.
    """
    preset = get_preset(preset)
    indices = _check_indices(model_indices)
    model_seed(base_seed, 0)
    max_epochs = require_int("max_epochs", preset.max_epochs if max_epochs is None else max_epochs, minimum=1)
    if thermometer_levels in (None, 0):
        thermometer_levels = None
    else:
        thermometer_levels = require_int("thermometer_levels", thermometer_levels, minimum=2)
    recipe = get_recipe(recipe).name
    get_recipe(recipe).check_supported(thermometer_levels)
    device = select_device(None if device is None else str(device))
    engine = default_engine(device) if engine is None else engine
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine == "fused" and device.type != "cpu":
        raise ValueError("the fused engine runs on CPU only; use engine='stacked' on accelerators")
    n_workers = optional_int("n_workers", n_workers, minimum=1)
    out_dir = Path(out_dir)
    data_dir = Path(data_dir)
    folders = [out_dir / model_dir_name(index) for index in indices]
    missing = [index for index, folder in zip(indices, folders, strict=True) if not is_complete(folder)]
    if read_only and missing:
        raise ValueError(f"{out_dir} lacks the finished models {missing}, and is only read here: train them there "
                         "(python -m ssh_ood population --models ...)")
    writes = not read_only and (bool(missing) or problem(out_dir / "summary.csv") is not None
                                or problem(out_dir / IDENTITY_FILE) is not None)  # a missing run.json is written again
    # a writer holds the folder before any work (busy, unwritable and shipped folders fail here); a run
    # that is already complete is only read
    with hold_folder(out_dir) if writes else nullcontext() as hold:
        data = load_recipe_data(data_dir, preset, recipe, int(base_seed))
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
            recipe_name=recipe,
        )
        _check_run_identity(out_dir, settings, create=False)
        if writes:  # then run.json, and every file the run writes, enters the folder's record
            open_folder(out_dir, run_identity(preset.name, base_seed))
            # run.json by the holder only: helpers of a population (its Dask workers) would race to write it
            _check_run_identity(out_dir, settings, create=hold.owner)
        pending = []
        for index in indices:
            directory = out_dir / model_dir_name(index)
            expected = settings.model_config(index, len(data.training), len(data.validation))
            if is_complete(directory):
                check_same_run(directory, load_config(directory), expected)
                continue
            saved = _usable_checkpoint(directory, "cpu")
            if saved is not None:  # fail here, before any worker starts
                check_same_run(directory, saved["config"], expected)
            pending.append(index)
        failures: list[str] = []
        if pending:
            if device.type != "cpu":
                n_workers = 1
            elif n_workers is None:
                n_workers = min(available_cpus(), len(pending))
            groups = make_groups(pending, engine, n_workers)
            with _ProgressBar(len(pending), settings.max_epochs, enabled=progress) as bar:

                def report(event: dict) -> None:
                    if event.get("failure"):
                        failures.append(event["failure"])
                    bar.update(event)

                _run_groups(settings, groups, n_workers, report)
        if hold is not None and hold.owner:  # helpers of a population leave the shared summary to its owner
            write_summary(out_dir)
    if failures:
        raise TrainingFailed(f"{len(failures)} of {len(pending)} models failed: {'; '.join(failures)}. The others "
                             "finished; a rerun resumes the failed ones from their last finite epoch")
    return folders


def run_identity(preset: str, seed: int) -> dict:
    """The identity a run or population folder is recorded with (:mod:`ssh_ood.base.file_records`)."""
    return {"kind": "run", "preset": preset, "seed": int(seed)}


def default_run_dir(preset: str, seed: int, thermometer_levels: int | None = None) -> Path:
    """``00_demonstrations_data/runs/<preset>_seed<seed>[_thermo<L>]``."""
    suffix = f"_thermo{thermometer_levels}" if thermometer_levels else ""
    return RUNS_DIR / f"{preset}_seed{seed}{suffix}"


class TrainingFailed(ValueError):
    """Some models of a run stopped with non-finite numbers (the others finished)."""


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


