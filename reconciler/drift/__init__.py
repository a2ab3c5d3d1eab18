"""Drift: what changed in a live schema outside its migrations (a ``prisma db push``, a
hand-run ``ALTER``), found by comparing it with the schema its applied migrations build.

``check_drift`` reads the live schema and its history, replays the applied migrations on a
scratch database (``replay``), reads both the same way (``catalog``) and lists the
differences (``compare``). The ``drift`` command is a thin face over it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reconciler.errors import ReconcilerError

if TYPE_CHECKING:
    from reconciler.drift.catalog import Schema
    from reconciler.drift.compare import Difference
    from reconciler.policy.model import Policy, Target


class ReplayFailed(ReconcilerError):
    """The applied migrations could not be replayed on an empty database. Here, not in
    ``replay``: a caller that only catches it need not import the replay's machinery."""


@dataclass(frozen=True)
class DriftReport:
    target: str
    differences: list[Difference]
    replayed: int
    """How many applied migrations were replayed to build the expected schema."""
    notes: list[str] = field(default_factory=list)
    live: Schema | None = field(default=None, repr=False, compare=False)
    """Both readings, for ``drift --sql`` (``sql.sync_sql``)."""
    expected: Schema | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, object]:
        return {
            "target": self.target,
            "drift": [d.to_json() for d in self.differences],
            "replayed": self.replayed,
            "notes": self.notes,
        }


def ledger_tables(policy: Policy, target: Target) -> frozenset[str]:
    """The ledger's own tables, when the ledger lives in the target's database: not the
    application's schema, so never drift. (An application table that happens to share a
    name with one is still compared when the ledger is elsewhere.)"""
    from reconciler.db.url import same_database

    if not same_database(policy.ledger, target.database):
        return frozenset()
    from reconciler.ledger.models import Base

    return frozenset(table.name for table in Base.metadata.tables.values())


def check_drift(target: Target, ignore_tables: frozenset[str] = frozenset()) -> DriftReport:
    """Compare ``target``'s live schema with what its applied migrations produce."""
    from reconciler.db.connection import connect
    from reconciler.drift.catalog import read_schema
    from reconciler.drift.compare import compare
    from reconciler.drift.replay import applied_migrations, replay_schema
    from reconciler.source import open_layout

    layout = open_layout(target.migrations)
    db = connect(target.database, application_name="reconciler-drift", create=False)
    try:
        history = layout.read_history(db)
        live = read_schema(db, ignore_tables)
    finally:
        db.close()
    migrations, notes = applied_migrations(layout, history)
    expected = replay_schema(target, layout, migrations, ignore_tables)
    return DriftReport(target.name, compare(live, expected), len(migrations), notes, live, expected)
