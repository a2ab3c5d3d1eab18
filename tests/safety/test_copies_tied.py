"""A column copied into another table by ``INSERT ... SELECT`` and then dropped loses nothing
only when the copy also carries a primary key of its table: without it the values survive,
but not whose they were. On PostgreSQL, the names cannot be told back to their users."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from reconciler.safety.findings import Finding
from tests.safety.histories import static_findings

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)

CREATE = """
CREATE TABLE "users" ("id" INTEGER NOT NULL, "name" TEXT, "email" TEXT,
                      CONSTRAINT "users_pkey" PRIMARY KEY ("id"));
CREATE TABLE "archive" ("uid" INTEGER, "name" TEXT);
"""


def drop(*files: str) -> Finding:
    (found,) = [f for f in static_findings(CREATE, *files, now=NOW) if f.rule == "drop-column"]
    return found


@pytest.mark.parametrize(
    ("insert", "severity"),
    [
        ('INSERT INTO "archive" ("uid", "name") SELECT "id", "name" FROM "users";', "info"),
        ('INSERT INTO "archive" ("name") SELECT "name" FROM "users";', "data-loss"),
        (
            'INSERT INTO "archive" ("uid", "name") SELECT "id" + 1, "name" FROM "users";',
            "data-loss",
        ),
        (
            'INSERT INTO "archive" ("uid", "name") SELECT "id", "name" FROM "users" '
            'WHERE "name" IS NOT NULL;',
            "info",
        ),
        (
            'INSERT INTO "archive" ("uid", "name") SELECT u."id", u."name" FROM "users" u '
            'WHERE u."id" IS NOT NULL AND u."name" IS NOT NULL;',
            "info",
        ),
        (
            'INSERT INTO "archive" ("uid", "name") SELECT "id", "name" FROM "users" '
            'WHERE "email" IS NOT NULL;',
            "data-loss",
        ),
        (
            'INSERT INTO "archive" ("uid", "name") SELECT "id", "name" FROM "users" '
            "WHERE \"name\" <> '';",
            "data-loss",
        ),
        (
            'INSERT INTO "archive" ("uid", "name") SELECT "id", "name" FROM "users" '
            'WHERE "name" IS NOT NULL OR "email" IS NOT NULL;',
            "data-loss",
        ),
    ],
    ids=[
        "with-the-key",
        "without-the-key",
        "key-changed",
        "skipping-rows-without-a-value",
        "skipping-rows-without-a-value-or-a-key",
        "skipping-rows-by-another-column",
        "skipping-empty-texts",
        "skipping-by-an-or",
    ],
)
def test_a_copy_into_another_table_counts_only_with_the_key(insert: str, severity: str) -> None:
    found = drop(insert + '\nALTER TABLE "users" DROP COLUMN "name";\n')
    assert found.severity == severity


def test_without_the_key_the_names_cannot_be_told_back(pg_url: str) -> None:
    """The premise: the archive holds every name, and none of them says whose it was."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(CREATE)
        conn.execute("INSERT INTO users (id, name) VALUES (1, 'Ana'), (2, 'Bo')")
        conn.execute('INSERT INTO "archive" ("name") SELECT "name" FROM "users"')
        conn.execute('ALTER TABLE "users" DROP COLUMN "name"')
        names = {r[0] for r in conn.execute("SELECT name FROM archive").fetchall()}
        owners = conn.execute("SELECT count(*) FROM archive WHERE uid IS NOT NULL").fetchone()
    assert names == {"Ana", "Bo"}
    assert owners == (0,)


@pytest.mark.parametrize(
    ("where", "kept"),
    [('"name" IS NOT NULL', True), ('"email" IS NOT NULL', False)],
    ids=["on-the-copied-column", "on-another-column"],
)
def test_a_copy_that_skips_rows_without_a_value_keeps_every_value(
    pg_url: str, where: str, kept: bool
) -> None:
    """The premise, on PostgreSQL (umami's ``15_add_share`` copies ``website.share_id``
    into ``share.slug`` with ``WHERE share_id IS NOT NULL``): every (user, name) pair with
    a name is in the archive, unless the WHERE tests another column."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(CREATE)
        conn.execute(
            "INSERT INTO users (id, name, email) VALUES "
            "(1, 'Ana', 'a@x'), (2, 'Bo', NULL), (3, NULL, 'c@x'), (4, NULL, NULL)"
        )
        before = set(conn.execute("SELECT id, name FROM users WHERE name IS NOT NULL"))
        conn.execute(
            f'INSERT INTO "archive" ("uid", "name") SELECT "id", "name" FROM "users" WHERE {where}'
        )
        conn.execute('ALTER TABLE "users" DROP COLUMN "name"')
        after = set(conn.execute("SELECT uid, name FROM archive WHERE name IS NOT NULL"))
    assert (after == before) is kept
    assert before == {(1, "Ana"), (2, "Bo")}


def test_a_row_written_between_the_copy_and_the_drop_loses_its_value(pg_url: str) -> None:
    """Why a copy counts only for a drop in its own migration: the application writes rows
    between two deployments, and one that writes only the old column loses those values."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(CREATE)
        conn.execute("INSERT INTO users (id, name) VALUES (1, 'Ana')")
        conn.execute('INSERT INTO "archive" ("uid", "name") SELECT "id", "name" FROM "users"')
        conn.execute("INSERT INTO users (id, name) VALUES (2, 'Bo')")  # the application, later
        conn.execute('ALTER TABLE "users" DROP COLUMN "name"')
        kept = set(conn.execute("SELECT uid, name FROM archive"))
    assert kept == {(1, "Ana")}  # Bo's name is gone
    found = static_findings(
        CREATE,
        'INSERT INTO "archive" ("uid", "name") SELECT "id", "name" FROM "users";\n',
        'ALTER TABLE "users" DROP COLUMN "name";\n',
        now=NOW,
    )
    assert [(f.rule, f.severity) for f in found if f.rule == "drop-column"] == [
        ("drop-column", "data-loss")
    ]
