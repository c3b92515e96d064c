"""Input representations (ssh_ood.physics.representations): the projector against a dense diagonalization and its
algebra, gauge invariance, the sublattice-position image against its definition, and the window chains' labels."""

from __future__ import annotations

import numpy as np
import pytest

from ssh_ood.physics.constructions import transition_window_hoppings
from ssh_ood.physics.data_generation import (
    observables,
    open_chain_hamiltonian,
    sample_hoppings,
    winding_number,
)
from ssh_ood.physics.representations import (
    REPRESENTATIONS,
    occupied_projector,
    projector_ab,
    represent,
    sublattice_position_image,
)


def _chains(W: float = 1.5, n: int = 12, seed: int = 4):
    return sample_hoppings(np.linspace(0.1, 1.9, n), W, np.random.default_rng(seed))


def test_projector_matches_a_dense_diagonalization():
    v_n, w_n = _chains()
    p = occupied_projector(v_n, w_n)
    energies, states = np.linalg.eigh(open_chain_hamiltonian(np.abs(v_n), np.abs(w_n)))
    resolved = np.abs(energies).min(axis=1) > 1e-4  # a dense solver resolves the zero-mode pair only if split
    assert resolved.sum() >= 6
    for k in np.flatnonzero(resolved):
        occupied = states[k][:, energies[k] < 0]
        np.testing.assert_allclose(p[k], occupied @ occupied.T, atol=2e-6)
        np.testing.assert_allclose(p[k] @ p[k], p[k], atol=2e-5)  # a projector
        assert np.trace(p[k]) == pytest.approx(v_n.shape[1], abs=1e-4)  # onto half of the 2n states
    n = v_n.shape[1]
    np.testing.assert_array_equal(projector_ab(v_n, w_n), p[:, 0::2, 1::2])  # the A-B block
    np.testing.assert_allclose(p[:, 0::2, 0::2], np.broadcast_to(0.5 * np.eye(n), (v_n.shape[0], n, n)), atol=1e-6)


def test_projector_is_gauge_invariant_and_keeps_what_density_loses():
    v_n, w_n = _chains()
    signs = np.random.default_rng(2).choice([-1.0, 1.0], size=(2, *v_n.shape))
    np.testing.assert_array_equal(occupied_projector(signs[0] * v_n, signs[1] * w_n), occupied_projector(v_n, w_n))
    # a clean topological and a clean trivial chain: the projector's corner (A_0, B_{n-1}) tells them apart
    ab_topological = projector_ab(np.full((1, 25), 0.2), np.ones((1, 25)))
    ab_trivial = projector_ab(np.full((1, 25), 1.8), np.ones((1, 25)))
    assert abs(ab_topological[0, 0, -1]) > 0.4 and abs(ab_trivial[0, 0, -1]) < 1e-3


def test_sublattice_position_image_follows_its_definition():
    v_n, w_n = _chains()
    X = observables(v_n, w_n)
    image = sublattice_position_image(X)
    n = v_n.shape[1]
    x = (np.arange(n) + 0.5) / n
    # column sums: A-weighted mean position minus B-weighted mean position of each eigenstate
    np.testing.assert_allclose(image.sum(axis=1), x @ X[:, 0::2, :] - x @ X[:, 1::2, :], atol=1e-5)
    # invertible: undo the weights and the row order
    undone = np.empty_like(X)
    undone[:, 0::2] = image[:, :n] / x[None, :, None]
    undone[:, 1::2] = -image[:, n:] / x[None, :, None]
    np.testing.assert_allclose(undone, X, atol=1e-5)


def test_represent_names_every_representation_and_refuses_others():
    v_n, w_n = _chains(n=3)
    X = observables(v_n, w_n).astype(np.float32)
    shapes = {name: represent(name, v_n, w_n).shape for name in REPRESENTATIONS}
    assert shapes == {"density": (3, 50, 50), "sublattice_position": (3, 50, 50), "projector": (3, 50, 50),
                      "projector_ab": (3, 25, 25)}
    np.testing.assert_array_equal(represent("density", v_n, w_n, X), X)
    with pytest.raises(ValueError, match="unknown input representation"):
        represent("nope", v_n, w_n)


def test_window_chains_are_clean_and_exactly_labelled():
    v, v_n, w_n = transition_window_hoppings(41)
    assert v[0] == 0.8 and v[-1] == 1.2 and (v_n == v[:, None]).all() and (w_n == 1).all()
    np.testing.assert_array_equal(winding_number(v_n, w_n), (v < 1).astype(int))
    with pytest.raises(ValueError, match="window"):
        transition_window_hoppings(4, window=(1.2, 0.8))
