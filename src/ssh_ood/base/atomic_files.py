"""Atomic replacement of a file: a temporary file in the destination folder, then ``os.replace``.

The primitive under every writer of the project: :mod:`ssh_ood.base.io_utils` (which also records what it
writes) and :mod:`ssh_ood.base.file_records` (which writes the records themselves) both use it, so neither
imports the other for it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .safe_files import check_guards, check_not_linked


def current_umask() -> int:
    """The process's file-mode creation mask, read without ever loosening it (not even for an instant)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o077)  # the only portable read is a set: set the strictest mask meanwhile, then restore
    os.umask(mask)
    return mask


def replace_atomically(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file + rename), without touching the folder's record.

    The file's mode is 0666 less the umask, as for a file created by ``open``. A failed write (a full disk,
    ``OSError``) leaves the previous file as it was and raises an ``OSError`` that names the file and says so.
    A destination that is a link, or lies in a linked folder, is refused
    (:func:`ssh_ood.base.safe_files.check_not_linked`), and so is a write on behalf of a folder's holder that no
    longer holds it (:mod:`ssh_ood.base.parent_watch`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    check_not_linked(path)
    check_guards(path)  # a helper of another process's hold writes only while that process holds the folder
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
            raise OSError(exc.errno, f"{path}: could not be written ({exc.strerror or exc}); the previous file, if "
                          "any, is unchanged") from None
        raise
    return path
