"""SHA-256 without loading OpenSSL.

``hashlib`` loads OpenSSL's library when imported: about 3 ms of CPU, a fortieth of a warm
``lint`` of 163 files, which hashes only a few hundred small texts (each migration's
checksum, each parse cache entry). The interpreter's own SHA-256 gives the same digests
without it: CPython 3.11 names its module ``_sha256``, later versions ``_sha2``; an
interpreter with neither gets ``hashlib``'s. Large data (backups) keeps ``hashlib``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


sha256: Callable[..., Digest]
"""``hashlib.sha256``'s equal: ``sha256(data).hexdigest()``, ``.update(more)``."""
try:
    from _sha256 import sha256  # type: ignore[import-not-found,no-redef,unused-ignore]
except ImportError:  # CPython 3.12 on
    try:
        from _sha2 import sha256  # type: ignore[import-not-found,no-redef,unused-ignore]
    except ImportError:  # another interpreter
        from hashlib import sha256

__all__ = ["sha256"]
