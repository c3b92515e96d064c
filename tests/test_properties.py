"""Laws that hold for every input, checked on inputs drawn by ``hypothesis``.

Each test states its law; the examples are drawn from a fixed database-free seed (``derandomize``) so that a
run is reproducible, with a modest ``max_examples`` to keep the suite short. ``deadline=None``: the timing of a
shared machine is not what these tests check.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ssh_ood.base.file_records import UnverifiedFile, check_bytes, note_written, open_folder
from ssh_ood.interpret.cam_utils import raw_class_activation_maps
from ssh_ood.nets.architecture import CNN_SSH
from ssh_ood.nets.data_loaders import TensorSplit, TrainingData
from ssh_ood.nets.training_recipe import data_fingerprint
from ssh_ood.ood.generalization_metrics import diagram_mae, diagram_rmse
from ssh_ood.ood.ood_estimators import (
    atc_estimate,
    atc_threshold,
    average_confidence,
    difference_of_confidences,
    negative_entropy,
    nuclear_norm_score,
    population_agreement,
)
from ssh_ood.physics.data_generation import winding_number
from tests.physics_reference import numerical_winding_number, periodic_block

PROPERTY = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
FEW = settings(PROPERTY, max_examples=12)

hopping = st.floats(0.05, 2.5, allow_nan=False)
signs = st.sampled_from([-1.0, 1.0])


@st.composite
def chains(draw):
    """(v_n, w_n) of one ring with 2 to 8 cells, hoppings of either sign and |t| in [0.05, 2.5]."""
    n = draw(st.integers(2, 8))
    v_n = np.array([draw(signs) * draw(hopping) for _ in range(n)])
    w_n = np.array([draw(signs) * draw(hopping) for _ in range(n)])
    return v_n, w_n


def _ring_bonds(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bonds of a real ring Hamiltonian read in the cell convention (2m, 2m+1): v_m = h[2m, 2m+1],
    w_m = h[2m+1, 2m+2], closing w_{n-1} = h[2n-1, 0]."""
    n = h.shape[0] // 2
    v_n = np.array([h[2 * m, 2 * m + 1] for m in range(n)])
    w_n = np.array([h[2 * m + 1, (2 * m + 2) % (2 * n)] for m in range(n)])
    return v_n, w_n


def _ring_hamiltonian(v_n: np.ndarray, w_n: np.ndarray) -> np.ndarray:
    """The real ring at k = 0, entry by entry (the reference block, reassembled in the site basis)."""
    n = len(v_n)
    h = np.zeros((2 * n, 2 * n))
    u = periodic_block(v_n, w_n, 0.0).real  # rows A sites 2m, columns B sites 2m'+1
    h[0::2, 1::2] = u
    return h + h.T


# ----------------------------------------------------------------------------------------------
# labels under the chain's symmetries
# ----------------------------------------------------------------------------------------------
@PROPERTY
@given(chains())
def test_reversing_the_ring_keeps_its_label(chain):
    """Reversal j -> 2n-1-j of the 2n sites maps A site 2m to B site 2(n-1-m)+1 and back: the sublattices swap,
    cell m becomes cell n-1-m, and each intracell bond stays intracell (v'_m = v_{n-1-m}) while each intercell
    bond stays intercell (w'_m = w_{n-2-m}, the closing bond onto itself). The products |prod v| and |prod w|
    are unchanged, so the winding number is too. The reversed bonds are read off the permuted Hamiltonian
    P H P, not written from the law, and both labels are checked against the numerical phase winding of
    det u(k) (tests/physics_reference.py)."""
    v_n, w_n = chain
    h = _ring_hamiltonian(v_n, w_n)
    reverse = np.arange(h.shape[0])[::-1]
    v_r, w_r = _ring_bonds(h[np.ix_(reverse, reverse)])
    np.testing.assert_array_equal(v_r, v_n[::-1])
    np.testing.assert_array_equal(w_r, np.concatenate([w_n[-2::-1], w_n[-1:]]))
    label = int(winding_number(v_n, w_n)[0])
    assert int(winding_number(v_r, w_r)[0]) == label
    if abs(np.log(np.abs(w_n)).sum() - np.log(np.abs(v_n)).sum()) > 0.05:  # off the boundary: the grid resolves it
        assert numerical_winding_number(v_r, w_r) == label == numerical_winding_number(v_n, w_n)


