"""One-threshold physics rules: the bar a network must clear, computed from the open chain's two mid-gap states.

Notation as in :mod:`ssh_ood.physics.data_generation`: n cells, A site 2m and B site 2m+1 in cell m, the chiral
block C (n x n, lower bidiagonal, C[m, m] = v_m, C[m+1, m] = w_m, the closing bond w_{n-1} unused) with the
singular value decomposition C = U diag(s) V^T. The two eigenstates of the open chain closest to zero energy are
E = +-s_min with psi = (u, +-v) / sqrt(2), u = U[:, n-1] on the A sites and v = V[:, n-1] on the B sites. Summed
over the two states their density is

    a_m = u_m^2 on A site 2m,      b_m = v_m^2 on B site 2m+1,      sum_m a_m = sum_m b_m = 1,

a sum over an orthonormal basis of the mid-gap pair, so it does not depend on how a solver rotates the pair when
it is degenerate. In a topological chain (prod w > prod v) the A part sits at the left end (C^T u = s u: u_{m+1}
~ -(v_m / w_m) u_m decays) and the B part at the right end; in a trivial one both sit where the smallest
singular vector of C lives, on top of each other (a bulk state, or the two halves of a bond cut by disorder).

Two scores, one per rule, each turned into a label by one threshold (topological iff score > threshold):

``sublattice_position``
    S = (sum_m m b_m - sum_m m a_m) / (n - 1) in [-1, 1]: how far the B weight sits to the right of the A weight,
    in units of the chain length. About +1 deep in the topological phase, about 0 in the trivial one.
``edge_density``
    E = (1/2) sum_{m in the first and last ``edge_cells`` cells} (a_m + b_m) in [0, 1]: the weight of the two
    mid-gap states on the outermost cells.

Both are invariant under the symmetries that leave the phase unchanged: the reflection of the chain (the open
chain read backwards is an SSH chain with v'_m = v_{n-1-m}, w'_m = w_{n-2-m} and the roles of A and B swapped),
the sign of any hopping (a gauge), and a common rescaling of all hoppings. The threshold is fitted on clean
chains only (W = 0, v on the training grid of :func:`ssh_ood.physics.data_generation.v_grid`, which leaves out
the transition window 0.8-1.2): :func:`fit_rule`. Nothing in a rule reads a label of disordered data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .data_generation import _check_hoppings, v_grid, winding_number
from .no_peeking import require_clean

RULE_NAMES = ("sublattice_position", "edge_density")
#: clean chains the thresholds are fitted on (the paper preset's clean training set size)
FIT_CHAINS = 6000


def midgap_sublattice_weights(v_n: np.ndarray, w_n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Density of the two mid-gap states of the open chain on the A and on the B sites, summed over the pair.

    Parameters
    ----------
    v_n, w_n : (N, n_cells) hoppings (``w_n[:, -1]``, the closing bond, is ignored: the chain is open).

    Returns
    -------
    a, b : float64 (N, n_cells); a[:, m] = u_m^2 on A site 2m, b[:, m] = v_m^2 on B site 2m+1, with u and v the
        left and right singular vectors of the chiral block for its smallest singular value. Each row sums to 1.
    """
    v_n, w_n = _check_hoppings(v_n, w_n)
    n_samples, n = v_n.shape
    block = np.zeros((n_samples, n, n))
    cells = np.arange(n)
    block[:, cells, cells] = v_n
    block[:, cells[1:], cells[:-1]] = w_n[:, :-1]
    u, _, vt = np.linalg.svd(block)  # singular values descending: the last pair is the mid-gap one
    return u[:, :, -1] ** 2, vt[:, -1, :] ** 2


def _sublattice_position(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cells = np.arange(a.shape[1])
    return (b @ cells - a @ cells) / (a.shape[1] - 1)


def _edge_density(a: np.ndarray, b: np.ndarray, edge_cells: int = 1) -> np.ndarray:
    n = a.shape[1]
    if isinstance(edge_cells, bool) or not isinstance(edge_cells, (int, np.integer)) or not 1 <= edge_cells <= n // 2:
        raise ValueError(f"edge_cells must be an integer in [1, {n // 2}], got {edge_cells!r}")
    total = a + b
    return 0.5 * (total[:, :edge_cells].sum(axis=1) + total[:, n - edge_cells:].sum(axis=1))


def sublattice_position_score(v_n: np.ndarray, w_n: np.ndarray) -> np.ndarray:
    """S = (sum_m m b_m - sum_m m a_m) / (n - 1), (N,) in [-1, 1]: B weight right of A weight (module docstring)."""
    return _sublattice_position(*midgap_sublattice_weights(v_n, w_n))


def edge_density_score(v_n: np.ndarray, w_n: np.ndarray, edge_cells: int = 1) -> np.ndarray:
    """E = (1/2) sum over the first and last ``edge_cells`` cells of (a_m + b_m), (N,) in [0, 1]."""
    return _edge_density(*midgap_sublattice_weights(v_n, w_n), edge_cells)


#: each rule's score as a function of the mid-gap weights (a, b) of :func:`midgap_sublattice_weights`
SCORES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "sublattice_position": _sublattice_position,
    "edge_density": _edge_density,
}


