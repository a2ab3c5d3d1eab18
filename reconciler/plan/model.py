"""What a plan is: ordered steps with their findings, or the reason nothing can move."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from reconciler.safety.gate import Verdict

if TYPE_CHECKING:
    from reconciler.observe.schema import Drift
    from reconciler.safety.findings import Finding
    from reconciler.source.base import Migration

Risk = Literal["low", "medium", "high"]


@dataclass(frozen=True)
class Step:
    """One unit of change; the executor runs steps in order and stops at the first failure."""

    action: Literal["apply-migration"]
    migration: Migration
    findings: tuple[Finding, ...] = ()
    verdict: Verdict = field(default_factory=Verdict)

    @property
    def blocked(self) -> bool:
        """The gate stops this step now (blocked, or waiting for the grace period)."""
        return self.verdict.decision != "run"

    @property
    def risk(self) -> Risk:
        if self.blocked or self.verdict.approved:
            return "high"
        serious = [f for f in self.findings if f.severity != "info"]
        return "medium" if serious else "low"


@dataclass(frozen=True)
class Blocker:
    """Why the target cannot move until a person acts; ``reason`` is a condition reason."""

    reason: str
    message: str


@dataclass(frozen=True)
class DriftCheck:
    """The live schema held against the one its applied migrations build (``reconciler
    drift``), as ``plan`` and ``status`` show it: the differences said, or why there is no
    answer. Made by ``act.drift_guard.plan_with_drift``; the plan stays a pure value."""

    differences: tuple[str, ...] = ()
    replayed: int = 0
    """How many applied migrations were replayed to build the expected schema."""
    notes: tuple[str, ...] = ()
    error: str | None = None
    """The check could not be made (a migration that fails on an empty database, a file
    gone): an apply would hold its migrations (``InvalidSource``)."""
    skipped: str | None = None
    """Why no check was made (drift checks off, no database yet, ``--no-drift``)."""
    command: str = "reconciler drift"
    """The command that says every difference, and captures them (``--sql``)."""


@dataclass(frozen=True)
class Plan:
    target: str
    environment: str
    layout: str
    database: str
    """The database URL, password hidden."""
    live_revision: str | None
    desired_revision: str | None
    steps: tuple[Step, ...] = ()
    drift: tuple[Drift, ...] = ()
    blocker: Blocker | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    window_opens: datetime | None = None
    """When the next maintenance window opens, if the plan was made outside every one: the
    runnable steps wait for it (``OutsideWindow``)."""
    drift_check: DriftCheck | None = None
    """Schema drift, when the face asked for it (``plan``, ``status``); None otherwise."""

    @property
    def in_sync(self) -> bool:
        return not self.steps and self.blocker is None

    @property
    def runnable(self) -> tuple[Step, ...]:
        """The steps before the first blocked one: what ``apply`` may run now."""
        if self.blocker:
            return ()
        out: list[Step] = []
        for step in self.steps:
            if step.blocked:
                break
            out.append(step)
        return tuple(out)

    @property
    def first_blocked(self) -> Step | None:
        return next((s for s in self.steps if s.blocked), None)
