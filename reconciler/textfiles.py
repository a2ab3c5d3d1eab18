"""Text files people write by hand or export (policies, migrations, users lists): UTF-8,
with or without the byte order mark spreadsheet programs put first, and a one-line error that
names the line and column of the first byte that is not UTF-8."""

from __future__ import annotations

from pathlib import Path


def read_utf8(path: Path) -> str:
    """The text of ``path``. Raises ``OSError`` as ``open`` does, and ``ValueError``
    (``<path>:<line>:<column>: not UTF-8 ...``) for bytes that are not UTF-8."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        column = len(data[start : exc.start].decode("utf-8-sig")) + 1  # characters, 1-based
        raise ValueError(
            f"{path}:{line}:{column}: not UTF-8 (byte 0x{data[exc.start]:02x}); "
            "save the file as UTF-8"
        ) from None
