"""A failed migration a crash, a kill or a lock cut short: finished by reconciler itself, or
refused with the one command that settles it.

A Prisma script that runs in parts (its own ``BEGIN ... COMMIT``, a ``CREATE INDEX
CONCURRENTLY``) leaves its earlier parts in effect when a later one fails, so the usual
advice (fix the file, resolve it rolled back) would run them twice and fail on "already
exists". The history row counts the parts in effect (``applied_steps_count``) and says why
the attempt stopped; from that and the catalog:

- cut short at a part that can run again: the INVALID index the cut-short ``CREATE INDEX
  CONCURRENTLY`` left is dropped and the parts not yet in effect run, each once, before
  the plan is judged again; nobody needs to act;
- stopped by its SQL (or a refused loss): the refusal names the lines and objects in
  effect, the lines that are not, and the ``resolve --applied`` that settles it once a
  person has finished those lines by hand.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

from reconciler.act.verify import loss_check
from reconciler.errors import MigrationFailed
from reconciler.plan.model import Blocker, Plan, Step
from reconciler.source.prisma import PrismaLayout, Stopped

if TYPE_CHECKING:
    from reconciler.act.engine import TargetSession
    from reconciler.ledger import Ledger, LiveRun


def recover_failed(
    session: TargetSession, ledger: Ledger, run: LiveRun, plan: Plan
) -> tuple[Plan, MigrationFailed | None, str]:
    """``plan`` as it stands once a failed migration of ours was finished (observed again),
    or with the exact advice in its blocker; when finishing it failed again, the error and
    what to say of it."""
    layout, db = session.layout, session.db
    if plan.blocker is None or plan.blocker.reason != "FailedMigration":
        return plan, None, ""
    if not isinstance(layout, PrismaLayout):
        return plan, None, ""
    found = next(
        (
            (step, state)
            for step in plan.steps
            if (state := layout.stopped(db, step.migration)) is not None
        ),
        None,
    )
    if found is None:
        return plan, None, ""
    step, state = found
    if not state.resumable or step.blocked:
        blocker = Blocker("FailedMigration", advice(session, step, state))
        return replace(plan, blocker=blocker), None, ""
    migration, target = step.migration, session.target
    with layout.lock(db):
        step_id = ledger.start_step(
            run.id, target.name, "resume-migration", migration.id, migration.checksum
        )
        started = time.perf_counter()
        try:
            note = layout.resume(db, migration, target.timeouts, loss_check(step, target.safety))
        except MigrationFailed as exc:
            ledger.finish_step(step_id, "failed", time.perf_counter() - started, str(exc))
            again = layout.stopped(db, migration)
            said = (
                advice(session, step, again)
                if again is not None and not again.resumable
                else f"{migration.id} failed: {migration.path}: {exc}"
            )
            return plan, exc, said
        ledger.finish_step(step_id, "applied", time.perf_counter() - started, note)
    session.report(f"{migration.id}: {note}; it is applied")
    return session.plan(), None, ""


def advice(session: TargetSession, step: Step, state: Stopped) -> str:
    """The refusal of a failed script that left parts in effect: what is in effect, what is
    not, and the one command that settles it."""
    migration = step.migration
    failed = state.failed
    rest = ", ".join(p.lines for p in state.parts[state.done :])
    first = state.logs.strip().splitlines()[0][:400] if state.logs.strip() else "cut short"
    if state.done:
        done = ", ".join(p.lines for p in state.parts[: state.done])
        made = f" ({state.made})" if state.made else ""
        in_effect = f"{done} of it are in effect{made}"
    else:
        in_effect = "none of its lines is in effect"
    command = session.target.command("resolve")
    return (
        f"migration {migration.id} failed at {failed.lines}: {first}; {in_effect}; not in "
        f"effect: {rest}. Do not edit it or resolve it rolled back: that would run it whole "
        f"again. Once the cause is fixed, run {rest} of {migration.path} by hand, then "
        f"`{command} --applied {migration.id}`"
    )
