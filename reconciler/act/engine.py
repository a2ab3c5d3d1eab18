"""The schema pipeline of one target: observe → plan → gate → apply → record.

The CLI, the daemon and the tests call ``plan_target`` and ``reconcile_schema``; nothing else
decides what runs. Each apply:

1. takes the layout's lock (Prisma's advisory lock) and re-observes under it, so a
   concurrent ``prisma migrate deploy`` or another replica cannot make the plan stale;
2. runs the steps before the first blocked one, one migration per transaction, stopping at
   the first failure;
3. records the run and each step in the ledger as it happens, and ends with an outcome
   whose ``reason`` is a condition reason (``InSync``, ``ApplyFailed``, ...).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from reconciler.act.assess import assess
from reconciler.act.recover import settled
from reconciler.db.connection import Database, connect
from reconciler.errors import MigrationFailed, ReconcilerError
from reconciler.observe.schema import observe_schema
from reconciler.plan.model import Blocker, Plan, Step
from reconciler.plan.planner import plan_schema
from reconciler.safety.gate import window_opens
from reconciler.safety.run_rows import KEPT
from reconciler.source import Layout, open_layout
from reconciler.source.base import Migration
from reconciler.source.sql import transaction_mode

if TYPE_CHECKING:
    from reconciler.act.rehearse import Rehearsal
    from reconciler.ledger import DecisionRecord, Ledger, LiveRun
    from reconciler.observe.run_rows import RunRows
    from reconciler.policy.model import Target


@dataclass(frozen=True)
class StepResult:
    step: Step
    outcome: Literal["applied", "failed", "interrupted"]
    seconds: float
    error: str | None = None


@dataclass(frozen=True)
class Outcome:
    """How a reconcile ended; ``reason`` is the condition reason the daemon reports."""

    target: str
    reason: str
    message: str
    plan: Plan | None = None
    results: tuple[StepResult, ...] = ()
    run_id: int | None = None
    rehearsal: Rehearsal | None = None
    """The rehearsal that ran before the live apply, when the policy asks for one."""
    interrupted: bool = False
    """Ctrl-C stopped it while a migration ran (``reason`` says what became of it)."""

    @property
    def in_sync(self) -> bool:
        return self.reason == "InSync"

    @property
    def applied(self) -> int:
        return sum(1 for r in self.results if r.outcome == "applied")


@dataclass
class TargetSession:
    """A target's layout and live connection, opened together and closed together."""

    target: Target
    layout: Layout
    db: Database
    applied_times: dict[str, datetime] = field(default_factory=dict)
    """When reconciler applied each migration (from the ledger): Alembic records no time."""
    observations: int = field(default=0)
    rehearsal: Rehearsal | None = None
    """The last rehearsal of this session's pending steps, when one ran."""
    report: Reporter = field(default=lambda line: None)
    run_rows: RunRows | None = None
    """The rows this apply run's migrations wrote, when it began on a PostgreSQL database
    with none (``observe.run_rows``): findings on them do not block the next plans."""

    def plan(self, now: datetime | None = None) -> Plan:
        """Observe, assess the pending migrations against live data, and plan."""
        self.observations += 1
        now = now or datetime.now(UTC)
        observation = observe_schema(self.layout, self.db, self.target.migrations.revision)
        findings = assess(
            self.target, self.layout, self.db, observation, now, self.applied_times, self.run_rows
        )
        every = [m.id for m in self.layout.migrations()]
        # A script run in parts that failed part-way: resumed, or refused with its fix.
        plan = settled(self, plan_schema(self.target, observation, findings, now, every))
        note = None if self.run_rows is not None else _own_rows_note(plan, self.target, self.db)
        return replace(plan, notes=(*plan.notes, note)) if note else plan


def _own_rows_note(plan: Plan, target: Target, db: Database) -> str | None:
    """Said when the first blocked step may yet run in this apply: it is held only by data
    loss, and the database holds no row, so the rows it would lose may all be the ones the
    steps before it write (``observe.run_rows``), which is measured once they have run.
    Without it the plan says "blocked" and the apply then runs the step."""
    blocked = plan.first_blocked
    if (
        blocked is None
        or not plan.runnable
        or db.dialect != "postgresql"
        or "data-loss" not in target.safety.block
        or blocked.verdict.waiting
        or any(f.severity != "data-loss" or f.rule in KEPT for f in blocked.verdict.blocking)
    ):
        return None
    from reconciler.observe.census import holds_rows  # PostgreSQL plans only

    if holds_rows(db):
        return None
    return (
        f"the database holds no row yet: if {blocked.migration.id} would lose only rows "
        "that the steps before it write, it needs no approval (measured once they have run)"
    )


