"""Disordered Su-Schrieffer-Heeger (SSH) chains: hoppings, network observables and winding-number labels.

Physics (docs/physics_and_methods.md §1), units w = 1. A chain of ``n_cells`` unit cells has sites 0..2n-1; cell m holds the
A site 2m and the B site 2m+1. The single-particle Hamiltonian has real hoppings

    H[2m, 2m+1] = v_m        (intracell),   v_m = v + W r_m,
    H[2m+1, 2m+2] = w_m      (intercell),   w_m = w + (W/2) r'_m,      r, r' ~ U(-1/2, 1/2),

no on-site term. The open chain (OBC) uses v_0..v_{n-1} and w_0..w_{n-2}; the periodic ring adds the
closing bond w_{n-1} between sites 2n-1 and 0.

Chiral (sublattice) symmetry makes H block off-diagonal in the (A, B) basis,
H = [[0, C], [C^T, 0]] with the lower-bidiagonal C[m, m] = v_m, C[m+1, m] = w_m. With the singular value
decomposition C = U diag(s) V^T, the eigenpairs of H are E = +-s_k and psi = (U[:, k], +-V[:, k]) / sqrt(2).
The observables X[j, i] = |psi_i(j)|^2 therefore follow from a 25x25 SVD instead of a 50x50
diagonalization, and X[:, i] = X[:, 2n-1-i] holds exactly. When the two mid-gap levels are degenerate to
machine precision (clean chain, v <~ 0.05) a dense eigensolver may return any rotation of them; the SVD
always returns the chiral partners, i.e. the hybridized pair with weight on both ends.

Labels: the winding number of the periodic ring equals 1 iff sum_m ln|w_m| > sum_m ln|v_m| over all n
cells (closing bond included), since det u(k) = +-prod v_m +- prod w_m e^{ik} (docs/physics_and_methods.md §1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numba as nb
import numpy as np
from threadpoolctl import threadpool_limits

from ..base.validation import require_int

SPLITS = ("training", "validation", "test")
_SPLIT_CODES = {name: code for code, name in enumerate(SPLITS)}
CLASS_NAMES = ("Trivial", "Topological")


# ----------------------------------------------------------------------------------------------
# input validation
# ----------------------------------------------------------------------------------------------
def _check_n_cells(n_cells: int) -> int:
    return require_int("n_cells", n_cells, minimum=2, reason="a chain has 2*n_cells sites")


def _check_disorder(W: float) -> float:
    try:
        W = float(W)
    except (TypeError, ValueError):
        raise ValueError(f"W (disorder strength) must be a real number, got {W!r}") from None
    if not math.isfinite(W) or W < 0:
        raise ValueError(f"W (disorder strength) must be finite and >= 0, got {W}")
    return W


def _check_hoppings(v_n: np.ndarray, w_n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v_n = np.asarray(v_n, dtype=np.float64)
    w_n = np.asarray(w_n, dtype=np.float64)
    if v_n.ndim == 1:
        v_n = v_n[None, :]
    if w_n.ndim == 1:
        w_n = w_n[None, :]
    if v_n.ndim != 2 or v_n.shape != w_n.shape:
        raise ValueError(
            f"v_n and w_n must both have shape (N, n_cells) (w_n[:, -1] = closing bond); "
            f"got {v_n.shape} and {w_n.shape}"
        )
    _check_n_cells(v_n.shape[1])
    if not (np.isfinite(v_n).all() and np.isfinite(w_n).all()):
        raise ValueError("v_n and w_n must be finite")
    return v_n, w_n


# ----------------------------------------------------------------------------------------------
# hoppings
# ----------------------------------------------------------------------------------------------
def sample_hoppings(
    v: float | np.ndarray, W: float, rng: np.random.Generator, n_cells: int = 25, w: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Draw disordered hoppings for N chains.

    Parameters
    ----------
    v : mean intracell hopping, scalar or 1-D array of N values (units of w).
    W : disorder strength (>= 0). v_m = v + W r_m, w_m = w + (W/2) r'_m with r, r' ~ U(-1/2, 1/2).
    rng : the ``numpy.random.Generator`` every draw comes from (r first, then r', each (N, n_cells)).
    n_cells : unit cells per chain.
    w : mean intercell hopping.

    Returns
    -------
    v_n, w_n : float64 arrays of shape (N, n_cells); ``w_n[:, -1]`` is the periodic closing bond, used
        only by the ring (labels), not by the open chain (observables).
    """
    n_cells = _check_n_cells(n_cells)
    W = _check_disorder(W)
    v = np.atleast_1d(np.asarray(v, dtype=np.float64))
    if v.ndim != 1 or v.size < 1:
        raise ValueError(f"v must be a scalar or a non-empty 1-D array, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError("v must be finite")
    if not math.isfinite(w):
        raise ValueError(f"w must be finite, got {w}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    r_intra = rng.uniform(-0.5, 0.5, size=(v.size, n_cells))
    r_inter = rng.uniform(-0.5, 0.5, size=(v.size, n_cells))
    v_n = v[:, None] + W * r_intra
    w_n = w + 0.5 * W * r_inter
    return v_n, w_n


def open_chain_hamiltonian(v_n: np.ndarray, w_n: np.ndarray) -> np.ndarray:
    """Dense open-chain Hamiltonians in the site basis, shape (N, 2n, 2n) (for display and checks).

    H[2m, 2m+1] = v_m and H[2m+1, 2m+2] = w_m (m < n-1), symmetric, zero diagonal; w_n[:, -1] unused.
    """
    v_n, w_n = _check_hoppings(v_n, w_n)
    n_samples, n = v_n.shape
    h = np.zeros((n_samples, 2 * n, 2 * n))
    cells = np.arange(n)
    h[:, 2 * cells, 2 * cells + 1] = v_n
    h[:, 2 * cells[:-1] + 1, 2 * cells[:-1] + 2] = w_n[:, :-1]
    return h + h.transpose(0, 2, 1)


# ----------------------------------------------------------------------------------------------
# observables
# ----------------------------------------------------------------------------------------------
@nb.njit(parallel=True, cache=True)
def _observables_kernel(v_n: np.ndarray, w_n: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    n_samples, n = v_n.shape
    m_sites = 2 * n
    out = np.empty((n_samples, m_sites, m_sites))
    for s in nb.prange(n_samples):
        c = np.zeros((n, n))
        for m in range(n):
            c[m, m] = v_n[s, m]
        for m in range(n - 1):
            c[m + 1, m] = w_n[s, m]
        u, _, vt = np.linalg.svd(c)
        for k in range(n):  # singular values descending: k -> energies -s_k (index k), +s_k (2n-1-k)
            lo = k
            hi = m_sites - 1 - k
            for m in range(n):
                a = 0.5 * u[m, k] * u[m, k]
                b = 0.5 * vt[k, m] * vt[k, m]
                out[s, 2 * m, lo] = a
                out[s, 2 * m, hi] = a
                out[s, 2 * m + 1, lo] = b
                out[s, 2 * m + 1, hi] = b
    return out


def observables(v_n: np.ndarray, w_n: np.ndarray) -> np.ndarray:
    """Eigenstate densities of the open chain, the network input.

    Parameters
    ----------
    v_n, w_n : (N, n_cells) hoppings from :func:`sample_hoppings` (a single chain may be given 1-D).
        The open chain uses v_0, w_0, v_1, ..., v_{n-1}; ``w_n[:, -1]`` is ignored.

    Returns
    -------
    X : float64 array (N, 2n, 2n), X[s, j, i] = |psi_i(j)|^2 for site j and eigenstate i, eigenstates in
        ascending energy. Rows and columns sum to 1, X[:, :, i] = X[:, :, 2n-1-i].

    Notes
    -----
    Computed by a numba kernel (parallel over samples) from the SVD of the chiral block; BLAS is held to
    one thread inside it so that the two levels of parallelism do not oversubscribe the cores.
    """
    v_n, w_n = _check_hoppings(v_n, w_n)
    with threadpool_limits(1):
        return _observables_kernel(np.ascontiguousarray(v_n), np.ascontiguousarray(w_n))


# ----------------------------------------------------------------------------------------------
# labels
# ----------------------------------------------------------------------------------------------
def winding_number(v_n: np.ndarray, w_n: np.ndarray) -> np.ndarray:
    """Winding number of the periodic ring, by the exact closed form.

    label = 1 (topological) iff prod_m |w_m| > prod_m |v_m| (equivalently sum ln|w_m| > sum ln|v_m|)
    over all n cells of the ring, the closing bond ``w_n[:, -1]`` included; 0 (trivial) otherwise.
    A vanishing intracell hopping (v_m = 0) gives 1 unless an intercell hopping vanishes too.

    Parameters
    ----------
    v_n, w_n : (N, n_cells) hoppings (1-D for a single chain).

    Returns
    -------
    labels : int64 array (N,) with values in {0, 1}.
    """
    v_n, w_n = _check_hoppings(v_n, w_n)
    # ln 0 = -inf compares correctly: a zero v_m alone gives 1, a zero w_m gives 0 (both zero: 0). The logarithms
    # are summed in sorted order, so the sum depends only on the set of bonds, not on where they sit: a ring with
    # the same bonds in another order (reversed, say) gets the same label even on the boundary prod |w| = prod |v|
    with np.errstate(divide="ignore"):
        log_w = np.sort(np.log(np.abs(w_n)), axis=1).sum(axis=1)
        log_v = np.sort(np.log(np.abs(v_n)), axis=1).sum(axis=1)
    return (log_w > log_v).astype(np.int64)


# ----------------------------------------------------------------------------------------------
# thermodynamic phase boundary
# ----------------------------------------------------------------------------------------------
def _mean_log_abs(a: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """E ln|a + spread * omega| for omega ~ U(-1/2, 1/2) (closed form, 0 ln 0 = 0)."""
    a = np.asarray(a, dtype=np.float64)
    spread = np.asarray(spread, dtype=np.float64)
    hi = a + spread / 2
    lo = a - spread / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        x_log_x_hi = np.where(hi == 0, 0.0, hi * np.log(np.abs(hi)))
        x_log_x_lo = np.where(lo == 0, 0.0, lo * np.log(np.abs(lo)))
        finite_spread = (x_log_x_hi - x_log_x_lo) / spread - 1.0
        clean = np.log(np.abs(a))
    return np.where(spread > 0, finite_spread, clean)


def critical_v(W: float | np.ndarray) -> np.ndarray:
    """Thermodynamic phase boundary v_c(W) of the disordered SSH chain (w = 1).

    The chain is topological iff E ln|v_m| < E ln|w_m| with v_m = v + W r, w_m = 1 + (W/2) r'. The left
    side increases monotonically with v >= 0, so v_c solves E ln|v_c + W r| = E ln|1 + (W/2) r'| and is
    found by bisection. There is no topological phase for W >= 4 (v_c = 0). Examples: v_c(0) = 1,
    v_c(2) = 1.1423, v_c(3) = 1.3332, v_c(3.9) = 0.7147.

    Parameters
    ----------
    W : disorder strength(s) >= 0, scalar or array.

    Returns
    -------
    v_c : float64 array with the shape of ``W`` (0-d for a scalar).
    """
    W = np.asarray(W, dtype=np.float64)
    if not np.isfinite(W).all() or (W < 0).any():
        raise ValueError("W (disorder strength) must be finite and >= 0")
    target = _mean_log_abs(np.ones_like(W), W / 2)
    lo = np.zeros_like(W)
    hi = np.full_like(W, 2.0 + W)  # E ln|v + W r| >= ln(v - W/2) > E ln|w_m| there
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        below = _mean_log_abs(mid, W) < target  # still topological at mid
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    v_c = 0.5 * (lo + hi)
    no_phase = _mean_log_abs(np.zeros_like(W), W) >= target
    return np.where(no_phase, 0.0, v_c)


# ----------------------------------------------------------------------------------------------
# datasets
# ----------------------------------------------------------------------------------------------
def disorder_rng(seed: int, *key: int) -> np.random.Generator:
    """Independent generator for the stream ``key`` of the master ``seed``.

    ``numpy.random.SeedSequence(seed, spawn_key=key)``: different keys give statistically independent
    streams, the same (seed, key) always the same stream, whatever else is generated.
    """
    seed = require_int("seed", seed, minimum=0)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=tuple(int(k) for k in key)))


def disorder_key(W: float) -> int:
    """Integer stream key of a disorder strength (W in units of 1e-6)."""
    return int(round(_check_disorder(W) * 1_000_000))


def v_grid(split: str, n_samples: int) -> np.ndarray:
    """The v values of a split (docs/physics_and_methods.md §2).

    training:   linspace(0, 0.8, n/2) U linspace(1.2, 2.0, n/2)     (transition window left out)
    validation: linspace(0.001, 0.801, n/2) U linspace(1.201, 2.001, n/2)
    test:       linspace(0.002, 2.002, n)
    For odd n the trivial half gets the extra point.
    """
    if split not in _SPLIT_CODES:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    n_samples = require_int("n_samples", n_samples, minimum=1)
    if split == "test":
        return np.linspace(0.002, 2.002, n_samples)
    if n_samples < 2:
        raise ValueError(f"n_samples must be >= 2 for the {split} split (two v windows), got {n_samples}")
    offset = 0.0 if split == "training" else 0.001
    n_topo = n_samples // 2
    return np.concatenate(
        [
            np.linspace(0.0 + offset, 0.8 + offset, n_topo),
            np.linspace(1.2 + offset, 2.0 + offset, n_samples - n_topo),
        ]
    )


def generate_dataset(
    split: str, n_samples: int, W: float, seed: int, n_cells: int = 25, realization: int = 0
) -> dict[str, Any]:
    """One dataset: observables, labels and the hoppings they come from.

    Parameters
    ----------
    split : "training", "validation" or "test" (selects the v grid, see :func:`v_grid`).
    n_samples : number of chains.
    W : disorder strength (0 for the clean sets).
    seed : master seed; the disorder is drawn from ``disorder_rng(seed, split, W, realization)`` so
        that each (split, W, realization) is an independent, reproducible stream.
    n_cells : unit cells per chain.
    realization : index of an independent disorder realization of the same set.

    Returns
    -------
    dict with ``X`` float32 (N, 2n, 2n), ``labels`` int64 (N,), ``v`` float64 (N,), ``W`` float,
    ``v_n``, ``w_n`` float64 (N, n), and ``split``, ``seed``, ``n_cells``, ``realization``.
    """
    n_cells = _check_n_cells(n_cells)
    W = _check_disorder(W)
    v = v_grid(split, n_samples)
    rng = disorder_rng(seed, _SPLIT_CODES[split], disorder_key(W), realization)
    v_n, w_n = sample_hoppings(v, W, rng, n_cells=n_cells)
    return {
        "X": observables(v_n, w_n).astype(np.float32),
        "labels": winding_number(v_n, w_n),
        "v": v,
        "W": W,
        "v_n": v_n,
        "w_n": w_n,
        "split": split,
        "seed": int(seed),
        "n_cells": n_cells,
        "realization": int(realization),
    }


def phase_diagram_hoppings(
    W: float, v_values: np.ndarray, n_realizations: int, seed: int, row: int, n_cells: int = 25
) -> tuple[np.ndarray, np.ndarray]:
    """Hoppings of one row (one W) of a W-v phase diagram, realization-major.

    Returns (v_n, w_n) of shape (n_realizations * n_v, n_cells); sample r * n_v + j has v = v_values[j]
    in realization r. The stream is ``disorder_rng(seed, 3, row)``, so every row can be drawn alone and
    the same seed gives the same samples to every model evaluated on the grid.
    """
    v_values = np.asarray(v_values, dtype=np.float64)
    n_realizations = require_int("n_realizations", n_realizations, minimum=1)
    rng = disorder_rng(seed, 3, row)
    return sample_hoppings(np.tile(v_values, n_realizations), W, rng, n_cells=n_cells)


def target_diagram(
    W_values: np.ndarray, v_values: np.ndarray, n_realizations: int, seed: int, n_cells: int = 25
) -> np.ndarray:
    """Winding number averaged over disorder realizations on a W x v grid.

    Parameters
    ----------
    W_values : (n_W,) disorder strengths; v_values : (n_v,) mean intracell hoppings.
    n_realizations : independent disorder realizations per grid point.
    seed : master seed (rows drawn by :func:`phase_diagram_hoppings`).

    Returns
    -------
    float64 array (n_W, n_v) with entries in [0, 1], multiples of 1 / n_realizations.
    """
    W_values = np.atleast_1d(np.asarray(W_values, dtype=np.float64))
    v_values = np.atleast_1d(np.asarray(v_values, dtype=np.float64))
    diagram = np.empty((W_values.size, v_values.size))
    for row, W in enumerate(W_values):
        v_n, w_n = phase_diagram_hoppings(W, v_values, n_realizations, seed, row, n_cells)
        diagram[row] = winding_number(v_n, w_n).reshape(n_realizations, v_values.size).mean(axis=0)
    return diagram


def describe(dataset: Mapping[str, Any]) -> str:
    """One-line summary of a dataset mapping (split, W, size, class balance)."""
    labels = np.asarray(dataset["labels"])
    return (
        f"{dataset.get('split', '?')} W={float(np.asarray(dataset['W'])):g}: {labels.size} samples, "
        f"{int((labels == 1).sum())} topological / {int((labels == 0).sum())} trivial"
    )
