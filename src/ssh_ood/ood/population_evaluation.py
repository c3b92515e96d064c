"""Evaluating the models of a population on its generalization grid (:mod:`ssh_ood.ood.model_evaluation`)."""

from __future__ import annotations

from pathlib import Path

from ..nets.model_folders import is_complete
from .model_evaluation import evaluate_model_dirs, is_evaluated
from .population_settings import PopulationSettings, check_member


def is_finished(model_dir: str | Path, settings: PopulationSettings, index: int) -> bool:
    """Trained, of this population, and evaluated on its grid with its current weights."""
    model_dir = Path(model_dir)
    if not is_complete(model_dir):
        return False
    check_member(model_dir, settings, index)
    return is_evaluated(model_dir, settings.grid, settings.which)


def evaluate_members(settings: PopulationSettings, indices: list[int]) -> None:
    """Evaluate the trained models ``indices`` on the population's grid (those evaluated already are read)."""
    evaluate_model_dirs(
        [settings.model_dir(i) for i in indices],
        settings.grid,
        which=settings.which,
        cut=settings.cut,
        device=settings.device,
        inference_threads=settings.inference_threads,
        generation_threads=settings.generation_threads,
        progress=settings.progress,
        replace=settings.replace_evaluations,
    )
