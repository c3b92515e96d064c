"""The population of CNNs (the paper's 100): train, evaluate out of distribution, tabulate, load.

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
cluster (``dask scheduler`` + ``dask worker``, or dask-jobqueue on an HPC batch system; workers need this
repository importable and the output folder on a shared file system); each chunk trains and evaluates
its models in one worker, on one thread (give each worker one thread; start more workers).
``--workers N`` starts such a cluster locally (N single-threaded processes on 127.0.0.1). Without either,
everything runs in this process: training in the worker processes of the training engine, evaluation as
one ensemble (chains generated once for all models, numba on all cores, inference on one thread). On the
shared 2-core development machine two local evaluation processes were slower than one (9.3 s vs 6.8 s
for 8 models x 8,000 chains, the cores being busy with other work), hence the in-process default; on an
idle many-core machine ``--workers`` spreads the models over the cores.
"""

from __future__ import annotations

import math
import platform
import socket
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..base.device import select_device
from ..base.file_records import open_folder
from ..base.io_utils import load_json_object, save_json
from ..base.paths import RUNS_DIR, datasets_dir
from ..base.presets import Preset, get_preset
from ..base.provenance import git_state, package_versions
from ..base.run_folders import hold_folder
from ..nets.model_folders import is_complete, load_config, model_dir_name, write_summary
from ..nets.recipes import DEFAULT_RECIPE, get_recipe
from ..nets.training_processes import available_cpus
from ..nets.training_recipe import model_seed
from ..nets.training_run import run_identity, train_models
from ..physics.datasets import read_manifest, write_datasets
from .generalization import GeneralizationGrid
from .generalization_metrics import (
    DEFAULT_CUT_METRIC,
    DEFAULT_THRESHOLD,
    GeneralizationCut,
)
from .model_evaluation import WEIGHT_FILES, evaluate_model_dirs, is_evaluated
from .population_tables import (
    MANIFEST_FIELDS,
    MANIFEST_FILE,
    STATS_FILE,
    Population,
    load_population,
    write_stats,
)

_CHUNK_LOCK = threading.Lock()


# ----------------------------------------------------------------------------------------------
# settings and model selection
# ----------------------------------------------------------------------------------------------
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


@dataclass(frozen=True)
class PopulationSettings:
    """Everything a chunk of models needs (sent to Dask workers).

    Attributes
    ----------
    preset : preset name; seed : population seed (datasets, model seeds, grid disorder).
    out_dir, data_dir : population and datasets folders (strings).
    device : torch device name or None (best available on the machine that runs the chunk).
    cut_metric, threshold : "well generalizing" iff cut_metric ("mae" or "rmse") <= threshold.
    which : evaluated weights ("last" as in the paper).
    train_workers : processes of the training engine (None: the usable cores).
    inference_threads : torch threads of the evaluation.
    generation_threads : numba threads of the chain generator (None: all cores).
    progress : progress bars.
    train_only : train the models and stop; evaluate on the generalization grid later (a validation
        population whose out-of-distribution results must not be seen before a protocol is frozen).
    replace_evaluations : re-evaluate models evaluated on another grid or with other weights.
    lock_token : the token of the process holding ``out_dir`` (:mod:`ssh_ood.base.run_folders`), for chunks run on
        Dask workers on its behalf.
    """

    preset: str
    seed: int
    out_dir: str
    data_dir: str
    device: str | None = None
    cut_metric: str = DEFAULT_CUT_METRIC
    threshold: float = DEFAULT_THRESHOLD
    which: str = "last"
    train_workers: int | None = None
    inference_threads: int | None = 1
    generation_threads: int | None = None
    progress: bool = True
    train_only: bool = False
    replace_evaluations: bool = False
    lock_token: str | None = None
    recipe: str = DEFAULT_RECIPE

    @property
    def grid(self) -> GeneralizationGrid:
        return GeneralizationGrid.from_preset(self.preset, self.seed)

    @property
    def cut(self) -> GeneralizationCut:
        return GeneralizationCut(self.cut_metric, self.threshold)

    def model_dir(self, index: int) -> Path:
        return Path(self.out_dir) / model_dir_name(index)


def _check_member(model_dir: Path, settings: PopulationSettings, index: int) -> None:
    config = load_config(model_dir)
    recipe = config.get("recipe", {}).get("variant", {}).get("name", DEFAULT_RECIPE)
    stored = (config.get("preset"), config.get("base_seed"), config.get("index"), recipe)
    expected = (settings.preset, settings.seed, index, settings.recipe)
    if stored != expected:
        raise ValueError(
            f"{model_dir} holds a model of another run (preset, seed, index, recipe = {stored}, expected {expected}); "
            "choose another output folder or delete that model folder"
        )


