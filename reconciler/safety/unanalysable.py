"""The finding for a migration whose SQL cannot be known offline: every migration is
accounted for, and one the rules cannot see into says so rather than passing unseen.

An Alembic revision that reads data through ``op.get_bind()`` (or an ``env.py`` without
offline mode) renders no SQL. In production it blocks, unless the target rehearses (the
rehearsal measures on a copy what it loses) or an approval by id covers it; elsewhere, and
under a rehearsal, it is shown as ``info``. So it is when it runs next on a database whose
tables hold no rows: whatever it does, it has nothing to lose (a revision further down the
batch is judged again once the ones before it have run). What it measurably loses is still checked
inside its own transaction before it commits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.safety.findings import Finding

if TYPE_CHECKING:
    from reconciler.source.base import Migration

RULE = "unanalysable-revision"


def unanalysable_finding(
    migration: Migration,
    reason: str,
    *,
    production: bool,
    rehearsed: bool,
    empty_database: bool = False,
) -> Finding:
    """``reason``: why its SQL could not be rendered, one line. ``empty_database``: it runs
    next, and no table of the live database holds a row."""
    if empty_database:
        then = "it runs next on a database whose tables hold no rows: nothing to lose"
    elif rehearsed:
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
        "data-loss" if production and not rehearsed and not empty_database else "info",
        f"not analysed: its SQL cannot be rendered offline ({reason}); {then}",
        str(migration.path),
        1,
        static=True,
    )
