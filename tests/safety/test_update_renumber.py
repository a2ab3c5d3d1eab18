"""An UPDATE that renumbers a column 1, 2, 3... in the column's own order keeps the order,
which is all such a column means (hoppscotch's ``fix_order_index`` migrations): it is
``info``, in static lint, in a live plan and through the gate in production. Renumbered by
another column, with ``rank()``, over part of the rows, or joined on columns that are not a
key, rows can change places or end up equal: that still blocks.

The premises are checked on PostgreSQL with rows: the renumbering keeps each group's order
and breaks ties; ``rank()`` gives tied rows one number; numbers written as text sort as text.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from click.testing import Result

from tests.schema.alembic_scripts import query

Cli = Callable[..., Result]

SCHEMA = """\
CREATE TABLE "TeamCollection" (
    "id" TEXT NOT NULL,
    "teamID" TEXT NOT NULL,
    "parentID" TEXT,
    "title" TEXT NOT NULL,
    "orderIndex" INTEGER NOT NULL,
    "position" TEXT,
    "createdOn" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "TeamCollection_pkey" PRIMARY KEY ("id")
);
CREATE TABLE "Loose" (
    "id" TEXT,
    "teamID" TEXT NOT NULL,
    "orderIndex" INTEGER NOT NULL,
    "createdOn" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
"""

RENUMBER = """\
-- Recalculate orderIndex for TeamCollection per (teamID, parentID)
WITH ordered AS (
  SELECT
    id,
    ROW_NUMBER() OVER (
      PARTITION BY "teamID", "parentID"
      ORDER BY "orderIndex" ASC, "createdOn" ASC, id ASC
    ) AS new_index
  FROM "TeamCollection"
)
UPDATE "TeamCollection" tc
SET "orderIndex" = o.new_index
FROM ordered o
WHERE tc.id = o.id;
"""

SUBQUERY_DESC = """\
UPDATE "TeamCollection" SET "orderIndex" = n.rn
FROM (SELECT c.id, row_number() OVER (PARTITION BY c."teamID" ORDER BY c."orderIndex" DESC)
      AS rn FROM "TeamCollection" c) AS n
WHERE n.id = "TeamCollection".id;
"""

LOOSE = """\
WITH ordered AS (
  SELECT id, ROW_NUMBER() OVER (PARTITION BY "teamID" ORDER BY "orderIndex", id) AS new_index
  FROM "Loose"
)
UPDATE "Loose" l SET "orderIndex" = o.new_index FROM ordered o WHERE l.id = o.id;
"""

BLOCKING = {
    "other-order": RENUMBER.replace(
        'ORDER BY "orderIndex" ASC, "createdOn" ASC', 'ORDER BY "createdOn" ASC, "orderIndex" ASC'
    ),
    "rank": RENUMBER.replace("ROW_NUMBER()", "RANK()"),
    "dense-rank": RENUMBER.replace("ROW_NUMBER()", "DENSE_RANK()"),
    "not-a-key": RENUMBER.replace("    id,\n", "    title,\n").replace(
        "tc.id = o.id", "tc.title = o.title"
    ),
    "no-key-declared": LOOSE,
    "part-of-the-rows": RENUMBER.replace(
        'FROM "TeamCollection"\n)', 'FROM "TeamCollection" WHERE "parentID" IS NOT NULL\n)'
    ),
    "more-than-the-key": RENUMBER.replace(
        "tc.id = o.id", 'tc.id = o.id AND tc."parentID" IS NOT NULL'
    ),
    "text-column": RENUMBER.replace('"orderIndex"', '"position"'),
    "partitioned-by-itself": RENUMBER.replace(
        'PARTITION BY "teamID", "parentID"', 'PARTITION BY "teamID", "orderIndex"'
    ),
}


def folder(tmp_path: Path, update: str) -> Path:
    migrations = tmp_path / "migrations"
    for name, sql in (("20250101000000_init", SCHEMA), ("20250818154928_fix_order_index", update)):
        (migrations / name).mkdir(parents=True)
        (migrations / name / "migration.sql").write_text(sql, encoding="utf-8")
    (migrations / "migration_lock.toml").write_text('provider = "postgresql"\n')
    return migrations


# -- static lint ------------------------------------------------------------------------------


@pytest.mark.parametrize("update", [RENUMBER, SUBQUERY_DESC], ids=["cte", "subquery-desc"])
def test_static_lint_lets_a_renumbering_in_its_own_order_pass(
    cli: Cli, tmp_path: Path, update: str
) -> None:
    linted = cli("lint", folder(tmp_path, update))
    assert linted.exit_code == 0, linted.output
    assert "renumbers TeamCollection.orderIndex 1, 2, 3... within each (teamID" in linted.output
    assert "joined back on the key (id)" in linted.output


def test_a_primary_key_dropped_and_written_since_proves_nothing(cli: Cli, tmp_path: Path) -> None:
    update = (
        'ALTER TABLE "TeamCollection" DROP CONSTRAINT "TeamCollection_pkey";\n'
        """INSERT INTO "TeamCollection" (id, "teamID", title, "orderIndex")"""
        ' SELECT id, "teamID", title, 0 FROM "TeamCollection";\n' + RENUMBER
    )
    linted = cli("lint", folder(tmp_path, update))
    assert linted.exit_code == 1, linted.output
    assert "overwrites TeamCollection.orderIndex" in linted.output


@pytest.mark.parametrize("update", list(BLOCKING.values()), ids=list(BLOCKING))
def test_anything_short_of_it_still_blocks(cli: Cli, tmp_path: Path, update: str) -> None:
    linted = cli("lint", folder(tmp_path, update))
    assert linted.exit_code == 1, linted.output
    assert "update-overwrites" in linted.output
    assert "renumbers" not in linted.output


# -- the premises, on PostgreSQL --------------------------------------------------------------

ROWS = """\
INSERT INTO "TeamCollection" (id, "teamID", "parentID", title, "orderIndex", "createdOn")
VALUES ('a', 't1', NULL, 'A', 10, '2025-01-01'), ('b', 't1', NULL, 'A', 10, '2025-01-02'),
       ('c', 't1', NULL, 'C', 3, '2025-01-03'),  ('d', 't1', 'a', 'D', 7, '2025-01-01'),
       ('e', 't1', 'a', 'E', 9, '2025-01-01'),   ('f', 't2', NULL, 'F', 4, '2025-01-01'),
       ('g', 't2', NULL, 'G', 100, '2025-01-01')
"""


def groups(conn: psycopg.Connection[tuple[object, ...]], order: str) -> list[list[object]]:
    rows = conn.execute(
        f'SELECT "teamID", "parentID", id FROM "TeamCollection" ORDER BY "teamID", '
        f'"parentID" NULLS FIRST, {order}'
    ).fetchall()
    found: dict[tuple[object, object], list[object]] = {}
    for team, parent, key in rows:
        found.setdefault((team, parent), []).append(key)
    return list(found.values())


def test_postgresql_keeps_each_groups_order_and_breaks_ties(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute(ROWS)
        before = groups(conn, '"orderIndex", "createdOn", id')
        conn.execute(RENUMBER)
        assert groups(conn, '"orderIndex"') == before
        numbers = conn.execute(
            'SELECT "teamID", "parentID", array_agg("orderIndex" ORDER BY "orderIndex") '
            'FROM "TeamCollection" GROUP BY 1, 2 ORDER BY 1, 2 NULLS FIRST'
        ).fetchall()
    assert numbers == [("t1", None, [1, 2, 3]), ("t1", "a", [1, 2]), ("t2", None, [1, 2])]


def test_postgresql_gives_tied_rows_one_rank(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute(ROWS)
        conn.execute(BLOCKING["rank"].replace(', "createdOn" ASC, id ASC', ""))
        tied = conn.execute(
            """SELECT id, "orderIndex" FROM "TeamCollection" WHERE id IN ('a', 'b')"""
        ).fetchall()
    assert sorted(tied) == [("a", 2), ("b", 2)]  # a and b can no longer be told apart


def test_postgresql_sorts_numbers_written_as_text_as_text(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute(
            'INSERT INTO "TeamCollection" (id, "teamID", title, "orderIndex", "position") '
            "SELECT 'x' || n, 't3', 'X', n, n::text FROM generate_series(1, 10) n"
        )
        order = 'SELECT id FROM "TeamCollection" ORDER BY "position", id'
        before = conn.execute(order).fetchall()
        conn.execute(BLOCKING["text-column"])
        after = conn.execute(order).fetchall()
    assert before[-1] == ("x9",)
    assert after[-1] != ("x9",)  # '9' was last, '10' is not


# -- with live data: plan and apply in production ---------------------------------------------


def production(write_policy: Callable[[str], Path], pg_url: str, migrations: Path) -> Path:
    return write_policy(
        f"ledger: sqlite:///ledger.db\ntargets:\n  - name: app\n    environment: production\n"
        f"    database: {pg_url}\n    migrations: {{layout: prisma, path: {migrations}}}\n"
    )


def with_rows(cli: Cli, tmp_path: Path, pg_url: str, policy: Path, migrations: Path) -> None:
    """The init migration applied, then customer rows, then the renumbering pending."""
    (migrations / "20250818154928_fix_order_index").rename(tmp_path / "later")
    assert cli("apply", "-c", policy, "--yes").exit_code == 0
    query(pg_url, ROWS)
    query(
        pg_url,
        """INSERT INTO "Loose" (id, "teamID", "orderIndex") VALUES ('a', 't', 5), ('b', 't', 5)""",
    )
    (tmp_path / "later").rename(migrations / "20250818154928_fix_order_index")


@pytest.mark.parametrize("update", [RENUMBER, LOOSE], ids=["primary-key", "key-in-the-data"])
def test_production_applies_a_renumbering_without_approval(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path, pg_url: str, update: str
) -> None:
    migrations = folder(tmp_path, update)
    policy = production(write_policy, pg_url, migrations)
    with_rows(cli, tmp_path, pg_url, policy, migrations)

    planned = cli("plan", "-c", policy)
    assert planned.exit_code == 2, planned.output  # changes pending, none blocked
    assert "renumbers" in planned.output
    assert "[BLOCKS]" not in planned.output
    applied = cli("apply", "-c", policy, "--yes")
    assert applied.exit_code == 0, applied.output
    table = '"TeamCollection"' if update == RENUMBER else '"Loose"'
    numbers = query(pg_url, f'SELECT id, "orderIndex" FROM {table} ORDER BY id')
    expected = [("a", 1), ("b", 2)] if update == LOOSE else [("a", 2), ("b", 3), ("c", 1)]
    assert numbers[: len(expected)] == expected


@pytest.mark.parametrize(
    "update",
    [BLOCKING["other-order"], BLOCKING["rank"], BLOCKING["not-a-key"], LOOSE],
    ids=["other-order", "rank", "not-a-key", "duplicate-key-in-the-data"],
)
def test_production_still_blocks_the_others(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path, pg_url: str, update: str
) -> None:
    migrations = folder(tmp_path, update)
    policy = production(write_policy, pg_url, migrations)
    with_rows(cli, tmp_path, pg_url, policy, migrations)
    if update == LOOSE:  # two rows share a key: each may take either number
        query(pg_url, """INSERT INTO "Loose" (id, "teamID", "orderIndex") VALUES ('a', 't', 1)""")
    before = query(pg_url, 'SELECT id, "orderIndex" FROM "TeamCollection" ORDER BY id')

    applied = cli("apply", "-c", policy, "--yes")
    assert applied.exit_code == 3, applied.output
    assert "update-overwrites" in applied.output
    assert "renumbers" not in applied.output
    assert query(pg_url, 'SELECT id, "orderIndex" FROM "TeamCollection" ORDER BY id') == before
