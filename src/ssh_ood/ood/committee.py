"""A committee of networks on the generalization grid: the majority vote of K models, scored like one model.

A committee is a clean-data procedure when its members are chosen on clean data (e.g. the k networks with
the lowest clean-data probe response, :mod:`ssh_ood.interpret.recipe_protocol`). Its vote on each chain is
topological iff more than half of the members say so (a tie counts as trivial), and the vote is evaluated
on the grid exactly like one network (:func:`ssh_ood.ood.generalization.evaluate_grid`), so its accuracy,
per-class recall and phase diagram compare directly with the members'.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..nets.architecture import CNN_SSH
from .generalization import (
    CNNEnsemble,
    GeneralizationGrid,
    GeneralizationResult,
    GridBatch,
    evaluate_grid,
    thread_limits,
)


class MajorityVote:
    """Predictor (:data:`ssh_ood.ood.generalization.Predictor`) of one model: the majority vote of an ensemble."""

    def __init__(self, ensemble: CNNEnsemble) -> None:
        self.ensemble = ensemble

    def __call__(self, batch: GridBatch) -> np.ndarray:
        return majority_vote(self.ensemble(batch))[None, :]


def majority_vote(predictions: np.ndarray) -> np.ndarray:
    """Majority vote (N,) of predicted labels (K, N) in {0, 1}; ties are trivial (0)."""
    predictions = np.asarray(predictions)
    if predictions.ndim != 2 or predictions.shape[0] < 1:
        raise ValueError(f"predictions must have shape (K, N) with K >= 1, got {predictions.shape}")
    return (2 * predictions.sum(axis=0) > predictions.shape[0]).astype(np.int64)


def committee_result(models: Sequence[CNN_SSH], grid: GeneralizationGrid, device: str | None = None,
                     chunk_size: int = 2000, progress: bool = True,
                     representations: Sequence[str] | None = None) -> GeneralizationResult:
    """The committee's :class:`GeneralizationResult` on ``grid`` (its vote is one model); ``representations``: the
    input each member reads (:class:`ssh_ood.ood.generalization.CNNEnsemble`; default the paper's densities)."""
    vote = MajorityVote(CNNEnsemble(models, device=device, representations=representations))
    with thread_limits(1, None), torch.inference_mode():
        accumulator = evaluate_grid(vote, 1, grid, chunk_size=chunk_size, progress=progress)
    return accumulator.result(0)
