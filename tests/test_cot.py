"""COT (ssh_ood.ood.ood_estimators.cot_error) against closed-form cases and a brute-force transport."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ssh_ood.ood.ood_estimators import cot_error


def _rows(p1) -> np.ndarray:
    p1 = np.asarray(p1, dtype=np.float64)
    return np.stack([1 - p1, p1], axis=1)


def test_closed_form_cases():
    # confident predictions in the source's proportions: no transport cost
    assert cot_error(_rows([1, 1, 0, 0]), 0.5) == pytest.approx(0.0)
    # an over-caller: every target chain called class 1 with certainty, the source balanced: half must move
    assert cot_error(_rows([1, 1, 1, 1]), 0.5) == pytest.approx(0.5)
    # uncertain predictions cost 1/2 each whatever the proportions
    assert cot_error(_rows([0.5] * 5), 0.3) == pytest.approx(0.5)
    # a fractional share: 3 rows, q = 1/2 -> 1.5 rows get label 1
    assert cot_error(_rows([0.9, 0.6, 0.2]), 0.5) == pytest.approx((0.1 + 0.5 * 0.4 + 0.5 * 0.6 + 0.2) / 3)


def test_equals_the_best_assignment_found_by_brute_force():
    rng = np.random.default_rng(0)
    p1 = rng.random(7)
    for k in range(8):  # k of the 7 rows labelled 1
        best = min(np.mean([1 - p1[i] if i in chosen else p1[i] for i in range(7)])
                   for chosen in itertools.combinations(range(7), k))
        assert cot_error(_rows(p1), k / 7) == pytest.approx(best)


def test_refuses_what_it_cannot_score():
    with pytest.raises(ValueError, match="two-class"):
        cot_error(np.full((3, 3), 1 / 3), 0.5)
    with pytest.raises(ValueError, match="source_fraction_1"):
        cot_error(_rows([0.2]), 1.5)
