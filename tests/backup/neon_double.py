"""A local stand-in for the Neon API v2: the subset the ``neon`` backup driver uses.

A real HTTP server on 127.0.0.1 (a thread of the test process). Every branch is a real local
PostgreSQL database: the root branch is the database given at start; a new branch is
``CREATE DATABASE <new> TEMPLATE <parent's>``, made by a background thread while the
branch's operations say ``running``, as Neon does. While an operation of the project is
unfinished (``failed`` included: Neon retries it), changes are refused with ``423 Locked``.
Deleting a branch is asynchronous too; its database is dropped by its last operation.

Where it differs from Neon, in ways the driver cannot notice: the connection URI of a
branch names that branch's own local database (Neon keeps the database name and changes the
host), and the role's password is not checked (the local server trusts).

Knobs for tests: ``inject`` answers the next requests with 429 (``Retry-After: 0``), 500,
503...; ``fail_next_operation`` makes the next operation ``failed`` for a few polls before
Neon's retry finishes it; ``error_next_operation`` ends it in ``error``; ``hold`` keeps the
project busy with a foreign operation. ``requests`` counts requests per route, ``answers``
counts (route, status) pairs, ``served`` lists the statuses each operation was polled in.
``stop`` shuts the server down, waits for every operation and drops every database it made.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

Json = dict[str, Any]
Answer = tuple[int, Json | None, dict[str, str]]

FINAL = frozenset({"finished", "error", "cancelled", "skipped"})

_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"/projects/(?P<project>[^/]+)/branches"), "create_branch"),
    ("GET", re.compile(r"/projects/(?P<project>[^/]+)/branches"), "list_branches"),
    ("GET", re.compile(r"/projects/(?P<project>[^/]+)/branches/(?P<branch>[^/]+)"), "get_branch"),
    (
        "DELETE",
        re.compile(r"/projects/(?P<project>[^/]+)/branches/(?P<branch>[^/]+)"),
        "delete_branch",
    ),
    (
        "GET",
        re.compile(r"/projects/(?P<project>[^/]+)/operations/(?P<operation>[^/]+)"),
        "get_operation",
    ),
    ("GET", re.compile(r"/projects/(?P<project>[^/]+)/connection_uri"), "connection_uri"),
]

_REASONS = {
    400: "bad request",
    401: "authentication required",
    404: "not found",
    405: "method not allowed",
    423: "project already has running conflicting operations, scheduling of new ones is prohibited",
    429: "too many requests",
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}

_WORDS = ("quiet", "small", "wispy", "amber", "lucky", "frosty", "bold", "calm")
_THINGS = ("term", "meadow", "forest", "river", "cloud", "stone", "field", "dew")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _neon_id(prefix: str) -> str:
    return f"{prefix}-{secrets.choice(_WORDS)}-{secrets.choice(_THINGS)}-{secrets.token_hex(4)}"


def _error(status: int, message: str | None = None) -> Answer:
    return status, {"code": "", "message": message or _REASONS.get(status, "error")}, {}


@dataclass
class Operation:
    id: str
    project_id: str
    branch_id: str
    action: str
    endpoint_id: str | None = None
    status: str = "scheduling"
    failures_count: int = 0
    error: str | None = None
    script: str | None = None
    """``failed`` or ``error``: what this operation is made to do."""
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)
    started: float = field(default_factory=time.monotonic)

    def to_json(self) -> Json:
        data: Json = {
            "id": self.id,
            "project_id": self.project_id,
            "branch_id": self.branch_id,
            "action": self.action,
            "status": self.status,
            "failures_count": self.failures_count,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "total_duration_ms": int((time.monotonic() - self.started) * 1000),
        }
        if self.endpoint_id:
            data["endpoint_id"] = self.endpoint_id
        if self.error:
            data["error"] = self.error
        return data


@dataclass
class Branch:
    id: str
    project_id: str
    name: str
    parent_id: str | None
    database: str
    """The local PostgreSQL database holding this branch's data."""
    endpoint_id: str | None = None
    current_state: str = "init"
    default: bool = False
    created_at: str = field(default_factory=_now)

    def to_json(self) -> Json:
        data: Json = {
            "id": self.id,
            "project_id": self.project_id,
            "name": self.name,
            "current_state": self.current_state,
            "default": self.default,
            "primary": self.default,
            "protected": False,
            "created_at": self.created_at,
            "updated_at": self.created_at,
        }
        if self.parent_id:
            data["parent_id"] = self.parent_id
        return data


