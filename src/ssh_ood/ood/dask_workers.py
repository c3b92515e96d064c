"""Running this package's functions on a Dask cluster: the scheduler and every worker must import the package.

A Dask task travels as a pickle that names its function and arguments by module (``ssh_ood.ood...``): the
scheduler unpickles the task graph and each worker unpickles its tasks, importing those modules. In a process
whose environment lacks this package (a ``dask worker`` started from another virtual environment, a batch
job's Python) that fails deep inside Dask: the scheduler refuses the graph ("Error during deserialization of
the task graph"), a worker drops its connection and exits, its task goes to another worker or, once
``distributed.scheduler.allowed-failures`` workers died on it, fails with ``KilledWorker``; with no worker left
the run just waits.

:func:`map_on_cluster` asks the scheduler and every connected worker to import the package before sending any
work, and turns a worker's death on a task later (a worker that joined after the check) into the same kind of
one-line error, naming the fix: install this package in the cluster's environment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..base.paths import install_hint

#: the import name every process of the cluster needs
PACKAGE = __name__.split(".")[0]
_PROBE = f"import {PACKAGE}"


def _missing_package(exc: object) -> bool:
    """Whether ``exc`` is the failure to import this package (or one of its modules)."""
    return isinstance(exc, ImportError) and (exc.name or "").split(".")[0] == PACKAGE


def _fix(where: str = "workers'") -> str:
    return f"install this package in the {where} environment ({install_hint()})"


def unimportable(client: Any) -> tuple[bool, list[str]]:
    """Whether the scheduler cannot import this package, and the addresses of the connected workers that cannot.

    The probe is ``exec("import ssh_ood", {})``, sent with :meth:`distributed.Client.run_on_scheduler` and
    :meth:`distributed.Client.run`: ``exec`` is a builtin, so the probe itself unpickles in any Python and only
    the import it asks for can fail.

    Parameters
    ----------
    client : a connected ``distributed.Client``.

    Returns
    -------
    ``(scheduler_fails, workers)``: workers sorted by address; ``(False, [])`` when every process imports it.
    """
    try:
        client.run_on_scheduler(exec, _PROBE, {})
        scheduler_fails = False
    except ImportError as exc:
        if not _missing_package(exc):
            raise
        scheduler_fails = True
    results = client.run(exec, _PROBE, {}, on_error="return")
    return scheduler_fails, sorted(address for address, result in results.items() if _missing_package(result))


def check_cluster_imports(client: Any) -> None:
    """``ValueError`` in one line, naming the processes and the fix, if the scheduler or a connected worker
    cannot import this package; nothing otherwise."""
    scheduler_fails, workers = unimportable(client)
    if scheduler_fails:
        fix = _fix("scheduler's and workers'")
        raise ValueError(f"the Dask scheduler at {client.scheduler.address} cannot import {PACKAGE}: {fix}")
    if workers:
        raise ValueError(f"the Dask workers at {', '.join(workers)} cannot import {PACKAGE}: {_fix()}")


def _failed_later(client: Any, exc: BaseException) -> ValueError | None:
    """The one-line error for a task that failed because a worker cannot import this package (a worker that
    joined after :func:`check_cluster_imports`); None for any other failure."""
    from distributed import KilledWorker

    if _missing_package(exc):  # a worker that reports the failed import as the task's error
        return ValueError(f"a Dask worker cannot import {PACKAGE} ({exc}): {_fix()}")
    if isinstance(exc, KilledWorker):  # a worker that could not unpickle its task dropped out of the cluster
        _, workers = unimportable(client)
        if workers:
            return ValueError(f"the Dask workers at {', '.join(workers)} cannot import {PACKAGE}: {_fix()}")
        return ValueError(f"the Dask worker at {exc.last_worker.address} died when a task reached it; a worker that "
                          f"cannot import {PACKAGE} dies this way (its log then shows ModuleNotFoundError): {_fix()}")
    return None


def map_on_cluster(client: Any, function: Callable, *iterables: Iterable) -> Iterator[Any]:
    """``client.map(function, *iterables, pure=False)`` after :func:`check_cluster_imports`; yields each task's
    result as it completes (in completion order).

    A task lost because its worker cannot import this package raises the one-line ``ValueError`` of
    :func:`check_cluster_imports` (after cancelling the other tasks); any other failure of a task is raised as
    it is.
    """
    from distributed import as_completed

    check_cluster_imports(client)
    futures = client.map(function, *iterables, pure=False)
    try:
        for future in as_completed(futures):
            try:
                result = future.result()
            except Exception as exc:
                error = _failed_later(client, exc)
                if error is None:
                    raise
                raise error from None
            yield result
    except BaseException:  # a failure, or the caller stopped early: nothing is left running
        client.cancel(futures)
        raise
