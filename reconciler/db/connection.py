"""One interface over a live connection to a target: PostgreSQL (psycopg 3) or SQLite.

The drivers live in ``postgres`` and ``sqlite`` beside this module. The engine needs little
from a database: run a query, run a migration script whole, open a
transaction with timeouts, hold an advisory lock. Both drivers give exactly that, so the
layers above never branch on the dialect for mechanics, only for SQL they must spell
differently. Connections run in autocommit mode; every write happens inside an explicit
``transaction()``, so what is committed is always what the code says.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from reconciler.db.url import DatabaseUrl, Dialect
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
    # Each driver is imported when a URL needs it: psycopg alone takes a few tenths of a
    # second to import, which a SQLite target or a static command never needs.
    if url.dialect == "postgresql":
        from reconciler.db.postgres import PostgresDatabase

        return PostgresDatabase(url, application_name)
    from reconciler.db.sqlite import SqliteDatabase

    return SqliteDatabase(url, read_only=read_only, create=create)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return redact(text[0] if text else type(exc).__name__)


def line_of(script: str, offset: int) -> int:
    return script.count("\n", 0, max(offset, 0)) + 1
