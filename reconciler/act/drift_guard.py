"""The drift guard an apply runs before its first migration: a fresh drift check, then a
blocker for drift under ``drift: block``, or for a pending step that collides with it.

Shared by the daemon and ``reconciler apply``: a migration never runs blind on a schema
changed outside the migrations. The built schema is cached by the migrations' checksums
(``drift.replay``), so in a daemon the check costs a read of the live catalog; a one-shot
``apply`` pays one replay. A check that cannot be made holds too (``InvalidSource``): a
migration is not run on a schema that cannot be told.

``plan_with_drift`` gives ``plan`` and ``status`` the same check and the same verdict ahead
of time: the differences, and the guard's refusal as the plan's blocker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from reconciler.drift import DriftReport, ReplayFailed, check_drift, ledger_tables
from reconciler.errors import ReconcilerError
from reconciler.plan.model import Blocker, DriftCheck

if TYPE_CHECKING:
    from reconciler.act.engine import Hold, TargetSession
    from reconciler.plan.model import Plan
    from reconciler.policy import Policy, Target

SAID = 3
"""Differences a message names; the rest are counted."""


def drift_guard(policy: Policy, seen: Callable[[DriftReport], None] | None = None) -> Hold:
    """A ``Hold`` for ``reconcile_schema``; ``seen`` receives each check's report (the
    daemon exports it). ``policy`` names the ledger, whose tables are never drift."""

    def ask(session: TargetSession, plan: Plan) -> Blocker | None:
        spec = session.target
        if spec.schedule.drift is None:
            return None  # drift checks are off for this target
        try:
            report = check_drift(spec, ledger_tables(policy, spec))
        except ReplayFailed as exc:
            return _unknown(exc)
        if seen is not None:
            seen(report)
        return _verdict(report, session, plan)

    return ask


def _unknown(exc: ReplayFailed) -> Blocker:
    return Blocker("InvalidSource", f"nothing applied: cannot check for drift: {exc}")


def _verdict(report: DriftReport, session: TargetSession, plan: Plan) -> Blocker | None:
    """What the drift means for the plan's runnable steps: all held (``drift: block``), or
    held for the pending steps that collide with it (``report``), or nothing."""
    spec = session.target
    report = _without_resumed(report, session, plan)
    if not report.differences:
        return None
    if spec.drift_mode == "block":
        return Blocker(
            "SchemaDrift",
            f"nothing applied: drift: block, and {summary(report)}; capture it "
            f"(`{spec.command('drift')} --sql`) or undo it",
        )
    from reconciler.drift.collide import collisions  # parses the steps: only with drift

    found = collisions(report.differences, plan.runnable, session.layout, session.db.dialect)
    if not found:
        return None
    return Blocker(
        "SchemaDrift",
        "nothing applied: " + "; ".join(c.message for c in found) + "; capture the drift "
        f"(`{spec.command('drift')} --sql`) or undo it first",
    )


def plan_with_drift(
    policy: Policy, target: Target, check: bool = True, *, only_to_run: bool = False
) -> Plan:
    """The target's plan with its schema drift (``Plan.drift_check``), for ``plan`` and
    ``status``; changes nothing, not even a SQLite file is created. When the plan has
    steps to run, the guard's verdict on them becomes the plan's blocker: the refusal an
    apply would meet, said ahead of time.

    The check replays the applied migrations (once per history in a process, see
    ``drift.replay``); it is not made when drift checks are off for the target
    (``schedule.drift: null``), when the database does not exist yet (nothing to compare,
    and nothing must be created to look), or when ``check`` is False (``--no-drift``).
    ``only_to_run`` (``apply``'s preview): only when the plan has steps to run, the case
    the guard checks too; an apply with nothing to do pays no replay."""
    from reconciler.act.engine import _reason_for, open_target

    with open_target(target, create=False) as session:
        plan = session.plan()
        if only_to_run and not plan.runnable:
            return plan
        if not check:
            return replace(plan, drift_check=DriftCheck(skipped="--no-drift"))
        if target.schedule.drift is None:
            skipped = "drift checks are off (schedule.drift: null)"
            return replace(plan, drift_check=DriftCheck(skipped=skipped))
        if target.database.dialect == "sqlite" and not target.database.sqlite_path.exists():
            skipped = "the database does not exist yet"
            return replace(plan, drift_check=DriftCheck(skipped=skipped))
        try:
            report = check_drift(target, ledger_tables(policy, target))
        except ReconcilerError as exc:
            # The plan itself stands; the check that could not be made is said, and what an
            # apply would meet: the guard's hold (a history that cannot be replayed) or the
            # same error (a role without CREATEDB for the scratch database, say).
            held = None
            if plan.runnable:
                held = (
                    _unknown(exc)
                    if isinstance(exc, ReplayFailed)
                    else Blocker(
                        _reason_for(exc), f"nothing applied: cannot check for drift: {exc}"
                    )
                )
            return replace(
                plan, drift_check=DriftCheck(error=str(exc)), blocker=plan.blocker or held
            )
        held = _verdict(report, session, plan) if plan.runnable else None
    found = DriftCheck(
        differences=tuple(d.message for d in report.differences),
        replayed=report.replayed,
        notes=tuple(report.notes),
        command=target.command("drift"),
    )
    return replace(plan, drift_check=found, blocker=plan.blocker or held)


def _without_resumed(report: DriftReport, session: TargetSession, plan: Plan) -> DriftReport:
    """The report less what a migration cut short left behind, when the plan resumes that
    migration: its own parts, which it expects to find, not drift."""
    resumed = {record.id for record in session.layout.read_history(session.db).failed}
    steps = [step for step in plan.runnable if step.migration.id in resumed]
    if not steps:
        return report
    from reconciler.drift.collide import created_by, key

    own = created_by(steps, session.layout, session.db.dialect)
    kept = [d for d in report.differences if not (d.change == "added" and key(d) in own)]
    return replace(report, differences=kept)


def summary(report: DriftReport) -> str:
    """``2 differences from the schema the applied migrations build: users.phone: ...``."""
    count = len(report.differences)
    said = "; ".join(d.message for d in report.differences[:SAID])
    more = f"; and {count - SAID} more" if count > SAID else ""
    return (
        f"{count} difference{'' if count == 1 else 's'} from the schema the applied "
        f"migrations build: {said}{more}"
    )
