"""Static lint follows copies: a drop whose every value was copied whole elsewhere first is
``info``; a partial or lossy copy still blocks (``reconciler.safety.copies``).

Each case is a history as ``lint PATH`` reads it: files of one Prisma folder, judged one by
one with no database, the earlier ones telling the later ones what they created and copied.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.safety.analyse import judge_batch, parse_migration
from reconciler.safety.findings import Finding
from reconciler.source.base import Migration
from tests.safety.histories import static_findings

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

CREATE = """
CREATE TABLE "users" ("id" SERIAL NOT NULL, "name" TEXT, "code" VARCHAR(20),
                      "score" NUMERIC(10, 2), "seen" TIMESTAMP(3), "status" TEXT);
CREATE TYPE "Status" AS ENUM ('active', 'gone');
CREATE TABLE "archive" ("id" INTEGER, "full_name" TEXT, "seen" TIMESTAMP(3));
"""


def lint(*files: str) -> list[Finding]:
    """Findings of the last of ``files``, linted as one history folder after ``CREATE``."""
    return static_findings(CREATE, *files, now=NOW)


def drops(found: list[Finding]) -> list[tuple[str, str]]:
    return [(f.rule, f.severity) for f in found if f.rule in ("drop-column", "drop-table")]


@dataclass(frozen=True)
class Case:
    id: str
    files: tuple[str, ...]
    severity: str
    """Of the drop-column (or drop-table) finding: info when every value went elsewhere."""


CASES = [
    Case(
        "copied-then-dropped",
        (
            'ALTER TABLE "users" ADD COLUMN "full_name" TEXT;\n'
            'UPDATE "users" SET "full_name" = "name";\n'
            'ALTER TABLE "users" DROP COLUMN "name";\n',
        ),
        "info",
    ),
    Case(
        "copied-in-an-earlier-migration",
        (
            'ALTER TABLE "users" ADD COLUMN "full_name" TEXT;\n'
            'UPDATE "users" SET "full_name" = "name";\n',
            'ALTER TABLE "users" DROP COLUMN "name";\n',
        ),
        "data-loss",
    ),
    Case(
        "fill-of-a-column-added-empty",
        (
            'ALTER TABLE "users" ADD COLUMN "full_name" TEXT;\n'
            'UPDATE "users" SET "full_name" = "name" WHERE "full_name" IS NULL;\n'
            'ALTER TABLE "users" DROP COLUMN "name";\n',
        ),
        "info",
    ),
    Case(
        "cast-to-an-enum-then-renamed-back",
        (
            'ALTER TABLE "users" ADD COLUMN "status_enum" "Status";\n'
            'UPDATE "users" SET "status_enum" = "status"::"Status";\n'
            'ALTER TABLE "users" DROP COLUMN "status";\n'
            'ALTER TABLE "users" RENAME COLUMN "status_enum" TO "status";\n',
        ),
        "info",
    ),
    Case(
        "widening-cast",
        (
            'ALTER TABLE "users" ADD COLUMN "code2" TEXT;\n'
            'UPDATE "users" SET "code2" = "code"::TEXT;\n'
            'ALTER TABLE "users" DROP COLUMN "code";\n',
        ),
        "info",
    ),
    Case(
        "every-column-of-a-table-inserted-elsewhere",
        (
            'INSERT INTO "users" ("id", "name", "code", "score", "seen", "status") '
            'SELECT "id", "full_name", "id"::TEXT, "id", "seen", \'x\' FROM "archive";\n'
            'DROP TABLE "archive";\n',
        ),
        "info",
    ),
    # What stays blocking: a copy that may skip rows or change values.
    Case(
        "copy-with-a-where",
        (
            'ALTER TABLE "users" ADD COLUMN "full_name" TEXT;\n'
            'UPDATE "users" SET "full_name" = "name" WHERE "id" > 10;\n'
            'ALTER TABLE "users" DROP COLUMN "name";\n',
        ),
        "data-loss",
    ),
    Case(
        "fill-of-a-column-that-may-hold-values",
        (
            'UPDATE "users" SET "status" = "name" WHERE "status" IS NULL;\n'
            'ALTER TABLE "users" DROP COLUMN "name";\n',
        ),
        "data-loss",
    ),
    Case(
        "join-that-may-not-match-every-row",
        (
            'UPDATE "archive" SET "full_name" = u."name" FROM "users" u '
            'WHERE u."id" = "archive"."id";\n'
            'ALTER TABLE "users" DROP COLUMN "name";\n',
        ),
        "data-loss",
    ),
    Case(
        "lossy-function",
        (
            'ALTER TABLE "users" ADD COLUMN "short" TEXT;\n'
            'UPDATE "users" SET "short" = left("name", 3);\n'
            'ALTER TABLE "users" DROP COLUMN "name";\n',
        ),
        "data-loss",
    ),
    Case(
        "cast-to-boolean",
        (
            'ALTER TABLE "users" ADD COLUMN "was_seen" BOOLEAN;\n'
            'UPDATE "users" SET "was_seen" = "seen"::BOOLEAN;\n'
            'ALTER TABLE "users" DROP COLUMN "seen";\n',
        ),
        "data-loss",
    ),
    Case(
        "cast-to-date",
        (
            'ALTER TABLE "users" ADD COLUMN "day" DATE;\n'
            'UPDATE "users" SET "day" = "seen"::DATE;\n'
            'ALTER TABLE "users" DROP COLUMN "seen";\n',
        ),
        "data-loss",
    ),
    Case(
        "assignment-that-rounds",
        (
            'ALTER TABLE "users" ADD COLUMN "whole" INTEGER;\n'
            'UPDATE "users" SET "whole" = "score";\n'
            'ALTER TABLE "users" DROP COLUMN "score";\n',
        ),
        "data-loss",
    ),
    Case(
        "explicit-cast-that-cuts-text",
        (
            'ALTER TABLE "users" ADD COLUMN "tiny" TEXT;\n'
            'UPDATE "users" SET "tiny" = "name"::VARCHAR(3);\n'
            'ALTER TABLE "users" DROP COLUMN "name";\n',
        ),
        "data-loss",
    ),
    Case(
        "target-overwritten-after-the-copy",
        (
            'ALTER TABLE "users" ADD COLUMN "full_name" TEXT;\n'
            'UPDATE "users" SET "full_name" = "name";\n'
            'UPDATE "users" SET "full_name" = \'x\' WHERE "id" = 1;\n'
            'ALTER TABLE "users" DROP COLUMN "name";\n',
        ),
        "data-loss",
    ),
    Case(
        "target-dropped-in-between",
        (
            'ALTER TABLE "users" ADD COLUMN "full_name" TEXT;\n'
            'UPDATE "users" SET "full_name" = "name";\n',
            'ALTER TABLE "users" DROP COLUMN "full_name";\n',
            'ALTER TABLE "users" DROP COLUMN "name";\n',
        ),
        "data-loss",
    ),
    Case(
        "rows-inserted-after-the-copy",
        (
            'ALTER TABLE "users" ADD COLUMN "full_name" TEXT;\n'
            'UPDATE "users" SET "full_name" = "name";\n'
            'INSERT INTO "users" ("name") VALUES (\'late\');\n'
            'ALTER TABLE "users" DROP COLUMN "name";\n',
        ),
        "data-loss",
    ),
    Case(
        "source-rewritten-after-the-copy",
        (
            'ALTER TABLE "users" ADD COLUMN "full_name" TEXT;\n'
            'UPDATE "users" SET "full_name" = "name";\n'
            'UPDATE "users" SET "name" = upper("name");\n'
            'ALTER TABLE "users" DROP COLUMN "name";\n',
        ),
        "data-loss",
    ),
    Case(
        "do-block-after-the-copy",
        (
            'ALTER TABLE "users" ADD COLUMN "full_name" TEXT;\n'
            'UPDATE "users" SET "full_name" = "name";\n'
            "DO $$ BEGIN PERFORM 1; END $$;\n"
            'ALTER TABLE "users" DROP COLUMN "name";\n',
        ),
        "data-loss",
    ),
    Case(
        "insert-select-with-a-where",
        (
            'INSERT INTO "users" ("id", "name", "seen") '
            'SELECT "id", "full_name", "seen" FROM "archive" WHERE "id" > 1;\n'
            'DROP TABLE "archive";\n',
        ),
        "data-loss",
    ),
    Case(
        "insert-select-distinct",
        (
            'INSERT INTO "users" ("id", "name", "seen") '
            'SELECT DISTINCT "id", "full_name", "seen" FROM "archive";\n'
            'DROP TABLE "archive";\n',
        ),
        "data-loss",
    ),
    Case(
        "insert-select-group-by",
        (
            'INSERT INTO "users" ("id", "name", "seen") '
            'SELECT min("id"), "full_name", max("seen") FROM "archive" GROUP BY "full_name";\n'
            'DROP TABLE "archive";\n',
        ),
        "data-loss",
    ),
    Case(
        "insert-select-leaving-a-column-out",
        (
            'INSERT INTO "users" ("id", "name") SELECT "id", "full_name" FROM "archive";\n'
            'DROP TABLE "archive";\n',
        ),
        "data-loss",
    ),
    Case(
        "insert-select-on-conflict-do-nothing",
        (
            'INSERT INTO "users" ("id", "name", "seen") '
            'SELECT "id", "full_name", "seen" FROM "archive" ON CONFLICT DO NOTHING;\n'
            'DROP TABLE "archive";\n',
        ),
        "data-loss",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_drop_is_info_only_when_every_value_was_copied_whole(case: Case) -> None:
    found = drops(lint(*case.files))
    assert found, "the drop is reported"
    assert {severity for _, severity in found} == {case.severity}


def test_the_message_names_where_the_values_went() -> None:
    (finding,) = [
        f
        for f in lint(
            'ALTER TABLE "users" ADD COLUMN "full_name" TEXT;\n'
            'UPDATE "users" SET "full_name" = "name";\n'
            'ALTER TABLE "users" DROP COLUMN "name";\n',
        )
        if f.rule == "drop-column"
    ]
    assert finding.message == (
        "drops users.name: every value was copied whole to users.full_name "
        "(20261101000000_step, line 2) first: nothing is lost"
    )


def test_a_copy_by_an_earlier_migration_is_named_but_does_not_count() -> None:
    """Between the two deployments the application writes rows the copy does not hold,
    unless it writes both columns: no file shows which (``test_copies_tied`` shows it on
    PostgreSQL)."""
    (finding,) = [
        f
        for f in lint(
            'ALTER TABLE "users" ADD COLUMN "full_name" TEXT;\n'
            'UPDATE "users" SET "full_name" = "name";\n',
            'ALTER TABLE "users" DROP COLUMN "name";\n',
        )
        if f.rule == "drop-column"
    ]
    assert finding.severity == "data-loss"
    assert finding.message == (
        "drops users.name: copied whole to users.full_name (20261101000000_step, line 2) by "
        "an earlier migration; rows written since are kept only if the application writes "
        "both columns (static analysis: live data unknown)"
    )


def test_golden_rule_2_warns_for_the_application_when_the_values_are_kept() -> None:
    found = lint(
        'ALTER TABLE "users" ADD COLUMN "full_name" TEXT;\n'
        'UPDATE "users" SET "full_name" = "name";\n'
        'ALTER TABLE "users" DROP COLUMN "name";\n'
    )
    (rule2,) = [f for f in found if f.rule == "expand-contract-same-migration"]
    assert rule2.severity == "compat"
    assert "the deployed application may still read the old column" in rule2.message


def test_copies_are_not_carried_into_another_history() -> None:
    copy = (
        'ALTER TABLE "users" ADD COLUMN "full_name" TEXT;\n'
        'UPDATE "users" SET "full_name" = "name";\n'
    )
    drop = 'ALTER TABLE "users" DROP COLUMN "name";\n'
    batch = []
    for mid, folder, sql in (("20261101000000_a", "one", copy), ("20261102000000_b", "two", drop)):
        path = Path(f"/{folder}/prisma/migrations/{mid}/migration.sql")
        found = Migration(mid, "x", path, hashlib.sha256(sql.encode()).hexdigest())
        batch.append(parse_migration(found, sql, "postgresql"))
    results = judge_batch(batch, None, now=NOW, grace_seconds=0, live_batch=False)
    assert drops(results["20261102000000_b"]) == [("drop-column", "data-loss")]


def test_an_enum_recreated_with_every_old_value_removes_none() -> None:
    create = (
        "CREATE TYPE \"Source\" AS ENUM ('user', 'zapier');\n"
        'CREATE TABLE "hooks" ("id" SERIAL NOT NULL, "source" "Source" NOT NULL);\n'
    )
    recreate = (
        'ALTER TYPE "Source" RENAME TO "OldSource";\n'
        "CREATE TYPE \"Source\" AS ENUM ('user', 'zapier', 'make');\n"
        'ALTER TABLE "hooks" ALTER COLUMN "source" TYPE "Source" USING "source"::text::"Source";\n'
        'DROP TYPE "OldSource";\n'
    )
    (kept,) = [f for f in lint(create, recreate) if f.rule == "enum-value-removed"]
    assert kept.severity == "info"
    assert "keeps every value of the old type (user, zapier)" in kept.message
    narrower = recreate.replace("'user', 'zapier', 'make'", "'user', 'make'")
    (removed,) = [f for f in lint(create, narrower) if f.rule == "enum-value-removed"]
    assert removed.severity == "data-loss"


def test_overwriting_a_column_this_migration_added_loses_nothing() -> None:
    found = lint(
        'ALTER TABLE "users" ADD COLUMN "limit" INTEGER;\n'
        'UPDATE "users" SET "limit" = 5;\n'
        'UPDATE "users" SET "limit" = 10 WHERE "status" = \'enterprise\';\n'
    )
    assert {f.severity for f in found if f.rule == "update-overwrites"} == {"info"}


def test_overwriting_the_only_copy_of_a_dropped_column_still_blocks() -> None:
    found = lint(
        'ALTER TABLE "users" ADD COLUMN "full_name" TEXT;\n'
        'UPDATE "users" SET "full_name" = "name";\n'
        'ALTER TABLE "users" DROP COLUMN "name";\n'
        'UPDATE "users" SET "full_name" = \'x\';\n'
    )
    (last,) = [f for f in found if f.rule == "update-overwrites" and f.line == 4]
    assert last.severity == "data-loss"


def test_overwriting_a_column_an_earlier_migration_added_still_blocks() -> None:
    found = lint(
        'ALTER TABLE "users" ADD COLUMN "limit" INTEGER;\n',
        'UPDATE "users" SET "limit" = 10;\n',
    )
    assert [f.severity for f in found if f.rule == "update-overwrites"] == ["data-loss"]


LINKED = (
    'CREATE TABLE "Document" ("id" SERIAL NOT NULL,\n'
    '    CONSTRAINT "Document_pkey" PRIMARY KEY ("id"));\n'
    'CREATE TABLE "DocumentData" ("id" TEXT NOT NULL, "documentId" INTEGER);\n'
    'ALTER TABLE "DocumentData" ADD CONSTRAINT "DocumentData_pkey" PRIMARY KEY ("id");\n'
    'CREATE UNIQUE INDEX "DocumentData_documentId_key" ON "DocumentData"("documentId");\n'
    'ALTER TABLE "DocumentData" ADD CONSTRAINT "DocumentData_documentId_fkey" '
    'FOREIGN KEY ("documentId") REFERENCES "Document"("id");\n'
)
TURN = (
    'ALTER TABLE "DocumentData" DROP CONSTRAINT "DocumentData_documentId_fkey";\n'
    'DROP INDEX "DocumentData_documentId_key";\n'
    'ALTER TABLE "Document" ADD COLUMN "documentDataId" TEXT;\n'
    'UPDATE "Document" SET "documentDataId" = "DocumentData"."id" FROM "DocumentData" '
    'WHERE "Document"."id" = "DocumentData"."documentId";\n'
    'ALTER TABLE "Document" ALTER COLUMN "documentDataId" SET NOT NULL;\n'
    'ALTER TABLE "DocumentData" DROP COLUMN "documentId";\n'
)
TURN_BY_SUBQUERY = TURN.replace(
    'UPDATE "Document" SET "documentDataId" = "DocumentData"."id" FROM "DocumentData" '
    'WHERE "Document"."id" = "DocumentData"."documentId";',
    'UPDATE "Document" SET "documentDataId" = (SELECT "DocumentData"."id" FROM "DocumentData" '
    'WHERE "DocumentData"."documentId" = "Document"."id");',
)
"""The same link turned around by a scalar subquery over every row, as documenso's
``20230922121421_fix_document_meta_schema`` writes it."""
LINK_CASES = [
    ("turned-around", (LINKED, TURN), "info"),
    (
        "no-foreign-key",
        (LINKED.replace("FOREIGN KEY", "UNIQUE").split(" REF")[0] + ";\n", TURN),
        "data-loss",
    ),
    ("no-unique-key", (LINKED.replace("UNIQUE INDEX", "INDEX"), TURN), "data-loss"),
    (
        "no-key-on-the-value",
        (LINKED.replace('"DocumentData_pkey" PRIMARY KEY', '"DocumentData_x" CHECK'), TURN),
        "data-loss",
    ),
    (
        "write-after-the-foreign-key-went",
        (LINKED, TURN.replace("DROP INDEX", 'DELETE FROM "Document" WHERE "id" = 1;\nDROP INDEX')),
        "data-loss",
    ),
    (
        "foreign-key-dropped-a-migration-earlier",
        (
            LINKED,
            'ALTER TABLE "DocumentData" DROP CONSTRAINT "DocumentData_documentId_fkey";\n',
            TURN.split("\n", 1)[1],
        ),
        "data-loss",
    ),
    (
        "join-with-another-condition",
        (
            LINKED,
            TURN.replace(
                '"DocumentData"."documentId";',
                '"DocumentData"."documentId" AND "Document"."id" > 5;',
            ),
        ),
        "data-loss",
    ),
    ("turned-around-by-a-subquery", (LINKED, TURN_BY_SUBQUERY), "info"),
    (
        "subquery-with-a-bare-value",
        (LINKED, TURN_BY_SUBQUERY.replace('"DocumentData"."id"', '"id"')),
        "info",
    ),
    (
        "subquery-without-the-unique-key",
        (LINKED.replace("UNIQUE INDEX", "INDEX"), TURN_BY_SUBQUERY),
        "data-loss",
    ),
    (
        "subquery-with-another-condition",
        (
            LINKED,
            TURN_BY_SUBQUERY.replace(
                '"Document"."id")', '"Document"."id" AND "Document"."id" > 5)'
            ),
        ),
        "data-loss",
    ),
    (
        "subquery-on-some-rows",
        (LINKED, TURN_BY_SUBQUERY.replace('"Document"."id");', '"Document"."id") WHERE "id" > 5;')),
        "data-loss",
    ),
    (
        "subquery-reading-the-value-elsewhere",
        (
            LINKED,
            TURN_BY_SUBQUERY.replace(
                'SELECT "DocumentData"."id"', 'SELECT max("DocumentData"."id")'
            ),
        ),
        "data-loss",
    ),
]


@pytest.mark.parametrize(
    ("files", "severity"), [c[1:] for c in LINK_CASES], ids=[c[0] for c in LINK_CASES]
)
def test_a_link_turned_around_is_kept_only_under_a_foreign_and_a_unique_key(
    files: tuple[str, ...], severity: str
) -> None:
    (drop,) = [f for f in lint(*files) if f.rule == "drop-column"]
    assert drop.severity == severity
    if severity == "info":
        assert (
            "DocumentData.documentId: every value was turned around into Document" in drop.message
        )


def test_deleting_rows_that_hold_no_copied_value_keeps_the_copy() -> None:
    prune = 'DELETE FROM "Document" WHERE "documentDataId" IS NULL;\n'
    before = 'ALTER TABLE "Document" ALTER COLUMN'
    assert drops(lint(LINKED, TURN.replace(before, prune + before))) == [("drop-column", "info")]
    other = prune.replace('"documentDataId" IS NULL', '"id" > 3')
    assert drops(lint(LINKED, TURN.replace(before, other + before))) == [
        ("drop-column", "data-loss")
    ]


MAPPED = (
    "CREATE TYPE \"Interval\" AS ENUM ('day', 'month', 'year');\n"
    'ALTER TABLE "users" ADD COLUMN "interval" "Interval";\n'
    'UPDATE "users" SET "interval" = CASE WHEN "status" = \'monthly\' THEN \'month\'::"Interval"\n'
    "    WHEN \"status\" = 'yearly' THEN 'year'::\"Interval\" ELSE NULL END;\n"
    'ALTER TABLE "users" ALTER COLUMN "interval" SET NOT NULL;\n'
    'ALTER TABLE "users" DROP COLUMN "status";\n'
)
MAPPED_CASES = [
    ("one-to-one-then-not-null", MAPPED, "info"),
    (
        "no-set-not-null",
        MAPPED.replace('ALTER TABLE "users" ALTER COLUMN "interval" SET NOT NULL;\n', ""),
        "data-loss",
    ),
    ("two-values-folded", MAPPED.replace("'year'::", "'month'::"), "data-loss"),
    ("an-else-value", MAPPED.replace("ELSE NULL", "ELSE 'day'"), "data-loss"),
    ("a-where", MAPPED.replace("ELSE NULL END;", 'ELSE NULL END WHERE "id" > 1;'), "data-loss"),
    (
        "a-write-before-not-null",
        MAPPED.replace(
            'ALTER TABLE "users" ALTER COLUMN',
            'INSERT INTO "users" ("status") VALUES (\'weekly\');\nALTER TABLE "users" ALTER COLUMN',
        ),
        "data-loss",
    ),
    (
        "into-a-number",
        MAPPED.replace('"Interval";\n', "INTEGER;\n", 1).replace('::"Interval"', ""),
        "data-loss",
    ),
]


@pytest.mark.parametrize(
    ("sql", "severity"), [c[1:] for c in MAPPED_CASES], ids=[c[0] for c in MAPPED_CASES]
)
def test_a_case_mapping_counts_once_set_not_null_proves_every_value_was_mapped(
    sql: str, severity: str
) -> None:
    assert drops(lint(sql)) == [("drop-column", severity)]
