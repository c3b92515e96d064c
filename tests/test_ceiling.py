"""The accuracy ceiling (ssh_ood.physics.ceiling) against Monte Carlo over the closing bond."""

from __future__ import annotations

import numpy as np
import pytest

from ssh_ood.physics.ceiling import band_means, bayes_accuracy, ceiling_grid, label_probability
from ssh_ood.physics.data_generation import sample_hoppings, winding_number


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
