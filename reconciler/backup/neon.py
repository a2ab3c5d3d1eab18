"""The ``neon`` driver: a backup is a branch of the target's Neon branch, through the API v2.

A Neon branch is a copy-on-write snapshot, made in seconds whatever the database's size, and
it needs no compute to exist: ``take`` creates one without an endpoint. Reading a backup
(``copy``, ``restore``) makes a short-lived child branch of it with a read-write endpoint,
deleted afterwards whatever happens. A restore dumps that child branch into the database
named by ``--to`` through ``replace_database``, which leaves exactly the backup there or
nothing changed. Neon's own branch restore (``POST .../branches/{id}/restore``) is not
used: it replaces the whole branch, every database on it (other applications' too), and
restarts its compute, cutting every connection.

Neon answers every change with operations that run asynchronously; each one is polled until
it has ``finished``. ``failed`` is not final (Neon retries the operation itself); ``error``
and ``cancelled`` are. While an operation of the project runs, Neon refuses other changes
with ``423 Locked``: that and ``503`` are waited out, ``429`` backs off (``Retry-After``
when given), other ``5xx`` answers and connection failures are retried a few times. Every
delay goes through ``_sleep``.

The API key travels in one request header and nowhere else: messages name the operation
and the HTTP status, never a header.
"""

from __future__ import annotations

import logging
import re
import secrets as random
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import httpx

from reconciler.backup.base import Artifact, BackupError, newest_first
from reconciler.backup.pg_dump import PgDumpDriver, client_env, tool_error
from reconciler.backup.replace import replace_database
from reconciler.db.url import DatabaseUrl, parse_database_url
from reconciler.errors import ReconcilerError
from reconciler.httputil import retry_after
from reconciler.policy.model import NeonSettings
from reconciler.secrets import redact

log = logging.getLogger(__name__)

BACKUP_PREFIX = "rcl-backup-"
SCRATCH_PREFIX = "rcl-scratch-"

_DONE = frozenset({"finished", "skipped"})
_FAILED = frozenset({"error", "cancelled"})
_WAIT_OUT = frozenset({423, 503})
"""Another operation runs on the project: safe to retry until the timeout."""
_RETRY_FEW = frozenset({500, 502, 504})
_ATTEMPTS = 4
"""Tries for a request answered with 500/502/504 or lost on the way."""
_MAX_BACKOFF = 30.0
_HTTP_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
_PAGE_SIZE = 100
_JSON = dict[str, Any]


class _TimedOut(BackupError):
    """An operation still runs at the deadline: its branch cannot be deleted yet."""


