"""Scratch databases: short-lived copies for verification and rehearsal.

Named ``rcl_scratch_<target>_<time>_<random>`` on the target's own server, so a crash
leaves something findable: ``drop_leftovers`` removes a target's scratch databases at the
start of every run.
"""

from __future__ import annotations

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


def _prefix(target: str) -> str:
    return f"{PREFIX}{target.replace('-', '_')[:24]}_"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def scratch_database(server: DatabaseUrl, target: str) -> Iterator[DatabaseUrl]:
    """An empty database on ``server``'s host, dropped on exit whatever happens."""
    name = f"{_prefix(target)}{time.strftime('%Y%m%d%H%M%S')}_{random.token_hex(3)}"
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
        pattern = _prefix(target).replace("_", "\\_") + "%"
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
