"""Reading files whole: what ``open`` reads, however large, and its errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.textfiles import read_bytes, read_utf8


@pytest.mark.parametrize("size", [0, 1, 4096, (1 << 20) - 1, 1 << 20, (3 << 20) + 7])
def test_read_bytes_gives_the_whole_file(tmp_path: Path, size: int) -> None:
    path = tmp_path / "data"
    path.write_bytes(os.urandom(size))
    assert read_bytes(path) == path.read_bytes()
    assert read_bytes(str(path)) == path.read_bytes()


def test_read_bytes_raises_as_open_does(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_bytes(tmp_path / "missing")
    with pytest.raises(IsADirectoryError):
        read_bytes(tmp_path)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(50):
        with pytest.raises(IsADirectoryError):
            read_bytes(tmp_path)
    assert len(os.listdir("/proc/self/fd")) == before  # no descriptor left open


def test_read_utf8_names_the_first_byte_that_is_not_utf8(tmp_path: Path) -> None:
    """Line and column (in characters) of the byte, with or without a byte order mark."""
    path = tmp_path / "users.csv"
    for mark in (b"", b"\xef\xbb\xbf"):
        path.write_bytes(mark + "id,name\n1,Zoë\n2,Jos".encode() + b"\xe9\n")
        with pytest.raises(ValueError, match=r"users.csv:3:6: not UTF-8 \(byte 0xe9\)"):
            read_utf8(path)
        path.write_bytes(mark + b"na\xe9")
        with pytest.raises(ValueError, match=r"users.csv:1:3: not UTF-8 \(byte 0xe9\)"):
            read_utf8(path)
        path.write_bytes(mark + "id,name\n1,Zoë\n".encode())
        assert read_utf8(path) == "id,name\n1,Zoë\n"
