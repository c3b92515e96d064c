"""The accuracy ceiling of any classifier of open-chain data: the closing bond is never seen.

The label is the winding number of the *ring* (docs/physics_and_methods.md §1): 1 iff S = sum_n ln|w_n| - sum_n ln|v_n| > 0 over
all n cells, the closing bond w_n (``w_n[:, -1]``) included. The network's input, the open 2n-site chain,
contains the other 2n - 1 hoppings (determined by them up to irrelevant degeneracies) but never the closing
bond. Given the open chain, the closing bond is still a fresh draw w ~ U(1 - W/4, 1 + W/4), so the label is
a coin with probability

    p = P(label = 1 | open chain) = P(|w| > t),   t = exp(-A),
    A = sum_{n < last} ln|w_n| - sum_n ln|v_n|   (the known part of S),

and P(|w| > t) = P(w > t) + P(w < -t) for the uniform law on [a, b] = [1 - W/4, 1 + W/4] (the second
term is non-zero only for W > 4, where the bond can change sign). For W = 0 the bond is 1 and p = 1[A > 0].
The Bayes classifier predicts 1 iff p > 1/2 and is right with probability max(p, 1 - p); the mean of
max(p, 1 - p) over the generator's draws is the best accuracy any classifier of the open chain can reach
(the ceiling), per W, per disorder band, or overall.

Everything here is closed form and vectorized over samples (a few million chains per second): the grid of
the paper (100 W x 10 realizations x 200 v) takes well under a second.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .data_generation import _check_disorder, _check_hoppings, phase_diagram_hoppings


def closing_bond_range(W: float, w: float = 1.0) -> tuple[float, float]:
    """Support [a, b] of the closing bond w_n = w + (W/2) r', r' ~ U(-1/2, 1/2): [w - W/4, w + W/4]."""
    W = _check_disorder(W)
    return w - W / 4, w + W / 4


def known_log_ratio(v_n: np.ndarray, w_n: np.ndarray) -> np.ndarray:
    """A = sum_{m < n-1} ln|w_m| - sum_m ln|v_m|, (N,): the part of S the open chain determines.

    ``w_n[:, -1]`` (the closing bond) is ignored. A vanishing v_m gives +inf, a vanishing open w_m -inf
    (both: the label is then 0 whatever the closing bond, see :func:`label_probability`).
    """
    v_n, w_n = _check_hoppings(v_n, w_n)
    with np.errstate(divide="ignore"):
        log_w = np.log(np.abs(w_n[:, :-1]))
        log_v = np.log(np.abs(v_n))
    zero_w = np.isneginf(log_w).any(axis=1)
    with np.errstate(invalid="ignore"):
        known = log_w.sum(axis=1) - log_v.sum(axis=1)
    return np.where(zero_w, -np.inf, known)


def label_probability(v_n: np.ndarray, w_n: np.ndarray, W: float) -> np.ndarray:
    """p = P(label = 1 | the open-chain hoppings), the closing bond marginalized, (N,) in [0, 1].

    Parameters
    ----------
    v_n, w_n : (N, n_cells) hoppings as :func:`ssh_ood.physics.data_generation.sample_hoppings` returns them
        (``w_n[:, -1]``, the closing bond, is ignored: it is what is marginalized).
    W : disorder strength of the closing bond's law, U(1 - W/4, 1 + W/4).

    Returns
    -------
    p : float64 (N,). The label is 1 iff |w_closing| > t = exp(-A) (:func:`known_log_ratio`), strictly,
        like :func:`ssh_ood.physics.data_generation.winding_number`.
    """
    a, b = closing_bond_range(W)
    known = known_log_ratio(v_n, w_n)
    with np.errstate(over="ignore"):
        threshold = np.exp(-known)  # t in [0, inf]; A = +inf -> t = 0, A = -inf -> t = inf
    if b == a:  # W = 0: the closing bond is exactly 1
        return (1.0 > threshold).astype(np.float64)
    width = b - a
    above = np.clip((b - np.maximum(threshold, a)) / width, 0.0, 1.0)
    below = np.clip((np.minimum(-threshold, b) - a) / width, 0.0, 1.0)
    p = above + below
    p[~(known > -np.inf)] = 0.0  # a vanishing open w bond: label 0 whatever the closing bond
    return p


def bayes_accuracy(p: np.ndarray) -> np.ndarray:
    """max(p, 1 - p): the probability that the Bayes classifier (predict 1 iff p > 1/2) is right."""
    p = np.asarray(p, dtype=np.float64)
    return np.maximum(p, 1.0 - p)


def ceiling_grid(
    W_values: Sequence[float], v_values: Sequence[float], n_realizations: int, seed: int, n_cells: int = 25
) -> dict[str, np.ndarray]:
    """The ceiling on a W x v grid, drawn exactly like the generalization grid's rows.

    Parameters
    ----------
    W_values : (n_W,) disorder strengths; v_values : (n_v,) mean intracell hoppings.
    n_realizations : disorder realizations per grid point (the paper's grid: 10).
    seed : master seed; row k is drawn by :func:`phase_diagram_hoppings` ``(W_k, v, n_realizations, seed, k)``,
        so with the grid's seed these are the very chains the networks are evaluated on.

    Returns
    -------
    dict with ``accuracy`` (n_W, n_v): mean over realizations of max(p, 1 - p); ``p`` (n_W, n_v): mean p
    (the Bayes-optimal phase diagram, fraction predicted topological in expectation);
    ``recall_topological`` and ``recall_trivial`` (n_W,): expected recall of each class by the Bayes
    classifier in each row, sum over samples of p 1[p > 1/2] / sum p (and the same for 1 - p); ``W``, ``v``.
    """
    W_values = np.atleast_1d(np.asarray(W_values, dtype=np.float64))
    v_values = np.atleast_1d(np.asarray(v_values, dtype=np.float64))
    shape = (W_values.size, v_values.size)
    accuracy, mean_p = np.empty(shape), np.empty(shape)
    recall_topo, recall_triv = np.full(W_values.size, np.nan), np.full(W_values.size, np.nan)
    for row, W in enumerate(W_values):
        v_n, w_n = phase_diagram_hoppings(float(W), v_values, n_realizations, seed, row, n_cells)
        p = label_probability(v_n, w_n, float(W))
        accuracy[row] = bayes_accuracy(p).reshape(n_realizations, -1).mean(axis=0)
        mean_p[row] = p.reshape(n_realizations, -1).mean(axis=0)
        says_topological = p > 0.5
        if p.sum() > 0:
            recall_topo[row] = float((p * says_topological).sum() / p.sum())
        if (1 - p).sum() > 0:
            recall_triv[row] = float(((1 - p) * ~says_topological).sum() / (1 - p).sum())
    return {"accuracy": accuracy, "p": mean_p, "recall_topological": recall_topo, "recall_trivial": recall_triv,
            "W": W_values, "v": v_values}


def band_rows(W_values: Sequence[float], bands: Sequence[tuple[float, float]]) -> list[tuple[str, np.ndarray]]:
    """(name ``"low-high"``, boolean row mask) of each band [low, high) of ``W_values`` that holds rows.

    The last band includes its upper end; a band without grid rows (a coarse grid) is left out.
    """
    W_values = np.asarray(W_values, dtype=np.float64)
    out = []
    for position, (low, high) in enumerate(bands):
        last = position == len(bands) - 1
        rows = (W_values >= low) & ((W_values <= high) if last else (W_values < high))
        if rows.any():
            out.append((f"{low:g}-{high:g}", rows))
    return out


def band_means(per_W: np.ndarray, W_values: Sequence[float], bands: Sequence[tuple[float, float]]) -> dict[str, float]:
    """Mean of a per-W quantity (n_W,) over the rows of each band of :func:`band_rows`: ``"low-high" -> mean``."""
    per_W = np.asarray(per_W, dtype=np.float64)
    if per_W.shape != np.shape(W_values):
        raise ValueError(f"per_W must have shape {np.shape(W_values)}, got {per_W.shape}")
    return {name: float(np.nanmean(per_W[rows])) for name, rows in band_rows(W_values, bands)}