@contextmanager
def open_target(
    target: Target,
    layout: Layout | None = None,
    db: Database | None = None,
    *,
    create: bool = True,
) -> Iterator[TargetSession]:
    """Read the target's migrations and connect to its database. A connection passed in
    (the daemon keeps one per target between runs) stays open afterwards. ``create=False``:
    a SQLite file that does not exist yet is not created (see ``connect``)."""
    layout = layout or open_layout(target.migrations)
    own = db is None
    live = connect(target.database, create=create) if db is None else db
    try:
        yield TargetSession(target, layout, live)
    finally:
        if own:
            live.close()


def _migrations_wait(count: int) -> str:
    return f"{count} migration waits" if count == 1 else f"{count} migrations wait"


def plan_target(target: Target, db: Database | None = None) -> Plan:
    """Observe and plan one target; changes nothing (not even a SQLite file is created)."""
    with open_target(target, db=db, create=False) as session:
        return session.plan()


StepCallback = Callable[[Step, StepResult | None], None]
"""Called before a step (result ``None``) and after it; the CLI prints progress with it."""
Reporter = Callable[[str], None]
"""Receives one line per notable event (backup taken, rehearsal results)."""
Hold = Callable[[TargetSession, Plan], Blocker | None]
"""Asked before anything runs, once the plan has steps: a reason to hold them all (the
daemon's drift check), or None."""


def reconcile_schema(
    target: Target,
    ledger: Ledger,
    *,
    trigger: str,
    source: str,
    commit: str | None = None,
    on_step: StepCallback | None = None,
    report: Reporter | None = None,
    db: Database | None = None,
    ignore_window: bool = False,
    hold: Hold | None = None,
) -> Outcome:
    """Bring ``target``'s schema to its desired revision, as far as the gate allows.
    ``db``: a live connection to reuse (left open); else one is opened and closed.
    ``ignore_window``: a person applies now, outside the target's maintenance windows.
    ``hold``: asked once there is something to run; a blocker it returns stops the run."""
    run = ledger.run(target.name, "schema", trigger, source, commit)
    outcome = Outcome(target.name, "ApplyFailed", "interrupted")
    try:
        with open_target(target, db=db) as session:
            session.report = report or (lambda line: None)
            outcome = _apply(session, ledger, run, on_step, ignore_window, hold)
            if session.rehearsal is not None:
                outcome = replace(outcome, rehearsal=session.rehearsal)
    except ReconcilerError as exc:
        outcome = Outcome(target.name, _reason_for(exc), str(exc))
    finally:
        run_id = run.finish(outcome.reason, outcome.message)
    return replace(outcome, run_id=run_id)


def _apply(
    session: TargetSession,
    ledger: Ledger,
    run: LiveRun,
    on_step: StepCallback | None,
    ignore_window: bool = False,
    hold: Hold | None = None,
) -> Outcome:
    target, layout, db = session.target, session.layout, session.db
    # A first look without the lock: a plan that cannot run must not even create the
    # history table.
    first_look = session.plan()
    early = _refusal(first_look)
    if early is not None:
        ledger.record_decisions(run.id, first_look.target, decisions(first_look))
        return early
    if first_look.in_sync:  # nothing to do: no lock, no second look
        return Outcome(
            target.name,
            "InSync",
            f"at {first_look.desired_revision or 'an empty history'}",
            first_look,
        )
    held = hold(session, first_look) if hold is not None and first_look.runnable else None
    if held is not None:
        return Outcome(target.name, held.reason, held.message, replace(first_look, blocker=held))
    opens = first_look.window_opens
    if first_look.runnable and opens is not None and not ignore_window:
        count = len(first_look.runnable)
        return Outcome(
            target.name,
            "OutsideWindow",
            f"{_migrations_wait(count)} for the maintenance window, "
            f"which opens {opens:%Y-%m-%d %H:%M} UTC",
            first_look,
        )
    with layout.lock(db):
        plan = session.plan()
        ledger.record_decisions(run.id, plan.target, decisions(plan))
        refusal = _refusal(plan)
        if refusal is not None:
            return refusal
        results: list[StepResult] = []
        recorded = set(decisions(plan))
        if plan.first_blocked is not None and plan.runnable and "data-loss" in target.safety.block:
            # The steps that run first may write the only rows the blocked one would lose:
            # when the database holds none yet, the run keeps count of the rows it writes.
            from reconciler.observe.run_rows import RunRows

            session.run_rows = RunRows.start(db)
        while True:
            stop = _run_steps(session, ledger, run, plan, results, on_step, ignore_window)
            if stop is not None:
                return stop
            if plan.first_blocked is None or not plan.runnable:
                break
            # The steps that ran changed what the data holds (a table filled by a SELECT
            # from an empty one is still empty): measure again before judging the rest.
            plan = session.plan()
            fresh = [d for d in decisions(plan) if d not in recorded]  # what the data changed
            ledger.record_decisions(run.id, plan.target, fresh)
            recorded.update(fresh)
            refusal = _refusal(plan)
            if refusal is not None:
                return replace(refusal, results=tuple(results))
        blocked = plan.first_blocked
        if blocked is not None:
            verdict = blocked.verdict
            first = (verdict.blocking or verdict.waiting)[0]
            verb = "waits" if verdict.decision == "waiting" else "is blocked"
            return Outcome(
                target.name,
                verdict.reason,
                f"{blocked.migration.id} {verb}: {first.location}: {first.rule}: {first.message}",
                plan,
                tuple(results),
            )
        applied = len(results)
        message = (
            f"applied {applied} migration{'s' if applied != 1 else ''}; " if applied else ""
        ) + f"at {plan.desired_revision or 'an empty history'}"
        return Outcome(target.name, "InSync", message, plan, tuple(results))