@dataclass
class _Injection:
    status: int
    remaining: int
    retry_after: str | None
    route: str | None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    double: NeonDouble


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def do_DELETE(self) -> None:
        self._answer("DELETE")

    def do_PATCH(self) -> None:
        self._answer("PATCH")

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def _answer(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        status, body, headers = self.server.double.handle(
            method, self.path, raw, self.headers.get("Authorization")
        )
        payload = b"" if body is None or status == 204 else json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if payload:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)


class NeonDouble:
    """One Neon project whose root branch is ``root_url``'s database."""

    def __init__(
        self,
        root_url: str,
        *,
        api_key: str,
        project_id: str = "quiet-forest-58231907",
        op_delay: float = 0.1,
    ) -> None:
        info = conninfo_to_dict(root_url)
        self.api_key = api_key
        self.project_id = project_id
        self.op_delay = op_delay
        self.host = str(info.get("host") or "127.0.0.1")
        self.port = int(info.get("port") or 5432)
        self.role = str(info.get("user") or "postgres")
        self.database_name = str(info["dbname"])
        """The database's name inside every branch (the root's local name)."""
        self.password = f"npg_{secrets.token_hex(8)}"
        self._admin_conninfo = make_conninfo(root_url, dbname="postgres")

        self.lock = threading.Condition()
        self.branches: dict[str, Branch] = {}
        self.operations: dict[str, Operation] = {}
        self.requests: Counter[str] = Counter()
        self.answers: Counter[tuple[str, int]] = Counter()
        self.served: dict[str, list[str]] = {}
        self.errors: list[str] = []
        """Tracebacks of the double's own failures; a test should see none."""
        self.created_databases: set[str] = set()
        self._injections: list[_Injection] = []
        self._scripts: list[tuple[str, int]] = []
        self._workers: list[threading.Thread] = []
        self._stopping = False

        root = Branch(
            _neon_id("br"),
            project_id,
            "main",
            None,
            self.database_name,
            endpoint_id=_neon_id("ep"),
            current_state="ready",
            default=True,
        )
        self.branches[root.id] = root
        self.root_branch_id = root.id

        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.double = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # -- life -------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/v2"

    def start(self) -> NeonDouble:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
        with self.lock:
            self._stopping = True
            self.lock.notify_all()
            workers = list(self._workers)
        for worker in workers:
            worker.join(timeout=60)
        with psycopg.connect(self._admin_conninfo, autocommit=True) as admin:
            for name in sorted(self.created_databases):
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )

    def __enter__(self) -> NeonDouble:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- knobs and views ---------------------------------------------------------------

    def inject(
        self,
        status: int,
        times: int = 1,
        *,
        retry_after: str | None = None,
        route: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests (of ``route``, or any) with ``status``; a 429
        carries ``Retry-After: 0`` unless told otherwise."""
        if status == 429 and retry_after is None:
            retry_after = "0"
        with self.lock:
            self._injections.append(_Injection(status, times, retry_after, route))

    def clear_injections(self) -> None:
        with self.lock:
            self._injections.clear()

    def fail_next_operation(self, polls: int = 3) -> None:
        """The next operation goes ``failed`` until it was polled ``polls`` times so, then
        Neon's retry runs it and it finishes."""
        with self.lock:
            self._scripts.append(("failed", polls))

    def error_next_operation(self) -> None:
        """The next operation ends in ``error`` without doing its work."""
        with self.lock:
            self._scripts.append(("error", 0))

    def hold(self, seconds: float) -> Operation:
        """A foreign operation (a compute start on the root) that keeps the project busy."""
        with self.lock:
            root = self.branches[self.root_branch_id]
            operation = self._operation(root.id, "start_compute", root.endpoint_id, script=False)
            operation.status = "running"
        self._spawn([operation], {}, hold=seconds)
        return operation

    def wait_idle(self, timeout: float = 30.0) -> None:
        with self.lock:
            if not self.lock.wait_for(lambda: not self._busy(), timeout=timeout):
                raise TimeoutError("the double's operations did not finish")

    def live_branches(self) -> list[Branch]:
        with self.lock:
            return list(self.branches.values())

    def branch(self, branch_id: str) -> Branch | None:
        with self.lock:
            return self.branches.get(branch_id)

    def database_url(self, branch_id: str) -> str:
        branch = self.branch(branch_id)
        assert branch is not None, f"no branch {branch_id}"
        return self._local_url(branch.database)

    def existing_databases(self) -> set[str]:
        """The databases this double made that still exist on the server."""
        with psycopg.connect(self._admin_conninfo, autocommit=True) as admin:
            names = {r[0] for r in admin.execute("SELECT datname FROM pg_database").fetchall()}
        return names & set(self.created_databases)

    # -- HTTP --------------------------------------------------------------------------------

    def handle(self, method: str, target: str, raw: bytes, authorization: str | None) -> Answer:
        parts = urlsplit(target)
        path = parts.path.removeprefix("/api/v2")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        route, params = "unknown", {}
        allowed = False
        for verb, pattern, name in _ROUTES:
            match = pattern.fullmatch(path)
            if match:
                route, params = name, match.groupdict()
                if verb == method:
                    allowed = True
                    break
        with self.lock:
            self.requests[route] += 1
        try:
            answer = self._route(method, route, allowed, params, query, raw, authorization)
        except Exception:
            with self.lock:
                self.errors.append(traceback.format_exc())
            answer = _error(500)
        with self.lock:
            self.answers[(route, answer[0])] += 1
        return answer

    def _route(
        self,
        method: str,
        route: str,
        allowed: bool,
        params: dict[str, str],
        query: dict[str, str],
        raw: bytes,
        authorization: str | None,
    ) -> Answer:
        if authorization is None or not secrets.compare_digest(
            authorization.encode(), f"Bearer {self.api_key}".encode()
        ):
            return _error(401)
        if route == "unknown":
            return _error(404)
        if not allowed:
            return _error(405)
        with self.lock:
            for injection in self._injections:
                if injection.remaining > 0 and injection.route in (None, route):
                    injection.remaining -= 1
                    status, body, headers = _error(injection.status)
                    if injection.retry_after is not None:
                        headers = {"Retry-After": injection.retry_after}
                    return status, body, headers
        if params["project"] != self.project_id:
            return _error(404, "project not found")
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return _error(400, "request body is not valid JSON")
        if not isinstance(body, dict):
            return _error(400, "request body must be an object")
        handler: Callable[..., Answer] = getattr(self, f"_{route}")
        with self.lock:
            return handler(params=params, query=query, body=body)

    # -- endpoints (called with the lock held) -----------------------------------------------

    def _create_branch(
        self, *, params: dict[str, str], query: dict[str, str], body: Json
    ) -> Answer:
        spec = body.get("branch") or {}
        endpoints = body.get("endpoints") or []
        parent = self.branches.get(spec.get("parent_id") or self.root_branch_id)
        if parent is None:
            return _error(404, "parent branch not found")
        if not isinstance(endpoints, list) or any(
            not isinstance(e, dict) or e.get("type") not in ("read_write", "read_only")
            for e in endpoints
        ):
            return _error(400, "endpoints: type must be read_write or read_only")
        if sum(1 for e in endpoints if e["type"] == "read_write") > 1:
            return _error(400, "a branch can have only one read_write endpoint")
        if self._busy():
            return _error(423)
        branch_id = _neon_id("br")
        branch = Branch(
            branch_id,
            self.project_id,
            str(spec.get("name") or branch_id),
            parent.id,
            f"rcl_neon_{secrets.token_hex(6)}",
            endpoint_id=_neon_id("ep") if endpoints else None,
        )
        self.branches[branch.id] = branch
        operations = [self._operation(branch.id, "create_branch")]
        operations[0].status = "running"
        if branch.endpoint_id:
            operations.append(self._operation(branch.id, "start_compute", branch.endpoint_id))
        jobs = {operations[0].id: lambda: self._clone(parent.database, branch)}
        self._spawn(operations, jobs)
        answer: Json = {
            "branch": branch.to_json(),
            "endpoints": [self._endpoint(branch)] if branch.endpoint_id else [],
            "operations": [o.to_json() for o in operations],
            "roles": [{"branch_id": branch.id, "name": self.role, "protected": False}],
            "databases": [
                {"branch_id": branch.id, "name": self.database_name, "owner_name": self.role}
            ],
        }
        if branch.endpoint_id:
            answer["connection_uris"] = [{"connection_uri": self._uri(branch)}]
        return 201, answer, {}

    def _list_branches(
        self, *, params: dict[str, str], query: dict[str, str], body: Json
    ) -> Answer:
        search = query.get("search", "")
        found = [
            b for b in self.branches.values() if not search or search in b.name or search in b.id
        ]
        found.sort(key=lambda b: (b.created_at, b.id), reverse=True)
        start = int(query.get("cursor") or 0)
        limit = int(query.get("limit") or 10000)
        page = found[start : start + limit]
        answer: Json = {"branches": [b.to_json() for b in page], "annotations": {}}
        if start + limit < len(found):
            answer["pagination"] = {"next": str(start + limit)}
        return 200, answer, {}

    def _get_branch(self, *, params: dict[str, str], query: dict[str, str], body: Json) -> Answer:
        branch = self.branches.get(params["branch"])
        if branch is None:
            return _error(404, "branch not found")
        return 200, {"branch": branch.to_json()}, {}

    def _delete_branch(
        self, *, params: dict[str, str], query: dict[str, str], body: Json
    ) -> Answer:
        branch = self.branches.get(params["branch"])
        if branch is None:
            return 204, None, {}
        if branch.default:
            return _error(400, "cannot delete the project's default branch")
        if any(b.parent_id == branch.id for b in self.branches.values()):
            return _error(400, "cannot delete a branch that has child branches")
        if self._busy():
            return _error(423)
        del self.branches[branch.id]
        operations = []
        if branch.endpoint_id:
            operations.append(self._operation(branch.id, "suspend_compute", branch.endpoint_id))
        operations.append(self._operation(branch.id, "delete_timeline"))
        operations[0].status = "running"
        self._spawn(operations, {operations[-1].id: lambda: self._drop(branch.database)})
        return (
            200,
            {"branch": branch.to_json(), "operations": [o.to_json() for o in operations]},
            {},
        )

    def _get_operation(
        self, *, params: dict[str, str], query: dict[str, str], body: Json
    ) -> Answer:
        operation = self.operations.get(params["operation"])
        if operation is None:
            return _error(404, "operation not found")
        self.served.setdefault(operation.id, []).append(operation.status)
        self.lock.notify_all()
        return 200, {"operation": operation.to_json()}, {}

    def _connection_uri(
        self, *, params: dict[str, str], query: dict[str, str], body: Json
    ) -> Answer:
        for needed in ("database_name", "role_name"):
            if not query.get(needed):
                return _error(400, f"missing required query parameter {needed}")
        branch = self.branches.get(query.get("branch_id") or self.root_branch_id)
        if branch is None:
            return _error(404, "branch not found")
        if branch.endpoint_id is None:
            return _error(404, "read_write endpoint not found for this branch")
        if query["database_name"] != self.database_name:
            return _error(404, f"database {query['database_name']!r} not found")
        if query["role_name"] != self.role:
            return _error(404, f"role {query['role_name']!r} not found")
        return 200, {"uri": self._uri(branch)}, {}

    # -- operations --------------------------------------------------------------------------

    def _busy(self) -> bool:
        return any(o.status not in FINAL for o in self.operations.values())

    def _operation(
        self, branch_id: str, action: str, endpoint_id: str | None = None, *, script: bool = True
    ) -> Operation:
        operation = Operation(str(uuid.uuid4()), self.project_id, branch_id, action, endpoint_id)
        if script and self._scripts:
            kind, polls = self._scripts.pop(0)
            operation.script = f"{kind}:{polls}"
        self.operations[operation.id] = operation
        return operation

    def _set(self, operation: Operation, status: str, error: str | None = None) -> None:
        with self.lock:
            operation.status = status
            operation.error = error
            operation.updated_at = _now()
            self.lock.notify_all()

    def _spawn(
        self, operations: list[Operation], jobs: dict[str, Callable[[], None]], hold: float = 0
    ) -> None:
        worker = threading.Thread(
            target=self._work, args=(operations, jobs, hold), name="neon-double-operations"
        )
        self._workers.append(worker)
        worker.start()

    def _work(
        self, operations: list[Operation], jobs: dict[str, Callable[[], None]], hold: float
    ) -> None:
        for index, operation in enumerate(operations):
            try:
                self._set(operation, "running")
                time.sleep(hold or self.op_delay)
                kind, _, polls = (operation.script or "").partition(":")
                if kind == "error":
                    self._set(operation, "error", "simulated failure: the operation gave up")
                    for later in operations[index + 1 :]:
                        self._set(later, "cancelled")
                    return
                if kind == "failed":
                    with self.lock:
                        operation.failures_count += 1
                    self._set(operation, "failed", "simulated transient failure; retrying")
                    self._await_failed_polls(operation, int(polls))
                    self._set(operation, "running")
                    time.sleep(self.op_delay)
                job = jobs.get(operation.id)
                if job is not None:
                    job()
                self._set(operation, "finished")
            except Exception:
                with self.lock:
                    self.errors.append(traceback.format_exc())
                self._set(operation, "error", "the double failed: see NeonDouble.errors")
                for later in operations[index + 1 :]:
                    self._set(later, "cancelled")
                return

    def _await_failed_polls(self, operation: Operation, polls: int) -> None:
        """Neon retries a failed operation on its own; here, once it was seen failed."""

        def seen() -> bool:
            return self._stopping or self.served.get(operation.id, []).count("failed") >= polls

        with self.lock:
            self.lock.wait_for(seen, timeout=30)

    # -- local databases -------------------------------------------------------------------

    def _clone(self, template: str, branch: Branch) -> None:
        """``CREATE DATABASE ... TEMPLATE``: PostgreSQL copies a template only while nobody
        else is connected to it, so other sessions on it are ended first."""
        with self.lock:
            self.created_databases.add(branch.database)
        statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(branch.database), sql.Identifier(template)
        )
        with psycopg.connect(self._admin_conninfo, autocommit=True) as admin:
            for attempt in range(100):
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (template,),
                )
                try:
                    admin.execute(statement)
                    break
                except pg_errors.ObjectInUse:
                    if attempt == 99:
                        raise
                    time.sleep(0.05)
        with self.lock:
            branch.current_state = "ready"

    def _drop(self, database: str) -> None:
        with psycopg.connect(self._admin_conninfo, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )

    def _local_url(self, database: str, password: str | None = None) -> str:
        secret = f":{quote(password, safe='')}" if password else ""
        return (
            f"postgresql://{quote(self.role, safe='')}{secret}@{self.host}:{self.port}/{database}"
        )

    def _uri(self, branch: Branch) -> str:
        return self._local_url(branch.database, self.password) + "?sslmode=prefer"

    def _endpoint(self, branch: Branch) -> Json:
        return {
            "id": branch.endpoint_id,
            "project_id": self.project_id,
            "branch_id": branch.id,
            "type": "read_write",
            "host": f"{branch.endpoint_id}.localhost",
            "current_state": "init",
        }
