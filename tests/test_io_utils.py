"""Atomic writes (src/ssh_ood/base/io_utils.py): content, no temporary file left behind, permissions from the umask."""

from __future__ import annotations

import os
import stat

import pytest

from ssh_ood.base.atomic_files import current_umask
from ssh_ood.base.io_utils import atomic_write_bytes


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_atomic_write_gives_the_mode_of_a_plain_open(tmp_path, mask):
    previous = os.umask(mask)
    try:
        assert current_umask() == mask
        path = atomic_write_bytes(tmp_path / "sub" / "file.txt", b"abc")
        with open(tmp_path / "plain.txt", "wb") as fh:
            fh.write(b"abc")
    finally:
        os.umask(previous)
    assert path.read_bytes() == b"abc"
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask == stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)
    assert sorted(p.name for p in path.parent.iterdir()) == ["file.txt"]
