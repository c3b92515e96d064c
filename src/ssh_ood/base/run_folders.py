"""One writer per output folder: an OS-level lock, the folder's identity, and read-only shipped data.

Every command that writes into a folder (a training run, a population, a datasets folder, highlighted
networks) first takes :func:`hold_folder` on it. Taking it

* creates the folder if needed and fails at once, with one line, if it cannot be written (``--out``
  names a file, a read-only folder...): before any work starts;
* refuses folders of the data shipped with the repository (:func:`ssh_ood.base.paths.is_shipped`) unless the
  command was given ``--allow-shipped`` (:func:`allow_shipped_writes`);
* takes an exclusive ``flock`` on ``<folder>/.run.lock`` for as long as the command runs. A second
  process is refused with a message naming the holder (pid, host, command, start time), unless it runs the
  identical command line: that one waits for the holder and then finds the work done, as two identical
  commands did before the lock existed. The kernel drops the lock when its process ends, however it ends,
  so the lock of a killed process is free at once: no stale lock to clean up. A folder whose content is the
  same whoever writes it (the datasets of one preset and seed, shared by several runs) is held with that
  content's identity (``shared``): a command needing the same content waits instead, then finds it written.

Within one process the hold is re-entrant (a population holds its folder and trains into it). Processes
that work for the holder (Dask workers running chunks of a population) join its hold with the token the
holder handed them (:attr:`FolderHold.token`): they write their own model folders, and only the holder
rewrites the folder's shared files (summary, stats, manifest).

A run folder's identity (preset, seeds, recipe, data fingerprint) is fixed in ``run.json`` by the first
writer (:func:`check_identity`).
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from .io_utils import load_json_object, save_json
from .paths import is_shipped
from .safe_files import NOFOLLOW, LinkRefused, guard_folder, name_folder

LOCK_FILE = ".run.lock"
IDENTITY_FILE = "run.json"

_ALLOW_SHIPPED = [False]


@dataclass
class FolderHold:
    """This process's hold on a folder: ``owner`` (took the lock) or a helper joining the owner's hold."""

    folder: Path
    token: str
    owner: bool
    fd: int | None
    depth: int = 1


_HELD: dict[Path, FolderHold] = {}


class FolderBusy(ValueError):
    """Another process holds the folder."""


@contextmanager
def allow_shipped_writes(enabled: bool = True) -> Iterator[None]:
    """Within the block, :func:`hold_folder` accepts folders of the shipped data (``--allow-shipped``)."""
    previous = _ALLOW_SHIPPED[0]
    _ALLOW_SHIPPED[0] = bool(enabled)
    try:
        yield
    finally:
        _ALLOW_SHIPPED[0] = previous


def check_not_shipped(path: str | Path) -> None:
    """``ValueError`` in one line if ``path`` lies in the shipped data, unless within :func:`allow_shipped_writes`."""
    if is_shipped(path) and not _ALLOW_SHIPPED[0]:
        raise ValueError(f"{path}: part of the data shipped with the repository; write elsewhere, or pass "
                         "--allow-shipped to change it on purpose")


def check_writable_folder(folder: str | Path) -> Path:
    """Create ``folder`` if needed and check a file can be created in it; ``ValueError`` in one line if not."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder}: exists and is not a folder; choose another output folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write_probe.{os.getpid()}"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o600))
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"{folder}: cannot write there ({exc.strerror or exc}); choose another output folder") from None
    return folder


