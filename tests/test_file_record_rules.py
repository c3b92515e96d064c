"""The rules of the file records (ssh_ood.base.file_records), one by one: what a record holds, what each reader
refuses and with which message, which names are never recorded.

Fast (temporary folders, no command runs): these are the tests ``make mutation`` runs for the module. A record is
checked against its documented format (the module's docstring) and against the records shipped with the data.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import pytest

from ssh_ood.base.file_records import (
    RECORD_FILE,
    UnverifiedFile,
    check_bytes,
    folder_identity,
    folder_problems,
    is_recorded,
    note_written,
    open_folder,
    problem,
    read_record,
    record_existing,
    remove,
    sha256_bytes,
    verified_bytes,
)
from ssh_ood.base.paths import DEMO_DIR
from ssh_ood.base.safe_files import LinkRefused

IDENTITY = {"kind": "run", "preset": "smoke", "seed": 0}
IGNORED = (RECORD_FILE, ".run.lock", ".run.lock.owner", ".write_probe.123", "weights.pt.tmp")


def advice(folder) -> str:
    """The advice every refusal ends with, naming the folder."""
    return ("; redo it with the command that wrote it (it redoes what it cannot verify), or if you trust the folder as "
            f"it is, record it with `python -m ssh_ood record-files {folder}`")


def hint(folder) -> str:
    """:func:`advice` as the end of a pattern."""
    return re.escape(advice(folder)) + "$"


def canonical_checksum(record: dict) -> str:
    """The documented checksum: SHA-256 of the canonical JSON (sorted keys, no spaces) of format, identity, files."""
    body = {"format": record["format"], "identity": record["identity"], "files": record["files"]}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_record(folder, record: dict, checksum: str | None = None) -> None:
    """A files.json written by hand, as the format describes it."""
    folder.mkdir(parents=True, exist_ok=True)
    record = {**record, "checksum": canonical_checksum(record) if checksum is None else checksum}
    (folder / RECORD_FILE).write_text(json.dumps(record))


def entry(data: bytes) -> dict:
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def test_sha256_is_the_standard_digest():
    # FIPS 180-2 test vectors
    assert sha256_bytes(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256_bytes(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize("name", ["reference", "models/poorly_good", "100_CNNs/model_000"])
def test_recording_a_shipped_folder_again_gives_its_record_byte_for_byte(tmp_path, name):
    # the shipped records were written by the project: sorted keys, one-space indent, final newline, and the
    # checksum of the documented canonical form; recording the same files with the same identities reproduces them
    folder = tmp_path / "copy"
    shutil.copytree(DEMO_DIR / name, folder)
    shipped_bytes = (folder / RECORD_FILE).read_bytes()
    shipped = json.loads(shipped_bytes)
    assert shipped["checksum"] == canonical_checksum(shipped)
    (folder / RECORD_FILE).unlink()
    extra = {file: e["identity"] for file, e in shipped["files"].items() if "identity" in e}
    assert record_existing(str(folder), shipped["identity"], extra) == folder / RECORD_FILE
    assert (folder / RECORD_FILE).read_bytes() == shipped_bytes
    assert read_record(folder) == shipped and folder_problems(folder) == []


def test_a_record_written_by_hand_to_the_format_is_read_as_it_is(tmp_path):
    files = {"a.bin": entry(b"12345"), "b.json": {**entry(b"{}"), "identity": {"grid": {"n_W": 4}}}}
    record = {"format": 1, "identity": {**IDENTITY, "index": 3}, "files": files}
    write_record(tmp_path, record)
    assert is_recorded(tmp_path) and is_recorded(str(tmp_path))
    assert read_record(str(tmp_path)) == {**record, "checksum": canonical_checksum(record)}
    assert folder_identity(tmp_path) == {**IDENTITY, "index": 3}


def test_a_record_is_a_file_named_files_json(tmp_path):
    assert not is_recorded(tmp_path)
    (tmp_path / RECORD_FILE).mkdir()  # a folder of that name is no record
    assert not is_recorded(tmp_path)
    with pytest.raises(UnverifiedFile, match=re.escape(f"{tmp_path}: no record of its files (files.json)") + hint(tmp_path)):
        read_record(tmp_path)
    with pytest.raises(UnverifiedFile, match="no record of its files"):
        folder_identity(tmp_path)
    (tmp_path / RECORD_FILE).rmdir()
    (tmp_path / RECORD_FILE).write_bytes(b"")  # an unreadable record is still a record
    assert is_recorded(tmp_path)


@pytest.mark.parametrize(("content", "error"), [(b"{not json", "JSONDecodeError"), (b"{\"a\": \"\xc3\x28\"}", "UnicodeDecodeError")])
def test_an_unreadable_record_is_named_with_the_reason(tmp_path, content, error):
    (tmp_path / RECORD_FILE).write_bytes(content)
    with pytest.raises(UnverifiedFile, match=re.escape(f"{tmp_path / RECORD_FILE}: unreadable ({error})") + hint(tmp_path)):
        read_record(tmp_path)


VALID = {"format": 1, "identity": IDENTITY, "files": {"a": {"sha256": "0" * 64, "bytes": 1}}}


@pytest.mark.parametrize("record", [
    [VALID],
    "a record",
    {key: value for key, value in VALID.items() if key != "format"},
    {**VALID, "format": 2},
    {**VALID, "format": "1"},
    {**VALID, "identity": None},
    {**VALID, "identity": ["kind", "run"]},
    {key: value for key, value in VALID.items() if key != "files"},
    {**VALID, "files": [["a", {"sha256": "0" * 64, "bytes": 1}]]},
    {**VALID, "files": {"a": ["0" * 64, 1]}},
    {**VALID, "files": {"a": {"bytes": 1}}},
    {**VALID, "files": {"a": {"sha256": 0, "bytes": 1}}},
    {**VALID, "files": {"a": {"sha256": "0" * 64}}},
    {**VALID, "files": {"a": {"sha256": "0" * 64, "bytes": "1"}}},
    {**VALID, "files": {"a": {"sha256": "0" * 64, "bytes": 1}, "b": {"sha256": "0" * 64, "bytes": 1.0}}},
])
def test_a_record_of_another_structure_is_refused(tmp_path, record):
    (tmp_path / RECORD_FILE).write_text(json.dumps(record))
    message = "not a record of this project (format 1: identity, files with sha256 and bytes)"
    with pytest.raises(UnverifiedFile, match=re.escape(f"{tmp_path / RECORD_FILE}: {message}") + hint(tmp_path)):
        read_record(tmp_path)


@pytest.mark.parametrize("edit", ["entry", "identity", "checksum", "no checksum"])
def test_an_edited_record_is_caught_by_its_checksum(tmp_path, edit):
    record = {"format": 1, "identity": dict(IDENTITY), "files": {"a.bin": entry(b"abc")}}
    checksum = canonical_checksum(record)
    if edit == "entry":
        record["files"]["a.bin"]["bytes"] = 4
    elif edit == "identity":
        record["identity"]["seed"] = 1
    elif edit == "checksum":
        checksum = checksum[:-1] + ("0" if checksum[-1] != "0" else "1")
    write_record(tmp_path, record, checksum)
    if edit == "no checksum":
        (tmp_path / RECORD_FILE).write_text(json.dumps(record))
    message = "its checksum does not match its entries (edited after it was written)"
    with pytest.raises(UnverifiedFile, match=re.escape(f"{tmp_path / RECORD_FILE}: {message}") + hint(tmp_path)):
        read_record(tmp_path)


def test_opening_a_new_folder_creates_it_with_an_empty_record(tmp_path):
    folder = tmp_path / "a" / "b"
    assert open_folder(str(folder), {"kind": "run", "grid": (1, 2)}) == folder  # parents created, a Path back
    record = read_record(folder)
    assert record["format"] == 1 and record["files"] == {}
    assert record["identity"] == {"kind": "run", "grid": [1, 2]}  # stored as JSON stores it
    assert open_folder(folder, {"kind": "run", "grid": (1, 2)}) == folder  # the same identity again: accepted


def test_reopening_a_folder_keeps_its_record_or_refuses_another_identity(tmp_path):
    open_folder(tmp_path, IDENTITY)
    note_written(tmp_path / "a.bin", b"abc")
    before = (tmp_path / RECORD_FILE).read_bytes()
    open_folder(tmp_path, dict(IDENTITY))
    assert (tmp_path / RECORD_FILE).read_bytes() == before  # the files stay recorded
    record_path = re.escape(str(tmp_path / RECORD_FILE))
    with pytest.raises(ValueError, match=record_path + re.escape(
            ": the folder holds the files of another run (preset: 'smoke' there, 'paper' here; seed: 0 there, 1 here); "
            "choose another folder or delete that one") + "$"):
        open_folder(tmp_path, {"kind": "run", "preset": "paper", "seed": 1})
    with pytest.raises(ValueError, match=re.escape("another run (index: None there, 3 here)")):
        open_folder(tmp_path, {**IDENTITY, "index": 3})
    with pytest.raises(ValueError, match=re.escape("another run (other keys)")):
        open_folder(tmp_path, {"kind": "run", "preset": "smoke"})  # fewer keys: no value differs, still another run
    assert (tmp_path / RECORD_FILE).read_bytes() == before


def test_opening_a_folder_with_an_unreadable_record_starts_a_new_one(tmp_path):
    (tmp_path / RECORD_FILE).write_text("{not json")
    (tmp_path / "a.bin").write_bytes(b"abc")
    open_folder(tmp_path, IDENTITY)
    assert read_record(tmp_path)["identity"] == IDENTITY and read_record(tmp_path)["files"] == {}


def test_a_linked_record_is_refused_before_it_is_read(tmp_path):
    other = open_folder(tmp_path / "other", IDENTITY)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / RECORD_FILE).symlink_to(other / RECORD_FILE)
    with pytest.raises(LinkRefused, match="a symbolic link"):
        open_folder(folder, IDENTITY)
    (folder / "a.bin").symlink_to(other / RECORD_FILE)
    with pytest.raises(LinkRefused, match="a symbolic link"):
        remove(folder / "a.bin")
    assert (other / RECORD_FILE).is_file()


def test_a_write_is_recorded_with_its_hash_size_and_identity(tmp_path):
    open_folder(tmp_path, IDENTITY)
    note_written(str(tmp_path / "a.bin"), b"abc")
    note_written(tmp_path / "b.json", b"{}", identity={"grid": {"shape": (2, 3)}})
    note_written(tmp_path / "c.json", b"[]", identity={})
    files = read_record(tmp_path)["files"]
    assert files["a.bin"] == entry(b"abc")
    assert files["b.json"] == {**entry(b"{}"), "identity": {"grid": {"shape": [2, 3]}}}
    assert files["c.json"] == entry(b"[]")  # an empty identity is not stored
    note_written(tmp_path / "a.bin", b"abcd")  # a rewrite replaces the entry
    assert read_record(tmp_path)["files"]["a.bin"] == entry(b"abcd")


def test_the_record_the_lock_and_temporary_files_are_never_recorded(tmp_path):
    open_folder(tmp_path, IDENTITY)
    for name in IGNORED:
        note_written(tmp_path / name, b"x")
    assert read_record(tmp_path)["files"] == {}
    for name in IGNORED[1:]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()  # nor folders
    assert folder_problems(tmp_path) == []
    record_existing(tmp_path, IDENTITY)
    assert read_record(tmp_path)["files"] == {}


def test_writes_outside_a_recorded_folder_or_into_an_unreadable_record_change_no_record(tmp_path):
    note_written(tmp_path / "a.bin", b"abc")
    assert not (tmp_path / RECORD_FILE).exists()
    (tmp_path / RECORD_FILE).write_text("{not json")
    note_written(tmp_path / "a.bin", b"abc")
    remove(tmp_path / "a.bin")
    assert (tmp_path / RECORD_FILE).read_text() == "{not json"


def test_a_deliberate_removal_deletes_the_file_and_its_entry(tmp_path):
    open_folder(tmp_path, IDENTITY)
    for name in ("a.bin", "b.bin"):
        (tmp_path / name).write_bytes(b"abc")
        note_written(tmp_path / name, b"abc")
    remove(str(tmp_path / "a.bin"))
    assert not (tmp_path / "a.bin").exists() and read_record(tmp_path)["files"] == {"b.bin": entry(b"abc")}
    remove(tmp_path / "a.bin")  # already gone: nothing to do
    (tmp_path / "loose").mkdir()
    (tmp_path / "loose" / "c.bin").write_bytes(b"c")
    remove(tmp_path / "loose" / "c.bin")  # an unrecorded folder: the file goes, no record appears
    assert not (tmp_path / "loose" / "c.bin").exists() and not is_recorded(tmp_path / "loose")
    assert folder_problems(tmp_path) == []


@pytest.fixture
def recorded(tmp_path):
    """A recorded run folder with a.bin (folder identity only) and b.bin (its own grid)."""
    open_folder(tmp_path, IDENTITY)
    for name, identity in (("a.bin", None), ("b.bin", {"grid": {"n_W": 4, "shape": [2, 3]}, "seed": 7})):
        (tmp_path / name).write_bytes(b"abcde")
        note_written(tmp_path / name, b"abcde", identity)
    return tmp_path


def test_a_recorded_file_reads_as_recorded_and_a_changed_one_is_refused(recorded):
    assert verified_bytes(str(recorded / "a.bin")) == b"abcde" == verified_bytes(recorded / "a.bin", required=True)
    assert problem(recorded / "a.bin") is None and problem(str(recorded / "b.bin")) is None
    (recorded / "a.bin").write_bytes(b"abc")
    changed = re.escape(f"{recorded / 'a.bin'}: content differs from its record (3 bytes, recorded 5): changed after "
                        "it was written") + hint(recorded)
    with pytest.raises(UnverifiedFile, match=changed):
        verified_bytes(recorded / "a.bin")
    assert re.fullmatch(changed, problem(recorded / "a.bin"))
    (recorded / "a.bin").write_bytes(b"abcdf")  # same size, other content
    with pytest.raises(UnverifiedFile, match=re.escape("(5 bytes, recorded 5)")):
        verified_bytes(recorded / "a.bin")
    # the bytes given are checked, not the file's
    assert check_bytes(recorded / "b.bin", b"abcde") == b"abcde"
    with pytest.raises(UnverifiedFile, match="content differs from its record"):
        check_bytes(str(recorded / "b.bin"), b"abcdf")


def test_a_file_outside_the_record_is_refused(recorded):
    (recorded / "c.bin").write_bytes(b"c")
    unrecorded = re.escape(f"{recorded / 'c.bin'}: not in its folder's record (files.json): not written there by this "
                           "project") + hint(recorded)
    with pytest.raises(UnverifiedFile, match=unrecorded):
        verified_bytes(recorded / "c.bin")
    with pytest.raises(UnverifiedFile, match=unrecorded):
        check_bytes(recorded / "c.bin", b"c")
    assert re.fullmatch(unrecorded, problem(recorded / "c.bin"))


def test_the_expected_identity_is_checked_against_the_folder_and_the_file(recorded):
    # the file's own fields complete the folder's and take precedence over them (b.bin: seed 7, folder: seed 0)
    assert verified_bytes(recorded / "b.bin", identity={"kind": "run", "grid": {"n_W": 4, "shape": (2, 3)}}) == b"abcde"
    assert problem(recorded / "b.bin", {"seed": 7}) is None and problem(recorded / "a.bin", {"seed": 0}) is None
    with pytest.raises(UnverifiedFile, match=re.escape(f"{recorded / 'b.bin'}: recorded with seed = 7, but seed = 0 is "
                                                       "expected here") + "$"):
        verified_bytes(recorded / "b.bin", identity={"seed": 0})
    with pytest.raises(UnverifiedFile, match=re.escape(
            "recorded with preset = 'smoke', grid = None, but preset = 'paper', grid = {'n_W': 4} is expected here")):
        verified_bytes(recorded / "a.bin", identity={"kind": "run", "preset": "paper", "grid": {"n_W": 4}})
    assert "recorded with grid" in problem(recorded / "b.bin", {"grid": {"n_W": 5, "shape": [2, 3]}})
    with pytest.raises(UnverifiedFile, match="recorded with seed = 7"):
        check_bytes(recorded / "b.bin", b"abcde", identity={"seed": 0})


def test_an_unrecorded_folder_is_read_unchecked_unless_a_record_is_required(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"abc")
    assert verified_bytes(tmp_path / "a.bin") == b"abc" and check_bytes(tmp_path / "a.bin", b"xyz") == b"xyz"
    assert verified_bytes(tmp_path / "a.bin", identity={"seed": 3}) == b"abc"
    no_record = re.escape(f"{tmp_path}: no record of its files (files.json)") + hint(tmp_path)
    with pytest.raises(UnverifiedFile, match=no_record):
        verified_bytes(tmp_path / "a.bin", required=True)
    with pytest.raises(UnverifiedFile, match=no_record):
        check_bytes(tmp_path / "a.bin", b"abc", required=True)
    assert re.fullmatch(no_record, problem(tmp_path / "a.bin"))  # "already done" needs a record


def test_a_missing_file_is_not_found(recorded):
    for path in (recorded / "none.bin", recorded):  # nor is a folder a file
        with pytest.raises(FileNotFoundError, match=re.escape(f"{path}: no such file")):
            verified_bytes(path)
        assert problem(path) == f"{path}: no such file"


def test_folder_problems_lists_every_problem_of_a_folder_in_order(recorded):
    assert folder_problems(str(recorded)) == []
    (recorded / "a.bin").unlink()
    (recorded / "b.bin").write_bytes(b"abc")
    for name in ("z.bin", "c.bin"):
        (recorded / name).write_bytes(b"x")
    problems = folder_problems(recorded)
    assert problems[0] == f"{recorded / 'a.bin'}: recorded but missing"
    assert problems[1].startswith(f"{recorded / 'b.bin'}: content differs from its record (3 bytes, recorded 5)")
    assert problems[2:] == [f"{recorded / name}: not in its folder's record (files.json)" for name in ("c.bin", "z.bin")]
    (recorded / RECORD_FILE).write_text("[]")
    assert folder_problems(recorded) == [f"{recorded / RECORD_FILE}: not a record of this project (format 1: identity, "
                                         "files with sha256 and bytes)" + advice(recorded)]


def test_recording_a_folder_as_it_is_lists_its_files_with_their_identities(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"abc")
    (tmp_path / "b.npz").write_bytes(b"0123456789")
    (tmp_path / "sub").mkdir()
    path = record_existing(str(tmp_path), {"kind": "model", "shape": (2,)}, {"b.npz": {"grid": (1, 2)}, "x": {"k": 1}})
    assert path == tmp_path / RECORD_FILE
    record = read_record(tmp_path)
    assert record["identity"] == {"kind": "model", "shape": [2]}
    assert record["files"] == {"a.bin": entry(b"abc"), "b.npz": {**entry(b"0123456789"), "identity": {"grid": [1, 2]}}}
    record_existing(tmp_path, {"kind": "model"})  # no extra identities
    assert read_record(tmp_path)["files"] == {"a.bin": entry(b"abc"), "b.npz": entry(b"0123456789")}
