"""Flux-style conditions: per target, ``Ready``, ``Reconciling`` and ``Stalled``, each with a
reason a dashboard can group by and a message a person can act on.

A reason tells what the loop does next: *stalling* reasons need a person (an approval, a
fixed migration, a working backup); *waiting* reasons clear by themselves (a grace period,
a provider back on its feet, a lock released).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

STALLING = frozenset(
    {
        "AwaitingApproval",
        "BackupFailed",
        "RehearsalLostData",
        "RehearsalFailed",
        "ApplyFailed",
        "VerifyFailed",
        "FailedMigration",
        "InvalidMigration",
        "InvalidPolicy",
        "InvalidSource",
        "UnknownRevision",
        "IdentityFailed",
        "UsersRefused",
        "SchemaDrift",
    }
)
"""Reasons that need a person before the target can move again."""
SUCCESS = frozenset({"InSync", "Pending", "Planned"})
WAITING = frozenset(
    {
        "AwaitingGracePeriod",
        "OutsideWindow",
        "LocksUnavailable",
        "Locked",
        "DatabaseUnavailable",
        "ProviderUnavailable",
        "IncompleteListing",
        "Suspended",
        "Interrupted",
    }
)
"""Reasons that clear by themselves (retried), or by the policy's own schedule."""
AWAITING = frozenset({"AwaitingApproval", "AwaitingGracePeriod", "OutsideWindow"})
"""Reasons ``apply`` and ``run --once`` exit 3 for: an approval, or the clock, must let the
change through."""
SETTLED = SUCCESS | {"AwaitingGracePeriod", "OutsideWindow", "Suspended"}
"""Not failures: the target is where the policy lets it be for now, so no retry."""
REASONS = SUCCESS | WAITING | STALLING | {"Progressing"}
"""Every reason a target can show (``Progressing``: a run under way, or none yet);
``docs/reasons.md`` says what each means."""


@dataclass(frozen=True)
class Condition:
    type: str
    """``Ready``, ``Reconciling`` or ``Stalled``."""
    status: bool
    reason: str
    message: str
    since: datetime


def evaluate(
    reason: str,
    message: str,
    now: datetime,
    *,
    reconciling: bool = False,
    previous: tuple[Condition, ...] = (),
) -> tuple[Condition, ...]:
    """The three conditions for an outcome ``reason``; ``since`` is kept while unchanged."""
    before = {c.type: c for c in previous}

    def make(kind: str, status: bool, why: str, text: str) -> Condition:
        old = before.get(kind)
        same = old is not None and old.status == status and old.reason == why
        return Condition(kind, status, why, text, old.since if same and old else now)

    if reconciling:
        last = before.get("Ready")
        return (
            make(
                "Ready",
                last.status if last else False,
                last.reason if last else "Progressing",
                last.message if last else message,
            ),
            make("Reconciling", True, "Progressing", message),
            make("Stalled", False, "Progressing", ""),
        )
    ready = reason in SUCCESS
    stalled = reason in STALLING
    return (
        make("Ready", ready, reason, message),
        make("Reconciling", False, reason, ""),
        make("Stalled", stalled, reason, message if stalled else ""),
    )
