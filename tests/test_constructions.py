"""The training constructions (ssh_ood.physics.constructions): what each draws, from which law, and what it refuses.

Fast (no training, no data files): these are the tests ``make mutation`` runs for the module.
"""

from __future__ import annotations

import numpy as np
import pytest

from ssh_ood.physics.constructions import (
    EDGE_COLUMN_HALF_WIDTH,
    EDGE_ROWS,
    bond_defect_dataset,
    bond_defect_hoppings,
    localized_column_edits,
    transition_window_hoppings,
)
from ssh_ood.physics.data_generation import observables, v_grid, winding_number


def _reference_defects(v, seed, n_cells, max_defects, max_factor):
    """Chain by chain, from the documented draws in their order: k ~ U{1..max_defects} per chain, a uniformly
    random order of the 2 n_cells - 1 open bonds (interleaved v_0, w_0, v_1, ...) whose first k are rescaled,
    the factors f ~ U(0, max_factor) (the first k of each chain's max_defects)."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, max_defects + 1, size=v.size)
    keys = rng.random((v.size, 2 * n_cells - 1))
    factors = rng.uniform(0.0, max_factor, size=(v.size, max_defects))
    v_n, w_n = np.empty((v.size, n_cells)), np.empty((v.size, n_cells))
    for s in range(v.size):
        bonds = [v[s] if b % 2 == 0 else 1.0 for b in range(2 * n_cells)]
        for j, bond in enumerate(np.argsort(keys[s])[: counts[s]]):
            bonds[bond] *= factors[s, j]
        v_n[s], w_n[s] = bonds[0::2], bonds[1::2]
    return v_n, w_n


@pytest.mark.parametrize(("n_cells", "max_defects", "max_factor"), [(25, 3, 2.0), (6, 1, 0.5), (4, 7, 3.0)])
def test_bond_defects_rescale_a_few_open_bonds_of_a_clean_chain(n_cells, max_defects, max_factor):
    v = np.linspace(0.1, 2.0, 3000)
    v_n, w_n = bond_defect_hoppings(v, np.random.default_rng(8), n_cells, max_defects, max_factor)
    assert v_n.dtype == w_n.dtype == np.float64 and v_n.shape == w_n.shape == (v.size, n_cells)
    expected_v, expected_w = _reference_defects(v, 8, n_cells, max_defects, max_factor)
    np.testing.assert_allclose(v_n, expected_v, rtol=1e-15, atol=0)
    np.testing.assert_allclose(w_n, expected_w, rtol=1e-15, atol=0)
    # read back from the hoppings alone: the closing bond is never touched, every open bond is hit sometimes,
    # each chain has 1 to max_defects defects, every count occurs, and the factors fill [0, max_factor)
    factors = np.concatenate([v_n / v[:, None], w_n], axis=1)
    defect = ~np.isclose(factors, 1.0, rtol=0, atol=1e-12)
    assert np.all(w_n[:, -1] == 1.0)
    assert defect[:, : 2 * n_cells - 1].any(axis=0).all()
    assert np.array_equal(np.unique(defect.sum(axis=1)), np.arange(1, min(max_defects, 2 * n_cells - 1) + 1))
    assert factors[defect].min() < 0.01 * max_factor and 0.99 * max_factor < factors[defect].max() < max_factor


def test_bond_defects_by_default_are_one_to_three_bonds_times_u_0_2_in_25_cells():
    # the recipe's construction (ssh_ood.nets.recipes): 1-3 open bonds multiplied by f ~ U(0, 2)
    v = np.linspace(0.1, 2.0, 3000)
    chains = {"hoppings": bond_defect_hoppings(v, np.random.default_rng(5))}
    data = bond_defect_dataset(3000, np.random.default_rng(5))
    chains["dataset"] = (data["v_n"], data["w_n"])
    for name, (v_n, w_n) in chains.items():
        assert v_n.shape == (3000, 25), name
        v_mean = v if name == "hoppings" else data["v"]
        seen = v_mean > 0  # a v = 0 chain: its intracell factors cannot be read
        factors = np.concatenate([v_n[seen] / v_mean[seen, None], w_n[seen]], axis=1)
        defect = ~np.isclose(factors, 1.0, rtol=0, atol=1e-12)
        assert defect.sum(axis=1).max() == 3 and defect.sum(axis=1).min() >= 1, name
        assert 1.98 < factors[defect].max() < 2.0, name


def test_bond_defects_refuse_what_they_cannot_build():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"v must be a finite 1-D array, got shape \(2, 2\)"):
        bond_defect_hoppings(np.ones((2, 2)), rng)
    with pytest.raises(ValueError, match="v must be a finite 1-D array"):
        bond_defect_hoppings(np.array([1.0, np.nan]), rng)
    for bad in (0, 50):  # 2 n_cells - 1 = 49 open bonds
        with pytest.raises(ValueError, match=r"max_defects must be an integer in \[1, 49\]"):
            bond_defect_hoppings(np.ones(3), rng, max_defects=bad)
    assert bond_defect_hoppings(np.ones(3), rng, max_defects=49)[0].shape == (3, 25)  # every open bond
    for bad in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="max_factor must be positive"):
            bond_defect_hoppings(np.ones(3), rng, max_factor=bad)
    with pytest.raises(ValueError, match="n_cells"):
        bond_defect_hoppings(np.ones(3), rng, n_cells=1)
    v_n, w_n = bond_defect_hoppings(0.5, rng, n_cells=3)  # one v: one chain
    assert v_n.shape == w_n.shape == (1, 3)


def test_bond_defect_dataset_is_labelled_by_the_exact_winding_of_its_chains():
    data = bond_defect_dataset(40, np.random.default_rng(3), n_cells=6, max_defects=2, max_factor=1.5)
    assert set(data) == {"X", "labels", "v", "v_n", "w_n"}
    np.testing.assert_array_equal(data["v"], v_grid("training", 40))
    v_n, w_n = bond_defect_hoppings(v_grid("training", 40), np.random.default_rng(3), 6, 2, 1.5)
    np.testing.assert_array_equal(data["v_n"], v_n)
    np.testing.assert_array_equal(data["w_n"], w_n)
    assert data["X"].dtype == np.float32 and data["X"].shape == (40, 12, 12)
    np.testing.assert_array_equal(data["X"], observables(v_n, w_n).astype(np.float32))
    np.testing.assert_array_equal(data["labels"], winding_number(v_n, w_n))
    # the defaults: 25 cells
    assert bond_defect_dataset(4, np.random.default_rng(3))["X"].shape == (4, 50, 50)


def test_transition_window_chains_are_clean_and_span_the_window():
    v, v_n, w_n = transition_window_hoppings(41)
    np.testing.assert_array_equal(v, np.linspace(0.8, 1.2, 41))
    assert v_n.shape == w_n.shape == (41, 25) and np.all(v_n == v[:, None]) and np.all(w_n == 1.0)
    np.testing.assert_array_equal(winding_number(v_n, w_n), (v < 1).astype(int))  # v = 1 itself trivial
    v, v_n, w_n = transition_window_hoppings(np.int64(3), n_cells=4, window=(0, 2))  # low = 0 is allowed
    np.testing.assert_array_equal(v, [0.0, 1.0, 2.0])
    assert v_n.shape == w_n.shape == (3, 4)
    v, v_n, w_n = transition_window_hoppings(1)  # one chain is a positive number of chains: v = low
    assert np.array_equal(v, [0.8]) and v_n.shape == (1, 25)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="n_samples must be a positive integer"):
            transition_window_hoppings(bad)
    for bad in ((1.2, 0.8), (1.0, 1.0), (-0.1, 1.0), (0.8, np.inf), (np.nan, 1.0)):
        with pytest.raises(ValueError, match=r"window must be \(low, high\) with 0 <= low < high"):
            transition_window_hoppings(5, window=bad)
    with pytest.raises(ValueError, match="n_cells"):
        transition_window_hoppings(5, n_cells=1)


def _read_edit(original: np.ndarray, edited: np.ndarray):
    """(column i < M/2, centre, decay ratio, density) of one edited image, read off the image alone."""
    m = original.shape[0]
    changed = np.flatnonzero((edited != original).any(axis=0))
    assert changed.size == 2 and changed[0] + changed[1] == m - 1  # one chiral mirror pair
    i = changed[0]
    density = edited[:, i].astype(np.float64)
    np.testing.assert_array_equal(edited[:, m - 1 - i], edited[:, i])
    centre = int(np.argmax(density))
    ratio = density[centre + 1] / density[centre] if centre < m - 1 else density[centre - 1] / density[centre]
    return i, centre, ratio, density


def test_penalty_edits_are_localized_densities_in_one_mirror_pair_outside_the_edge_states():
    m, n = 50, 3000
    X = np.random.default_rng(0).uniform(0.0, 0.1, (n, m, m))
    before = X.copy()
    edited = localized_column_edits(X, np.random.default_rng(2))
    np.testing.assert_array_equal(X, before)  # the inputs are not edited in place
    columns, centres, ratios = np.empty(n, int), np.empty(n, int), np.empty(n)
    for s in range(n):
        columns[s], centres[s], ratios[s], density = _read_edit(X[s], edited[s])
        # r^|j - c| normalized to 1
        expected = ratios[s] ** np.abs(np.arange(m) - centres[s])
        np.testing.assert_allclose(density, expected / expected.sum(), rtol=1e-9)
    # the laws: i ~ U{0..M/2-1}, r ~ U(0.3, 0.8), c ~ U{0..M-1}, in the mid-gap columns c ~ U{8..M-9}
    assert set(columns) == set(range(m // 2))
    assert 0.3 <= ratios.min() < 0.31 and 0.79 < ratios.max() < 0.8
    in_gap = columns >= m // 2 - EDGE_COLUMN_HALF_WIDTH
    assert set(centres[~in_gap]) == set(range(m))
    in_end_rows = np.minimum(centres, m - 1 - centres) < EDGE_ROWS
    assert all(in_end_rows[columns == i].any() for i in range(m // 2 - EDGE_COLUMN_HALF_WIDTH))  # each bulk column
    assert set(centres[in_gap]) == set(range(EDGE_ROWS, m - EDGE_ROWS))
    assert EDGE_COLUMN_HALF_WIDTH == 5 and set(columns[in_gap]) == {20, 21, 22, 23, 24}
    # another decay range, and the smallest image with bulk rows (18 sites: rows 8 and 9)
    edited = localized_column_edits(np.zeros((200, 18, 18)), np.random.default_rng(1), decay_range=(0.5, 0.5))
    for s in range(200):
        i, centre, ratio, _ = _read_edit(np.zeros((18, 18)), edited[s])
        assert ratio == pytest.approx(0.5)
        if i >= 9 - EDGE_COLUMN_HALF_WIDTH:
            assert centre in (8, 9)


def test_penalty_edits_refuse_images_they_cannot_edit():
    rng = np.random.default_rng(0)
    for shape in ((50, 50), (2, 50, 48), (2, 49, 49)):
        with pytest.raises(ValueError, match=r"X must have shape \(N, M, M\) with M even, got \("):
            localized_column_edits(np.zeros(shape), rng)
    with pytest.raises(ValueError, match="images of 16 sites have no bulk rows outside the 8 end rows"):
        localized_column_edits(np.zeros((2, 16, 16)), rng)