def is_finished(model_dir: str | Path, settings: PopulationSettings, index: int) -> bool:
    """Trained, of this population, and evaluated on its grid with its current weights."""
    model_dir = Path(model_dir)
    if not is_complete(model_dir):
        return False
    _check_member(model_dir, settings, index)
    return is_evaluated(model_dir, settings.grid, settings.which)


def ensure_datasets(preset: Preset | str, seed: int, data_dir: str | Path, progress: bool = True) -> Path:
    """Generate the preset's datasets from ``seed`` into ``data_dir`` unless they are there and intact.

    Raises ``ValueError`` if ``data_dir`` holds the datasets of another seed or preset; files of the right
    seed and preset that are missing, altered or written by an older version are regenerated.
    """
    preset = get_preset(preset)
    data_dir = Path(data_dir)
    if (data_dir / "datasets.json").is_file():
        manifest = read_manifest(data_dir)
        if manifest["seed"] != seed or manifest["preset"] != preset.name:
            raise ValueError(
                f"{data_dir} holds the datasets of preset {manifest['preset']!r}, seed {manifest['seed']}; "
                f"this population needs preset {preset.name!r}, seed {seed}: pass another data folder (--data-dir)"
            )
    write_datasets(preset, seed, data_dir, progress=progress)  # verifies every file; regenerates what is not current
    return data_dir


def run_chunk(settings: PopulationSettings, indices: list[int]) -> list[int]:
    """Train (if needed), evaluate (if needed) and compact the models ``indices``; returns them.

    Runs in this process or on a Dask worker; everything it produces goes to the model folders. Chunks
    that share a process (a Dask worker with several threads) run one at a time: the torch / numba thread
    settings are process-wide. Give each worker one thread and start more workers instead.
    """
    with _CHUNK_LOCK, hold_folder(settings.out_dir, token=settings.lock_token):
        return _run_chunk(settings, indices)


def _run_chunk(settings: PopulationSettings, indices: list[int]) -> list[int]:
    ensure_datasets(settings.preset, settings.seed, settings.data_dir, settings.progress)
    dirs = [settings.model_dir(i) for i in indices]
    for index, model_dir in zip(indices, dirs, strict=True):
        if is_complete(model_dir):
            _check_member(model_dir, settings, index)
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
    if not settings.train_only:
        evaluate_model_dirs(
            dirs,
            settings.grid,
            which=settings.which,
            cut=settings.cut,
            device=settings.device,
            inference_threads=settings.inference_threads,
            generation_threads=settings.generation_threads,
            progress=settings.progress,
            replace=settings.replace_evaluations,
        )
    return list(indices)


def _split(indices: list[int], chunk_size: int) -> list[list[int]]:
    return [indices[start : start + chunk_size] for start in range(0, len(indices), chunk_size)]