def _run_steps(
    session: TargetSession,
    ledger: Ledger,
    run: LiveRun,
    plan: Plan,
    results: list[StepResult],
    on_step: StepCallback | None,
    ignore_window: bool,
) -> Outcome | None:
    """Back up (when the policy asks) and run ``plan``'s runnable steps, appending to
    ``results``; an outcome when the run must stop here."""
    from reconciler.act.verify import loss_check

    target, layout, db = session.target, session.layout, session.db
    if plan.runnable and target.backup and "schema-change" in target.backup.before:
        stop = _protect(session, ledger, run.id, plan)
        if stop is not None and results:  # an earlier round of this run applied steps
            message = stop.message.replace("nothing applied", f"applied {len(results)}", 1)
            return replace(stop, message=message, results=tuple(results))
        if stop is not None:
            return stop
    for index, step in enumerate(plan.runnable):
        closed = None if ignore_window else window_opens(target.windows, datetime.now(UTC))
        if closed is not None:  # the window closed while earlier steps ran
            left = len(plan.runnable) - index
            return Outcome(
                target.name,
                "OutsideWindow",
                f"applied {len(results)}; the maintenance window closed, {_migrations_wait(left)} "
                f"for the next, which opens {closed:%Y-%m-%d %H:%M} UTC",
                plan,
                tuple(results),
            )
        if on_step:
            on_step(step, None)
        migration = step.migration
        step_id = ledger.start_step(
            run.id, target.name, step.action, migration.id, migration.checksum
        )
        started = time.perf_counter()
        try:
            check = loss_check(step, target.safety, session.run_rows)
            layout.apply(db, migration, target.timeouts, check)
        except KeyboardInterrupt:
            # Ctrl-C: psycopg cancels the statement, and the transaction rolls back.
            seconds = time.perf_counter() - started
            note = _interrupted(layout, db, migration)
            done = f"; {len(results)} applied before it" if results else ""
            if note is None:  # not one transaction of ours, or it committed after all
                error = (
                    "interrupted (Ctrl-C) part-way: it does not run in one transaction "
                    "of reconciler's, so the statements it completed stay in effect"
                )
                ledger.finish_step(step_id, "failed", seconds, error)
                result = StepResult(step, "failed", seconds, error)
                reason, message = "ApplyFailed", f"{migration.id} was {error}{done}"
            else:
                ledger.finish_step(step_id, "interrupted", seconds, note)
                result = StepResult(step, "interrupted", seconds, note)
                reason = "Interrupted"
                message = (
                    f"{migration.id} was interrupted (Ctrl-C): {note}{done}; the next "
                    "apply runs it again"
                )
            results.append(result)
            if on_step:
                on_step(step, result)
            return Outcome(target.name, reason, message, plan, tuple(results), interrupted=True)
        except MigrationFailed as exc:
            seconds = time.perf_counter() - started
            error = f"{migration.path}: {exc}"
            ledger.finish_step(step_id, "failed", seconds, error)
            result = StepResult(step, "failed", seconds, error)
            results.append(result)
            if on_step:
                on_step(step, result)
            return Outcome(
                target.name,
                _reason_for(exc),
                f"{migration.id} failed: {error}",
                plan,
                tuple(results),
            )
        seconds = time.perf_counter() - started
        # An attempt a crash cut short, resumed: what was done goes to the ledger too.
        resumed = getattr(layout, "resumed", {}).pop(migration.id, None)
        ledger.finish_step(step_id, "applied", seconds, resumed)
        result = StepResult(step, "applied", seconds)
        results.append(result)
        if on_step:
            on_step(step, result)
    return None


