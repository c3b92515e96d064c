"""The physics rules of :mod:`ssh_ood.physics.physics_rules` on the generalization grid, band by band, beside the ceiling.

A rule is evaluated exactly like a network: :func:`ssh_ood.ood.generalization.evaluate_grid` streams the same
chains of the same grid (same seed, same rows) through it, and the accuracy of each disorder band is the mean of
the per-(W, realization) accuracies over the band's rows (:func:`ssh_ood.physics.ceiling.band_rows`), as
``recall_by_band`` computes it for a network. The ceiling's band accuracy (:func:`ssh_ood.physics.ceiling.ceiling_grid`)
is computed on the same chains.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..physics.ceiling import band_means, band_rows, ceiling_grid
from ..physics.physics_rules import PhysicsRule, midgap_sublattice_weights
from .generalization import GeneralizationGrid, GeneralizationResult, GridBatch, evaluate_grid


class RulePredictor:
    """A :data:`ssh_ood.ood.generalization.Predictor` of fitted physics rules: (K, N) labels from the hoppings."""

    def __init__(self, rules: Sequence[PhysicsRule]) -> None:
        if not rules:
            raise ValueError("RulePredictor needs at least one rule")
        self.rules = list(rules)

    def __call__(self, batch: GridBatch) -> np.ndarray:
        weights = midgap_sublattice_weights(batch.v_n, batch.w_n)  # one SVD per chain, shared by the rules
        return np.stack([rule.predict(batch.v_n, batch.w_n, weights) for rule in self.rules])


def evaluate_rules_on_grid(rules: Sequence[PhysicsRule], grid: GeneralizationGrid, chunk_size: int = 2000,
                           progress: bool = False) -> list[GeneralizationResult]:
    """One :class:`GeneralizationResult` per rule on ``grid`` (the networks' evaluation, with the rules as models)."""
    predictor = RulePredictor(rules)
    accumulator = evaluate_grid(predictor, len(predictor.rules), grid, chunk_size=chunk_size, progress=progress)
    return [accumulator.result(k) for k in range(len(predictor.rules))]


def band_accuracies(result: GeneralizationResult, bands: Sequence[tuple[float, float]]) -> dict[str, float]:
    """Accuracy in each disorder band ``"low-high"`` (mean over the band's (W, realization) sets) and ``"overall"``.

    Also the recall of each class per band (``recall_trivial_<band>``, ``recall_topological_<band>``).
    """
    out = {"overall": float(np.mean(result.set_metrics["accuracy"]))}
    for band, rows in band_rows(result.grid.W_values, bands):
        out[band] = float(np.mean(result.set_metrics["accuracy"][rows]))
        for name in ("trivial", "topological"):
            out[f"recall_{name}_{band}"] = float(np.nanmean(result.set_metrics[f"recall_{name}"][rows]))
    return out


def baselines_report(rules: Sequence[PhysicsRule], grid: GeneralizationGrid,
                     bands: Sequence[tuple[float, float]], progress: bool = False) -> dict:
    """Every rule's band accuracies and the ceiling's on ``grid``, JSON-ready.

    Returns
    -------
    dict with ``grid`` (its description), ``bands`` (``[[low, high], ...]``), ``ceiling`` (``overall`` and one
    entry per band: the Bayes classifier's accuracy) and ``rules``: name -> the fitted rule (threshold, clean
    accuracy, chains fitted on) and its :func:`band_accuracies`.
    """
    results = evaluate_rules_on_grid(rules, grid, progress=progress)
    ceiling = ceiling_grid(grid.W_values, grid.v_values, grid.n_realizations, grid.seed, grid.n_cells)
    per_W = ceiling["accuracy"].mean(axis=1)
    return {
        "grid": grid.to_dict(),
        "bands": [[float(low), float(high)] for low, high in bands],
        "ceiling": {"overall": float(per_W.mean()), **band_means(per_W, grid.W_values, bands)},
        "rules": {rule.name: {**rule.to_dict(), **band_accuracies(result, bands)}
                  for rule, result in zip(rules, results, strict=True)},
    }
