"""Leadership per target: one replica acts on a target, the others only watch.

A replica leads a target while it holds a PostgreSQL advisory lock on a connection of its
own: on the ledger database when that is PostgreSQL (one place for a whole fleet), else on
the target's database. The lock lives exactly as long as the connection: a replica that
loses it loses the lock with it, and ``holds`` notices before the next action. With neither
database on PostgreSQL (the embedded default) there is one replica, and it leads.
"""

from __future__ import annotations

import contextlib
import threading
import zlib

from reconciler.db.connection import Database, connect
from reconciler.db.url import DatabaseUrl
from reconciler.errors import DatabaseError

NAMESPACE = 0x7265636F  # "reco": keeps our keys apart from Prisma's and the application's


def lock_key(target: str) -> tuple[int, int]:
    """The two int4 keys of ``pg_try_advisory_lock(int, int)`` for ``target``."""
    return NAMESPACE, zlib.crc32(target.encode()) - (1 << 31)


class Leadership:
    def __init__(self, target: str, ledger: DatabaseUrl, database: DatabaseUrl) -> None:
        self.target = target
        self.url = (
            ledger
            if ledger.dialect == "postgresql"
            else (database if database.dialect == "postgresql" else None)
        )
        self._conn: Database | None = None
        self._lock = threading.Lock()

    def acquire(self) -> bool:
        """Try to lead (never waits); True while this replica leads the target."""
        if self.url is None:
            return True
        with self._lock:
            if self._conn is not None and self._alive():
                return True
            self._drop()
            try:
                conn = connect(self.url, application_name=f"reconciler-leader-{self.target}")
                got = bool(
                    conn.query("SELECT pg_try_advisory_lock(%s, %s)", lock_key(self.target))[0][0]
                )
            except DatabaseError:
                return False
            if not got:
                conn.close()
                return False
            self._conn = conn
            return True

    def holds(self) -> bool:
        if self.url is None:
            return True
        with self._lock:
            return self._conn is not None and self._alive()

    def _alive(self) -> bool:
        assert self._conn is not None
        try:
            self._conn.query("SELECT 1")
            return True
        except DatabaseError:
            self._drop()
            return False

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # already gone, and the lock with it
                self._conn.close()
            self._conn = None

    def release(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(DatabaseError):
                    self._conn.query("SELECT pg_advisory_unlock(%s, %s)", lock_key(self.target))
            self._drop()
