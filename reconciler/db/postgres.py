"""PostgreSQL through psycopg 3: the production driver behind ``connect``."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql as pgsql

from reconciler.db.connection import Row, line_of
from reconciler.db.url import DatabaseUrl, Dialect
from reconciler.errors import (
    DatabaseError,
    DatabaseUnavailable,
    LocksUnavailable,
    MigrationFailed,
    Refused,
)
from reconciler.secrets import redact


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
            where = f"line {line_of(script, int(position) - 1)}: " if position else ""
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
