"""What a population run does: its settings (one frozen object, also sent to Dask workers), which models.

:class:`PopulationSettings` holds the preset object (resolved once, by the caller), the seed, the folders
and every option of :func:`ssh_ood.ood.population.run_population`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..base.paths import RUNS_DIR
from ..base.presets import Preset
from ..nets.model_folders import load_config, model_dir_name
from ..nets.recipes import DEFAULT_RECIPE
from .generalization import GeneralizationGrid
from .generalization_metrics import GeneralizationCut


def parse_model_indices(text: str, n_models: int) -> list[int]:
    """Model indices from ``"0-24"``, ``"3"`` or ``"0-3,7,10-12"`` (ranges inclusive), sorted, distinct.

    Every index must be below ``n_models`` (the population's size), checked before any range is expanded.
    """
    bounds = []
    for part in str(text).replace(" ", "").split(","):
        try:
            if "-" in part:
                first, last = (int(x) for x in part.split("-", 1))
            else:
                first = last = int(part)
        except ValueError:
            raise ValueError(f"--models: cannot read {part!r} in {text!r}; use e.g. 0-24 or 0-3,7") from None
        if first < 0 or last < first:
            raise ValueError(f"--models: range {part!r} must be FIRST-LAST with 0 <= FIRST <= LAST")
        if last >= n_models:
            raise ValueError(f"--models: {last} is beyond the population's {n_models} models (0-{n_models - 1})")
        bounds.append((first, last))
    return sorted({index for first, last in bounds for index in range(first, last + 1)})


def default_population_dir(preset: str, seed: int) -> Path:
    """``00_demonstrations_data/runs/<preset>_seed<seed>_population``."""
    return RUNS_DIR / f"{preset}_seed{seed}_population"


@dataclass(frozen=True)
class PopulationSettings:
    """A population run: what to train and evaluate, where, and how (chunks of it are sent to Dask workers).

    Attributes
    ----------
    preset : the preset (run size, recipe, generalization grid).
    seed : population seed (datasets, model seeds, grid disorder).
    out_dir : population folder.
    model_indices : models to handle (None: all ``preset.n_models``); finished ones are skipped.
    data_dir : datasets folder (None: ``00_demonstrations_data/datasets/<preset>``; made if missing).
    scheduler : address of a Dask scheduler (``tcp://HOST:PORT``) to run chunks of models on.
    workers : without a scheduler, > 1 starts a local Dask cluster of that many processes.
    chunk_size : models per Dask task (None: the pending models spread over the cluster's threads).
    device : torch device name or None (best available on the machine that runs the chunk).
    cut : "well generalizing" iff the cut's metric ("mae" or "rmse") <= its threshold (default MAE <= 0.2).
    which : evaluated weights ("last" as in the paper).
    train_workers : processes of the training engine (None: the usable cores).
    inference_threads : torch threads of the evaluation (1: see
        :func:`ssh_ood.ood.model_evaluation.evaluate_model_dirs`).
    generation_threads : numba threads of the chain generator (None: all cores).
    progress : progress bars.
    train_only : train the models and stop; evaluate on the generalization grid later (a validation
        population whose out-of-distribution results must not be seen before a protocol is frozen;
        ``stats.csv`` then lists only the models evaluated before).
    replace_evaluations : re-evaluate models evaluated on another grid or with other weights (refused
        otherwise); ``stats.csv`` and the manifest then describe the new evaluation.
    recipe : training recipe of :mod:`ssh_ood.nets.recipes` (default: the paper's); the manifest names any other.
    lock_token : the token of the process holding ``out_dir`` (:mod:`ssh_ood.base.run_folders`), for chunks run on
        Dask workers on its behalf.
    """

    preset: Preset
    seed: int
    out_dir: Path
    model_indices: Sequence[int] | None = None
    data_dir: Path | None = None
    scheduler: str | None = None
    workers: int = 1
    chunk_size: int | None = None
    device: str | None = None
    cut: GeneralizationCut = GeneralizationCut()
    which: str = "last"
    train_workers: int | None = None
    inference_threads: int | None = 1
    generation_threads: int | None = None
    progress: bool = True
    train_only: bool = False
    replace_evaluations: bool = False
    recipe: str = DEFAULT_RECIPE
    lock_token: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.preset, Preset):
            raise ValueError(f"preset: a Preset (ssh_ood.base.presets.get_preset), got {self.preset!r}")
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        if self.data_dir is not None:
            object.__setattr__(self, "data_dir", Path(self.data_dir))

    @property
    def grid(self) -> GeneralizationGrid:
        return GeneralizationGrid.from_preset(self.preset, self.seed)

    def model_dir(self, index: int) -> Path:
        return self.out_dir / model_dir_name(index)


def check_member(model_dir: Path, settings: PopulationSettings, index: int) -> None:
    """``ValueError`` unless the trained model in ``model_dir`` is model ``index`` of this population (preset, seed,
    recipe)."""
    config = load_config(model_dir)
    recipe = config.get("recipe", {}).get("variant", {}).get("name", DEFAULT_RECIPE)
    stored = (config.get("preset"), config.get("base_seed"), config.get("index"), recipe)
    expected = (settings.preset.name, settings.seed, index, settings.recipe)
    if stored != expected:
        raise ValueError(
            f"{model_dir} holds a model of another run (preset, seed, index, recipe = {stored}, expected {expected}); "
            "choose another output folder or delete that model folder"
        )
