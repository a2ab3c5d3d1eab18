"""What every identity provider gives: a stream of users and, where it can, a count.

A provider yields users page by page and never holds the whole listing in memory. When it
cannot finish (an HTTP error on page 37 of 40, a truncated page), it raises
``IncompleteListing`` (or ``ProviderUnavailable``): the sync then deletes nothing.

A listing that did finish can still leave a user out: paged by offset (SCIM's
``startIndex``, Clerk's ``offset`` fallback), it skips one user for each user deleted
before its position while it runs, and the counts before and after still agree with it.
So before the sync deletes anyone, it asks the provider about each of them once more
(``still_present``); the few it is about to delete are cheap to ask about.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import NamedTuple, Protocol


class ProviderUser(NamedTuple):
    """One user as every provider gives it. A named tuple: as immutable as a frozen
    dataclass, and made in a third of its time (1.1 s against 3.0 s a million), which a
    re-sync of a million users pays once per user."""

    id: str
    """The provider's user id (Clerk ``user_...``, the SCIM ``id``); the sync key."""
    email: str | None = None
    """The primary email address."""
    first_name: str | None = None
    last_name: str | None = None
    active: bool = True
    """False for users banned or deprovisioned (Clerk; a temporary lockout is not inactive) or
    inactive (SCIM)."""
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

    def still_present(self, ids: Sequence[str]) -> list[str]:
        """Those of ``ids`` (users the listing left out) that the provider has after all,
        each asked about on its own."""
        ...

    def close(self) -> None:
        """Release what the provider holds between calls (its HTTP connection)."""
        ...
