"""Which connections ``env.py`` opens are the target's, told by what the server reports.

``env.py`` is the application's code: it may build its own engine with ``localhost`` where the
policy says ``127.0.0.1``, a unix socket, another driver, or take its URL from the
application's own settings and reach another database altogether. The text of a URL says
none of this reliably; the server does. So each connection ``env.py`` opens is asked, once,
what it is connected to, and compared with what the target's own connection reports:

- PostgreSQL: ``current_database()``, the server's ``port`` setting, the postmaster's start
  time and, where the role may read it (the default), ``system_identifier`` from
  ``pg_control_system()``. No address: ``inet_server_addr()`` is NULL over a unix socket,
  and ``localhost`` may be ``::1`` while the policy's URL is ``127.0.0.1``.
- SQLite: the device and inode of the main database file (``PRAGMA database_list``), so a
  relative path, a symlink or another spelling of the same file is the same database.

While a revision runs (``watch``), a transaction ``env.py`` begins on anything else is
refused before its first statement, with an error naming the database (never its password),
so nothing commits there; every transaction on the target is checked before its COMMIT
(``TransactionCheck``), and afterwards ``confirm`` makes sure the target's own
``alembic_version`` moved, and that what moved it was a transaction that was checked.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from reconciler.errors import MigrationFailed
from reconciler.secrets import redact

if TYPE_CHECKING:
    from reconciler.db.connection import Database, Queryable
    from reconciler.db.url import Dialect
    from reconciler.source.base import TransactionCheck

Identity = tuple[Any, ...]
"""What a server says a connection reaches; equal for every connection to one database."""

_PG_IDENTITY = (
    "SELECT current_database(), current_setting('port'), pg_postmaster_start_time()::text, "
    "CASE WHEN has_function_privilege('pg_control_system()', 'EXECUTE') "
    "THEN (SELECT system_identifier::text FROM pg_control_system()) END"
)
_CACHED = "reconciler.server_identity"
"""Key, in a pooled connection's ``info``, of its identity: read once per connection."""


def pg_identity(db: Queryable) -> Identity:
    (row,) = db.query(_PG_IDENTITY)
    return ("postgresql", *row)


def sqlite_identity(dbapi_connection: Any) -> Identity:
    """The main database file of a ``sqlite3`` connection, as the file system knows it."""
    for _, name, path in dbapi_connection.execute("PRAGMA database_list").fetchall():
        if name == "main":
            if not path:
                return ("sqlite", "memory", id(dbapi_connection))
            found = os.stat(path)
            return ("sqlite", found.st_dev, found.st_ino)
    return ("sqlite", "unknown", id(dbapi_connection))


def same_database(a: Identity, b: Identity) -> bool:
    """Whether two identities name one database. A part one side could not read (a role
    without the right to ``pg_control_system()``) is left out of the comparison."""
    if len(a) != len(b):
        return False
    return all(x == y or x is None or y is None for x, y in zip(a, b, strict=True))


def target_identity(db: Database) -> Identity:
    """What the target's own connection reports."""
    if db.dialect == "postgresql":
        return pg_identity(db)
    (path,) = [str(file) for _, name, file in db.query("PRAGMA database_list") if name == "main"]
    found = os.stat(path)
    return ("sqlite", found.st_dev, found.st_ino)


def identity_of(conn: Connection) -> Identity:
    """What the server says ``conn`` reaches, read on its first transaction and kept."""
    cached = conn.info.get(_CACHED)
    if cached is None:
        raw = conn.connection.dbapi_connection
        if isinstance(raw, sqlite3.Connection):
            # On the driver's connection: through SQLAlchemy, the PRAGMA could start
            # the transaction ahead of a BEGIN that env.py sends itself.
            cached = sqlite_identity(raw)
        elif conn.dialect.name == "postgresql":
            cached = pg_identity(Reads(conn))
        else:
            cached = (conn.dialect.name, conn.engine.url.render_as_string(hide_password=True))
        conn.info[_CACHED] = cached
    return tuple(cached)


@dataclass
class Watch:
    """What happened on the target while one revision ran."""

    target: Identity
    commits: int = 0
    """Transactions committed on the target (each checked first, when there is a check)."""
    refused: str | None = None
    """Why a connection env.py opened was refused: it reaches another database."""
    in_effect: bool = False
    """The check refused a transaction that ran in autocommit mode (Alembic's
    ``autocommit_block``): measured, but already in effect; nothing of it rolled back."""


