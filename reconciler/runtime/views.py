"""What ``/status`` shows of each target, kept current after every run, and the metrics
derived from the same records (set in one place so the two never disagree)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reconciler.plan.model import Plan
from reconciler.runtime.conditions import STALLING, SUCCESS
from reconciler.runtime.target import TargetRuntime

if TYPE_CHECKING:
    from reconciler.act.identity import IdentityOutcome
    from reconciler.act.rehearse import Rehearsal
    from reconciler.runtime.daemon import Daemon

ORDER = ("schema", "identity", "backup", "drift")


def schema(daemon: Daemon, runtime: TargetRuntime, plan: Plan | None, applied: int) -> None:
    name = runtime.spec.name
    metrics = daemon.metrics
    if applied:
        metrics.applied.labels(name).inc(applied)
    if plan is None:
        return
    pending = list(plan.steps[applied:])
    live = plan.steps[applied - 1].migration.id if applied else plan.live_revision
    runtime.schema = {
        "live_revision": live,
        "desired_revision": plan.desired_revision,
        "pending": [
            {
                "migration": s.migration.id,
                "decision": s.verdict.decision,
                "risk": s.risk,
                "findings": [
                    {
                        "rule": f.rule,
                        "severity": f.severity,
                        "location": f.location,
                        "message": f.message,
                    }
                    for f in s.findings
                ],
            }
            for s in pending
        ],
        "drift": [d.message for d in plan.drift],
        "blocker": plan.blocker.message if plan.blocker else None,
        "window_opens": plan.window_opens.isoformat() if plan.window_opens else None,
    }
    metrics.pending.labels(name).set(len(pending))
    metrics.blocked.labels(name).set(sum(1 for s in pending if s.blocked))
    metrics.set_revision(name, runtime.schema["live_revision"] or "", plan.desired_revision or "")
    backup(daemon, runtime)


def rehearsal(daemon: Daemon, runtime: TargetRuntime, result: Rehearsal | None) -> None:
    if result is None:
        return
    name = runtime.spec.name
    runtime.schema["rehearsal"] = {
        "backup": result.backup_id,
        "steps": [
            {
                "migration": r.step.migration.id,
                "seconds": r.seconds,
                "losses": [loss.describe() for loss in r.losses],
                "error": r.error,
            }
            for r in result.steps
        ],
    }
    daemon.metrics.rehearsal_seconds.labels(name).set(sum(r.seconds for r in result.steps))
    daemon.metrics.rehearsal_lost.labels(name).set(
        sum(loss.amount for r in result.steps for loss in r.losses)
    )


def identity(daemon: Daemon, runtime: TargetRuntime, outcome: IdentityOutcome) -> None:
    name = runtime.spec.name
    diff = outcome.diff
    if diff is not None:
        runtime.identity = {
            "listed": diff.listed,
            "missing": diff.missing,
            "not_taken": diff.not_taken,
            "changed": diff.changed,
            "orphans": diff.orphans,
            "dry_run": outcome.dry_run,
        }
        left = diff.missing, diff.changed, diff.orphans  # nothing applied: all of it
        applied, spec = outcome.applied, runtime.spec.identity
        if applied is not None and not outcome.dry_run and spec is not None:
            # What the sync left by policy (report) or could not do (refused by the table,
            # still referenced) is drift all the same: the alert must see it.
            left = (
                # ``rejected`` holds the users never taken too; they have their own kind.
                diff.missing
                if spec.missing == "report"
                else max(len(applied.rejected) - diff.not_taken, 0),
                0,
                diff.orphans if spec.orphans == "report" else len(applied.conflicts),
            )
        for kind, value in zip(("missing", "changed", "orphans"), left, strict=True):
            daemon.metrics.drift.labels(name, kind).set(value)
        # Users the table can never take (a column it requires is empty at the provider).
        daemon.metrics.drift.labels(name, "not_taken").set(diff.not_taken)
    applied = outcome.applied
    if applied is not None and not outcome.dry_run:
        for action, count in (
            ("created", applied.created),
            ("updated", applied.updated),
            ("soft_deleted", applied.soft_deleted),
            ("deleted", applied.deleted),
        ):
            if count:
                daemon.metrics.identity_changes.labels(name, action).inc(count)
        runtime.identity["applied"] = {
            "created": applied.created,
            "updated": applied.updated,
            "soft_deleted": applied.soft_deleted,
            "deleted": applied.deleted,
            "conflicts": len(applied.conflicts),
        }


def backup(daemon: Daemon, runtime: TargetRuntime) -> None:
    name = runtime.spec.name
    if runtime.spec.backup is None:
        return
    records = daemon.ledger.backups(name)
    if not records:
        return
    newest = records[0]
    verified = next((b for b in records if b.verified), None)
    runtime.backup = {
        "id": newest.id,
        "driver": newest.driver,
        "created_at": newest.created_at.isoformat(),
        "size_bytes": newest.size_bytes,
        "verified": newest.verified,
        "verification": newest.verification,
    }
    daemon.metrics.backup_verified.labels(name).set(1 if newest.verified else 0)
    if newest.size_bytes is not None:
        daemon.metrics.backup_size.labels(name).set(newest.size_bytes)
    if verified is not None:
        daemon.metrics.backup_time.labels(name).set(verified.created_at.timestamp())


def worst(runtime: TargetRuntime) -> tuple[str, str] | None:
    """The outcome that decides the target's conditions: a stalling one first, then any
    other failure, then the schema's."""
    seen = [(c, runtime.concerns[c]) for c in ORDER if c in runtime.concerns]
    if not seen:
        return None
    for wanted in (STALLING, None):
        for concern, state in seen:
            if (state.reason in wanted) if wanted else (state.reason not in SUCCESS):
                return state.reason, f"{concern}: {state.message}"
    concern, state = seen[0]
    return state.reason, f"{concern}: {state.message}"


def status(daemon: Daemon) -> dict[str, Any]:
    leading = daemon.leading()  # proved now: never a lead whose lock is gone
    targets = []
    for name, runtime in sorted(daemon.targets.items()):
        targets.append(
            {
                "name": name,
                "environment": runtime.spec.environment,
                "leader": leading.get(name, False),
                "suspended": runtime.spec.suspend,
                "warnings": [w] if (w := runtime.spec.without_snapshot) else [],
                "conditions": [
                    {
                        "type": c.type,
                        "status": "True" if c.status else "False",
                        "reason": c.reason,
                        "message": c.message,
                        "since": c.since.isoformat(),
                    }
                    for c in runtime.conditions
                ],
                "concerns": {
                    k: {
                        "reason": v.reason,
                        "message": v.message,
                        "finished_at": v.finished_at.isoformat() if v.finished_at else None,
                        "seconds": v.seconds,
                    }
                    for k, v in runtime.concerns.items()
                },
                "schema": runtime.schema,
                "backup": runtime.backup or None,
                "identity": runtime.identity or None,
                "drift": runtime.drift or None,
            }
        )
    return {
        "source": {
            "commit": daemon.commit,
            "config": str(daemon.config),
            "error": daemon.policy_error,
        },
        "targets": targets,
    }
