"""Figures and the interactive explorer of notebook 07 (thermometer encoding)."""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colors

from ..physics.thermometer_encoding import thermometer_encode, thresholds


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
    """The 3-panel figure: 3-D bars of a sample, its stacked channels with one level highlighted, and
    that channel as a binary image.

    Parameters
    ----------
    X : (M, M) observable of one sample; levels : L; highlight : channel index c to highlight.
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
    ax_bars.set_title("(a) one sample (values > 1e-3)")

    ax_stack = fig.add_subplot(1, 3, 2, projection="3d")
    grid_i, grid_j = np.meshgrid(np.arange(m), np.arange(m))
    for c in range(levels):
        lit = encoded[c] > 0.5
        color = "C3" if c == highlight else "0.35"
        ax_stack.scatter(grid_i[lit], grid_j[lit], np.full(lit.sum(), c), s=2 if c != highlight else 4,
                         color=color, alpha=0.9 if c == highlight else 0.25, depthshade=False)
    ax_stack.set_xlabel("eigenstate i")
    ax_stack.set_ylabel("site j")
    ax_stack.set_zlabel("channel c")
    ax_stack.set_title(f"(b) {levels} stacked channels, c = {highlight} highlighted")

    ax_channel = fig.add_subplot(1, 3, 3)
    ax_channel.imshow(encoded[highlight], cmap=colors.ListedColormap(["white", "C3"]), vmin=0, vmax=1,
                      interpolation="nearest")
    ax_channel.set_xlabel("eigenstate i")
    ax_channel.set_ylabel("site j")
    ax_channel.set_title(f"(c) channel c = {highlight}: 1[x > {thresholds(levels)[highlight]:.3f}]")
    return fig
