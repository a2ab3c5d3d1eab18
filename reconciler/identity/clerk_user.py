"""Clerk's user object as a ``ProviderUser``: shared by the listing and the webhooks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from reconciler.identity.base import ProviderUser


def from_clerk(data: dict[str, Any]) -> ProviderUser:
    """Map a Clerk user.

    - The email is the address whose id is ``primary_email_address_id``; without a primary,
      none (an address with no id is not the primary one).
    - Inactive means ``banned`` or ``deprovisioned`` (Clerk's Backend API: "deprovisioned
      and is restricted from signing in"). ``locked`` is Clerk's temporary lockout after
      failed sign-ins, which lifts by itself within the hour: the user is still a customer.
    - An ``updated_at`` that is no time a datetime can hold is unknown, not an error."""
    primary = data.get("primary_email_address_id")
    email = None
    if primary is not None:
        for address in data.get("email_addresses") or ():
            if isinstance(address, dict) and address.get("id") == primary:
                email = address.get("email_address")
                break
    return ProviderUser(
        id=str(data["id"]),
        email=email,
        first_name=data.get("first_name"),
        last_name=data.get("last_name"),
        active=not (data.get("banned") or data.get("deprovisioned")),
        updated_at=_moment(data.get("updated_at")),
        external_id=data.get("external_id"),
    )


def _moment(milliseconds: object) -> datetime | None:
    if not isinstance(milliseconds, int | float) or isinstance(milliseconds, bool):
        return None
    try:
        return datetime.fromtimestamp(milliseconds / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None
