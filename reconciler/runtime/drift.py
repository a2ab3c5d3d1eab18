"""The daemon's drift concern: check a target's live schema against the schema its applied
migrations build (``schedule.drift``), and hold pending migrations the drift forbids.

A check before every apply makes sure no migration runs on a schema changed since the last
scheduled check: the built schema is cached by the migrations' checksums, so that check
costs a read of the live catalog, not a replay. ``drift: block`` holds every migration while
there is drift; ``report`` holds only one that creates what drift already made (never run
blind: it would fail half-way, or with ``IF NOT EXISTS`` keep an object nobody reviewed).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from reconciler.drift import DriftReport, check_drift, ledger_tables
from reconciler.drift.collide import collisions
from reconciler.drift.replay import ReplayFailed
from reconciler.plan.model import Blocker

if TYPE_CHECKING:
    from reconciler.act.engine import Hold, TargetSession
    from reconciler.plan.model import Plan
    from reconciler.runtime.daemon import Daemon
    from reconciler.runtime.target import TargetRuntime

SHOWN = 20
"""Differences ``/status`` lists; the rest are counted."""
SAID = 3
"""Differences a condition message names."""


def check(daemon: Daemon, runtime: TargetRuntime) -> tuple[str, str]:
    """One scheduled check: the outcome's reason and message."""
    spec = runtime.spec
    try:
        report = check_drift(spec, ledger_tables(daemon.bootstrap, spec))
    except ReplayFailed as exc:
        return "InvalidSource", str(exc)
    record(daemon, runtime, report)
    if not report.differences:
        return "InSync", f"no drift ({report.replayed} migrations replayed)"
    held = "pending migrations are held" if spec.drift_mode == "block" else "reported only"
    return "SchemaDrift", f"{summary(report)}; drift: {spec.drift_mode}, {held}"


def hold(daemon: Daemon, runtime: TargetRuntime) -> Hold:
    """What the schema run asks before it applies anything: a fresh check, then a blocker
    for drift under ``block``, or for a step that collides with it. A check that cannot be
    made holds too: a migration is not run on a schema that cannot be told."""

    def ask(session: TargetSession, plan: Plan) -> Blocker | None:
        spec = runtime.spec
        try:
            report = check_drift(spec, ledger_tables(daemon.bootstrap, spec))
        except ReplayFailed as exc:
            return Blocker("InvalidSource", f"nothing applied: cannot check for drift: {exc}")
        record(daemon, runtime, report)
        if not report.differences:
            return None
        if spec.drift_mode == "block":
            return Blocker(
                "SchemaDrift",
                f"nothing applied: drift: block, and {summary(report)}; capture it "
                f"(`{spec.command('drift')} --sql`) or undo it",
            )
        found = collisions(report.differences, plan.runnable, session.layout, session.db.dialect)
        if not found:
            return None
        return Blocker(
            "SchemaDrift",
            "nothing applied: " + "; ".join(c.message for c in found) + "; capture the drift "
            f"(`{spec.command('drift')} --sql`) or undo it first",
        )

    return ask


def summary(report: DriftReport) -> str:
    """``2 differences from the schema the applied migrations build: users.phone: ...``."""
    count = len(report.differences)
    said = "; ".join(d.message for d in report.differences[:SAID])
    more = f"; and {count - SAID} more" if count > SAID else ""
    return (
        f"{count} difference{'' if count == 1 else 's'} from the schema the applied "
        f"migrations build: {said}{more}"
    )


def record(daemon: Daemon, runtime: TargetRuntime, report: DriftReport) -> None:
    """The check's result in ``/status`` and the gauge, set together."""
    runtime.drift = {
        "mode": runtime.spec.drift_mode,
        "checked_at": datetime.now(UTC).isoformat(),
        "count": len(report.differences),
        "differences": [d.message for d in report.differences[:SHOWN]],
        "more": max(len(report.differences) - SHOWN, 0),
        "replayed": report.replayed,
        "notes": report.notes,
    }
    daemon.metrics.schema_drift.labels(runtime.spec.name).set(len(report.differences))
