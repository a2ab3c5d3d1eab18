"""The finding for a migration whose SQL cannot be known offline: every migration is
accounted for, and one the rules cannot see into says so rather than passing unseen.

An Alembic revision that reads data through ``op.get_bind()`` (or an ``env.py`` without
offline mode) renders no SQL. In production it blocks, unless the target rehearses (the
rehearsal measures on a copy what it loses) or an approval by id covers it; elsewhere, and
under a rehearsal, it is shown as ``info``. What it measurably loses is still checked
inside its own transaction before it commits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.safety.findings import Finding

if TYPE_CHECKING:
    from reconciler.source.base import Migration

RULE = "unanalysable-revision"


def unanalysable_finding(
    migration: Migration, reason: str, *, production: bool, rehearsed: bool
) -> Finding:
    """``reason``: why its SQL could not be rendered, one line."""
    if rehearsed:
        then = "the rehearsal measures what it loses on a copy"
    elif production:
        then = (
            "in production it blocks until it is rehearsed (rehearse: true) or, after "
            f"review, approved by id (rules: [{RULE}])"
        )
    else:
        then = "not production: shown, not blocking"
    return Finding(
        RULE,
        "data-loss" if production and not rehearsed else "info",
        f"not analysed: its SQL cannot be rendered offline ({reason}); {then}",
        str(migration.path),
        1,
        static=True,
    )
