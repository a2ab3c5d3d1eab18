"""The schema a target's applied migrations produce, built by running them, one by one with
the layout's own ``apply``, on an empty scratch database: a ``rcl_scratch_`` database on the
target's PostgreSQL server (named as the rehearsal names its copies, so only ours are ever
dropped) or a temporary SQLite file. Alembic revisions run through their ``env.py``.

Replaying is the only faithful way to know that schema: a migration may run any SQL, a DO
block or Python, and only PostgreSQL itself knows what they leave behind.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.backup.scratch import scratch_database
from reconciler.db.connection import connect
from reconciler.db.url import DatabaseUrl
from reconciler.drift.catalog import Schema, read_schema
from reconciler.errors import MigrationFailed, ReconcilerError
from reconciler.source.base import LiveHistory, Migration, checksum_matches

if TYPE_CHECKING:
    from reconciler.policy.model import Target
    from reconciler.source.base import Layout


class ReplayFailed(ReconcilerError):
    """The applied migrations could not be replayed on an empty database."""


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


def replay_schema(
    target: Target,
    layout: Layout,
    migrations: Sequence[Migration],
    ignore_tables: Iterable[str] = (),
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
        with layout.lock(db):  # also creates the tool's history table, as a first apply
            for migration in migrations:
                try:
                    layout.apply(db, migration, target.timeouts)
                except MigrationFailed as exc:
                    raise ReplayFailed(
                        f"cannot rebuild the schema the migrations produce: {migration.id} "
                        f"fails on an empty database: {exc}"
                    ) from None
        return read_schema(db, ignore_tables)
    finally:
        db.close()
