"""The generator's documented rules one by one (ssh_ood.physics.data_generation): which stream each set is drawn
from, in which order, what each function returns and what it refuses.

Fast (small sets): with tests/test_data_generation.py (the physics), these are the tests ``make mutation`` runs
for the module. References are the documented definitions (the module's docstrings) or independent physics:
the dense Hamiltonian of tests/physics_reference.py and numerical integration.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np
import pytest
from physics_reference import open_chain_hamiltonian as reference_hamiltonian
from scipy import integrate

from ssh_ood.physics import data_generation as dg


def reference_rng(seed: int, *key: int) -> np.random.Generator:
    """The documented stream: ``numpy.random.SeedSequence(seed, spawn_key=key)``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def reference_hoppings(v, W, rng, n_cells, w=1.0):
    """The documented draws: r ~ U(-1/2, 1/2) first, then r', each (N, n_cells); v_m = v + W r, w_m = w + W/2 r'."""
    v = np.atleast_1d(np.asarray(v, dtype=np.float64))
    r = rng.uniform(-0.5, 0.5, size=(v.size, n_cells))
    r_prime = rng.uniform(-0.5, 0.5, size=(v.size, n_cells))
    return v[:, None] + W * r, w + W / 2 * r_prime


# ---------------------------------------------------------------------------------------------- hoppings
@pytest.mark.parametrize(("v", "W", "n_cells", "w"), [(0.5, 1.0, 25, 1.0), (np.linspace(0, 2, 7), 2.5, 3, 0.8),
                                                      ([1.5, 0.2], 0.0, 2, 1.3)])
