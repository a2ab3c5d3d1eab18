"""The schema planner: policy and observation → plan. Pure: no I/O beyond what the analysis
reads from the migration files themselves, so the same inputs always give the same plan."""

from __future__ import annotations

from reconciler.db.url import Dialect
from reconciler.observe.schema import SchemaObservation
from reconciler.plan.model import Blocker, Plan, Step
from reconciler.policy.model import Target
from reconciler.safety import analyse


def plan_schema(target: Target, observation: SchemaObservation, dialect: Dialect) -> Plan:
    history = observation.history
    blocker: Blocker | None = None
    if history.failed:
        failed = history.failed[0]
        when = f" (started {failed.started_at:%Y-%m-%d %H:%M} UTC)" if failed.started_at else ""
        blocker = Blocker(
            "FailedMigration",
            f"migration {failed.id} failed{when} and blocks every later one. Fix its "
            f"migration.sql, then mark it with `reconciler resolve --config ... --target "
            f"{target.name} --rolled-back {failed.id}` (or `prisma migrate resolve "
            f"--rolled-back {failed.id}`) and run again",
        )
    elif observation.layout == "alembic" and history.unknown:
        blocker = Blocker(
            "UnknownRevision",
            f"alembic_version records {', '.join(history.unknown)}, which the script "
            f"directory does not have; restore the revision file or stamp the database",
        )
    steps = tuple(
        Step("apply-migration", m, tuple(analyse(m, observation.layout, dialect)))
        for m in observation.pending
    )
    return Plan(
        target=target.name,
        environment=target.environment,
        layout=observation.layout,
        database=target.database.redacted,
        live_revision=observation.live_revision,
        desired_revision=observation.desired_revision,
        steps=steps,
        drift=tuple(observation.drift),
        blocker=blocker,
        notes=tuple(history.notes),
    )
