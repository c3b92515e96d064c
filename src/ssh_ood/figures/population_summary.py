"""The population summary of notebook 06: counts, ranges, correlations and the summary figure, with the
paper's own 100 CNNs beside ours.

The paper's table (:func:`ssh_ood.ood.paper_reference.paper_network_metrics`) gives, per network, its OOD
accuracy, SSIM and a column named "RMSE" that is in fact a mean absolute error of the diagrams (it lies on
0.99 (1 - accuracy) + 0.02; ``00_demonstrations_data/reference/README.md``). So the paper's "RMSE" is drawn
and quoted beside our **MAE**, never beside our true RMSE, and every label says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..ood.generalization_metrics import CUT_METRICS, GeneralizationCut

CORRELATION_COLUMNS = (
    "mae", "rmse", "ssim", "ood_accuracy", "ood_macro_f1", "clean_accuracy", "test_accuracy", "final_val_loss", "epochs_run",
)
PAPER_MAE_LABEL = 'its column named "RMSE", a MAE'
OURS_COLOURS = {"ood_accuracy": "tab:blue", "mae": "tab:green", "rmse": "tab:orange", "ssim": "tab:purple"}
#: our column -> the paper's column drawn beside it (None: the paper has no such column)
PAPER_COLUMN = {"ood_accuracy": "ood_accuracy", "mae": "rmse", "rmse": None, "ssim": "ssim"}
AXIS_LABELS = {
    "ood_accuracy": "OOD accuracy (mean over (W, realization) sets)",
    "mae": "MAE(predicted, target diagram)",
    "rmse": "RMSE(predicted, target diagram)",
    "ssim": "SSIM(predicted, target diagram)",
}


def well_generalizing_counts(stats: pd.DataFrame, threshold: float) -> dict[str, int]:
    """Models well generalizing under each cut metric at ``threshold``: ``{"mae": n, "rmse": n}``."""
    return {metric: int((stats[metric] <= threshold).sum()) for metric in CUT_METRICS}


def summary_text(stats: pd.DataFrame, cut: GeneralizationCut) -> str:
    """One paragraph: population size, fraction well generalizing under ``cut`` and under the other cut
    metric at the same threshold, OOD accuracy, MAE, RMSE and clean-accuracy ranges."""
    n = len(stats)
    counts = well_generalizing_counts(stats, cut.threshold)
    others = [m for m in CUT_METRICS if m != cut.metric]
    parts = [f"{n} models; {counts[cut.metric]} ({counts[cut.metric] / n:.0%}) well generalizing ({cut.label})"
             + "".join(f"; {counts[m]} ({counts[m] / n:.0%}) with {m.upper()} ≤ {cut.threshold:g}" for m in others) + "."]
    for column, label in (("ood_accuracy", "OOD accuracy"), ("mae", "MAE"), ("rmse", "RMSE"),
                          ("clean_accuracy", "Accuracy on the clean row (W = 0) of the OOD grid")):
        values = stats[column]
        parts.append(f"{label}: min {values.min():.3f}, median {values.median():.3f}, max {values.max():.3f}.")
    return " ".join(parts)


def paper_summary_text(paper: pd.DataFrame, threshold: float) -> str:
    """One paragraph on the paper's networks (:func:`~ssh_ood.ood.paper_reference.paper_network_metrics`):
    OOD accuracy, its "RMSE" column (compared with our MAE) and SSIM ranges, and how many pass ``threshold``."""
    n = len(paper)
    passing = int((paper["rmse"] <= threshold).sum())

    def spread(values: pd.Series) -> str:
        return f"min {values.min():.3f}, median {values.median():.3f}, max {values.max():.3f}"

    return (f"The paper's {n} networks: OOD accuracy {spread(paper['ood_accuracy'])}. Its column named \"RMSE\", "
            f"which is a mean absolute error and compares with our MAE: {spread(paper['rmse'])}; "
            f"{passing} ({passing / n:.0%}) at or below {threshold:g}. SSIM: {spread(paper['ssim'])}.")


def correlation_table(stats: pd.DataFrame, columns: Sequence[str] = CORRELATION_COLUMNS, method: str = "pearson") -> pd.DataFrame:
    """Correlation matrix (``"pearson"`` or ``"spearman"``) between metrics across the population."""
    missing = [c for c in columns if c not in stats.columns]
    if missing:
        raise ValueError(f"columns {missing} are not in the stats table")
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method must be 'pearson' or 'spearman', got {method!r}")
    return stats[list(columns)].astype(np.float64).corr(method=method)


def _histograms(ax: Axes, column: str, ours: pd.Series, paper: pd.Series | None, bins: int, threshold: float) -> None:
    """Our networks filled, the paper's as an outline on the same bins; medians in the legend (and on the
    MAE panel, how many of the paper's networks have their "RMSE" column at or below ``threshold``)."""
    values = [ours] if paper is None else [ours, paper]
    low, high = min(v.min() for v in values), max(v.max() for v in values)
    edges = np.linspace(low, high if high > low else low + 1.0, bins + 1)
    ax.hist(ours, bins=edges, color=OURS_COLOURS[column], edgecolor="white",
            label=f"ours ({len(ours)}): median {ours.median():.3f}")
    if paper is not None:
        label = f"paper ({len(paper)}): median {paper.median():.3f}"
        if column == "mae":
            label = (f"paper ({len(paper)}), {PAPER_MAE_LABEL}: median {paper.median():.3f}; "
                     f"≤ {threshold:g}: {int((paper <= threshold).sum())} of {len(paper)}")
        ax.hist(paper, bins=edges, histtype="step", color="k", lw=1.4, label=label)