def _run_on_dask(
    settings: PopulationSettings, pending: list[int], scheduler: str | None, workers: int, chunk_size: int | None,
    token: str,
) -> str:
    """Dispatch chunks of ``pending`` to a Dask cluster (given, or local with ``workers`` processes).

    ``token``: this process's hold on the population folder, which the workers join (:mod:`ssh_ood.base.run_folders`).
    """
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
        )
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout=30)
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"--scheduler: cannot reach the Dask scheduler at {scheduler!r} ({exc})") from None
    try:
        slots = max(1, sum(client.nthreads().values()))
        size = chunk_size or math.ceil(len(pending) / slots)
        chunks = _split(pending, size)
        # one thread per chunk: a worker process runs one chunk at a time (run_chunk) on one core
        single = {"progress": False, "train_workers": 1, "inference_threads": 1, "generation_threads": 1,
                  "lock_token": token}
        worker_settings = PopulationSettings(**{**asdict(settings), **single})
        futures = client.map(run_chunk, [worker_settings] * len(chunks), chunks, pure=False)
        with tqdm(total=len(pending), desc="population (dask)", unit="model", disable=not settings.progress) as bar:
            for future in as_completed(futures):
                bar.update(len(future.result()))
        return str(client.scheduler.address)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_population(
    preset: Preset | str,
    seed: int,
    out_dir: str | Path,
    model_indices: list[int] | None = None,
    data_dir: str | Path | None = None,
    scheduler: str | None = None,
    workers: int = 1,
    chunk_size: int | None = None,
    device: str | None = None,
    cut: GeneralizationCut | None = None,
    train_workers: int | None = None,
    inference_threads: int | None = 1,
    progress: bool = True,
    train_only: bool = False,
    replace_evaluations: bool = False,
    recipe: str | None = None,
) -> Path:
    """Train and evaluate the models ``model_indices`` of a population; write stats and manifest.

    Parameters
    ----------
    preset : run size and recipe; seed : population seed (datasets, model seeds, grid disorder).
    out_dir : population folder.
    model_indices : models to handle (default: all ``preset.n_models``); finished ones are skipped.
    data_dir : datasets folder (default ``00_demonstrations_data/datasets/<preset>``; made if missing).
    scheduler : address of a Dask scheduler (``tcp://HOST:PORT``) to run chunks of models on.
    workers : without a scheduler, > 1 starts a local Dask cluster of that many processes.
    chunk_size : models per Dask task (default: the pending models spread over the cluster's threads).
    device : torch device (default: best available).
    cut : the well-generalizing cut (default MAE <= 0.2).
    train_workers : training-engine processes in the in-process mode (default: usable cores).
    inference_threads : torch threads of the evaluation (1: see :func:`ssh_ood.ood.model_evaluation.evaluate_model_dirs`).
    train_only : train the pending models without evaluating them (``stats.csv`` then lists only the
        models evaluated before).
    replace_evaluations : re-evaluate models evaluated on another grid or with other weights (refused
        otherwise); ``stats.csv`` and the manifest then describe the new evaluation.
    recipe : training recipe of :mod:`ssh_ood.nets.recipes` (default: the paper's); the manifest names any other.

    Returns
    -------
    Path of ``stats.csv`` (covering every finished model of the folder).
    """
    started = time.time()
    preset = get_preset(preset)
    model_seed(seed, 0)  # validates the seed
    recipe = get_recipe(recipe).name
    cut = GeneralizationCut() if cut is None else cut
    indices = list(range(preset.n_models)) if model_indices is None else sorted(set(model_indices))
    if not indices:
        raise ValueError("model_indices must name at least one model")
    for index in indices:
        model_seed(seed, index)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if device is not None:
        select_device(device)  # fail early on an unknown or absent device
    out_dir = Path(out_dir)
    with hold_folder(out_dir) as hold:  # one writer; a busy, unwritable or shipped folder fails here
        _check_manifest(out_dir, preset.name, int(seed), recipe)
        open_folder(out_dir, run_identity(preset.name, seed))
        data_dir = Path(data_dir) if data_dir is not None else datasets_dir(preset.name)
        settings = PopulationSettings(
            preset=preset.name, seed=int(seed), out_dir=str(out_dir), data_dir=str(data_dir), device=device,
            cut_metric=cut.metric, threshold=cut.threshold, train_workers=train_workers,
            inference_threads=inference_threads, progress=progress, train_only=train_only,
            replace_evaluations=replace_evaluations, recipe=recipe,
        )
        for index in indices:  # a trained model of another run (preset, seed, recipe) fails here, before any work
            if is_complete(settings.model_dir(index)):
                _check_member(settings.model_dir(index), settings, index)
        pending = [i for i in indices if not (is_complete(settings.model_dir(i)) if train_only
                                               else is_finished(settings.model_dir(i), settings, i))]
        where = "in-process"
        if pending:
            ensure_datasets(preset, settings.seed, data_dir, progress)
            if scheduler is not None or workers > 1:
                where = _run_on_dask(settings, pending, scheduler, workers, chunk_size, hold.token)
            else:
                run_chunk(settings, pending)
        run = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
            "models_requested": indices,
            "models_done_now": pending,
            "wall_time_s": round(time.time() - started, 3),
            "device": _device_description(device),
            "host": socket.gethostname(),
            "scheduler": where if scheduler is not None or workers > 1 else None,
            "workers": workers,
            "train_only": train_only,
        }
        write_manifest(out_dir, settings, run)
        write_summary(out_dir)
        return write_stats(out_dir, cut)


# ----------------------------------------------------------------------------------------------
# manifest (the stats table: ssh_ood.ood.population_tables)
# ----------------------------------------------------------------------------------------------
def _device_description(device: str | None) -> str:
    """The torch device with the GPU name, or the CPU model and usable cores."""
    resolved = select_device(device)
    if resolved.type == "cuda":
        return f"{resolved} ({torch.cuda.get_device_name(resolved)})"
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return f"{resolved} ({cpu}, {available_cpus()} usable cores)"


