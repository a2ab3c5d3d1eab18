"""What the ledger hands out and takes in: plain records, free of SQLAlchemy.

The engine and the command line name these types everywhere; keeping them apart from the
store means a command that never opens a ledger (``plan``, ``lint``) never imports SQLAlchemy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.ledger.store import Ledger


@dataclass(frozen=True)
class RunRecord:
    id: int
    target: str
    concern: str
    trigger: str
    source: str
    source_commit: str | None
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None
    message: str | None


@dataclass(frozen=True)
class DecisionRecord:
    """A finding on a step and the gate's decision: blocked, approved, waiting or noted."""

    migration: str
    checksum: str
    rule: str
    severity: str
    location: str
    message: str
    decision: str
    approval_reason: str | None = None
    approved_by: str | None = None
    approval_expires: date | None = None


@dataclass(frozen=True)
class BackupInfo:
    id: str
    target: str
    driver: str
    location: str
    reason: str
    run_id: int | None
    created_at: datetime
    size_bytes: int | None = None
    sha256: str | None = None
    census: dict[str, object] | None = None
    verified: bool | None = None
    verified_at: datetime | None = None
    verification: str | None = None
    deleted_at: datetime | None = None


@dataclass(frozen=True)
class RehearsalInfo:
    migration: str
    checksum: str
    seconds: float | None
    outcome: str
    """``clean`` (no data lost), ``lost`` (see ``losses``), ``failed`` (see ``error``)."""
    losses: list[str]
    error: str | None = None


@dataclass(frozen=True)
class StepRecord:
    id: int
    run_id: int
    migration: str
    checksum: str | None
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    outcome: str
    error: str | None


@dataclass
class LiveRun:
    """A run in progress; ``id`` writes its row the first time something needs it."""

    ledger: Ledger
    target: str
    concern: str
    trigger: str
    source: str
    commit: str | None
    started_at: datetime
    _id: int | None = None

    @property
    def id(self) -> int:
        if self._id is None:
            self._id = self.ledger.start_run(
                self.target, self.concern, self.trigger, self.source, self.commit, self.started_at
            )
        return self._id

    def finish(self, outcome: str, message: str) -> int:
        """Record the outcome; the run's id."""
        if self._id is None:
            self._id = self.ledger.record_run(self, outcome, message)
        else:
            self.ledger.finish_run(self._id, outcome, message)
        return self._id
