"""A finding: one rule's verdict on one statement of one migration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["data-loss", "will-fail", "syntax", "locking", "compat", "info"]
"""How bad a finding is; the policy chooses which severities block."""

BLOCKING: frozenset[Severity] = frozenset({"data-loss", "will-fail", "syntax"})
"""Severities that block a step unless approved; ``syntax`` always blocks."""


@dataclass(frozen=True)
class Finding:
    rule: str
    """Stable id, e.g. ``syntax-error``; approvals and docs pages use it."""
    severity: Severity
    message: str
    """One line: what the statement does and why that is dangerous."""
    file: str
    line: int
    statement: str = ""
    safe_alternative: str = ""

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def blocking(self) -> bool:
        return self.severity in BLOCKING
