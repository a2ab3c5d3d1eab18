"""The daemon's drift concern: check a target's live schema against the schema its applied
migrations build (``schedule.drift``), and hold pending migrations the drift forbids.

Before every apply the schema run checks again (``act.drift_guard``): no migration runs on
a schema changed since the last scheduled check. The built schema is cached by the
migrations' checksums, so that check costs a read of the live catalog, not a replay.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from reconciler.act.drift_guard import drift_guard, summary
from reconciler.drift import DriftReport, ReplayFailed, check_drift, ledger_tables
from reconciler.errors import DatabaseUnavailable

if TYPE_CHECKING:
    from reconciler.act.engine import Hold
    from reconciler.runtime.daemon import Daemon
    from reconciler.runtime.target import TargetRuntime

SHOWN = 20
"""Differences ``/status`` lists; the rest are counted."""


def check(daemon: Daemon, runtime: TargetRuntime, trigger: str) -> tuple[str, str]:
    """One check: the outcome's reason and message, recorded in the ledger (a run of the
    concern ``drift``), where ``run --once`` finds the last one (``recent``). The ledger
    whose tables are left out is the bootstrap file's (a policy fetched from git names
    none)."""
    spec = runtime.spec
    run = daemon.ledger.run(
        spec.name, "drift", trigger, daemon.commit or str(daemon.config), daemon.commit
    )
    reason, message = "ApplyFailed", "interrupted"
    try:
        reason, message = _check(daemon, runtime)
    finally:
        run.finish(reason, message)
    return reason, message


def _check(daemon: Daemon, runtime: TargetRuntime) -> tuple[str, str]:
    spec = runtime.spec
    try:
        report = check_drift(spec, ledger_tables(daemon.bootstrap, spec))
    except ReplayFailed as exc:
        return "InvalidSource", str(exc)
    except DatabaseUnavailable as exc:  # retried, as the schema run would be
        return "DatabaseUnavailable", str(exc)
    record(daemon, runtime, report)
    if not report.differences:
        return "InSync", f"no drift ({report.replayed} migrations replayed)"
    held = "pending migrations are held" if spec.drift_mode == "block" else "reported only"
    return "SchemaDrift", f"{summary(report)}; drift: {spec.drift_mode}, {held}"


def recent(daemon: Daemon, runtime: TargetRuntime) -> tuple[str, str] | None:
    """The last check's outcome, when one was made less than ``schedule.drift`` ago and
    gave an answer (drift or none): ``run --once`` keeps the check to its cadence, as the
    daemon does. Run from cron every few minutes it would otherwise replay the history
    each time (seconds per distinct history, then a catalog read per tenant); the guard
    before any apply checks anyway."""
    every = runtime.spec.schedule.drift
    last = daemon.ledger.last_run(runtime.spec.name, "drift")
    if every is None or last is None or last.finished_at is None:
        return None
    if last.outcome not in ("InSync", "SchemaDrift"):
        return None
    finished = last.finished_at
    if finished.tzinfo is None:
        finished = finished.replace(tzinfo=UTC)
    if datetime.now(UTC) - finished >= timedelta(seconds=every):
        return None
    return last.outcome, f"{last.message or ''} (checked {finished:%Y-%m-%d %H:%M:%S} UTC)"


def hold(daemon: Daemon, runtime: TargetRuntime) -> Hold:
    """The schema run's guard, each check it makes exported as a scheduled one is."""
    return drift_guard(daemon.bootstrap, lambda report: record(daemon, runtime, report))


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
