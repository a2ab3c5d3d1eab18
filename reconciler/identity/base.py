"""What every identity provider gives: a stream of users and, where it can, a count.

A provider yields users page by page and never holds the whole listing in memory. When it
cannot finish (an HTTP error on page 37 of 40, a truncated page), it raises
``IncompleteListing`` (or ``ProviderUnavailable``): the sync then deletes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ProviderUser:
    id: str
    """The provider's user id (Clerk ``user_...``, the SCIM ``id``); the sync key."""
    email: str | None = None
    """The primary email address."""
    first_name: str | None = None
    last_name: str | None = None
    active: bool = True
    """False for users banned or locked (Clerk) or inactive (SCIM)."""
    updated_at: datetime | None = None
    external_id: str | None = None


class Provider(Protocol):
    name: str

    def users(self) -> Iterator[ProviderUser]:
        """Every user, streamed; raises ``IncompleteListing`` if the listing breaks off."""
        ...

    def count(self) -> int | None:
        """The provider's own count of users, to check a listing against; None if unknown."""
        ...

    def close(self) -> None:
        """Release what the provider holds between calls (its HTTP connection)."""
        ...
