"""Local stand-ins for the Clerk Backend API and a SCIM 2.0 service: the subset the identity
providers use, over real HTTP.

Each double is a ``ThreadingHTTPServer`` on 127.0.0.1 (a free port) served by a daemon thread
of the test process; use it as a context manager (or ``start``/``stop``), its base URL is
``url``. HTTP/1.1 with keep-alive, as the real services speak it.

``ClerkDouble`` serves ``GET /v1/users`` (a bare JSON array; ``limit`` 1..500, default 10,
anything else a 422 with Clerk's error body; ``offset``; ``order_by`` ``+created_at`` or
``-created_at``, the default; ``starting_after=<user id>``, only with created_at ordering and
never with ``offset``), ``GET /v1/users/count`` and ``GET /v1/users/<id>`` (404
``resource_not_found`` for a user that is not there). Requests need
``Authorization: Bearer <secret key>``; errors are ``{"errors": [{"message",
"long_message", "code", "meta"}], "clerk_trace_id"}``. Other orderings and filters are not
served (422), which Clerk itself would serve.

``ScimDouble`` serves ``GET /scim/v2/Users`` (``startIndex``, 1-based, and ``count``; a
``ListResponse``; pages capped at ``max_count`` resources, as servers do) and
``GET /scim/v2/Users/<id>``, with SCIM errors.

Users come from a ``Population``: ``count`` users made on demand by ``user(i)`` (so a
million users cost no memory), changed or removed by index, or a list, or a factory of an
iterable. ``clerk_user(i)`` and ``scim_user(i)`` make realistic users, ordered by creation.

Knobs: ``rate_limit(n)`` answers the next n requests 429 with ``Retry-After``; ``fail(n,
status)`` answers them 500/502/503; ``disconnect(n)`` drops the connection without an answer;
``fail_from_page(k)`` fails every listing request from page k on; ``truncate_page(k, how)``
answers page k with a broken body; ``count_answer`` makes the count another number (SCIM:
the ``totalResults`` of requests for at most one resource);
``after_page(k, action)`` runs action once page k is served; ``html_lookups`` answers
requests for one user with a proxy's HTML 404; ``delay`` slows every request. Clerk:
``reject_starting_after`` refuses the cursor with a 400, ``ignore_starting_after`` ignores
it. SCIM: ``max_count``, ``ignore_start_index``, ``reject_zero_count``. ``requests``
counts requests per route and ``seen`` lists them.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

Json = dict[str, Any]
Breakage = Literal["cut", "no-id", "not-a-list", "empty"]

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_EPOCH_MS = 1_672_531_200_000  # 2023-01-01T00:00:00Z
_FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Linus")
_LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson")
_DOMAINS = ("example.com", "example.org", "example.net")
SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SCIM_LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


# -- users --------------------------------------------------------------------------------


def _b62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(_B62[digit])
    return "".join(reversed(digits))


_NOISE = [
    _b62(int.from_bytes(hashlib.blake2b(str(n).encode(), digest_size=32).digest()), 42)
    for n in range(4099)
]


def _noise(i: int, salt: int, width: int) -> str:
    """Random-looking characters for ids and URLs, cheap to make (only cosmetic: the
    unique part of an id is its encoded index)."""
    return _NOISE[(i * 7919 + salt) % len(_NOISE)][:width]


def clerk_id(i: int, prefix: str = "user") -> str:
    """A Clerk-like id (``user_2x`` + 25 base62 characters) sorting as ``i`` does."""
    return f"{prefix}_2x{_b62(i, 6)}{_noise(i, len(prefix), 19)}"


def clerk_index(user_id: str) -> int | None:
    """The ``i`` of ``clerk_id(i)``; None for another id."""
    if not user_id.startswith("user_2x") or len(user_id) != 32:
        return None
    number = 0
    for char in user_id[7:13]:
        digit = _B62.find(char)
        if digit < 0:
            return None
        number = number * 62 + digit
    return number


def created_ms(i: int) -> int:
    """User ``i``'s creation time (ms since the epoch): one user every 37 seconds from 2023."""
    return _EPOCH_MS + i * 37_000


def updated_ms(i: int) -> int:
    return created_ms(i) + (i * 7_919 % 90) * 86_400_000 + i % 1000


