"""An UPDATE that moves values between two columns of a row loses none (rallly's
``20241224103150_guest_id_column``: ids without a user move from ``user_id`` to ``guest_id``).

Both ``CASE`` read the row as it was, on one condition: where one keeps the value the other
is NULL. The verdict is on the text; the premise is checked on PostgreSQL with rows.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from reconciler.safety.analyse import judge_batch, parse_migration
from reconciler.safety.findings import Finding
from reconciler.source.base import Migration

MOVE = """
UPDATE "polls" p
SET "guest_id" = CASE WHEN NOT EXISTS (SELECT 1 FROM "users" u WHERE u.id = p.user_id)
                      THEN p.user_id ELSE NULL END,
    "user_id" = CASE WHEN NOT EXISTS (SELECT 1 FROM "users" u WHERE u.id = p.user_id)
                     THEN NULL ELSE p.user_id END
WHERE p.user_id IS NOT NULL;
"""


def lint(sql: str) -> list[Finding]:
    mid = "20261120000000_move"
    path = Path(f"/app/prisma/migrations/{mid}/migration.sql")
    found = Migration(mid, "move", path, hashlib.sha256(sql.encode()).hexdigest())
    parsed = parse_migration(
        found, 'ALTER TABLE "polls" ADD COLUMN "guest_id" TEXT;\n' + sql, "postgresql"
    )
    now = datetime(2026, 11, 20, tzinfo=UTC)
    return judge_batch([parsed], None, now=now, grace_seconds=0, live_batch=False)[mid]


def test_a_move_between_two_columns_is_info() -> None:
    found = [f for f in lint(MOVE) if f.rule == "update-overwrites"]
    assert {f.severity for f in found} == {"info"}
    assert any(
        "moves the values of polls.user_id it clears into polls.guest_id" in f.message
        for f in found
    )


@pytest.mark.parametrize(
    "sql",
    [
        MOVE.replace("THEN NULL ELSE p.user_id", "THEN NULL ELSE NULL"),  # user_id cleared
        MOVE.replace("u.id = p.user_id)\n                     THEN", "u.id = 1)\n THEN"),
        MOVE.replace("NOT EXISTS", "random() > 0.5 AND NOT EXISTS"),  # two draws per row
        MOVE.replace("THEN p.user_id ELSE NULL", "THEN 'x' ELSE NULL"),  # value not moved
    ],
    ids=["both-cleared", "other-condition", "volatile-condition", "constant-moved"],
)
def test_anything_short_of_a_move_still_blocks(sql: str) -> None:
    found = [f for f in lint(sql) if f.rule == "update-overwrites" and "user_id" in f.message]
    assert [f.severity for f in found] == ["data-loss"]


def test_postgresql_keeps_every_value_in_one_of_the_columns(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id TEXT PRIMARY KEY)")
        conn.execute("CREATE TABLE polls (id SERIAL, user_id TEXT)")
        conn.execute("INSERT INTO users VALUES ('u1'), ('u2')")
        conn.execute("INSERT INTO polls (user_id) VALUES ('u1'), ('g1'), ('u2'), ('g2'), (NULL)")
        conn.execute('ALTER TABLE "polls" ADD COLUMN "guest_id" TEXT')
        conn.execute(MOVE)
        rows = conn.execute("SELECT user_id, guest_id FROM polls ORDER BY id").fetchall()
    assert rows == [("u1", None), (None, "g1"), ("u2", None), (None, "g2"), (None, None)]
