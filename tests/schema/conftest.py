"""Schema tests open ledgers freely; close them all after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.schema.helpers import OPEN_LEDGERS


@pytest.fixture(autouse=True)
def close_ledgers() -> Iterator[None]:
    yield
    while OPEN_LEDGERS:
        OPEN_LEDGERS.pop().close()
