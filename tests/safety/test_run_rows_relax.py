"""Which findings the run's own rows relax (``safety.run_rows.relax``), as data: a blocking
data-loss finding on a table that holds only the run's rows becomes ``info`` and names the
table for the verify; a table with someone else's row, a finding that does not block, the
grace period and a dropped schema stay as they are."""

from __future__ import annotations

import pytest

from reconciler.safety.findings import Finding
from reconciler.safety.run_rows import ABSENT, EVERY, relax

ROWS = {"users": 2, "teams": 0, "orders": None, "created": ABSENT}
"""Per table: the run's rows, none yet, someone else's row (None), not created yet."""


def finding(rule: str, table: str, severity: str = "data-loss") -> Finding:
    return Finding(rule, severity, f"{rule} on {table}", "m.sql", 1, table=table)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rule", "table", "severity", "relaxed", "says"),
    [
        ("drop-column", "users", "data-loss", True, "users holds only the 2 rows this run's"),
        ("delete-rows", "teams", "data-loss", True, "teams holds no row yet, and the rows"),
        ("drop-table", "created", "data-loss", True, "created is created by this run"),
        ("update-overwrites", "orders", "data-loss", False, ""),
        ("set-not-null-with-nulls", "users", "will-fail", False, ""),
        ("index-without-concurrently", "users", "locking", False, ""),
        ("contract-too-soon", "users", "data-loss", False, ""),
        ("drop-schema", "users", "data-loss", False, ""),
    ],
)
def test_relaxed_or_kept(rule: str, table: str, severity: str, relaxed: bool, says: str) -> None:
    [out] = relax({"m": [finding(rule, table, severity)]}, ROWS.get, lambda: [])["m"]
    assert (out.severity == "info") is relaxed
    assert out.run_only == ((table,) if relaxed else ())
    assert says in out.message


@pytest.mark.parametrize(
    ("holding", "relaxed", "says"),
    [
        (["users"], True, "the database holds only the 2 rows this run's migrations wrote"),
        ([], True, "no table holds a row yet"),
        (["users", "orders"], False, "in production it blocks"),
    ],
)
def test_an_unanalysable_revision_counts_every_table(
    holding: list[str], relaxed: bool, says: str
) -> None:
    message = "not analysed: its SQL cannot be rendered offline (x); in production it blocks"
    unseen = Finding("unanalysable-revision", "data-loss", message, "r.py", 1)
    [out] = relax({"r": [unseen]}, ROWS.get, lambda: holding)["r"]
    assert (out.severity == "info") is relaxed
    assert out.run_only == ((EVERY,) if relaxed else ())
    assert says in out.message
