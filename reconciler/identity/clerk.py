"""The ``clerk`` provider: every user of a Clerk instance, through the Backend API.

``GET /users`` answers a bare JSON array, at most 500 users a request, in the order asked
(``order_by=+created_at``: oldest first, so users created during the listing come last).
Pages are chained with the ``starting_after=<last user id>`` cursor; a server that refuses
the cursor (a 400 or 422 naming ``starting_after``) is listed on with ``offset`` from where
the cursor stopped, and one that ignores it is noticed (the page repeats the previous one)
and listed on the same way. A page shorter than ``limit`` is the last. ``GET /users/count``
gives the count the sync checks the listing against; ``GET /users/<id>`` (404
``resource_not_found`` once a user is gone) confirms each user before the sync deletes it.
Users are mapped by ``clerk_user.from_clerk``, as the webhooks map them.

``HttpProvider`` holds what the HTTP providers (this one and SCIM) share: one GET with its
retries, the waits, and the one-line errors. ``429`` is waited out for as long as
``Retry-After`` says; ``5xx`` answers and lost connections are retried with exponential
backoff, ``max_retries`` times; ``401``/``403`` fail at once. A failure before the first page
is ``ProviderUnavailable``; one after it, or a page that is not what the API promises
(not JSON, not a list, a user without ``id``), is ``IncompleteListing``: the sync then deletes
nothing. The credential travels in one request header and is never part of a message.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import quote

import httpx
import orjson

from reconciler.errors import IncompleteListing, ProviderUnavailable
from reconciler.httputil import retry_after
from reconciler.identity import deadline
from reconciler.identity.base import ProviderUser
from reconciler.identity.clerk_user import from_clerk
from reconciler.secrets import Secret, redact

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 500
"""Clerk's largest ``limit``."""

_HTTP_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DEADLINE = 60.0
"""The default total deadline of one request with its retries (``identity.deadline``)."""
_MAX_BACKOFF = 30.0
_MAX_WAIT = 300.0
"""The longest ``Retry-After`` waited out; a longer one fails the request (and says when)."""
_RATE_LIMITED_TRIES = 30
"""429 answers waited out for one request before giving up."""
_CURSOR = "starting_after"
_REFUSALS = frozenset({400, 422})


@dataclass(frozen=True, slots=True)
class Place:
    """Where a request stands, for its error messages: what it fetches and what came before."""

    what: str
    pages: int = 0
    """Pages already yielded: a failure now breaks a listing off."""
    users: int = 0


