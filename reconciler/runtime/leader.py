"""Leadership per target: one replica acts on a target, the others only watch.

A replica leads a target while it holds a PostgreSQL advisory lock for it. The locks live
on the ledger database when that is PostgreSQL: one connection per replica holds the locks
of every target it leads, so a fleet of 200 targets costs one connection, not 200. Else the
lock lives on the target's own database, on a connection of its own. Either way a lock lives
exactly as long as its connection: a replica that loses the connection loses every lock on
it. So nothing is taken on trust: ``acquire`` proves the connection alive (one round trip)
before each run acts, and ``held`` does before the replica says it leads (``/status``, the
metrics); any error there is the connection lost, and the locks with it. With neither
database on PostgreSQL (the embedded default) there is one replica, and it leads.
"""

from __future__ import annotations

import contextlib
import threading
import zlib

from reconciler.db.connection import Database, connect
from reconciler.db.locks import NAMESPACE
from reconciler.db.url import DatabaseUrl
from reconciler.errors import DatabaseError, DatabaseUnavailable

Key = tuple[int, int]


def lock_key(target: str) -> Key:
    """The two int4 keys of ``pg_try_advisory_lock(int, int)`` for ``target``."""
    return NAMESPACE, zlib.crc32(target.encode()) - (1 << 31)


class LockConnection:
    """One connection that holds advisory locks, for one target or for many.

    Thread-safe: the daemon's runs call it from several threads at once.
    """

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        self._conn: Database | None = None
        self._held: set[Key] = set()
        self._lock = threading.Lock()

    def acquire(self, key: Key) -> bool:
        """Take ``key`` if free (never waits). False when someone else holds it; raises
        ``DatabaseUnavailable`` when there is no connection to hold it on."""
        with self._lock:
            if self._conn is not None and not self._alive():
                self._drop()
            if key in self._held:
                return True
            if self._conn is None:
                self._conn = connect(self.url, application_name="reconciler-leader")
            try:
                got = bool(self._conn.query("SELECT pg_try_advisory_lock(%s, %s)", key)[0][0])
            except DatabaseUnavailable:
                self._drop()
                raise
            if got:
                self._held.add(key)
            return got

    def held(self) -> frozenset[Key]:
        """The keys held now, proved by one round trip on the connection: a connection that
        fails it, whatever the error, is dropped, and every lock on it is lost."""
        with self._lock:
            if self._conn is None or not self._held:
                return frozenset()
            if not self._alive():
                self._drop()
                return frozenset()
            return frozenset(self._held)

    def release(self, key: Key) -> None:
        with self._lock:
            if key not in self._held or self._conn is None:
                return
            self._held.discard(key)
            with contextlib.suppress(DatabaseError):
                self._conn.query("SELECT pg_advisory_unlock(%s, %s)", key)
            if not self._held:  # nothing left to hold: give the connection back
                self._drop()

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _alive(self) -> bool:
        assert self._conn is not None
        try:
            self._conn.query("SELECT 1")
            return True
        except Exception:  # whatever it is, this connection can no longer vouch for a lock
            return False

    def _drop(self) -> None:
        """Close the connection; every lock it held is gone with it."""
        if self._conn is not None:
            with contextlib.suppress(Exception):  # already gone, and the locks with it
                self._conn.close()
        self._conn = None
        self._held.clear()


class Leadership:
    """Whether this replica leads one target."""

    def __init__(self, target: str, locks: LockConnection | None) -> None:
        self.target = target
        self.key = lock_key(target)
        self.locks = locks

    def acquire(self) -> bool:
        """Try to lead (never waits); True while this replica leads the target."""
        return True if self.locks is None else self.locks.acquire(self.key)

    def release(self) -> None:
        if self.locks is not None:
            self.locks.release(self.key)


class Leaders:
    """Where each target's lock lives: the ledger's shared connection, else its own."""

    def __init__(self, ledger: DatabaseUrl) -> None:
        self.shared = LockConnection(ledger) if ledger.dialect == "postgresql" else None

    def leadership(self, target: str, database: DatabaseUrl) -> Leadership:
        if self.shared is not None:
            return Leadership(target, self.shared)
        if database.dialect == "postgresql":
            return Leadership(target, LockConnection(database))
        return Leadership(target, None)

    def close(self) -> None:
        if self.shared is not None:
            self.shared.close()
