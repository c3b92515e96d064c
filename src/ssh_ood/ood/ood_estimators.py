"""The field's label-free estimators of out-of-distribution accuracy, each written from its paper's definition.

Every function is pure numpy and takes softmax outputs: a prediction matrix ``P`` of shape (N, C), rows on
the probability simplex (N samples, C classes). None of them sees a target label; the source (clean) labels
enter only DoC and ATC, through the accuracy on a labelled clean set and the correctness of the clean predictions.

- AC, average confidence: Hendrycks & Gimpel (2017), "A baseline for detecting misclassified and
  out-of-distribution examples", ICLR; the maximum softmax probability as a confidence score, averaged over
  the unlabeled target set as an estimate of the target accuracy.
- DoC, difference of confidences: Guillory, Shankar, Ebrahimi, Darrell & Schmidt (2021), "Predicting with
  confidence on unseen distributions", ICCV, eq. (1): acc_T ~ acc_S - (AC_S - AC_T).
- ATC, average thresholded confidence: Garg, Balakrishnan, Lipton, Neyshabur & Sedghi (2022), "Leveraging
  unlabeled data to predict out-of-distribution performance", ICLR, eqs. (1)-(2): a threshold t on a score s
  fit on source validation data so that E_S[1{s > t}] = acc_S, then acc_T ~ E_T[1{s > t}]; scores are the
  maximum softmax (ATC-MC) or the negative entropy (ATC-NE). With two classes the negative entropy is an
  increasing function of the maximum softmax, so both thresholds cut the same points: one estimate.
- Agreement: Jiang, Nagarajan, Baek & Kolter (2022), "Assessing generalization of SGD via disagreement",
  ICLR (test error ~ disagreement rate of two independently trained networks on unlabeled data), and Baek,
  Jiang, Raghunathan & Kolter (2022), "Agreement-on-the-line", NeurIPS (agreement and accuracy lie on the
  same line across a population); here each network's mean agreement with every other network of its
  population on the unlabeled target set, taken as the estimate of its accuracy.
- Nuclear norm: Deng, Gould & Zheng (2023), "Confidence and dispersity speak: characterizing prediction
  matrix for unsupervised accuracy estimation", ICML, eq. (3): ||P||_* / sqrt(N min(N, C)), a score in
  [1/C ... 1] (not an accuracy) that grows with both confidence and class dispersity.
- COT, confidence optimal transport: Lu, Wang, Jiang, Fang & Xu (2023), "Characterizing out-of-distribution
  error via optimal transport", NeurIPS (arXiv 2302.05018): the error is estimated as the optimal-transport cost
  between the target softmax vectors and one-hot labels drawn with the source's class proportions, cost
  c(p, e_y) = 1 - p_y (the half-L1 and the L-infinity distances of the paper both reduce to it for two classes).
  It sees pseudo-label shift: a network that calls most target samples one class, where the source is balanced,
  pays for every sample moved to the other label.
"""

from __future__ import annotations

import numpy as np


