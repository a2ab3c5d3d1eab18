"""A NOT NULL boolean kept as rows, and rows copied with new keys (``kept_rows``): static
lint reports the drop as ``info`` only when the SQL and the history prove nothing is lost,
and PostgreSQL, with rows, shows both sides of the line: every accepted case can be told
back from what the migration leaves, every near miss loses something (or fails).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
import pytest

from reconciler.safety.findings import Finding
from tests.safety.histories import static_findings

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

POLLS = """
CREATE TABLE "Poll" (
    "urlId" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "maybe" BOOLEAN,
    CONSTRAINT "Poll_pkey" PRIMARY KEY ("urlId")
);
CREATE TABLE "loose" ("id" TEXT NOT NULL, "flag" BOOLEAN NOT NULL);
ALTER TABLE "Poll" ADD COLUMN "notifications" BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE "Poll" RENAME TO "polls";
ALTER TABLE "polls" RENAME COLUMN "urlId" TO "id";
ALTER TABLE "polls" RENAME COLUMN "userId" TO "user_id";
"""
"""A history as rallly's: the key and the boolean reach ``polls`` through renames."""

WATCHERS = """CREATE TABLE "watchers" (
    "id" SERIAL NOT NULL,
    "user_id" TEXT NOT NULL,
    "poll_id" TEXT NOT NULL,
    CONSTRAINT "watchers_pkey" PRIMARY KEY ("id")
);
"""

KEEP = """INSERT INTO watchers (poll_id, user_id)
SELECT id AS poll_id, user_id AS user_id
FROM polls
WHERE notifications = true;
"""

DROP_FLAG = 'ALTER TABLE "polls" DROP COLUMN "notifications";\n'

METAS = """
CREATE TABLE "Template" ("id" SERIAL NOT NULL, CONSTRAINT "Template_pkey" PRIMARY KEY ("id"));
CREATE TABLE "TemplateMeta" (
    "id" TEXT NOT NULL,
    "subject" TEXT,
    "templateId" INTEGER NOT NULL,
    CONSTRAINT "TemplateMeta_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "TemplateMeta_templateId_key" ON "TemplateMeta"("templateId");
ALTER TABLE "TemplateMeta" ADD CONSTRAINT "TemplateMeta_templateId_fkey"
    FOREIGN KEY ("templateId") REFERENCES "Template"("id") ON DELETE CASCADE;
CREATE TABLE "DocumentMeta" (
    "id" TEXT NOT NULL,
    "subject" TEXT,
    CONSTRAINT "DocumentMeta_pkey" PRIMARY KEY ("id")
);
ALTER TABLE "TemplateMeta" ADD COLUMN "message" TEXT;
"""
"""A history as documenso's: ``TemplateMeta`` rows are to become ``DocumentMeta`` rows."""

MOVE = """ALTER TABLE "TemplateMeta" DROP CONSTRAINT "TemplateMeta_templateId_fkey";
ALTER TABLE "DocumentMeta" ADD COLUMN "templateId" INTEGER, ADD COLUMN "message" TEXT;
INSERT INTO "DocumentMeta" ("id", "subject", "message", "templateId")
SELECT gen_random_uuid()::text, "subject", "message", "templateId" FROM "TemplateMeta";
DROP TABLE "TemplateMeta";
"""


def lint(*files: str) -> list[Finding]:
    """Findings of the last of ``files``, linted as one Prisma history folder."""
    return static_findings(*files, now=NOW)


def verdict(found: list[Finding], rule: str, what: str) -> str:
    """The severity of the ``rule`` finding whose message names ``what``."""
    (severity,) = [f.severity for f in found if f.rule == rule and what in f.message]
    return severity


@dataclass(frozen=True)
class Case:
    id: str
    files: tuple[str, ...]
    severity: str


