"""Outputs appear whole or not at all, with ordinary file permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from segaudit.output.atomic import _UMASK, atomic_path, atomic_write


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_write_replaces_whole_file_with_plain_permissions(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    with atomic_write(target) as handle:
        handle.write("new\n")
        assert target.read_text() == "old\n"  # not visible until the block ends
    assert target.read_text() == "new\n"
    assert _mode(target) == 0o666 & ~_UMASK  # not mkstemp's private 0600
    assert os.listdir(tmp_path) == ["out.csv"]


def test_atomic_write_failure_keeps_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["out.csv"]


def test_atomic_path_failure_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "pic.png"
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as temp:
        temp.write_bytes(b"partial")
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []
    with atomic_path(target) as temp:
        temp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"
    assert _mode(target) == 0o666 & ~_UMASK