def check_probabilities(P: np.ndarray, name: str = "P") -> np.ndarray:
    """``P`` as a float64 (N, C) array with N >= 1, C >= 2, entries in [0, 1] and rows summing to 1 (1e-4)."""
    P = np.asarray(P, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] < 1 or P.shape[1] < 2:
        raise ValueError(f"{name} must be an (N, C) softmax matrix with N >= 1 and C >= 2, got shape {P.shape}")
    if not np.isfinite(P).all() or P.min() < 0 or P.max() > 1 or not np.allclose(P.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError(f"{name} must hold probabilities in [0, 1] whose rows sum to 1")
    return P


def max_softmax(P: np.ndarray) -> np.ndarray:
    """Maximum softmax probability of each row, (N,): Hendrycks & Gimpel's confidence score."""
    return check_probabilities(P).max(axis=1)


def negative_entropy(P: np.ndarray) -> np.ndarray:
    """Negative Shannon entropy sum_c p_c ln p_c of each row, (N,), in [-ln C, 0] (nats; 0 ln 0 = 0)."""
    P = check_probabilities(P)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(P > 0, P * np.log(np.where(P > 0, P, 1.0)), 0.0)
    return terms.sum(axis=1)


def average_confidence(P: np.ndarray) -> float:
    """AC = (1/N) sum_i max_c P[i, c] on the unlabeled target set (Hendrycks & Gimpel 2017)."""
    return float(max_softmax(P).mean())


def difference_of_confidences(source_accuracy: float, P_source: np.ndarray, P_target: np.ndarray) -> float:
    """DoC estimate of the target accuracy, acc_S - (AC_S - AC_T) (Guillory et al. 2021, eq. 1).

    ``source_accuracy``: accuracy on the labelled source set (here the clean test set) whose softmax is ``P_source``.
    """
    if not 0 <= source_accuracy <= 1:
        raise ValueError(f"source_accuracy must be in [0, 1], got {source_accuracy}")
    return float(source_accuracy - (average_confidence(P_source) - average_confidence(P_target)))


def atc_threshold(source_scores: np.ndarray, source_correct: np.ndarray) -> float:
    """ATC threshold t with #{s_i > t} / N = source accuracy on a labelled source set (Garg et al. 2022, eq. 1).

    With n_c = #correct of N scores sorted decreasingly s_(1) >= ... >= s_(N): t = s_(n_c + 1), so that exactly
    the n_c largest scores lie above t when the scores are distinct (ties at t all fall below); t = -inf when
    every prediction is correct.
    """
    scores = np.asarray(source_scores, dtype=np.float64)
    correct = np.asarray(source_correct, dtype=bool)
    if scores.ndim != 1 or scores.shape != correct.shape or scores.size < 1 or not np.isfinite(scores).all():
        raise ValueError(f"source_scores and source_correct must be finite 1-D arrays of one length, got "
                         f"{scores.shape} and {correct.shape}")
    n_correct = int(correct.sum())
    if n_correct == scores.size:
        return float("-inf")
    return float(np.sort(scores)[::-1][n_correct])


def atc_estimate(target_scores: np.ndarray, threshold: float) -> float:
    """ATC estimate of the target accuracy, the fraction of target scores above the threshold (Garg et al. 2022, eq. 2)."""
    scores = np.asarray(target_scores, dtype=np.float64)
    if scores.ndim != 1 or scores.size < 1:
        raise ValueError(f"target_scores must be a non-empty 1-D array, got shape {scores.shape}")
    return float(np.mean(scores > threshold))


def population_agreement(predictions: np.ndarray) -> np.ndarray:
    """Each network's mean agreement with the other networks of its population on an unlabeled set.

    ``predictions``: (M, N) predicted classes of M >= 2 networks on the same N samples. Returns (M,):
    a_m = (1 / (M - 1)) sum_{m' != m} (1/N) sum_i 1{y_m(x_i) = y_m'(x_i)}, the agreement rate 1 - disagreement
    of Jiang et al. (2022), used as the estimate of network m's accuracy (Baek et al. 2022 for its line).
    """
    predictions = np.asarray(predictions)
    if predictions.ndim != 2 or predictions.shape[0] < 2 or predictions.shape[1] < 1:
        raise ValueError(f"predictions must be (M, N) with M >= 2 networks, got shape {predictions.shape}")
    classes = np.unique(predictions)
    onehot = (predictions[:, :, None] == classes[None, None, :]).astype(np.float64)  # (M, N, K)
    counts = onehot.sum(axis=0)  # (N, K): networks predicting each class on each sample
    agree_with_all = (onehot * counts[None]).sum(axis=2) - 1.0  # (M, N): the others that agree with m
    return agree_with_all.mean(axis=1) / (predictions.shape[0] - 1)


def nuclear_norm_score(P: np.ndarray) -> float:
    """||P||_* / sqrt(N min(N, C)) of a softmax matrix (Deng et al. 2023, eq. 3).

    The nuclear norm (sum of singular values) of a row-stochastic (N, C) matrix is at most
    sqrt(rank) ||P||_F <= sqrt(min(N, C) N); the bound is reached by confident predictions spread evenly
    over the classes (score 1), while uniform rows give 1/C and one confident class for every sample 1/sqrt(C).
    """
    P = check_probabilities(P)
    N, C = P.shape
    return float(np.linalg.svd(P, compute_uv=False).sum() / np.sqrt(N * min(N, C)))


def cot_error(P: np.ndarray, source_fraction_1: float) -> float:
    """COT estimate of the target error for two classes, in closed form (Lu et al. 2023).

    The transport plan from the N target softmax rows to labels in the source proportions (a fraction
    q = ``source_fraction_1`` of class 1) that minimises the mean cost 1 - p_y gives class 1 to the q N rows with
    the largest p_1 (the cost difference between the labels, 1 - 2 p_1, is monotone in p_1) and class 0 to the
    rest; a fractional q N splits one row. The estimate is that mean cost:

        err = (1/N) [ sum_{top qN rows} (1 - p_1) + sum_{other rows} p_1 ];   accuracy estimate 1 - err.

    Parameters
    ----------
    P : (N, 2) softmax rows on the unlabeled target set.
    source_fraction_1 : fraction of class 1 among the source labels, in [0, 1].
    """
    P = check_probabilities(P)
    if P.shape[1] != 2:
        raise ValueError(f"cot_error is the two-class closed form; P has {P.shape[1]} classes")
    if not 0 <= source_fraction_1 <= 1:
        raise ValueError(f"source_fraction_1 must be in [0, 1], got {source_fraction_1}")
    p1 = np.sort(P[:, 1])[::-1]
    n = p1.size
    mass = source_fraction_1 * n  # rows (possibly fractional) that receive label 1
    whole = int(np.floor(mass))
    share = np.zeros(n)
    share[:whole] = 1.0
    if whole < n:
        share[whole] = mass - whole
    return float(np.sum(share * (1 - p1) + (1 - share) * p1) / n)