def _holder_text(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another process"
    if not isinstance(info, dict):
        return "another process"
    return (f"pid {info.get('pid')} on {info.get('host')} since {info.get('started')} "
            f"(`{info.get('command')}`)")


def _lock_is_taken(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR | NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock taken just now
    return False


def _same_command_holds(path: Path) -> bool:
    """Whether the lock at ``path`` is held by this very command line on this host."""
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("host") == socket.gethostname() and info.get("command") == _command_line()


def _same_content_holds(path: Path, shared: dict | None) -> bool:
    """Whether the holder of the lock at ``path`` writes the same shared content (``shared``, e.g. the datasets
    of one preset and seed). The holder writes its lock information right after taking the lock: an empty one
    is read again for a moment."""
    if shared is None:
        return False
    for _ in range(20):
        try:
            info = json.loads(path.read_text() or "null")
        except (OSError, ValueError):
            info = None
        if isinstance(info, dict):
            return info.get("shared") == shared
        time.sleep(0.05)
    return False


def _check_holder(folder: Path, token: str) -> None:
    """:class:`FolderBusy` unless the process that handed out ``token`` still holds ``folder``."""
    path = folder / LOCK_FILE
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if (path.is_symlink() or not isinstance(info, dict) or info.get("token") != token
            or not _lock_is_taken(path)):
        raise FolderBusy(f"{folder}: the process that handed out this work no longer holds the folder "
                         f"(now: {_holder_text(path)}); run the command again")


def _acquire(folder: Path, token: str | None, shared: dict | None = None) -> FolderHold:
    path = folder / LOCK_FILE
    if token is not None:  # a helper of the holder: the holder's token must be in a lock still held
        _check_holder(folder, token)
        return FolderHold(folder, token, owner=False, fd=None)
    check_not_shipped(folder)
    check_writable_folder(folder)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | NOFOLLOW, 0o666)
    except OSError as exc:
        if path.is_symlink():
            raise LinkRefused(f"{path}: a symbolic link; refused: the lock is never written through a link, remove "
                              "it") from None
        raise ValueError(f"{path}: cannot create the lock file ({exc.strerror or exc})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        wait = _same_content_holds(path, shared)
        if not wait and not _same_command_holds(path):
            os.close(fd)
            raise FolderBusy(f"{folder}: in use by {_holder_text(path)}; wait for it to finish or choose another "
                             "output folder") from None
        # the identical command (or one writing the same shared content) is running: wait for it, then find its
        # work done (as before the lock existed)
        print(f"{folder}: {'another command writes it' if wait else 'the same command is running'} ({_holder_text(path)}); waiting for it to finish",
              file=sys.stderr, flush=True)
        fcntl.flock(fd, fcntl.LOCK_EX)
    token = secrets.token_hex(16)
    info = {"pid": os.getpid(), "host": socket.gethostname(), "token": token,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "command": _command_line(), "shared": shared}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    return FolderHold(folder, token, owner=True, fd=fd)


def _command_line() -> str:
    program = sys.argv[0] if sys.argv else ""
    if Path(program).name == "__main__.py":
        program = f"python -m {Path(program).parent.name}"
    return " ".join([program, *sys.argv[1:]])


@contextmanager
def hold_folder(folder: str | Path, token: str | None = None, shared: dict | None = None) -> Iterator[FolderHold]:
    """Hold ``folder`` for writing for the duration of the block (module docstring).

    Parameters
    ----------
    folder : the folder (created if missing).
    token : the :attr:`FolderHold.token` of the process that holds it, for a process working on its behalf.
    shared : what the folder will hold, when that is the same whoever writes it (the datasets of one preset
        and seed, shared by several runs): a command holding it for the same ``shared`` is waited for instead
        of refused, and the waiting command then finds the files written.

    Raises
    ------
    FolderBusy
        (a ``ValueError``) if another process holds the folder, naming it.
    ValueError
        if the folder cannot be written or is shipped data without :func:`allow_shipped_writes`.
    """
    key = Path(folder).resolve()
    hold = _HELD.get(key)
    if hold is not None:
        hold.depth += 1
    else:
        name_folder(folder)
        hold = _HELD[key] = _acquire(Path(folder), token, shared)
        if not hold.owner:  # every write checks that the holder still holds it (ssh_ood.base.parent_watch)
            guard_folder(key, lambda: _check_holder(Path(folder), hold.token))
    try:
        yield hold
    finally:
        hold.depth -= 1
        if hold.depth == 0:
            del _HELD[key]
            guard_folder(key, None)
            if hold.fd is not None:
                os.close(hold.fd)  # releases the flock


@contextmanager
def hold_folders(folders: list[Path]) -> Iterator[None]:
    """:func:`hold_folder` on several folders (sorted, so two processes take them in the same order)."""
    with ExitStack() as stack:
        for folder in sorted({Path(f).resolve() for f in folders}):
            stack.enter_context(hold_folder(folder))
        yield


def _differences(stored: dict, expected: dict, prefix: str = "") -> list[str]:
    """``"key: stored there, expected here"`` for each differing entry, nested objects by their own keys."""
    found = []
    for key, value in expected.items():
        other = stored.get(key)
        if isinstance(value, dict) and isinstance(other, dict):
            found += _differences(other, value, f"{prefix}{key}.")
        elif other != value:
            found.append(f"{prefix}{key}: {other!r} there, {value!r} here")
    return found


def check_identity(folder: Path, expected: dict, create: bool) -> None:
    """Compare ``expected`` with the identity fixed for ``folder``; write it first if there is none.

    Parameters
    ----------
    folder : a run folder.
    expected : identity of the command about to write there (JSON-compatible values).
    create : write ``run.json`` when missing (the caller holds the folder).

    Raises
    ------
    ValueError
        naming the file and every differing field when the folder belongs to another run.
    """
    path = folder / IDENTITY_FILE
    if path.is_file():
        differences = _differences(load_json_object(path, {key: object for key in expected}), expected)
        if differences:
            raise ValueError(f"{path}: the folder holds a different run ({'; '.join(differences)}); choose another "
                             "output folder")
    elif create:
        save_json(path, expected)
