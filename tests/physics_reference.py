"""Independent, slow reference implementations used only by the tests.

Nothing here is imported by ``ssh_ood``: the Hamiltonian is assembled entry by entry in the site basis,
diagonalized densely, and the winding number is measured as the phase winding of det u(k) on a k grid.
"""

from __future__ import annotations

import numpy as np


def open_chain_hamiltonian(v_n: np.ndarray, w_n: np.ndarray) -> np.ndarray:
    """Dense (2n x 2n) open-chain SSH Hamiltonian of one chain, site basis 0..2n-1."""
    n = len(v_n)
    h = np.zeros((2 * n, 2 * n))
    for m in range(n):
        h[2 * m, 2 * m + 1] = h[2 * m + 1, 2 * m] = v_n[m]
    for m in range(n - 1):
        h[2 * m + 1, 2 * m + 2] = h[2 * m + 2, 2 * m + 1] = w_n[m]
    return h


def periodic_block(v_n: np.ndarray, w_n: np.ndarray, k: float) -> np.ndarray:
    """Chiral off-diagonal block u(k) (rows A sites, columns B sites) of the ring with phase e^{ik}
    threaded through the closing bond (B_{n-1} -> A_0)."""
    n = len(v_n)
    h = np.zeros((2 * n, 2 * n), dtype=complex)
    h[: 2 * n, : 2 * n] = open_chain_hamiltonian(v_n, w_n)
    h[0, 2 * n - 1] = w_n[n - 1] * np.exp(1j * k)
    h[2 * n - 1, 0] = np.conj(h[0, 2 * n - 1])
    return h[0::2, 1::2]


def numerical_winding_number(v_n: np.ndarray, w_n: np.ndarray, n_k: int = 721) -> int:
    """(1 / 2 pi) x total phase change of det u(k) for k in [0, 2 pi], by unwrapping on a grid."""
    ks = np.linspace(0.0, 2.0 * np.pi, n_k)
    dets = np.array([np.linalg.det(periodic_block(v_n, w_n, k)) for k in ks])
    phase = np.unwrap(np.angle(dets))
    return int(round(abs(phase[-1] - phase[0]) / (2.0 * np.pi)))
