"""Type changes static lint can judge without knowing the old type.

``ALTER COLUMN ... TYPE BOOLEAN`` (or ``UUID``) without ``USING`` converts by PostgreSQL's
assignment cast, and no other type has one into these: the column is already of that type
(MLflow's ``39d1c3be5f05`` declares BOOLEAN again to add a CHECK), or PostgreSQL refuses the
statement. The premise is checked on the real server, the verdict on the text alone.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from reconciler.safety.analyse import judge_batch, parse_migration
from reconciler.safety.findings import Finding
from reconciler.safety.types import SqlType, normalise
from reconciler.source.base import Migration


def lint(sql: str) -> list[Finding]:
    mid = "20261120000000_alter"
    path = Path(f"/app/prisma/migrations/{mid}/migration.sql")
    found = Migration(mid, "alter", path, hashlib.sha256(sql.encode()).hexdigest())
    parsed = parse_migration(found, sql, "postgresql")
    now = datetime(2026, 11, 20, tzinfo=UTC)
    return judge_batch([parsed], None, now=now, grace_seconds=0, live_batch=False)[mid]


def narrowing(sql: str) -> list[str]:
    return [f.severity for f in lint(sql) if f.rule == "narrowing-type"]


@pytest.mark.parametrize("target", ["BOOLEAN", "UUID"])
def test_a_type_no_other_type_casts_to_changes_no_value(target: str) -> None:
    assert narrowing(f"ALTER TABLE latest_metrics ALTER COLUMN is_nan TYPE {target};\n") == []


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE t ALTER COLUMN c TYPE BOOLEAN USING c::BOOLEAN;\n",  # 2 becomes true
        "ALTER TABLE t ALTER COLUMN c TYPE BOOLEAN USING c <> 0;\n",
        "ALTER TABLE t ALTER COLUMN c TYPE BOOLEAN[];\n",
        "ALTER TABLE t ALTER COLUMN c TYPE FLOAT(53);\n",  # numeric or bigint: rounded
    ],
)
def test_a_conversion_written_out_or_reached_by_assignment_still_blocks(sql: str) -> None:
    assert narrowing(sql) == ["data-loss"]


@pytest.mark.parametrize("old", ["INTEGER", "TEXT", "VARCHAR(36)", "SMALLINT", "JSONB"])
@pytest.mark.parametrize("target", ["BOOLEAN", "UUID"])
def test_postgresql_refuses_the_change_from_any_other_type(
    pg_url: str, old: str, target: str
) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE t (c {old})")
        with pytest.raises(psycopg.errors.DatatypeMismatch, match="cannot be cast automatically"):
            conn.execute(f"ALTER TABLE t ALTER COLUMN c TYPE {target}")
        conn.execute("DROP TABLE t")


@pytest.mark.parametrize(
    ("precision", "name"), [(1, "float4"), (24, "float4"), (25, "float8"), (53, "float8")]
)
def test_float_with_a_precision_is_real_or_double_precision(precision: int, name: str) -> None:
    assert normalise("float", (precision,)) == SqlType(name)
    assert normalise("FLOAT") == SqlType("float8")
