"""A text column wrapped into a JSON object and dropped loses nothing when each value sits
whole under a key of its own and the rows skipped hold nothing (rallly's
``20260525130443_structured_location_and_conferencing``): static lint reads it as a copy.
Any other shape still blocks the drop. On PostgreSQL, the value reads back from the object.
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from reconciler.safety.findings import Finding
from tests.safety.histories import static_findings

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)

CREATE = """
CREATE TABLE "events" ("id" TEXT NOT NULL, "location" TEXT, "kind" TEXT, "room" INTEGER,
                       "weight" DOUBLE PRECISION, "notes" JSONB,
                       CONSTRAINT "events_pkey" PRIMARY KEY ("id"));
"""

WRAP = """
ALTER TABLE "events" ADD COLUMN "location_json" JSONB;
UPDATE "events"
SET "location_json" = jsonb_build_object('provider', 'custom', 'address', "location")
WHERE "location" IS NOT NULL AND "location" <> '';
ALTER TABLE "events" DROP COLUMN "location";
ALTER TABLE "events" RENAME COLUMN "location_json" TO "location";
"""


def lint(*files: str) -> list[Finding]:
    """Findings of the last of ``files``, linted as one history folder after ``CREATE``."""
    return static_findings(CREATE, *files, now=NOW)


def drop_severity(found: list[Finding]) -> str:
    (severity,) = {f.severity for f in found if f.rule == "drop-column"}
    return severity


def test_a_value_wrapped_under_its_own_key_is_kept() -> None:
    found = lint(WRAP)
    assert drop_severity(found) == "info"
    (drop,) = [f for f in found if f.rule == "drop-column"]
    assert "kept under its own key of a JSON object in events.location_json" in drop.message
    (rule2,) = [f for f in found if f.rule == "expand-contract-same-migration"]
    assert rule2.severity == "compat"  # kept, but the deployed application reads text
    assert {f.severity for f in found} <= {"info", "compat", "locking"}


@pytest.mark.parametrize(
    "where",
    [
        "",
        'WHERE "location" IS NOT NULL',
        "WHERE \"location\" != ''",
        'WHERE "location_json" IS NULL',
    ],
)
def test_rows_skipped_only_when_empty_or_unwritten_keep_the_copy(where: str) -> None:
    sql = (
        'ALTER TABLE "events" ADD COLUMN "location_json" JSONB;\n'
        'UPDATE "events" SET "location_json" = '
        f"jsonb_build_object('address', \"location\") {where};\n"
        'ALTER TABLE "events" DROP COLUMN "location";\n'
    )
    assert drop_severity(lint(sql)) == "info"


@pytest.mark.parametrize(
    "change",
    [
        # another column in the object: the update still copies, but not this shape
        ("'address', \"location\"", "'address', \"location\", 'kind', \"kind\""),
        # a key written twice: the later value hides the earlier one
        ("'provider', 'custom'", "'address', 'custom'"),
        # an expression of the value, not the value
        ("'address', \"location\"", "'address', lower(\"location\")"),
        # rows skipped for another column's sake may hold a location
        ("AND \"location\" <> ''", "AND \"kind\" = 'venue'"),
        ('"location" IS NOT NULL AND "location" <> \'\'', '"kind" IS NOT NULL'),
        # a filtered copy into a column that was not added empty
        ('ADD COLUMN "location_json" JSONB', 'ADD COLUMN "spare" JSONB'),
    ],
    ids=["two-columns", "duplicate-key", "expression", "other-filter", "other-column", "old"],
)
def test_anything_else_still_blocks_the_drop(change: tuple[str, str]) -> None:
    sql = WRAP.replace(*change)
    if change[1].startswith('ADD COLUMN "spare"'):
        sql = sql.replace('RENAME COLUMN "location_json"', 'RENAME COLUMN "notes"')
        sql = sql.replace('SET "location_json"', 'SET "notes"')
    assert drop_severity(lint(sql)) == "data-loss"


@pytest.mark.parametrize(("column", "severity"), [("room", "info"), ("weight", "data-loss")])
def test_only_types_json_holds_exactly_count(column: str, severity: str) -> None:
    """A float's NaN and infinities have no JSON number: a wrapped float is not a copy."""
    sql = (
        'ALTER TABLE "events" ADD COLUMN "wrapped" JSONB;\n'
        f'UPDATE "events" SET "wrapped" = jsonb_build_object(\'v\', "{column}");\n'
        f'ALTER TABLE "events" DROP COLUMN "{column}";\n'
    )
    assert drop_severity(lint(sql)) == severity


def test_on_postgresql_every_location_reads_back_from_the_object(pg_url: str) -> None:
    """The premise, on rows: each non-empty value comes back from ``->> 'address'``, an
    empty one is NULL (it held nothing), and no other row changes."""
    values = ["12 Rue de Rivoli", 'Room 4 "B"', "ünïcode ✓", "", None, "  spaced  "]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(CREATE)
        for number, value in enumerate(values):
            conn.execute(
                'INSERT INTO "events" ("id", "location") VALUES (%s, %s)', (str(number), value)
            )
        before = dict(conn.execute('SELECT "id", "location" FROM "events"').fetchall())
        conn.execute(WRAP)
        after = dict(
            conn.execute(
                'SELECT "id", "location" ->> \'address\' FROM "events" ORDER BY "id"'
            ).fetchall()
        )
    assert after == {k: (v if v else None) for k, v in before.items()}
