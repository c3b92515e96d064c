"""Physics and robustness tests of the SSH data generator (src/ssh_ood/physics/data_generation.py)."""

from __future__ import annotations

import numpy as np
import pytest

from ssh_ood.base.paths import REFERENCE_TARGET_DIAGRAM
from ssh_ood.physics import data_generation as dg
from tests.physics_reference import numerical_winding_number, open_chain_hamiltonian

REFERENCE = REFERENCE_TARGET_DIAGRAM


# ------------------------------------------------------------------ labels
@pytest.mark.parametrize("split,n", [("training", 5000), ("validation", 1000), ("test", 500), ("test", 37)])
def test_clean_labels_are_step_at_v_equal_one(split, n):
    data = dg.generate_dataset(split, n, 0.0, seed=3)
    np.testing.assert_array_equal(data["labels"], (data["v"] < 1).astype(np.int64))


def test_clean_test_set_is_balanced():
    labels = dg.generate_dataset("test", 500, 0.0, seed=0)["labels"]
    assert labels.sum() == 250 and labels.size == 500


def test_closed_form_labels_match_numerical_winding_of_det_u():
    rng = np.random.default_rng(11)
    n_cells = 25
    checked = 0
    for W in np.linspace(0.0, 4.0, 9):
        v = rng.uniform(0.0, 2.0, 30)
        v_n, w_n = dg.sample_hoppings(v, W, rng, n_cells=n_cells)
        labels = dg.winding_number(v_n, w_n)
        for s in range(v.size):
            margin = abs(np.log(np.abs(w_n[s])).sum() - np.log(np.abs(v_n[s])).sum())
            if margin < 1e-3:  # det u(k) passes within rounding of the origin: the integer is ill-defined
                continue
            assert labels[s] == numerical_winding_number(v_n[s], w_n[s]), (W, v[s])
            checked += 1
    assert checked >= 200


def test_zero_intracell_hopping_is_topological_without_warnings():
    v_n = np.full((1, 5), 0.7)
    v_n[0, 2] = 0.0
    w_n = np.full((1, 5), 0.5)  # |w| < |v| elsewhere: only the zero decides
    with np.errstate(all="raise"):
        assert dg.winding_number(v_n, w_n)[0] == 1
    both = w_n.copy()
    both[0, 1] = 0.0
    assert dg.winding_number(v_n, both)[0] == 0


def test_labels_use_the_closing_bond():
    v_n = np.ones((1, 4))
    w_n = np.ones((1, 4)) * 1.1
    assert dg.winding_number(v_n, w_n)[0] == 1
    w_n[0, -1] = 0.1  # only the periodic bond changes: the ring becomes trivial
    assert dg.winding_number(v_n, w_n)[0] == 0


def test_labels_on_the_boundary_do_not_depend_on_the_order_of_the_bonds():
    # prod |w| = prod |v| = 4.5: trivial by definition (strict >). Summed in this order the logarithms differ in
    # the last bit (ln 1.5 + ln 1.5 + ln 2 vs ln 2 + ln 1.5 + ln 1.5), which must not decide the label
    v_n = np.array([[-2.0, -1.5, -1.5]])
    for w_n in ([[-1.5, -1.5, -2.0]], [[-1.5, -2.0, -1.5]], [[-2.0, -1.5, -1.5]]):
        assert dg.winding_number(v_n, np.array(w_n))[0] == 0
        assert dg.winding_number(np.array(w_n), v_n)[0] == 0
    rng = np.random.default_rng(5)
    v_n, w_n = rng.uniform(-2.5, 2.5, (2, 200, 7))
    order = rng.permutation(7)
    np.testing.assert_array_equal(dg.winding_number(v_n, w_n), dg.winding_number(v_n[:, order], w_n[:, order[::-1]]))


# ------------------------------------------------------------------ observables
@pytest.fixture(scope="module")
def disordered_sample():
    rng = np.random.default_rng(5)
    v = rng.uniform(0.0, 2.0, 200)
    v_n, w_n = dg.sample_hoppings(v, 1.5, rng)
    return v_n, w_n, dg.observables(v_n, w_n)