FLAG_CASES = [
    Case("equals-true", (POLLS, WATCHERS + KEEP + DROP_FLAG), "info"),
    Case("bare", (POLLS, WATCHERS + KEEP.replace(" = true", "") + DROP_FLAG), "info"),
    Case("is-true", (POLLS, WATCHERS + KEEP.replace(" = true", " IS TRUE") + DROP_FLAG), "info"),
    Case(
        "true-equals-qualified",
        (
            POLLS,
            WATCHERS
            + "INSERT INTO watchers (poll_id, user_id) SELECT p.id, p.user_id FROM polls p "
            "WHERE true = p.notifications;\n" + DROP_FLAG,
        ),
        "info",
    ),
    Case(
        "nullable-boolean",
        (
            POLLS,
            WATCHERS
            + KEEP.replace("notifications = true", "maybe")
            + 'ALTER TABLE "polls" DROP COLUMN "maybe";\n',
        ),
        "data-loss",
    ),
    Case(
        "not-null-dropped-earlier",
        (
            POLLS + 'ALTER TABLE "polls" ALTER COLUMN "notifications" DROP NOT NULL;\n',
            WATCHERS + KEEP + DROP_FLAG,
        ),
        "data-loss",
    ),
    Case(
        "not-null-dropped-by-a-do-block",
        (
            POLLS + "DO $$ BEGIN PERFORM 1; END $$;\n"
            'ALTER TABLE "polls" ALTER COLUMN "id" SET NOT NULL;\n',
            WATCHERS + KEEP + DROP_FLAG,
        ),
        "data-loss",
    ),
    Case(
        "recreated-if-not-exists",
        (
            POLLS.replace("NOT NULL DEFAULT false", "DEFAULT false")
            + 'CREATE TABLE IF NOT EXISTS "polls" ("id" TEXT PRIMARY KEY, '
            '"user_id" TEXT NOT NULL, "notifications" BOOLEAN NOT NULL);\n',
            WATCHERS + KEEP + DROP_FLAG,
        ),
        "data-loss",
    ),
    Case(
        "key-not-copied",
        (POLLS, WATCHERS + KEEP.replace("SELECT id AS poll_id", "SELECT user_id") + DROP_FLAG),
        "data-loss",
    ),
    Case(
        "no-key",
        (
            POLLS,
            WATCHERS
            + "INSERT INTO watchers (poll_id, user_id) SELECT id, id FROM loose WHERE flag;\n"
            'ALTER TABLE "loose" DROP COLUMN "flag";\n',
        ),
        "data-loss",
    ),
    Case(
        "key-cast",
        (POLLS, WATCHERS + KEEP.replace("SELECT id AS", "SELECT id::varchar(3) AS") + DROP_FLAG),
        "data-loss",
    ),
    Case(
        "distinct",
        (POLLS, WATCHERS + KEEP.replace("SELECT id", "SELECT DISTINCT id") + DROP_FLAG),
        "data-loss",
    ),
    Case(
        "on-conflict",
        (POLLS, WATCHERS + KEEP.replace(";", " ON CONFLICT DO NOTHING;") + DROP_FLAG),
        "data-loss",
    ),
    Case(
        "another-condition",
        (POLLS, WATCHERS + KEEP.replace("true;", "true AND user_id <> 'x';") + DROP_FLAG),
        "data-loss",
    ),
    Case(
        "false-rows",
        (POLLS, WATCHERS + KEEP.replace("= true", "= false") + DROP_FLAG),
        "data-loss",
    ),
    Case("target-may-hold-rows", (POLLS + WATCHERS, KEEP + DROP_FLAG), "data-loss"),
    Case(
        "rows-written-to-the-target-since",
        (
            POLLS,
            WATCHERS
            + KEEP
            + "INSERT INTO watchers (poll_id, user_id) VALUES ('p', 'u');\n"
            + DROP_FLAG,
        ),
        "data-loss",
    ),
    Case(
        "rows-written-to-the-source-since",
        (
            POLLS,
            WATCHERS + KEEP + "INSERT INTO polls (id, user_id) VALUES ('p', 'u');\n" + DROP_FLAG,
        ),
        "data-loss",
    ),
    Case("dropped-by-a-later-migration", (POLLS, WATCHERS + KEEP, DROP_FLAG), "data-loss"),
]


@pytest.mark.parametrize("case", FLAG_CASES, ids=lambda c: c.id)
def test_a_boolean_kept_as_rows_is_info_only_when_proven(case: Case) -> None:
    dropped = "notifications" if "maybe" not in case.files[-1] else "maybe"
    dropped = "loose.flag" if case.id == "no-key" else dropped
    assert verdict(lint(*case.files), "drop-column", dropped) == case.severity


def test_the_message_says_how_the_boolean_is_kept() -> None:
    (found,) = [f for f in lint(POLLS, WATCHERS + KEEP + DROP_FLAG) if f.rule == "drop-column"]
    assert found.message == (
        "drops polls.notifications: every value was kept as rows (a row for each true, none "
        "for false) in watchers.poll_id (20261101000000_step, line 7) first: nothing is lost"
    )