@PROPERTY
@given(chains())
def test_the_other_cell_choice_exchanges_the_phases(chain):
    """Reading the same ring with cells (2m+1, 2m+2), i.e. shifting the sites by one, makes every intercell bond
    intracell and vice versa (v' = w, w' = v shifted by one cell): the winding number becomes 1 - label
    wherever prod |v| != prod |w|. A reflection that moved the cell boundary would therefore flip labels."""
    v_n, w_n = chain
    margin = np.log(np.abs(w_n)).sum() - np.log(np.abs(v_n)).sum()
    if margin == 0:
        return
    h = _ring_hamiltonian(v_n, w_n)
    shift = np.roll(np.arange(h.shape[0]), -1)
    v_s, w_s = _ring_bonds(h[np.ix_(shift, shift)])
    np.testing.assert_array_equal(v_s, w_n)
    assert int(winding_number(v_s, w_s)[0]) == 1 - int(winding_number(v_n, w_n)[0])


# ----------------------------------------------------------------------------------------------
# diagram errors
# ----------------------------------------------------------------------------------------------
fractions = arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6)), elements=st.floats(0, 1))


@PROPERTY
@given(st.data())
def test_mae_bounds_the_signed_mean_with_equality_only_for_one_signed_errors(data):
    """mean|P - T| >= |mean(P - T)| (triangle inequality), with equality iff no two cells err in opposite
    directions; RMSE >= MAE (Jensen)."""
    predicted = data.draw(fractions)
    target = data.draw(arrays(np.float64, predicted.shape, elements=st.floats(0, 1)))
    error = predicted - target
    mae, signed = diagram_mae(predicted, target), abs(float(np.mean(error)))
    one_signed = bool((error >= 0).all() or (error <= 0).all())
    assert mae >= signed - 1e-12
    if one_signed:
        assert mae == pytest.approx(signed, abs=1e-12)
    else:  # the smaller side of the errors is lost twice from the signed mean
        lost = min(error[error > 0].sum(), -error[error < 0].sum()) / error.size
        assert mae - signed == pytest.approx(2 * lost, abs=1e-12) and lost > 0
    assert diagram_rmse(predicted, target) >= mae - 1e-12


# ----------------------------------------------------------------------------------------------
# the record of a file and the fingerprint of the training data
# ----------------------------------------------------------------------------------------------
@FEW
@given(data=st.binary(min_size=1, max_size=64), position=st.integers(0, 63), delta=st.integers(1, 255))
def test_a_record_refuses_any_single_byte_change_at_the_same_length(tmp_path, data, position, delta):
    """Change one byte anywhere (same length, any new value): the check against the folder's record refuses it;
    the unchanged bytes pass."""
    folder = tmp_path / f"folder_{len(data)}_{position}_{delta}"
    open_folder(folder, {"kind": "test"})
    path = folder / "file.bin"
    path.write_bytes(data)
    note_written(path, data)
    assert check_bytes(path, data, required=True) == data
    changed = bytearray(data)
    position %= len(data)
    changed[position] = (changed[position] + delta) % 256
    with pytest.raises(UnverifiedFile, match="content differs from its record"):
        check_bytes(path, bytes(changed), required=True)


def _small_training_data(seed: int) -> TrainingData:
    rng = np.random.default_rng(seed)

    def split(n: int) -> TensorSplit:
        x = torch.from_numpy(rng.random((n, 1, 4, 4), dtype=np.float32))
        return TensorSplit(x, torch.from_numpy(rng.integers(0, 2, n)), ("made up",))

    return TrainingData(split(5), split(3), split(2))


@PROPERTY
@given(st.sampled_from(["training", "validation"]), st.integers(0, 4), st.integers(0, 15),
       st.floats(0, 1, width=32))
def test_the_fingerprint_changes_with_any_single_label_or_pixel(which, sample, pixel, value):
    """The data fingerprint that guards resumes covers every label and every pixel of both splits it hashes:
    one flipped label, or one pixel set to any other float32 value, gives another fingerprint."""
    data = _small_training_data(0)
    reference = data_fingerprint(data)
    split = getattr(data, which)
    sample %= len(split)
    flipped_y = split.y.clone()
    flipped_y[sample] = 1 - flipped_y[sample]
    x = split.x.clone()
    row, column = divmod(pixel, 4)
    if x[sample, 0, row, column].item() == value:
        value = float(np.nextafter(np.float32(value), np.float32(2)))
    x[sample, 0, row, column] = value
    for changed in (TensorSplit(split.x, flipped_y, split.sources), TensorSplit(x, split.y, split.sources)):
        other = TrainingData(**{**vars(data), which: changed})
        assert data_fingerprint(other) != reference


