"""Rehearsal: the pending steps run first on a copy of the live data, one by one, with a
census before and after each, so the plan can say exactly what a step would lose
("users.name: 300 non-null values dropped") and how long it took.

A measured loss counts as approved only when the step's approvals cover a finding on the
same table; anything else stops the live apply (``RehearsalLostData``), as does a step
that fails on the copy (``RehearsalFailed``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reconciler.act.verify import renames_explained
from reconciler.backup import Artifact, BackupDriver, BackupError
from reconciler.db.connection import connect
from reconciler.errors import MigrationFailed, ReconcilerError
from reconciler.observe.census import Loss, losses, take_census
from reconciler.policy.model import Safety, Target
from reconciler.safety.gate import covers_loss, loss_approval
from reconciler.safety.run_rows import run_written
from reconciler.source import open_layout

if TYPE_CHECKING:
    from reconciler.ledger import Ledger
    from reconciler.plan.model import Plan, Step
    from reconciler.source.base import Layout


@dataclass(frozen=True)
class StepRehearsal:
    step: Step
    seconds: float
    losses: tuple[Loss, ...] = ()
    error: str | None = None

    safety: Safety = field(default_factory=Safety)
    """The target's safety settings, which say what losses are accepted."""

    @property
    def unapproved(self) -> tuple[Loss, ...]:
        verdict = self.step.verdict
        return tuple(
            loss
            for loss in self.losses
            if not covers_loss(verdict, self.safety, loss.table)
            and not run_written(self.step.findings, loss.table)
        )

    @property
    def outcome(self) -> str:
        if self.error:
            return "failed"
        return "lost" if self.losses else "clean"


@dataclass(frozen=True)
class Rehearsal:
    backup_id: str
    steps: tuple[StepRehearsal, ...]

    @property
    def blocker(self) -> tuple[str, str] | None:
        """(condition reason, message) when the live apply must not go ahead."""
        for result in self.steps:
            migration = result.step.migration.id
            if result.error:
                return (
                    "RehearsalFailed",
                    f"{migration} failed on a copy of the live data: {result.error}",
                )
            if result.unapproved:
                unapproved = result.unapproved
                lost = "; ".join(loss.describe() for loss in unapproved)
                entry = loss_approval(result.step.migration, (loss.table for loss in unapproved))
                return (
                    "RehearsalLostData",
                    f"{migration} would lose data (measured on a copy): {lost}; if intended, "
                    f"approve it: {entry}",
                )
        return None


def rehearse(
    target: Target, layout: Layout, driver: BackupDriver, artifact: Artifact, steps: Sequence[Step]
) -> Rehearsal:
    """Run ``steps`` on a scratch copy of ``artifact``; the copy is dropped afterwards."""
    results: list[StepRehearsal] = []
    try:
        with driver.copy(artifact) as scratch_url:
            db = connect(scratch_url, application_name="reconciler-rehearsal")
            try:
                with layout.lock(db):
                    before = take_census(db, checksums=False)
                    for step in steps:
                        started = time.perf_counter()
                        try:
                            layout.apply(db, step.migration, target.timeouts)
                        except MigrationFailed as exc:
                            results.append(
                                StepRehearsal(step, time.perf_counter() - started, error=str(exc))
                            )
                            break
                        seconds = time.perf_counter() - started
                        after = take_census(db, checksums=False)
                        lost = renames_explained(step, losses(before, after), before, after)
                        results.append(
                            StepRehearsal(step, seconds, tuple(lost), safety=target.safety)
                        )
                        before = after
            finally:
                db.close()
    except BackupError as exc:
        raise BackupError(f"rehearsal of {target.name}: {exc}") from None
    except ReconcilerError as exc:
        if not results:
            raise
        results.append(StepRehearsal(steps[len(results)], 0.0, error=str(exc)))
    return Rehearsal(artifact.id, tuple(results))


def describe_rehearsal(rehearsal: Rehearsal) -> list[str]:
    lines = [f"rehearsal on a copy of backup {rehearsal.backup_id}:"]
    for result in rehearsal.steps:
        head = f"  {result.step.migration.id}: {result.seconds * 1000:.0f} ms"
        if result.error:
            lines.append(f"{head}, FAILED: {result.error}")
        elif not result.losses:
            lines.append(f"{head}, no data lost")
        else:
            unapproved = set(result.unapproved)
            for loss in result.losses:
                state = "NOT APPROVED" if loss in unapproved else "approved"
                lines.append(f"{head}, lost {loss.describe()} ({state})")
    return lines


def rehearse_plan(target: Target, ledger: Ledger, plan: Plan) -> Rehearsal:
    """A fresh, verified backup and a rehearsal of every pending step, blocked ones too (what
    they would lose is what a reviewer needs to approve them); nothing live changes."""
    if target.backup is None:
        raise BackupError(f"target {target.name!r} has no `backup:` section to rehearse from")
    from reconciler.act.backups import take_backup
    from reconciler.backup import open_driver

    if target.database.dialect == "sqlite" and not target.database.sqlite_path.exists():
        # The backup it rehearses from needs the file: created empty, as apply would.
        connect(target.database).close()
    driver = open_driver(target)
    backup = take_backup(target, ledger, reason="rehearsal", driver=driver)
    return rehearse(target, open_layout(target.migrations), driver, backup.artifact, plan.steps)
