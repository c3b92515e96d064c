"""Figures and the interactive explorer of notebook 07 (thermometer encoding), and the figure of the
real-valued vs thermometer comparison (:mod:`ssh_ood.ood.thermometer_experiment`)."""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..physics.thermometer_encoding import thermometer_encode, thresholds
from .column_labels import column_label


def encode_column(column: np.ndarray, levels: int) -> np.ndarray:
    """Thermometer channels of one eigenstate column: (M,) densities -> (M, L) binary array."""
    column = np.asarray(column, dtype=np.float32)
    return thermometer_encode(column.reshape(1, 1, -1, 1), levels)[0, :, :, 0].T


def plot_column_encoding(axes, column: np.ndarray, levels: int, eigenstate: int) -> np.ndarray:
    """Left: the real-valued densities |psi_i(j)|^2 of one eigenstate; right: its L binary channels."""
    ax_value, ax_channels = axes
    encoded = encode_column(column, levels)
    sites = np.arange(column.size)
    ax_value.barh(sites, column, color="C0")
    for threshold in thresholds(levels)[1:]:
        ax_value.axvline(threshold, color="0.7", lw=0.6)
    ax_value.set_ylim(column.size - 0.5, -0.5)
    ax_value.set_xlim(0, 1)
    ax_value.set_xlabel(r"$|\psi_i(j)|^2$ (grey: thresholds c/L)")
    ax_value.set_ylabel("site j")
    ax_value.set_title(f"eigenstate i = {eigenstate}")
    ax_channels.imshow(encoded, cmap="Greys", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    ax_channels.set_xlabel("channel c")
    ax_channels.set_title(f"{levels} channels, 1[x > c/L]")
    ax_channels.set_yticks([])
    return encoded


class ThermometerExplorer:
    """Two sliders (eigenstate, levels) over one sample; shows a column beside its encoded channels.

    Attributes ``eigenstate`` and ``levels`` are the sliders, ``output`` the plot area, ``encoded`` the
    (M, L) channels currently shown, ``widget`` the box to display.
    """

    def __init__(self, X: np.ndarray, levels: int = 15, max_levels: int = 30) -> None:
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[0] != X.shape[1]:
            raise ValueError(f"X must be one (M, M) observable, got shape {X.shape}")
        self.X = X
        self.eigenstate = widgets.IntSlider(value=X.shape[1] // 2 - 1, min=0, max=X.shape[1] - 1,
                                            description="eigenstate")
        self.levels = widgets.IntSlider(value=levels, min=2, max=max_levels, description="levels L")
        self.output = widgets.Output()
        self.encoded = np.empty((X.shape[0], 0))
        for slider in (self.eigenstate, self.levels):
            slider.observe(lambda _change: self.render(), names="value")
        self.widget = widgets.VBox([widgets.HBox([self.eigenstate, self.levels]), self.output])
        self.render()

    def render(self) -> None:
        """Redraw for the current slider values."""
        self.output.clear_output(wait=True)
        with self.output:
            fig, axes = plt.subplots(1, 2, figsize=(8, 4.5), constrained_layout=True)
            i = self.eigenstate.value
            self.encoded = plot_column_encoding(axes, self.X[:, i], self.levels.value, i)
            plt.show()


def figure_thermometer(X: np.ndarray, levels: int, highlight: int) -> plt.Figure:
    """The 3-panel figure: 3-D bars of a sample, its stacked channels with one level highlighted, and the
    number of lit channels of each pixel with the highlighted channel outlined.

    Parameters
    ----------
    X : (M, M) observable of one sample; levels : L; highlight : channel index c to highlight.

    Notes
    -----
    Panel (b) draws the lit pixels of every channel, the highlighted one last and largest (``computed_zorder``
    off, so depth sorting cannot hide it); channel 0 (lit wherever x > 0: nearly everywhere) is drawn faint.
    Panel (c) shows the level ``sum_c 1[x > c/L]`` of each pixel (the encoding read as one image: 1 for the bulk
    states, many for the edge states), with the pixels lit in channel ``highlight`` outlined in red.
    """
    if not 0 <= highlight < levels:
        raise ValueError(f"highlight must be a channel index in [0, {levels - 1}], got {highlight}")
    encoded = thermometer_encode(np.asarray(X, dtype=np.float32)[None, None], levels)[0]
    m = X.shape[0]
    fig = plt.figure(figsize=(16, 5.2), constrained_layout=True)
    ax_bars = fig.add_subplot(1, 3, 1, projection="3d")
    eig, site = np.meshgrid(np.arange(m), np.arange(m))
    heights = X.ravel()
    shown = heights > 1e-3
    ax_bars.bar3d(eig.ravel()[shown], site.ravel()[shown], 0, 0.8, 0.8, heights[shown],
                  color=plt.get_cmap("viridis")(heights[shown] / heights.max()), shade=True)
    ax_bars.set_xlabel("eigenstate i")
    ax_bars.set_ylabel("site j")
    ax_bars.set_zlabel(r"$|\psi_i(j)|^2$")
    ax_bars.set_title("(a) one sample (values > 1e-3)", fontsize=12)

    ax_stack = fig.add_subplot(1, 3, 2, projection="3d")
    ax_stack.computed_zorder = False  # drawn in order: the highlighted channel last, on top
    grid_i, grid_j = np.meshgrid(np.arange(m), np.arange(m))
    for c in [c for c in range(levels) if c != highlight] + [highlight]:
        lit = encoded[c] > 0.5
        style = ({"s": 14, "color": "C3", "alpha": 1.0} if c == highlight
                 else {"s": 1, "color": "0.6", "alpha": 0.15} if c == 0 else {"s": 6, "color": "0.25", "alpha": 0.7})
        ax_stack.scatter(grid_i[lit], grid_j[lit], np.full(lit.sum(), c), depthshade=False, **style)
    ax_stack.set_zlim(0, levels - 1)
    ax_stack.set_xlabel("eigenstate i")
    ax_stack.set_ylabel("site j")
    ax_stack.set_zlabel("channel c")
    ax_stack.set_title(f"(b) lit pixels of the {levels} channels; red: c = {highlight}", fontsize=12)

    ax_level = fig.add_subplot(1, 3, 3)
    level = encoded.sum(axis=0)
    top = max(int(level.max()), 1)
    image = ax_level.imshow(level, cmap=plt.get_cmap("Blues", top + 1), vmin=-0.5, vmax=top + 0.5,
                            interpolation="nearest")
    ax_level.contour(encoded[highlight], levels=[0.5], colors="C3", linewidths=1.5)
    fig.colorbar(image, ax=ax_level, ticks=range(top + 1), label="lit channels")
    ax_level.set_xlabel("eigenstate i")
    ax_level.set_ylabel("site j")
    ax_level.set_title(f"(c) lit channels per pixel; red outline: c = {highlight}, "
                       f"x > {thresholds(levels)[highlight]:.3f}", fontsize=12)
    return fig


def figure_encoding_comparison(table: pd.DataFrame, cut: float = 0.2, batchnorm: str = "running",
                               run: str = "") -> plt.Figure:
    """OOD accuracy and RMSE of both encodings side by side (one dot per network, box of the spread).

    Parameters
    ----------
    table : the comparison (:func:`ssh_ood.ood.thermometer_experiment.compare_encodings`): columns ``encoding``,
        ``ood_accuracy`` and ``rmse``, one row per network and encoding.
    cut : the project's well-generalizing cut, MAE <= ``cut``. The table has the RMSE, and RMSE >= MAE for the
        same diagrams, so the line at RMSE = ``cut`` marks a sufficient condition: a network below it passes.
    batchnorm : ``"running"`` (evaluated as trained) or ``"precise"`` (BatchNorm statistics averaged over the
        training set); stated in the title.
    run : what the networks are (e.g. ``"paper preset, seed 1"``), added to the title with their number.
    """
    encodings = list(dict.fromkeys(table["encoding"]))
    counts = table.groupby("encoding").size()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), layout="constrained")
    rng = np.random.default_rng(0)  # horizontal jitter of the dots only
    for ax, column in zip(axes, ("ood_accuracy", "rmse"), strict=True):
        values = [table.loc[table["encoding"] == e, column].to_numpy() for e in encodings]
        ax.boxplot(values, tick_labels=encodings, widths=0.5, showfliers=False)  # every network is a dot
        for position, v in enumerate(values, start=1):
            ax.plot(position + rng.uniform(-0.12, 0.12, v.size), v, "o", alpha=0.7)
        ax.set_ylabel(column_label(column) + (" (mean over sets)" if column == "ood_accuracy" else " to the target diagram"))
        if column == "rmse":
            ax.axhline(cut, color="k", ls="--", lw=1, label=f"RMSE = {cut:g}: below it, MAE ≤ RMSE ≤ {cut:g}\n"
                       f"passes the cut (well generalizing: MAE ≤ {cut:g})")
            fig.legend(loc="outside lower right", fontsize=9, frameon=False)  # under the panel, off the points
    models = ", ".join(f"{counts[e]} {e}" for e in encodings)
    how = "as trained" if batchnorm == "running" else "with BatchNorm statistics averaged over the training set"
    fig.suptitle(f"Same seeds and recipe, two input encodings ({'; '.join(filter(None, [run, models]))})\n"
                 f"evaluated {how}", fontsize=12)
    return fig