def test_hoppings_are_the_documented_draws_in_their_order(v, W, n_cells, w):
    v_n, w_n = dg.sample_hoppings(v, W, np.random.default_rng(4), n_cells=n_cells, w=w)
    expected_v, expected_w = reference_hoppings(v, W, np.random.default_rng(4), n_cells, w)
    assert v_n.dtype == w_n.dtype == np.float64 and v_n.shape == w_n.shape == expected_v.shape
    np.testing.assert_allclose(v_n, expected_v, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(w_n, expected_w, rtol=1e-15, atol=1e-15)


def test_hoppings_by_default_are_25_cells_with_unit_intercell_mean():
    v_n, w_n = dg.sample_hoppings(np.array([0.5, 1.5], dtype=np.float32), 1.0, np.random.default_rng(1))
    expected_v, expected_w = reference_hoppings([0.5, 1.5], 1.0, np.random.default_rng(1), 25, 1.0)
    np.testing.assert_allclose(v_n, expected_v, rtol=1e-15)
    np.testing.assert_allclose(w_n, expected_w, rtol=1e-15)
    v_n, w_n = dg.sample_hoppings(0.7, 1, np.random.default_rng(1), w=2)  # integers are numbers too
    assert v_n.shape == (1, 25) and abs(w_n.mean() - 2) < 0.1


def test_hoppings_refuse_what_they_cannot_draw_from():
    rng = np.random.default_rng(0)
    for v in (np.zeros((2, 2)), np.array([])):
        with pytest.raises(ValueError, match=re.escape(f"v must be a scalar or a non-empty 1-D array, got shape {v.shape}")):
            dg.sample_hoppings(v, 0.1, rng)
    for v in (np.inf, [0.5, -np.inf]):
        with pytest.raises(ValueError, match="^v must be finite$"):
            dg.sample_hoppings(v, 0.1, rng)
    for w in (np.nan, np.inf):
        with pytest.raises(ValueError, match=f"^w must be finite, got {w}$"):
            dg.sample_hoppings(0.5, 0.1, rng, w=w)
    for bad in (42, np.random.RandomState(0)):
        with pytest.raises(ValueError, match=f"^rng must be a numpy.random.Generator, got {type(bad).__name__}$"):
            dg.sample_hoppings(0.5, 0.1, bad)
    with pytest.raises(ValueError, match=re.escape("n_cells must be an integer >= 2, got 1: a chain has 2*n_cells sites")):
        dg.sample_hoppings(0.5, 0.1, rng, n_cells=1)
    assert dg.sample_hoppings(0.5, 0.1, rng, n_cells=2)[0].shape == (1, 2)


@pytest.mark.parametrize("W", [-0.1, -1e-300, float("nan"), float("inf"), float("-inf")])
def test_a_disorder_strength_must_be_finite_and_not_negative(W):
    with pytest.raises(ValueError, match=re.escape(f"W (disorder strength) must be finite and >= 0, got {W}") + "$"):
        dg.sample_hoppings(0.5, W, np.random.default_rng(0))
    with pytest.raises(ValueError, match=re.escape(f"W (disorder strength) must be finite and >= 0, got {W}") + "$"):
        dg.disorder_key(W)


@pytest.mark.parametrize("W", ["strong", None, [1.0, 2.0]])
def test_a_disorder_strength_must_be_a_number(W):
    with pytest.raises(ValueError, match=re.escape(f"W (disorder strength) must be a real number, got {W!r}") + "$"):
        dg.generate_dataset("test", 4, W, seed=0)


def test_a_disorder_strength_is_read_as_a_float():
    data = dg.generate_dataset("test", 4, np.float32(0.5), seed=0)
    assert type(data["W"]) is float and data["W"] == 0.5
    assert dg.generate_dataset("test", 4, "0.5", seed=0)["W"] == 0.5
    assert dg.generate_dataset("test", 4, 0, seed=0)["W"] == 0.0  # clean is valid


def test_the_open_chain_is_the_site_basis_hamiltonian():
    rng = np.random.default_rng(3)
    v_n, w_n = rng.uniform(-2, 2, (2, 4, 6))
    h = dg.open_chain_hamiltonian(v_n, w_n)
    assert h.shape == (4, 12, 12)
    for s in range(4):
        np.testing.assert_array_equal(h[s], reference_hamiltonian(v_n[s], w_n[s]))
    np.testing.assert_array_equal(dg.open_chain_hamiltonian(v_n[0], w_n[0]), h[:1])  # one chain, 1-D


def test_hoppings_are_checked_as_pairs_of_finite_n_by_cells_arrays():
    shape_error = r"v_n and w_n must both have shape \(N, n_cells\) \(w_n\[:, -1\] = closing bond\); got "
    for v_n, w_n in ((np.ones((3, 5)), np.ones((3, 4))), (np.ones((2, 3, 5)), np.ones((2, 3, 5))),
                     (np.ones(5), np.ones((2, 5)))):
        expected = f"{np.atleast_2d(v_n).shape} and {np.atleast_2d(w_n).shape}"
        for function in (dg.observables, dg.winding_number, dg.open_chain_hamiltonian):
            with pytest.raises(ValueError, match=shape_error + re.escape(expected) + "$"):
                function(v_n, w_n)
    with pytest.raises(ValueError, match=re.escape("n_cells must be an integer >= 2, got 1")):
        dg.winding_number(np.ones((3, 1)), np.ones((3, 1)))
    for v_n, w_n in ((np.full((1, 3), np.nan), np.ones((1, 3))), (np.ones((1, 3)), [[1.0, np.inf, 1.0]])):
        for function in (dg.observables, dg.winding_number, dg.open_chain_hamiltonian):
            with pytest.raises(ValueError, match="^v_n and w_n must be finite$"):
                function(v_n, w_n)
    h = dg.open_chain_hamiltonian([[1, 2]], [[3, 4]])  # integer hoppings are read as floats
    assert h.dtype == np.float64 and h[0, 1, 2] == 3.0


# ---------------------------------------------------------------------------------------------- observables
def test_observables_of_non_contiguous_hoppings_are_those_of_their_copies():
    rng = np.random.default_rng(8)
    v_n, w_n = rng.uniform(0.2, 2, (2, 6, 12))
    X = dg.observables(v_n[:, ::2], w_n[:, ::2])
    np.testing.assert_allclose(X, dg.observables(v_n[:, ::2].copy(), w_n[:, ::2].copy()), rtol=0, atol=1e-15)
    _, states = np.linalg.eigh(reference_hamiltonian(v_n[0, ::2], w_n[0, ::2]))
    np.testing.assert_allclose(X[0], states**2, atol=1e-10)  # distinct levels: the densities are unique


# ---------------------------------------------------------------------------------------------- labels
def test_labels_compare_the_products_of_the_absolute_hoppings():
    labels = dg.winding_number([[0.5, 0.5]], [[1.0, 1.0]])
    assert labels.dtype == np.int64 and labels.tolist() == [1]
    # |v_0 v_1| = 0.8 < 1 = |w_0 w_1|: topological; 1.2 > 1: trivial; signs do not matter
    assert dg.winding_number([[-2.0, 0.4], [-2.0, 0.6]], [[1.0, 1.0], [-1.0, 1.0]]).tolist() == [1, 0]


def test_single_precision_hoppings_are_labelled_by_their_exact_values():
    # rings whose w are the v reversed with one bond a float32 step larger: prod |w| > prod |v| exactly (the
    # products of the stored values, as fractions), closer than single-precision logarithms can tell apart
    rng = np.random.default_rng(0)
    v_n = rng.uniform(0.5, 2.0, (300, 3)).astype(np.float32)
    w_n = v_n[:, ::-1].copy()
    w_n[:, 0] = np.nextafter(w_n[:, 0], np.float32(10))
    exact = [int(np.prod([Fraction(float(x)) for x in w]) > np.prod([Fraction(float(x)) for x in v]))
             for v, w in zip(v_n, w_n, strict=True)]
    assert exact == [1] * 300
    np.testing.assert_array_equal(dg.winding_number(v_n, w_n), exact)
    np.testing.assert_array_equal(dg.winding_number(w_n, v_n), np.zeros(300))


# ---------------------------------------------------------------------------------------------- phase boundary
def numerical_mean_log(a: float, spread: float) -> float:
    """E ln|a + spread * omega|, omega ~ U(-1/2, 1/2), by adaptive quadrature (the log singularity named)."""
    if spread == 0:
        return math.log(abs(a))
    lo, hi = a - spread / 2, a + spread / 2
    points = [0.0] if lo < 0 < hi else None
    value, _ = integrate.quad(lambda x: math.log(abs(x)) if x != 0 else 0.0, lo, hi, points=points, limit=200)
    return value / spread


@pytest.mark.parametrize(("a", "spread"), [(1.0, 0.0), (0.3, 0.0), (-2.0, 0.0), (1.0, 1.0), (1.0, 2.0), (1.0, 3.0),
                                           (0.5, 4.0), (0.0, 3.0), (-0.7, 0.5), (2.0, 4.0), (1.2, 0.2), (0.25, 0.5),
                                           (-1.0, 2.0), (-0.25, 0.5)])
def test_the_mean_log_hopping_is_the_integral_over_the_box(a, spread):
    assert float(dg._mean_log_abs(a, spread)) == pytest.approx(numerical_mean_log(a, spread), abs=1e-9)


def test_the_mean_log_hopping_works_elementwise_on_integer_arrays():
    a, spread = np.array([1, 0, 2, 3, -1]), np.array([2, 2, 0, 6, 2])  # with both ends of the box at 0
    expected = [numerical_mean_log(x, s) for x, s in zip(a, spread, strict=True)]
    with np.errstate(all="raise"):
        np.testing.assert_allclose(dg._mean_log_abs(a, spread), expected, atol=1e-9)


def test_the_critical_hopping_separates_the_mean_logs():
    # v_c(W) solves E ln|v_c + W r| = E ln|1 + W/2 r'| (quadrature), and is 0 from W = 4 on
    for W in (0.0, 0.3, 1.0, 2.0, 3.0, 3.9):
        vc = float(dg.critical_v(W))
        assert numerical_mean_log(vc, W) == pytest.approx(numerical_mean_log(1.0, W / 2), abs=1e-10)
    assert numerical_mean_log(0.0, 4.0) == pytest.approx(numerical_mean_log(1.0, 2.0), abs=1e-12)  # W = 4: v_c = 0
    np.testing.assert_array_equal(dg.critical_v([4.0, 4.5, 9.0]), [0.0, 0.0, 0.0])
    assert dg.critical_v(3.99) > 0.1


def test_the_critical_hopping_has_the_shape_of_its_input():
    assert dg.critical_v(2.0).shape == () and dg.critical_v(2).dtype == np.float64
    assert dg.critical_v([[0.0, 1.0], [2.0, 5.0]]).shape == (2, 2)
    # single-precision disorder strengths (W = 0.5, 2, 3.5 are exact in float32) are solved in double precision
    W = np.array([0.5, 2.0, 3.5])
    v_c = dg.critical_v(W.astype(np.float32))
    assert v_c.dtype == np.float64
    np.testing.assert_allclose(v_c, dg.critical_v(W), rtol=1e-14)
    for W in (-0.5, np.nan, np.inf, [1.0, -1.0]):
        with pytest.raises(ValueError, match=re.escape("W (disorder strength) must be finite and >= 0") + "$"):
            dg.critical_v(W)


# ---------------------------------------------------------------------------------------------- streams
@pytest.mark.parametrize("key", [(), (0,), (2, 500000, 3), (3, 7)])
def test_a_stream_is_the_seed_sequence_of_its_key(key):
    np.testing.assert_array_equal(dg.disorder_rng(11, *key).random(5), reference_rng(11, *key).random(5))
    np.testing.assert_array_equal(dg.disorder_rng(np.int64(11), *[np.int64(k) for k in key]).random(3),
                                  reference_rng(11, *key).random(3))


def test_a_stream_needs_a_non_negative_integer_seed():
    for seed in (-1, 1.5, "0"):
        with pytest.raises(ValueError, match=re.escape(f"seed must be an integer >= 0, got {seed!r}")):
            dg.disorder_rng(seed)
    dg.disorder_rng(0)


def test_the_disorder_key_is_w_in_millionths():
    assert [dg.disorder_key(W) for W in (0, 0.5, 2.0, 1.2345674, 1.2345676, 5)] == [0, 500_000, 2_000_000, 1_234_567,
                                                                                     1_234_568, 5_000_000]
    assert type(dg.disorder_key(0.5)) is int


# ---------------------------------------------------------------------------------------------- grids and sets
def test_v_grids_for_odd_and_minimal_sizes():
    np.testing.assert_allclose(dg.v_grid("training", 5), [0.0, 0.8, 1.2, 1.6, 2.0])  # the trivial half gets one more
    np.testing.assert_allclose(dg.v_grid("validation", 3), [0.001, 1.201, 2.001])
    np.testing.assert_allclose(dg.v_grid("training", 2), [0.0, 1.2])
    np.testing.assert_allclose(dg.v_grid("test", 1), [0.002])
    for split in ("training", "validation"):
        with pytest.raises(ValueError, match=re.escape(f"n_samples must be >= 2 for the {split} split (two v windows), "
                                                       "got 1") + "$"):
            dg.v_grid(split, 1)
    with pytest.raises(ValueError, match=re.escape("split must be one of ('training', 'validation', 'test'), got 'train'")):
        dg.v_grid("train", 10)
    with pytest.raises(ValueError, match=re.escape("n_samples must be an integer >= 1, got 0")):
        dg.v_grid("test", 0)


@pytest.mark.parametrize(("split", "code"), [("training", 0), ("validation", 1), ("test", 2)])
def test_a_dataset_is_drawn_from_the_stream_of_its_split_disorder_and_realization(split, code):
    data = dg.generate_dataset(split, 6, 1.5, seed=9, n_cells=4, realization=2)
    v = dg.v_grid(split, 6)
    v_n, w_n = reference_hoppings(v, 1.5, reference_rng(9, code, 1_500_000, 2), 4)
    np.testing.assert_array_equal(data["v"], v)
    np.testing.assert_allclose(data["v_n"], v_n, rtol=1e-15)
    np.testing.assert_allclose(data["w_n"], w_n, rtol=1e-15)
    assert data["X"].dtype == np.float32 and data["X"].shape == (6, 8, 8)
    np.testing.assert_array_equal(data["X"], dg.observables(v_n, w_n).astype(np.float32))
    labels = (np.log(np.abs(w_n)).sum(axis=1) > np.log(np.abs(v_n)).sum(axis=1)).astype(np.int64)
    assert data["labels"].dtype == np.int64
    np.testing.assert_array_equal(data["labels"], labels)
    assert {key: data[key] for key in ("W", "split", "seed", "n_cells", "realization")} == {
        "W": 1.5, "split": split, "seed": 9, "n_cells": 4, "realization": 2}
    assert set(data) == {"X", "labels", "v", "W", "v_n", "w_n", "split", "seed", "n_cells", "realization"}


def test_a_dataset_by_default_is_25_cells_and_realization_0():
    data = dg.generate_dataset("test", 2, 0.5, seed=np.int64(1))
    v_n, _ = reference_hoppings(dg.v_grid("test", 2), 0.5, reference_rng(1, 2, 500_000, 0), 25)
    np.testing.assert_allclose(data["v_n"], v_n, rtol=1e-15)
    assert data["n_cells"] == 25 and data["realization"] == 0 and type(data["seed"]) is int
    assert type(dg.generate_dataset("test", 2, 0.5, seed=1, realization=np.int64(3))["realization"]) is int


def test_a_phase_diagram_row_is_realization_major_from_its_own_stream():
    v_values = [0.5, 1.0, 1.5]
    v_n, w_n = dg.phase_diagram_hoppings(2.0, v_values, 4, seed=5, row=7, n_cells=3)
    expected_v, expected_w = reference_hoppings(np.tile(v_values, 4), 2.0, reference_rng(5, 3, 7), 3)
    np.testing.assert_allclose(v_n, expected_v, rtol=1e-15)
    np.testing.assert_allclose(w_n, expected_w, rtol=1e-15)
    assert dg.phase_diagram_hoppings(2.0, v_values, 1, seed=5, row=7)[0].shape == (3, 25)
    with pytest.raises(ValueError, match=re.escape("n_realizations must be an integer >= 1, got 0")):
        dg.phase_diagram_hoppings(2.0, v_values, 0, seed=5, row=7)


def test_the_target_diagram_averages_the_labels_of_each_rows_chains():
    W_values, v_values = [0.0, 1.0, 3.0], [0.2, 0.9, 1.1, 1.8]
    diagram = dg.target_diagram(W_values, v_values, 5, seed=2, n_cells=6)
    assert diagram.shape == (3, 4) and diagram.dtype == np.float64
    for row, W in enumerate(W_values):
        v_n, w_n = reference_hoppings(np.tile(v_values, 5), W, reference_rng(2, 3, row), 6)
        labels = np.log(np.abs(w_n)).sum(axis=1) > np.log(np.abs(v_n)).sum(axis=1)
        np.testing.assert_allclose(diagram[row], labels.reshape(5, 4).mean(axis=0), rtol=0, atol=1e-15)
    np.testing.assert_array_equal(diagram[0], [1.0, 1.0, 0.0, 0.0])  # clean: 1 iff v < 1
    single = dg.target_diagram(1.0, 0.9, 3, seed=2, n_cells=6)  # scalars are a 1 x 1 grid, row 0
    v_n, w_n = reference_hoppings(np.full(3, 0.9), 1.0, reference_rng(2, 3, 0), 6)
    labels = np.log(np.abs(w_n)).sum(axis=1) > np.log(np.abs(v_n)).sum(axis=1)
    assert single.shape == (1, 1) and single[0, 0] == pytest.approx(labels.mean(), abs=1e-15)


def test_a_dataset_is_described_in_one_line():
    data = {"split": "test", "W": np.float32(0.5), "labels": [1, 0, 1, 1]}
    assert dg.describe(data) == "test W=0.5: 4 samples, 3 topological / 1 trivial"
    assert dg.describe({"W": 2, "labels": np.array([0, 0])}) == "? W=2: 2 samples, 0 topological / 2 trivial"
