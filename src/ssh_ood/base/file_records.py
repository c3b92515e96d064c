"""Every file of a recorded folder carries its content hash: written with it, verified on every read and skip.

A folder becomes *recorded* when the command that owns it declares it (:func:`open_folder`: a model, run,
population, datasets or highlighted folder, a pipeline's step stamps). From then on ``files.json`` in that
folder lists, for each file the project writes there, its SHA-256 and size (and the identity the writer gave,
e.g. the evaluation grid), under the folder's identity (kind, preset, seed, model index)::

    {"format": 1, "identity": {"kind": "model", "preset": "smoke", "seed": 0, "index": 3},
     "files": {"weights.pt": {"sha256": "…", "bytes": 31529}, "phase_diagram.npz": {…, "grid": {…}}},
     "checksum": "…"}

(``checksum``: the SHA-256 of the rest, so an edited record is caught as well).

Every atomic write (:func:`ssh_ood.base.io_utils.atomic_write_bytes`) into a recorded folder updates the entry
(:func:`note_written`), every safe reader of :mod:`ssh_ood.base.io_utils` checks the bytes it read against it
(:func:`verified_bytes`), and a deliberate deletion drops it (:func:`remove`). A file that is missing from the
record, differs from it, or lies in a folder whose record is missing or unreadable is *unverified*: readers
refuse it with one line (:class:`UnverifiedFile`, a ``ValueError``) naming the file and the problem, and the
"already done" checks of the commands treat it as not done, so the work is redone from its inputs.

The writes of one folder come from the one process that holds it (:mod:`ssh_ood.base.run_folders`), so the
read-modify-write of ``files.json`` needs no lock of its own.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .atomic_files import replace_atomically
from .safe_files import check_not_linked

RECORD_FILE = "files.json"
FORMAT = 1
#: files never recorded: the record itself, the folder lock, temporary files of the atomic writer
_IGNORED_PREFIXES = (".run.lock", ".write_probe.")
_HINT = ("redo it with the command that wrote it (it redoes what it cannot verify), or if you trust the folder "
         "as it is, record it with `python -m ssh_ood record-files {folder}`")


class UnverifiedFile(ValueError):
    """A file that cannot be trusted: missing from its folder's record, or different from it."""


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _record_path(folder: Path) -> Path:
    return Path(folder) / RECORD_FILE


