"""SQLite through the standard library: the embedded default behind ``connect``."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from reconciler.db.connection import Row, first_line, line_of
from reconciler.db.url import DatabaseUrl, Dialect
from reconciler.errors import DatabaseError, DatabaseUnavailable, MigrationFailed


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
            raise DatabaseUnavailable(f"cannot open {path}: {first_line(exc)}") from None
        self._in_transaction = False

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        try:
            return self.conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise DatabaseError(f"{self.url.sqlite_path}: {first_line(exc)}") from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.query(sql, params)

    def run_script(self, script: str) -> None:
        for line, statement in split_sqlite_script(script):
            try:
                self.conn.execute(statement)
            except sqlite3.Error as exc:
                raise MigrationFailed(f"line {line}: {first_line(exc)}") from None

    @contextmanager
    def transaction(self, lock_timeout: float = 0, statement_timeout: float = 0) -> Iterator[None]:
        if lock_timeout:
            self.conn.execute(f"PRAGMA busy_timeout = {int(lock_timeout * 1000)}")
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise DatabaseError(f"{self.url.sqlite_path}: BEGIN: {first_line(exc)}") from None
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
            raise MigrationFailed(f"at COMMIT: {first_line(exc)}") from None

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
            raise DatabaseError(f"{self.url.sqlite_path}: {first_line(exc)}") from None
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
                yield line_of(script, start + _code_offset(chunk)), chunk
            start = end + 1
        end = script.find(";", end + 1)
    rest = script[start:]
    if _has_code(rest):
        yield line_of(script, start + _code_offset(rest)), rest


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
