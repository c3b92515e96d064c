"""Figures of the data notebooks: one sample walked through (01), Fig. 3 (01) and Fig. 6 (05)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colors

from ..physics.data_generation import critical_v, observables, open_chain_hamiltonian
from .plotting import plot_phase_diagram


def fidelity_curves(X: np.ndarray, reference_index: int = 0) -> np.ndarray:
    """Fidelity of every eigenstate density with that of a reference sample.

    F[s, i] = sum_j sqrt(X[ref, j, i]) sqrt(X[s, j, i]) (the Bhattacharyya overlap of the two site
    distributions of eigenstate i; 1 for identical densities).

    Parameters
    ----------
    X : (N, M, M) observables, X[s, j, i] = |psi_i(j)|^2.
    reference_index : the sample compared against (the paper: the smallest v).

    Returns
    -------
    (N, M) fidelities in [0, 1].
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 3:
        raise ValueError(f"X must have shape (N, M, M), got {X.shape}")
    root = np.sqrt(np.clip(X, 0.0, None))
    return np.einsum("ji,sji->si", root[reference_index], root)


def _eigenstate_colors(n_states: int):
    """Colours symmetric around the two mid-gap states (same colour for i and M-1-i).

    The colour encodes how many levels state i lies from the mid-gap pair: 0 for the mid-gap states
    (i = M/2 - 1, M/2 for even M), 1 for the next pair, and so on.
    """
    distance = np.floor(np.abs(np.arange(n_states) - (n_states - 1) / 2))
    norm = colors.Normalize(vmin=distance.min(), vmax=distance.max())
    return plt.get_cmap("viridis_r")(norm(distance)), norm


def plot_fidelity(ax: plt.Axes, v: np.ndarray, fidelity: np.ndarray, title: str) -> None:
    """Fig. 3 panel: F_i(v) for every eigenstate i, coloured by distance from the middle of the spectrum."""
    order = np.argsort(v)
    n_states = fidelity.shape[1]
    palette, norm = _eigenstate_colors(n_states)
    for i in range(n_states):
        mid_gap = i in (n_states // 2 - 1, n_states // 2)
        ax.plot(v[order], fidelity[order, i], color=palette[i], lw=1.8 if mid_gap else 0.6,
                alpha=1.0 if mid_gap else 0.55, zorder=3 if mid_gap else 2)
    ax.axvline(1.0, color="k", ls="--", lw=1)
    ax.set_xlabel("v")
    ax.set_ylabel(r"fidelity $F_i(v)$")
    ax.set_title(title)
    mappable = plt.cm.ScalarMappable(norm=norm, cmap="viridis_r")
    ax.figure.colorbar(mappable, ax=ax, label="levels from the mid-gap pair  (0: mid-gap states)")


def figure_3(clean: dict, disordered: dict) -> plt.Figure:
    """Fig. 3: fidelity curves of the clean test set (a) and of a disordered test set (b).

    ``clean`` and ``disordered`` are dataset mappings (keys ``X``, ``v``, ``W``); the reference is each
    set's smallest-v sample.
    """
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), constrained_layout=True)
    for ax, data, tag in zip(axes, (clean, disordered), "ab", strict=True):
        v = np.asarray(data["v"])
        fidelity = fidelity_curves(data["X"], int(np.argmin(v)))
        plot_fidelity(ax, v, fidelity, f"({tag}) W = {float(np.asarray(data['W'])):g}")
    return fig


def plot_sample(axes, v_n: np.ndarray, w_n: np.ndarray, title: str) -> None:
    """Three panels for one chain: the open-chain Hamiltonian, its spectrum and the observable X.

    The two mid-gap columns of X (the edge states in the topological phase) are outlined.
    """
    h = open_chain_hamiltonian(v_n, w_n)[0]
    X = observables(v_n, w_n)[0]
    energies = np.linalg.eigvalsh(h)
    m_sites = X.shape[0]
    ax_h, ax_e, ax_x = axes
    limit = np.abs(h).max()
    ax_h.imshow(h, cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax_h.set_title(f"{title}\nHamiltonian (OBC)")
    ax_h.set_xlabel("site")
    ax_h.set_ylabel("site")
    ax_e.plot(np.arange(m_sites), energies, "o", ms=3)
    ax_e.plot([m_sites // 2 - 1, m_sites // 2], energies[m_sites // 2 - 1 : m_sites // 2 + 1], "o", color="C3", ms=5,
              label="mid-gap states")
    ax_e.set_xlabel("eigenstate index i")
    ax_e.set_ylabel("energy / w")
    ax_e.set_title("spectrum")
    ax_e.legend(loc="upper left", fontsize=8)
    image = ax_x.imshow(X, cmap="viridis", vmin=0, vmax=min(1.0, X.max()))
    ax_x.add_patch(plt.Rectangle((m_sites // 2 - 1.5, -0.5), 2, m_sites, fill=False, ec="C3", lw=1.2))
    ax_x.set_title(r"observable $X_{ji} = |\psi_i(j)|^2$")
    ax_x.set_xlabel("eigenstate i")
    ax_x.set_ylabel("site j")
    ax_x.figure.colorbar(image, ax=ax_x, fraction=0.046)


def figure_6(W_rows: np.ndarray, v_values: np.ndarray, rows: np.ndarray, n_realizations: int) -> plt.Figure:
    """Fig. 6: disorder-averaged winding number vs v for a few W, with v_c(W) marked.

    Parameters
    ----------
    W_rows : (K,) disorder strengths; v_values : (n_v,); rows : (K, n_v) averaged winding numbers.
    """
    fig, ax = plt.subplots(figsize=(6.5, 4), constrained_layout=True)
    for i, (W, row) in enumerate(zip(W_rows, rows, strict=True)):
        ax.plot(v_values, row, color=f"C{i}", label=f"W = {W:g}")
        vc = float(critical_v(W))
        if vc > 0:
            ax.axvline(vc, color=f"C{i}", ls=":", lw=1)
    ax.set_xlabel("v")
    ax.set_ylabel(f"winding number (mean of {n_realizations} realizations)")
    ax.set_title("Disorder broadens the transition and moves it past v = 1 (dotted: $v_c(W)$)")
    ax.legend()
    return fig


def figure_target_diagrams(
    ours: np.ndarray, W_values: np.ndarray, v_values: np.ndarray, published: np.ndarray | None = None
) -> plt.Figure:
    """The regenerated W-v target diagram with v_c(W), beside the paper's published one if given."""
    n_panels = 1 if published is None else 2
    fig, axes = plt.subplots(1, n_panels, figsize=(5.5 * n_panels, 4.2), constrained_layout=True, squeeze=False)
    plot_phase_diagram(axes[0, 0], ours, W_values, v_values, title="regenerated here", colorbar=n_panels == 1)
    if published is not None:
        plot_phase_diagram(
            axes[0, 1],
            published,
            np.linspace(0, 5, published.shape[0]),
            np.linspace(0, 2, published.shape[1]),
            title="published with the paper",
            colorbar=True,
        )
    return fig