class NeonDriver:
    name = "neon"
    page_size = _PAGE_SIZE

    def __init__(
        self,
        target: str,
        url: DatabaseUrl,
        settings: NeonSettings,
        *,
        poll_interval: float = 1.0,
        timeout: float = 600.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.target = target
        self.url = url
        self.settings = settings
        self.poll_interval = poll_interval
        self.timeout = timeout
        self._client = client
        self._own: httpx.Client | None = None
        self._base = settings.api_url.rstrip("/")
        self._project = f"/projects/{settings.project_id}"

    def __repr__(self) -> str:
        return (
            f"NeonDriver(target={self.target!r}, project={self.settings.project_id!r}, "
            f"branch={self.settings.branch_id!r})"
        )

    # -- the interface ----------------------------------------------------------------

    def take(self, label: str) -> Artifact:
        now = datetime.now(UTC)
        name = f"{BACKUP_PREFIX}{self.target}-{now:%Y%m%dT%H%M%SZ}"
        what = f"Neon backup of {self.target}"
        deadline = self._deadline()
        with self._api():
            answer = self._call(
                "POST",
                f"{self._project}/branches",
                f"{what}: creating branch {name}",
                deadline,
                body={"branch": {"parent_id": self.settings.branch_id, "name": name}},
            )
            branch = _branch(answer, f"{what}: creating branch {name}")
            branch_id = str(branch["id"])
            self._settle_or_discard(answer, branch_id, what, deadline)
        return Artifact(
            branch_id,
            self.target,
            self.name,
            self._location(branch_id),
            _created_at(branch) or now,
        )

    def list(self) -> list[Artifact]:
        pattern = re.compile(
            rf"^{re.escape(BACKUP_PREFIX + self.target)}-(\d{{8}}T\d{{6}}Z)(?:-[0-9a-z]+)?$"
        )
        found: list[tuple[str, Artifact]] = []
        with self._api():
            for branch in self._branches(f"{BACKUP_PREFIX}{self.target}-"):
                name = str(branch.get("name", ""))
                match = pattern.match(name)
                if not match or branch.get("parent_id") != self.settings.branch_id:
                    continue
                stamp = datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
                branch_id = str(branch["id"])
                created = _created_at(branch) or stamp
                found.append(
                    (
                        name,
                        Artifact(
                            branch_id, self.target, self.name, self._location(branch_id), created
                        ),
                    )
                )
        # Neon's created_at has whole seconds: the name breaks ties (newest_first is stable).
        found.sort(key=lambda pair: pair[0], reverse=True)
        return newest_first([artifact for _, artifact in found])

    def check(self, artifact: Artifact) -> str | None:
        where = artifact.location.removeprefix("neon:").split("/", 1)[0]
        if artifact.location.startswith("neon:") and where != self.settings.project_id:
            return (
                f"backup {artifact.id} is in Neon project {where}, "
                f"the policy names {self.settings.project_id}"
            )
        try:
            with self._api():
                answer = self._call(
                    "GET",
                    f"{self._project}/branches/{artifact.id}",
                    f"Neon check of backup {artifact.id}",
                    self._deadline(),
                    missing_ok=True,
                )
        except BackupError as exc:
            return str(exc)
        if answer is None:
            return (
                f"Neon branch {artifact.id} no longer exists in project {self.settings.project_id}"
            )
        return None

    @contextmanager
    def copy(self, artifact: Artifact) -> Iterator[DatabaseUrl]:
        what = f"Neon copy of backup {artifact.id}"
        database = self.settings.database or self.url.database_name
        role = self.settings.role or self.url.username
        if not database or not role:
            raise BackupError(
                f"{what}: set neon.database and neon.role (the target URL names "
                f"{'no user' if not role else 'no database'})"
            )
        now = datetime.now(UTC)
        name = f"{SCRATCH_PREFIX}{self.target}-{now:%Y%m%dT%H%M%SZ}-{random.token_hex(3)}"
        deadline = self._deadline()
        with self._api():
            answer = self._call(
                "POST",
                f"{self._project}/branches",
                f"{what}: creating branch {name}",
                deadline,
                body={
                    "branch": {"parent_id": artifact.id, "name": name},
                    "endpoints": [{"type": "read_write"}],
                },
            )
            scratch = str(_branch(answer, f"{what}: creating branch {name}")["id"])
            self._settle_or_discard(answer, scratch, what, deadline)
            try:
                url = self._connection_url(scratch, database, role, what, deadline)
            except BackupError as exc:
                raise BackupError(
                    _with_leftover(str(exc), scratch, self._discard(scratch))
                ) from None
            try:
                yield url
            except BaseException:
                self._discard(scratch)
                raise
            self._drop(scratch, f"{what}: deleting branch {name}", self._deadline())

    def restore(self, artifact: Artifact, to: DatabaseUrl) -> None:
        if to.dialect != "postgresql":
            raise BackupError("a Neon backup restores only into a PostgreSQL database")
        with self.copy(artifact) as source:
            _pipe(source, to, f"restore of Neon backup {artifact.id}")

    def delete(self, artifact: Artifact) -> None:
        if artifact.id == self.settings.branch_id:
            raise BackupError(
                f"refusing to delete Neon branch {artifact.id}: it is the branch of "
                f"{self.target} itself, not a backup"
            )
        with self._api():
            self._drop(artifact.id, f"Neon delete of backup {artifact.id}", self._deadline())

    # -- Neon operations ----------------------------------------------------------------

    def _location(self, branch_id: str) -> str:
        return f"neon:{self.settings.project_id}/{branch_id}"

    def _deadline(self) -> float:
        return time.monotonic() + self.timeout

    def _branches(self, search: str) -> Iterator[_JSON]:
        params: dict[str, str | int] = {"search": search, "limit": self.page_size}
        seen: set[str] = set()
        while True:
            answer = self._call(
                "GET",
                f"{self._project}/branches",
                f"Neon list of {self.target}'s backups",
                self._deadline(),
                params=params,
            )
            page = [b for b in (answer or {}).get("branches") or [] if isinstance(b, dict)]
            yield from page
            following = ((answer or {}).get("pagination") or {}).get("next")
            if not page or not following or following in seen:
                return
            seen.add(following)
            params = {**params, "cursor": following}

    def _connection_url(
        self, branch_id: str, database: str, role: str, what: str, deadline: float
    ) -> DatabaseUrl:
        answer = self._call(
            "GET",
            f"{self._project}/connection_uri",
            f"{what}: connection string of branch {branch_id}",
            deadline,
            params={"branch_id": branch_id, "database_name": database, "role_name": role},
        )
        uri = (answer or {}).get("uri")
        if not isinstance(uri, str):
            raise BackupError(f"{what}: Neon sent no connection string for branch {branch_id}")
        try:
            return parse_database_url(uri)
        except ValueError as exc:
            raise BackupError(f"{what}: Neon's connection string is unusable: {exc}") from None

    def _settle_or_discard(
        self, answer: _JSON | None, branch_id: str, what: str, deadline: float
    ) -> None:
        """Wait for a new branch's operations; delete the branch when one of them failed."""
        try:
            self._settle(answer, what, deadline)
        except _TimedOut as exc:
            raise BackupError(
                f"{exc}; branch {branch_id} is left in place: delete it once Neon is done"
            ) from None
        except BackupError as exc:
            raise BackupError(
                _with_leftover(str(exc), branch_id, self._discard(branch_id))
            ) from None

    def _drop(self, branch_id: str, what: str, deadline: float) -> None:
        answer = self._call(
            "DELETE", f"{self._project}/branches/{branch_id}", what, deadline, missing_ok=True
        )
        self._settle(answer, what, deadline)

    def _discard(self, branch_id: str) -> str | None:
        """Delete a branch a failed step left; the reason when that failed too."""
        try:
            self._drop(branch_id, f"Neon cleanup of branch {branch_id}", self._deadline())
        except BackupError as exc:
            log.warning("%s", exc)
            return str(exc)
        return None

    def _settle(self, answer: _JSON | None, what: str, deadline: float) -> None:
        """Poll every operation in ``answer`` until it has finished."""
        pending: dict[str, _JSON] = {}
        for operation in (answer or {}).get("operations") or []:
            if isinstance(operation, dict) and "id" in operation:
                _judge(operation, what)
                if operation.get("status") not in _DONE:
                    pending[str(operation["id"])] = operation
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                operation = next(iter(pending.values()))
                raise _TimedOut(
                    f"{what}: Neon operation {_describe(operation)} is still "
                    f"{operation.get('status', 'running')} after {self.timeout:g}s"
                )
            self._sleep(min(self.poll_interval, remaining))
            for operation_id in list(pending):
                polled = self._call(
                    "GET",
                    f"{self._project}/operations/{operation_id}",
                    f"{what}: operation {operation_id}",
                    deadline,
                )
                operation = (polled or {}).get("operation")
                if not isinstance(operation, dict):
                    raise BackupError(f"{what}: Neon sent no state for operation {operation_id}")
                _judge(operation, what)
                if operation.get("status") in _DONE:
                    del pending[operation_id]
                else:
                    pending[operation_id] = operation

    # -- HTTP ---------------------------------------------------------------------------

    def _sleep(self, seconds: float) -> None:
        """Every wait of the driver: between polls, before retries."""
        time.sleep(seconds)

    def _backoff(self, retries: int) -> float:
        return float(min(self.poll_interval * 2 ** min(retries, 16), _MAX_BACKOFF))

    @contextmanager
    def _api(self) -> Iterator[httpx.Client]:
        """The HTTP client: the one given, else one kept open for the outermost call."""
        if self._client is not None:
            yield self._client
            return
        if self._own is not None:
            yield self._own
            return
        with httpx.Client(timeout=_HTTP_TIMEOUT) as client:
            self._own = client
            try:
                yield client
            finally:
                self._own = None

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.settings.api_key.reveal()}",
            "Accept": "application/json",
        }

    def _call(
        self,
        method: str,
        path: str,
        what: str,
        deadline: float,
        *,
        body: _JSON | None = None,
        params: dict[str, str | int] | None = None,
        missing_ok: bool = False,
    ) -> _JSON | None:
        """The JSON answer to one request, retried as Neon asks; None for a 404 when
        ``missing_ok``. Raises ``BackupError`` naming ``what`` and the HTTP status."""
        client = self._client or self._own
        assert client is not None, "requests are made inside _api()"
        retries = 0
        failures = 0
        while True:
            try:
                response = client.request(
                    method, self._base + path, json=body, params=params, headers=self._headers()
                )
            except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
                raise BackupError(
                    f"{what}: bad Neon API URL {_host(self._base)}: {_one_line(str(exc))}"
                ) from None
            except httpx.TransportError as exc:
                failures += 1
                # A POST that may have reached Neon is not sent twice (it would make a
                # second branch); one that never left is.
                unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                delay = self._backoff(retries)
                if (
                    (method == "POST" and not unsent)
                    or failures >= _ATTEMPTS
                    or time.monotonic() + delay > deadline
                ):
                    reason = _one_line(str(exc) or type(exc).__name__)
                    raise BackupError(
                        f"{what}: cannot reach the Neon API at {_host(self._base)}: {reason}"
                    ) from None
                self._sleep(delay)
                retries += 1
                continue
            status = response.status_code
            if status < 300:
                return _answer(response, what)
            if status == 404 and missing_ok:
                return None
            if status in _RETRY_FEW:
                failures += 1
                if failures >= _ATTEMPTS:
                    raise BackupError(f"{_failure(what, response)} (tried {failures} times)")
            elif status not in _WAIT_OUT and status != 429:
                raise BackupError(_failure(what, response))
            asked = retry_after(response)
            wait = self._backoff(retries) if asked is None else asked
            if time.monotonic() + wait > deadline:
                raise BackupError(
                    f"{_failure(what, response)} (retries stopped at the {self.timeout:g}s timeout)"
                )
            log.debug("%s: HTTP %s, retrying in %.2fs", what, status, wait)
            self._sleep(wait)
            retries += 1


