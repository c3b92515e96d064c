"""The files of a trained model's folder: names, completeness, weights, history, config, summary table."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import torch

from ..base.file_records import check_bytes, open_folder, problem, read_record, verified_bytes
from ..base.io_utils import atomic_write_bytes, load_json_object
from ..base.run_folders import hold_folder
from ..base.safe_files import one_line_reason
from .architecture import CNN_SSH, build_model
from .model_identity import check_config_values, check_model_identity, check_run_members

HISTORY_KEYS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")
# a model is complete when its results exist (config.json is written last)
RESULT_FILES = ("weights.pt", "best_weights.pt", "history.json", "test_report.json", "config.json")
CHECKPOINT = "checkpoint.pt"
#: fields of config.json that readers rely on, with their JSON types
CONFIG_FIELDS = {"preset": str, "index": int, "model_seed": int, "base_seed": int, "recipe": dict, "n_cells": int,
                 "thermometer_levels": (int, type(None)), "shared_order": bool, "data_sha256": str}
HISTORY_FIELDS = {**{key: list for key in HISTORY_KEYS}, "epochs_run": int, "stopped_early": bool, "best_epoch": int}
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

# ----------------------------------------------------------------------------------------------
# model folders
# ----------------------------------------------------------------------------------------------
def model_dir_name(index: int) -> str:
    """``model_007`` for index 7."""
    return f"model_{index:03d}"


def model_identity(config: dict) -> dict:
    """The identity a model folder is recorded with (:mod:`ssh_ood.base.file_records`): kind, preset, run seed, index."""
    return {"kind": "model", "preset": config["preset"], "seed": config["base_seed"], "index": config["index"]}


def open_model_folder(model_dir: str | Path, config: dict) -> Path:
    """Declare ``model_dir`` a recorded model folder of ``config``'s model before anything is written there."""
    return open_folder(model_dir, model_identity(config))


def check_recorded(model_dir: str | Path) -> None:
    """``UnverifiedFile`` (a ``ValueError``, one line) if a model folder has no readable record of its files."""
    read_record(model_dir)


def is_complete(model_dir: str | Path) -> bool:
    """Whether ``model_dir`` holds a finished model: every file of ``RESULT_FILES`` present and equal to the
    folder's record (:func:`ssh_ood.base.file_records.problem`); anything else is redone.

    ``config.json`` is written last, so a model interrupted while its final files were written is not
    complete (and is finished from its checkpoint on the next run).
    """
    model_dir = Path(model_dir)
    return all(problem(model_dir / name) is None for name in RESULT_FILES)


def damage(model_dir: str | Path) -> str | None:
    """Why a model folder that holds results is not complete (a result file missing, changed or unrecorded), or
    None for a complete folder, one still training (a verified ``checkpoint.pt``) or one without results yet.
    Tables over a run refuse a damaged folder instead of leaving it out."""
    model_dir = Path(model_dir)
    if is_complete(model_dir) or problem(model_dir / CHECKPOINT) is None:
        return None
    try:
        listed = set(read_record(model_dir)["files"]) if (model_dir / "files.json").is_file() else set()
    except ValueError:
        listed = set(RESULT_FILES)  # an unreadable record: whatever is there cannot be trusted
    if not any((model_dir / name).is_file() or name in listed for name in RESULT_FILES):
        return None  # nothing trained there yet (a model that failed before its first finite epoch)
    return next(p for p in (problem(model_dir / name) for name in RESULT_FILES) if p is not None)


def check_undamaged(model_dirs) -> None:
    """``ValueError`` (one line) naming the first damaged folder's problem (:func:`damage`) among ``model_dirs``."""
    for model_dir in model_dirs:
        found = damage(model_dir)
        if found is not None:
            raise ValueError(f"{found} (a damaged model folder: rerun the command that trained it to redo it)")


def check_complete(model_dir: str | Path) -> None:
    """``FileNotFoundError`` or a one-line ``ValueError`` naming the first file of ``RESULT_FILES`` that is missing
    or does not verify (:func:`is_complete` as a check that says why)."""
    for name in RESULT_FILES:
        verified_bytes(Path(model_dir) / name, required=True)


def save_torch(path: Path, obj) -> None:
    """``torch.save(obj)`` to ``path`` atomically (a killed write leaves the previous file)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_torch(path: Path, map_location="cpu", verify: bool = True):
    """``torch.load(weights_only=True)`` of a file, then checked against its folder's record, which the folder
    must have (``verify=False``: the caller checks it after its own checks of the content);
    ``FileNotFoundError`` or a one-line ``ValueError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    raw = path.read_bytes()
    try:
        loaded = torch.load(io.BytesIO(raw), map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        raise ValueError(f"{path}: not a readable weights-only PyTorch file ({one_line_reason(exc)})") from None
    if verify:
        check_bytes(path, raw, required=True)
    return loaded


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
    state = load_torch(path, verify=False)  # the content first, so that a broken file is named for what is wrong
    if not isinstance(state, dict) or "cnn_layers_1.0.weight" not in state:
        raise ValueError(f"{path}: not a CNN_SSH state_dict")
    levels = int(state["cnn_layers_1.0.weight"].shape[1])
    model = build_model(levels if levels > 1 else None)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not fit CNN_SSH ({exc})") from exc
    check_finite_state(path, state)
    verified_bytes(path, required=True)  # then the record
    return model.to(device).eval()


def check_finite_state(path: str | Path, state: dict) -> None:
    """``ValueError`` naming ``path`` and the first offending entry if a state_dict holds NaN or infinity."""
    for name, tensor in state.items():
        if torch.is_tensor(tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            count = int((~torch.isfinite(tensor)).sum())
            raise ValueError(f"{path}: {count} non-finite values (NaN or infinity) in {name!r}; these weights "
                             "cannot be evaluated")


def load_history(model_dir: str | Path) -> dict:
    """``history.json`` of a model folder (per-epoch lists ``train_loss`` ... and run summary)."""
    history = load_json_object(Path(model_dir) / "history.json", HISTORY_FIELDS)
    check_recorded(model_dir)
    return history


def load_config(model_dir: str | Path) -> dict:
    """``config.json`` of a model folder, its fields checked (:data:`CONFIG_FIELDS`, then their values and the
    model's identity: :mod:`ssh_ood.nets.model_identity`)."""
    config = load_json_object(Path(model_dir) / "config.json", CONFIG_FIELDS)
    check_recorded(model_dir)
    check_config_values(Path(model_dir) / "config.json", config)
    check_model_identity(model_dir, config)
    return config


def training_outcome(model_dir: str | Path) -> dict:
    """Scalars of a finished model's training: epochs, final/best losses and accuracies, test accuracy."""
    model_dir = Path(model_dir)
    history = load_history(model_dir)  # checks the folder has a record
    report = load_json_object(model_dir / "test_report.json", {"accuracy": float})
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
    """``out_dir/summary.csv``: one row per completed model folder of the run (sorted by index).

    Read and written while holding the folder (:func:`ssh_ood.base.run_folders.hold_folder`): one writer at a time.
    """
    out_dir = Path(out_dir)
    with hold_folder(out_dir):
        rows = []
        check_undamaged(sorted(out_dir.glob("model_*")))
        complete = [directory for directory in sorted(out_dir.glob("model_*")) if is_complete(directory)]
        configs = [(directory, load_config(directory)) for directory in complete]
        check_run_members(configs)
        for directory, config in configs:
            rows.append({"index": config["index"], "seed": config["model_seed"], **training_outcome(directory)})
        rows.sort(key=lambda row: row["index"])
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return atomic_write_bytes(out_dir / "summary.csv", text.getvalue().encode())


