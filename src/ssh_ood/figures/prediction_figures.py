"""Figures of notebook 08: which networks generalize, and can clean data tell?

Each function takes tables computed by :mod:`ssh_ood.interpret.generalization_prediction`, :mod:`ssh_ood.interpret.diagnostics` and
:mod:`ssh_ood.ood.batchnorm_study` and returns a matplotlib figure; nothing here computes a statistic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import colors

from ..interpret.generalization_prediction import top_k
from ..physics.interventions import insert_localized_density
from .column_labels import column_label
from .plotting import CLASS_COLOURS

OUTCOME_LABEL = "OOD accuracy"


def figure_best_predictors(table: pd.DataFrame, predictors: pd.DataFrame, n: int = 6) -> plt.Figure:
    """The ``n`` diagnostics most correlated with OOD accuracy, each against it (one dot per network)."""
    rows = predictors.head(n)
    columns = min(3, len(rows))
    lines = int(np.ceil(len(rows) / columns))
    fig, axes = plt.subplots(lines, columns, figsize=(4.2 * columns, 3.4 * lines), squeeze=False, layout="constrained")
    for ax, row in zip(axes.flat, rows.itertuples(), strict=False):
        ax.scatter(table[row.diagnostic], table["ood_accuracy"], s=12, color="0.3")
        ax.set_xlabel(column_label(row.diagnostic), fontsize="small")
        ax.set_ylabel(OUTCOME_LABEL)
        ax.set_title(f"Spearman {row.spearman_ood_accuracy:+.2f} "
                     f"[{row.spearman_low_ood_accuracy:+.2f}, {row.spearman_high_ood_accuracy:+.2f}]", fontsize="small")
    for ax in list(axes.flat)[len(rows):]:
        ax.set_visible(False)
    fig.suptitle(f"Clean-data diagnostics most correlated with OOD accuracy ({len(table)} networks; 95 % bootstrap CI)")
    return fig


def figure_lift_curves(
    table: pd.DataFrame, directions: Mapping[str, int], ks: Sequence[int] | None = None,
    n_random: int = 2000, seed: int = 0,
) -> plt.Figure:
    """Mean OOD accuracy of the top-k networks picked by each diagnostic, against k, with the random band.

    ``directions``: diagnostic -> +1 (pick the highest) or -1 (the lowest). The grey band is the central
    95 % of the mean over random k-subsets; the dashed line, the best possible pick (the k most accurate).
    """
    outcome = table["ood_accuracy"].to_numpy(dtype=np.float64)
    ks = np.arange(1, len(table) // 2 + 1) if ks is None else np.asarray(ks)
    rng = np.random.default_rng(seed)
    order = np.argsort(rng.random((n_random, outcome.size)), axis=1)
    band = np.array([np.quantile(outcome[order[:, :k]].mean(axis=1), [0.025, 0.975]) for k in ks])
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    ax.fill_between(ks, band[:, 0], band[:, 1], color="0.85", label="random k-subsets (95 %)")
    ax.axhline(outcome.mean(), color="0.5", lw=0.8)
    ax.plot(ks, [np.sort(outcome)[-k:].mean() for k in ks], color="k", ls="--", lw=1, label="best possible")
    for name, sign in directions.items():
        means = [outcome[top_k(table[name], int(k), sign > 0)].mean() for k in ks]
        ax.plot(ks, means, lw=1.5, label=f"{'lowest' if sign < 0 else 'highest'} {column_label(name)}")
    ax.set_xlabel("k (networks selected)")
    ax.set_ylabel(f"mean {OUTCOME_LABEL} of the selection")
    ax.legend(fontsize="small")
    ax.set_title("Selection lift: pick k networks by a clean-data diagnostic")
    return fig


def figure_recall_by_band(recalls: pd.DataFrame, score: pd.Series, score_label: str) -> plt.Figure:
    """Each class's recall per disorder band (columns of ``recalls``) against a per-network score.

    Points are coloured by class as everywhere (:data:`ssh_ood.figures.plotting.CLASS_COLOURS`: red = topological);
    ``score_label``, a column name, is written with :func:`ssh_ood.figures.column_labels.column_label`.
    """
    bands = sorted({c.split("_W", 1)[1] for c in recalls.columns if c.startswith("recall_")},
                   key=lambda b: float(b.split("-")[0]))
    fig, axes = plt.subplots(2, len(bands), figsize=(3.3 * len(bands), 5.6), sharey=True, squeeze=False,
                             layout="constrained")
    for row, name in enumerate(("trivial", "topological")):
        for column, band in enumerate(bands):
            ax = axes[row, column]
            ax.scatter(score, recalls[f"recall_{name}_W{band}"], s=10, color=CLASS_COLOURS[name.capitalize()])
            ax.set_ylim(-0.03, 1.03)
            if row == 0:
                ax.set_title(f"W in [{band.replace('-', ', ')}]")
            if column == 0:
                ax.set_ylabel(f"recall of the {name} class")
            if row == 1:
                ax.set_xlabel(column_label(score_label), fontsize="small")
    fig.suptitle("Where the networks fail: per-class recall in each disorder band, one dot per network")
    return fig


def figure_probe_images(clean_topological: np.ndarray, clean_trivial: np.ndarray, disordered_trivial: np.ndarray,
                        disorder_W: float, titles: Sequence[str] = ()) -> plt.Figure:
    """The observable X[j, i] = |psi_i(j)|^2 of a clean topological chain, a trivial chain at disorder ``disorder_W``
    (Anderson localized: every eigenstate is a localized blob), a clean trivial chain, and it with the ``mid_bulk``
    probe's inserted localized density (columns 12 and 37), side by side.

    All four share one colour scale from 0 to 1/2 (no density exceeds 1/2, chiral symmetry) with a square-root
    norm (``PowerNorm(0.5)``), so that the ~1/50 bulk densities and the ~1/2 edge-state ones are both visible; the
    colour bar is labelled in densities.
    """
    probe = insert_localized_density(clean_trivial[None], "mid", "bulk")[0]
    images = (clean_topological, disordered_trivial, clean_trivial, probe)
    titles = list(titles) or ["clean topological (W = 0)", f"disordered trivial (W = {disorder_W:g})",
                              "clean trivial (W = 0)", "clean trivial + probe mid_bulk"]
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.8), layout="constrained")
    norm = colors.PowerNorm(0.5, vmin=0, vmax=0.5)
    for ax, image, title in zip(axes, images, titles, strict=True):
        shown = ax.imshow(image, cmap="magma", norm=norm, aspect="equal")
        ax.set_title(title, fontsize=11)
        ax.set_xlabel("eigenstate i (by energy)")
        ax.set_ylabel("site j")
    fig.colorbar(shown, ax=axes, label="$|\\psi_i(j)|^2$ (square-root colour scale)", shrink=0.8,
                 ticks=[0, 0.02, 0.1, 0.25, 0.5])
    fig.suptitle("What the networks see: localized density is the edge-state cue, and disorder makes it everywhere",
                 fontsize=13)
    return fig


def figure_precise_bn(study: pd.DataFrame) -> plt.Figure:
    """OOD accuracy and strong-disorder topological fraction, as trained vs with precise BN, per network."""
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.2), layout="constrained")
    for ax, name, label in zip(axes, ("ood_accuracy", "strong_disorder_topological"),
                               ("OOD accuracy", "fraction of W >= 2 called topological"), strict=True):
        ax.scatter(study[f"{name}_running"], study[f"{name}_precise"], s=12, color="0.3")
        low = min(study[f"{name}_running"].min(), study[f"{name}_precise"].min())
        high = max(study[f"{name}_running"].max(), study[f"{name}_precise"].max())
        ax.plot([low, high], [low, high], color="k", lw=0.8, ls="--", label="unchanged")
        ax.set_xlabel(f"{label}, as trained (running BN averages)")
        ax.set_ylabel(f"{label}, precise BN")
        ax.legend(fontsize="small")
    fig.suptitle(f"BatchNorm statistics recomputed over the training set ({len(study)} networks, same weights)")
    return fig


def figure_protocol_validation(replication: pd.DataFrame, n_models: int | None = None) -> plt.Figure:
    """Forest plot: Spearman with OOD accuracy of each diagnostic on the discovery population (cross) and on
    the validation population (dot with its 95 % CI; filled when it replicates). ``n_models``, the size of
    the validation population, goes into the title with the count of replicated diagnostics."""
    rows = replication.reindex(replication["discovery_spearman"].abs().sort_values().index)
    fig, ax = plt.subplots(figsize=(7.5, 0.22 * len(rows) + 1.5), layout="constrained")
    y = np.arange(len(rows))
    ax.hlines(y, rows["low"], rows["high"], color="0.5", lw=1)
    filled = rows["replicated"].to_numpy(dtype=bool)
    ax.scatter(rows["spearman"][filled], y[filled], color="tab:blue", zorder=3, label="validation (replicated)")
    ax.scatter(rows["spearman"][~filled], y[~filled], facecolor="white", edgecolor="tab:blue", zorder=3,
               label="validation (not replicated)")
    ax.scatter(rows["discovery_spearman"], y, marker="x", color="tab:red", zorder=4, label="discovery (frozen sign)")
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y, rows["diagnostic"], fontsize="x-small")
    ax.set_xlabel("Spearman correlation with OOD accuracy")
    fig.legend(fontsize="x-small", loc="outside lower center", ncol=3)
    title = "Out-of-sample replication of the frozen protocol"
    if n_models is not None:
        title += f"\n{n_models} validation networks: {int(filled.sum())} of {len(rows)} diagnostics replicate"
    ax.set_title(title)
    return fig
