"""Training the models of a population (:func:`ssh_ood.nets.training_run.train_models`, model i with seed
``model_seed(seed, i)``)."""

from __future__ import annotations

from ..nets.model_folders import is_complete
from ..nets.training_run import train_models
from .population_settings import PopulationSettings, check_member


def train_members(settings: PopulationSettings, indices: list[int]) -> None:
    """Train the models ``indices`` not trained yet (interrupted ones resume); a trained model of another run fails."""
    dirs = [settings.model_dir(i) for i in indices]
    for index, model_dir in zip(indices, dirs, strict=True):
        if is_complete(model_dir):
            check_member(model_dir, settings, index)
    to_train = [i for i, d in zip(indices, dirs, strict=True) if not is_complete(d)]
    if to_train:
        train_models(
            settings.preset,
            settings.data_dir,
            settings.out_dir,
            to_train,
            base_seed=settings.seed,
            device=settings.device,
            progress=settings.progress,
            n_workers=settings.train_workers,
            recipe=settings.recipe,
        )
