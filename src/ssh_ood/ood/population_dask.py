"""Chunks of a population: :func:`run_chunk` trains and evaluates some models (in this process or as a task on
a Dask worker), :func:`run_on_dask` sends chunks to a Dask cluster.

Workers of an external cluster (``dask scheduler`` + ``dask worker``, or dask-jobqueue on an HPC batch system)
need this package installed in their environment, checked before any work is sent
(:mod:`ssh_ood.ood.dask_workers`), and the output folder on a shared file system.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import replace

from tqdm.auto import tqdm

from ..base.parent_watch import die_with_parent
from ..base.run_folders import hold_folder
from ..physics.datasets import ensure_datasets
from .dask_workers import map_on_cluster
from .population_evaluation import evaluate_members
from .population_settings import PopulationSettings
from .population_training import train_members

_CHUNK_LOCK = threading.Lock()


def run_chunk(settings: PopulationSettings, indices: list[int]) -> list[int]:
    """Train (if needed) and evaluate (if needed) the models ``indices``; returns them.

    Runs in this process or on a Dask worker; everything it produces goes to the model folders. Chunks
    that share a process (a Dask worker with several threads) run one at a time: the torch / numba thread
    settings are process-wide. Give each worker one thread and start more workers instead.
    """
    if settings.lock_token is not None:  # a worker of the holder: it dies with the holder's process when local
        die_with_parent(os.getppid())  # (ssh_ood.base.parent_watch); every write checks the holder's lock
    with _CHUNK_LOCK, hold_folder(settings.out_dir, token=settings.lock_token):
        ensure_datasets(settings.preset, settings.seed, settings.data_dir, settings.progress)
        train_members(settings, indices)
        if not settings.train_only:
            evaluate_members(settings, indices)
        return list(indices)


def _split(indices: list[int], chunk_size: int) -> list[list[int]]:
    return [indices[start : start + chunk_size] for start in range(0, len(indices), chunk_size)]


def run_on_dask(settings: PopulationSettings, pending: list[int], token: str) -> str:
    """Dispatch chunks of ``pending`` to a Dask cluster (``settings.scheduler``, or a local one of
    ``settings.workers`` processes); returns the scheduler's address.

    ``token``: this process's hold on the population folder, which the workers join (:mod:`ssh_ood.base.run_folders`).
    """
    from distributed import Client, LocalCluster

    cluster = None
    if settings.scheduler is None:
        cluster = LocalCluster(
            n_workers=settings.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        )
        client = Client(cluster)
    else:
        try:
            client = Client(settings.scheduler, timeout=30)
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"--scheduler: cannot reach the Dask scheduler at {settings.scheduler!r} ({exc})") from None
    try:
        slots = max(1, sum(client.nthreads().values()))
        size = settings.chunk_size or math.ceil(len(pending) / slots)
        chunks = _split(pending, size)
        # one thread per chunk: a worker process runs one chunk at a time (run_chunk) on one core
        worker_settings = replace(settings, progress=False, train_workers=1, inference_threads=1, generation_threads=1,
                                  lock_token=token)
        with tqdm(total=len(pending), desc="population (dask)", unit="model", disable=not settings.progress) as bar:
            for done in map_on_cluster(client, run_chunk, [worker_settings] * len(chunks), chunks):
                bar.update(len(done))
        return str(client.scheduler.address)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
