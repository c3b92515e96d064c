"""The label-free OOD accuracy estimators (ssh_ood.ood.ood_estimators) on synthetic cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from ssh_ood.ood.ood_estimators import (
    atc_estimate,
    atc_threshold,
    average_confidence,
    check_probabilities,
    difference_of_confidences,
    max_softmax,
    negative_entropy,
    nuclear_norm_score,
    population_agreement,
)


def two_class(p_first: np.ndarray) -> np.ndarray:
    p_first = np.asarray(p_first, dtype=np.float64)
    return np.stack([p_first, 1 - p_first], axis=1)


def test_average_confidence_is_the_mean_max_softmax():
    P = two_class([0.9, 0.2, 0.5, 0.6])  # max softmax 0.9, 0.8, 0.5, 0.6
    assert max_softmax(P) == pytest.approx([0.9, 0.8, 0.5, 0.6])
    assert average_confidence(P) == pytest.approx(0.7)
    with pytest.raises(ValueError, match="probabilities"):
        average_confidence(np.array([[0.7, 0.7]]))


def test_calibrated_confidence_makes_average_confidence_the_accuracy():
    """Labels drawn with P(correct) = max softmax: AC equals the expected accuracy (the paper's premise)."""
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.5, 1.0, size=200_000)
    correct = rng.random(confidence.size) < confidence
    assert average_confidence(two_class(confidence)) == pytest.approx(correct.mean(), abs=0.005)


def test_difference_of_confidences_moves_the_source_accuracy_by_the_confidence_drop():
    source = two_class(np.full(10, 0.95))  # AC_S = 0.95
    target = two_class(np.full(6, 0.25))  # AC_T = 0.75
    assert difference_of_confidences(0.9, source, target) == pytest.approx(0.9 - 0.2)
    assert difference_of_confidences(0.9, source, source) == pytest.approx(0.9)
    assert difference_of_confidences(1.0, source, target) == pytest.approx(0.8)  # both ends of [0, 1] are accuracies
    assert difference_of_confidences(0.0, target, source) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="source_accuracy"):
        difference_of_confidences(1.5, source, target)


def test_atc_threshold_puts_the_source_accuracy_above_it():
    scores = np.array([0.99, 0.9, 0.8, 0.7, 0.6])
    correct = np.array([True, True, False, True, False])  # accuracy 3/5
    t = atc_threshold(scores, correct)
    assert t == pytest.approx(0.7) and np.mean(scores > t) == pytest.approx(0.6)
    assert atc_estimate(np.array([0.95, 0.75, 0.65, 0.71]), t) == pytest.approx(0.75)  # all but 0.65 above 0.7
    assert atc_threshold(scores, np.ones(5, dtype=bool)) == -np.inf  # all correct: every target point counts
    assert atc_estimate(scores, -np.inf) == 1.0


def test_atc_is_exact_when_the_score_separates_right_from_wrong():
    """Correct exactly when s > 0.8, in source and target alike: t lands at 0.8 and the target estimate is the
    target's accuracy, whatever the shift of the score distribution (Garg et al.'s exact case)."""
    rng = np.random.default_rng(1)
    source = rng.uniform(0.5, 1.0, size=100_000)
    target = 0.5 + 0.5 * rng.random(100_000) ** 3  # more low-confidence points
    t = atc_threshold(source, source > 0.8)
    assert t == pytest.approx(0.8, abs=1e-4)
    assert atc_estimate(target, t) == pytest.approx(np.mean(target > 0.8), abs=1e-4)


def test_atc_under_a_calibrated_shift_has_its_closed_form_expectation():
    """Scores s = 0.5 + 0.5 u (source) or 0.5 + 0.5 u^3 (target), correct with probability s. Source accuracy
    0.75 puts t at 0.625; the estimate is P_T(s > 0.625) = 1 - 0.25^(1/3) = 0.370 while the target accuracy is
    E_T[s] = 0.625: thresholding is exact only in the separable case above."""
    rng = np.random.default_rng(1)
    source = 0.5 + 0.5 * rng.random(200_000)
    target = 0.5 + 0.5 * rng.random(200_000) ** 3
    estimate = atc_estimate(target, atc_threshold(source, rng.random(source.size) < source))
    assert estimate == pytest.approx(1 - 0.25 ** (1 / 3), abs=0.005)
    # the closed-form target accuracy E_T[s] = 0.5 + 0.5 E[u^3] = 0.625: ATC misses it by 0.25
    assert 0.625 - estimate == pytest.approx(0.625 - (1 - 0.25 ** (1 / 3)), abs=0.005)


def test_negative_entropy_has_its_closed_form_bounds():
    P = np.array([[1.0, 0.0], [0.5, 0.5], [0.25, 0.75]])
    expected = [0.0, -np.log(2), 0.25 * np.log(0.25) + 0.75 * np.log(0.75)]
    assert negative_entropy(P) == pytest.approx(expected)
    scores = np.array([0.0, -0.1, -0.4, -0.69])
    t = atc_threshold(scores, np.array([True, False, True, False]))
    assert np.mean(scores > t) == pytest.approx(0.5)


