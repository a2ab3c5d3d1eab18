"""A column a migration adds and drops again, holding only what that migration wrote (its
default and constants): its drop loses nothing older than the migration. documenso's
``20250522054050_add_organisations`` tags the teams it inserts with a temporary
``Team.isPersonal`` and drops it at the end. Any value that may come from older data (a
column, a subquery, a function, a ``COPY``, a ``DO`` block) keeps the drop blocking."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.safety.histories import static_findings

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)

CREATE = """
CREATE TABLE "User" ("id" INTEGER PRIMARY KEY, "name" TEXT);
CREATE TABLE "Team" ("id" SERIAL PRIMARY KEY, "name" TEXT, "ownerId" INTEGER);
"""

ADD = 'ALTER TABLE "Team" ADD COLUMN "isPersonal" BOOLEAN NOT NULL DEFAULT false;\n'
TAG = (
    'INSERT INTO "Team" ("name", "ownerId", "isPersonal") '
    'SELECT u."name", u."id", true FROM "User" u;\n'
)
DROP = 'ALTER TABLE "Team" DROP COLUMN "isPersonal";\n'


def drop(*files: str) -> str:
    found = static_findings(CREATE, *files, now=NOW)
    (verdict,) = [f for f in found if f.rule == "drop-column"]
    return verdict.severity


@pytest.mark.parametrize(
    "between",
    [
        "",
        'UPDATE "Team" SET "isPersonal" = false WHERE "ownerId" IS NULL;\n',
        'INSERT INTO "Team" ("name", "isPersonal") VALUES (\'a\', true), (\'b\', DEFAULT);\n',
        'UPDATE "Team" SET "name" = upper("name");\n',
    ],
    ids=["tagged-by-an-insert", "constant-update", "values", "another-column-rewritten"],
)
def test_a_temporary_column_holding_only_constants_loses_nothing(between: str) -> None:
    assert drop(ADD + TAG + between + DROP) == "info"


@pytest.mark.parametrize(
    "between",
    [
        'UPDATE "Team" SET "isPersonal" = ("ownerId" IS NOT NULL);\n',
        'UPDATE "Team" SET "isPersonal" = (SELECT true FROM "User" LIMIT 1);\n',
        'INSERT INTO "Team" ("name", "isPersonal") VALUES (\'a\', my_flag());\n',
        'INSERT INTO "Team" SELECT * FROM "Team";\n',
        "COPY \"Team\" FROM '/tmp/teams.csv';\n",
        "DO $$ BEGIN PERFORM 1; END $$;\n",
        'ALTER TABLE "Team" ALTER COLUMN "isPersonal" TYPE TEXT USING "name";\n',
        'CREATE TRIGGER "tag" BEFORE UPDATE ON "Team" FOR EACH ROW EXECUTE FUNCTION tag();\n'
        'UPDATE "Team" SET "name" = "name";\n',
    ],
    ids=[
        "from-a-column",
        "from-a-subquery",
        "from-a-function",
        "no-column-list",
        "copy",
        "do-block",
        "using",
        "trigger",
    ],
)
def test_a_value_that_may_be_older_keeps_the_drop_blocking(between: str) -> None:
    assert drop(ADD + TAG + between + DROP) == "data-loss"


def test_a_column_added_by_an_earlier_migration_may_hold_anything() -> None:
    """Between the two deployments the application writes the column."""
    assert drop(ADD + TAG, DROP) == "data-loss"


def test_the_message_says_why() -> None:
    (found,) = [
        f for f in static_findings(CREATE, ADD + TAG + DROP, now=NOW) if f.rule == "drop-column"
    ]
    assert found.message == (
        "drops Team.isPersonal: added by this migration and written only with its default "
        "and constants, nothing older: nothing is lost"
    )
