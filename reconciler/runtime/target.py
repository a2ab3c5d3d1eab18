"""One target inside the daemon: its policy, leadership, conditions and the latest views
that ``/status`` and the metrics show. Runs of one target never overlap (``busy``)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciler.db.url import DatabaseUrl
from reconciler.policy.model import Target
from reconciler.runtime.conditions import Condition
from reconciler.runtime.leader import Leadership


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
    conditions: tuple[Condition, ...] = ()
    concerns: dict[str, ConcernState] = field(default_factory=dict)
    schema: dict[str, Any] = field(default_factory=dict)
    backup: dict[str, Any] = field(default_factory=dict)
    identity: dict[str, Any] = field(default_factory=dict)
    leader: bool = False

    @classmethod
    def create(cls, spec: Target, ledger: DatabaseUrl) -> TargetRuntime:
        return cls(spec, Leadership(spec.name, ledger, spec.database))

    def concern(self, name: str) -> ConcernState:
        return self.concerns.setdefault(name, ConcernState())