def autocommit(conn: Connection) -> bool:
    """Whether ``conn`` runs each statement in a transaction of its own: SQLAlchemy's
    ``AUTOCOMMIT`` isolation (``autocommit_block`` sets it), or a driver set to it."""
    if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        return True
    raw = conn.connection.dbapi_connection
    return not isinstance(raw, sqlite3.Connection) and bool(getattr(raw, "autocommit", False))


@contextmanager
def watch(db: Database, check: TransactionCheck | None, seen: Watch) -> Iterator[None]:
    """While it is open, every transaction ``env.py`` (this thread) begins is on the target
    or refused; ``check`` runs in each one on the target: ``after`` as it is about to commit
    (an exception there leaves the COMMIT unsent, and the transaction rolls back as its
    connection closes); ``before`` as it begins on PostgreSQL, whose counters belong to the
    session. On SQLite ``before`` reads the census on our own connection just ahead: a query
    in the ``begin`` event would run ahead of a BEGIN that ``env.py`` may send there itself.
    Other threads (the daemon's other targets, its ledger) are left alone. What happened
    is written into ``seen``."""
    thread = threading.get_ident()

    def on_target(conn: Connection) -> bool:
        if threading.get_ident() != thread:
            return False
        if same_database(identity_of(conn), seen.target):
            return True
        if seen.refused is None:
            seen.refused = _refusal(conn, db, seen.target)
        raise MigrationFailed(seen.refused)

    def on_begin(conn: Connection) -> None:
        if on_target(conn) and check is not None and db.dialect == "postgresql":
            check.before(Reads(conn))

    def on_commit(conn: Connection) -> None:
        if on_target(conn):
            if check is not None:
                try:
                    check.after(Reads(conn))
                except MigrationFailed:
                    seen.in_effect = autocommit(conn)
                    raise
            seen.commits += 1

    if check is not None and db.dialect == "sqlite":
        check.before(db)
    events: list[tuple[str, Callable[[Connection], None]]] = [
        ("begin", on_begin),
        ("commit", on_commit),
    ]
    for name, listener in events:
        event.listen(Engine, name, listener)
    try:
        yield
    finally:
        for name, listener in events:
            event.remove(Engine, name, listener)


def confirm(db: Database, seen: Watch, revision: str, table: str, *, checked: bool) -> None:
    """After ``env.py`` returned: the target's own ``table`` names ``revision``, and, when
    the run is ``checked``, a checked transaction on the target committed; else
    ``MigrationFailed`` saying what is known, never a success."""
    moved = db.table_exists(table) and any(
        row[0] == revision for row in db.query(f"SELECT version_num FROM {table}")
    )
    if not moved:
        raise MigrationFailed(
            f"env.py returned, but the target's {table} does not name revision {revision!r}: "
            "env.py migrated another database, or none; the target is not migrated. Make "
            "env.py connect with the URL it is given (config.get_main_option('sqlalchemy.url'))"
        )
    if checked and seen.commits == 0:
        raise MigrationFailed(
            f"revision {revision!r} is in the target's {table}, but committed outside any "
            "transaction env.py opened in this thread through SQLAlchemy, so it was not "
            "verified: check what it changed before going on"
        )


def _refusal(conn: Connection, db: Database, target: Identity) -> str:
    url = redact(conn.engine.url.render_as_string(hide_password=True))
    reported = identity_of(conn)
    if reported[0] == "postgresql" and target[0] == "postgresql":
        name, wanted = f" (database {reported[1]!r})", f"database {target[1]!r}"
    else:
        name, wanted = "", db.url.redacted
    return (
        f"env.py connected to {url}{name}, not to the {wanted} being migrated: refused "
        "before anything ran there. Make env.py connect with the URL it is given "
        "(config.get_main_option('sqlalchemy.url'))"
    )


class Reads:
    """A SQLAlchemy connection seen as a ``Queryable``."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @property
    def dialect(self) -> Dialect:
        return "sqlite" if self.conn.dialect.name == "sqlite" else "postgresql"

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if params:
            result = self.conn.exec_driver_sql(sql, tuple(params))
        else:
            result = self.conn.exec_driver_sql(sql)
        return [tuple(row) for row in result.fetchall()] if result.returns_rows else []