def clerk_user(i: int) -> Json:
    """A Clerk Backend API user object. Every 7th user has a second address made primary,
    every 97th has no address at all; every 50th is banned, every 73rd locked, every 89th
    deprovisioned; every 11th has an external_id."""
    created, updated = created_ms(i), updated_ms(i)
    first, last = _FIRST[i % len(_FIRST)], _LAST[i % len(_LAST)]
    domain = _DOMAINS[i % len(_DOMAINS)]
    addresses = []
    if i % 97 != 96:
        addresses.append(_clerk_address(i, 0, f"{first}.{last}.{i}@{domain}".lower(), created))
        if i % 7 == 3:
            addresses.append(_clerk_address(i, 1, f"work.{i}@{domain}", updated))
    primary = addresses[-1]["id"] if addresses else None
    return {
        "id": clerk_id(i),
        "object": "user",
        "username": None,
        "first_name": first,
        "last_name": last,
        "image_url": f"https://img.clerk.com/{_noise(i, 1, 40)}",
        "has_image": False,
        "primary_email_address_id": primary,
        "primary_phone_number_id": None,
        "primary_web3_wallet_id": None,
        "password_enabled": i % 3 != 0,
        "two_factor_enabled": False,
        "totp_enabled": False,
        "backup_code_enabled": False,
        "email_addresses": addresses,
        "phone_numbers": [],
        "web3_wallets": [],
        "passkeys": [],
        "external_accounts": [],
        "saml_accounts": [],
        "public_metadata": {"plan": ("free", "pro", "team")[i % 3], "seat": i},
        "private_metadata": {},
        "unsafe_metadata": {},
        "external_id": f"crm-{i:07d}" if i % 11 == 0 else None,
        "last_sign_in_at": updated,
        "banned": i % 50 == 49,
        "locked": i % 73 == 72,
        "deprovisioned": i % 89 == 88,
        "lockout_expires_in_seconds": 1800 if i % 73 == 72 else None,
        "verification_attempts_remaining": 100,
        "created_at": created,
        "updated_at": updated,
        "delete_self_enabled": True,
        "create_organization_enabled": True,
        "last_active_at": updated,
        "mfa_enabled_at": None,
        "mfa_disabled_at": None,
        "legal_accepted_at": None,
        "profile_image_url": f"https://images.clerk.dev/uploaded/{_noise(i, 2, 24)}",
    }


def _clerk_address(i: int, n: int, address: str, at: int) -> Json:
    return {
        "id": clerk_id(i * 2 + n, "idn"),
        "object": "email_address",
        "email_address": address,
        "reserved": False,
        "verification": {"status": "verified", "strategy": "email_code", "attempts": 1},
        "linked_to": [],
        "matches_sso_connection": False,
        "created_at": at,
        "updated_at": at,
    }


