"""Readable names and number formats of the columns of ``stats.csv`` and ``diagnostics.csv``.

:func:`column_label` turns a column name into what a reader sees on an axis, in a dropdown or in a hover
(``"probe_mid_bulk_shift"`` -> ``"probe (centre, bulk density added): logit shift"``); the full definitions
stay in ``stats_columns.json`` and ``diagnostics_columns.json``. :func:`is_integer_column` and
:func:`value_format` keep counts (``epochs_run``) from being printed as ``192.000``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

COLUMN_LABELS = {
    # stats.csv
    "rmse": "RMSE", "mae": "MAE", "ssim": "SSIM", "ood_accuracy": "OOD accuracy", "ood_macro_f1": "OOD macro F1",
    "clean_accuracy": "clean accuracy (W = 0 row of the OOD grid)", "test_accuracy": "test accuracy",
    "final_val_loss": "final validation loss", "final_train_loss": "final training loss",
    "final_val_accuracy": "final validation accuracy", "final_train_accuracy": "final training accuracy",
    "best_val_loss": "best validation loss", "best_epoch": "best epoch", "epochs_run": "epochs run",
    # diagnostics.csv (src/ssh_ood/interpret/diagnostics.py)
    "cam_score": "CAM score (edge-state share)", "cam_zero_mode_score": "CAM zero-mode share",
    "cam_feature_grid_score": "CAM score on the feature grid", "cam_difference_score": "CAM score of the logit difference",
    "cam_zero_mode_correlation": "CAM–zero-mode correlation", "logit_scale": "logit scale (std of the logit difference)",
    "margin_median": "median clean margin (logits)", "margin_q10": "10 % quantile of the clean margin (logits)",
}
PROBE_LABELS = {  # src/ssh_ood/physics/interventions.py: PROBES
    "remove_zero_modes": "zero modes removed", "end_zero": "ends, mid-gap density added",
    "end_bulk": "ends, bulk density added", "mid_zero": "centre, mid-gap density added",
    "mid_bulk": "centre, bulk density added",
}
_PATTERNS = (
    (re.compile(r"probe_(?P<probe>.+)_flip"), lambda m: f"probe ({PROBE_LABELS.get(m['probe'], m['probe'])}): flips"),
    (re.compile(r"probe_(?P<probe>.+)_shift"),
     lambda m: f"probe ({PROBE_LABELS.get(m['probe'], m['probe'])}): logit shift"),
    (re.compile(r"pca_drift_(?P<layer>\w+?)_W(?P<W>[\d.]+)"), lambda m: f"PCA drift of {m['layer']} at W = {m['W']}"),
    (re.compile(r"pca_separation_(?P<layer>\w+)"), lambda m: f"PCA class separation of {m['layer']}"),
    (re.compile(r"accuracy_W(?P<W>[\d.]+)"), lambda m: f"accuracy at W = {m['W']}"),
    (re.compile(r"flip_W(?P<W>[\d.]+)"), lambda m: f"prediction flips at W = {m['W']}"),
    (re.compile(r"logit_shift_W(?P<W>[\d.]+)"), lambda m: f"logit shift at W = {m['W']}"),
    (re.compile(r"(?P<set>ood|clean)_(?P<what>.+)"),
     lambda m: f"{'OOD' if m['set'] == 'ood' else 'clean'} {m['what'].replace('_', ' ').replace('f1', 'F1')}"),
)


def column_label(column: str) -> str:
    """Readable name of a stats or diagnostics column; an unknown column keeps its name.

    >>> column_label("probe_mid_bulk_shift")
    'probe (centre, bulk density added): logit shift'
    """
    if column in COLUMN_LABELS:
        return COLUMN_LABELS[column]
    for pattern, label in _PATTERNS:
        match = pattern.fullmatch(column)
        if match:
            return label(match)
    return column


def is_integer_column(values: pd.Series) -> bool:
    """Whether a column holds counts: an integer dtype, or finite floats that are all whole numbers."""
    if pd.api.types.is_bool_dtype(values):
        return False
    if pd.api.types.is_integer_dtype(values):
        return True
    numbers = values.to_numpy(dtype=np.float64)
    return bool(numbers.size) and bool(np.all(np.isfinite(numbers))) and bool(np.all(numbers == np.round(numbers)))


def value_format(values: pd.Series) -> str:
    """Format spec of a column's values: ``"d"`` for counts, ``".3f"`` otherwise (Python and d3 alike)."""
    return "d" if is_integer_column(values) else ".3f"


def format_value(value: float, spec: str) -> str:
    """``value`` written with ``spec`` from :func:`value_format` (``"d"`` rounds to the integer)."""
    return format(int(round(value)), "d") if spec == "d" else format(value, spec)
