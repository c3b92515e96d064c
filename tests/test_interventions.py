"""The intervention probes (ssh_ood.physics.interventions): which columns each edits, what it writes there, and
how the responses are measured.

Fast (no network, no data files): these are the tests ``make mutation`` runs for the module. The inserted
density is checked against the zero modes of a clean open chain diagonalized densely (tests/physics_reference.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from physics_reference import open_chain_hamiltonian

from ssh_ood.physics.interventions import (
    PROBES,
    bulk_columns,
    insert_localized_density,
    localized_density,
    mid_gap_columns,
    probe_inputs,
    probe_responses,
    remove_zero_modes,
)

SHAPE_ERROR = r"images must have shape \(N, M, M\)"


def _images(n: int, m: int, seed: int = 0, dtype=np.float64) -> np.ndarray:
    return np.random.default_rng(seed).random((n, m, m)).astype(dtype)


def _zero_mode_density(n_cells: int, r: float) -> np.ndarray:
    """|psi|^2 of one mid-gap eigenstate of the clean open chain v = r, w = 1 (site basis)."""
    _, states = np.linalg.eigh(open_chain_hamiltonian(np.full(n_cells, r), np.ones(n_cells)))
    return np.abs(states[:, n_cells - 1]) ** 2


@pytest.mark.parametrize("n_sites", [4, 6, 50, 52])
def test_mid_gap_and_bulk_columns_are_the_middle_pair_and_a_chiral_mirror_pair(n_sites):
    # 2n sites: eigenstates ordered by energy, the two of smallest |E| are n - 1 and n
    energies = np.linalg.eigvalsh(open_chain_hamiltonian(np.full(n_sites // 2, 0.5), np.ones(n_sites // 2)))
    middle = tuple(int(i) for i in np.argsort(np.abs(energies))[:2])
    assert mid_gap_columns(n_sites) == tuple(sorted(middle))
    first, second = bulk_columns(n_sites)
    assert first == n_sites // 4 and first + second == n_sites - 1  # mirror partners: E_i = -E_{M-1-i}
    assert energies[first] == pytest.approx(-energies[second])


@pytest.mark.parametrize("n_sites", [0, 2, 3, 5, 51])
def test_columns_need_an_even_chain_of_at_least_two_cells(n_sites):
    for columns in (mid_gap_columns, bulk_columns):
        with pytest.raises(ValueError, match=f"n_sites must be even and >= 4, got {n_sites}"):
            columns(n_sites)


@pytest.mark.parametrize(("n_cells", "r", "atol"), [(25, 0.5, 1e-7), (25, 0.3, 1e-12), (26, 0.2, 1e-12), (3, 0.01, 1e-8)])
def test_the_end_density_is_a_zero_mode_of_the_clean_topological_chain(n_cells, r, atol):
    # a mid-gap eigenstate of v = r, w = 1 is (L +- R) / sqrt 2 with L on the even sites from the left end and R
    # on the odd sites from the right end: its density is half of each, decaying by r^2 per cell
    end = localized_density(2 * n_cells, "end", decay=r)
    assert end.shape == (2 * n_cells,) and end.dtype == np.float64
    np.testing.assert_allclose(end, _zero_mode_density(n_cells, r), rtol=0, atol=atol)
    assert end.sum() == pytest.approx(1.0, abs=1e-14)


@pytest.mark.parametrize(("n_sites", "r"), [(50, 0.5), (52, 0.7), (6, 0.4), (4, 0.9)])
def test_the_mid_density_is_the_end_profile_started_at_the_central_sites(n_sites, r):
    end, mid = localized_density(n_sites, "end", r), localized_density(n_sites, "mid", r)
    half = n_sites // 2
    # each half mirrored: the end sites' weight now sits on the central sites n - 1 and n, going outwards
    np.testing.assert_allclose(mid[:half], end[:half][::-1], rtol=1e-14, atol=0)
    np.testing.assert_allclose(mid[half:], end[half:][::-1], rtol=1e-14, atol=0)
    assert mid.sum() == pytest.approx(1.0, abs=1e-14)
    assert mid[half - 1] == mid[half] == mid.max() and mid[half - 1] == pytest.approx(end[0], rel=1e-14)


def test_the_default_decay_is_one_half():
    # the probes' documented decay ratio 0.5 (interpret/definitions_check.py)
    np.testing.assert_array_equal(localized_density(50, "end"), localized_density(50, "end", 0.5))
    X = _images(2, 50)
    np.testing.assert_array_equal(insert_localized_density(X, "end", "zero"),
                                  insert_localized_density(X, "end", "zero", 0.5))
    labels = np.array([0, 1])
    for name, (_original, edited) in probe_inputs(X, labels).items():
        np.testing.assert_array_equal(edited, probe_inputs(X, labels, 0.5)[name][1])


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.2, 1.5, float("nan")])
def test_localized_density_refuses_a_decay_outside_zero_one(decay):
    with pytest.raises(ValueError, match=r"decay ratio r must be in \(0, 1\)"):
        localized_density(50, "end", decay)


def test_localized_density_refuses_unknown_places_and_odd_chains():
    for where in ("centre", "END", ""):
        with pytest.raises(ValueError, match=f"where must be 'end' or 'mid', got '{where}'"):
            localized_density(50, where)
    with pytest.raises(ValueError, match="n_sites must be even and >= 4, got 49"):
        localized_density(49, "end")
    assert localized_density(50, "end", 1e-6)[0] == pytest.approx(0.5)  # decays close to 0 and 1 are valid
    assert localized_density(50, "mid", 1 - 1e-6).max() == pytest.approx(1 / 26, rel=1e-4)  # 26 sites, flat


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_removing_the_zero_modes_copies_the_neighbouring_bulk_columns(dtype):
    X = _images(3, 50, dtype=dtype)
    kept = X.copy()
    removed = remove_zero_modes(X)
    np.testing.assert_array_equal(X, kept)  # not edited in place
    assert removed.dtype == dtype and removed.shape == X.shape
    np.testing.assert_array_equal(removed[:, :, 24], X[:, :, 23])
    np.testing.assert_array_equal(removed[:, :, 25], X[:, :, 26])
    others = [c for c in range(50) if c not in (24, 25)]
    np.testing.assert_array_equal(removed[:, :, others], X[:, :, others])
    # on a clean topological chain: no column of the result is an end-localized state any more
    density = np.abs(np.linalg.eigh(open_chain_hamiltonian(np.full(25, 0.5), np.ones(25)))[1]) ** 2
    ends = remove_zero_modes(density[None])[0][[0, 1, 48, 49]].sum(axis=0)
    assert ends.max() < 0.2 < density[[0, 1, 48, 49]].sum(axis=0).max()


@pytest.mark.parametrize(("where", "columns", "pair"), [("end", "zero", (24, 25)), ("mid", "zero", (24, 25)),
                                                         ("end", "bulk", (12, 37)), ("mid", "bulk", (12, 37))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_an_insertion_writes_the_density_into_its_two_columns_only(where, columns, pair, dtype):
    X = _images(4, 50, dtype=dtype)
    kept = X.copy()
    inserted = insert_localized_density(X, where, columns, decay=0.3)
    np.testing.assert_array_equal(X, kept)
    assert inserted.dtype == dtype and inserted.shape == X.shape
    density = localized_density(50, where, 0.3).astype(dtype)
    for column in pair:
        np.testing.assert_array_equal(inserted[:, :, column], np.broadcast_to(density, (4, 50)))
    others = [c for c in range(50) if c not in pair]
    np.testing.assert_array_equal(inserted[:, :, others], X[:, :, others])


def test_insertions_and_removals_refuse_what_is_not_a_stack_of_square_images():
    with pytest.raises(ValueError, match="columns must be 'zero' or 'bulk', got 'edge'"):
        insert_localized_density(_images(1, 50), "end", "edge")
    for bad in (np.zeros((50, 50)), np.zeros((2, 50, 48)), np.zeros((1, 2, 50, 50))):
        with pytest.raises(ValueError, match=SHAPE_ERROR):
            remove_zero_modes(bad)
        with pytest.raises(ValueError, match=SHAPE_ERROR):
            insert_localized_density(bad, "end", "zero")
        with pytest.raises(ValueError, match=SHAPE_ERROR):
            probe_inputs(bad, np.zeros(len(bad)))
    nested = _images(1, 6).tolist()  # nested lists are images too
    np.testing.assert_array_equal(remove_zero_modes(nested), remove_zero_modes(np.asarray(nested)))


def test_probe_inputs_pair_each_probe_with_the_samples_of_its_class():
    X = _images(7, 50, seed=3)
    labels = [1, 0, 0, 1, 0, 1, 0]  # any sequence of 0/1
    pairs = probe_inputs(X, labels, decay=0.4)
    assert tuple(pairs) == PROBES == ("remove_zero_modes", "end_zero", "end_bulk", "mid_zero", "mid_bulk")
    topological, trivial = X[[0, 3, 5]], X[[1, 2, 4, 6]]
    np.testing.assert_array_equal(pairs["remove_zero_modes"][0], topological)
    np.testing.assert_array_equal(pairs["remove_zero_modes"][1], remove_zero_modes(topological))
    for name in PROBES[1:]:
        where, columns = name.split("_")
        np.testing.assert_array_equal(pairs[name][0], trivial)
        np.testing.assert_array_equal(pairs[name][1], insert_localized_density(trivial, where, columns, 0.4))


def test_probe_inputs_need_one_label_per_image_and_both_classes():
    X = _images(4, 6)
    for labels in ([0, 1, 0], [[0, 1, 0, 1]], [0, 1, 0, 1, 1]):
        with pytest.raises(ValueError, match=r"labels must have shape \(4,\), got"):
            probe_inputs(X, labels)
    for labels in ([0, 0, 0, 0], [1, 1, 1, 1], [2, 2, 0, 0], [1, 1, 2, 2]):
        with pytest.raises(ValueError, match="^the probes need both topological and trivial samples$"):
            probe_inputs(X, labels)


def _affine_logits(images: np.ndarray) -> np.ndarray:
    """A logit pair whose difference is the density in the end rows of the mid-gap columns minus 0.5, with a
    class-0 logit that is not zero (so only the difference may matter)."""
    images = np.asarray(images, dtype=np.float64)
    evidence = images[:, [0, 1, 48, 49]][:, :, [24, 25]].sum(axis=(1, 2)) / 2
    offset = images.mean(axis=(1, 2)) + 3.0
    return np.stack([offset, offset + evidence - 0.5], axis=1)


def test_a_response_is_the_flip_fraction_and_mean_shift_of_the_logit_difference():
    # three clean topological chains (their zero modes at the ends) and three trivial ones (no end density)
    topological = [np.abs(np.linalg.eigh(open_chain_hamiltonian(np.full(25, r), np.ones(25)))[1]) ** 2
                   for r in (0.3, 0.5, 0.6)]
    trivial = [np.abs(np.linalg.eigh(open_chain_hamiltonian(np.ones(25), np.full(25, r)))[1]) ** 2
               for r in (0.3, 0.5, 0.7)]
    X, labels = np.stack(topological + trivial), np.array([1, 1, 1, 0, 0, 0])
    responses = probe_responses(_affine_logits, X, labels, scale=0.25)
    assert tuple(responses) == PROBES

    def delta(images):
        return np.asarray(images)[:, [0, 1, 48, 49]][:, :, [24, 25]].sum(axis=(1, 2)) / 2 - 0.5

    # every topological chain is called topological and loses its end density: all three flip
    before, after = delta(X[:3]), delta(remove_zero_modes(X[:3]))
    assert np.all(before > 0) and np.all(after < 0)
    assert responses["remove_zero_modes"].flip == 1.0
    assert responses["remove_zero_modes"].shift == pytest.approx(np.mean(after - before) / 0.25, rel=1e-12)
    # the end rows of both mid-gap columns now hold what a clean chain's zero mode (r = 0.5) holds there
    gained = _zero_mode_density(25, 0.5)[[0, 1, 48, 49]].sum()
    assert responses["end_zero"].shift == pytest.approx(np.mean(gained - (delta(X[3:]) + 0.5)) / 0.25, rel=1e-6)
    assert responses["end_zero"].flip == 1.0
    # nothing in the end rows of the mid-gap columns: no shift, no flip
    for name in ("end_bulk", "mid_zero", "mid_bulk"):
        assert responses[name].flip == 0.0, name
    assert responses["end_bulk"].shift == 0.0 and responses["mid_bulk"].shift == 0.0
    assert isinstance(responses["end_zero"].flip, float) and isinstance(responses["end_zero"].shift, float)


def test_the_flip_counts_only_changes_of_the_predicted_class():
    # 4 x 4 images: the mid-gap columns are 1 and 2, and removing the zero modes copies column 0 into column 1;
    # with delta = X[0, 1] - X[0, 0] every edited topological sample has delta = 0, which is predicted trivial
    def logits(images):
        images = np.asarray(images)
        return np.stack([images[:, 0, 0] - 4.0, images[:, 0, 1] - 4.0], axis=1)

    X = np.zeros((6, 4, 4))
    X[:, 0, 1] = [1.0, -1.0, 0.0, 2.0, 3.0, 0.0]  # delta before; the last sample is trivial
    labels = np.array([1, 1, 1, 1, 1, 0])
    response = probe_responses(logits, X, labels, scale=2.0)["remove_zero_modes"]
    assert response.flip == pytest.approx(3 / 5)  # the three positive deltas, not the negative one nor the zero
    assert response.shift == pytest.approx(np.mean([-1.0, 1.0, 0.0, -2.0, -3.0]) / 2.0)


def test_the_responses_use_the_decay_they_are_given():
    X, labels = np.stack([np.eye(50)] * 2), np.array([0, 1])
    for decay in (0.3, 0.6):
        responses = probe_responses(_affine_logits, X, labels, scale=1.0, decay=decay)
        before, after = _affine_logits(X[:1]), _affine_logits(insert_localized_density(X[:1], "end", "zero", decay))
        expected = (after[0, 1] - after[0, 0]) - (before[0, 1] - before[0, 0])
        assert responses["end_zero"].shift == pytest.approx(expected, rel=1e-12)
        assert expected == pytest.approx(1 - decay**2, rel=1e-5)  # the zero mode's end rows: (1 - r^2) / 2, twice


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf")])
def test_the_scale_must_be_finite_and_positive(scale):
    X, labels = _images(2, 6), np.array([0, 1])
    with pytest.raises(ValueError, match=f"scale must be finite and > 0, got {scale}"):
        probe_responses(_affine_logits, X, labels, scale)
