"""Links carried through a mapping table (``reconciler.safety.links``), as documenso's
envelopes carry them: documents and templates become rows of ``Envelope`` that keep the old
key in ``secondaryId`` (``'document_' || id``), each child row is pointed at its envelope
through that column, and the old link column is dropped as the new one is made NOT NULL.

Static verdicts first (``lint PATH``, no database), then the premise on PostgreSQL with
rows: under the proof every child row still finds its own parent after the migration; in
each near miss the same SQL does lose links.
"""

from __future__ import annotations

import psycopg
import pytest

from reconciler.safety.findings import Finding
from tests.safety.test_copies_static import lint

MODEL = (
    'CREATE TABLE "Document" ("id" SERIAL NOT NULL, "title" TEXT NOT NULL,\n'
    '    CONSTRAINT "Document_pkey" PRIMARY KEY ("id"));\n'
    'CREATE TABLE "Template" ("id" SERIAL NOT NULL, "title" TEXT NOT NULL,\n'
    '    CONSTRAINT "Template_pkey" PRIMARY KEY ("id"));\n'
    'CREATE TABLE "Field" ("id" SERIAL NOT NULL, "documentId" INTEGER, "templateId" INTEGER,\n'
    '    CONSTRAINT "Field_pkey" PRIMARY KEY ("id"));\n'
    'ALTER TABLE "Field" ADD CONSTRAINT "Field_templateId_documentId_check" CHECK (\n'
    '    ("templateId" IS NULL AND "documentId" IS NOT NULL) OR\n'
    '    ("templateId" IS NOT NULL AND "documentId" IS NULL));\n'
    'CREATE TABLE "AuditLog" ("id" SERIAL NOT NULL, "documentId" INTEGER,\n'
    '    CONSTRAINT "AuditLog_pkey" PRIMARY KEY ("id"));\n'
)
ENVELOPES = (
    'CREATE TABLE "Envelope" ("id" TEXT NOT NULL, "secondaryId" TEXT NOT NULL,\n'
    '    "title" TEXT NOT NULL, CONSTRAINT "Envelope_pkey" PRIMARY KEY ("id"));\n'
    'ALTER TABLE "AuditLog" ADD COLUMN "envelopeId" TEXT;\n'
    'ALTER TABLE "Field" ADD COLUMN "envelopeId" TEXT;\n'
    'INSERT INTO "Envelope" ("id", "secondaryId", "title")\n'
    '    SELECT gen_random_uuid()::text, \'document_\' || d."id", d."title" '
    'FROM "Document" d;\n'
    'INSERT INTO "Envelope" ("id", "secondaryId", "title")\n'
    '    SELECT gen_random_uuid()::text, \'template_\' || t."id", t."title" '
    'FROM "Template" t;\n'
)
CARRY = (
    'UPDATE "AuditLog" SET "envelopeId" = e."id" FROM "Document" d\n'
    '    JOIN "Envelope" e ON e."secondaryId" = \'document_\' || d."id"\n'
    '    WHERE "AuditLog"."documentId" = d."id";\n'
    'UPDATE "Field" SET "envelopeId" = e."id" FROM "Document" d\n'
    '    JOIN "Envelope" e ON e."secondaryId" = \'document_\' || d."id"\n'
    '    WHERE "Field"."documentId" = d."id";\n'
    'UPDATE "Field" SET "envelopeId" = e."id" FROM "Template" t\n'
    '    JOIN "Envelope" e ON e."secondaryId" = \'template_\' || t."id"\n'
    '    WHERE "Field"."templateId" = t."id";\n'
)
DROP = (
    'ALTER TABLE "AuditLog" DROP COLUMN "documentId",\n'
    'ALTER COLUMN "envelopeId" SET NOT NULL;\n'
    'ALTER TABLE "Field" DROP COLUMN "documentId",\n'
    'DROP COLUMN "templateId",\n'
    'ALTER COLUMN "envelopeId" SET NOT NULL;\n'
)
KEY = 'CREATE UNIQUE INDEX "Envelope_secondaryId_key" ON "Envelope"("secondaryId");\n'
MIGRATION = ENVELOPES + CARRY + DROP + KEY

LOG, DOC, TPL = "AuditLog.documentId", "Field.documentId", "Field.templateId"
ALL = (LOG, DOC, TPL)


def verdicts(migration: str, model: str = MODEL) -> dict[str, str]:
    """The severity of each drop of a link column, by column."""
    found: list[Finding] = lint(model, migration)
    return {f.message.split()[1].rstrip(":"): f.severity for f in found if f.rule == "drop-column"}