class HttpProvider:
    """One GET at a time against a JSON API with a bearer credential, retried as it asks."""

    name = "http"
    credential = "credential"
    """What the secret is called in messages (``secret key``, ``token``)."""
    accept = "application/json"
    user_path = "/users/{}"
    """One user by id (``{}``: the id, quoted)."""

    def __init__(
        self,
        base_url: str,
        secret: Secret,
        *,
        client: httpx.Client | None = None,
        max_retries: int = 5,
        backoff: float = 1.0,
        deadline: float = DEADLINE,
        cancel: threading.Event | None = None,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        if backoff < 0:
            raise ValueError("backoff must be 0 or more")
        if deadline <= 0:
            raise ValueError("deadline must be more than 0")
        self._base = base_url.rstrip("/")
        self._secret = secret
        self._client = client
        self._owns_client = False
        self.max_retries = max_retries
        self.backoff = backoff
        self.deadline = deadline
        """Seconds one request may take, its retries and their waits included."""
        self.cancel = cancel
        """Set, it ends the request in flight (the daemon is stopping)."""

    # -- to override ----------------------------------------------------------------------

    def _sleep(self, seconds: float) -> None:
        """Every wait before a retry: cut short when the request is cancelled."""
        current = deadline.current()
        if current is not None:
            current.wait(seconds)

    def _detail(self, data: Any) -> str:
        """The API's own explanation in an error answer's JSON body ('' if none)."""
        return ""

    def _gone(self, response: httpx.Response) -> bool:
        """A 404 that says the user does not exist: the API's own JSON error, not a page
        from a proxy or a wrong path (any other answer stops the sync)."""
        try:
            response.json()
        except ValueError:
            return False
        return response.status_code == 404

    # -- asked about one by one -----------------------------------------------------------

    def still_present(self, ids: Sequence[str]) -> list[str]:
        client = self._api()
        present: list[str] = []
        for user_id in ids:
            place = Place(f"user {user_id}")
            path = self.user_path.format(quote(user_id, safe=""))
            response = self._get(client, path, {}, place, tolerate=(404,))
            if response.status_code < 300:
                present.append(user_id)
            elif not self._gone(response):
                raise ProviderUnavailable(
                    self._line(
                        f"{self.name}: {place.what}: {self._status(response)} (not an answer "
                        "that the user is gone: nothing deleted)"
                    )
                )
        return present

    # -- HTTP -----------------------------------------------------------------------------

    def _api(self) -> httpx.Client:
        """The client given, else one of our own, made on first use and kept until
        ``close()``: the counts and the listing of a sync share its connection and its SSL
        context (building one takes 30 to 200 ms)."""
        if self._client is None:
            self._client = deadline.client(_HTTP_TIMEOUT, self._base)
            self._owns_client = True
        return self._client

    def close(self) -> None:
        """Close the client this provider made (a client given is the caller's to close)."""
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None
            self._owns_client = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._secret.reveal()}", "Accept": self.accept}

    def _delay(self, retry: int) -> float:
        return float(min(self.backoff * 2 ** min(retry, 16), _MAX_BACKOFF))

    def _get(
        self,
        client: httpx.Client,
        path: str,
        params: dict[str, str | int],
        place: Place,
        *,
        tolerate: Collection[int] = (),
    ) -> httpx.Response:
        """The answer to ``GET path``: a 2xx, or a status in ``tolerate``. Waits out 429s,
        retries 5xx answers and lost connections; raises ``ProviderUnavailable`` (or
        ``IncompleteListing`` once pages were yielded) when that does not help, when the
        request with its retries is not done within ``deadline`` seconds, or when it is
        cancelled."""
        with deadline.within(deadline.Deadline(self.deadline, self.cancel)) as bound:
            return self._attempts(client, path, params, place, tolerate, bound)

    def _attempts(
        self,
        client: httpx.Client,
        path: str,
        params: dict[str, str | int],
        place: Place,
        tolerate: Collection[int],
        bound: deadline.Deadline,
    ) -> httpx.Response:
        url = self._base + path
        failures = 0
        limited = 0
        while True:
            try:
                response = client.get(url, params=params, headers=self._headers())
            except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
                raise self._failure(place, f"bad API URL {_host(self._base)}: {exc}") from None
            except httpx.TransportError as exc:
                reason = str(exc) or type(exc).__name__
                self._still_bounded(place, bound, reason)
                if failures >= self.max_retries:
                    raise self._failure(
                        place,
                        f"cannot reach {_host(self._base)}: {reason} "
                        f"(gave up after {failures + 1} attempts)",
                    ) from None
                wait = self._delay(failures)
                failures += 1
                log.debug("%s: %s: %s; retrying in %.2fs", self.name, place.what, reason, wait)
                self._pause(place, bound, wait, reason)
                continue
            status = response.status_code
            if status < 300 or status in tolerate:
                return response
            if status in (401, 403):
                raise self._failure(
                    place, f"{self._status(response)}: the {self.credential} was refused"
                )
            asked = retry_after(response)
            if status == 429:
                wait = self._delay(limited) if asked is None else asked
                if wait > _MAX_WAIT or limited >= _RATE_LIMITED_TRIES:
                    error = self._failure(
                        place,
                        f"{self._status(response)} (rate limited "
                        + (f"for {wait:g}s" if wait > _MAX_WAIT else f"{limited + 1} times")
                        + ")",
                    )
                    error.retry_after = max(wait, error.retry_after or 0.0)
                    raise error
                limited += 1
            elif status >= 500:
                if failures >= self.max_retries:
                    raise self._failure(
                        place,
                        f"{self._status(response)} (gave up after {failures + 1} attempts)",
                    )
                wait = self._delay(failures) if asked is None else min(asked, _MAX_WAIT)
                failures += 1
            else:
                raise self._failure(place, self._status(response))
            log.debug("%s: %s: HTTP %s; retrying in %.2fs", self.name, place.what, status, wait)
            self._pause(place, bound, wait, self._status(response))

    def _still_bounded(self, place: Place, bound: deadline.Deadline, reason: str) -> None:
        """Raise the request's end if it was cancelled or ran out of time (``reason``: what
        the last attempt ended with)."""
        if bound.cancelled:
            raise self._failure(place, "stopped: reconciler is shutting down")
        if bound.expired:
            last = "" if reason.startswith("no complete answer") else f"; last: {reason}"
            raise self._failure(
                place,
                f"no complete answer from {_host(self._base)} within {bound.seconds:g}s "
                f"(identity.deadline{last})",
            )

    def _pause(self, place: Place, bound: deadline.Deadline, wait: float, reason: str) -> None:
        """Wait before the next attempt, unless the wait would outlast the deadline."""
        if wait >= bound.remaining():
            error = self._failure(
                place,
                f"{reason}; a retry in {wait:g}s would outlast the deadline of "
                f"{bound.seconds:g}s (identity.deadline)",
            )
            error.retry_after = max(wait, error.retry_after or 0.0)
            raise error
        self._sleep(wait)
        self._still_bounded(place, bound, reason)

    # -- answers --------------------------------------------------------------------------

    def _status(self, response: httpx.Response) -> str:
        """``HTTP 503 Service Unavailable: <the API's code and message>``."""
        text = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
        try:
            detail = self._detail(response.json())
        except ValueError:
            detail = ""
        detail = self._line(detail, 200)  # redacted before it is cut short
        return f"{text}: {detail}" if detail else text

    def _failure(self, place: Place, text: str) -> ProviderUnavailable:
        """The error for a request that cannot succeed: a listing that yielded pages broke off."""
        if place.pages:
            return IncompleteListing(
                self._line(
                    f"{self.name}: {place.what}: {text}; the listing broke off after "
                    f"{_progress(place)}"
                )
            )
        return ProviderUnavailable(self._line(f"{self.name}: {place.what}: {text}"))

    def _truncated(self, place: Place, text: str) -> IncompleteListing:
        """A page that is not what the API promises: the listing cannot be trusted."""
        suffix = f" after {_progress(place)}" if place.pages else ""
        return IncompleteListing(
            self._line(f"{self.name}: {place.what} is truncated: {text}; listing stopped{suffix}")
        )

    def _line(self, text: str, limit: int = 400) -> str:
        line = " ".join(redact(text).split())
        key = self._secret.reveal()
        if key:
            line = line.replace(key, "***")
        return line if len(line) <= limit else line[: limit - 3] + "..."

    def _json(self, response: httpx.Response, place: Place) -> Any:
        try:
            return decode(response.content)
        except ValueError:
            raise self._truncated(
                place, f"HTTP {response.status_code} with a body that is not JSON"
            ) from None