def test_observables_rows_and_columns_sum_to_one(disordered_sample):
    _, _, X = disordered_sample
    assert X.shape == (200, 50, 50)
    np.testing.assert_allclose(X.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(X.sum(axis=2), 1.0, atol=1e-12)
    assert X.min() >= 0.0 and X.max() <= 1.0


def test_observables_equal_dense_diagonalization(disordered_sample):
    v_n, w_n, X = disordered_sample
    compared = 0
    for s in range(0, 200, 7):
        energies, vectors = np.linalg.eigh(open_chain_hamiltonian(v_n[s], w_n[s]))
        if np.diff(energies).min() < 1e-8:  # degenerate levels: eigenvectors not unique
            continue
        np.testing.assert_allclose(X[s], vectors**2, atol=1e-9)
        compared += 1
    assert compared >= 20


def test_chiral_mirror(disordered_sample):
    _, _, X = disordered_sample
    np.testing.assert_allclose(X, X[:, :, ::-1], atol=1e-12)


def test_observables_depend_only_on_absolute_hoppings(disordered_sample):
    v_n, w_n, X = disordered_sample
    signs = np.where(np.random.default_rng(1).random(v_n.shape) < 0.5, -1.0, 1.0)
    np.testing.assert_allclose(dg.observables(v_n * signs, -w_n), X, atol=1e-10)


@pytest.mark.parametrize("v", [0.3, 0.5, 0.7])
def test_clean_edge_state_weight(v):
    v_n = np.full((1, 25), v)
    w_n = np.ones((1, 25))
    X = dg.observables(v_n, w_n)[0]
    for column in (24, 25):
        np.testing.assert_allclose(X[0, column], (1 - v**2) / 2, rtol=1e-6)
        np.testing.assert_allclose(X[49, column], (1 - v**2) / 2, rtol=1e-6)
    # edge states decay as v^(2 m) into the bulk: sites 20-29 (cells 10-14) carry at most ~10 v^20
    assert X[20:30, 24].sum() < 10 * v**20


def test_trivial_clean_chain_has_no_edge_states():
    X = dg.observables(np.full((1, 25), 1.8), np.ones((1, 25)))[0]
    assert X[0, 24] < 0.05 and X[49, 24] < 0.05


@pytest.mark.parametrize("n_cells", [2, 3, 10, 40])
def test_arbitrary_chain_length(n_cells):
    data = dg.generate_dataset("test", 12, 0.5, seed=1, n_cells=n_cells)
    assert data["X"].shape == (12, 2 * n_cells, 2 * n_cells)
    np.testing.assert_allclose(data["X"].sum(axis=1), 1.0, atol=1e-5)
    X = data["X"].astype(np.float64)
    energies, vectors = np.linalg.eigh(open_chain_hamiltonian(data["v_n"][0], data["w_n"][0]))
    if np.diff(energies).min() > 1e-6:
        np.testing.assert_allclose(X[0], vectors**2, atol=1e-6)


# ------------------------------------------------------------------ disorder statistics
def test_disorder_statistics():
    rng = np.random.default_rng(2)
    W = 2.0
    v_n, w_n = dg.sample_hoppings(np.full(4000, 1.0), W, rng)
    r_intra = (v_n - 1.0) / W
    r_inter = (w_n - 1.0) / (W / 2)
    for r in (r_intra, r_inter):
        assert r.min() >= -0.5 and r.max() < 0.5
        assert abs(r.mean()) < 0.01
        assert abs(r.std() - 1 / np.sqrt(12)) < 0.005
    assert abs(v_n.std() / w_n.std() - 2.0) < 0.02
    corr = np.corrcoef(np.column_stack([v_n[:, :3], w_n[:, :3]]).T)
    assert np.abs(corr - np.eye(6)).max() < 0.06


def test_clean_hoppings_are_exact():
    v_n, w_n = dg.sample_hoppings(np.array([0.25, 1.5]), 0.0, np.random.default_rng(0), n_cells=4)
    np.testing.assert_array_equal(v_n, [[0.25] * 4, [1.5] * 4])
    np.testing.assert_array_equal(w_n, np.ones((2, 4)))


# ------------------------------------------------------------------ phase boundary and target diagram
def test_critical_v_matches_published_values():
    W = np.array([0.0, 0.5, 1.0, 2.0, 3.0, 3.5, 3.9, 4.0, 4.5])
    expected = [1.0, 1.0079, 1.0321, 1.1423, 1.3332, 1.2087, 0.7147, 0.0, 0.0]
    np.testing.assert_allclose(dg.critical_v(W), expected, atol=1e-4)


def test_critical_v_separates_mean_log_hoppings_by_monte_carlo():
    rng = np.random.default_rng(9)
    for W in (1.0, 3.0):
        vc = float(dg.critical_v(W))
        r = rng.uniform(-0.5, 0.5, 400_000)
        mean_log_w = np.log(np.abs(1 + W / 2 * r)).mean()
        assert np.log(np.abs(vc - 0.05 + W * r)).mean() < mean_log_w < np.log(np.abs(vc + 0.05 + W * r)).mean()


def test_regenerated_target_diagram_agrees_with_published_one():
    published = np.load(REFERENCE, allow_pickle=False)
    assert published.shape == (501, 200)
    ours = dg.target_diagram(np.linspace(0, 5, 501), np.linspace(0, 2, 200), 25, seed=0)
    diff = ours - published
    pooled = (ours + published) / 2
    variance = 2 * pooled * (1 - pooled) / 25
    mixed = variance > 0
    chi2 = (diff[mixed] ** 2 / variance[mixed]).mean()
    assert np.abs(diff).mean() < 0.06
    assert 0.5 < chi2 < 1.5, chi2
    # where both are certain they must agree (deep in a phase)
    assert np.abs(diff[~mixed]).max() == 0.0
    # the phase boundary: the topological fraction crosses 1/2 near v_c(W) for moderate disorder
    v_values = np.linspace(0, 2, 200)
    for W in (0.5, 1.0, 2.0):
        row = ours[int(round(W * 100))]
        crossing = v_values[np.argmax(row < 0.5)]
        assert abs(crossing - float(dg.critical_v(W))) < 0.15


# ------------------------------------------------------------------ seeds and reproducibility
def test_same_seed_same_bytes_different_seed_different_data():
    a = dg.generate_dataset("test", 50, 1.0, seed=7)
    b = dg.generate_dataset("test", 50, 1.0, seed=7)
    c = dg.generate_dataset("test", 50, 1.0, seed=8)
    assert a["X"].tobytes() == b["X"].tobytes()
    np.testing.assert_array_equal(a["labels"], b["labels"])
    assert not np.array_equal(a["X"], c["X"])


def test_splits_and_disorders_draw_independent_streams():
    a = dg.generate_dataset("test", 50, 1.0, seed=7)
    b = dg.generate_dataset("validation", 50, 1.0, seed=7)
    c = dg.generate_dataset("test", 50, 1.0, seed=7, realization=1)
    assert not np.allclose(a["v_n"] - a["v"][:, None], b["v_n"] - b["v"][:, None])
    assert not np.allclose(a["v_n"], c["v_n"])


def test_v_grids():
    train = dg.v_grid("training", 10)
    np.testing.assert_allclose(train, np.r_[np.linspace(0, 0.8, 5), np.linspace(1.2, 2.0, 5)])
    np.testing.assert_allclose(dg.v_grid("validation", 4), [0.001, 0.801, 1.201, 2.001])
    np.testing.assert_allclose(dg.v_grid("test", 3), [0.002, 1.002, 2.002])


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"W": -0.1}, "W"),
        ({"W": float("nan")}, "W"),
        ({"W": float("inf")}, "W"),
        ({"n_cells": 1}, "n_cells"),
        ({"n_cells": 2.5}, "n_cells"),
        ({"split": "train"}, "split"),
        ({"n_samples": 0}, "n_samples"),
        ({"seed": -1}, "seed"),
    ],
)
def test_generate_dataset_rejects_bad_input(kwargs, name):
    params = {"split": "test", "n_samples": 10, "W": 0.5, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=name):
        dg.generate_dataset(**params)


def test_hopping_functions_reject_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="v must be finite"):
        dg.sample_hoppings(np.array([0.5, np.nan]), 0.1, rng)
    with pytest.raises(ValueError, match="rng"):
        dg.sample_hoppings(0.5, 0.1, 42)
    with pytest.raises(ValueError, match="shape"):
        dg.observables(np.ones((3, 5)), np.ones((3, 4)))
    with pytest.raises(ValueError, match="finite"):
        dg.winding_number(np.full((1, 5), np.inf), np.ones((1, 5)))
    with pytest.raises(ValueError, match="W"):
        dg.critical_v(-1.0)