REFERRING = 'CREATE TABLE "Links" ("metaId" TEXT);\n'

META_CASES = [
    Case("copied-with-new-keys", (METAS, MOVE), "info"),
    Case(
        "a-column-not-copied",
        (METAS, MOVE.replace(', "message", "templateId" FROM', ', NULL, "templateId" FROM')),
        "data-loss",
    ),
    Case(
        "rows-left-out",
        (METAS, MOVE.replace('FROM "TemplateMeta";', 'FROM "TemplateMeta" WHERE "id" > \'m\';')),
        "data-loss",
    ),
    Case(
        "rows-without-a-subject-left-out",
        (
            METAS,
            MOVE.replace(
                'FROM "TemplateMeta";', 'FROM "TemplateMeta" WHERE "subject" IS NOT NULL;'
            ),
        ),
        "data-loss",
    ),
    Case(
        "a-key-tested-for-null-skips-nothing",
        (
            METAS,
            MOVE.replace('FROM "TemplateMeta";', 'FROM "TemplateMeta" WHERE "id" IS NOT NULL;'),
        ),
        "info",
    ),
    Case(
        "rows-with-a-null-left-out",
        (
            'CREATE TABLE "TemplateMeta" ("id" TEXT PRIMARY KEY, "name" TEXT);\n'
            'CREATE TABLE "Label" ("id" TEXT PRIMARY KEY, "name" TEXT);\n',
            'INSERT INTO "Label" ("id", "name") SELECT gen_random_uuid()::text, "name" '
            'FROM "TemplateMeta" WHERE "name" IS NOT NULL;\nDROP TABLE "TemplateMeta";\n',
        ),
        "data-loss",
    ),
    Case(
        "key-not-new",
        (METAS, MOVE.replace("gen_random_uuid()::text", "'x' || \"subject\"")),
        "data-loss",
    ),
    Case(
        "another-column-new",
        (
            METAS + 'ALTER TABLE "DocumentMeta" ADD COLUMN "token" TEXT;\n',
            MOVE.replace('("id", "subject"', '("id", "token", "subject"').replace(
                "gen_random_uuid()::text,", "'x' || \"subject\", gen_random_uuid()::text,"
            ),
        ),
        "data-loss",
    ),
    Case(
        "cascade",
        (METAS, MOVE.replace('"TemplateMeta";\n', '"TemplateMeta" CASCADE;\n')),
        "data-loss",
    ),
    Case(
        "foreign-key-in-force",
        (
            METAS
            + REFERRING
            + 'ALTER TABLE "Links" ADD CONSTRAINT "Links_metaId_fkey" FOREIGN KEY ("metaId") '
            'REFERENCES "TemplateMeta"("id");\n',
            MOVE,
        ),
        "data-loss",
    ),
    Case(
        "foreign-key-dropped-column-kept",
        (
            METAS
            + REFERRING
            + 'ALTER TABLE "Links" ADD CONSTRAINT "Links_metaId_fkey" FOREIGN KEY ("metaId") '
            'REFERENCES "TemplateMeta"("id");\n'
            'ALTER TABLE "Links" DROP CONSTRAINT "Links_metaId_fkey";\n',
            MOVE,
        ),
        "data-loss",
    ),
    Case(
        "foreign-key-and-its-column-dropped",
        (
            METAS
            + REFERRING
            + 'ALTER TABLE "Links" ADD CONSTRAINT "Links_metaId_fkey" FOREIGN KEY ("metaId") '
            'REFERENCES "TemplateMeta"("id");\n'
            'ALTER TABLE "Links" DROP COLUMN "metaId";\n',
            MOVE,
        ),
        "info",
    ),
    Case(
        "inline-foreign-key",
        (
            METAS + 'CREATE TABLE "Uses" ("id" INTEGER PRIMARY KEY, "metaId" TEXT REFERENCES '
            '"TemplateMeta" ("id"), CONSTRAINT "Uses_other" FOREIGN KEY ("id") '
            'REFERENCES "Template"("id"));\n',
            MOVE,
        ),
        "data-loss",
    ),
    Case(
        "column-references",
        (
            METAS
            + 'ALTER TABLE "DocumentMeta" ADD COLUMN "metaId" TEXT REFERENCES "TemplateMeta";\n',
            MOVE,
        ),
        "data-loss",
    ),
    Case(
        "a-column-named-after-the-table",
        (METAS + 'ALTER TABLE "Template" ADD COLUMN "templateMetaId" TEXT;\n', MOVE),
        "data-loss",
    ),
    Case(
        "do-block-that-may-declare-one",
        (
            METAS
            + "DO $$ BEGIN EXECUTE 'ALTER TABLE \"DocumentMeta\" ADD COLUMN x TEXT'; END $$;\n",
            MOVE,
        ),
        "data-loss",
    ),
]


