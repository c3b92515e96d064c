"""The winding number where the closing bond decides the label.

With margin S = sum_{m < n-1} ln|w_m| - sum_m ln|v_m| of the open chain's bonds, the ring is topological iff
S + ln|w_{n-1}| > 0. Chains drawn from the generator rarely sit where the closing bond w_{n-1} flips the sign
(|ln|w_{n-1}|| > |S| with the opposite sign), yet a label that ignored the closing bond, used it twice or used
the wrong one would go wrong exactly there. These chains are built on purpose: the open bonds are drawn, then
w_{n-1} = +-exp(-S + s delta) puts the total margin at s delta (s = +-1, delta in [0.05, 1]), so the closing bond
alone decides the label. The exact closed form (``winding_number``) is checked against the phase winding of
det u(k) on a k grid (tests/physics_reference.py, an independent construction) and against the slow numerical
integral of ``ssh_ood.physics.winding_number``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssh_ood.physics.ceiling import known_log_ratio
from ssh_ood.physics.data_generation import winding_number
from ssh_ood.physics.winding_number import chiral_basis, chiral_block, ring_hamiltonian, winding_integral
from tests.physics_reference import numerical_winding_number, open_chain_hamiltonian, periodic_block


def test_the_twisted_ring_is_the_reference_construction():
    """H(k) is the open chain plus the closing bond w_{n-1} e^{ik} from site 2n-1 to site 0 (Hermitian), entry by
    entry as tests/physics_reference.py assembles it; the default is the untwisted ring k = 0; u(k) is its
    A-rows x B-columns block; the chiral basis lists the A sites, then the B sites; too short or mismatched
    hoppings are refused by name."""
    rng = np.random.default_rng(11)
    for n in (2, 3, 6):
        v_n, w_n = rng.uniform(-2, 2, n), rng.uniform(-2, 2, n)
        np.testing.assert_array_equal(chiral_basis(n), np.r_[np.arange(0, 2 * n, 2), np.arange(1, 2 * n, 2)])
        for k in (0.0, 0.7, -2.1):
            expected = open_chain_hamiltonian(v_n, w_n).astype(complex)
            expected[0, 2 * n - 1] = w_n[-1] * np.exp(-1j * k)
            expected[2 * n - 1, 0] = w_n[-1] * np.exp(1j * k)
            np.testing.assert_allclose(ring_hamiltonian(v_n, w_n, k), expected.T, atol=1e-15)
            np.testing.assert_allclose(chiral_block(v_n, w_n, k), periodic_block(v_n, w_n, k), atol=1e-15)
        np.testing.assert_array_equal(ring_hamiltonian(v_n, w_n), ring_hamiltonian(v_n, w_n, 0.0))
    for v_n, w_n in (([1.0], [1.0]), ([1.0, 2.0], [1.0]), (np.ones((2, 2)), np.ones((2, 2)))):
        with pytest.raises(ValueError, match="v_n and w_n must be 1-D of equal length >= 2"):
            ring_hamiltonian(v_n, w_n)
    with pytest.raises(ValueError, match="n_k must be >= 8, got 7"):
        winding_integral(np.ones(3), np.ones(3), n_k=7)
    # det u = +-a +- b e^{ik}: the trapezoid rule on N points sums the Fourier modes of 1 / (1 + (a/b) e^{-ik}) that
    # are multiples of N, 1 / (1 - (-a/b)^N) exactly (a/b = 0.5^3, N = 8: 1 + 6e-8)
    assert winding_integral(np.full(3, 0.5), np.ones(3), n_k=8) == pytest.approx(1 / (1 - 0.125**8), abs=1e-13)
    closing = np.array([1.0, 1.0, 2.0])  # the closing bond's own value enters du/dk: a/b = 0.125 / 2
    assert winding_integral(np.full(3, 0.5), closing, n_k=8) == pytest.approx(1 / (1 - 0.0625**8), abs=1e-13)
    # near the boundary (a/b = 0.99) the default 512 points still leave 1 / (1 - 0.99^512) = 1.0059
    assert winding_integral(np.full(3, 0.99 ** (1 / 3)), np.ones(3)) == pytest.approx(1 / (1 - 0.99**512), abs=1e-9)


def closing_bond_decides(v_open: np.ndarray, w_open: np.ndarray, side: int, delta: float, sign: float):
    """(v_n, w_n) with the given open bonds and the closing bond that puts the total margin at side * delta."""
    margin = np.log(np.abs(w_open)).sum() - np.log(np.abs(v_open)).sum()
    w_last = sign * np.exp(-margin + side * delta)
    return v_open, np.append(w_open, w_last), margin


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(
    n_cells=st.integers(2, 12),
    seed=st.integers(0, 2**32 - 1),
    W=st.floats(0.5, 4.0),
    side=st.sampled_from([-1, 1]),
    delta=st.floats(0.05, 1.0),
    sign=st.sampled_from([-1.0, 1.0]),
)
def test_the_closing_bond_decides_the_label(n_cells, seed, W, side, delta, sign):
    rng = np.random.default_rng(seed)
    v_open = rng.uniform(0.2, 1.8, n_cells) + W * rng.uniform(-0.5, 0.5, n_cells)
    w_open = 1.0 + 0.5 * W * rng.uniform(-0.5, 0.5, n_cells - 1)
    v_open[np.abs(v_open) < 1e-3] = 1e-3
    w_open[np.abs(w_open) < 1e-3] = 1e-3
    v_n, w_n, margin = closing_bond_decides(v_open, w_open, side, delta, sign)
    expected = int(side > 0)
    label = int(winding_number(v_n, w_n)[0])
    assert label == expected
    assert numerical_winding_number(v_n, w_n) == expected
    assert round(winding_integral(v_n, w_n, n_k=512)) == expected
    # the open chain alone would give the other label whenever |ln|w_last|| exceeds the open margin against it
    if abs(np.log(abs(w_n[-1]))) > abs(margin) and np.sign(margin) != side:
        assert int(margin > 0) != expected
    # the ceiling's known part of the margin is the open chain's: without the closing bond
    assert known_log_ratio(v_n, w_n)[0] == pytest.approx(margin)


def test_a_sweep_across_the_boundary_flips_the_label_once():
    """One open chain, the closing bond swept through the value that closes the margin: the label is 0 below
    and 1 above, and the independent phase winding agrees at every point at least 0.05 from the boundary."""
    rng = np.random.default_rng(3)
    v_open = rng.uniform(0.3, 1.7, 10)
    w_open = rng.uniform(0.5, 1.5, 9)
    margin = np.log(w_open).sum() - np.log(v_open).sum()
    log_w_last = -margin + np.linspace(-1.0, 1.0, 41)
    labels = np.array([winding_number(v_open, np.append(w_open, np.exp(x)))[0] for x in log_w_last])
    np.testing.assert_array_equal(labels, (log_w_last + margin > 0).astype(int))
    assert np.count_nonzero(np.diff(labels)) == 1
    for x, label in zip(log_w_last, labels, strict=True):
        if abs(x + margin) >= 0.05:
            assert numerical_winding_number(v_open, np.append(w_open, np.exp(x))) == label
