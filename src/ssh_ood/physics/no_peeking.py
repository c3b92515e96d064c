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
"""

from __future__ import annotations

import math
from collections.abc import Iterable

MAX_CLEAN_W = 0.05


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
