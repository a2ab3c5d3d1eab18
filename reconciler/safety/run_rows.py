"""Findings on rows this apply run's own migrations wrote: ``info``, not blocking.

A database built from its history holds only the rows its migrations wrote (see
``reconciler.observe.run_rows``, which measures them). A finding that would block a step
because a table holds rows (a dropped column or table, deleted or overwritten rows, a
narrowing with values, an unanalysable revision on a database with a row) loses nothing
the history does not write again when every row of that table is the run's own: it becomes
``info``, says so, and names the tables in ``run_only``, which the verify measures again,
under a lock, inside the step's own transaction. Asked only of findings that would
otherwise block, so a plan without them costs nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from msgspec.structs import replace

from reconciler.safety.unanalysable import RULE as UNANALYSABLE

if TYPE_CHECKING:
    from reconciler.safety.findings import Finding

ABSENT = -1
"""A table that does not exist yet: the run creates it (``observe.run_rows.ABSENT``)."""
EVERY = "*"
"""``run_only`` of a finding that relies on every table that holds a row."""
KEPT = frozenset({"contract-too-soon", "drop-schema"})
"""Data-loss rules this does not relax: a grace period owed to the deployed application,
and a schema (not a table) dropped whole."""

THEIRS = "the rows this run's migrations write are no customer data"
RowsOf = Callable[[str], int | None]
"""A table's rows when every one is the run's own, ``ABSENT``, or None (someone else's)."""


def relax(
    findings: dict[str, list[Finding]], rows_of: RowsOf, holding: Callable[[], list[str]]
) -> dict[str, list[Finding]]:
    """``findings`` with each blocking data-loss finding whose tables hold only this run's
    rows made ``info``. ``holding``: the tables that hold a row now (for a revision that
    cannot be analysed, which may touch any table)."""
    measured: dict[str, int | None] = {}

    def rows(table: str) -> int | None:
        if table not in measured:
            measured[table] = rows_of(table)
        return measured[table]

    held: list[list[str]] = []

    def holds() -> list[str]:
        if not held:
            held.append(holding())
        return held[0]

    return {m: [_relaxed(f, rows, holds) for f in found] for m, found in findings.items()}


def _relaxed(finding: Finding, rows: RowsOf, holding: Callable[[], list[str]]) -> Finding:
    if finding.severity != "data-loss" or finding.rule in KEPT:
        return finding
    if finding.rule == UNANALYSABLE:
        tables = holding()
        counts = {t: rows(t) for t in tables}
        if any(n is None for n in counts.values()):
            return finding
        total = sum(n for n in counts.values() if n is not None and n > 0)
        where = ", ".join(f"{t} {n:,}" for t, n in sorted(counts.items()))
        note = (
            f"the database holds only the {_rows(total)} this run's migrations wrote "
            f"({where}): no customer data to lose"
            if total
            else f"no table holds a row yet, and {THEIRS}"
        )
        head = finding.message.rsplit("; ", 1)[0]
        return replace(finding, severity="info", message=f"{head}; {note}", run_only=(EVERY,))
    if not finding.table:
        return finding
    count = rows(finding.table)
    if count is None:
        return finding
    if count == ABSENT:
        note = f"{finding.table} is created by this run, and {THEIRS}"
    elif count == 0:
        note = f"{finding.table} holds no row yet, and {THEIRS}"
    else:
        note = (
            f"{finding.table} holds only the {_rows(count)} this run's migrations wrote: "
            "no customer data to lose"
        )
    return replace(
        finding, severity="info", message=f"{finding.message}; {note}", run_only=(finding.table,)
    )


def run_written(findings: Iterable[Finding], table: str) -> bool:
    """Whether a loss measured on ``table`` is of rows the plan found to be the run's own."""
    return any(table in f.run_only or EVERY in f.run_only for f in findings)


def _rows(count: int) -> str:
    return f"{count:,} row{'' if count == 1 else 's'}"
