"""A failed migration a crash, a kill or a lock cut short: finished by reconciler itself, or
refused with the one command that settles it.

A Prisma script that runs in parts (its own ``BEGIN ... COMMIT``, a ``CREATE INDEX
CONCURRENTLY``) leaves its earlier parts in effect when a later one fails, so the usual
advice (fix the file, resolve it rolled back) would run them twice and fail on "already
exists". The history row counts the parts in effect (``applied_steps_count``) and says why
the attempt stopped; from that and the catalog:

- cut short at a part that can run again: the plan applies it as any pending migration
  (backed up, rehearsed, confirmed, verified), and applying it resumes the attempt: the
  INVALID index the cut-short ``CREATE INDEX CONCURRENTLY`` left is dropped and the parts
  not yet in effect run, each once (``PrismaLayout.resume``); nobody needs to act;
- stopped by its SQL (or a refused loss): the refusal names the lines and objects in
  effect, the lines that are not, and the ``resolve --applied`` that settles it once a
  person has finished those lines by hand.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

from reconciler.plan.model import Blocker, Plan, Step
from reconciler.source.prisma import PrismaLayout, Stopped
from reconciler.source.sql import concurrent_index

if TYPE_CHECKING:
    from reconciler.act.engine import TargetSession


def settled(session: TargetSession, plan: Plan) -> Plan:
    """``plan`` once reconciler's own failed script run in parts is accounted for: without
    its ``FailedMigration`` blocker, and a note instead, when applying it resumes it; with
    the exact advice as the blocker when a person must settle it; else as it was."""
    layout, db = session.layout, session.db
    if plan.blocker is None or plan.blocker.reason != "FailedMigration":
        return plan
    if not isinstance(layout, PrismaLayout):
        return plan
    found = next(
        (
            (step, state)
            for step in plan.steps
            if (state := layout.stopped(db, step.migration)) is not None
        ),
        None,
    )
    if found is None:
        return plan
    step, state = found
    if not state.resumable:
        left = layout.leftover_index(db, state)
        if state.done == 0 and left is None:  # nothing in effect: fix it, run it again
            return plan
        said = advice(session, step, state, left)
        return replace(plan, blocker=Blocker("FailedMigration", said))
    named = concurrent_index(state.failed)
    note = (
        f"{step.migration.id} was cut short at {state.failed.lines} (a crash, a kill, Ctrl-C "
        "or a lock): applying it resumes it there"
        + (f", the INVALID index {named[0]} it may have left dropped first" if named else "")
        + (f"; {state.done} of its parts are in effect ({state.made})" if state.made else "")
    )
    return replace(plan, blocker=None, notes=(*plan.notes, note))


def advice(session: TargetSession, step: Step, state: Stopped, left: str | None) -> str:
    """The refusal of a failed script that left parts in effect: what is in effect, what is
    not, and the one command that settles it. ``left``: an INVALID index its failed
    ``CREATE INDEX CONCURRENTLY`` left, to drop first."""
    migration = step.migration
    failed = state.failed
    rest = ", ".join(p.lines for p in state.parts[state.done :])
    first = state.logs.strip().splitlines()[0][:400] if state.logs.strip() else "cut short"
    first = re.sub(r"^lines? [0-9-]+: ", "", first)  # the part's lines are said already
    if state.done:
        done = ", ".join(p.lines for p in state.parts[: state.done])
        made = f" ({state.made})" if state.made else ""
        in_effect = f"{done} of it are in effect{made}"
    else:
        in_effect = "none of its lines is in effect"
    command = session.target.command("resolve")
    drop = f"`DROP INDEX CONCURRENTLY {left};`, then " if left else ""
    return (
        f"migration {migration.id} failed at {failed.lines}: {first}; {in_effect}; not in "
        f"effect: {rest}. Do not edit it or resolve it rolled back: that would run it whole "
        f"again. Once the cause is fixed, {drop}run {rest} of {migration.path} by hand, then "
        f"`{command} --applied {migration.id}`"
    )