# -- answers ------------------------------------------------------------------------------


def _answer(response: httpx.Response, what: str) -> _JSON:
    if response.status_code == 204 or not response.content:
        return {}
    try:
        data = response.json()
    except ValueError:
        raise BackupError(f"{what}: HTTP {response.status_code}: the answer is not JSON") from None
    if not isinstance(data, dict):
        raise BackupError(f"{what}: HTTP {response.status_code}: unexpected answer")
    return data


def _branch(answer: _JSON | None, what: str) -> _JSON:
    branch = (answer or {}).get("branch")
    if not isinstance(branch, dict) or not branch.get("id"):
        raise BackupError(f"{what}: Neon's answer names no branch")
    return branch


def _judge(operation: _JSON, what: str) -> None:
    status = operation.get("status")
    if status in _FAILED:
        reason = operation.get("error")
        detail = f": {_one_line(str(reason))}" if reason else ""
        raise BackupError(
            f"{what}: Neon operation {_describe(operation)} ended in {status}{detail}"
        )


def _describe(operation: _JSON) -> str:
    action = operation.get("action")
    return f"{action} ({operation.get('id')})" if action else str(operation.get("id"))


def _created_at(branch: _JSON) -> datetime | None:
    text = branch.get("created_at")
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _failure(what: str, response: httpx.Response) -> str:
    detail = ""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("message"):
        code = data.get("code")
        detail = f": {data['message']}" + (f" ({code})" if code else "")
    status = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
    return _one_line(f"{what}: {status}{detail}")


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(redact(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _host(api_url: str) -> str:
    try:
        return httpx.URL(api_url).host or api_url
    except httpx.InvalidURL:
        return "(invalid URL)"


def _with_leftover(message: str, branch_id: str, problem: str | None) -> str:
    if problem is None:
        return message
    return f"{message}; branch {branch_id} could not be deleted: {problem}"


# -- pg_dump | pg_restore -------------------------------------------------------------------


def _pipe(source: DatabaseUrl, to: DatabaseUrl, what: str) -> None:
    """``pg_dump -Fc`` of ``source`` straight into ``replace_database`` on ``to``: ``to``
    ends up holding exactly ``source``, or is left as it was."""
    reader = PgDumpDriver("neon", source, Path())
    writer = PgDumpDriver("neon", to, Path())
    try:
        source_major = reader._server_major()
        target_major = writer._server_major()
    except ReconcilerError as exc:
        raise BackupError(f"{what}: {exc}") from None
    pg_dump = reader.tool("pg_dump", source_major)
    newest = max(source_major, target_major)
    pg_restore, psql = writer.tool("pg_restore", newest), writer.tool("psql", newest)
    with tempfile.TemporaryFile() as dump_log:
        try:
            dump = subprocess.Popen(
                [
                    pg_dump,
                    "-Fc",
                    "--no-password",
                    "--dbname",
                    source.libpq_conninfo(password=False),
                ],
                stdout=subprocess.PIPE,
                stderr=dump_log,
                env=client_env(source),
            )
        except OSError as exc:
            raise BackupError(f"{what}: cannot run {pg_dump}: {exc}") from None
        assert dump.stdout is not None
        try:
            replace_database(to, what=what, pg_restore=pg_restore, psql=psql, stdin=dump.stdout)
        except BackupError as exc:
            failure: BackupError | None = exc
        else:
            failure = None
        finally:
            dump.stdout.close()  # pg_dump sees a broken pipe if pg_restore stopped early
        dumped = dump.wait()
        if dumped != 0:
            # A dump cut short is what pg_restore choked on: pg_dump's error is the cause.
            raise BackupError(
                f"{what} failed, nothing was changed: pg_dump: {_complaint(dump_log, dumped)}"
            )
        if failure is not None:
            raise failure


def _complaint(stream: IO[bytes], status: int) -> str:
    """What a client tool's stderr says went wrong."""
    stream.seek(0)
    return tool_error(stream.read().decode(errors="replace"), status)