@pytest.mark.parametrize(
    ("table", "sql"),
    [
        ('"a" TEXT, "b" TEXT', 'INSERT INTO "t" ("a", "b") SELECT "a", "b" FROM "t";\n'),
        (
            '"id" TEXT PRIMARY KEY, "a" TEXT',
            'INSERT INTO "t" ("id", "a") SELECT gen_random_uuid()::text, "a" FROM "t";\n',
        ),
        ('"a" TEXT, "b" TEXT', 'UPDATE "t" SET "a" = "b", "b" = "a";\n'),
    ],
    ids=["insert-into-itself", "insert-into-itself-with-new-keys", "columns-swapped"],
)
def test_values_copied_into_the_dropped_table_itself_go_with_it(table: str, sql: str) -> None:
    found = lint(f'CREATE TABLE "t" ({table});\n', sql + 'DROP TABLE "t";\n')
    assert verdict(found, "drop-table", "t") == "data-loss"


@pytest.mark.parametrize("case", META_CASES, ids=lambda c: c.id)
def test_rows_copied_with_new_keys_are_info_only_when_proven(case: Case) -> None:
    assert verdict(lint(*case.files), "drop-table", "TemplateMeta") == case.severity


# -- on PostgreSQL, with rows ------------------------------------------------------------------

SEED_POLLS = """
INSERT INTO polls (id, user_id, notifications, maybe) VALUES
    ('a', 'u1', true, true), ('b', 'u1', false, false), ('c', 'u2', true, NULL),
    ('d', 'u2', false, NULL), ('e', 'u3', true, false);
"""

TOLD_BACK = (
    "SELECT id, EXISTS (SELECT 1 FROM watchers w WHERE w.poll_id = p.id) FROM polls p ORDER BY id"
)
"""The boolean as the rows of ``watchers`` tell it."""


def test_the_boolean_is_told_back_from_the_rows(pg_url: str) -> None:
    files = (POLLS, WATCHERS + KEEP + DROP_FLAG)
    assert verdict(lint(*files), "drop-column", "notifications") == "info"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(POLLS)
        conn.execute(SEED_POLLS)
        before = conn.execute("SELECT id, notifications FROM polls ORDER BY id").fetchall()
        conn.execute(files[1])
        assert conn.execute(TOLD_BACK).fetchall() == before


def test_a_nullable_boolean_is_not_told_back(pg_url: str) -> None:
    files = (POLLS, WATCHERS + KEEP.replace("notifications = true", "maybe"))
    assert verdict(lint(*files[:1], files[1] + 'ALTER TABLE "polls" DROP COLUMN "maybe";\n'),
                   "drop-column", "maybe") == "data-loss"  # fmt: skip
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(POLLS)
        conn.execute(SEED_POLLS)
        before = conn.execute("SELECT id, maybe FROM polls ORDER BY id").fetchall()
        conn.execute(files[1])
        after = conn.execute(TOLD_BACK).fetchall()
    assert after != before  # NULL and false both became no row
    assert [v for _, v in before].count(None) == 2


def test_rows_already_in_the_target_read_as_trues(pg_url: str) -> None:
    assert verdict(lint(POLLS + WATCHERS, KEEP + DROP_FLAG), "drop-column", "notifications") == (
        "data-loss"
    )
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(POLLS + WATCHERS)
        conn.execute(SEED_POLLS)
        conn.execute("INSERT INTO watchers (poll_id, user_id) VALUES ('b', 'u9')")
        before = conn.execute("SELECT id, notifications FROM polls ORDER BY id").fetchall()
        conn.execute(KEEP)
        assert conn.execute(TOLD_BACK).fetchall() != before