def is_recorded(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` has a record of its files (``files.json``), readable or not."""
    return _record_path(Path(folder)).is_file()


def read_record(folder: str | os.PathLike) -> dict:
    """The ``files.json`` of ``folder``, its structure checked.

    Raises
    ------
    UnverifiedFile
        naming the record if it is missing, unreadable or malformed.
    """
    path = _record_path(Path(folder))
    if not path.is_file():
        raise UnverifiedFile(f"{path.parent}: no record of its files ({RECORD_FILE}); " + _HINT.format(folder=path.parent))
    try:
        record = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise UnverifiedFile(f"{path}: unreadable ({type(exc).__name__}); " + _HINT.format(folder=path.parent)) from None
    files = record.get("files") if isinstance(record, dict) else None
    if (not isinstance(record, dict) or record.get("format") != FORMAT or not isinstance(record.get("identity"), dict)
            or not isinstance(files, dict)
            or not all(isinstance(e, dict) and isinstance(e.get("sha256"), str) and isinstance(e.get("bytes"), int)
                       for e in files.values())):
        raise UnverifiedFile(f"{path}: not a record of this project (format {FORMAT}: identity, files with sha256 and "
                             "bytes); " + _HINT.format(folder=path.parent))
    if record.get("checksum") != _checksum(record):
        raise UnverifiedFile(f"{path}: its checksum does not match its entries (edited after it was written); "
                             + _HINT.format(folder=path.parent))
    return record


def _checksum(record: dict) -> str:
    """SHA-256 of a record's format, identity and entries (canonical JSON): an edited record is caught."""
    body = {key: record[key] for key in ("format", "identity", "files")}
    return sha256_bytes(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


def _write_record(folder: Path, record: dict) -> None:
    record = {**record, "checksum": _checksum(record)}
    text = json.dumps(record, indent=1, sort_keys=True)
    replace_atomically(_record_path(folder), (text + "\n").encode())


def open_folder(folder: str | os.PathLike, identity: Mapping[str, Any]) -> Path:
    """Declare ``folder`` recorded with ``identity`` (JSON values: kind, preset, seed, index...); returns it.

    A folder already recorded with the same identity keeps its record; one whose record is unreadable gets a
    new, empty one (its files become unverified and are redone by the caller, who holds the folder to write).

    Raises
    ------
    ValueError
        naming the record if the folder is recorded with another identity (the files of another run).
    """
    folder = Path(folder)
    check_not_linked(_record_path(folder))  # a linked model folder is another folder's: refused before any read
    identity = json.loads(json.dumps(dict(identity)))
    try:
        record = read_record(folder)
    except UnverifiedFile:
        record = None
    if record is not None:
        if record["identity"] != identity:
            differences = "; ".join(f"{key}: {record['identity'].get(key)!r} there, {value!r} here"
                                    for key, value in identity.items() if record["identity"].get(key) != value)
            raise ValueError(f"{_record_path(folder)}: the folder holds the files of another run ({differences or 'other keys'}); "
                             "choose another folder or delete that one")
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    _write_record(folder, {"format": FORMAT, "identity": identity, "files": {}})
    return folder


def folder_identity(folder: str | os.PathLike) -> dict:
    """The identity ``folder`` is recorded with (:class:`UnverifiedFile` if it has no readable record)."""
    return read_record(folder)["identity"]


def _ignored(name: str) -> bool:
    return name == RECORD_FILE or name.startswith(_IGNORED_PREFIXES) or name.endswith(".tmp")


def note_written(path: str | os.PathLike, data: bytes, identity: Mapping[str, Any] | None = None) -> None:
    """After ``data`` was written to ``path``: its entry in the folder's record, if the folder is recorded.

    ``identity``: what the file is beyond its folder's identity (e.g. the evaluation grid), stored with it.
    A folder whose record is unreadable has been reset by :func:`open_folder` before any write; here it is
    left alone (the file stays unverified).
    """
    path = Path(path)
    if _ignored(path.name) or not is_recorded(path.parent):
        return
    try:
        record = read_record(path.parent)
    except UnverifiedFile:
        return
    entry = {"sha256": sha256_bytes(data), "bytes": len(data)}
    if identity:
        entry["identity"] = json.loads(json.dumps(dict(identity)))
    record["files"][path.name] = entry
    _write_record(path.parent, record)


def remove(path: str | os.PathLike) -> None:
    """Delete ``path`` on purpose (if present) and drop it from its folder's record."""
    path = check_not_linked(path)
    path.unlink(missing_ok=True)
    if is_recorded(path.parent):
        try:
            record = read_record(path.parent)
        except UnverifiedFile:
            return
        if record["files"].pop(path.name, None) is not None:
            _write_record(path.parent, record)


def _check(path: Path, data: bytes, record: dict, identity: Mapping[str, Any] | None) -> None:
    entry = record["files"].get(path.name)
    if entry is None:
        raise UnverifiedFile(f"{path}: not in its folder's record ({RECORD_FILE}): not written there by this project; "
                             + _HINT.format(folder=path.parent))
    if len(data) != entry["bytes"] or sha256_bytes(data) != entry["sha256"]:
        raise UnverifiedFile(f"{path}: content differs from its record ({len(data)} bytes, recorded {entry['bytes']}): "
                             "changed after it was written; " + _HINT.format(folder=path.parent))
    stored = {**record["identity"], **entry.get("identity", {})}
    wrong = {key: value for key, value in json.loads(json.dumps(dict(identity or {}))).items() if stored.get(key) != value}
    if wrong:
        found = ", ".join(f"{key} = {stored.get(key)!r}" for key in wrong)
        wanted = ", ".join(f"{key} = {value!r}" for key, value in wrong.items())
        raise UnverifiedFile(f"{path}: recorded with {found}, but {wanted} is expected here")


def verified_bytes(path: str | os.PathLike, required: bool = False, identity: Mapping[str, Any] | None = None) -> bytes:
    """The bytes of ``path``, checked against its folder's record when the folder is recorded.

    Parameters
    ----------
    path : the file.
    required : refuse a file whose folder has no record (the readers of model, run and datasets folders).
    identity : fields (folder identity or the file's own) that must have these values.

    Raises
    ------
    FileNotFoundError
        if the file does not exist.
    UnverifiedFile
        (a ``ValueError``) naming the file and the problem otherwise.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return check_bytes(path, path.read_bytes(), required, identity)


def check_bytes(path: str | os.PathLike, data: bytes, required: bool = False,
                identity: Mapping[str, Any] | None = None) -> bytes:
    """``data``, read from ``path``, checked against the folder's record (:func:`verified_bytes`). Readers that
    check a file's content first (so that a malformed file is named for what is wrong in it) call this last."""
    path = Path(path)
    if required or is_recorded(path.parent):
        _check(path, data, read_record(path.parent), identity)
    return data


def problem(path: str | os.PathLike, identity: Mapping[str, Any] | None = None) -> str | None:
    """Why ``path`` cannot be trusted (missing, unrecorded, changed, other identity), or None if it verifies.

    The check behind every "already done, skipping": a file with a problem is redone.
    """
    try:
        verified_bytes(path, required=True, identity=identity)
    except (FileNotFoundError, UnverifiedFile) as exc:
        return str(exc)
    return None


def folder_problems(folder: str | os.PathLike) -> list[str]:
    """Every problem of a recorded folder: an unreadable record, recorded files missing or changed, and files
    present but not recorded (hidden lock and temporary files aside). Empty when the folder verifies."""
    folder = Path(folder)
    try:
        record = read_record(folder)
    except UnverifiedFile as exc:
        return [str(exc)]
    problems = []
    for name in sorted(record["files"]):
        path = folder / name
        if not path.is_file():
            problems.append(f"{path}: recorded but missing")
            continue
        try:
            _check(path, path.read_bytes(), record, None)
        except UnverifiedFile as exc:
            problems.append(str(exc))
    problems += [f"{p}: not in its folder's record ({RECORD_FILE})" for p in sorted(folder.iterdir())
                 if p.is_file() and not _ignored(p.name) and p.name not in record["files"]]
    return problems


def record_existing(folder: str | os.PathLike, identity: Mapping[str, Any],
                    extra: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
    """Record every file now in ``folder`` as it is (a folder written before records existed, checked by the
    caller); returns the record. ``extra``: file name -> its own identity fields."""
    folder = Path(folder)
    files = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and not _ignored(path.name):
            data = path.read_bytes()
            files[path.name] = {"sha256": sha256_bytes(data), "bytes": len(data)}
            if extra and path.name in extra:
                files[path.name]["identity"] = json.loads(json.dumps(dict(extra[path.name])))
    _write_record(folder, {"format": FORMAT, "identity": json.loads(json.dumps(dict(identity))), "files": files})
    return _record_path(folder)
