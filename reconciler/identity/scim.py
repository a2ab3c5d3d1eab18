"""The ``scim`` provider: every user of a SCIM 2.0 service provider (RFC 7643, RFC 7644).

``GET {base}/Users?startIndex=1&count=N`` answers a ``ListResponse``: ``totalResults``,
``itemsPerPage``, ``startIndex`` (1-based) and the page's ``Resources``. A server may send
fewer resources than asked, so the next page starts after the resources received, and the
listing ends when ``startIndex - 1 + len(Resources)`` reaches ``totalResults``. An empty
page before that, a page the server answers for another ``startIndex`` than asked, a page
that repeats the previous one, or a resource without ``id`` is a truncated listing
(``IncompleteListing``). So is a ``totalResults`` that falls during the listing: users
removed meanwhile move the later ones to lower indexes, and a page by ``startIndex`` may
then skip a user the sync would take for deleted. ``count()`` is the ``totalResults`` of a
page of no resources.

Retries, waits and errors are those of every HTTP provider (``clerk.HttpProvider``);
SCIM errors (``{"schemas": [...Error], "status", "scimType", "detail"}``) are named by
their ``scimType`` and ``detail``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx

from reconciler.errors import ProviderUnavailable
from reconciler.identity.base import ProviderUser
from reconciler.identity.clerk import DEADLINE, HttpProvider, Place, json_kind
from reconciler.secrets import Secret

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_COUNT_REFUSALS = frozenset({400, 422, 501})
"""Answers to ``count=0`` after which ``count=1`` is tried."""


class ScimProvider(HttpProvider):
    name = "scim"
    credential = "token"
    accept = "application/scim+json"
    user_path = "/Users/{}"
    """RFC 7644 3.4.1: a resource that does not exist is answered 404."""

    def __init__(
        self,
        base_url: str,
        token: Secret,
        *,
        page_size: int = 100,
        client: httpx.Client | None = None,
        max_retries: int = 5,
        backoff: float = 1.0,
        deadline: float = DEADLINE,
        cancel: threading.Event | None = None,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be 1 or more")
        super().__init__(
            base_url,
            token,
            client=client,
            max_retries=max_retries,
            backoff=backoff,
            deadline=deadline,
            cancel=cancel,
        )
        self.page_size = page_size

    def __repr__(self) -> str:
        return f"ScimProvider(base_url={self._base!r}, page_size={self.page_size})"

    def users(self) -> Iterator[ProviderUser]:
        yield from self._list(self._api())

    def count(self) -> int | None:
        client = self._api()
        for count in (0, 1):
            place = Place(f"user count (count={count})")
            response = self._get(
                client,
                "/Users",
                {"startIndex": 1, "count": count},
                place,
                tolerate=_COUNT_REFUSALS if count == 0 else (),
            )
            if response.status_code in _COUNT_REFUSALS:
                continue
            try:
                data = response.json()
            except ValueError:
                data = None
            total = _total(data)
            if total is not None:
                return total
        raise ProviderUnavailable(
            f"scim: user count: HTTP {response.status_code}: the answer holds no totalResults"
        )

    def _list(self, client: httpx.Client) -> Iterator[ProviderUser]:
        start = 1
        pages = 0
        listed = 0
        previous: frozenset[str] = frozenset()
        first_total: int | None = None
        while True:
            place = Place(f"page {pages + 1} of the user listing", pages, listed)
            response = self._get(
                client, "/Users", {"startIndex": start, "count": self.page_size}, place
            )
            data = self._json(response, place)
            if not isinstance(data, dict):
                raise self._truncated(place, f"expected a ListResponse, got {json_kind(data)}")
            total = _total(data)
            if total is None:
                raise self._truncated(place, "the ListResponse holds no totalResults")
            if first_total is None:
                first_total = total
            elif total < first_total:
                raise self._truncated(
                    place,
                    f"totalResults fell from {first_total:,} to {total:,} during the listing "
                    "(removed users shift the others: paging by startIndex may skip some)",
                )
            answered = data.get("startIndex")
            if isinstance(answered, int) and not isinstance(answered, bool) and answered != start:
                raise self._truncated(
                    place,
                    f"asked for startIndex={start}, the server answered startIndex={answered}",
                )
            resources = data.get("Resources", [])
            if not isinstance(resources, list):
                raise self._truncated(place, f"Resources is {json_kind(resources)}, not a list")
            if not resources:
                if start - 1 >= total:
                    return
                raise self._truncated(
                    place,
                    f"no Resources at startIndex={start} while totalResults is {total:,}",
                )
            for number, entry in enumerate(resources, start=1):
                if not isinstance(entry, dict):
                    raise self._truncated(place, f"resource {number} is {json_kind(entry)}")
                user_id = entry.get("id")
                if not isinstance(user_id, str) or not user_id:
                    raise self._truncated(place, f"resource {number} has no id")
            ids = [entry["id"] for entry in resources]
            if pages and not previous.isdisjoint(ids):
                raise self._truncated(
                    place, f"it repeats users of page {pages} (startIndex={start} was ignored)"
                )
            users = [_user(entry) for entry in resources]
            pages += 1
            yield from users
            listed += len(users)
            if start - 1 + len(resources) >= total:
                return
            start += len(resources)
            previous = frozenset(ids)

    def _detail(self, data: Any) -> str:
        if not isinstance(data, dict):
            return ""
        parts = [data.get("scimType"), data.get("detail")]
        return ": ".join(str(p) for p in parts if p)


def _total(data: Any) -> int | None:
    total = data.get("totalResults") if isinstance(data, dict) else None
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        return None
    return total


def _user(entry: dict[str, Any]) -> ProviderUser:
    name = entry.get("name")
    if not isinstance(name, dict):
        name = {}
    meta = entry.get("meta")
    return ProviderUser(
        id=entry["id"],
        email=_email(entry),
        first_name=_text(name.get("givenName")),
        last_name=_text(name.get("familyName")),
        active=_active(entry.get("active", True)),
        updated_at=_moment(meta.get("lastModified") if isinstance(meta, dict) else None),
        external_id=_text(entry.get("externalId")),
    )


def _email(entry: dict[str, Any]) -> str | None:
    """The primary address, else the first one, else ``userName`` when it is an address."""
    emails = entry.get("emails")
    values = [
        e
        for e in (emails if isinstance(emails, list) else [])
        if isinstance(e, dict) and e.get("value")
    ]
    for email in values:
        if email.get("primary") is True or str(email.get("primary")).lower() == "true":
            return str(email["value"])
    if values:
        return str(values[0]["value"])
    user_name = entry.get("userName")
    if isinstance(user_name, str) and _EMAIL.match(user_name):
        return user_name
    return None


def _active(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "")
    return value is None or bool(value)


def _moment(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _text(value: object) -> str | None:
    if value is None or value == "":
        return None
    return str(value)
