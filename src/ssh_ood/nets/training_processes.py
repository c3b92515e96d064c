"""Processes and threads of the CPU trainer: malloc tuning, one-thread sections, pool workers."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import queue as queue_module
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from ..base.parent_watch import die_with_parent

Reporter = Callable[[dict], None]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_WORKER_EVENTS: multiprocessing.Queue | None = None


def tune_malloc() -> bool:
    """Keep freed activation buffers in the heap (glibc): raise the mmap and trim thresholds to 1 GiB.

    By default glibc serves allocations above ~128 KiB-32 MiB with fresh ``mmap`` pages and returns
    them on free, so every (B, C, 26, 26) activation of every step is page-faulted in again; on this
    CPU that made the convolutions ~3x slower. Process-wide; a no-op where glibc is absent.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):
        return False


@contextmanager
def single_thread() -> Iterator[None]:
    """Run the enclosed code with one torch intra-op thread, restoring the previous count after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def worker_init(events: multiprocessing.Queue) -> None:
    """Initializer of a pool worker: one thread, tuned malloc, events to ``events``, exit with the parent.

    Ctrl-C reaches every process of the terminal's group; the worker ignores it and the parent, which
    reports the interruption once, terminates the pool.
    """
    global _WORKER_EVENTS
    _WORKER_EVENTS = events
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    tune_malloc()
    die_with_parent(os.getppid())  # Linux: the kernel ends the worker with its parent; elsewhere the thread below
    threading.Thread(target=exit_with_parent, args=(os.getppid(),), daemon=True, name="parent-watch").start()


def worker_report(event: dict) -> None:
    """Send a progress event from a pool worker to the parent (see :func:`worker_init`)."""
    _WORKER_EVENTS.put(event)


def exit_with_parent(parent_pid: int, period_s: float = 0.5) -> None:
    """End this worker once the process that started it is gone.

    A parent killed by SIGKILL or SIGTERM cannot stop its pool, and the orphaned workers would go on
    training (and writing checkpoints) for hours. Exiting loses at most the epoch in progress: the
    checkpoints are written atomically at the end of each epoch.
    """
    while os.getppid() == parent_pid:
        time.sleep(period_s)
    os._exit(1)


def drain(events: multiprocessing.Queue, report: Reporter, timeout: float) -> None:
    """Pass every queued event to ``report``, waiting at most ``timeout`` seconds for the first."""
    try:
        report(events.get(timeout=timeout))
        while True:
            report(events.get_nowait())
    except queue_module.Empty:
        return


def available_cpus() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def make_groups(pending: list[int], engine: str, n_workers: int) -> list[tuple[int, ...]]:
    """Lockstep groups: all models at once for one process; else ~4 groups per worker, round robin."""
    if engine == "stacked" or n_workers <= 1:
        return [tuple(pending)]
    n_groups = min(len(pending), 4 * n_workers)
    return [tuple(pending[g::n_groups]) for g in range(n_groups)]
