"""The population of CNNs (the paper's 100): train, evaluate out of distribution, tabulate, load.

This module runs a population (:func:`run_population`, given a :class:`~ssh_ood.ood.population_settings.PopulationSettings`)
and loads one; the parts live in ``population_settings`` (what to do), ``population_training``,
``population_evaluation``, ``population_dask`` (chunks, Dask), ``population_manifest`` and
``population_tables`` (``stats.csv``, :class:`~ssh_ood.ood.population_tables.Population`).

``python -m ssh_ood population --preset paper --seed 0 --out 00_demonstrations_data/100_CNNs`` trains the
models (:func:`ssh_ood.nets.training_run.train_models`, the paper's recipe, model i with seed
``model_seed(seed, i)``), evaluates each on the generalization grid of the preset with disorder seed
``seed`` (:mod:`ssh_ood.ood.generalization`) and writes::

    DIR/model_007/            weights.pt, best_weights.pt, config.json, history.json, test_report.json,
                              phase_diagram.npz, generalization_metrics.json
    DIR/stats.csv             one row per finished model; columns documented in
                              ssh_ood.ood.population_tables.COLUMNS
    DIR/stats_columns.json    the same documentation, column name -> meaning
    DIR/manifest.json         preset, seeds, grid, package versions, git commit, and every invocation
                              (models, wall time, device, scheduler)
    DIR/files.json, DIR/model_007/files.json
                              SHA-256 and identity of every file of the folder (ssh_ood.base.file_records); a
                              model whose files do not verify is not finished and is redone

The datasets (``data_dir``, by default ``00_demonstrations_data/datasets/<preset>``) are generated from
``seed`` when missing and are not part of the population folder.

Resumable and chunkable: ``--models 0-24`` handles only those models; a model whose folder is finished
(trained and evaluated with its current weights on this grid) is never redone, an interrupted training
resumes from its last epoch and an interrupted evaluation from its last checkpointed row. Running
``--models 0-1`` then ``--models 2-3`` gives the same folder as ``--models 0-3`` (on CPU, bitwise the
same weights and metrics).

Compactness (the 100-model population is shipped in the repository): no training-curve figures
(``--training-figures`` draws them from each ``history.json``,
:func:`ssh_ood.figures.training_figures.save_training_curves`); diagrams are stored as float32 fractions of
the R realizations and per-set metrics as float32 (``phase_diagram.npz``, compressed).

Scale-out: ``--scheduler tcp://HOST:PORT`` sends chunks of models to a running Dask distributed
cluster (``dask scheduler`` + ``dask worker``, or dask-jobqueue on an HPC batch system; the scheduler and
workers need this package installed in their environment, checked before any work is sent
(:mod:`ssh_ood.ood.dask_workers`), and the output folder on a shared file system); each chunk trains and evaluates
its models in one worker, on one thread (give each worker one thread; start more workers).
``--workers N`` starts such a cluster locally (N single-threaded processes on 127.0.0.1). Without either,
everything runs in this process: training in the worker processes of the training engine, evaluation as
one ensemble (chains generated once for all models, numba on all cores, inference on one thread). On the
shared 2-core development machine two local evaluation processes were slower than one (9.3 s vs 6.8 s
for 8 models x 8,000 chains, the cores being busy with other work), hence the in-process default; on an
idle many-core machine ``--workers`` spreads the models over the cores.
"""

from __future__ import annotations

import socket
import time
from dataclasses import replace
from pathlib import Path

from ..base.device import select_device
from ..base.file_records import open_folder
from ..base.paths import datasets_dir
from ..base.presets import Preset, get_preset
from ..base.run_folders import hold_folder
from ..base.validation import optional_int, require_int
from ..nets.model_folders import is_complete, write_summary
from ..nets.recipes import get_recipe
from ..nets.training_recipe import model_seed
from ..nets.training_run import run_identity
from ..physics.datasets import ensure_datasets
from .population_dask import run_chunk, run_on_dask
from .population_evaluation import is_finished
from .population_manifest import check_manifest, device_description, write_manifest
from .population_settings import PopulationSettings, check_member, default_population_dir
from .population_tables import STATS_FILE, Population, load_population, write_stats


