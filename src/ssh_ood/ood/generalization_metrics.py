"""What "generalizes well" means: errors between predicted and target phase diagrams, and the cut on them.

For an (n_W, n_v) predicted diagram P (fraction of disorder realizations classified topological) and the
target T (winding number averaged over the same realizations), both in [0, 1]:

- MAE = mean(|P - T|), RMSE = sqrt(mean((P - T)^2)), SSIM (scikit-image, ``data_range = 1``);
- "well generalizing" is a :class:`GeneralizationCut`, metric <= threshold, by default **MAE <= 0.2**.

Why MAE. The paper's cut is "RMSE <= 0.2", but the "RMSE" column of its per-network table is linear in
1 - accuracy (≈ 0.99 (1 - acc) + 0.02, Pearson 0.995), as a mean absolute error of the diagrams is (per
cell |P - T| is at most the fraction of misclassified realizations, with equality when the errors in a cell
share a sign) and a root mean square is not (it weighs concentrated errors more). A true RMSE <= 0.2 is a
much stricter cut; it stays selectable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from skimage.metrics import structural_similarity

CUT_METRICS = ("mae", "rmse")
DEFAULT_CUT_METRIC = "mae"
DEFAULT_THRESHOLD = 0.2
SSIM_MAX_WINDOW = 7


# ----------------------------------------------------------------------------------------------
# errors between diagrams
# ----------------------------------------------------------------------------------------------
def _check_diagrams(predicted: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    predicted = np.asarray(predicted, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if predicted.ndim != 2 or predicted.shape != target.shape:
        raise ValueError(f"predicted and target diagrams must be 2-D of equal shape, got {predicted.shape} and {target.shape}")
    if predicted.size == 0 or not (np.isfinite(predicted).all() and np.isfinite(target).all()):
        raise ValueError("diagrams must be non-empty and finite")
    return predicted, target


def diagram_mae(predicted: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute difference mean(|P - T|) of two (n_W, n_v) diagrams (fractions in [0, 1])."""
    predicted, target = _check_diagrams(predicted, target)
    return float(np.mean(np.abs(predicted - target)))


def diagram_rmse(predicted: np.ndarray, target: np.ndarray) -> float:
    """Root-mean-square difference sqrt(mean((P - T)^2)) of two (n_W, n_v) diagrams."""
    predicted, target = _check_diagrams(predicted, target)
    return float(np.sqrt(np.mean((predicted - target) ** 2)))


def diagram_ssim(predicted: np.ndarray, target: np.ndarray) -> float:
    """Structural similarity of two diagrams with values in [0, 1] (``data_range = 1``).

    scikit-image's ``structural_similarity`` with a uniform 7 x 7 window, shrunk to the largest odd size
    that fits diagrams smaller than 7 in a direction; NaN when a side is shorter than 3 (undefined).
    1 for identical diagrams.
    """
    predicted, target = _check_diagrams(predicted, target)
    window = min(SSIM_MAX_WINDOW, *predicted.shape)
    window -= 1 - window % 2
    if window < 3:
        return math.nan
    return float(structural_similarity(predicted, target, data_range=1.0, win_size=window))


# ----------------------------------------------------------------------------------------------
# the well-generalizing cut
# ----------------------------------------------------------------------------------------------
def check_threshold(threshold: float) -> float:
    """Validate a well-generalizing threshold (a finite number >= 0)."""
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"threshold (well-generalizing cut) must be a number, got {threshold!r}") from None
    if not math.isfinite(threshold) or threshold < 0:
        raise ValueError(f"threshold (well-generalizing cut) must be finite and >= 0, got {threshold}")
    return threshold


@dataclass(frozen=True)
class GeneralizationCut:
    """"Well generalizing" iff ``metric`` (a diagram error, ``"mae"`` or ``"rmse"``) <= ``threshold``.

    The default, MAE <= 0.2, is the paper's cut on the metric its "RMSE" column behaves like (module
    docstring); ``GeneralizationCut("rmse", 0.2)`` applies the same number to a true RMSE.
    """

    metric: str = DEFAULT_CUT_METRIC
    threshold: float = DEFAULT_THRESHOLD

    def __post_init__(self) -> None:
        if self.metric not in CUT_METRICS:
            raise ValueError(f"cut metric must be one of {CUT_METRICS}, got {self.metric!r}")
        object.__setattr__(self, "threshold", check_threshold(self.threshold))

    def passes(self, values: Mapping) -> bool:
        """Whether the model with image metrics ``values`` (a mapping with key ``metric``) is well generalizing."""
        return bool(float(values[self.metric]) <= self.threshold)

    @property
    def label(self) -> str:
        """``"MAE ≤ 0.2"``."""
        return f"{self.metric.upper()} ≤ {self.threshold:g}"

    def to_dict(self) -> dict:
        return {"metric": self.metric, "threshold": self.threshold}

    @classmethod
    def from_dict(cls, data: Mapping, where: str = "cut") -> GeneralizationCut:
        """The cut stored by :meth:`to_dict`; ``ValueError`` naming ``where`` if it is malformed."""
        if not isinstance(data, Mapping) or set(data) != {"metric", "threshold"}:
            raise ValueError(f"{where}: a generalization cut is {{'metric': 'mae' | 'rmse', 'threshold': number}}, got {data!r}")
        try:
            return cls(data["metric"], data["threshold"])
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None

    @classmethod
    def stored_in(cls, record: Mapping, where: str = "record") -> GeneralizationCut:
        """The cut of a metrics file or manifest: ``generalization_cut``, or the ``rmse_threshold`` of files
        written before MAE existed (an RMSE cut), or the default."""
        if "generalization_cut" in record:
            return cls.from_dict(record["generalization_cut"], f"{where}: generalization_cut")
        if "rmse_threshold" in record:
            return cls("rmse", record["rmse_threshold"])
        return cls()


def recut(summary: dict, cut: GeneralizationCut) -> dict:
    """``summary`` (of :func:`load_metrics`) with ``well_generalizing`` and the cut set for ``cut``."""
    return {**summary, "generalization_cut": cut.to_dict(), "well_generalizing": cut.passes(summary)}
