"""Digests without loading OpenSSL.

``hashlib`` loads OpenSSL's library when imported: about 3 ms of CPU, a fortieth of a warm
``lint`` of 163 files, which hashes only a few hundred small texts. The interpreter's own
modules give the same digests without it.

- ``sha256``: where the digest is a format others read (a Prisma migration's checksum).
  CPython 3.11 names its module ``_sha256``, later versions ``_sha2``; an interpreter with
  neither gets ``hashlib``'s. Large data (backups) keeps ``hashlib``.
- ``blake2b``: where only reconciler reads the digest (the parse cache's keys and entries).
  The interpreter's SHA-256 is portable C, about three times slower than its BLAKE2b: a
  warm lint hashes every migration's text and every cache entry, and the cache's SHA-256
  took about 6% of its instructions (7.7% with the checksums).
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

blake2b: Callable[..., Digest]
"""``hashlib.blake2b``'s equal: ``blake2b(data, digest_size=32).hexdigest()``."""
try:
    from _blake2 import blake2b  # type: ignore[no-redef,unused-ignore]
except ImportError:  # another interpreter
    from hashlib import blake2b

__all__ = ["blake2b", "sha256"]
