"""Classification metrics of the binary phase classifier, vectorized over many test sets at once.

Class 0 = trivial, 1 = topological. For class c: precision = TP_c / (TP_c + FP_c),
recall = TP_c / (TP_c + FN_c), F1 = 2 P R / (P + R); a ratio with zero denominator is 0 (scikit-learn's
``zero_division=0``). Macro averages are unweighted means over the two classes.
"""

from __future__ import annotations

import numpy as np

from ..physics.data_generation import CLASS_NAMES

METRIC_NAMES = (
    "accuracy",
    *(f"{kind}_{name.lower()}" for name in CLASS_NAMES for kind in ("precision", "recall", "f1")),
    "macro_precision",
    "macro_recall",
    "macro_f1",
)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), 0.0)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy and per-class / macro precision, recall, F1 along the last axis.

    Parameters
    ----------
    y_true, y_pred : integer arrays of identical shape (..., N) with values in {0, 1}; the leading axes
        index independent test sets (e.g. models x disorder strengths x realizations).

    Returns
    -------
    dict mapping each name of ``METRIC_NAMES`` to a float array of shape (...) (0-d for one set).
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {y_true.shape} and {y_pred.shape}")
    if y_true.ndim == 0 or y_true.shape[-1] == 0:
        raise ValueError("y_true and y_pred must hold at least one sample along the last axis")
    for name, arr in (("y_true", y_true), ("y_pred", y_pred)):
        if not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name} must contain only the labels 0 and 1")
    metrics: dict[str, np.ndarray] = {"accuracy": (y_true == y_pred).mean(axis=-1)}
    precisions, recalls, f1s = [], [], []
    for c, name in enumerate(CLASS_NAMES):
        true_c = y_true == c
        pred_c = y_pred == c
        tp = (true_c & pred_c).sum(axis=-1)
        precision = _ratio(tp, pred_c.sum(axis=-1))
        recall = _ratio(tp, true_c.sum(axis=-1))
        f1 = _ratio(2 * precision * recall, precision + recall)
        metrics[f"precision_{name.lower()}"] = precision
        metrics[f"recall_{name.lower()}"] = recall
        metrics[f"f1_{name.lower()}"] = f1
        precisions.append(precision)
        recalls.append(recall)
        f1s.append(f1)
    metrics["macro_precision"] = np.mean(precisions, axis=0)
    metrics["macro_recall"] = np.mean(recalls, axis=0)
    metrics["macro_f1"] = np.mean(f1s, axis=0)
    return {name: metrics[name] for name in METRIC_NAMES}


def report_dict(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Metrics of one test set as plain floats (JSON-ready), plus the number of samples."""
    metrics = classification_metrics(y_true, y_pred)
    return {"n_samples": int(np.asarray(y_true).shape[-1]), **{k: float(v) for k, v in metrics.items()}}
