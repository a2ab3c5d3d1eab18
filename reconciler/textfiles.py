"""Text files people write by hand or export (policies, migrations, users lists): UTF-8,
with or without the byte order mark spreadsheet programs put first, and a one-line error that
names the line and column of the first byte that is not UTF-8."""

from __future__ import annotations

import codecs
import os
from pathlib import Path


def read_bytes(path: str | Path) -> bytes:
    """The bytes of ``path``, read with the system's calls alone. ``open`` wraps a file in a
    buffered reader and asks the system for its size, whether it is a terminal and where it
    stands, one call each: reading a history's hundreds of small migrations and their parse
    cache entries, that took longer than reading them. Raises ``OSError`` as ``open`` does."""
    handle = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(handle, 1 << 20):
            chunks.append(chunk)
    finally:
        os.close(handle)
    return b"".join(chunks)


def read_utf8(path: Path) -> str:
    """The text of ``path``. Raises ``OSError`` as ``open`` does, and ``ValueError``
    (``<path>:<line>:<column>: not UTF-8 ...``) for bytes that are not UTF-8."""
    data = read_bytes(path)
    mark = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[mark:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = mark + exc.start  # the error counts from after the byte order mark
        line = data.count(b"\n", 0, at) + 1
        start = max(data.rfind(b"\n", 0, at) + 1, mark)
        column = len(data[start:at].decode("utf-8")) + 1  # characters, 1-based
        raise ValueError(
            f"{path}:{line}:{column}: not UTF-8 (byte 0x{data[at]:02x}); save the file as UTF-8"
        ) from None