def blocking(*columns: str) -> dict[str, str]:
    return {c: "data-loss" if c in columns else "info" for c in ALL}


def test_links_carried_through_the_mapping_table_are_kept() -> None:
    found = lint(MODEL, MIGRATION)
    assert verdicts(MIGRATION) == blocking()
    (log,) = [f for f in found if f.rule == "drop-column" and LOG in f.message]
    assert log.message == (
        "drops AuditLog.documentId: every value was kept as a link, through "
        "Envelope.secondaryId = 'document_' || documentId, in AuditLog.envelopeId "
        "(20261102000000_step, line 9) first: nothing is lost"
    )


def test_a_link_carried_is_no_rename_and_golden_rule_2_warns() -> None:
    found = lint(MODEL, MIGRATION)
    assert not [f for f in found if f.rule == "rename-as-drop-add"]
    assert {(f.message.split()[0], f.severity) for f in found if f.rule.startswith("expand")} == {
        ("AuditLog.documentId", "compat"),
        ("Field.documentId", "compat"),
        ("Field.templateId", "compat"),
    }


NEAR_MISSES = [
    ("no-key-on-the-mapping-column", MIGRATION.replace(KEY, ""), ALL),
    (
        "a-partial-key",
        MIGRATION.replace(KEY, KEY.replace(");", ") WHERE \"title\" <> '';")),
        ALL,
    ),
    (
        "the-key-after-a-commit",
        MIGRATION.replace(KEY, "COMMIT;\nBEGIN;\n" + KEY),
        ALL,
    ),
    (
        "set-not-null-after-a-commit",
        MIGRATION.replace(
            '"documentId",\nALTER COLUMN "envelopeId" SET NOT NULL;',
            '"documentId";\nCOMMIT;\nBEGIN;\nALTER TABLE "AuditLog" ALTER COLUMN "envelopeId" '
            "SET NOT NULL;",
        ),
        (LOG,),
    ),
    (
        "a-where-that-may-skip-rows-and-no-set-not-null",
        MIGRATION.replace(
            '"AuditLog"."documentId" = d."id";', '"AuditLog"."documentId" = d."id" AND d."id" > 1;'
        ).replace('"documentId",\nALTER COLUMN "envelopeId" SET NOT NULL;', '"documentId";'),
        (LOG,),
    ),
    (
        "the-new-column-filled-otherwise",
        MIGRATION.replace(
            DROP,
            'UPDATE "AuditLog" SET "envelopeId" = \'none\' WHERE "envelopeId" IS NULL;\n' + DROP,
        ),
        (LOG,),
    ),
    (
        "the-new-column-held-values",
        MIGRATION.replace('ALTER TABLE "AuditLog" ADD COLUMN "envelopeId" TEXT;\n', ""),
        (LOG,),
    ),
    (
        "the-mapping-table-written-after-the-carry",
        MIGRATION.replace(
            DROP, "INSERT INTO \"Envelope\" VALUES ('x', 'document_1', 'stray');\n" + DROP
        ),
        ALL,
    ),
    (
        "one-prefix-for-two-kinds-of-keys",
        MIGRATION.replace("'template_'", "'document_'"),
        (DOC, TPL),
    ),
    (
        "a-prefix-that-starts-the-other",
        MIGRATION.replace("'template_'", "'document_t'"),
        (DOC, TPL),
    ),
    (
        "not-the-key-itself",
        MIGRATION.replace(
            'JOIN "Envelope" e ON e."secondaryId" = \'document_\' || d."id"\n    WHERE "AuditLog"',
            'JOIN "Envelope" e ON e."secondaryId" = \'document_\' || (d."id" / 2)\n'
            '    WHERE "AuditLog"',
        ),
        (LOG,),
    ),
]


@pytest.mark.parametrize(
    ("migration", "blocked"), [c[1:] for c in NEAR_MISSES], ids=[c[0] for c in NEAR_MISSES]
)
def test_a_near_miss_still_blocks(migration: str, blocked: tuple[str, ...]) -> None:
    assert migration != MIGRATION
    assert verdicts(migration) == blocking(*blocked)


def test_without_a_check_keeping_the_links_apart_both_may_be_set() -> None:
    unchecked = MODEL.split('ALTER TABLE "Field" ADD CONSTRAINT')[0] + MODEL.split("NULL));\n")[1]
    assert "CHECK" not in unchecked
    assert verdicts(MIGRATION, unchecked) == blocking(DOC, TPL)


