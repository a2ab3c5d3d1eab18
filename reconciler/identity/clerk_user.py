"""Clerk's user object as a ``ProviderUser``: shared by the listing and the webhooks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from reconciler.identity.base import ProviderUser


def from_clerk(data: dict[str, Any]) -> ProviderUser:
    """Map a Clerk user; the primary email is the address whose id is
    ``primary_email_address_id``."""
    primary = data.get("primary_email_address_id")
    email = None
    for address in data.get("email_addresses") or ():
        if isinstance(address, dict) and address.get("id") == primary:
            email = address.get("email_address")
            break
    updated = data.get("updated_at")
    return ProviderUser(
        id=str(data["id"]),
        email=email,
        first_name=data.get("first_name"),
        last_name=data.get("last_name"),
        active=not (data.get("banned") or data.get("locked")),
        updated_at=datetime.fromtimestamp(updated / 1000, UTC)
        if isinstance(updated, int | float)
        else None,
        external_id=data.get("external_id"),
    )
