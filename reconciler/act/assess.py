"""Assess pending migrations before the gate: parse their SQL, ask the live database the
questions the rules raise (one scan per table), and judge the batch.

Kept apart from the engine so ``plan``, ``apply``, ``lint --config`` and the daemon assess
exactly alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from reconciler.safety.analyse import (
    expansions_in,
    facts_request,
    judge_batch,
    measurable,
    parse_migration,
)
from reconciler.safety.run_rows import relax
from reconciler.safety.unanalysable import unanalysable_finding

if TYPE_CHECKING:
    from reconciler.db.connection import Database
    from reconciler.db.url import Dialect
    from reconciler.observe.facts import Facts
    from reconciler.observe.run_rows import RunRows
    from reconciler.observe.schema import SchemaObservation
    from reconciler.policy.model import Target
    from reconciler.safety.findings import Finding
    from reconciler.safety.rules import Expansion
    from reconciler.source.base import Layout, Migration

DROPS = {"drop-column", "rebuild"}


def assess(
    target: Target,
    layout: Layout,
    db: Database | None,
    observation: SchemaObservation,
    now: datetime,
    applied_times: Mapping[str, datetime] | None = None,
    run: RunRows | None = None,
) -> dict[str, list[Finding]]:
    """Findings for each pending migration; ``db`` None means static (no live facts).
    ``run``: what this apply run's migrations wrote so far; a finding that would block only
    on rows they wrote is ``info`` (``safety.run_rows``)."""
    from reconciler.observe.facts import gather_facts  # live reads: not for static lint

    dialect = db.dialect if db is not None else target.database.dialect
    items = [(m, layout.sql(m, dialect)) for m in observation.pending]
    batch = [parse_migration(m, sql, dialect) for m, sql in items]
    if not batch:
        return {}
    facts: Facts | None = None
    if db is not None:
        batch = measurable(batch)  # printed once, for the request and for the judge
        facts = gather_facts(db, facts_request(batch), statement_timeout=target.timeouts.statement)
    history: list[Expansion] = []
    if any(op.kind in DROPS for item in batch for op in item.sql.ops):
        history = _recent_expansions(layout, observation, target, now, applied_times or {})
    found = judge_batch(
        batch, facts, now=now, grace_seconds=target.safety.contract_grace, history=history
    )
    first, first_sql = items[0]
    empty = False
    if db is not None and first_sql is None and layout.unanalysable(first, dialect) is not None:
        from reconciler.observe.census import holds_rows  # a scan: only when it decides

        empty = not holds_rows(db)
    found = add_unanalysable(found, target, layout, items, dialect, empty_database=empty)
    if run is not None and db is not None:
        live = db
        found = relax(found, lambda table: run.rows_of(live, table), lambda: run.holding(live))
    return found


def add_unanalysable(
    findings: dict[str, list[Finding]],
    target: Target | None,
    layout: Layout,
    items: Sequence[tuple[Migration, str | None]],
    dialect: Dialect,
    *,
    empty_database: bool = False,
) -> dict[str, list[Finding]]:
    """``findings`` plus one for each migration whose SQL could not be rendered offline:
    none passes unseen. ``target`` None (files linted without a policy): judged as the
    default environment, production, without a rehearsal. ``empty_database``: no table
    of the live database holds a row, so the first of ``items``, which runs next, has
    nothing to lose (the later ones are judged again when their turn comes)."""
    for index, (migration, sql) in enumerate(items):
        reason = layout.unanalysable(migration, dialect) if sql is None else None
        if reason is not None:
            finding = unanalysable_finding(
                migration,
                reason,
                production=target is None or target.environment == "production",
                rehearsed=target is not None and target.rehearse,
                empty_database=empty_database and index == 0,
            )
            findings.setdefault(migration.id, []).append(finding)
    return findings


def _recent_expansions(
    layout: Layout,
    observation: SchemaObservation,
    target: Target,
    now: datetime,
    applied_times: Mapping[str, datetime],
) -> list[Expansion]:
    """Replacements filled by migrations applied within the grace period, oldest first."""
    window = now - timedelta(seconds=target.safety.contract_grace)
    by_id: dict[str, Migration] = {m.id: m for m in layout.migrations()}
    found: list[Expansion] = []
    dialect = target.database.dialect
    for applied in observation.history.applied:
        when = applied.finished_at or applied_times.get(applied.id)
        migration = by_id.get(applied.id)
        if when is None or when < window or migration is None:
            continue
        parsed = parse_migration(migration, layout.sql(migration, dialect), dialect)
        found += expansions_in(parsed, when)
    return found


def static_assess(
    items: Sequence[tuple[Migration, str | None]],
    dialect: str,
    now: datetime,
    grace_seconds: float,
) -> dict[str, list[Finding]]:
    """Findings for files linted without a database; each migration judged on its own."""
    batch = [
        parse_migration(m, sql, "postgresql" if dialect == "postgresql" else "sqlite")
        for m, sql in items
    ]
    return judge_batch(batch, None, now=now, grace_seconds=grace_seconds, live_batch=False)