def test_a_check_added_not_valid_proves_nothing() -> None:
    loose = MODEL.replace("IS NULL));", "IS NULL)) NOT VALID;")
    assert verdicts(MIGRATION, loose) == blocking(DOC, TPL)


def test_a_check_dropped_before_proves_nothing() -> None:
    dropped = 'ALTER TABLE "Field" DROP CONSTRAINT "Field_templateId_documentId_check";\n'
    assert verdicts(dropped + MIGRATION) == blocking(DOC, TPL)


# -- on PostgreSQL, with rows ----------------------------------------------------------------

ROWS = (
    "INSERT INTO \"Document\" (\"title\") VALUES ('d1'), ('d2'), ('d3'), ('d4');\n"
    "INSERT INTO \"Template\" (\"title\") VALUES ('t1'), ('t2'), ('t3');\n"
    'INSERT INTO "Field" ("documentId", "templateId") VALUES\n'
    "    (1, NULL), (1, NULL), (2, NULL), (4, NULL), (NULL, 1), (NULL, 3), (NULL, 3);\n"
    'INSERT INTO "AuditLog" ("documentId") VALUES (1), (2), (2), (3), (4);\n'
)
BEFORE = (
    'SELECT \'log\', l."id", d."title" FROM "AuditLog" l JOIN "Document" d ON d."id" = '
    'l."documentId" UNION ALL SELECT \'field\', f."id", coalesce(d."title", t."title") '
    'FROM "Field" f LEFT JOIN "Document" d ON d."id" = f."documentId" '
    'LEFT JOIN "Template" t ON t."id" = f."templateId"'
)
AFTER = (
    'SELECT \'log\', l."id", e."title" FROM "AuditLog" l JOIN "Envelope" e ON e."id" = '
    'l."envelopeId" UNION ALL SELECT \'field\', f."id", e."title" FROM "Field" f '
    'JOIN "Envelope" e ON e."id" = f."envelopeId"'
)
"""Each child row with the title of its parent: the document or template it linked,
then the envelope it links (which holds the title its document or template had)."""


def migrate(url: str, migration: str, setup: str = "") -> tuple[set[object], set[object]]:
    """The links before and after ``migration``, run in one transaction as reconciler runs
    a script that manages none of its own."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(MODEL + ROWS + setup)
        before = set(conn.execute(BEFORE).fetchall())
        conn.execute("SET enable_mergejoin = off")
        conn.execute(f"BEGIN;\n{migration}\nCOMMIT;")
        return before, set(conn.execute(AFTER).fetchall())


def test_every_child_row_still_finds_its_parent(pg_url: str) -> None:
    before, after = migrate(pg_url, MIGRATION)
    assert before == after
    assert len(after) == 12
    with psycopg.connect(pg_url) as conn:  # and the old key, from the mapping column
        keys = conn.execute(
            'SELECT l."id", substr(e."secondaryId", 10)::int FROM "AuditLog" l '
            'JOIN "Envelope" e ON e."id" = l."envelopeId" ORDER BY l."id"'
        ).fetchall()
    assert keys == [(1, 1), (2, 2), (3, 2), (4, 3), (5, 4)]


def test_what_the_set_not_null_rules_out_fails_the_migration(pg_url: str) -> None:
    """A link no carry matched (the document is gone) leaves the new column NULL: the
    SET NOT NULL in the drop's own statement fails, and the drop rolls back with it."""
    with pytest.raises(psycopg.errors.NotNullViolation):
        migrate(pg_url, MIGRATION, 'INSERT INTO "AuditLog" ("documentId") VALUES (9);\n')
    with psycopg.connect(pg_url) as conn:
        assert conn.execute('SELECT count("documentId") FROM "AuditLog"').fetchone() == (6,)


def test_a_check_keeps_two_links_from_meeting(pg_url: str) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        migrate(pg_url, MIGRATION, 'INSERT INTO "Field" VALUES (99, 2, 2);')


def test_what_the_unique_key_rules_out_fails_the_migration(pg_url: str) -> None:
    stray = "INSERT INTO \"Envelope\" VALUES ('stray', 'document_1', 'stray');\n"
    with pytest.raises(psycopg.errors.UniqueViolation):
        migrate(pg_url, MIGRATION.replace(CARRY, stray + CARRY))


def test_near_miss_without_the_key_links_a_row_to_another_parent(pg_url: str) -> None:
    """Two envelopes claim document 1, one of them not its own: a child of document 1 may
    point at the stray one (inserted before and after, so whichever is met first)."""
    stray = "INSERT INTO \"Envelope\" VALUES ('{0}', 'document_1', 'stray');\n"
    migration = ENVELOPES.replace(
        'INSERT INTO "Envelope"', stray.format("a") + 'INSERT INTO "Envelope"', 1
    )
    before, after = migrate(pg_url, migration + stray.format("z") + CARRY + DROP)
    assert before != after
    assert {row[2] for row in after} >= {"stray"}


