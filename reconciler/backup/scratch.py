"""Scratch databases: short-lived copies for verification and rehearsal.

Named ``rcl_scratch_<target>_<database>_<time>_<random>`` on the target's own server, so a
crash leaves something findable: ``drop_leftovers`` removes a target's scratch databases at
the start of every run. ``<database>`` is a short digest of the target database's name: a
server is often shared (several applications, staging beside production, other tools), and
another deployment's target may also be called ``shop``; only the scratch databases made
for this very database are ever dropped.
"""

from __future__ import annotations

import hashlib
import secrets as random
import time
from collections.abc import Iterator
from contextlib import contextmanager

from reconciler.backup.base import BackupError
from reconciler.db.connection import Database, connect
from reconciler.db.url import DatabaseUrl
from reconciler.errors import DatabaseError

PREFIX = "rcl_scratch_"


def _maintenance(url: DatabaseUrl) -> Database:
    return connect(url.with_database("postgres"), application_name="reconciler-scratch")


def scratch_prefix(server: DatabaseUrl, target: str) -> str:
    """What every scratch database of ``target`` (on ``server``'s database) is named with.
    At most 39 characters, so the whole name stays within PostgreSQL's 63."""
    digest = hashlib.sha256(server.database_name.encode()).hexdigest()[:8]
    return f"{PREFIX}{target.replace('-', '_')[:16]}_{digest}_"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def scratch_database(server: DatabaseUrl, target: str) -> Iterator[DatabaseUrl]:
    """An empty database on ``server``'s host, dropped on exit whatever happens."""
    name = f"{scratch_prefix(server, target)}{time.strftime('%Y%m%d%H%M%S')}_{random.token_hex(3)}"
    admin = _maintenance(server)
    try:
        try:
            admin.execute(f"CREATE DATABASE {_quote(name)}")
        except DatabaseError as exc:
            raise BackupError(
                f"cannot create the scratch database {name} on {server.with_database('')}: "
                f"{str(exc).split(': ', 1)[-1]} (the role needs CREATEDB)"
            ) from None
        try:
            yield server.with_database(name)
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)")
    finally:
        admin.close()


def drop_leftovers(server: DatabaseUrl, target: str) -> list[str]:
    """Drop scratch databases a crashed run left behind for ``target``; their names."""
    admin = _maintenance(server)
    try:
        pattern = scratch_prefix(server, target).replace("_", "\\_") + "%"
        names = [
            r[0]
            for r in admin.query(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (pattern,)
            )
        ]
        for name in names:
            admin.execute(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)")
        return names
    finally:
        admin.close()