def summary_figure(stats: pd.DataFrame, cut: GeneralizationCut, bins: int = 20, paper: pd.DataFrame | None = None) -> Figure:
    """Histograms of the OOD accuracy, MAE, RMSE and SSIM over the population, the paper's networks outlined.

    Parameters
    ----------
    stats : the population's ``stats.csv``.
    cut : the well-generalizing cut; its threshold is marked on the MAE and on the RMSE panels (solid on
        the cut's own metric, dashed on the other, with how many networks pass each).
    bins : histogram bins per panel (shared by ours and the paper's).
    paper : the paper's networks (``paper_network_metrics()``): their OOD accuracy, SSIM, and their "RMSE"
        column drawn on the MAE panel (it is a mean absolute error); None draws ours only.
    """
    fig = Figure(figsize=(11, 6.6), layout="constrained")
    axes = dict(zip(("ood_accuracy", "mae", "rmse", "ssim"), fig.subplots(2, 2).ravel(), strict=True))
    counts = well_generalizing_counts(stats, cut.threshold)
    n = max(len(stats), 1)
    for column, ax in axes.items():
        theirs = PAPER_COLUMN[column]
        _histograms(ax, column, stats[column], None if paper is None or theirs is None else paper[theirs], bins,
                    cut.threshold)
        ax.set_xlabel(AXIS_LABELS[column])
        ax.set_ylabel("networks")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    for metric in CUT_METRICS:
        own = metric == cut.metric
        what = "the cut" if own else f"the cut's threshold applied to the {metric.upper()} instead"
        axes[metric].axvline(cut.threshold, color="k", ls="-" if own else "--", lw=1,
                             label=f"{metric.upper()} ≤ {cut.threshold:g} ({what}): {counts[metric]} of {len(stats)}")
    if paper is not None:
        axes["mae"].set_xlabel(f"{AXIS_LABELS['mae']}; outline: the paper's \"RMSE\" column")
        axes["rmse"].set_xlabel(f"{AXIS_LABELS['rmse']} (the paper gives no true RMSE)")
    for ax in axes.values():  # above the panel: no legend hides a bar or a tick
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=8, frameon=False, borderaxespad=0.2)
    fig.suptitle(f"{len(stats)} networks; well generalizing ({cut.label}): {counts[cut.metric]} "
                 f"({counts[cut.metric] / n:.0%}); median accuracy on the W = 0 row {stats['clean_accuracy'].median():.3f}"
                 + ("; outline: the paper's 100 networks" if paper is not None else ""), fontsize=10)
    return fig
