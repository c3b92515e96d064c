"""Figure helpers shared by the notebooks: the W-v phase-diagram panel, its colour scale and the class colours."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..physics.data_generation import critical_v

PHASE_CMAP = "coolwarm"
PHASE_LABEL = "winding number averaged\nover disorder realizations"
#: one colour per class in every line and scatter plot, the ends of :data:`PHASE_CMAP`: red = topological
#: (winding number 1), blue = trivial (0); keyed by :data:`ssh_ood.physics.data_generation.CLASS_NAMES`
CLASS_COLOURS = {"Trivial": "tab:blue", "Topological": "tab:red"}


def plot_phase_diagram(
    ax: plt.Axes,
    diagram: np.ndarray,
    W_values: np.ndarray,
    v_values: np.ndarray,
    title: str | None = None,
    boundary: bool = True,
    colorbar: bool = False,
):
    """Draw a W x v diagram (rows W, columns v) with W on x, v on y (v = max at the top).

    Parameters
    ----------
    diagram : (n_W, n_v) values in [0, 1] (fraction of realizations with winding number 1).
    W_values, v_values : the grid (assumed uniform).
    boundary : overlay the thermodynamic phase boundary v_c(W).
    colorbar : add a colorbar labelled with the paper's wording.
    """
    diagram = np.asarray(diagram)
    W_values = np.asarray(W_values)
    v_values = np.asarray(v_values)
    if diagram.shape != (W_values.size, v_values.size):
        raise ValueError(f"diagram shape {diagram.shape} does not match grid ({W_values.size}, {v_values.size})")
    image = ax.imshow(
        diagram.T,
        origin="lower",
        aspect="auto",
        cmap=PHASE_CMAP,
        vmin=0,
        vmax=1,
        extent=(W_values[0], W_values[-1], v_values[0], v_values[-1]),
        interpolation="nearest",
    )
    if boundary:
        W_line = np.linspace(W_values[0], min(W_values[-1], 4.0), 400)
        ax.plot(W_line, critical_v(W_line), color="k", lw=1.0, ls="--", label=r"$v_c(W)$")
        ax.set_ylim(v_values[0], v_values[-1])
    ax.set_xlabel("W")
    ax.set_ylabel("v", rotation=0, labelpad=8)  # upright: a lone rotated "v" reads as ">"
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label=PHASE_LABEL)
    return image