class ClerkProvider(HttpProvider):
    name = "clerk"
    credential = "secret key"

    def __init__(
        self,
        secret_key: Secret,
        api_url: str = "https://api.clerk.com/v1",
        *,
        page_size: int = MAX_PAGE_SIZE,
        client: httpx.Client | None = None,
        max_retries: int = 5,
        backoff: float = 1.0,
        deadline: float = DEADLINE,
        cancel: threading.Event | None = None,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        super().__init__(
            api_url,
            secret_key,
            client=client,
            max_retries=max_retries,
            backoff=backoff,
            deadline=deadline,
            cancel=cancel,
        )
        self.page_size = page_size

    def __repr__(self) -> str:
        return f"ClerkProvider(api_url={self._base!r}, page_size={self.page_size})"

    def users(self) -> Iterator[ProviderUser]:
        yield from self._list(self._api())

    def count(self) -> int | None:
        place = Place("user count")
        response = self._get(self._api(), "/users/count", {}, place)
        try:
            data = response.json()
        except ValueError:
            data = None
        total = data.get("total_count") if isinstance(data, dict) else None
        if not isinstance(total, int) or isinstance(total, bool) or total < 0:
            raise ProviderUnavailable(
                f"clerk: user count: HTTP {response.status_code}: the answer holds no total_count"
            )
        return total

    def _list(self, client: httpx.Client) -> Iterator[ProviderUser]:
        cursor: str | None = None
        use_cursor = True
        pages = 0
        listed = 0
        previous: frozenset[str] = frozenset()
        while True:
            params: dict[str, str | int] = {"limit": self.page_size, "order_by": "+created_at"}
            if cursor is not None and use_cursor:
                params[_CURSOR] = cursor
            elif pages:
                params["offset"] = listed
            place = Place(f"page {pages + 1} of the user listing", pages, listed)
            response = self._get(
                client, "/users", params, place, tolerate=_REFUSALS if _CURSOR in params else ()
            )
            if response.status_code in _REFUSALS:
                if not _names_cursor(response):
                    raise self._failure(place, self._status(response))
                log.warning(
                    "clerk: the API refused %s (%s); listing on with offset=%d",
                    _CURSOR,
                    self._status(response),
                    listed,
                )
                use_cursor = False
                continue
            page = self._page(response, place)
            ids = [entry["id"] for entry in page]
            if pages and not previous.isdisjoint(ids):
                if _CURSOR not in params:
                    raise self._truncated(
                        place, f"it repeats users of page {pages} (offset={listed} was ignored)"
                    )
                log.warning(
                    "clerk: the API ignored %s (page %d repeats page %d); listing on with "
                    "offset=%d",
                    _CURSOR,
                    pages + 1,
                    pages,
                    listed,
                )
                use_cursor = False
                continue
            users = [from_clerk(entry) for entry in page]
            pages += 1
            yield from users
            listed += len(users)
            if len(page) < self.page_size:
                return
            cursor = ids[-1]
            previous = frozenset(ids)

    def _page(self, response: httpx.Response, place: Place) -> list[dict[str, Any]]:
        data = self._json(response, place)
        if not isinstance(data, list):
            raise self._truncated(place, f"expected a JSON array of users, got {json_kind(data)}")
        for number, entry in enumerate(data, start=1):
            if not isinstance(entry, dict):
                raise self._truncated(place, f"entry {number} is {json_kind(entry)}, not a user")
            user_id = entry.get("id")
            if not isinstance(user_id, str) or not user_id:
                raise self._truncated(place, f"entry {number} has no id")
        return data

    def _detail(self, data: Any) -> str:
        errors = data.get("errors") if isinstance(data, dict) else None
        if not isinstance(errors, list):
            return ""
        parts = []
        for error in errors[:3]:
            if not isinstance(error, dict):
                continue
            code = error.get("code")
            message = error.get("message") or error.get("long_message")
            parts.append(": ".join(str(p) for p in (code, message) if p))
        return "; ".join(p for p in parts if p)

    def _gone(self, response: httpx.Response) -> bool:
        """Clerk answers a deleted or unknown user with 404 ``resource_not_found``."""
        try:
            data = response.json()
        except ValueError:
            return False
        errors = data.get("errors") if isinstance(data, dict) else None
        codes = (
            [e.get("code") for e in errors if isinstance(e, dict)]
            if isinstance(errors, list)
            else []
        )
        return response.status_code == 404 and "resource_not_found" in codes


def decode(content: bytes) -> Any:
    """A page of JSON. ``orjson`` decodes a page of 500 Clerk users in 60 to 70% of the time
    of ``json``. The cyclic garbage collector is paused meanwhile: such a page makes some 6,700
    lists and dicts, all alive until the page is mapped, and the collections their making
    sets off (a full one, of every object the process holds, every dozen pages or so) made
    decoding up to twice as slow. JSON holds no cycles: there is nothing for it to find."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return orjson.loads(content)
    finally:
        if collecting:
            gc.enable()


def _progress(place: Place) -> str:
    pages = "1 page" if place.pages == 1 else f"{place.pages} pages"
    return f"{pages} ({place.users:,} users)"


def _names_cursor(response: httpx.Response) -> bool:
    """Whether a 400/422 answer is about the ``starting_after`` parameter."""
    try:
        data = response.json()
    except ValueError:
        return _CURSOR in response.text
    errors = data.get("errors") if isinstance(data, dict) else None
    for error in errors if isinstance(errors, list) else []:
        if not isinstance(error, dict):
            continue
        meta = error.get("meta")
        if isinstance(meta, dict) and meta.get("param_name") == _CURSOR:
            return True
        if any(_CURSOR in str(error.get(k) or "") for k in ("message", "long_message")):
            return True
    return False


def json_kind(value: object) -> str:
    """How a JSON value reads in a message: ``a JSON object``, ``null``..."""
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, list):
        return "a JSON array"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a JSON boolean"
    if isinstance(value, int | float):
        return "a JSON number"
    return "a JSON string"


def _host(api_url: str) -> str:
    try:
        return httpx.URL(api_url).host or api_url
    except httpx.InvalidURL:
        return "(invalid URL)"
