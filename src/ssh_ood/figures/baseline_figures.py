"""Figure of the baselines comparison: each accuracy estimate against the true OOD accuracy, per population.

Takes the ``baseline_estimates.csv`` tables written by :mod:`ssh_ood.interpret.baselines` (one row per network,
the estimate columns and the true ``ood_accuracy``); nothing here computes a statistic.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

#: estimate column -> panel title
ACCURACY_ESTIMATES = {
    "ac": "AC (average max-softmax)",
    "doc": "DoC (difference of confidences)",
    "atc_mc": "ATC-MC (thresholded max-softmax)",
    "atc_ne": "ATC-NE (thresholded neg. entropy)",
    "agreement": "agreement with the population",
    "cot": "COT (transport to the source's class mix)",
    "probe_estimate": "probe_mid_bulk_shift, frozen isotonic map",
}
MARKERS = ("o", "s", "^", "D")
COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red")


def figure_baseline_estimates(estimates: Mapping[str, pd.DataFrame]) -> plt.Figure:
    """One panel per accuracy estimate: estimate against true OOD accuracy, one colour and marker per population.

    ``estimates``: population label -> its ``baseline_estimates.csv``. The dashed line is the identity (a perfect
    estimate); each panel's legend gives each population's mean absolute error.
    """
    columns = [c for c in ACCURACY_ESTIMATES if any(c in table for table in estimates.values())]
    n_columns = min(3, len(columns))
    n_rows = int(np.ceil(len(columns) / n_columns))
    fig, axes = plt.subplots(n_rows, n_columns, figsize=(4.0 * n_columns, 3.7 * n_rows), squeeze=False,
                             layout="constrained")
    for ax, column in zip(axes.flat, columns, strict=False):
        for i, (label, table) in enumerate(estimates.items()):
            if column not in table:
                continue
            mae = float(np.mean(np.abs(table[column] - table["ood_accuracy"])))
            ax.scatter(table["ood_accuracy"], table[column], s=14, marker=MARKERS[i % len(MARKERS)],
                       color=COLORS[i % len(COLORS)], alpha=0.7, label=f"{label} (MAE {mae:.3f})")
        shown = [table[column] for table in estimates.values() if column in table]
        low = min(0.4, min(float(v.min()) for v in shown) - 0.02)
        high = max(1.02, max(float(v.max()) for v in shown) + 0.02)  # DoC can exceed 1
        ax.plot([low, high], [low, high], color="k", ls="--", lw=0.8)
        ax.set(xlim=(0.4, 1.0), ylim=(low, high), xlabel="true OOD accuracy (grid)", ylabel="estimate")
        ax.set_title(ACCURACY_ESTIMATES[column], fontsize="small")
        ax.legend(fontsize="x-small", loc="lower right")
    for ax in list(axes.flat)[len(columns):]:
        ax.set_visible(False)
    fig.suptitle("Label-free estimates of each network's OOD accuracy against the truth (dashed: identity)")
    return fig
