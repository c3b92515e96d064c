"""Intervention probes: edit the input image in a physically meaningful way and watch the network's logits.

Attribution maps (CAM) say where the evidence sits; an intervention says what the network *reacts to*.
A network that computes the winding number of the SSH chain from the observable X[j, i] = |psi_i(j)|^2
(rows j = sites, columns i = eigenstates by energy; docs/physics_and_methods.md §1) must

- lose its topological evidence when the zero-energy modes are removed from a topological chain, and
- gain it when zero-mode-like density appears at the chain's ends, in the mid-gap columns,

but should not care about a localized density in the middle of the chain, nor in a bulk eigenstate column:
in a disordered *trivial* chain Anderson localization produces exactly such localized states, and a network
that reads "localized density -> topological" calls those chains topological.

The probes (all on clean test samples, W = 0):

``remove_zero_modes``
    topological samples; the mid-gap columns n-1, n (24, 25 for 25 cells) are replaced by their neighbouring
    bulk states (columns n-2 and n+1), i.e. the edge states are deleted and nothing else changes.
``end_zero``, ``end_bulk``, ``mid_zero``, ``mid_bulk``
    trivial samples; two columns are replaced by a localized density (see :func:`localized_density`) at the
    chain's two ends (``end``) or at its centre (``mid``), in the mid-gap columns (``zero``) or in the chiral
    mirror pair of bulk columns (``bulk``, columns n/2 and 2n-1-n/2: 12 and 37). The density has the shape of a
    clean SSH zero mode with decay ratio ``r`` (|psi|^2 on site 2m from the end = (1 - r^2) r^(2m), on one
    sublattice), shared half-and-half between two sites, as the hybridized pair of a topological chain is;
    ``mid`` places the same profile around the central sites, so only the position differs.

For each probe the response is measured on the logit difference delta = logit_topological - logit_trivial:
the fraction of samples whose predicted class flips and the mean shift of delta, in units of the standard
deviation of delta over the clean test set (so networks whose logits differ in scale compare).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

PROBES = ("remove_zero_modes", "end_zero", "end_bulk", "mid_zero", "mid_bulk")
DEFAULT_DECAY = 0.5


def mid_gap_columns(n_sites: int) -> tuple[int, int]:
    """The two mid-gap eigenstate columns (n - 1, n) of a chain of ``n_sites = 2n`` sites."""
    if n_sites < 4 or n_sites % 2:
        raise ValueError(f"n_sites must be even and >= 4, got {n_sites}")
    return n_sites // 2 - 1, n_sites // 2


def bulk_columns(n_sites: int) -> tuple[int, int]:
    """A chiral mirror pair of bulk columns (i, n_sites - 1 - i) with i = n_sites // 4 (12, 37 for 50 sites)."""
    mid_gap_columns(n_sites)
    first = n_sites // 4
    return first, n_sites - 1 - first


