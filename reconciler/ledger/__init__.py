"""The ledger: reconciler's own record of every run and step, in SQLite or PostgreSQL.

Its schema is managed by its own Alembic migrations (``ledger/migrations``), upgraded
automatically when a ledger is opened, by one opener at a time (``store.Ledger._upgrade``).
Tables:

- ``runs``: one reconcile of one concern of one target (who triggered it, from which source
  commit, when, the outcome as a condition reason and a message);
- ``steps``: each step a run attempted (migration id and checksum, timings, outcome, error).

Later capabilities add their own tables through new ledger migrations, keyed by ``run_id``:
``findings`` (rule verdicts and the approvals that waived them), ``backups`` (driver,
location, sha256, size, verification), ``identity_runs`` (counts created / updated /
deleted), ``conditions`` (the last condition per target, for the daemon's status).

``Ledger`` is imported from ``store`` on first use (PEP 562): the records are plain
dataclasses, and a command that only plans should not import SQLAlchemy to name them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reconciler.ledger.records import (
    BackupInfo,
    DecisionRecord,
    LiveRun,
    RehearsalInfo,
    RunRecord,
    StepRecord,
)

if TYPE_CHECKING:
    from reconciler.ledger.store import Ledger

__all__ = [
    "BackupInfo",
    "DecisionRecord",
    "Ledger",
    "LiveRun",
    "RehearsalInfo",
    "RunRecord",
    "StepRecord",
]


def __getattr__(name: str) -> Any:
    if name == "Ledger":
        from reconciler.ledger.store import Ledger

        return Ledger
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
