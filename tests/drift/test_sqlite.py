"""Drift on SQLite: the history is replayed into a temporary file once for the module, and
each hand change runs in a transaction rolled back after the live schema is read."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reconciler.db.connection import Database, connect
from reconciler.drift import check_drift
from reconciler.drift.catalog import Schema
from reconciler.drift.replay import replay_schema
from reconciler.policy import Target
from reconciler.source import open_layout
from tests.drift.history import drift_after, migrate, write_history
from tests.schema.helpers import prisma_policy

SQLITE = {
    "20260101000000_init": """
CREATE TABLE "teams" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "name" TEXT NOT NULL,
    "parent_id" INTEGER,
    CONSTRAINT "teams_parent_id_fkey" FOREIGN KEY ("parent_id") REFERENCES "teams" ("id")
        ON DELETE SET NULL ON UPDATE CASCADE
);
CREATE TABLE "users" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "email" TEXT NOT NULL,
    "role" TEXT NOT NULL DEFAULT 'USER',
    "deleted_at" DATETIME,
    "first" TEXT,
    "last" TEXT,
    "full_name" TEXT GENERATED ALWAYS AS (coalesce("first", '') || ' ' || coalesce("last", ''))
        STORED
);
CREATE UNIQUE INDEX "users_email_key" ON "users"("email");
CREATE TABLE "memberships" (
    "team_id" INTEGER NOT NULL,
    "user_id" INTEGER NOT NULL,
    "since" DATE,
    PRIMARY KEY ("team_id", "user_id"),
    CONSTRAINT "memberships_team_id_fkey" FOREIGN KEY ("team_id") REFERENCES "teams" ("id")
        ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "memberships_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users" ("id")
        ON DELETE RESTRICT ON UPDATE CASCADE
);
CREATE TABLE "grants" (
    "team_id" INTEGER NOT NULL,
    "user_id" INTEGER NOT NULL,
    "scope" TEXT NOT NULL UNIQUE,
    FOREIGN KEY ("team_id", "user_id") REFERENCES "memberships" ("team_id", "user_id")
        ON DELETE CASCADE
);
""",
    "20260102000000_indexes_and_views": """