def localized_density(n_sites: int, where: str, decay: float = DEFAULT_DECAY) -> np.ndarray:
    """Site density of a zero-mode-like localized state, (n_sites,), summing to 1.

    ``where="end"``: half on each end, (1 - r^2) r^(2m) / 2 on sites 2m and n_sites - 1 - 2m (the two
    sublattices, as the hybridized zero modes of a clean topological chain). ``where="mid"``: the same two
    halves starting at the central sites n - 1 (going left) and n (going right).
    """
    if where not in ("end", "mid"):
        raise ValueError(f"where must be 'end' or 'mid', got {where!r}")
    if not 0 < decay < 1:
        raise ValueError(f"decay ratio r must be in (0, 1), got {decay}")
    half = n_sites // 2
    mid_gap_columns(n_sites)
    profile = (1 - decay**2) * decay ** (2 * np.arange((half + 1) // 2))  # sites 0, 2, 4, ... from the start
    density = np.zeros(n_sites)
    steps = 2 * np.arange(profile.size)
    left_start, right_start = (0, n_sites - 1) if where == "end" else (half - 1, half)
    left = left_start + steps if where == "end" else left_start - steps
    right = right_start - steps if where == "end" else right_start + steps
    np.add.at(density, left, profile / 2)
    np.add.at(density, right, profile / 2)
    return density / density.sum()


def remove_zero_modes(X: np.ndarray) -> np.ndarray:
    """Copies of the images (N, M, M) with the mid-gap columns replaced by their neighbouring bulk columns."""
    X = _check_images(X)
    low, high = mid_gap_columns(X.shape[-1])
    edited = X.copy()
    edited[:, :, low] = X[:, :, low - 1]
    edited[:, :, high] = X[:, :, high + 1]
    return edited


def insert_localized_density(X: np.ndarray, where: str, columns: str, decay: float = DEFAULT_DECAY) -> np.ndarray:
    """Copies of the images (N, M, M) with two columns (``"zero"``: mid-gap, ``"bulk"``: a bulk mirror pair)
    replaced by :func:`localized_density` at ``where`` (``"end"`` or ``"mid"``)."""
    X = _check_images(X)
    n_sites = X.shape[-1]
    if columns not in ("zero", "bulk"):
        raise ValueError(f"columns must be 'zero' or 'bulk', got {columns!r}")
    pair = mid_gap_columns(n_sites) if columns == "zero" else bulk_columns(n_sites)
    density = localized_density(n_sites, where, decay).astype(X.dtype)
    edited = X.copy()
    for column in pair:
        edited[:, :, column] = density
    return edited


def probe_inputs(X: np.ndarray, labels: np.ndarray, decay: float = DEFAULT_DECAY) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Probe name -> (original images, edited images) for every probe of :data:`PROBES`.

    ``remove_zero_modes`` uses the topological samples (label 1), the insertions the trivial ones (label 0).
    """
    X = _check_images(X)
    labels = np.asarray(labels)
    if labels.shape != (X.shape[0],):
        raise ValueError(f"labels must have shape ({X.shape[0]},), got {labels.shape}")
    topological, trivial = X[labels == 1], X[labels == 0]
    if not (len(topological) and len(trivial)):
        raise ValueError("the probes need both topological and trivial samples")
    pairs = {"remove_zero_modes": (topological, remove_zero_modes(topological))}
    for name in PROBES[1:]:
        where, columns = name.split("_")
        pairs[name] = (trivial, insert_localized_density(trivial, where, columns, decay))
    return pairs


@dataclass(frozen=True)
class ProbeResponse:
    """How the logit difference delta = logit_1 - logit_0 responds to one probe.

    Attributes
    ----------
    flip : fraction of samples whose predicted class changes.
    shift : mean(delta_edited - delta_original) / ``scale``.
    """

    flip: float
    shift: float


def probe_responses(
    logits: Callable[[np.ndarray], np.ndarray], X: np.ndarray, labels: np.ndarray, scale: float,
    decay: float = DEFAULT_DECAY,
) -> dict[str, ProbeResponse]:
    """Run every probe through ``logits`` (images (N, M, M) -> (N, 2) logits).

    ``scale`` (> 0): the unit of the shifts, e.g. the standard deviation of delta over the clean test set.
    """
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be finite and > 0, got {scale}")
    responses = {}
    for name, (original, edited) in probe_inputs(X, labels, decay).items():
        before, after = logits(original), logits(edited)
        delta_before, delta_after = before[:, 1] - before[:, 0], after[:, 1] - after[:, 0]
        responses[name] = ProbeResponse(
            flip=float(np.mean((delta_before > 0) != (delta_after > 0))),
            shift=float(np.mean(delta_after - delta_before) / scale),
        )
    return responses


def _check_images(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 3 or X.shape[1] != X.shape[2]:
        raise ValueError(f"images must have shape (N, M, M), got {X.shape}")
    return X