def test_near_miss_a_where_that_skips_rows_loses_their_links(pg_url: str) -> None:
    migration = MIGRATION.replace(
        '"AuditLog"."documentId" = d."id";', '"AuditLog"."documentId" = d."id" AND d."id" > 1;'
    ).replace('"documentId",\nALTER COLUMN "envelopeId" SET NOT NULL;', '"documentId";')
    before, after = migrate(pg_url, migration)
    assert len(after) == len(before) - 1  # the log of document 1 links nothing any more


def test_near_miss_one_prefix_for_two_kinds_of_keys_mixes_the_links(pg_url: str) -> None:
    """Without the key, document 1 and template 1 both become ``document_1``: a field of
    one may point at the other's envelope."""
    migration = (ENVELOPES + CARRY + DROP).replace("'template_'", "'document_'")
    before, after = migrate(pg_url, migration)
    assert before != after


def test_near_miss_the_new_column_filled_otherwise_hides_unmatched_rows(pg_url: str) -> None:
    fill = 'UPDATE "AuditLog" SET "envelopeId" = \'none\' WHERE "envelopeId" IS NULL;\n'
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(MODEL + ROWS + 'INSERT INTO "AuditLog" ("documentId") VALUES (9);')
        links = conn.execute('SELECT count("documentId") FROM "AuditLog"').fetchone()
        conn.execute(MIGRATION.replace(DROP, fill + DROP))
        kept = conn.execute(
            'SELECT count(*) FROM "AuditLog" l JOIN "Envelope" e ON e."id" = l."envelopeId"'
        ).fetchone()
    assert links == (6,)
    assert kept == (5,)  # the link to document 9 is gone, silently


# -- a link turned around into rows the migration made ----------------------------------------

ORGS = (
    'CREATE TABLE "Org" ("id" TEXT NOT NULL, "name" TEXT,\n'
    '    CONSTRAINT "Org_pkey" PRIMARY KEY ("id"));\n'
    "CREATE FUNCTION make_id(prefix TEXT) RETURNS TEXT\n"
    "    AS $$ SELECT prefix || gen_random_uuid() $$ LANGUAGE sql;\n"
)
SETTINGS = (
    'CREATE TABLE "Settings" ("id" TEXT NOT NULL, "logo" TEXT NOT NULL DEFAULT \'\',\n'
    '    "orgId" TEXT, CONSTRAINT "Settings_pkey" PRIMARY KEY ("id"));\n'
)
MADE = (
    'ALTER TABLE "Org" ADD COLUMN "settingsId" TEXT;\n'
    + SETTINGS
    + 'INSERT INTO "Settings" ("id", "orgId") SELECT make_id(\'s_\'), o."id" FROM "Org" o\n'
    '    WHERE o."settingsId" IS NULL;\n'
)
TURNED = (
    'UPDATE "Org" o SET "settingsId" = s."id" FROM "Settings" s\n'
    '    WHERE s."orgId" = o."id" AND o."settingsId" IS NULL;\n'
)
CONTRACT = (
    'ALTER TABLE "Settings" DROP COLUMN "orgId";\n'
    'ALTER TABLE "Org" ALTER COLUMN "settingsId" SET NOT NULL;\n'
)


def turned(migration: str, model: str = ORGS) -> str:
    (drop,) = [f for f in lint(model, migration) if f.rule == "drop-column"]
    return drop.severity


def test_a_link_turned_around_into_rows_made_for_it_is_kept() -> None:
    (drop,) = [f for f in lint(ORGS, MADE + TURNED + CONTRACT) if f.rule == "drop-column"]
    assert drop.severity == "info"
    assert drop.message == (
        "drops Settings.orgId: every value was turned around into Org.settingsId "
        "(20261102000000_step, line 6) first: nothing is lost"
    )
    not_null_first = "\n".join(reversed(CONTRACT.strip().split("\n"))) + "\n"
    assert turned(MADE + TURNED + not_null_first) == "info"