# ----------------------------------------------------------------------------------------------
# CAM
# ----------------------------------------------------------------------------------------------
@FEW
@given(st.integers(0, 2**16), arrays(np.float32, (2, 50, 50), elements=st.floats(0, 1, width=32)))
def test_the_cam_of_a_gap_network_sums_to_the_logit_minus_the_bias(model_seed, x):
    """CNN_SSH ends in global average pooling and one linear layer, so for any weights and any input the raw
    CAM of class c averaged over its 26 x 26 positions is logit_c - b_c (eval mode)."""
    torch.manual_seed(model_seed)
    model = CNN_SSH()
    with torch.no_grad():
        model.linear_layers[0].bias.uniform_(-1.0, 1.0)
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(x)[:, None]).numpy()
    bias = model.linear_layers[0].bias.detach().numpy()
    raw = raw_class_activation_maps(model, x)
    np.testing.assert_allclose(raw.mean(axis=(2, 3)), logits - bias, atol=1e-5)


# ----------------------------------------------------------------------------------------------
# the label-free estimators
# ----------------------------------------------------------------------------------------------
@st.composite
def softmax(draw):
    """A (N, C) row-stochastic matrix, 1 <= N <= 12, 2 <= C <= 5, rows drawn as normalized non-negative weights."""
    n, c = draw(st.integers(1, 12)), draw(st.integers(2, 5))
    weights = draw(arrays(np.float64, (n, c), elements=st.floats(0, 1)))
    weights[weights.sum(axis=1) == 0, 0] = 1.0
    return weights / weights.sum(axis=1, keepdims=True)


@PROPERTY
@given(softmax(), softmax(), st.floats(0, 1))
def test_confidence_estimators_stay_within_their_bounds(P, Q, source_accuracy):
    """AC in [1/C, 1]; negative entropy in [-ln C, 0]; DoC = acc_S - AC_S + AC_T, so within (1 - 1/C) of acc_S;
    the nuclear-norm score in [1/C, 1] when N >= C (||P||_* >= ||P||_F >= sqrt(N / C))."""
    C = P.shape[1]
    assert 1 / C - 1e-12 <= average_confidence(P) <= 1 + 1e-12
    entropy = negative_entropy(P)
    assert (entropy <= 1e-12).all() and (entropy >= -np.log(C) - 1e-12).all()
    if Q.shape[1] == C:
        doc = difference_of_confidences(source_accuracy, P, Q)
        assert doc == pytest.approx(source_accuracy - average_confidence(P) + average_confidence(Q))
        assert abs(doc - source_accuracy) <= 1 - 1 / C + 1e-12
    if P.shape[0] >= C:
        assert 1 / C - 1e-9 <= nuclear_norm_score(P) <= 1 + 1e-9


@PROPERTY
@given(st.lists(st.floats(-5, 5), min_size=1, max_size=30, unique=True), st.data())
def test_atc_puts_exactly_the_source_accuracy_above_its_threshold(scores, data):
    """With distinct source scores, the fraction of them above the ATC threshold is the source accuracy, and
    applied to the source itself the estimate returns it; every estimate is a fraction in [0, 1]."""
    scores = np.array(scores)
    correct = np.array(data.draw(st.lists(st.booleans(), min_size=scores.size, max_size=scores.size)))
    t = atc_threshold(scores, correct)
    assert atc_estimate(scores, t) == pytest.approx(correct.mean())
    target = np.array(data.draw(st.lists(st.floats(-6, 6), min_size=1, max_size=20)))
    assert 0.0 <= atc_estimate(target, t) <= 1.0


@PROPERTY
@given(arrays(np.int64, st.tuples(st.integers(2, 5), st.integers(1, 8)), elements=st.integers(0, 2)))
def test_population_agreement_is_the_mean_pairwise_agreement(predictions):
    """a_m = mean over the other networks m' of the fraction of samples where m and m' predict the same class,
    computed pair by pair here; each a_m lies in [0, 1]."""
    M = predictions.shape[0]
    expected = [np.mean([np.mean(predictions[m] == predictions[o]) for o in range(M) if o != m]) for m in range(M)]
    agreement = population_agreement(predictions)
    np.testing.assert_allclose(agreement, expected, atol=1e-12)
    assert ((agreement >= 0) & (agreement <= 1)).all()
