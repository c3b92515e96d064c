"""Physics-motivated training constructions: not draws from the uniform-disorder test distribution.

They serve the training recipes of :mod:`ssh_ood.nets.recipes` and are allowed by the no-peeking rule
(:mod:`ssh_ood.physics.no_peeking`) because they are not chains with uniform disorder W > 0.05:

:func:`bond_defect_dataset`
    Clean chains (v on the training grid, w = 1) in which 1 to ``max_defects`` open bonds are multiplied by
    a factor f ~ U(0, ``max_factor``). A weak bond in the bulk cuts the chain and binds mid-gap states at
    the cut, a strong one a localized bulk state: the localized densities that uniform disorder makes in
    trivial chains, here in isolation. Labels are the exact winding number of the constructed ring (the
    closing bond stays 1, so the label is known exactly, :func:`winding_number`).
:func:`transition_window_hoppings`
    Clean chains (W = 0) with v in the transition window 0.8-1.2 that the paper's training grid leaves out,
    labelled by their exact winding number (1 iff v < 1). Clean data, not a construction of disorder.
:func:`localized_column_edits`
    Image edits like the intervention probes (:mod:`ssh_ood.physics.interventions`), at random places outside
    the edge-state region: a chiral mirror pair of eigenstate columns (i, M - 1 - i) replaced by an
    exponentially localized density centred on a random site; in the mid-gap columns the centre stays in
    the bulk rows. Used for a training penalty, never as labelled data.
"""

from __future__ import annotations

import numpy as np

from ..base.validation import require_int
from .data_generation import _check_n_cells, observables, v_grid, winding_number

#: mid-gap columns whose localized densities at the chain's ends are the edge states (M = 50: 20-29)
EDGE_COLUMN_HALF_WIDTH = 5
#: end rows of the edge-state region (M = 50: sites 0-7 and 42-49)
EDGE_ROWS = 8


def bond_defect_hoppings(
    v: np.ndarray, rng: np.random.Generator, n_cells: int = 25, max_defects: int = 3, max_factor: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """Clean hoppings (v_n = v, w_n = 1) with a few open bonds rescaled, (N, n_cells) each.

    Parameters
    ----------
    v : (N,) mean intracell hoppings.
    rng : source of every draw (number of defects, bonds, factors, in that order).
    max_defects : each chain gets k ~ U{1, ..., max_defects} distinct open bonds (of the 2 n_cells - 1)
        multiplied by f ~ U(0, max_factor).

    Returns
    -------
    v_n, w_n : float64 (N, n_cells); the closing bond ``w_n[:, -1]`` is never a defect (it stays 1).
    """
    n_cells = _check_n_cells(n_cells)
    v = np.atleast_1d(np.asarray(v, dtype=np.float64))
    if v.ndim != 1 or not np.isfinite(v).all():
        raise ValueError(f"v must be a finite 1-D array, got shape {v.shape}")
    max_defects = require_int("max_defects", max_defects, minimum=1, maximum=2 * n_cells - 1)
    if not (np.isfinite(max_factor) and max_factor > 0):
        raise ValueError(f"max_factor must be positive, got {max_factor}")
    n = v.size
    bonds = np.empty((n, 2 * n_cells))  # interleaved v_0, w_0, v_1, ..., v_{n-1}, w_{n-1} (closing)
    bonds[:, 0::2] = v[:, None]
    bonds[:, 1::2] = 1.0
    counts = rng.integers(1, max_defects + 1, size=n)
    chosen = np.argsort(rng.random((n, 2 * n_cells - 1)), axis=1)[:, :max_defects]  # distinct open bonds
    factors = rng.uniform(0.0, max_factor, size=(n, max_defects))
    active = np.arange(max_defects)[None, :] < counts[:, None]
    rows = np.repeat(np.arange(n)[:, None], max_defects, axis=1)
    bonds[rows[active], chosen[active]] *= factors[active]
    return bonds[:, 0::2].copy(), bonds[:, 1::2].copy()


def bond_defect_dataset(n_samples: int, rng: np.random.Generator, n_cells: int = 25, max_defects: int = 3,
                        max_factor: float = 2.0) -> dict[str, np.ndarray]:
    """Bond-defect chains on the training v grid (:func:`v_grid`): ``X`` float32 (N, M, M), ``labels`` (N,),
    ``v``, ``v_n``, ``w_n``; labels from the exact winding of the constructed ring."""
    v = v_grid("training", n_samples)
    v_n, w_n = bond_defect_hoppings(v, rng, n_cells, max_defects, max_factor)
    return {"X": observables(v_n, w_n).astype(np.float32), "labels": winding_number(v_n, w_n), "v": v,
            "v_n": v_n, "w_n": w_n}


def transition_window_hoppings(n_samples: int, n_cells: int = 25, window: tuple[float, float] = (0.8, 1.2)
                                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clean chains across the transition window: v = linspace(low, high, N), v_m = v, w_m = 1 (closing bond too).

    Deterministic (no disorder). Returns ``v`` (N,) and the hoppings ``v_n``, ``w_n`` float64 (N, n_cells); their
    exact labels are :func:`winding_number` (1 iff v < 1, v = 1 itself trivial).
    """
    n_cells = _check_n_cells(n_cells)
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    low, high = (float(x) for x in window)
    if not (np.isfinite(low) and np.isfinite(high) and 0 <= low < high):
        raise ValueError(f"window must be (low, high) with 0 <= low < high, got {window!r}")
    v = np.linspace(low, high, int(n_samples))
    return v, np.repeat(v[:, None], n_cells, axis=1), np.ones((v.size, n_cells))


def localized_column_edits(X: np.ndarray, rng: np.random.Generator, decay_range: tuple[float, float] = (0.3, 0.8)) -> np.ndarray:
    """Copies of images (N, M, M) with one chiral mirror pair of columns replaced by a localized density.

    Per image: column i ~ U{0, ..., M/2 - 1} (and its mirror M - 1 - i), decay ratio r ~ U(decay_range),
    centre c ~ U{0, ..., M - 1}, or, when i is one of the mid-gap columns (within
    :data:`EDGE_COLUMN_HALF_WIDTH` of the gap), c ~ U{EDGE_ROWS, ..., M - 1 - EDGE_ROWS} (bulk rows): the
    edit never lands in the edge-state region. Density r^|j - c| on site j, normalized to 1.
    """
    X = np.asarray(X)
    if X.ndim != 3 or X.shape[1] != X.shape[2] or X.shape[1] % 2:
        raise ValueError(f"X must have shape (N, M, M) with M even, got {X.shape}")
    n, m = X.shape[0], X.shape[1]
    if m <= 2 * EDGE_ROWS:
        raise ValueError(f"images of {m} sites have no bulk rows outside the {EDGE_ROWS} end rows")
    columns = rng.integers(0, m // 2, size=n)
    decay = rng.uniform(*decay_range, size=n)
    in_gap = columns >= m // 2 - EDGE_COLUMN_HALF_WIDTH
    centres = np.where(in_gap, rng.integers(EDGE_ROWS, m - EDGE_ROWS, size=n), rng.integers(0, m, size=n))
    density = decay[:, None] ** np.abs(np.arange(m)[None, :] - centres[:, None])
    density /= density.sum(axis=1, keepdims=True)
    edited = X.copy()
    rows = np.arange(n)
    edited[rows, :, columns] = density
    edited[rows, :, m - 1 - columns] = density
    return edited