MADE_MISSES = [
    (  # documenso's TeamGlobalSettings (add_organisations, line 880): rows existed before
        "a-table-that-held-rows",
        (ORGS + SETTINGS, MADE.replace(SETTINGS, "") + TURNED + CONTRACT),
    ),
    (
        "a-function-that-may-return-a-set",
        (ORGS.replace("RETURNS TEXT", "RETURNS SETOF TEXT"), MADE + TURNED + CONTRACT),
    ),
    (
        "a-function-the-history-does-not-declare",
        (ORGS.split("CREATE FUNCTION")[0], MADE + TURNED + CONTRACT),
    ),
    (
        "no-set-not-null",
        (ORGS, MADE + TURNED + CONTRACT.split("\n")[0] + "\n"),
    ),
    (
        "rows-removed-before-the-set-not-null",
        (ORGS, MADE + TURNED + 'DELETE FROM "Org" WHERE "name" IS NULL;\n' + CONTRACT),
    ),
    (
        "the-link-overwritten-before-the-set-not-null",
        (ORGS, MADE + TURNED + 'UPDATE "Org" SET "settingsId" = \'x\';\n' + CONTRACT),
    ),
    (
        "a-fill-that-joins",
        (
            ORGS,
            MADE.replace('FROM "Org" o\n', 'FROM "Org" o JOIN "Org" p ON p."name" = o."name"\n')
            + TURNED
            + CONTRACT,
        ),
    ),
    (
        "a-fill-that-rounds-the-key",
        (
            ORGS.replace('("id" TEXT NOT NULL', '("id" NUMERIC(10, 1) NOT NULL'),
            MADE.replace('"orgId" TEXT', '"orgId" INTEGER') + TURNED + CONTRACT,
        ),
    ),
    (
        "the-fill-not-limited-to-rows-without-a-link",
        (ORGS, MADE.replace('\n    WHERE o."settingsId" IS NULL;', ";") + TURNED + CONTRACT),
    ),
]


@pytest.mark.parametrize("files", [c[1] for c in MADE_MISSES], ids=[c[0] for c in MADE_MISSES])
def test_a_near_miss_of_a_link_turned_around_still_blocks(files: tuple[str, str]) -> None:
    assert turned(files[1], files[0]) == "data-loss"


ORG_ROWS = (
    'INSERT INTO "Org" ("id", "name") SELECT \'o\' || g, \'n\' || g '
    "FROM generate_series(1, 200) g;\n"
)
OWN = 'SELECT s."id", o."id" FROM "Settings" s JOIN "Org" o ON o."settingsId" = s."id"'


def test_each_row_made_is_still_named_by_the_row_it_linked(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(ORGS + ORG_ROWS)
        conn.execute(f"BEGIN;\n{MADE}{TURNED}\nCOMMIT;")
        before = set(conn.execute('SELECT "id", "orgId" FROM "Settings"').fetchall())
        conn.execute(CONTRACT)
        after = set(conn.execute(OWN).fetchall())
    assert before == after
    assert len(after) == 200


def test_near_miss_rows_that_existed_lose_their_link(pg_url: str) -> None:
    """documenso's TeamGlobalSettings: every team already had its settings row; the fill
    adds a second one per team, and the UPDATE links one of the two, whichever the join
    meets first (a merge join here): a team's own settings are orphaned."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(ORGS + ORG_ROWS + SETTINGS)
        conn.execute(
            'INSERT INTO "Settings" SELECT \'own\' || "id", \'logo\', "id" FROM "Org"; ANALYZE;'
        )
        conn.execute("SET enable_hashjoin = off; SET enable_nestloop = off")
        conn.execute(f"BEGIN;\n{MADE.replace(SETTINGS, '')}{TURNED}{CONTRACT}COMMIT;")
        lost = conn.execute(
            'SELECT count(*) FROM "Settings" s WHERE s."logo" = \'logo\' AND NOT EXISTS '
            '(SELECT FROM "Org" o WHERE o."settingsId" = s."id")'
        ).fetchone()
    assert lost is not None
    assert lost[0] > 0


def test_near_miss_a_set_returning_function_makes_rows_no_one_links(pg_url: str) -> None:
    twice = "CREATE FUNCTION make_id(prefix TEXT) RETURNS SETOF TEXT\n"
    twice += (
        "    AS $$ SELECT prefix || gen_random_uuid() FROM generate_series(1, 2) $$ LANGUAGE sql;\n"
    )
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(ORGS.split("CREATE FUNCTION")[0] + twice + ORG_ROWS)
        conn.execute(f"BEGIN;\n{MADE}{TURNED}{CONTRACT}COMMIT;")
        made, linked = conn.execute(
            f'SELECT (SELECT count(*) FROM "Settings"), count(*) FROM ({OWN}) x'
        ).fetchone() or (0, 0)
    assert (made, linked) == (400, 200)  # half the rows lost the link they were made with
