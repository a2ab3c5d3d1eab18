"""``resolve``: a person's word on a migration, as ``prisma migrate resolve`` takes it.

After a failed migration was fixed (reconciler rolled its transaction back, so nothing of it
is in effect), ``--rolled-back`` marks the failed row so the next run applies the fixed file.
``--applied`` records that a person applied it by hand.

``--applied`` also records a migration the history does not name yet, without running it:
the ``sync_state`` migration that ``drift --sql`` wrote from a drifted database, which that
database already has, or a baseline. It is recorded only once measured to be in effect: the
schema the applied migrations and it build, replayed on a scratch database, may differ from
the live one only where the applied migrations alone already did (drift it does not
capture). A migration the live schema does not have is refused, never recorded blind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from reconciler.db.connection import connect
from reconciler.errors import Refused
from reconciler.source import open_layout
from reconciler.source.prisma import PrismaLayout

if TYPE_CHECKING:
    from reconciler.db.connection import Database
    from reconciler.policy.model import Policy, Target
    from reconciler.source.base import LiveHistory, Migration

SAID = 3
"""Differences a refusal names; the rest are counted."""


def resolve_failed(target: Target, migration: str, how: Literal["rolled-back", "applied"]) -> None:
    layout = _prisma(target)
    db = connect(target.database)
    try:
        if not layout.resolve(db, migration, how):
            raise Refused(f"{target.name}: no failed migration named {migration!r} to resolve")
    finally:
        db.close()


def resolve_applied(policy: Policy, target: Target, name: str) -> str:
    """``--applied NAME``: a failed migration completed by hand is marked applied; one the
    history does not name yet is recorded as applied once measured to be in effect. What
    was done, as the command says it."""
    layout = _prisma(target)
    url = target.database
    if url.dialect == "sqlite" and not url.sqlite_path.exists():
        raise Refused(f"{target.name}: the database {url.sqlite_path} does not exist")
    db = connect(url)
    try:
        history = layout.read_history(db)
        if any(record.id == name for record in history.failed):
            layout.resolve(db, name, "applied")
            return f"{target.name}: {name} marked applied."
        if any(record.id == name for record in history.applied):
            raise Refused(f"{target.name}: {name} is already recorded as applied")
        migration = next((m for m in layout.migrations() if m.id == name), None)
        if migration is None:
            raise Refused(f"{target.name}: no migration named {name!r} in {layout.path}")
        _check_in_effect(policy, target, layout, db, history, migration)
        if not layout.record_applied(db, migration):
            raise Refused(f"{target.name}: {name} was recorded meanwhile")
    finally:
        db.close()
    return (
        f"{target.name}: {name} recorded as applied, not run: the live schema already has "
        "what it makes."
    )


def _prisma(target: Target) -> PrismaLayout:
    layout = open_layout(target.migrations)
    if not isinstance(layout, PrismaLayout):
        raise Refused(
            f"resolve is for Prisma's history table; target {target.name!r} uses Alembic, "
            "which records no failed migrations (fix the revision and run again), and "
            "records a revision as applied with `alembic stamp`"
        )
    return layout


def _check_in_effect(
    policy: Policy,
    target: Target,
    layout: PrismaLayout,
    db: Database,
    history: LiveHistory,
    migration: Migration,
) -> None:
    """Refuse ``migration`` unless the live schema has what it makes: replayed after the
    applied migrations, it adds no difference from the live schema that they alone did
    not already have."""
    from reconciler.drift import ledger_tables
    from reconciler.drift.catalog import read_schema
    from reconciler.drift.compare import compare
    from reconciler.drift.replay import applied_migrations, replay_schema

    ignore = ledger_tables(policy, target)
    live = read_schema(db, ignore)
    applied, _ = applied_migrations(layout, history)
    before = {d.message for d in compare(live, replay_schema(target, layout, applied, ignore))}
    after = compare(live, replay_schema(target, layout, [*applied, migration], ignore))
    new = [d.message for d in after if d.message not in before]
    if not new:
        return
    said = "; ".join(new[:SAID]) + (f"; and {len(new) - SAID} more" if len(new) > SAID else "")
    raise Refused(
        f"{target.name}: {migration.id} is not in effect on the live database, nothing "
        f"recorded: with it, the migrations build a schema that differs from the live one "
        f"in {len(new)} more way{'' if len(new) == 1 else 's'}: {said}; apply it instead, "
        "or fix it"
    )
