"""The no-peeking rule in code: what may inform a choice sees only clean and perturbative data (W <= 0.05).

The paper's question is out-of-distribution generalization, so the disordered chains (uniform disorder
W > 0.05) are the test and nothing that chooses a network may look at them: not the clean-data
diagnostics (:mod:`ssh_ood.interpret.diagnostics`), not a training recipe's training, validation (early
stopping) or selection data (:mod:`ssh_ood.nets.recipes`). Every such reader calls :func:`require_clean` on the
disorder strength of each set it reads, which refuses, with one error, anything above
:data:`MAX_CLEAN_W`.

Physics-motivated constructions (e.g. clean chains with a few bond defects, labelled by the exact winding of
the constructed hoppings) are not draws from the uniform-disorder test distribution; they carry W = 0 and
are documented where they are built.

What a training recipe may see is reported in tiers (:data:`TIERS`), and results of different tiers are shown
side by side, never pooled: a recipe that trains on clean data only is not the same claim as one that trains
on a sparse-disorder augmentation, though both keep the rule above.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

MAX_CLEAN_W = 0.05

#: the data tiers of the training recipes (:mod:`ssh_ood.nets.recipes`, each recipe's ``tier``)
TIERS = {
    "clean": "clean and perturbative chains only (W <= 0.05), at any v (the transition window included), in any "
             "input representation computed from the chain itself",
    "clean_edits": "clean data plus unlabelled image edits of clean chains, used by a training penalty; no new "
                   "labelled chains",
    "sparse_disorder": "label-preserving sparse-disorder augmentation: clean chains with a few bonds rescaled by "
                       "factors up to 2 (on average 2 of the 49 open bonds, each by U(0, 2): single-bond changes "
                       "that large appear in uniform disorder only at W ~ 2), labelled by the exact winding of the "
                       "constructed ring, which is the clean chain's label unless a factor falls below about "
                       "exp(-n |ln v|) (rare on the training grid, v <= 0.8 or >= 1.2). No draw from the "
                       "uniform-disorder test distribution and no test label, but not clean data",
}


def check_tier(tier: str) -> str:
    """``tier`` if it is one of :data:`TIERS`; ``ValueError`` naming the choices otherwise."""
    if tier not in TIERS:
        raise ValueError(f"unknown data tier {tier!r}; choose one of {', '.join(TIERS)}")
    return tier


def require_clean(W_values: float | Iterable[float], purpose: str) -> None:
    """Raise ``ValueError`` unless every uniform disorder strength in ``W_values`` is in [0, :data:`MAX_CLEAN_W`].

    Parameters
    ----------
    W_values : one disorder strength or several (units of w).
    purpose : what reads the data (e.g. ``"diagnostics"``, ``"recipe training data"``), named in the error.
    """
    values = [W_values] if isinstance(W_values, (int, float)) else list(W_values)
    for W in values:
        W = float(W)
        if not (math.isfinite(W) and 0 <= W <= MAX_CLEAN_W):
            raise ValueError(f"{purpose} may read clean and perturbative data only (0 <= W <= {MAX_CLEAN_W}); "
                             f"W = {W} is out of distribution")
