"""Worker processes die with the process that started them, and never write once its hold on a folder is gone.

A command killed by ``SIGKILL`` (``kill -9``, the out-of-memory killer) cannot stop its workers. Left alone,
they would go on training and write model folders while nobody holds the folder's lock
(:mod:`ssh_ood.base.run_folders`). Two guards, both needed:

* :func:`die_with_parent`: on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills the worker the
  moment its parent ends, however it ends (elsewhere a no-op; the caller keeps a polling fallback). The local
  workers of a population (Dask's, and the training engine's pool) call it first thing.
* the owner's lock as a heartbeat: a process working on behalf of another's hold
  (:func:`ssh_ood.base.run_folders.hold_folder` with a token, e.g. a worker of a remote Dask cluster, which no
  signal of this machine reaches) checks before every write that the owner still holds the folder
  (:func:`ssh_ood.base.safe_files.check_guards`), and stops with :class:`ssh_ood.base.run_folders.FolderBusy`
  otherwise.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> bool:
    """Have the kernel kill this process with ``SIGKILL`` when its parent (``parent_pid``) ends.

    Returns whether the kernel took the request (Linux); exits at once if the parent is already gone (it may
    have died before the request was made).
    """
    taken = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            taken = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
        except (OSError, AttributeError):
            taken = False
    if os.getppid() != parent_pid:
        os._exit(1)
    return taken
