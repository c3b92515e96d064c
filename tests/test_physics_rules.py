"""Physics rules (ssh_ood.physics.physics_rules, ssh_ood.ood.physics_baselines): exact in the deep limits, invariant
under the symmetries that keep the phase, mid-gap weights checked against a dense diagonalization, thresholds fitted
on clean chains only, grid evaluation checked against a direct recount."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ssh_ood.commands.cli import main
from ssh_ood.ood.generalization import GeneralizationGrid
from ssh_ood.ood.physics_baselines import baselines_report
from ssh_ood.physics.data_generation import (
    generate_dataset,
    open_chain_hamiltonian,
    sample_hoppings,
    winding_number,
)
from ssh_ood.physics.physics_rules import (
    RULE_NAMES,
    clean_chains,
    fit_rule,
    fit_rule_on_chains,
    fit_threshold,
    midgap_sublattice_weights,
    rule_score,
)

BANDS = ((0.0, 0.5), (0.5, 1.5), (1.5, 3.0), (3.0, 5.0))


@pytest.fixture(scope="module")
def rules():
    return [fit_rule(name, n_chains=600) for name in RULE_NAMES]


def _disordered(W: float, n: int = 40, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    return sample_hoppings(np.linspace(0.0, 2.0, n), W, np.random.default_rng(seed))


def test_midgap_weights_match_a_dense_diagonalization():
    v_n, w_n = _disordered(1.0)
    a, b = midgap_sublattice_weights(v_n, w_n)
    energies, states = np.linalg.eigh(open_chain_hamiltonian(v_n, w_n))
    for k in range(v_n.shape[0]):
        pair = np.argsort(np.abs(energies[k]))[:2]  # the two eigenstates closest to zero energy
        density = (states[k][:, pair] ** 2).sum(axis=1)
        np.testing.assert_allclose(a[k], density[0::2], atol=1e-8)
        np.testing.assert_allclose(b[k], density[1::2], atol=1e-8)


@pytest.mark.parametrize("name", RULE_NAMES)
def test_deep_limits_of_clean_chains_are_classified_exactly(rules, name):
    rule = next(r for r in rules if r.name == name)
    assert rule.clean_accuracy == 1.0
    deep_topological = clean_chains(np.linspace(0.0, 0.3, 31))
    deep_trivial = clean_chains(np.linspace(1.7, 2.0, 31))
    assert (rule.predict(*deep_topological) == 1).all() and (winding_number(*deep_topological) == 1).all()
    assert (rule.predict(*deep_trivial) == 0).all() and (winding_number(*deep_trivial) == 0).all()
    # the score itself at the extremes: all mid-gap weight on the two end sites at v = 0
    assert rule_score(name, *clean_chains(np.array([0.0])))[0] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("name", RULE_NAMES)
def test_score_is_invariant_under_the_symmetries_that_keep_the_phase(name):
    v_n, w_n = _disordered(2.0, seed=3)
    score = rule_score(name, v_n, w_n)
    # reflection: the open chain read backwards (v'_m = v_{n-1-m}, w'_m = w_{n-2-m}), closing bond kept
    v_r = v_n[:, ::-1].copy()
    w_r = np.concatenate([w_n[:, -2::-1], w_n[:, -1:]], axis=1)
    np.testing.assert_array_equal(winding_number(v_r, w_r), winding_number(v_n, w_n))
    np.testing.assert_allclose(rule_score(name, v_r, w_r), score, atol=1e-9)
    # hopping signs (a gauge) and a common rescaling of every hopping
    signs = np.random.default_rng(1).choice([-1.0, 1.0], size=(2, *v_n.shape))
    np.testing.assert_allclose(rule_score(name, signs[0] * v_n, signs[1] * w_n), score, atol=1e-9)
    np.testing.assert_allclose(rule_score(name, 2.5 * v_n, 2.5 * w_n), score, atol=1e-9)


def test_fit_threshold_is_the_best_threshold_and_deterministic():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=200)
    labels = (scores + rng.normal(scale=0.7, size=200) > 0).astype(int)
    threshold, accuracy = fit_threshold(scores, labels)
    brute = max(np.mean((scores > t) == labels) for t in np.concatenate([scores, [-np.inf]]))  # every distinct cut
    assert accuracy == pytest.approx(brute) and np.mean((scores > threshold) == labels) == pytest.approx(accuracy)
    # separable data: the midpoint of the gap between the classes (the largest margin)
    t, acc = fit_threshold(np.array([0.0, 0.1, 0.2, 0.9, 1.0]), np.array([0, 0, 0, 1, 1]))
    assert acc == 1.0 and t == pytest.approx(0.55)
    assert fit_threshold(scores, labels) == (threshold, accuracy)


def test_thresholds_are_fitted_on_clean_chains_only():
    v_n, w_n = _disordered(0.5)
    with pytest.raises(ValueError, match="out of distribution"):
        fit_rule_on_chains("sublattice_position", v_n, w_n, 0.5)
    # fit_rule's chains are the clean training set of the generator (W = 0, the training v grid)
    clean = generate_dataset("training", 600, 0.0, seed=11)
    for name in RULE_NAMES:
        assert fit_rule(name, n_chains=600) == fit_rule_on_chains(name, clean["v_n"], clean["w_n"], 0.0)
    with pytest.raises(ValueError, match="unknown physics rule"):
        rule_score("nope", v_n, w_n)


def test_grid_report_matches_a_direct_recount(rules):
    grid = GeneralizationGrid(n_W=6, W_max=5.0, n_realizations=2, n_v=30, v_max=2.0, seed=5)
    report = baselines_report(rules, grid, BANDS)
    for rule in rules:
        per_W = []
        for row in range(grid.n_W):
            v_n, w_n = grid.row_hoppings(row)
            per_W.append(np.mean(rule.predict(v_n, w_n) == winding_number(v_n, w_n)))
        per_W = np.array(per_W)
        entry = report["rules"][rule.name]
        assert entry["overall"] == pytest.approx(per_W.mean())
        for low, high in BANDS:
            rows = (grid.W_values >= low) & ((grid.W_values <= high) if high == 5.0 else (grid.W_values < high))
            assert entry[f"{low:g}-{high:g}"] == pytest.approx(per_W[rows].mean())
    assert all(0.5 < report["ceiling"][key] <= 1.0 for key in report["ceiling"])


def test_cli_writes_the_band_report(tmp_path, capsys):
    out = tmp_path / "rules.json"
    assert main(["physics-rules", "--preset", "smoke", "--seed", "0", "--out", str(out), "--quiet"]) == 0
    report = json.loads(out.read_text())
    assert set(report["rules"]) == set(RULE_NAMES) and report["grid"]["seed"] == 0
    assert "sublattice_position" in capsys.readouterr().out