def _protect(session: TargetSession, ledger: Ledger, run_id: int, plan: Plan) -> Outcome | None:
    """Back up (verified) and rehearse before the first live change; an outcome when the
    live apply must not go ahead."""
    # Imported here, by the only stage that uses them: ``plan`` backs up nothing.
    from reconciler.act.backups import describe_backup, take_backup
    from reconciler.act.rehearse import describe_rehearsal, rehearse
    from reconciler.backup import BackupError, open_driver
    from reconciler.ledger import RehearsalInfo

    target = session.target
    driver = open_driver(target)
    try:
        drop_leftovers = getattr(driver, "drop_leftovers", None)
        if drop_leftovers is not None:
            drop_leftovers()
        backup = take_backup(target, ledger, reason="schema-change", run_id=run_id, driver=driver)
    except BackupError as exc:
        return Outcome(target.name, "BackupFailed", f"nothing applied: {exc}", plan, run_id=run_id)
    session.report(describe_backup(backup))
    if not target.rehearse:
        return None
    try:
        rehearsal = rehearse(target, session.layout, driver, backup.artifact, plan.runnable)
    except ReconcilerError as exc:
        return Outcome(
            target.name, "RehearsalFailed", f"nothing applied: {exc}", plan, run_id=run_id
        )
    ledger.record_rehearsal(
        run_id,
        target.name,
        rehearsal.backup_id,
        [
            RehearsalInfo(
                r.step.migration.id,
                r.step.migration.checksum,
                r.seconds,
                r.outcome,
                [loss.describe() for loss in r.losses],
                r.error,
            )
            for r in rehearsal.steps
        ],
    )
    session.rehearsal = rehearsal
    for line in describe_rehearsal(rehearsal):
        session.report(line)
    blocker = rehearsal.blocker
    if blocker is not None:
        return Outcome(
            target.name, blocker[0], f"nothing applied: {blocker[1]}", plan, run_id=run_id
        )
    return None


def _interrupted(layout: Layout, db: Database, migration: Migration) -> str | None:
    """What became of a migration interrupted while it ran, when that is known for sure:
    it ran in one transaction of ours (no statement of its own ends or opens one, none
    runs outside one, no Alembic ``autocommit_block``), and the history table does not
    record it, so that transaction rolled back. None otherwise: statements may have taken
    effect, and the failure stays for a person to settle."""
    script = migration.read()
    if layout.name == "prisma":
        whole = db.dialect != "postgresql" or transaction_mode(script) == "ours"
    else:
        whole = "autocommit_block" not in script
    if not whole:
        return None
    try:
        history = layout.read_history(db)
    except ReconcilerError:
        return None
    recorded = {m.id for m in (*history.applied, *history.failed)} | set(history.heads)
    if migration.id in recorded:
        return None
    return "its transaction was rolled back, nothing of it is applied"


def decisions(plan: Plan) -> list[DecisionRecord]:
    """The ledger's record of the gate's decision on each finding of the plan."""
    from reconciler.ledger import DecisionRecord

    records: list[DecisionRecord] = []
    for step in plan.steps:
        verdict = step.verdict
        approvals = {id(f): a for f, a in verdict.approved}
        blocking = {id(f) for f in verdict.blocking}
        waiting = {id(f) for f in verdict.waiting}
        for finding in step.findings:
            approval = approvals.get(id(finding))
            decision = (
                "approved"
                if approval
                else "blocked"
                if id(finding) in blocking
                else "waiting"
                if id(finding) in waiting
                else "noted"
            )
            records.append(
                DecisionRecord(
                    step.migration.id,
                    step.migration.checksum,
                    finding.rule,
                    finding.severity,
                    finding.location,
                    finding.message,
                    decision,
                    approval.reason if approval else None,
                    approval.approved_by if approval else None,
                    approval.expires if approval else None,
                )
            )
    return records


def _refusal(plan: Plan) -> Outcome | None:
    """An outcome when nothing may run at all: a blocker, or SQL that cannot even parse."""
    if plan.blocker:
        return Outcome(plan.target, plan.blocker.reason, plan.blocker.message, plan)
    invalid = [f for s in plan.steps for f in s.findings if f.rule == "syntax-error"]
    if invalid:
        where = "; ".join(f"{f.location}: {f.message}" for f in invalid)
        return Outcome(plan.target, "InvalidMigration", f"nothing applied: {where}", plan)
    return None


def _reason_for(exc: ReconcilerError) -> str:
    from reconciler import errors
    from reconciler.backup import BackupError

    table: list[tuple[type[ReconcilerError], str]] = [
        (errors.LocksUnavailable, "LocksUnavailable"),  # nothing wrong with it: runs again
        (errors.DataLossPrevented, "VerifyFailed"),
        (errors.DatabaseUnavailable, "DatabaseUnavailable"),
        (errors.SourceError, "InvalidSource"),
        (errors.PolicyError, "InvalidPolicy"),
        (errors.Refused, "Locked"),
        (errors.LedgerStateError, "FailedMigration"),
        (BackupError, "BackupFailed"),
    ]
    return next((reason for kind, reason in table if isinstance(exc, kind)), "ApplyFailed")
