"""A finding: one rule's verdict on one statement of one migration."""

from __future__ import annotations

from datetime import datetime

from msgspec import Struct

from reconciler.rulebook import RULES, Severity


class Finding(Struct, frozen=True):
    rule: str
    """A rule id from ``reconciler.rulebook``; approvals and docs pages use it."""
    severity: Severity
    """The effective severity: ``info`` when live data shows nothing can be lost."""
    message: str
    """One line: what the statement does to which data, with live figures when known."""
    file: str
    line: int
    statement: str = ""
    static: bool = False
    """True when no live facts were available: figures are unknown, the rule assumed data."""
    wait_until: datetime | None = None
    """``contract-too-soon``: when the grace period ends and the step may run."""
    table: str = ""
    """The table the statement changes: a rehearsal's measured losses on it are covered
    by an approval of this finding."""
    renamed: tuple[str, str] | None = None
    """``rename-column``: (old, new) column; ``rename-table``: (old, new) table. What a
    census, which knows names only, would otherwise read as dropped."""
    run_only: tuple[str, ...] = ()
    """The tables whose rows, all written by this apply run's migrations, make this finding
    ``info`` (``*``: every table that holds a row); the verify measures them again inside
    the step's transaction, and what the step loses from them is accepted."""

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def safe_alternative(self) -> str:
        rule = RULES.get(self.rule)
        return rule.safe_alternative if rule else ""