SEED_METAS = """
INSERT INTO "Template" ("id") SELECT generate_series(1, 4);
INSERT INTO "TemplateMeta" ("id", "subject", "templateId", "message") VALUES
    ('m1', 'hello', 1, NULL), ('m2', 'hello', 2, 'same subject'), ('m3', NULL, 3, 'x');
"""

ROWS = 'SELECT "subject", "message", "templateId" FROM "{}" ORDER BY "templateId"'


def test_rows_copied_with_new_keys_keep_every_other_value(pg_url: str) -> None:
    assert verdict(lint(METAS, MOVE), "drop-table", "TemplateMeta") == "info"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(METAS)
        conn.execute(SEED_METAS)
        before = conn.execute(ROWS.format("TemplateMeta")).fetchall()
        old_keys = {k for (k,) in conn.execute('SELECT "id" FROM "TemplateMeta"').fetchall()}
        conn.execute(MOVE)
        assert conn.execute(ROWS.format("DocumentMeta")).fetchall() == before
        new_keys = {k for (k,) in conn.execute('SELECT "id" FROM "DocumentMeta"').fetchall()}
    assert len(new_keys) == 3
    assert not new_keys & old_keys


def test_a_column_holding_the_old_keys_is_left_pointing_nowhere(pg_url: str) -> None:
    history = (
        METAS
        + REFERRING
        + 'ALTER TABLE "Links" ADD CONSTRAINT "Links_metaId_fkey" FOREIGN KEY ("metaId") '
        'REFERENCES "TemplateMeta"("id");\n'
    )
    dropped = history + 'ALTER TABLE "Links" DROP CONSTRAINT "Links_metaId_fkey";\n'
    assert verdict(lint(history, MOVE), "drop-table", "TemplateMeta") == "data-loss"
    assert verdict(lint(dropped, MOVE), "drop-table", "TemplateMeta") == "data-loss"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(history)
        conn.execute(SEED_METAS)
        conn.execute("INSERT INTO \"Links\" VALUES ('m2')")
        with pytest.raises(psycopg.errors.DependentObjectsStillExist):
            conn.execute(MOVE)  # in force: the drop fails, nothing is lost
        conn.execute('ALTER TABLE "Links" DROP CONSTRAINT "Links_metaId_fkey"')
        conn.execute(MOVE)
        joined = 'SELECT count(*) FROM "Links" l JOIN "DocumentMeta" d ON d."id" = l."metaId"'
        assert conn.execute(joined).fetchone() == (0,)  # the link to m2 is gone


# -- a copy that stays blocking: rallly's options.start ------------------------------------------

OPTIONS = """
CREATE TABLE "polls" ("id" TEXT NOT NULL PRIMARY KEY, "time_zone" TEXT);
CREATE TABLE "options" ("id" TEXT NOT NULL PRIMARY KEY, "poll_id" TEXT NOT NULL,
                        "start" TIMESTAMP(0) NOT NULL);
"""

START_TIME = """ALTER TABLE "options" ADD COLUMN "start_time" TIMESTAMP(0);
DO
$do$
DECLARE
   poll_record RECORD;
BEGIN
   FOR poll_record IN SELECT id, "time_zone" FROM polls
   LOOP
      IF poll_record."time_zone" IS NULL OR poll_record."time_zone" = '' THEN
         UPDATE options SET "start_time" = "start" WHERE "poll_id" = poll_record.id;
      ELSE
         UPDATE options
         SET "start_time" = ("start"::TIMESTAMP) AT TIME ZONE poll_record.time_zone
         WHERE "poll_id" = poll_record.id;
      END IF;
   END LOOP;
END
$do$;
ALTER TABLE "options" ALTER COLUMN "start_time" SET NOT NULL;
"""


def test_a_copy_through_time_zones_is_not_one_to_one_and_blocks(pg_url: str) -> None:
    drop = 'ALTER TABLE "options" DROP COLUMN "start";\n'
    assert verdict(lint(OPTIONS, START_TIME, drop), "drop-column", "start") == "data-loss"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute(OPTIONS)
        conn.execute("INSERT INTO polls VALUES ('p', 'America/New_York')")
        conn.execute(
            "INSERT INTO options VALUES ('a', 'p', '2024-03-10 02:30'), "
            "('b', 'p', '2024-03-10 03:30')"
        )
        conn.execute(START_TIME)
        starts = conn.execute("SELECT DISTINCT start_time FROM options").fetchall()
    assert len(starts) == 1  # two starts in the daylight-saving gap became one instant