def rule_score(name: str, v_n: np.ndarray, w_n: np.ndarray,
               weights: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The score (N,) of rule ``name`` (one of :data:`RULE_NAMES`) on the chains (v_n, w_n).

    ``weights``: the chains' :func:`midgap_sublattice_weights` if already computed (shared by several rules).
    """
    if name not in SCORES:
        raise ValueError(f"unknown physics rule {name!r}; choose one of {', '.join(RULE_NAMES)}")
    return SCORES[name](*(midgap_sublattice_weights(v_n, w_n) if weights is None else weights))


def fit_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The threshold t of the rule "topological iff score > t" with the highest accuracy on (scores, labels).

    Candidates are the midpoints between consecutive distinct scores and one point below the lowest and above
    the highest. Ties in accuracy go to the candidate in the widest gap between scores (the largest margin),
    then to the lowest: the choice is deterministic.

    Returns
    -------
    (threshold, accuracy) : the chosen t and its accuracy on the given chains.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.ndim != 1 or labels.shape != scores.shape or scores.size < 1:
        raise ValueError(f"scores and labels must be non-empty 1-D arrays of equal length, got {scores.shape} and {labels.shape}")
    if not np.isfinite(scores).all() or not np.isin(labels, (0, 1)).all():
        raise ValueError("scores must be finite and labels 0 or 1")
    values = np.unique(scores)
    span = max(float(values[-1] - values[0]), 1.0)
    edges = np.concatenate([[values[0] - span], values, [values[-1] + span]])
    candidates = 0.5 * (edges[:-1] + edges[1:])  # one per gap, ascending
    gaps = np.diff(edges)
    # accuracy of "score > t" for every candidate: trivial chains at or below t plus topological ones above it
    below = np.searchsorted(np.sort(scores), candidates, side="right")
    trivial_below = np.searchsorted(np.sort(scores[labels == 0]), candidates, side="right")
    topological_below = below - trivial_below
    n_topological = int((labels == 1).sum())
    accuracy = (trivial_below + n_topological - topological_below) / scores.size
    best = np.flatnonzero(accuracy == accuracy.max())
    choice = best[np.argmax(gaps[best])]  # argmax takes the first (lowest) of equal gaps
    return float(candidates[choice]), float(accuracy[choice])


@dataclass(frozen=True)
class PhysicsRule:
    """A fitted rule: topological iff ``score(chain) > threshold``.

    Attributes
    ----------
    name : one of :data:`RULE_NAMES`.
    threshold : fitted on clean chains (:func:`fit_rule`).
    clean_accuracy : accuracy on the chains it was fitted on.
    n_fit : number of those chains.
    """

    name: str
    threshold: float
    clean_accuracy: float
    n_fit: int

    def score(self, v_n: np.ndarray, w_n: np.ndarray, weights: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """The rule's score (N,) of the chains (``weights``: see :func:`rule_score`)."""
        return rule_score(self.name, v_n, w_n, weights)

    def predict(self, v_n: np.ndarray, w_n: np.ndarray, weights: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Predicted labels (N,) int64: 1 (topological) iff score > threshold."""
        return (self.score(v_n, w_n, weights) > self.threshold).astype(np.int64)

    def to_dict(self) -> dict:
        return {"name": self.name, "threshold": self.threshold, "clean_accuracy": self.clean_accuracy,
                "n_fit": self.n_fit}


def fit_rule_on_chains(name: str, v_n: np.ndarray, w_n: np.ndarray, W: float) -> PhysicsRule:
    """Fit rule ``name`` on given chains of uniform disorder ``W``, labelled by their exact winding number.

    ``W`` must be clean or perturbative (<= 0.05, :func:`ssh_ood.physics.no_peeking.require_clean`): a threshold
    fitted on disordered chains would have looked at the test distribution, and is refused.
    """
    require_clean(W, "a physics rule's threshold")
    labels = winding_number(v_n, w_n)
    threshold, accuracy = fit_threshold(rule_score(name, v_n, w_n), labels)
    return PhysicsRule(name, threshold, accuracy, int(labels.size))


def clean_chains(v: np.ndarray, n_cells: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """Clean hoppings v_m = v, w_m = 1 (closing bond included), (N, n_cells) each, for the (N,) values ``v``."""
    v = np.atleast_1d(np.asarray(v, dtype=np.float64))
    return np.repeat(v[:, None], n_cells, axis=1), np.ones((v.size, n_cells))


def fit_rule(name: str, n_chains: int = FIT_CHAINS, n_cells: int = 25) -> PhysicsRule:
    """Rule ``name`` with its threshold fitted on ``n_chains`` clean chains (W = 0) on the training v grid.

    The chains are ``v_grid("training", n_chains)``: v in [0, 0.8] and [1.2, 2.0], the values the networks'
    clean training set has. Clean chains are deterministic, so no seed is needed.
    """
    v_n, w_n = clean_chains(v_grid("training", n_chains), n_cells)
    return fit_rule_on_chains(name, v_n, w_n, 0.0)