def _check_manifest(out_dir: Path, preset: str, seed: int, recipe: str = DEFAULT_RECIPE) -> dict:
    """The existing manifest of ``out_dir`` ({} if none); ``ValueError`` if it is another population's."""
    path = out_dir / MANIFEST_FILE
    previous = load_json_object(path, MANIFEST_FIELDS) if path.is_file() else {}
    if previous and (previous.get("preset") != preset or previous.get("seed") != seed):
        raise ValueError(f"{path}: population of preset {previous.get('preset')!r}, seed {previous.get('seed')}, not "
                         f"{preset!r}, {seed}; choose another output folder")
    if previous and previous.get("recipe", DEFAULT_RECIPE) != recipe:
        raise ValueError(f"{path}: population of recipe {previous.get('recipe', DEFAULT_RECIPE)!r}, not {recipe!r}; "
                         "choose another output folder")
    return previous


def write_manifest(out_dir: Path, settings: PopulationSettings, run: dict) -> Path:
    """Create or update ``manifest.json``: provenance, plus ``run`` appended to the list of invocations.

    The read-modify-write happens while holding the folder (:func:`ssh_ood.base.run_folders.hold_folder`).
    """
    with hold_folder(out_dir):
        return _write_manifest(Path(out_dir), settings, run)


def _write_manifest(out_dir: Path, settings: PopulationSettings, run: dict) -> Path:
    path = Path(out_dir) / MANIFEST_FILE
    previous = _check_manifest(Path(out_dir), settings.preset, settings.seed, settings.recipe)
    runs = [*previous.get("runs", []), run]
    finished = sorted(int(d.name.split("_")[1]) for d in Path(out_dir).glob("model_*") if is_complete(d))
    manifest = {
        "preset": settings.preset,
        "preset_fields": get_preset(settings.preset).to_dict(),
        "seed": settings.seed,
        **({"recipe": settings.recipe} if settings.recipe != DEFAULT_RECIPE else {}),
        "seeds": {
            "datasets": settings.seed,
            "grid_disorder": settings.seed,
            "models": {str(i): model_seed(settings.seed, i) for i in finished},
        },
        "grid": settings.grid.to_dict(),
        "evaluated_weights": WEIGHT_FILES[settings.which],
        "generalization_cut": settings.cut.to_dict(),
        "data_dir": settings.data_dir,
        "packages": package_versions(),
        "git": git_state(),
        "total_wall_time_s": round(sum(r["wall_time_s"] for r in runs), 3),
        "runs": runs,
    }
    return save_json(path, manifest)


# ----------------------------------------------------------------------------------------------
# loading a population, creating it if missing
# ----------------------------------------------------------------------------------------------
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
    passed on to it). With ``create=False`` a missing population raises ``FileNotFoundError`` with the
    command that makes one.
    """
    folder = Path(folder)
    if (folder / STATS_FILE).is_file() or not create:
        return load_population(folder)
    preset = get_preset(preset)
    fallback = Path(fallback_dir) if fallback_dir is not None else default_population_dir(preset.name, seed)
    print(f"{folder} holds no population; using a {preset.name!r} population ({preset.n_models} models) in {fallback}.\n"
          f"The paper's population: python -m ssh_ood population --preset paper --seed 0 --out {folder}")
    run_population(preset, seed, fallback, data_dir=data_dir, progress=progress, **options)
    return load_population(fallback)


# ----------------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------------
def default_population_dir(preset: str, seed: int) -> Path:
    """``00_demonstrations_data/runs/<preset>_seed<seed>_population``."""
    return RUNS_DIR / f"{preset}_seed{seed}_population"


def record_evaluation(out_dir: Path, grid: GeneralizationGrid, which: str, cut: GeneralizationCut, run: dict) -> Path:
    """After models of a population were (re-)evaluated: the manifest's grid, weights, cut and list of
    invocations, and ``stats.csv``, rewritten to match the models' results; returns the stats path."""
    with hold_folder(out_dir):
        path = Path(out_dir) / MANIFEST_FILE
        manifest = load_json_object(path, MANIFEST_FIELDS)
        runs = [*manifest["runs"], run]
        manifest.update(grid=grid.to_dict(), evaluated_weights=WEIGHT_FILES[which], generalization_cut=cut.to_dict(),
                        runs=runs, total_wall_time_s=round(sum(r.get("wall_time_s", 0.0) for r in runs), 3))
        save_json(path, manifest)
        return write_stats(out_dir, cut)
