"""One target inside the daemon: its policy, leadership, conditions, the latest views that
``/status`` and the metrics show, and a connection kept between runs.

Runs of one target's schema and backups never overlap (``busy``), so the kept connection
has one user at a time, and a scheduled dump never holds the locks a migration waits for
(its ``lock_timeout`` would fail it). Identity runs have a lane of their own
(``identity_busy``): they use their own connection, and a provider that is slow to answer
must never hold a migration back.
Keeping it saves a new server process per run, the largest cost of an in-sync run across a
fleet. It is kept only while it is known clean: idle, alive, and only used to look (a run
that applied or failed closes it, so no session state a migration set can leak).
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciler.db.connection import Database, connect
from reconciler.policy.model import Target
from reconciler.runtime.conditions import Condition
from reconciler.runtime.leader import Leaders, Leadership


@dataclass
class ConcernState:
    reason: str = "Unknown"
    message: str = ""
    finished_at: datetime | None = None
    seconds: float | None = None
    failures: int = 0
    """Consecutive failures: the retry delay doubles with each."""


@dataclass
class TargetRuntime:
    spec: Target
    leadership: Leadership
    busy: threading.Lock = field(default_factory=threading.Lock)
    identity_busy: threading.Lock = field(default_factory=threading.Lock)
    schema_ran: threading.Event = field(default_factory=threading.Event)
    """Set once a schema run of this process has ended: identity reads the table the
    migrations make, so it starts after that."""
    conditions: tuple[Condition, ...] = ()
    concerns: dict[str, ConcernState] = field(default_factory=dict)
    schema: dict[str, Any] = field(default_factory=dict)
    backup: dict[str, Any] = field(default_factory=dict)
    identity: dict[str, Any] = field(default_factory=dict)
    drift: dict[str, Any] = field(default_factory=dict)
    """The last drift check, as ``/status`` shows it."""
    leader: bool = False
    """This replica took the lead at its last run and has not found it lost since (what is
    reported is checked again first: ``Daemon.leading``)."""
    led: bool = False
    """The views and gauges come from runs this replica led: cleared when the lead moves."""
    kept: Database | None = None

    @classmethod
    def create(cls, spec: Target, leaders: Leaders) -> TargetRuntime:
        return cls(spec, leaders.leadership(spec.name, spec.database))

    def connection(self) -> Database | None:
        """The kept connection, (re)opened as needed; None where none is kept (SQLite:
        a connection belongs to its thread, and opening one costs nothing)."""
        if self.spec.database.dialect != "postgresql":
            return None
        if self.kept is not None and (self.kept.url != self.spec.database or not self.kept.idle()):
            self.drop_connection()
        if self.kept is None:
            self.kept = connect(self.spec.database, application_name="reconciler")
        return self.kept

    def drop_connection(self) -> None:
        if self.kept is not None:
            with contextlib.suppress(Exception):  # a lost connection closes without a word
                self.kept.close()
            self.kept = None

    def lane(self, concern: str) -> threading.Lock:
        """The lock a run of ``concern`` holds: runs in one lane never overlap, runs in
        different lanes never wait for each other."""
        return self.identity_busy if concern == "identity" else self.busy

    def lanes(self) -> dict[str, threading.Lock]:
        return {"schema and backup": self.busy, "identity": self.identity_busy}

    def concern(self, name: str) -> ConcernState:
        return self.concerns.setdefault(name, ConcernState())
