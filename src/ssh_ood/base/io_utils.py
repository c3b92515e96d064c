"""Safe, atomic file input/output: ``.npz`` without pickle and JSON.

Every writer goes through a temporary file in the destination folder followed by ``os.replace``, so a
killed process never leaves a half-written file under the final name; the file gets the permissions of a
plain ``open(path, "w")`` (0666 less the umask), not the temporary file's private 0600. Readers turn missing or malformed
files into clear ``FileNotFoundError`` / ``ValueError`` messages that name the file.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .atomic_files import replace_atomically
from .file_records import check_bytes, note_written
from .validation import is_integer


def atomic_write_bytes(path: str | os.PathLike, data: bytes, identity: Mapping[str, Any] | None = None) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`ssh_ood.base.atomic_files.replace_atomically`); parent
    folders are created.

    In a recorded folder (:mod:`ssh_ood.base.file_records`) the file's hash, and ``identity`` if given, enter the
    folder's record.
    """
    path = replace_atomically(path, data)
    note_written(path, data, identity)
    return path


def save_npz(path: str | os.PathLike, arrays: Mapping[str, Any], compress: bool = True,
             identity: Mapping[str, Any] | None = None) -> Path:
    """Save a mapping of arrays to ``path`` (``.npz``) atomically; object arrays are refused.

    Parameters
    ----------
    path : destination file, conventionally ending in ``.npz``.
    arrays : name -> array-like (numbers or strings; no Python objects).
    compress : use ``numpy.savez_compressed``.
    identity : stored with the file's hash in a recorded folder (:func:`atomic_write_bytes`).
    """
    converted = {}
    for key, value in arrays.items():
        arr = np.asarray(value)
        if arr.dtype == object:
            raise ValueError(f"save_npz: entry {key!r} is an object array; only numeric or string arrays are stored")
        converted[key] = arr
    buffer = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buffer, **converted)
    return atomic_write_bytes(path, buffer.getvalue(), identity)


def load_npz(path: str | os.PathLike, required: Iterable[str] = (), verify: bool = True) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` file into memory, with ``allow_pickle=False``; in a recorded folder the
    bytes are then checked against the record (:func:`ssh_ood.base.file_records.check_bytes`; ``verify=False``: the
    caller checks them after its own checks of the content).

    Raises
    ------
    FileNotFoundError
        if ``path`` does not exist.
    ValueError
        if the file is not a readable ``.npz`` archive, lacks one of the ``required`` keys or differs from its
        folder's record.
    """
    path = Path(path)
    raw = _read(path)
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
            data = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable .npz archive ({exc})") from exc
    missing = [key for key in required if key not in data]
    if missing:
        raise ValueError(f"{path}: missing entries {missing}; found {sorted(data)}")
    if verify:
        check_bytes(path, raw)
    return data


def _read(path: Path) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return path.read_bytes()


def save_json(path: str | os.PathLike, obj: Any, identity: Mapping[str, Any] | None = None) -> Path:
    """Write ``obj`` as indented JSON atomically; numpy scalars and arrays are converted (``identity``: see
    :func:`atomic_write_bytes`)."""
    text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default, allow_nan=True)
    return atomic_write_bytes(path, (text + "\n").encode(), identity)


def load_json(path: str | os.PathLike) -> Any:
    """Read a JSON file with clear errors for missing, malformed or (in a recorded folder) altered files."""
    raw, data = _read_json(Path(path))
    check_bytes(path, raw)
    return data


def _read_json(path: Path) -> tuple[bytes, Any]:
    raw = _read(path)
    try:
        return raw, json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: malformed JSON ({exc})") from exc


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false", dict: "an object",
               list: "a list", object: "present"}


def load_json_object(path: str | os.PathLike, fields: Mapping[str, type | tuple[type, ...]]) -> dict:
    """Read a JSON file that must hold an object with the given fields of the given types.

    Parameters
    ----------
    path : the file.
    fields : field name -> expected type (``int`` excludes booleans, ``float`` accepts integers, ``object``
        any value, a tuple any of several, ``type(None)`` for null).

    Raises
    ------
    FileNotFoundError
        if the file does not exist.
    ValueError
        naming the file and the field if the file is malformed, not an object, lacks a field or a field has
        the wrong type.
    """
    raw, data = _read_json(Path(path))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: must hold a JSON object, found {type(data).__name__}")
    for name, expected in fields.items():
        if name not in data:
            raise ValueError(f"{path}: missing field {name!r}")
        kinds = expected if isinstance(expected, tuple) else (expected,)
        if not any(_has_type(data[name], kind) for kind in kinds):
            wanted = " or ".join(_TYPE_NAMES.get(kind, "null") for kind in kinds)
            raise ValueError(f"{path}: field {name!r} must be {wanted}, found {json.dumps(data[name])[:60]}")
    check_bytes(path, raw)  # in a recorded folder: after the content, the record
    return data


def _has_type(value: Any, kind: type) -> bool:
    if kind is object:
        return True
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return is_integer(value)
    return isinstance(value, kind)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serializable")


def load_documented_table(path: str | os.PathLike, columns: Iterable[str], command: str):
    """A CSV table whose header must be exactly ``columns``, as a pandas DataFrame.

    Raises ``FileNotFoundError`` naming ``command`` (the one that writes it) if the file is missing and
    ``ValueError`` if it cannot be parsed or its header differs.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; make it with `{command}`")
    raw = path.read_bytes()
    try:
        table = pd.read_csv(io.BytesIO(raw))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a readable CSV table ({exc})") from None
    if list(table.columns) != list(columns):
        raise ValueError(f"{path}: header differs from the documented columns; rerun `{command}`")
    check_bytes(path, raw)
    return table

