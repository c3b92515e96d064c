"""No write, truncation or deletion through a symbolic link.

A run folder is data that anyone may have edited: a file or a model folder inside it that is a symbolic link
would send the project's writes (an evaluation, a record, a lock's truncation) to wherever the link points,
another run's folder or a system file. Every writer of :mod:`ssh_ood.base.io_utils` and
:mod:`ssh_ood.base.file_records` and the folder lock of :mod:`ssh_ood.base.run_folders` therefore

* refuses a destination file that is a link (:func:`check_not_linked`, an ``lstat``, never followed);
* refuses a destination whose folder is a link inside a folder the command was given (``--out``,
  ``--population``...: :func:`name_folder`, called when the command takes hold of it), such as a model folder
  linked into another run; the folder given may itself be a link (the user's own choice);
* opens files it changes in place with ``O_NOFOLLOW`` (:data:`NOFOLLOW`).

Two more guards of what is read and written live here, below every reader and writer: refusals of a loader
are reduced to one line without advice to load unsafely (:func:`one_line_reason`), and a process writing on
behalf of another's hold checks that hold before each write (:func:`guard_folder`, :func:`check_guards`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

#: flag for ``os.open`` that makes opening a symbolic link fail (``ELOOP``) instead of following it
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

_NAMED: set[Path] = set()


class LinkRefused(ValueError):
    """A write, truncation or deletion that would go through a symbolic link."""


def name_folder(folder: str | os.PathLike) -> None:
    """Record ``folder`` (as given, not resolved) as named by the command: writes may go through it if a link."""
    _NAMED.add(Path(os.path.abspath(folder)))


def _describe(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "elsewhere"


def check_not_linked(path: str | os.PathLike) -> Path:
    """``path`` itself, after checking that it is not a symbolic link, nor its folder a link inside a folder named
    on the command line (:func:`name_folder`; such a folder may itself be a link).

    Raises
    ------
    LinkRefused
        (a ``ValueError``, one line) naming the link and where it points.
    """
    path = Path(path)
    if path.is_symlink():
        raise LinkRefused(f"{path}: a symbolic link (to {_describe(path)}); refused: files are never written through "
                          "links, remove the link")
    folder = Path(os.path.abspath(path.parent))
    if folder.is_symlink() and folder not in _NAMED and any(folder.is_relative_to(named) for named in _NAMED):
        raise LinkRefused(f"{folder}: a symbolic link (to {_describe(folder)}) inside a folder being written; refused: "
                          "a run's folders must be its own, replace the link by a folder")
    return path


def one_line_reason(exc: BaseException) -> str:
    """Why a reader failed, in one line and without advice to load unsafely.

    A loader's own message may run over several lines and suggest retrying without its safety check (torch's
    "re-running ``torch.load`` with ``weights_only`` set to ``False``..."): only its diagnosis is kept (torch's
    "WeightsUnpickler error: ..." part when present, otherwise the first line), lines joined, advice dropped.
    """
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text[text.index(marker) + len(marker):]
        text = text.split(". Check the recommended steps")[0]
        found = " ".join(text.split())[:160]
        return f"{type(exc).__name__}: it holds Python objects beyond tensors ({found}); refused, since loading them could run code"
    lines = [line.strip() for line in text.splitlines() if line.strip() and "weights_only" not in line]
    return f"{type(exc).__name__}: {lines[0][:200] if lines else 'unreadable'}"


_GUARDS: dict[Path, Callable[[], None]] = {}


def guard_folder(folder: str | os.PathLike, check: Callable[[], None] | None) -> None:
    """Run ``check`` (which raises to stop the write) before every write into ``folder`` or below it
    (:func:`check_guards`); ``None`` removes the guard. Used by processes that write on behalf of another's hold
    (:mod:`ssh_ood.base.parent_watch`)."""
    key = Path(folder).resolve()
    if check is None:
        _GUARDS.pop(key, None)
    else:
        _GUARDS[key] = check


def check_guards(path: str | os.PathLike) -> None:
    """Run the guard of every guarded folder that holds ``path`` (:func:`guard_folder`)."""
    if not _GUARDS:
        return
    where = Path(path).resolve()
    for folder, check in list(_GUARDS.items()):
        if where.is_relative_to(folder):
            check()