CREATE INDEX "users_live_idx" ON "users"("deleted_at") WHERE "deleted_at" IS NULL;
CREATE INDEX "users_lower_email_idx" ON "users"(lower("email"));
CREATE VIEW "active_users" AS SELECT "id", "email" FROM "users" WHERE "deleted_at" IS NULL;
""",
}


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Target:
    tmp = tmp_path_factory.mktemp("drift-sqlite")
    folder = write_history(tmp / "migrations", "sqlite", SQLITE)
    spec = prisma_policy(tmp, f"sqlite:///{tmp / 'live.db'}", folder).targets[0]
    migrate(spec)
    return spec


@pytest.fixture(scope="module")
def expected(target: Target) -> Schema:
    layout = open_layout(target.migrations)
    return replay_schema(target, layout, layout.migrations())


@pytest.fixture
def live(target: Target) -> Iterator[Database]:
    db = connect(target.database)
    try:
        yield db
    finally:
        db.close()


def test_the_replayed_schema_holds_tables_columns_indexes_keys_and_views(
    expected: Schema,
) -> None:
    kinds = {kind for kind, _ in expected.items}
    assert kinds == {"table", "column", "index", "constraint", "view"}
    names = {name for _, name in expected.items}
    assert {
        "memberships.primary key",
        "grants.foreign key(team_id, user_id)->memberships",
        "teams.foreign key(parent_id)->teams",
        "grants.unique(scope)",
        "users_lower_email_idx",
        "users.full_name",
    } <= names
    assert "_prisma_migrations" not in names
    assert expected.items[("column", "users.full_name")].attrs["generated"] == "generated (stored)"


def test_a_database_exactly_as_its_migrations_left_it_shows_no_drift(target: Target) -> None:
    report = check_drift(target)  # the whole way: history, replay into a temporary file
    assert (report.differences, report.replayed) == ([], 2)


CASES = {
    "column added (db push)": (
        ["ALTER TABLE users ADD COLUMN phone TEXT"],
        ["users.phone: in the database, created by no migration"],
    ),
    "column dropped": (
        ["ALTER TABLE memberships DROP COLUMN since"],
        ["memberships.since: dropped in the database, still created by the migrations"],
    ),
    "index added": (
        ["CREATE INDEX users_role_idx ON users (role)"],
        ["users: index users_role_idx: in the database, created by no migration"],
    ),
    "partial index dropped": (
        ["DROP INDEX users_live_idx"],
        ["users: index users_live_idx: dropped in the database, still created by the migrations"],
    ),
    "expression index dropped": (
        ["DROP INDEX users_lower_email_idx"],
        [
            "users: index users_lower_email_idx: dropped in the database, still created by "
            "the migrations"
        ],
    ),
    "partial index's predicate changed": (
        [
            "DROP INDEX users_live_idx",
            'CREATE INDEX "users_live_idx" ON "users"("deleted_at") WHERE "deleted_at" > 0',
        ],
        [
            'users: index users_live_idx: CREATE INDEX "users_live_idx" ON "users"("deleted_at") '
            'WHERE "deleted_at" > 0 in the database, CREATE INDEX "users_live_idx" ON "users"'
            '("deleted_at") WHERE "deleted_at" IS NULL by the migrations'
        ],
    ),
    "view added": (
        ["CREATE VIEW admins AS SELECT id FROM users WHERE role = 'ADMIN'"],
        ["view admins: in the database, created by no migration"],
    ),
    "table added, said once": (
        ["CREATE TABLE audit (id INTEGER PRIMARY KEY, note TEXT)"],
        ["table audit: in the database, created by no migration"],
    ),
    "table dropped, said once": (
        ["DROP TABLE grants"],
        ["table grants: dropped in the database, still created by the migrations"],
    ),
}


@pytest.mark.parametrize(("statements", "said"), CASES.values(), ids=CASES.keys())
def test_each_hand_change_is_found_and_said(
    live: Database, expected: Schema, statements: list[str], said: list[str]
) -> None:
    assert drift_after(live, statements, expected) == said


# A change SQLite's ALTER TABLE cannot make is made as Prisma makes it: a new table, the
# rows copied, the old one dropped and the new one renamed.
REBUILT_MEMBERSHIPS = """CREATE TABLE "new_memberships" (
    "team_id" INTEGER NOT NULL,
    "user_id" INTEGER NOT NULL,
    "since" {since},
    PRIMARY KEY ("team_id", "user_id"),
    CONSTRAINT "memberships_team_id_fkey" FOREIGN KEY ("team_id") REFERENCES "teams" ("id")
        ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "memberships_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users" ("id")
        ON DELETE {on_delete} ON UPDATE CASCADE
)"""
REBUILT = {
    "type changed": (
        {"since": "DATETIME", "on_delete": "RESTRICT"},
        ["memberships.since: type DATETIME in the database, DATE by the migrations"],
    ),
    "nullability changed": (
        {"since": "DATE NOT NULL", "on_delete": "RESTRICT"},
        ["memberships.since: NOT NULL in the database, nullable by the migrations"],
    ),
    "default added": (
        {"since": "DATE DEFAULT CURRENT_DATE", "on_delete": "RESTRICT"},
        ["memberships.since: default CURRENT_DATE in the database, none by the migrations"],
    ),
    "foreign key action changed": (
        {"since": "DATE", "on_delete": "CASCADE"},
        [
            "memberships: foreign key (user_id) to users: FOREIGN KEY (user_id) REFERENCES "
            "users(id) ON UPDATE CASCADE ON DELETE CASCADE in the database, FOREIGN KEY "
            "(user_id) REFERENCES users(id) ON UPDATE CASCADE ON DELETE RESTRICT by the "
            "migrations"
        ],
    ),
}


@pytest.mark.parametrize(("parts", "said"), REBUILT.values(), ids=REBUILT.keys())
def test_a_table_rebuilt_by_hand_is_compared_column_by_column(
    live: Database, expected: Schema, parts: dict[str, str], said: list[str]
) -> None:
    statements = [
        "PRAGMA defer_foreign_keys = ON",
        REBUILT_MEMBERSHIPS.format(**parts),
        'DROP TABLE "grants"',  # it references memberships; rebuilt below as it was
        'DROP TABLE "memberships"',
        'ALTER TABLE "new_memberships" RENAME TO "memberships"',
        'CREATE TABLE "grants"' + SQLITE["20260101000000_init"].split('CREATE TABLE "grants"')[1],
    ]
    assert drift_after(live, statements, expected) == said
