"""Precise BatchNorm statistics: exact averages over the training set instead of the training-time EMA.

In training mode BatchNorm normalizes with the statistics of the current batch and keeps exponential
moving averages of them (momentum 0.1: in effect the last ~10 batches); eval mode normalizes with those
averages. When a channel's variance is tiny compared with the batch-to-batch fluctuation of its mean,
the last ~10 batches (the same samples every epoch here: the data order is fixed) misrepresent the data and the eval-mode network can differ wildly from the
train-mode one. Thermometer-encoded SSH input is such a case: channel 0 (x > 0) is lit on 99.9 % of the
pixels and the class information sits in the ~0.06 % of pixels above 1/L, so quick-recipe
``CNN_SSH_ThermEncod(3)`` networks reach ~0.8 accuracy in train mode and predict one class in eval mode.

"Precise BN" (Wu & Johnson, 2021, *Rethinking "Batch" in BatchNorm*) recomputes the statistics with the
weights frozen: one pass over the training set in train mode with dropout off, BatchNorm in cumulative
mode (``momentum=None``), so running_mean and running_var become the plain averages of the per-batch
means and (unbiased) variances. Nothing else in the network changes.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import torch
from torch import nn

from ..base.file_records import problem, verified_bytes
from ..base.io_utils import atomic_write_bytes, load_json, save_json
from ..base.validation import require_int
from .architecture import CNN_SSH
from .data_loaders import TensorSplit, evaluation_batches
from .model_folders import RESULT_FILES, is_complete, load_config, load_model, open_model_folder, save_torch
from .prediction import require_density_input

CALIBRATION_FILE = "batchnorm_calibration.json"


def recalibrate_batchnorm(
    model: CNN_SSH, split: TensorSplit, thermometer_levels: int | None = None, batch_size: int = 64
) -> CNN_SSH:
    """A copy of ``model`` (eval mode) whose BatchNorm running statistics are averages over ``split``.

    Parameters
    ----------
    model : trained network (left unchanged).
    split : the samples to average over, ``x`` (N, 1, 50, 50) real-valued; normally the training set.
    thermometer_levels : encode the input with L levels (the network's input channels), or None.
    batch_size : samples per batch, as in training (the per-batch variances depend on it).

    Returns
    -------
    The recalibrated copy, in eval mode on the device of ``model``.
    """
    batch_size = require_int("batch_size", batch_size, minimum=1)
    if len(split) == 0:
        raise ValueError("split holds no samples")
    calibrated = copy.deepcopy(model)
    norms = [m for m in calibrated.modules() if isinstance(m, nn.BatchNorm2d)]
    if not norms:
        raise ValueError("model has no BatchNorm2d layer")
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the batches
    calibrated.train()
    for dropout in (m for m in calibrated.modules() if isinstance(m, nn.Dropout)):
        dropout.eval()
    device = next(calibrated.parameters()).device
    with torch.no_grad():
        for inputs, _ in evaluation_batches(split, batch_size, thermometer_levels):
            calibrated(inputs.to(device))
    for norm, original in zip(norms, (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)), strict=True):
        norm.momentum = original.momentum
    return calibrated.eval()


def write_recalibrated_copy(model_dir: str | Path, out_dir: str | Path, training: TensorSplit) -> Path:
    """Copy a finished model folder to ``out_dir`` with precise BatchNorm statistics in ``weights.pt``.

    The statistics average over ``training`` (the model's training split, e.g.
    ``load_training_data(data_dir, preset).training``, loaded once for many models); the batch size
    and thermometer levels are the model's (``config.json``). ``best_weights.pt`` is copied unchanged.
    ``batchnorm_calibration.json`` records the source folder and the number of samples. A copy that is
    already there for the same source weights is kept.
    """
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if not is_complete(model_dir):  # every source file present and verified against the source folder's record
        found = next(problem(model_dir / name) for name in RESULT_FILES if problem(model_dir / name) is not None)
        raise FileNotFoundError(f"{model_dir}: not a finished model folder (weights, history, config): {found}")
    source_sha256 = hashlib.sha256(verified_bytes(model_dir / "weights.pt", required=True)).hexdigest()
    record = out_dir / CALIBRATION_FILE
    if is_complete(out_dir) and problem(record) is None and load_json(record).get("source_weights_sha256") == source_sha256:
        return out_dir
    require_density_input(model_dir, "BatchNorm recalibration on the preset's training images")
    config = load_config(model_dir)
    model = recalibrate_batchnorm(load_model(model_dir), training, config.get("thermometer_levels"),
                                  int(config["recipe"]["batch_size"]))
    open_model_folder(out_dir, config)
    for name in RESULT_FILES:
        if name != "weights.pt":
            atomic_write_bytes(out_dir / name, verified_bytes(model_dir / name, required=True))
    save_torch(out_dir / "weights.pt", model.state_dict())
    save_json(record, {"source": str(model_dir), "source_weights_sha256": source_sha256, "n_samples": len(training),
                       "method": "precise BN: cumulative average of per-batch statistics, dropout off"})
    return out_dir