def run_population(settings: PopulationSettings) -> Path:
    """Train and evaluate the models ``settings.model_indices`` of a population; write stats and manifest.

    Parameters
    ----------
    settings : the run (preset, seed, folders, models, cluster, cut, options: :class:`PopulationSettings`).

    Returns
    -------
    Path of ``stats.csv`` (covering every finished model of the folder).
    """
    started = time.time()
    preset, seed = settings.preset, settings.seed
    model_seed(seed, 0)  # validates the seed
    recipe = get_recipe(settings.recipe).name
    indices = list(range(preset.n_models)) if settings.model_indices is None else sorted(set(settings.model_indices))
    if not indices:
        raise ValueError("model_indices must name at least one model")
    for index in indices:
        model_seed(seed, index)
    workers = require_int("workers", settings.workers, minimum=1)
    optional_int("chunk_size", settings.chunk_size, minimum=1)
    if settings.device is not None:
        select_device(settings.device)  # fail early on an unknown or absent device
    out_dir = settings.out_dir
    with hold_folder(out_dir) as hold:  # one writer; a busy, unwritable or shipped folder fails here
        check_manifest(out_dir, preset.name, int(seed), recipe)
        open_folder(out_dir, run_identity(preset.name, seed))
        data_dir = settings.data_dir if settings.data_dir is not None else datasets_dir(preset.name)
        settings = replace(settings, seed=int(seed), data_dir=data_dir, model_indices=tuple(indices), recipe=recipe)
        for index in indices:  # a trained model of another run (preset, seed, recipe) fails here, before any work
            if is_complete(settings.model_dir(index)):
                check_member(settings.model_dir(index), settings, index)
        pending = [i for i in indices if not (is_complete(settings.model_dir(i)) if settings.train_only
                                               else is_finished(settings.model_dir(i), settings, i))]
        on_dask = settings.scheduler is not None or workers > 1
        where = "in-process"
        if pending:
            ensure_datasets(preset, settings.seed, data_dir, settings.progress)
            if on_dask:
                where = run_on_dask(settings, pending, hold.token)
            else:
                run_chunk(settings, pending)
        run = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
            "models_requested": indices,
            "models_done_now": pending,
            "wall_time_s": round(time.time() - started, 3),
            "device": device_description(settings.device),
            "host": socket.gethostname(),
            "scheduler": where if on_dask else None,
            "workers": workers,
            "train_only": settings.train_only,
        }
        write_manifest(out_dir, settings, run)
        write_summary(out_dir)
        return write_stats(out_dir, settings.cut)


def load_or_create_population(
    folder: str | Path,
    preset: Preset | str,
    seed: int = 0,
    fallback_dir: str | Path | None = None,
    create: bool = True,
    data_dir: str | Path | None = None,
    progress: bool = True,
    **options,
) -> Population:
    """Load the population in ``folder``; if it has none, create one of ``preset`` in ``fallback_dir``.

    The fallback (default ``00_demonstrations_data/runs/<preset>_seed<seed>_population``) is created with
    :func:`run_population` (resumable: an existing, complete fallback is only loaded; ``options`` are
    further fields of its :class:`PopulationSettings`). With ``create=False`` a missing population raises
    ``FileNotFoundError`` with the command that makes one.
    """
    folder = Path(folder)
    if (folder / STATS_FILE).is_file() or not create:
        return load_population(folder)
    preset = get_preset(preset)
    fallback = Path(fallback_dir) if fallback_dir is not None else default_population_dir(preset.name, seed)
    print(f"{folder} holds no population; using a {preset.name!r} population ({preset.n_models} models) in {fallback}.\n"
          f"The paper's population: python -m ssh_ood population --preset paper --seed 0 --out {folder}")
    run_population(PopulationSettings(preset, seed, fallback, data_dir=data_dir, progress=progress, **options))
    return load_population(fallback)
