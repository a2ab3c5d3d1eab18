"""One interface over a live connection to a target: PostgreSQL (psycopg 3) or SQLite.

The engine needs little from a database: run a query, run a migration script whole, open a
transaction with timeouts, hold an advisory lock. Both drivers give exactly that, so the
layers above never branch on the dialect for mechanics, only for SQL they must spell
differently. Connections run in autocommit mode; every write happens inside an explicit
``transaction()``, so what is committed is always what the code says.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import psycopg
from psycopg import sql as pgsql

from reconciler.db.url import DatabaseUrl, Dialect
from reconciler.errors import (
    DatabaseError,
    DatabaseUnavailable,
    LocksUnavailable,
    MigrationFailed,
    Refused,
)
from reconciler.secrets import redact

Row = tuple[Any, ...]


class Queryable(Protocol):
    """Enough of a connection to read from it: what the census and the checks need, so they
    also run on a connection someone else opened (Alembic's ``env.py``)."""

    @property
    def dialect(self) -> Dialect: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Rows of a read; ``%s`` placeholders on PostgreSQL, ``?`` on SQLite."""
        ...


class Database(Queryable, Protocol):
    """A live connection to one database."""

    url: DatabaseUrl
    dialect: Dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def run_script(self, script: str) -> None:
        """Run a whole migration script; raises ``MigrationFailed`` naming the failing line."""
        ...

    def transaction(self, lock_timeout: float = 0, statement_timeout: float = 0) -> Any:
        """A context manager: one transaction, with ``SET LOCAL`` timeouts where supported."""
        ...

    def advisory_lock(self, key: int, wait: float) -> Any:
        """A context manager holding a session-level lock for ``key``, waiting ``wait`` s."""
        ...

    def table_exists(self, name: str) -> bool: ...

    def copy_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Bulk-load ``rows`` into ``table`` (COPY on PostgreSQL, batched inserts on SQLite),
        streaming: memory does not grow with the number of rows. Returns the row count."""
        ...

    def idle(self) -> bool:
        """Open, alive (one round trip to check) and outside any transaction: safe to lend
        to the next run."""
        ...

    def close(self) -> None: ...

    @property
    def param(self) -> str:
        """The placeholder this driver uses for bound parameters."""
        ...


def connect(
    url: DatabaseUrl,
    *,
    application_name: str = "reconciler",
    read_only: bool = False,
    create: bool = True,
) -> Database:
    """Open a connection; raises ``DatabaseUnavailable`` with a one-line, secret-free reason.
    ``read_only`` (SQLite): open an existing file without changing it, not even its journal
    mode (backup files stay single files). ``create=False`` (SQLite): a file that does not
    exist yet is looked at as the empty database it would be, without creating it (a plan
    changes nothing)."""
    if url.dialect == "postgresql":
        return PostgresDatabase(url, application_name)
    return SqliteDatabase(url, read_only=read_only, create=create)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return redact(text[0] if text else type(exc).__name__)


def _line_of(script: str, offset: int) -> int:
    return script.count("\n", 0, max(offset, 0)) + 1


class PostgresDatabase:
    """PostgreSQL through psycopg 3; scripts go to the server whole (simple query protocol),
    so ``DO $$`` blocks, functions and semicolons in strings need no client-side splitting."""

    dialect: Dialect = "postgresql"
    param = "%s"

    def __init__(self, url: DatabaseUrl, application_name: str) -> None:
        self.url = url
        try:
            self.conn = psycopg.connect(
                url.libpq_conninfo(),
                autocommit=True,
                connect_timeout=10,
                application_name=application_name,
            )
        except psycopg.Error as exc:
            raise DatabaseUnavailable(
                f"cannot connect to {url.redacted}: {_pg_reason(exc)}"
            ) from None

    _prelude = ""

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        try:
            with self.conn.cursor() as cur:
                if self._prelude:
                    cur.execute(self._prelude.encode())
                    self._prelude = ""
                cur.execute(sql.encode() if not params else sql, params or None)
                return cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            if self._lost(exc):
                raise DatabaseUnavailable(f"{self.url.redacted}: {_pg_reason(exc)}") from None
            raise DatabaseError(f"{self.url.redacted}: {_pg_reason(exc)}") from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.query(sql, params)

    def run_script(self, script: str) -> None:
        script, self._prelude = self._prelude + script, ""
        try:
            with self.conn.cursor() as cur:
                cur.execute(script.encode())
        except psycopg.Error as exc:
            if self._lost(exc):
                raise DatabaseUnavailable(f"{self.url.redacted}: {_pg_reason(exc)}") from None
            position = getattr(exc.diag, "statement_position", None)
            where = f"line {_line_of(script, int(position) - 1)}: " if position else ""
            raise _failed(exc)(f"{where}{_pg_reason(exc)}") from None

    def _lost(self, exc: psycopg.Error) -> bool:
        """The connection is gone (as opposed to a statement that failed on a live one)."""
        sqlstate = getattr(getattr(exc, "diag", None), "sqlstate", None) or ""
        return self.conn.closed or self.conn.broken or sqlstate.startswith("08")

    @contextmanager
    def transaction(self, lock_timeout: float = 0, statement_timeout: float = 0) -> Iterator[None]:
        """Every statement inside raises this module's errors; what psycopg raises here comes
        from BEGIN, ROLLBACK or COMMIT. A COMMIT refused (a deferred constraint checked only
        then) is ``MigrationFailed``, as the statement that broke it would have been: nothing
        of the transaction is in effect."""
        committing = False
        try:
            with self.conn.transaction():
                # Sent ahead of the next statement: in the same round trip as a migration
                # script (``run_script``), as one of its own before a parameterised ``query``.
                # No newline, so the line numbers of a failing script stay right.
                self._prelude = (
                    f"SET LOCAL lock_timeout = '{int(lock_timeout * 1000)}ms'; "
                    f"SET LOCAL statement_timeout = '{int(statement_timeout * 1000)}ms'; "
                )
                try:
                    yield
                finally:
                    self._prelude = ""
                committing = True
        except psycopg.Error as exc:
            where = "at COMMIT" if committing else "opening or closing a transaction"
            if self._lost(exc):
                unknown = " (whether the COMMIT took effect is unknown)" if committing else ""
                raise DatabaseUnavailable(
                    f"{self.url.redacted}: {where}: {_pg_reason(exc)}{unknown}"
                ) from None
            raise _failed(exc)(f"{where}: {_pg_reason(exc)}") from None

    @contextmanager
    def advisory_lock(self, key: int, wait: float) -> Iterator[None]:
        deadline = time.monotonic() + wait
        while not self.query("SELECT pg_try_advisory_lock(%s)", (key,))[0][0]:
            if time.monotonic() >= deadline:
                raise Refused(
                    f"another migration holds the advisory lock {key} on "
                    f"{self.url.redacted}; waited {wait:.0f}s (is `prisma migrate deploy` "
                    "or another reconciler running?)"
                )
            time.sleep(0.2)
        try:
            yield
        finally:
            if not self.conn.closed:
                self.query("SELECT pg_advisory_unlock(%s)", (key,))

    def table_exists(self, name: str) -> bool:
        return bool(self.query("SELECT to_regclass(%s) IS NOT NULL", (f'"{name}"',))[0][0])

    def copy_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        statement = pgsql.SQL("COPY {} ({}) FROM STDIN").format(
            pgsql.Identifier(table), pgsql.SQL(", ").join(map(pgsql.Identifier, columns))
        )
        count = 0
        try:
            with self.conn.cursor() as cur, cur.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
        except psycopg.Error as exc:
            raise DatabaseError(f"{self.url.redacted}: {_pg_reason(exc)}") from None
        return count

    def idle(self) -> bool:
        if self.conn.closed or self.conn.broken:
            return False
        if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            return False
        try:
            self.conn.execute(b"SELECT 1")
        except psycopg.Error:
            return False
        return True

    def close(self) -> None:
        self.conn.close()


CONTENDED = frozenset({"55P03", "40P01", "40001"})
"""lock_not_available (``lock_timeout``), deadlock_detected, serialization_failure."""


def _failed(exc: psycopg.Error) -> type[MigrationFailed]:
    """``LocksUnavailable`` when the failure was waiting on other sessions, not the SQL."""
    sqlstate = getattr(getattr(exc, "diag", None), "sqlstate", None)
    return LocksUnavailable if sqlstate in CONTENDED else MigrationFailed


def _pg_reason(exc: psycopg.Error) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag else None
    if primary:
        sqlstate = getattr(diag, "sqlstate", None)
        return redact(f"{primary}" + (f" (SQLSTATE {sqlstate})" if sqlstate else ""))
    text = str(exc).strip()
    # libpq connection errors repeat per address tried; the last line is the useful one.
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return redact(lines[-1] if lines else type(exc).__name__)


class SqliteDatabase:
    """SQLite through the standard library; the embedded default.

    Scripts are split into statements with ``sqlite3.complete_statement`` (SQLite's own
    tokenizer, which understands strings, comments and trigger bodies) so that each runs
    inside the caller's transaction: ``executescript`` would commit it first.
    """

    dialect: Dialect = "sqlite"
    param = "?"

    def __init__(self, url: DatabaseUrl, *, read_only: bool = False, create: bool = True) -> None:
        self.url = url
        path = url.sqlite_path
        try:
            if not create and not path.exists():
                self.conn = sqlite3.connect(":memory:", isolation_level=None)
            elif read_only:
                self.conn = sqlite3.connect(
                    f"file:{path}?mode=ro", uri=True, isolation_level=None, timeout=10.0
                )
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                new = not path.exists()
                self.conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
                if new:
                    # A database created here is in WAL mode, so its application reads while
                    # a migration writes; an existing one keeps the mode its application chose.
                    self.conn.execute("PRAGMA journal_mode=WAL")
        except (OSError, sqlite3.Error) as exc:
            raise DatabaseUnavailable(f"cannot open {path}: {_first_line(exc)}") from None
        self._in_transaction = False

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        try:
            return self.conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise DatabaseError(f"{self.url.sqlite_path}: {_first_line(exc)}") from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.query(sql, params)

    def run_script(self, script: str) -> None:
        for line, statement in split_sqlite_script(script):
            try:
                self.conn.execute(statement)
            except sqlite3.Error as exc:
                raise MigrationFailed(f"line {line}: {_first_line(exc)}") from None

    @contextmanager
    def transaction(self, lock_timeout: float = 0, statement_timeout: float = 0) -> Iterator[None]:
        if lock_timeout:
            self.conn.execute(f"PRAGMA busy_timeout = {int(lock_timeout * 1000)}")
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise DatabaseError(f"{self.url.sqlite_path}: BEGIN: {_first_line(exc)}") from None
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            # A refused COMMIT (a deferred foreign key) leaves the transaction open.
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise MigrationFailed(f"at COMMIT: {_first_line(exc)}") from None

    @contextmanager
    def advisory_lock(self, key: int, wait: float) -> Iterator[None]:
        # SQLite serialises writers itself; each migration runs under BEGIN IMMEDIATE.
        yield

    def table_exists(self, name: str) -> bool:
        rows = self.query("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,))
        return bool(rows)

    def copy_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        names = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
        marks = ", ".join("?" for _ in columns)
        statement = f'INSERT INTO "{table}" ({names}) VALUES ({marks})'
        count = 0
        batch: list[Sequence[Any]] = []
        try:
            for row in rows:
                batch.append(row)
                if len(batch) >= 5000:
                    self.conn.executemany(statement, batch)
                    count += len(batch)
                    batch = []
            if batch:
                self.conn.executemany(statement, batch)
                count += len(batch)
        except sqlite3.Error as exc:
            raise DatabaseError(f"{self.url.sqlite_path}: {_first_line(exc)}") from None
        return count

    def idle(self) -> bool:
        try:
            return not self.conn.in_transaction
        except sqlite3.ProgrammingError:  # closed
            return False

    def close(self) -> None:
        self.conn.close()


def split_sqlite_script(script: str) -> Iterator[tuple[int, str]]:
    """Statements of ``script`` with the line each starts on, cut where SQLite's own
    tokenizer (``complete_statement``) says a statement ends: semicolons inside strings,
    comments and trigger bodies do not cut."""
    start = 0
    end = script.find(";")
    while end != -1:
        chunk = script[start : end + 1]
        if sqlite3.complete_statement(chunk):
            if _has_code(chunk):
                yield _line_of(script, start + _code_offset(chunk)), chunk
            start = end + 1
        end = script.find(";", end + 1)
    rest = script[start:]
    if _has_code(rest):
        yield _line_of(script, start + _code_offset(rest)), rest


def _code_lines(text: str) -> Iterator[int]:
    offset = 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped and not stripped.startswith("--") and stripped != ";":
            yield offset + (len(line) - len(line.lstrip()))
        offset += len(line)


def _has_code(text: str) -> bool:
    return next(_code_lines(text), None) is not None


def _code_offset(text: str) -> int:
    return next(_code_lines(text), 0)
