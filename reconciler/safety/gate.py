"""The gate: may a step run now? Findings against the policy's blocking severities and its
approvals, which are reviewed commits: an approval binds to the migration's checksum (an
edited file voids it), names the rules it covers, and may expire."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Literal, Protocol

from msgspec import Struct, field

from reconciler.rulebook import DEFAULT_BLOCK

if TYPE_CHECKING:
    from reconciler.policy.model import Approval, Window
    from reconciler.safety.findings import Finding
    from reconciler.source.base import Migration

Decision = Literal["run", "blocked", "waiting"]


class Rules(Protocol):
    """What the gate reads of a target's ``safety`` settings. A policy's ``Safety`` is one;
    static lint, which has no policy, judges by ``DEFAULT_RULES`` without importing the
    policy model (and pydantic with it)."""

    @property
    def block(self) -> Sequence[str]: ...

    @property
    def approvals(self) -> Sequence[Approval]: ...


class DefaultRules(Struct, frozen=True):
    block: Sequence[str] = DEFAULT_BLOCK
    approvals: Sequence[Approval] = ()


DEFAULT_RULES = DefaultRules()
"""The severities a policy blocks when it says nothing, and no approvals."""


class Verdict(Struct, frozen=True):
    decision: Decision = "run"
    blocking: tuple[Finding, ...] = ()
    """Findings that stop the step (not approved)."""
    approved: tuple[tuple[Finding, Approval], ...] = ()
    """Findings an approval covers, with the approval used."""
    waiting: tuple[Finding, ...] = ()
    """``contract-too-soon`` findings: the step waits for the grace period."""
    refused: tuple[str, ...] = field(default_factory=tuple)
    """Why approvals that name this migration did not apply (edited file, expired)."""
    accepted_tables: frozenset[str] = frozenset()
    """Tables whose measured loss valid approvals accept (``tables:``): cascades, triggers."""

    @property
    def reason(self) -> str:
        if self.decision == "waiting":
            return "AwaitingGracePeriod"
        if any(f.rule == "syntax-error" for f in self.blocking):
            return "InvalidMigration"
        return "AwaitingApproval" if self.decision == "blocked" else "Ready"


def gate_step(
    migration: Migration, findings: list[Finding], safety: Rules, now: datetime
) -> Verdict:
    approvals = [a for a in safety.approvals if a.migration == migration.id]
    valid: list[Approval] = []
    refused: list[str] = []
    for approval in approvals:
        if not migration.checksum.startswith(approval.checksum):
            refused.append(
                f"the approval for {migration.id} was given for checksum "
                f"{approval.checksum}, but the file now hashes to "
                f"{migration.checksum[:12]}: the file was edited after review"
            )
        elif approval.expires is not None and approval.expires < _today(now):
            refused.append(f"the approval for {migration.id} expired on {approval.expires}")
        else:
            valid.append(approval)
    blocking: list[Finding] = []
    approved: list[tuple[Finding, Approval]] = []
    waiting: list[Finding] = []
    for finding in findings:
        if finding.rule == "syntax-error":
            blocking.append(finding)
            continue
        cover = next((a for a in valid if finding.rule in a.rules), None)
        if finding.rule == "contract-too-soon":
            if cover:
                approved.append((finding, cover))
            elif finding.wait_until and finding.wait_until > now:
                waiting.append(finding)
            continue
        if finding.rule == "opaque-statement":
            if cover:  # a person read the DO block: what it measurably loses is approved
                approved.append((finding, cover))
            continue
        if finding.rule == "unanalysable-revision" and cover:
            approved.append((finding, cover))  # a person read it, as a DO block above
            continue
        if finding.severity not in safety.block:
            continue
        if cover:
            approved.append((finding, cover))
        else:
            blocking.append(finding)
    decision: Decision = "blocked" if blocking else ("waiting" if waiting else "run")
    accepted = frozenset(t for a in valid for t in a.tables)
    return Verdict(
        decision, tuple(blocking), tuple(approved), tuple(waiting), tuple(refused), accepted
    )


def covers_loss(verdict: Verdict, safety: Rules, table: str) -> bool:
    """Whether data a step measurably loses from ``table`` (on a copy, or inside its own
    transaction) is accepted: the policy does not block data loss, an approval covers a
    finding on that table or names the table, or one covers the step's DO blocks or a
    revision that could not be rendered, which no rule sees into."""
    if "data-loss" not in safety.block or table in verdict.accepted_tables:
        return True
    return any(f.table == table or f.rule in UNSEEN for f, _ in verdict.approved)


UNSEEN = ("opaque-statement", "unanalysable-revision")
"""Findings of code no rule sees into: approving one accepts what the step measurably loses."""


def window_opens(windows: Sequence[Window], now: datetime) -> datetime | None:
    """None when migrations may run at ``now`` (inside a window, or no windows at all);
    else when the next window opens (UTC)."""
    if not windows:
        return None
    from zoneinfo import ZoneInfo

    from reconciler.policy.model import DAYS  # a policy with windows was loaded: no cost

    openings: list[datetime] = []
    for window in windows:
        zone = ZoneInfo(window.timezone)
        today = now.astimezone(zone).date()
        for offset in range(-1, 8):  # yesterday's window may still be open past midnight
            day = today + timedelta(days=offset)
            if DAYS[day.weekday()] not in window.days:
                continue
            start = datetime.combine(day, window.start, zone)
            end_day = day if window.end > window.start else day + timedelta(days=1)
            end = datetime.combine(end_day, window.end, zone)
            if start <= now < end:
                return None
            if start > now:
                openings.append(start)
    return min(openings).astimezone(UTC)


def _today(now: datetime) -> date:
    return now.date()


def approval_snippet(migration: Migration, findings: tuple[Finding, ...]) -> str:
    """The YAML a reviewer pastes under ``safety.approvals`` to let this step run."""
    rules = sorted({f.rule for f in findings if f.rule != "syntax-error"})
    return (
        f"        - migration: {_quoted(migration.id)}\n"
        f"          checksum: {_quoted(migration.checksum[:12])}\n"
        f"          rules: [{', '.join(rules)}]\n"
        f'          reason: "<why this is intended, and how the data was preserved>"\n'
    )


def loss_approval(migration: Migration, tables: Iterable[str]) -> str:
    """The entry to paste under ``safety.approvals`` to accept a measured loss on
    ``tables``."""
    return (
        f"{{migration: {_quoted(migration.id)}, checksum: {_quoted(migration.checksum[:12])}, "
        f"tables: [{', '.join(sorted(set(tables)))}], reason: ...}}"
    )


def _quoted(text: str) -> str:
    """A YAML string whatever it holds: a checksum or an Alembic revision id of digits alone
    would otherwise read as a number, and the pasted approval would be refused."""
    return "'" + text.replace("'", "''") + "'"
