"""The schema a target's applied migrations produce, built by running them, one by one with
the layout's own ``apply``, on an empty scratch database: a ``rcl_scratch_`` database on the
target's PostgreSQL server (named as the rehearsal names its copies, so only ours are ever
dropped) or a temporary SQLite file. Alembic revisions run through their ``env.py``.

Replaying is the only faithful way to know that schema: a migration may run any SQL, a DO
block or Python, and only PostgreSQL itself knows what they leave behind.

It is also the cost of a drift check, so the schema built is kept for the life of the
process, by dialect and the checksums of the migrations replayed: a fleet of tenants that
share one history replays it once, and each later check of an unchanged history only reads
its live catalog.
"""

from __future__ import annotations

import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.backup.scratch import scratch_database
from reconciler.db.connection import connect
from reconciler.db.url import DatabaseUrl
from reconciler.drift import ReplayFailed
from reconciler.drift.catalog import Schema, read_schema
from reconciler.errors import MigrationFailed
from reconciler.source.base import LiveHistory, Migration, checksum_matches

if TYPE_CHECKING:
    from reconciler.db.connection import Database
    from reconciler.policy.model import Target, Timeouts
    from reconciler.source.base import Layout


def applied_migrations(layout: Layout, history: LiveHistory) -> tuple[list[Migration], list[str]]:
    """The files of the migrations the history records as applied, in the order they were
    applied, and notes on what makes the replay inexact (edited files, failed migrations);
    ``ReplayFailed`` when a recorded migration has no file to replay."""
    by_id = {m.id: m for m in layout.migrations()}
    missing = [a.id for a in history.applied if a.id not in by_id] + list(history.unknown)
    if missing:
        raise ReplayFailed(
            f"cannot rebuild the schema the migrations produce: {', '.join(sorted(set(missing)))} "
            f"{'is' if len(set(missing)) == 1 else 'are'} recorded as applied but not in "
            f"{layout.path}"
        )
    notes: list[str] = []
    chosen: list[Migration] = []
    for record in history.applied:
        migration = by_id[record.id]
        if record.checksum and not checksum_matches(migration.path.read_bytes(), record.checksum):
            notes.append(f"{migration.id} was edited after it was applied: replayed as it is now")
        chosen.append(migration)
    for record in history.failed:
        notes.append(
            f"{record.id} failed part-way in the database and is not replayed: what it left "
            "behind shows as drift"
        )
    return chosen, notes


CACHE_SIZE = 64
"""Built schemas kept: one per distinct history (and revision of it) the process checks."""
CacheKey = tuple[str, tuple[tuple[str, str], ...], frozenset[str]]


class _Cache:
    """The schemas built so far, newest last, and how many replays built them (what the
    tests and the benchmark count: a fleet sharing a history must replay it once)."""

    def __init__(self) -> None:
        self.schemas: OrderedDict[CacheKey, Schema] = OrderedDict()
        self.replays = 0
        self.lock = threading.Lock()
        self.building: dict[CacheKey, threading.Lock] = {}


_cache = _Cache()


def replay_count() -> int:
    """How many replays this process has run (cache misses)."""
    return _cache.replays


def clear_cache() -> None:
    with _cache.lock:
        _cache.schemas.clear()


def replay_schema(
    target: Target,
    layout: Layout,
    migrations: Sequence[Migration],
    ignore_tables: Iterable[str] = (),
) -> Schema:
    """The schema ``migrations`` build on an empty database of the target's kind: from the
    cache when this process already built it from the same files. Tenants checked at once
    wait for the one replay rather than each running their own."""
    key: CacheKey = (
        target.database.dialect,
        tuple((m.id, m.checksum) for m in migrations),
        frozenset(ignore_tables),
    )
    with _cache.lock:
        building = _cache.building.setdefault(key, threading.Lock())
    with building:
        with _cache.lock:
            found = _cache.schemas.get(key)
            if found is not None:
                _cache.schemas.move_to_end(key)
                return found
        try:
            schema = _build(target, layout, migrations, ignore_tables)
        finally:
            with _cache.lock:
                _cache.replays += 1
                _cache.building.pop(key, None)
        with _cache.lock:
            _cache.schemas[key] = schema
            while len(_cache.schemas) > CACHE_SIZE:
                _cache.schemas.popitem(last=False)
        return schema


def _build(
    target: Target,
    layout: Layout,
    migrations: Sequence[Migration],
    ignore_tables: Iterable[str],
) -> Schema:
    """Run ``migrations`` on an empty database of the target's kind and read its schema."""
    if target.database.dialect == "sqlite":
        with tempfile.TemporaryDirectory(prefix="reconciler-drift-") as folder:
            return _replay(target, layout, migrations, _sqlite_url(Path(folder)), ignore_tables)
    with scratch_database(target.database, target.name) as url:
        return _replay(target, layout, migrations, url, ignore_tables)


def _sqlite_url(folder: Path) -> DatabaseUrl:
    return DatabaseUrl("sqlite", str(folder / "replay.db"))


def _replay(
    target: Target,
    layout: Layout,
    migrations: Sequence[Migration],
    url: DatabaseUrl,
    ignore_tables: Iterable[str],
) -> Schema:
    db = connect(url, application_name="reconciler-drift")
    try:
        if db.dialect == "sqlite":
            # A file thrown away after the reading: no commit of the replay need wait for
            # the disk (a tenth of a second or more per migration on a busy one).
            db.execute("PRAGMA synchronous = OFF")
        apply_in_order(db, layout, migrations, target.timeouts)
        return read_schema(db, ignore_tables)
    finally:
        db.close()


def apply_in_order(
    db: Database, layout: Layout, migrations: Sequence[Migration], timeouts: Timeouts
) -> None:
    """Apply ``migrations`` to ``db`` one by one, with no gate: the schema they build. Under
    the layout's lock, which also creates the tool's history table, as a first apply does.
    Each starts from the session's defaults (PostgreSQL ``RESET ALL``): the history was
    applied over many runs and connections, so a setting one migration left on its session
    (``SET default_transaction_read_only = on``) never reached the next."""
    with layout.lock(db):
        for migration in migrations:
            if db.dialect == "postgresql":
                db.execute("RESET ALL")
            try:
                layout.apply(db, migration, timeouts)
            except MigrationFailed as exc:
                raise ReplayFailed(
                    f"cannot rebuild the schema the migrations produce: {migration.id} "
                    f"fails on an empty database: {exc}"
                ) from None
