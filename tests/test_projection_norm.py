"""ProjNorm (ssh_ood.ood.projection_norm): zero without a shift, growing with the pseudo-label shift, reproducible."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ssh_ood.nets.architecture import build_model
from ssh_ood.nets.ensemble_training import SGDRecipe, initial_model
from ssh_ood.ood.projection_norm import (
    ProjNormSettings,
    batch_order,
    cosine_lr,
    parameter_distance,
    projection_norm,
    pseudo_labels,
)

RECIPE = SGDRecipe(lr=0.05, momentum=0.9, weight_decay=0.0)
N, M = 48, 12  # tiny chains: 48 samples of 12 x 12 observables


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, N)
    x = rng.random((N, M, M)).astype(np.float32)
    x[labels == 1, :, : M // 2] += 0.5  # a learnable difference between the classes
    return x, labels


def _norm(labels_target: np.ndarray, seed: int = 0, steps: int = 12, x_target: np.ndarray | None = None) -> float:
    x, labels = _data()
    return projection_norm(initial_model(3), x, labels, x if x_target is None else x_target, labels_target, RECIPE,
                           steps=steps, batch_size=16, seed=seed).norm


def test_zero_when_the_target_is_the_source_with_its_labels():
    x, labels = _data()
    start = initial_model(3)
    before = [p.detach().clone() for p in start.parameters()]
    result = projection_norm(start, x, labels, x.copy(), labels.copy(), RECIPE, steps=12, batch_size=16, seed=5)
    assert result.norm == 0.0
    assert parameter_distance(result.reference, start) > 0.1  # the copies did train
    assert all(torch.equal(a, b) for a, b in zip(before, start.parameters(), strict=True))  # θ_0 left unchanged


def test_grows_with_the_pseudo_label_shift():
    _, labels = _data()
    flipped = {}
    for fraction in (0.0, 0.1, 0.5):
        shifted = labels.copy()
        which = np.random.default_rng(1).permutation(N)[: int(round(fraction * N))]
        shifted[which] = 1 - shifted[which]
        flipped[fraction] = _norm(shifted)
    assert flipped[0.0] == 0.0 < flipped[0.1] < flipped[0.5]
    # a covariate shift with correct labels moves θ̃ less than the same shift with every label wrong
    x, _ = _data()
    noisy = x + np.random.default_rng(2).normal(0, 0.2, x.shape).astype(np.float32)
    assert 0 < _norm(labels, x_target=noisy) < _norm(1 - labels, x_target=noisy)


def test_deterministic_for_a_seed():
    _, labels = _data()
    shifted = np.roll(labels, 3)
    assert _norm(shifted, seed=4) == _norm(shifted, seed=4)
    assert _norm(shifted, seed=4) != _norm(shifted, seed=5)


def test_batches_and_learning_rate():
    order = batch_order(10, 5, 4, seed=0)
    assert [len(b) for b in order] == [4, 4, 2, 4, 4]  # a pass is 3 batches, the last one short
    assert sorted(np.concatenate(order[:3]).tolist()) == list(range(10))
    assert not np.array_equal(order[0], order[3])  # each pass has its own permutation
    assert [len(b) for b in batch_order(3, 2, 64, seed=0)] == [3, 3]  # fewer samples than a batch
    assert cosine_lr(0.1, 0, 10) == pytest.approx(0.1) and cosine_lr(0.1, 5, 10) == pytest.approx(0.05)
    assert pseudo_labels(np.array([[0.2, 0.8], [0.6, 0.4]])).tolist() == [1, 0]


def test_refuses_what_it_cannot_score():
    x, labels = _data()
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        projection_norm(initial_model(0), x, labels, x, labels, RECIPE, steps=0)
    with pytest.raises(ValueError, match="target labels must be classes 0 or 1"):
        projection_norm(initial_model(0), x, labels, x, labels + 1, RECIPE, steps=1)
    with pytest.raises(ValueError, match=r"source labels must have shape \(48,\)"):
        projection_norm(initial_model(0), x, labels[:-1], x, labels, RECIPE, steps=1)
    with pytest.raises(ValueError, match="source and target observables differ in size"):
        projection_norm(initial_model(0), x, labels, x[:, :-2, :-2], labels, RECIPE, steps=1)
    with pytest.raises(ValueError, match="real-valued CNN_SSH"):
        projection_norm(build_model(3), x, labels, x, labels, RECIPE, steps=1)
    with pytest.raises(ValueError, match="lr > 0"):
        projection_norm(initial_model(0), x, labels, x, labels, SGDRecipe(0.0, 0.9, 0.0), steps=1)
    with pytest.raises(ValueError, match="same architecture"):
        parameter_distance(initial_model(0), build_model(2))
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        ProjNormSettings(seed=-1)
