"""The schema planner: policy, observation and findings → plan. Pure: the same inputs
always give the same plan; the caller gathers findings (``safety``) beforehand."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from reconciler.plan.model import Blocker, Plan, Step
from reconciler.safety.gate import gate_step, window_opens

if TYPE_CHECKING:
    from reconciler.observe.schema import SchemaObservation
    from reconciler.policy.model import Target
    from reconciler.safety.findings import Finding


def plan_schema(
    target: Target,
    observation: SchemaObservation,
    findings: Mapping[str, list[Finding]],
    now: datetime,
    every: Collection[str] = (),
) -> Plan:
    """``every``: the ids of all the target's migrations, the desired ones and those after a
    pinned ``revision``; an approval for one of the latter is given ahead ("pre-approved for
    the next release"), not a typo."""
    history = observation.history
    ahead = set(every) - {m.id for m in observation.desired}
    blocker: Blocker | None = None
    if history.failed:
        failed = history.failed[0]
        when = f" (started {failed.started_at:%Y-%m-%d %H:%M} UTC)" if failed.started_at else ""
        logs = (failed.logs or "").strip()
        why = f": {logs.splitlines()[0][:400]}" if logs else ""
        if "statement timeout" in logs:
            fix = (
                "It ran longer than timeouts.statement: raise that for this target (or make "
                "the migration faster)"
            )
        elif logs.startswith("verify:"):
            fix = (
                "If that loss is intended, add the approval above to safety.approvals; if "
                "not, fix its migration"
            )
        else:
            fix = "Fix its migration.sql"
        blocker = Blocker(
            "FailedMigration",
            f"migration {failed.id} failed{when}{why}; it blocks every later one. {fix}, "
            f"then mark it with `{target.command('resolve')} --rolled-back {failed.id}` "
            f"(or `prisma migrate resolve --rolled-back {failed.id}`) and run again",
        )
    elif observation.layout == "alembic" and history.unknown:
        blocker = Blocker(
            "UnknownRevision",
            f"alembic_version records {', '.join(history.unknown)}, which the script "
            f"directory does not have; restore the revision file or stamp the database",
        )
    steps = tuple(
        Step(
            "apply-migration",
            m,
            tuple(findings.get(m.id, ())),
            gate_step(m, findings.get(m.id, []), target.safety, now),
        )
        for m in observation.pending
    )
    pending = {m.id for m in observation.pending}
    applied = {a.id for a in history.applied}
    known = {m.id for m in observation.desired} | applied
    notes = list(history.notes)
    if target.without_snapshot:
        notes.insert(0, target.without_snapshot)
    for approval in target.safety.approvals:
        if approval.migration in pending:
            continue
        if approval.migration in applied:
            notes.append(
                f"the approval for {approval.migration} is no longer needed: it "
                "is applied (remove it from the policy)"
            )
        elif approval.migration in ahead:
            notes.append(
                f"pre-approved: {approval.migration} comes after the pinned revision "
                f"{target.migrations.revision}; its approval applies once the revision moves on"
            )
        elif approval.migration not in known and blocker is None:
            blocker = Blocker(
                "InvalidPolicy",
                f"safety.approvals names migration {approval.migration!r}, which this "
                f"target's migrations do not have (a typo, or an approval for another "
                f"target?)",
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
        notes=tuple(notes),
        window_opens=window_opens(target.windows, now),
    )
