"""``reconciler.digests`` gives the same digests as ``hashlib``'s, so checksums recorded in a
ledger and parse cache keys do not change with the module that computes them."""

from __future__ import annotations

import hashlib

import pytest

from reconciler.digests import blake2b, sha256


@pytest.mark.parametrize("data", [b"", b"abc", "é€😀\n".encode(), bytes(range(256)) * 999])
def test_the_same_digests_as_hashlib(data: bytes) -> None:
    assert sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()
    whole = sha256()
    for start in range(0, len(data), 7001):
        whole.update(data[start : start + 7001])
    assert whole.hexdigest() == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("data", [b"", b"abc", "é€😀\n".encode(), bytes(range(256)) * 999])
def test_blake2b_gives_hashlibs_digests(data: bytes) -> None:
    expected = hashlib.blake2b(data, digest_size=32).hexdigest()
    assert blake2b(data, digest_size=32).hexdigest() == expected
    whole = blake2b(digest_size=32)
    for start in range(0, len(data), 7001):
        whole.update(data[start : start + 7001])
    assert whole.hexdigest() == expected
