"""The winding number of the SSH ring, step by step (Appendix B of the paper; notebook 05).

The ring of n cells with a phase e^{ik} threaded through the closing bond has the Hamiltonian H(k). In
the chiral basis (all A sites, then all B sites) H(k) = [[0, u(k)], [u(k)^dagger, 0]], and the winding
number is

    nu = (1 / 2 pi i) oint dk Tr[u(k)^{-1} d u(k) / dk].

Only the entry u[0, n-1] = w_{n-1} e^{ik} depends on k, so Tr[u^{-1} du/dk] = i w_{n-1} e^{ik} (u^{-1})[n-1, 0]
and det u(k) = +-prod v_m +- prod w_m e^{ik}: nu = 1 iff prod |w_m| > prod |v_m|, the closed form used by
:func:`ssh_ood.physics.data_generation.winding_number`. Here the integral is evaluated numerically (trapezoid rule
on a periodic grid, spectrally accurate) for demonstration.
"""

from __future__ import annotations

import numpy as np


def ring_hamiltonian(v_n: np.ndarray, w_n: np.ndarray, k: float = 0.0) -> np.ndarray:
    """Site-basis Hamiltonian (2n x 2n, complex) of one ring with the phase e^{ik} on the closing bond.

    Parameters
    ----------
    v_n, w_n : (n,) intracell and intercell hoppings; w_n[-1] closes the ring (site 2n-1 -> site 0).
    k : threaded phase (rad).
    """
    v_n = np.asarray(v_n, dtype=np.float64)
    w_n = np.asarray(w_n, dtype=np.float64)
    if v_n.ndim != 1 or v_n.shape != w_n.shape or v_n.size < 2:
        raise ValueError(f"v_n and w_n must be 1-D of equal length >= 2, got {v_n.shape} and {w_n.shape}")
    n = v_n.size
    upper = np.empty(2 * n - 1)
    upper[0::2] = v_n
    upper[1::2] = w_n[:-1]
    h = np.diag(upper, 1).astype(complex)
    h[0, 2 * n - 1] = w_n[-1] * np.exp(1j * k)
    return h + h.conj().T


def chiral_basis(n_cells: int) -> np.ndarray:
    """Permutation of sites into the chiral basis: A sites (0, 2, ..., 2n-2), then B sites (1, 3, ...)."""
    return np.concatenate([np.arange(0, 2 * n_cells, 2), np.arange(1, 2 * n_cells, 2)])


def chiral_block(v_n: np.ndarray, w_n: np.ndarray, k: float) -> np.ndarray:
    """The off-diagonal block u(k) (n x n): rows A sites, columns B sites of the ring Hamiltonian."""
    order = chiral_basis(len(v_n))
    h = ring_hamiltonian(v_n, w_n, k)[np.ix_(order, order)]
    n = len(v_n)
    return h[:n, n:]


def winding_integral(v_n: np.ndarray, w_n: np.ndarray, n_k: int = 512) -> float:
    """(1 / 2 pi i) oint Tr[u^{-1} du/dk] dk by the trapezoid rule on ``n_k`` points of [0, 2 pi).

    Returns a real number close to an integer (its imaginary part is rounding noise). Slow (one
    matrix inverse per k point): for demonstration and checks, not for datasets.
    """
    if n_k < 8:
        raise ValueError(f"n_k must be >= 8, got {n_k}")
    ks = 2 * np.pi * np.arange(n_k) / n_k
    n = len(v_n)
    total = 0.0 + 0.0j
    for k in ks:
        u = chiral_block(v_n, w_n, k)
        du = np.zeros_like(u)
        du[0, n - 1] = 1j * w_n[-1] * np.exp(1j * k)
        total += np.trace(np.linalg.solve(u, du))
    return float((total * (2 * np.pi / n_k) / (2j * np.pi)).real)