def iso(ms: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def scim_id(i: int) -> str:
    noise = hashlib.blake2b(str(i).encode(), digest_size=12).hexdigest()
    return f"{i:08x}-{noise[:4]}-4{noise[4:7]}-8{noise[7:10]}-{noise[10:22]}"


def scim_user(i: int) -> Json:
    """A SCIM 2.0 User. Every 7th user has a primary work address after a home one, every
    13th has no ``primary`` flag, every 97th has no email (its userName is not an address);
    every 50th is inactive."""
    first, last = _FIRST[i % len(_FIRST)], _LAST[i % len(_LAST)]
    domain = _DOMAINS[i % len(_DOMAINS)]
    address = f"{first}.{last}.{i}@{domain}".lower()
    emails: list[Json] = [{"value": address, "type": "work", "primary": True}]
    if i % 97 == 96:
        emails = []
    elif i % 7 == 3:
        emails = [
            {"value": f"home.{i}@example.net", "type": "home", "primary": False},
            {"value": address, "type": "work", "primary": True},
        ]
    elif i % 13 == 5:
        emails = [{"value": address, "type": "work"}, {"value": f"alt.{i}@example.net"}]
    return {
        "schemas": [SCIM_USER],
        "id": scim_id(i),
        "externalId": f"hr-{i:07d}",
        "userName": f"{first}.{last}.{i}".lower() if i % 97 == 96 else address,
        "name": {"formatted": f"{first} {last}", "givenName": first, "familyName": last},
        "displayName": f"{first} {last}",
        "emails": emails,
        "active": i % 50 != 49,
        "meta": {
            "resourceType": "User",
            "created": iso(created_ms(i)),
            "lastModified": iso(updated_ms(i)),
            "version": f'W/"{i}"',
        },
    }


class Population:
    """``count`` users made on demand by ``user(i)``, in creation order; ``overrides`` maps
    an index to fields replacing the made ones, or to None to remove that user."""

    def __init__(
        self,
        count: int,
        user: Callable[[int], Json] = clerk_user,
        *,
        overrides: Mapping[int, Json | None] | None = None,
        index_of: Callable[[str], int | None] | None = clerk_index,
    ) -> None:
        self.count = count
        self.user = user
        self.index_of = index_of
        self._changed: dict[int, Json] = {}
        self._removed: list[int] = []
        self._lock = threading.Lock()
        for index, fields in (overrides or {}).items():
            if fields is None:
                self.remove(index)
            else:
                self.change(index, **fields)

    @classmethod
    def of(cls, users: Sequence[Json]) -> Population:
        ids: dict[str, int] = {}

        def index_of(user_id: str) -> int | None:
            if not ids:
                ids.update((u["id"], n) for n, u in enumerate(users) if "id" in u)
            return ids.get(user_id)

        return cls(len(users), users.__getitem__, index_of=index_of)

    def change(self, index: int, **fields: Any) -> None:
        with self._lock:
            self._changed.setdefault(index, {}).update(fields)

    def remove(self, index: int) -> None:
        with self._lock:
            if index not in self._removed:
                bisect.insort(self._removed, index)

    def __len__(self) -> int:
        return self.count - len(self._removed)

    def make(self, index: int) -> Json:
        user = self.user(index)
        changes = self._changed.get(index)
        return {**user, **changes} if changes else user

    def _index(self, position: int) -> int:
        index = position
        for removed in self._removed:
            if removed > index:
                break
            index += 1
        return index

    def slice(self, start: int, stop: int) -> list[Json]:
        """Users at positions ``start``..``stop`` (ascending creation order)."""
        start, stop = max(start, 0), min(stop, len(self))
        found: list[Json] = []
        index = self._index(start)
        removed = set(self._removed)
        while len(found) < stop - start and index < self.count:
            if index not in removed:
                found.append(self.make(index))
            index += 1
        return found

    def position_of(self, user_id: str) -> int | None:
        index = self.index_of(user_id) if self.index_of else None
        if index is None:
            index = next((i for i in range(self.count) if self.user(i).get("id") == user_id), None)
        if index is None or not 0 <= index < self.count:
            return None
        if index in self._removed or self.make(index).get("id") != user_id:
            return None
        return index - bisect.bisect_left(self._removed, index)

    def find(self, user_id: str) -> Json | None:
        """The user with this id; None if there is none (or it was removed)."""
        position = self.position_of(user_id)
        return None if position is None else self.slice(position, position + 1)[0]

    def __iter__(self) -> Iterator[Json]:
        removed = set(self._removed)
        return (self.make(i) for i in range(self.count) if i not in removed)


class Streamed(Population):
    """Users from a factory of an iterable, read afresh (and scanned) for every request."""

    def __init__(self, factory: Callable[[], Iterable[Json]]) -> None:
        self.factory = factory
        super().__init__(sum(1 for _ in factory()), self._nth, index_of=None)

    def _nth(self, index: int) -> Json:
        return next(itertools.islice(self.factory(), index, None))

    def slice(self, start: int, stop: int) -> list[Json]:
        removed = set(self._removed)
        kept = (
            {**u, **self._changed.get(n, {})}
            for n, u in enumerate(self.factory())
            if n not in removed
        )
        return list(itertools.islice(kept, max(start, 0), max(stop, 0)))

    def position_of(self, user_id: str) -> int | None:
        return next((n for n, u in enumerate(self.slice(0, len(self))) if u["id"] == user_id), None)


def _population(users: Population | Sequence[Json] | Callable[[], Iterable[Json]]) -> Population:
    if isinstance(users, Population):
        return users
    if callable(users):
        return Streamed(users)
    return Population.of(users)


# -- the server ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


Answer = tuple[int, bytes, dict[str, str]]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    double: _Double


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 30

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle's algorithm and the
        # client's delayed ACK add 40 ms to every answer on a kept-alive connection.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        answer = self.server.double.handle(self)
        if answer is None:
            self.close_connection = True
            return
        status, body, headers = answer
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = b'{"errors":[{"message":"method not allowed","code":"method_not_allowed"}]}'
        self.send_response(405)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Double:
    """The server, the knobs and the counters shared by both doubles."""

    prefix = ""
    content_type = "application/json"

    def __init__(
        self,
        users: Population | Sequence[Json] | Callable[[], Iterable[Json]],
        credential: str,
        *,
        delay: float = 0.0,
        echo_credentials: bool = False,
    ) -> None:
        self.population = _population(users)
        self.credential = credential
        self.delay = delay
        self.echo_credentials = echo_credentials
        """Quote the presented credential in 401 answers (a careless server)."""
        self.count_answer: int | None = None
        self.requests: Counter[str] = Counter()
        self.seen: list[Seen] = []
        self._queue: deque[tuple[str, int, str | None]] = deque()
        self._failing_from: tuple[int, int] | None = None
        self._broken: dict[int, Breakage] = {}
        self._after_page: dict[int, Callable[[], object]] = {}
        self.html_lookups = False
        """Answer every request for one user with a proxy's HTML 404 page."""
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- knobs ----------------------------------------------------------------------------

    def rate_limit(self, times: int = 1, retry_after: str | None = "0") -> None:
        """Answer the next ``times`` requests 429 (with ``Retry-After`` unless None)."""
        with self._lock:
            self._queue.extend(("status", 429, retry_after) for _ in range(times))

    def fail(self, times: int = 1, status: int = 503) -> None:
        """Answer the next ``times`` requests with ``status`` (a 5xx)."""
        with self._lock:
            self._queue.extend(("status", status, None) for _ in range(times))

    def disconnect(self, times: int = 1) -> None:
        """Close the connection without answering the next ``times`` requests."""
        with self._lock:
            self._queue.extend(("drop", 0, None) for _ in range(times))

    def fail_from_page(self, page: int | None, status: int = 503) -> None:
        """Answer every listing request for page ``page`` or later with ``status``."""
        self._failing_from = None if page is None else (page, status)

    def truncate_page(self, page: int, how: Breakage = "cut") -> None:
        """Answer page ``page`` with a broken body: ``cut`` (JSON cut in half), ``no-id`` (a
        user without id), ``not-a-list`` (the wrong JSON type), ``empty`` (no users)."""
        self._broken[page] = how

    def after_page(self, page: int, action: Callable[[], object]) -> None:
        """Run ``action`` once, right after page ``page`` is served (a user deleted while
        the listing runs)."""
        self._after_page[page] = action

    def lookup(self, user_id: str) -> Answer | None:
        """One user's JSON, or None when there is no such user."""
        if self.html_lookups:
            return 404, b"<html><body>404 Not Found</body></html>", {"Content-Type": "text/html"}
        found = self.population.find(unquote(user_id))
        return None if found is None else self.json(200, found)

    def served(self, page: int) -> None:
        action = self._after_page.pop(page, None)
        if action is not None:
            action()

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    # -- life -----------------------------------------------------------------------------

    def start(self) -> _Double:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.double = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}{self.prefix}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    # -- requests -------------------------------------------------------------------------

    def handle(self, request: BaseHTTPRequestHandler) -> Answer | None:
        parts = urlsplit(request.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        path = parts.path
        with self._lock:
            self.requests[path.removeprefix(self.prefix)] += 1
            self.seen.append(Seen(path, query, dict(request.headers.items())))
            injected = self._queue.popleft() if self._queue else None
        if self.delay:
            time.sleep(self.delay)
        if injected is not None:
            kind, status, retry_after = injected
            if kind == "drop":
                return None
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            return self.error(status, headers=headers)
        presented = request.headers.get("Authorization", "")
        if presented != f"Bearer {self.credential}":
            return self.unauthorized(presented.removeprefix("Bearer "))
        return self.route(path.removeprefix(self.prefix), query)

    def page_fault(self, page: int) -> Answer | None:
        if self._failing_from is not None and page >= self._failing_from[0]:
            return self.error(self._failing_from[1])
        return None

    def json(self, status: int, data: object, headers: Mapping[str, str] | None = None) -> Answer:
        body = json.dumps(data, separators=(",", ":")).encode()
        return status, body, {"Content-Type": self.content_type, **(headers or {})}

    def route(self, path: str, query: dict[str, str]) -> Answer:
        raise NotImplementedError

    def error(self, status: int, message: str | None = None, **extra: Any) -> Answer:
        raise NotImplementedError

    def unauthorized(self, presented: str) -> Answer:
        raise NotImplementedError


def _integer(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


_REASONS = {
    429: ("too_many_requests", "Too many requests, please try again later."),
    500: ("internal_clerk_error", "There was an internal error on our servers"),
    502: ("bad_gateway", "Bad gateway"),
    503: ("service_unavailable", "Service unavailable, please try again later"),
    504: ("gateway_timeout", "Gateway timeout"),
}


class ClerkDouble(_Double):
    """The Clerk Backend API's ``/v1/users`` and ``/v1/users/count``."""

    prefix = "/v1"

    def __init__(
        self,
        users: Population | Sequence[Json] | Callable[[], Iterable[Json]],
        secret_key: str,
        **knobs: Any,
    ) -> None:
        super().__init__(users, secret_key, **knobs)
        self.reject_starting_after = False
        """Answer a request naming ``starting_after`` with 400 (an API without the cursor)."""
        self.ignore_starting_after = False
        """Serve as if ``starting_after`` were not there (an API that ignores it)."""

    def __enter__(self) -> ClerkDouble:
        self.start()
        return self

    def error(self, status: int, message: str | None = None, **extra: Any) -> Answer:
        if status == 502 and message is None:
            body = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            return status, body, {"Content-Type": "text/html", **extra.pop("headers", {})}
        code, default = _REASONS.get(status, ("request_error", "error"))
        code = extra.pop("code", code)
        headers = extra.pop("headers", {})
        error: Json = {"message": message or default, "long_message": message or default}
        error["code"] = code
        if extra.get("param"):
            error["meta"] = {"param_name": extra["param"]}
        return self.json(status, {"errors": [error], "clerk_trace_id": "trace"}, headers)

    def unauthorized(self, presented: str) -> Answer:
        detail = "Unable to authenticate the request, you need to supply an active API key"
        if self.echo_credentials:
            detail += f" (got {presented!r})"
        return self.json(
            401,
            {
                "errors": [
                    {
                        "message": "Invalid authentication",
                        "long_message": detail,
                        "code": "authentication_invalid",
                    }
                ],
                "clerk_trace_id": "trace",
            },
        )

    def _invalid(self, param: str, message: str) -> Answer:
        return self.error(422, message, code="form_param_value_invalid", param=param)

    def route(self, path: str, query: dict[str, str]) -> Answer:
        if path == "/users/count":
            total = len(self.population) if self.count_answer is None else self.count_answer
            return self.json(200, {"object": "total_count", "total_count": total})
        if path.startswith("/users/"):
            answer = self.lookup(path.removeprefix("/users/"))
            return answer or self.error(404, "No user was found", code="resource_not_found")
        if path != "/users":
            return self.error(404, "Resource not found", code="resource_not_found")
        limit = _integer(query.get("limit", "10"))
        if limit is None or not 1 <= limit <= 500:
            return self._invalid("limit", "limit must be an integer between 1 and 500")
        offset = _integer(query.get("offset", "0"))
        if offset is None or offset < 0:
            return self._invalid("offset", "offset must be a non-negative integer")
        order = query.get("order_by", "-created_at")
        if order not in ("+created_at", "-created_at", "created_at"):
            return self._invalid("order_by", f"order_by {order} is not served by this double")
        descending = order != "+created_at"
        total = len(self.population)
        start = offset
        cursor = query.get("starting_after")
        if cursor is not None and self.reject_starting_after:
            return self.error(
                400,
                "starting_after is not a valid parameter for this request.",
                code="form_param_unknown",
                param="starting_after",
            )
        if cursor is not None and not self.ignore_starting_after:
            if "offset" in query:
                return self._invalid("starting_after", "starting_after cannot be used with offset")
            at = self.population.position_of(cursor)
            if at is None:
                return self._invalid("starting_after", f"starting_after {cursor} is not a user")
            start = (total - 1 - at if descending else at) + 1
        page = start // limit + 1
        fault = self.page_fault(page)
        if fault is not None:
            return fault
        stop = min(start + limit, total)
        if descending:
            users = self.population.slice(total - stop, total - start)[::-1]
        else:
            users = self.population.slice(start, stop)
        broken = self._broken.get(page)
        if broken == "cut":
            status, body, headers = self.json(200, users)
            return status, body[: len(body) // 2], headers
        if broken == "no-id" and users:
            users[len(users) // 2] = {k: v for k, v in users[len(users) // 2].items() if k != "id"}
        elif broken == "not-a-list":
            return self.json(200, {"data": users, "total_count": total})
        elif broken == "empty":
            users = []
        self.served(page)
        return self.json(200, users)


class ScimDouble(_Double):
    """A SCIM 2.0 service provider's ``/scim/v2/Users``."""

    prefix = "/scim/v2"
    content_type = "application/scim+json"

    def __init__(
        self,
        users: Population | Sequence[Json] | Callable[[], Iterable[Json]],
        token: str,
        *,
        max_count: int = 500,
        **knobs: Any,
    ) -> None:
        super().__init__(users, token, **knobs)
        self.max_count = max_count
        """The most resources one page holds, whatever ``count`` asks."""
        self.ignore_start_index = False
        """Serve every page from the first user (and say startIndex=1)."""
        self.reject_zero_count = False
        """Answer ``count=0`` with 400 (servers that want at least one resource)."""

    def __enter__(self) -> ScimDouble:
        self.start()
        return self

    def error(self, status: int, message: str | None = None, **extra: Any) -> Answer:
        headers = extra.pop("headers", {})
        data: Json = {
            "schemas": [SCIM_ERROR],
            "status": str(status),
            "detail": message or _REASONS.get(status, ("", "error"))[1],
        }
        if extra.get("scim_type"):
            data["scimType"] = extra["scim_type"]
        return self.json(status, data, headers)

    def unauthorized(self, presented: str) -> Answer:
        detail = "Authorization failure. The authorization header is invalid or missing."
        if self.echo_credentials:
            detail += f" (got {presented!r})"
        return self.json(401, {"schemas": [SCIM_ERROR], "status": "401", "detail": detail})

    def route(self, path: str, query: dict[str, str]) -> Answer:
        if path.startswith("/Users/"):
            answer = self.lookup(path.removeprefix("/Users/"))
            return answer or self.error(404, "Resource not found")
        if path != "/Users":
            return self.error(404, f"{path} not found")
        start = _integer(query.get("startIndex", "1"))
        count = _integer(query.get("count", str(self.max_count)))
        if start is None or count is None:
            return self.error(
                400, "startIndex and count must be integers", scim_type="invalidValue"
            )
        start, count = max(start, 1), min(max(count, 0), self.max_count)
        total = len(self.population)
        if self.count_answer is not None and count <= 1:
            total = self.count_answer
        if count == 0:
            if self.reject_zero_count:
                return self.error(400, "count must be at least 1", scim_type="invalidValue")
            return self.json(200, self._list(total, start, []))
        if self.ignore_start_index:
            start = 1
        page = (start - 1) // count + 1
        fault = self.page_fault(page)
        if fault is not None:
            return fault
        users = self.population.slice(start - 1, start - 1 + count)
        broken = self._broken.get(page)
        if broken == "cut":
            status, body, headers = self.json(200, self._list(total, start, users))
            return status, body[: len(body) // 2], headers
        if broken == "no-id" and users:
            users[len(users) // 2] = {k: v for k, v in users[len(users) // 2].items() if k != "id"}
        elif broken == "not-a-list":
            return self.json(200, {**self._list(total, start, []), "Resources": {"0": users}})
        elif broken == "empty":
            users = []
        self.served(page)
        return self.json(200, self._list(total, start, users))

    @staticmethod
    def _list(total: int, start: int, users: list[Json]) -> Json:
        return {
            "schemas": [SCIM_LIST],
            "totalResults": total,
            "itemsPerPage": len(users),
            "startIndex": start,
            "Resources": users,
        }
