"""The accuracy ceiling (ssh_ood.physics.ceiling) against Monte Carlo over the closing bond."""

from __future__ import annotations

import numpy as np
import pytest

from ssh_ood.physics import ceiling as ceiling_module
from ssh_ood.physics.ceiling import (
    band_means,
    bayes_accuracy,
    ceiling_grid,
    known_log_ratio,
    label_probability,
)
from ssh_ood.physics.data_generation import (
    phase_diagram_hoppings,
    sample_hoppings,
    target_diagram,
    winding_number,
)


def _monte_carlo_p(v_n: np.ndarray, w_n: np.ndarray, W: float, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """P(label = 1) by redrawing the closing bond ``n_draws`` times and labelling each ring exactly."""
    hits = np.zeros(len(v_n))
    for _ in range(n_draws):
        w = w_n.copy()
        w[:, -1] = 1 + 0.5 * W * rng.uniform(-0.5, 0.5, size=len(v_n))
        hits += winding_number(v_n, w)
    return hits / n_draws


@pytest.mark.parametrize("W", [0.5, 2.0, 3.5, 4.5])
def test_label_probability_matches_monte_carlo(W):
    rng = np.random.default_rng(11)
    v = rng.uniform(0.97, 1.03, size=400) if W < 1 else rng.uniform(0.7, 1.4, size=400)  # where the closing bond matters
    v_n, w_n = sample_hoppings(v, W, rng)
    p = label_probability(v_n, w_n, W)
    mc = _monte_carlo_p(v_n, w_n, W, 4000, rng)
    assert np.all(np.abs(p - mc) <= 4.5 * np.sqrt(np.maximum(p * (1 - p), 1 / 4000) / 4000) + 1e-12)
    # the interesting samples exist: the closing bond matters for some chains
    assert ((p > 0.05) & (p < 0.95)).sum() >= 5


def test_label_probability_exact_cases():
    v_n = np.full((3, 25), 0.5)
    w_n = np.ones((3, 25))
    v_n[1] = 1.5
    v_n[2, 3] = 0.0  # a vanishing intracell bond: topological whatever the closing bond
    assert np.array_equal(label_probability(v_n, w_n, 0.0), [1.0, 0.0, 1.0])
    assert label_probability(v_n, w_n, 4.5) == pytest.approx([1.0, 0.0, 1.0], abs=1e-6)  # |w| < t ~ 1e-8 possible
    # the boundary in the closing bond alone: A = 0, label 1 iff |w| > 1, half the law for any W < 4
    v_n = np.ones((1, 25))
    assert label_probability(v_n, np.ones((1, 25)), 2.0)[0] == pytest.approx(0.5)
    assert label_probability(v_n, np.ones((1, 25)), 0.0)[0] == 0.0  # |1| > 1 is false: trivial, as the labels
    # W > 4: the bond can change sign; |w| > 1 on [-0.25, 2.25] has probability 1.25 / 2.5
    assert label_probability(v_n, np.ones((1, 25)), 5.0)[0] == pytest.approx(0.5)
    # a zero open intercell bond: trivial whatever the closing bond
    w_n = np.ones((1, 25))
    w_n[0, 4] = 0.0
    assert label_probability(np.full((1, 25), 0.5), w_n, 3.0)[0] == 0.0


def test_ceiling_grid_against_monte_carlo_bayes_accuracy():
    W_values = np.array([0.0, 1.0, 3.0, 4.5])
    v_values = np.linspace(0, 2, 40)
    ceiling = ceiling_grid(W_values, v_values, n_realizations=3, seed=5)
    assert ceiling["accuracy"].shape == (4, 40)
    assert np.all(ceiling["accuracy"][0] == 1.0)  # clean chains: the open chain fixes the label
    assert np.all(ceiling["accuracy"] >= 0.5)
    # the Bayes classifier's accuracy by simulation: fixed decision p > 1/2, fresh closing bonds
    from ssh_ood.physics.data_generation import phase_diagram_hoppings

    rng = np.random.default_rng(3)
    for row, W in enumerate(W_values):
        v_n, w_n = phase_diagram_hoppings(W, v_values, 3, 5, row)
        decide = label_probability(v_n, w_n, W) > 0.5
        correct = np.zeros(len(v_n))
        for _ in range(2000):
            w = w_n.copy()
            w[:, -1] = 1 + 0.5 * W * rng.uniform(-0.5, 0.5, size=len(v_n))
            correct += winding_number(v_n, w) == decide
        simulated = (correct / 2000).reshape(3, -1).mean(axis=0).mean()
        assert ceiling["accuracy"][row].mean() == pytest.approx(simulated, abs=0.01)
    assert ceiling["accuracy"][3].mean() < ceiling["accuracy"][1].mean()  # strong disorder is harder


def test_bayes_accuracy_and_band_means():
    assert np.array_equal(bayes_accuracy(np.array([0.0, 0.2, 0.5, 0.9])), [1.0, 0.8, 0.5, 0.9])
    means = band_means(np.array([1.0, 0.9, 0.8, 0.6]), [0.0, 1.0, 3.0, 5.0], ((0, 0.5), (0.5, 1.5), (1.5, 3), (3, 5)))
    assert means == {"0-0.5": 1.0, "0.5-1.5": 0.9, "3-5": 0.7}
    with pytest.raises(ValueError, match="per_W must have shape"):
        band_means(np.ones(3), [0.0, 1.0], ((0, 5),))


def test_known_log_ratio_is_the_open_chains_part_of_the_log_ratio_without_floating_point_errors():
    rng = np.random.default_rng(2)
    v_n, w_n = rng.uniform(0.2, 2.0, (2, 4, 6))
    v_n[1, 2] = 0.0  # a vanishing intracell bond: +inf
    w_n[2, 3] = 0.0  # a vanishing open intercell bond: -inf
    v_n[3, 0] = w_n[3, 1] = 0.0  # both: -inf (the label is 0 whatever the closing bond)
    w_n[0, -1] = 0.0  # the closing bond is not part of A: row 0 stays finite
    with np.errstate(all="raise"):  # the zeros are results, not floating-point errors
        known = known_log_ratio(v_n, w_n)
        p = label_probability(v_n, w_n, 3.0)
    expected = np.log(w_n[0, :-1]).sum() - np.log(v_n[0]).sum()
    assert known[0] == pytest.approx(expected) and np.isfinite(known[0])
    assert known[1] == np.inf and known[2] == -np.inf and known[3] == -np.inf
    assert p[1] == 1.0 and p[2] == 0.0 and p[3] == 0.0
    # an open chain so trivial that t = exp(-A) overflows (A ~ -1100): label 0 with certainty, without overflow error
    weak = np.full((1, 25), 1e-20)
    with np.errstate(all="raise"):
        assert label_probability(np.ones((1, 25)), weak, 3.0)[0] == 0.0


def test_bayes_accuracy_and_band_means_are_computed_in_double_precision():
    p32 = np.array([0.1, 0.7], dtype=np.float32)
    accuracy = bayes_accuracy(p32)
    assert accuracy.dtype == np.float64
    assert np.array_equal(accuracy, [1.0 - np.float64(p32[0]), np.float64(p32[1])])
    per_W = np.array([0.1, 0.2, 0.7], dtype=np.float32)
    means = band_means(per_W, [0.0, 1.0, 2.0], ((0, 5),))
    assert means["0-5"] == per_W.astype(np.float64).mean()
    with pytest.raises(ValueError, match=r"per_W must have shape \(2,\), got \(3,\)"):
        band_means(per_W, [0.0, 1.0], ((0, 5),))


def test_ceiling_grid_rows_are_the_chains_of_the_generalization_grid():
    W_values, v_values, seed = [0.0, 1.5, 3.0], np.linspace(0.0, 2.0, 60), 9
    n_realizations = 3
    ceiling = ceiling_grid(W_values, v_values, n_realizations, seed)
    assert set(ceiling) == {"accuracy", "p", "recall_topological", "recall_trivial", "W", "v"}
    assert np.array_equal(ceiling["W"], W_values) and np.array_equal(ceiling["v"], v_values)
    for row, W in enumerate(W_values):
        # row k: the chains phase_diagram_hoppings(W_k, v, n_realizations, seed, k) draws (25 cells, realization-major),
        # each v's entry the mean over its realizations
        p = label_probability(*phase_diagram_hoppings(W, v_values, n_realizations, seed, row), W)
        p = p.reshape(n_realizations, v_values.size)
        np.testing.assert_allclose(ceiling["p"][row], p.mean(axis=0), rtol=0, atol=1e-12)
        np.testing.assert_allclose(ceiling["accuracy"][row], np.maximum(p, 1 - p).mean(axis=0), rtol=0, atol=1e-12)
    # clean chains: p = 1 iff v < 1, exactly
    assert np.array_equal(ceiling["p"][0], (v_values < 1).astype(float))
    # one realization: p per chain must agree with the label the generalization grid gives that very chain
    # wherever the closing bond cannot change it (p = 0 or 1)
    ceiling = ceiling_grid(W_values, v_values, 1, seed)
    labels = target_diagram(W_values, v_values, 1, seed)
    assert np.all(labels[ceiling["p"] == 1.0] == 1) and np.all(labels[ceiling["p"] == 0.0] == 0)
    assert ((ceiling["p"] == 1.0) | (ceiling["p"] == 0.0))[1:].sum() > 60  # enough chains decided
    # integer grids are grids of floats
    integer = ceiling_grid([0, 3], [0, 2], 2, seed)
    assert integer["W"].dtype == np.float64 and integer["v"].dtype == np.float64
    floating = ceiling_grid([0.0, 3.0], [0.0, 2.0], 2, seed)
    assert all(np.array_equal(integer[key], floating[key], equal_nan=True) for key in floating)


def test_ceiling_grid_recalls_are_the_expected_recalls_of_the_bayes_classifier(monkeypatch):
    """With t = exp(-A) set by one intracell bond (v_0 = t, every other bond 1) and W = 2 (closing bond
    U(0.5, 1.5)), p = clip(1.5 - max(t, 0.5), 0, 1): chains with p = 1, 3/4, 1/2, 1/4, 0. The Bayes classifier
    says topological iff p > 1/2 (the tie p = 1/2 is trivial); its expected recalls are sum p 1[p > 1/2] / sum p
    and sum (1 - p) 1[p <= 1/2] / sum (1 - p); a row without expected chains of a class has no recall (nan),
    computed without a 0/0."""
    rows = {0: [0.25, 0.75, 1.0, 1.25, 2.0],  # p = 1, 3/4, 1/2, 1/4, 0
            1: [0.75, 2.0, 2.0, 2.0, 2.0],  # sum p = 3/4 < 1: recall_topological 1
            2: [1.25, 0.25, 0.25, 0.25, 0.25],  # sum (1 - p) = 3/4 < 1: recall_trivial 1
            3: [2.0] * 5,  # p = 0 everywhere: no topological recall
            4: [0.25] * 5}  # p = 1 everywhere: no trivial recall
    calls = []

    def chains(W, v_values, n_realizations, seed, row, n_cells):
        calls.append((W, n_realizations, seed, row, n_cells))
        v_n = np.ones((5, n_cells))
        v_n[:, 0] = rows[row]
        return v_n, np.ones((5, n_cells))

    monkeypatch.setattr(ceiling_module, "phase_diagram_hoppings", chains)
    with np.errstate(all="raise"):
        ceiling = ceiling_grid([2.0] * 5, np.arange(5.0), 1, seed=7)
    assert calls == [(2.0, 1, 7, row, 25) for row in range(5)]
    assert ceiling["p"][0] == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])
    assert ceiling["accuracy"][0] == pytest.approx([1.0, 0.75, 0.5, 0.75, 1.0])
    assert ceiling["recall_topological"][:3] == pytest.approx([1.75 / 2.5, 1.0, 4.0 / 4.25])
    assert ceiling["recall_trivial"][:3] == pytest.approx([2.25 / 2.5, 4.0 / 4.25, 1.0])
    assert np.isnan(ceiling["recall_topological"][3]) and ceiling["recall_trivial"][3] == 1.0
    assert np.isnan(ceiling["recall_trivial"][4]) and ceiling["recall_topological"][4] == 1.0
