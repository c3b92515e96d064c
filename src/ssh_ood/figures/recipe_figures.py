"""Figures of notebook 09 (the recipe study): the accuracy ceiling, the recipes' clean-data development, their OOD results.

Each function takes tables or arrays computed in :mod:`ssh_ood.physics.ceiling`, :mod:`ssh_ood.interpret.recipe_protocol`
and the population folders, and returns a matplotlib figure; the ceiling is drawn as a reference line on every
figure that shows an OOD accuracy or recall.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .plotting import CLASS_COLOURS, plot_phase_diagram

CEILING_STYLE = {"color": "k", "ls": ":", "lw": 1.2}


def figure_ceiling(ceiling: Mapping[str, np.ndarray], bands: Mapping[str, float]) -> plt.Figure:
    """(a) ceiling against W (mean over v) with its band means; (b) the Bayes accuracy map W x v;
    (c) the Bayes classifier's recall of each class against W.

    ``ceiling``: :func:`ssh_ood.physics.ceiling.ceiling_grid` output; ``bands``: band name ``"low-high"`` -> mean.
    """
    W, v = ceiling["W"], ceiling["v"]
    per_W = ceiling["accuracy"].mean(axis=1)
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.9), layout="constrained")
    ax = axes[0]
    ax.plot(W, per_W, color="tab:blue", lw=1.5, label="ceiling (mean over v)")
    for name, value in bands.items():
        low, high = (float(x) for x in name.split("-"))
        ax.hlines(value, low, high, color="tab:red", lw=2)
        ax.annotate(f"{value:.3f}", ((low + high) / 2, value), textcoords="offset points", xytext=(0, 5),
                    ha="center", fontsize="small", color="tab:red")
    ax.set_xlabel("W")
    ax.set_ylabel("best possible accuracy")
    ax.set_title(f"(a) ceiling {ceiling['accuracy'].mean():.4f} overall; red: per band")
    ax.set_ylim(min(0.9, per_W.min() - 0.01), 1.008)
    image = plot_phase_diagram(axes[1], ceiling["accuracy"], W, v, title="(b) max(p, 1 - p) per (W, v)")
    image.set_cmap("viridis")
    image.set_clim(0.5, 1)
    fig.colorbar(image, ax=axes[1], label="Bayes accuracy")
    ax = axes[2]
    for name, colour in CLASS_COLOURS.items():
        ax.plot(W, ceiling[f"recall_{name.lower()}"], color=colour, label=name.lower())
    ax.set_xlabel("W")
    ax.set_ylabel("recall of the Bayes classifier")
    ax.set_title("(c) per class")
    ax.legend()
    fig.suptitle("The closing bond is never in the image: the best any classifier of the open chain can do")
    return fig


def figure_development(development: pd.DataFrame, reference: Mapping[str, pd.Series]) -> plt.Figure:
    """Clean-data development: per recipe, each network's clean test accuracy and ``probe_mid_bulk_shift``.

    ``development``: one row per network with ``recipe``, ``test_accuracy``, ``probe_mid_bulk_shift``;
    ``reference``: label -> probe values of the paper recipe's shipped populations (paper preset), drawn as
    grey boxes for scale.
    """
    recipes = list(dict.fromkeys(development["recipe"]))
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.9), layout="constrained")
    rng = np.random.default_rng(0)
    for column, (ax, name) in enumerate(zip(axes, ("test_accuracy", "probe_mid_bulk_shift"), strict=True)):
        for position, recipe in enumerate(recipes):
            values = development.loc[development["recipe"] == recipe, name].to_numpy()
            ax.scatter(position + rng.uniform(-0.12, 0.12, values.size), values, s=16, color=f"C{position}")
            ax.hlines(np.median(values), position - 0.25, position + 0.25, color="k", lw=1.5)
        ticks = list(recipes)
        if column == 1 and reference:
            for offset, (label, values) in enumerate(reference.items()):
                ax.boxplot([values.to_numpy()], positions=[len(recipes) + offset], widths=0.4, showfliers=False,
                           medianprops={"color": "0.3"})
                ticks.append(label)
        ax.set_xticks(range(len(ticks)), ticks, rotation=35, ha="right", fontsize="x-small")
        ax.set_ylabel(name)
    axes[0].set_title("clean test accuracy (black: median)")
    axes[1].set_title("probe response to a bulk localized density (lower: predicted to generalize)")
    fig.suptitle("Development on clean data only: what chose the recipes")
    return fig


def figure_ood_distributions(populations: Mapping[str, pd.DataFrame], ceiling: float) -> plt.Figure:
    """OOD accuracy of every network, one column per population, with the ceiling as a dotted line."""
    fig, ax = plt.subplots(figsize=(1.8 * len(populations) + 3, 4.2), layout="constrained")
    rng = np.random.default_rng(0)
    for position, stats in enumerate(populations.values()):
        values = stats["ood_accuracy"].to_numpy()
        ax.scatter(position + rng.uniform(-0.15, 0.15, values.size), values, s=10, color=f"C{position}", alpha=0.7)
        ax.hlines(np.median(values), position - 0.3, position + 0.3, color="k", lw=1.5)
        ax.annotate(f"median {np.median(values):.3f}\nn = {values.size}", (position, 0.41), ha="center", fontsize="x-small")
    ax.axhline(ceiling, **CEILING_STYLE)
    ax.annotate(f"ceiling {ceiling:.3f}", (len(populations) - 0.5, ceiling), xytext=(0, 3), textcoords="offset points",
                ha="right", va="bottom", fontsize="small")
    ax.set_xticks(range(len(populations)), list(populations), rotation=15, fontsize="small")
    ax.set_ylabel("OOD accuracy (generalization grid)")
    ax.set_xlim(-0.5, len(populations) - 0.5)
    ax.set_ylim(0.38, 1.03)
    ax.set_title("Validation populations against the paper recipe's shipped ones")
    return fig


def figure_median_diagrams(diagrams: Mapping[str, tuple[np.ndarray, float]], target: np.ndarray,
                           W_values: np.ndarray, v_values: np.ndarray) -> plt.Figure:
    """The target diagram and, per recipe, the predicted diagram of its median network (by OOD accuracy).

    ``diagrams``: label -> (predicted diagram (n_W, n_v), that network's OOD accuracy).
    """
    n = len(diagrams) + 1
    fig, axes = plt.subplots(1, n, figsize=(3.4 * n + 1, 3.3), layout="constrained", squeeze=False)
    image = plot_phase_diagram(axes[0, 0], target, W_values, v_values, title="target")
    for ax, (label, (diagram, accuracy)) in zip(axes[0, 1:], diagrams.items(), strict=True):
        plot_phase_diagram(ax, diagram, W_values, v_values, title=f"{label}\nmedian network, acc {accuracy:.3f}")
    fig.colorbar(image, ax=list(axes[0]), label="fraction topological")
    return fig


def figure_recall_bands(recalls: Mapping[str, pd.DataFrame], ceiling_recall: Mapping[str, Mapping[str, float]]) -> plt.Figure:
    """Median over networks of each class's recall per disorder band, one line per population, the ceiling's dotted.

    ``recalls``: label -> table with columns ``recall_<class>_W<band>`` (one row per network);
    ``ceiling_recall``: class -> band -> the Bayes classifier's recall.
    """
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained", sharey=True)
    for ax, name in zip(axes, ("trivial", "topological"), strict=True):
        bands = [band for band in ceiling_recall[name]  # a coarse grid (smoke) misses bands
                 if all(f"recall_{name}_W{band}" in table for table in recalls.values())]
        for position, (label, table) in enumerate(recalls.items()):
            medians = [table[f"recall_{name}_W{band}"].median() for band in bands]
            ax.plot(range(len(bands)), medians, marker="o", color=f"C{position}", label=label)
        ax.plot(range(len(bands)), [ceiling_recall[name][band] for band in bands], **CEILING_STYLE, marker="x",
                label="ceiling")
        ax.set_xticks(range(len(bands)), [f"W in [{b.replace('-', ', ')}]" for b in bands], fontsize="small")
        ax.set_title(f"recall of the {name} class (median over networks)")
    axes[0].set_ylabel("recall")
    axes[1].legend(fontsize="small")
    return fig


#: how each physics rule is drawn: dashed, grey, one marker per rule
RULE_STYLES = ({"color": "0.25", "ls": "--", "marker": "s"}, {"color": "0.55", "ls": "--", "marker": "^"},
               {"color": "0.4", "ls": "-.", "marker": "D"})


def figure_rules_by_band(table: pd.DataFrame, reference: str) -> plt.Figure:
    """(a) Per disorder band (and overall), each population's median accuracy beside the one-threshold physics
    rules (dashed, grey) and the ceiling (dotted); (b) each population's margin over the ``reference`` rule.

    ``table``: :func:`ssh_ood.interpret.recipe_results.rules_by_band` (its ``kind`` column says which row is a
    population, a rule, the ceiling or a margin). The overall value stands apart, left of the bands, unjoined.
    """
    columns = [c for c in table.columns if c != "kind"]
    bands = [c for c in columns if c != "overall"]
    x = {"overall": 0.0, **{band: 1.0 + position for position, band in enumerate(bands)}}
    band_x = [x[band] for band in bands]
    populations = table[table["kind"] == "population"]
    rules = table[table["kind"] == "rule"]
    margins = table[table["kind"] == "margin"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.4), layout="constrained", gridspec_kw={"width_ratios": (1.2, 1)})

    def draw(ax, row, label: str, **style) -> None:
        ax.plot(band_x, row[bands].to_numpy(float), label=label, **style)
        if "overall" in columns:
            ax.plot(x["overall"], float(row["overall"]), **{**style, "ls": "none"})

    ax = axes[0]
    for position, (label, row) in enumerate(populations.iterrows()):
        draw(ax, row, f"{label}: median network", marker="o", color=f"C{position}", lw=1.5)
    for style, (name, row) in zip(RULE_STYLES * len(rules), rules.iterrows(), strict=False):
        draw(ax, row, f"rule: {name}", **style, lw=1.5, ms=6)
    if "ceiling" in table.index:
        draw(ax, table.loc["ceiling"], "ceiling", **CEILING_STYLE, marker="x")
    low = np.nanmin(table.loc[table["kind"] != "margin", columns].to_numpy(float))
    ax.set_ylim(max(0.0, np.floor(low * 20) / 20 - 0.02), 1.01)
    ax.set_ylabel("accuracy")
    ax.set_title("(a) accuracy: populations, physics rules (dashed), ceiling (dotted)")
    ax = axes[1]
    width = 0.8 / max(len(margins), 1)
    for position, (_, row) in enumerate(margins.iterrows()):
        ax.bar([x[c] - 0.4 + width * (position + 0.5) for c in columns], row[columns].to_numpy(float), width,
               color=f"C{position}")
    ax.axhline(0.0, color=RULE_STYLES[0]["color"], ls=RULE_STYLES[0]["ls"], lw=1.2)
    ax.annotate(f"the {reference} rule", (1, 0), xycoords=("axes fraction", "data"), xytext=(-4, 3),
                textcoords="offset points", ha="right", va="bottom", fontsize="small", color=RULE_STYLES[0]["color"])
    top = np.nanmax(margins[columns].to_numpy(float), initial=0.0)
    bottom = np.nanmin(margins[columns].to_numpy(float), initial=0.0)
    ax.set_ylim(bottom - 0.03, max(top, 0.0) + 0.06)
    ax.set_ylabel("median network minus the rule")
    ax.set_title(f"(b) margin over the {reference} rule (above 0: beats it)")
    for ax in axes:
        ax.axvline(0.5, color="0.85", lw=1)
        ax.set_xticks([x[c] for c in columns], columns, fontsize="small")
        ax.set_xlim(-0.6, len(bands) + 0.5)
        ax.set_xlabel("disorder band (overall: the whole grid)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 3), fontsize="small")
    fig.suptitle("The bar: one-threshold physics rules fitted on clean chains, band by band")
    return fig
