"""What a network reads: input representations of an SSH chain, each a square image computed from its hoppings.

Notation as in :mod:`ssh_ood.physics.data_generation` (n cells, M = 2n sites, A site 2m, B site 2m+1, the chiral
block C = U diag(s) V^T; the closing bond is never used: the chains are open). Every representation is a float32
array (N, H, H), one channel, so it travels the same dataset, loader and training path as the paper's images.

``density`` (the paper's)
    X[j, i] = |psi_i(j)|^2, (N, M, M): :func:`ssh_ood.physics.data_generation.observables`. It loses the signs of
    the eigenstates, which the winding number needs.
``sublattice_position``
    The same densities with the rows reordered, A sites first (rows 0..n-1 = cells 0..n-1), then B sites
    (rows n..2n-1), and each row multiplied by sigma x_m with x_m = (m + 1/2) / n in (0, 1) the cell's position
    and sigma = +1 on A, -1 on B. A global average of this image over a column is the mean position of the
    column's A weight minus that of its B weight: the ingredient of the sublattice-position rule
    (:mod:`ssh_ood.physics.physics_rules`), which a network with global average pooling cannot compute from the
    paper's image (the pool forgets where a density sits, and its first kernels mix A and B rows). The map is
    invertible (x_m > 0).
``projector``
    The occupied-state projector (correlation matrix) of the open chain at half filling,
    P = sum_{E < 0} |psi><psi|, (N, M, M) in the site basis, signed. From the SVD, the occupied states are
    (u_k, -v_k) / sqrt(2), so P[A, A] = P[B, B] = 1/2 (identity) and P[A_m, B_m'] = -(1/2) (U V^T)[m, m'].
``projector_ab``
    Its A-B block alone, -(1/2) U V^T, (N, n, n): rows A cells, columns B cells. The real-space winding marker
    is built from exactly this block and the position operator.

The projectors are computed in the gauge where every hopping is non-negative (from |v_m|, |w_m|): a hopping's sign
is a gauge (D H D with D diagonal +-1) that changes neither the densities nor the winding number
(:func:`ssh_ood.physics.data_generation.winding_number` uses |v_m|, |w_m|), but it flips signs in P. When the
smallest singular value is exactly 0 (a clean chain with v = 0), the occupied member of the zero-mode pair is a
solver's choice: P is then defined up to the sign of that one pair's term.
"""

from __future__ import annotations

import numpy as np

from .data_generation import _check_hoppings, observables

REPRESENTATIONS = ("density", "sublattice_position", "projector", "projector_ab")
DEFAULT_REPRESENTATION = "density"


def _polar_factor(v_n: np.ndarray, w_n: np.ndarray) -> np.ndarray:
    """U V^T of the chiral block of the open chains with hoppings |v_n|, |w_n|, (N, n, n) float64."""
    v_n, w_n = _check_hoppings(v_n, w_n)
    n_samples, n = v_n.shape
    block = np.zeros((n_samples, n, n))
    cells = np.arange(n)
    block[:, cells, cells] = np.abs(v_n)
    block[:, cells[1:], cells[:-1]] = np.abs(w_n[:, :-1])
    u, _, vt = np.linalg.svd(block)
    return u @ vt


def projector_ab(v_n: np.ndarray, w_n: np.ndarray) -> np.ndarray:
    """A-B block of the occupied-state projector, -(1/2) U V^T, float32 (N, n, n) (module docstring)."""
    return (-0.5 * _polar_factor(v_n, w_n)).astype(np.float32)


def occupied_projector(v_n: np.ndarray, w_n: np.ndarray) -> np.ndarray:
    """P = sum_{E < 0} |psi><psi| of the open chains in the site basis, float32 (N, M, M) (module docstring)."""
    ab = -0.5 * _polar_factor(v_n, w_n)
    n_samples, n, _ = ab.shape
    p = np.zeros((n_samples, 2 * n, 2 * n))
    a, b = np.arange(0, 2 * n, 2), np.arange(1, 2 * n, 2)
    p[:, a, a] = 0.5
    p[:, b, b] = 0.5
    p[:, a[:, None], b[None, :]] = ab
    p[:, b[:, None], a[None, :]] = ab.transpose(0, 2, 1)
    return p.astype(np.float32)


def sublattice_position_image(X: np.ndarray) -> np.ndarray:
    """The ``sublattice_position`` image of density images X (N, M, M): rows A then B, times +-(m + 1/2) / n."""
    X = np.asarray(X)
    if X.ndim != 3 or X.shape[1] != X.shape[2] or X.shape[1] % 2:
        raise ValueError(f"X must have shape (N, M, M) with M even, got {X.shape}")
    n = X.shape[1] // 2
    position = (np.arange(n) + 0.5) / n
    weight = np.concatenate([position, -position]).astype(np.float32)
    order = np.concatenate([np.arange(0, 2 * n, 2), np.arange(1, 2 * n, 2)])
    return (X[:, order, :] * weight[None, :, None]).astype(np.float32)


def represent(name: str, v_n: np.ndarray, w_n: np.ndarray, X: np.ndarray | None = None) -> np.ndarray:
    """Representation ``name`` (one of :data:`REPRESENTATIONS`) of the chains, float32 (N, H, H).

    Parameters
    ----------
    v_n, w_n : (N, n_cells) hoppings (the closing bond ``w_n[:, -1]`` is ignored).
    X : the chains' density images if already computed (a dataset's ``X``), reused by the density-based
        representations so that ``density`` returns exactly the stored images.
    """
    if name not in REPRESENTATIONS:
        raise ValueError(f"unknown input representation {name!r}; choose one of {', '.join(REPRESENTATIONS)}")
    if name in ("density", "sublattice_position"):
        density = observables(v_n, w_n).astype(np.float32) if X is None else np.ascontiguousarray(X, dtype=np.float32)
        return density if name == "density" else sublattice_position_image(density)
    return occupied_projector(v_n, w_n) if name == "projector" else projector_ab(v_n, w_n)