def test_population_agreement_counts_the_other_networks_that_agree():
    predictions = np.array([
        [0, 0, 1, 1],
        [0, 0, 1, 0],
        [1, 0, 1, 0],
    ])
    # network 0 agrees with 1 on 3/4, with 2 on 2/4; network 1: 3/4, 3/4; network 2: 2/4, 3/4
    assert population_agreement(predictions) == pytest.approx([5 / 8, 6 / 8, 5 / 8])
    assert population_agreement(np.zeros((4, 10), dtype=int)) == pytest.approx(np.ones(4))
    with pytest.raises(ValueError, match="M >= 2"):
        population_agreement(predictions[:1])


def test_agreement_tracks_accuracy_for_independent_errors_and_misses_shared_ones():
    """Networks that err independently: agreement of a pair = a_m a_m' + (1 - a_m)(1 - a_m') (two classes), so it
    ranks them by accuracy. Networks that are confidently wrong together on one region agree perfectly there
    and the estimate cannot see that error."""
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, size=50_000)
    accuracy = np.array([0.6, 0.75, 0.9, 0.95])
    correct = rng.random((4, labels.size)) < accuracy[:, None]
    agreement = population_agreement(np.where(correct, labels, 1 - labels))
    expected = [np.mean([a * b + (1 - a) * (1 - b) for j, b in enumerate(accuracy) if j != i]) for i, a in enumerate(accuracy)]
    assert agreement == pytest.approx(expected, abs=0.01)
    assert np.all(np.diff(agreement) > 0)
    shared = np.tile(labels, (4, 1))
    shared[:, : labels.size // 2] = 1 - labels[: labels.size // 2]  # every network wrong on the same half
    assert population_agreement(shared) == pytest.approx(np.ones(4))  # estimate 1, true accuracy 0.5


def test_nuclear_norm_score_reaches_its_closed_form_values():
    N, C = 12, 3
    confident_and_spread = np.eye(C)[np.arange(N) % C]  # one-hot, N / C per class: singular values sqrt(N / C) each
    assert nuclear_norm_score(confident_and_spread) == pytest.approx(1.0)
    assert nuclear_norm_score(np.full((N, C), 1 / C)) == pytest.approx(1 / C)  # rank 1, sigma = sqrt(N / C)
    assert nuclear_norm_score(np.eye(C)[np.zeros(N, dtype=int)]) == pytest.approx(1 / np.sqrt(C))  # one class
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(N, C))
    P = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert 1 / C <= nuclear_norm_score(P) <= 1.0


def test_two_classes_make_both_atc_scores_the_same_estimate():
    """For C = 2, negative entropy is an increasing function of the max softmax m on [1/2, 1]
    (d/dm [m ln m + (1 - m) ln(1 - m)] = ln(m / (1 - m)) > 0), so both thresholds cut the same points."""
    rng = np.random.default_rng(4)
    source, target = two_class(rng.random(500)), two_class(rng.random(300) ** 2)
    correct = rng.random(500) < 0.8
    by_confidence = atc_estimate(max_softmax(target), atc_threshold(max_softmax(source), correct))
    by_entropy = atc_estimate(negative_entropy(target), atc_threshold(negative_entropy(source), correct))
    assert by_confidence == by_entropy and 0 < by_confidence < 1


def test_estimates_refuse_inputs_without_a_sample_or_of_the_wrong_shape():
    """An empty or 2-D score array has no ATC estimate (the mean over no sample would be NaN): refused by name."""
    for bad in (np.array([]), np.ones((2, 2))):
        with pytest.raises(ValueError, match="target_scores must be a non-empty 1-D array"):
            atc_estimate(bad, 0.5)


def test_atc_threshold_refuses_scores_it_cannot_rank_and_reads_correctness_as_booleans():
    """The threshold needs one finite score per source prediction on a 1-D axis; each refusal is named. A truthy
    correctness flag (e.g. 2) counts as one correct prediction, as a boolean does."""
    message = "source_scores and source_correct must be finite 1-D arrays of one length"
    for scores, correct in ((np.ones((2, 2)), np.ones((2, 2), dtype=bool)), (np.array([0.1, 0.2]), np.array([True])),
                            (np.array([np.nan, 0.5]), np.array([True, False])), (np.array([]), np.array([], dtype=bool))):
        with pytest.raises(ValueError, match=message):
            atc_threshold(scores, correct)
    scores = np.array([0.9, 0.7, 0.5])
    assert atc_threshold(scores, np.array([2, 0, 0])) == atc_threshold(scores, np.array([True, False, False])) == 0.7


def test_softmax_matrices_are_checked_entry_by_entry():
    """A softmax matrix is float64 (N, C) with N >= 1 and C >= 2, entries in [0, 1] (not one above 1 or below 0,
    even where the row still sums to 1) and rows summing to 1 within 1e-4 (float32 softmax rounding passes)."""
    assert check_probabilities(np.eye(2, dtype=int)).dtype == np.float64
    assert check_probabilities([[0.5, 0.5 + 5e-5]]).shape == (1, 2)
    shapes = "P must be an \\(N, C\\) softmax matrix with N >= 1 and C >= 2"
    for bad in ([[1.0]], np.zeros((0, 2)), np.full((1, 2, 2), 0.5), [0.5, 0.5]):
        with pytest.raises(ValueError, match=f"^{shapes}"):
            check_probabilities(bad)
    for bad in ([[-0.2, 0.6, 0.6]], [[1.00005, 0.0]], [[0.7, 0.7]], [[np.nan, 1.0]]):
        with pytest.raises(ValueError, match="^P must hold probabilities in \\[0, 1\\] whose rows sum to 1$"):
            check_probabilities(bad)
