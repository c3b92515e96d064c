"""Paths read from files are data: resolved, and refused unless they lie where the command may go.

A run folder's files name other folders (a population's ``manifest.json`` names its datasets folder). Such a
file may have been edited, by accident or on purpose, to point anywhere: a command that followed it would
read foreign data or, worse, generate datasets into a system folder. :func:`confined_path` resolves such a
path (links and ``..`` included; a relative path is taken from the repository's root, where the shipped
manifests were written) and accepts it only inside the folders the command's arguments allow: the run it
was given, and the project's datasets folder, the default of every ``--data-dir``. Anything else is refused in
one line that names the file, the field and the way to use that folder on purpose (its command-line option).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .paths import DATASETS_DIR, REPO_ROOT


def confined_path(value: object, source: str | os.PathLike, field: str, allowed: Iterable[str | os.PathLike],
                  option: str) -> Path:
    """The folder ``value`` (read from field ``field`` of the file ``source``), resolved, if it lies inside one of
    the folders ``allowed`` or the project's datasets folder.

    Parameters
    ----------
    value : the path as read from the file (a string; relative paths are taken from the repository's root).
    source, field : the file and its field, named in the refusal.
    allowed : the folders the command was given (the run or population folder).
    option : the command-line option that names such a folder explicitly (e.g. ``"--data-dir"``), suggested.

    Raises
    ------
    ValueError
        in one line if ``value`` is not a path or lies outside every allowed folder.
    """
    if not isinstance(value, str) or not value:
        raise ValueError(f"{source}: field {field!r} must be a folder path, found {value!r}")
    path = Path(value)
    resolved = (path if path.is_absolute() else REPO_ROOT / path).resolve()
    roots = [Path(root).resolve() for root in [*allowed, DATASETS_DIR]]
    if not any(resolved.is_relative_to(root) for root in roots):
        raise ValueError(f"{source}: field {field!r} points outside the folders this command may use ({resolved} is "
                         f"in none of {', '.join(str(r) for r in roots)}); to use that folder, name it with {option}")
    return resolved
