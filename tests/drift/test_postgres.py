"""Drift on PostgreSQL: each kind of hand change is found and said, and a database exactly
as its migrations left it shows none.

The history (``history.POSTGRES``) has an extension, an enum with a value added later,
composite and self-referencing foreign keys, partial and expression indexes, a generated
column, a check constraint, a view and a free sequence. It is replayed once for the module;
every hand change runs in a transaction that is rolled back after the live schema is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.db.connection import Database, connect
from reconciler.drift.catalog import Schema, read_schema
from reconciler.drift.compare import compare
from reconciler.drift.replay import replay_schema
from reconciler.policy import Target
from reconciler.source import open_layout
from tests.conftest import _fresh_database, scratch_databases
from tests.drift.history import POSTGRES, drift_after, migrate, write_history
from tests.schema.helpers import prisma_policy


@pytest.fixture(scope="module")
def target(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    tmp = tmp_path_factory.mktemp("drift-pg")
    folder = write_history(tmp / "migrations", "postgresql", POSTGRES)
    with _fresh_database(pg_server) as url:
        spec = prisma_policy(tmp, url, folder).targets[0]
        migrate(spec)
        yield spec


@pytest.fixture(scope="module")
def expected(target: Target) -> Schema:
    layout = open_layout(target.migrations)
    schema = replay_schema(target, layout, layout.migrations())
    assert scratch_databases(target.database.redacted, target.name) == []
    return schema


@pytest.fixture
def live(target: Target) -> Iterator[Database]:
    db = connect(target.database)
    try:
        yield db
    finally:
        db.close()


def test_the_replayed_schema_holds_every_kind_of_object(expected: Schema) -> None:
    kinds = {kind for kind, _ in expected.items}
    assert kinds == {
        "table", "column", "index", "constraint", "enum", "sequence", "view", "extension"
    }  # fmt: skip
    names = {name for _, name in expected.items}
    assert {"users.full_name", "grants.grants_membership_fkey", "users_lower_email_idx"} <= names
    assert "_prisma_migrations" not in names  # the tool's own table
    assert expected.items[("enum", "Role")].attrs["values"] == "'USER', 'ADMIN', 'OWNER'"
    assert "GENERATED ALWAYS" in expected.items[("column", "users.full_name")].attrs["generated"]


def test_a_database_exactly_as_its_migrations_left_it_shows_no_drift(
    live: Database, expected: Schema
) -> None:
    assert compare(read_schema(live), expected) == []


CASES = {
    "column added (db push)": (
        ["ALTER TABLE users ADD COLUMN phone text"],
        ["users.phone: in the database, created by no migration"],
    ),
    "column dropped": (
        ["ALTER TABLE memberships DROP COLUMN since"],
        ["memberships.since: dropped in the database, still created by the migrations"],
    ),
    "type changed": (
        ["ALTER TABLE teams ALTER COLUMN name TYPE varchar(320)"],
        ["teams.name: type character varying(320) in the database, text by the migrations"],
    ),
    "nullability changed": (
        ["ALTER TABLE users ALTER COLUMN deleted_at SET NOT NULL"],
        ["users.deleted_at: NOT NULL in the database, nullable by the migrations"],
    ),
    "default changed": (
        ["ALTER TABLE users ALTER COLUMN score SET DEFAULT 10"],
        ["users.score: default 10 in the database, 0 by the migrations"],
    ),
    "default dropped": (
        ["ALTER TABLE users ALTER COLUMN role DROP DEFAULT"],
        ["""users.role: no default in the database, default 'USER'::"Role" by the migrations"""],
    ),
    "default added": (
        ["ALTER TABLE memberships ALTER COLUMN since SET DEFAULT CURRENT_DATE"],
        ["memberships.since: default CURRENT_DATE in the database, none by the migrations"],
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
            "CREATE INDEX users_live_idx ON users (created_at) WHERE deleted_at IS NOT NULL",
        ],
        [
            "users: index users_live_idx: CREATE INDEX users_live_idx ON public.users USING "
            "btree (created_at) WHERE (deleted_at IS NOT NULL) in the database, CREATE INDEX "
            "users_live_idx ON public.users USING btree (created_at) WHERE (deleted_at IS NULL) "
            "by the migrations"
        ],
    ),
    "unique index made plain": (
        ["DROP INDEX users_email_key", "CREATE INDEX users_email_key ON users (email)"],
        [
            "users: index users_email_key: CREATE INDEX users_email_key ON public.users USING "
            "btree (email) in the database, CREATE UNIQUE INDEX users_email_key ON public.users "
            "USING btree (email) by the migrations"
        ],
    ),
    "foreign key action changed": (
        [
            "ALTER TABLE memberships DROP CONSTRAINT memberships_user_id_fkey, ADD CONSTRAINT "
            "memberships_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) "
            "ON DELETE CASCADE ON UPDATE CASCADE"
        ],
        [
            "memberships: foreign key memberships_user_id_fkey: FOREIGN KEY (user_id) "
            "REFERENCES users(id) ON UPDATE CASCADE ON DELETE CASCADE in the database, "
            "FOREIGN KEY (user_id) REFERENCES users(id) ON UPDATE CASCADE ON DELETE RESTRICT "
            "by the migrations"
        ],
    ),
    "composite foreign key dropped": (
        ["ALTER TABLE grants DROP CONSTRAINT grants_membership_fkey"],
        [
            "grants: foreign key grants_membership_fkey: dropped in the database, still "
            "created by the migrations"
        ],
    ),
    "check constraint added": (
        ["ALTER TABLE teams ADD CONSTRAINT teams_name_check CHECK (name <> '')"],
        ["teams: check constraint teams_name_check: in the database, created by no migration"],
    ),
    "check constraint dropped": (
        ["ALTER TABLE grants DROP CONSTRAINT grants_scope_check"],
        [
            "grants: check constraint grants_scope_check: dropped in the database, still "
            "created by the migrations"
        ],
    ),
    "unique constraint added": (
        ["ALTER TABLE teams ADD CONSTRAINT teams_name_key UNIQUE (name)"],
        ["teams: unique constraint teams_name_key: in the database, created by no migration"],
    ),
    "primary key dropped": (
        [
            "ALTER TABLE grants DROP CONSTRAINT grants_membership_fkey",
            "ALTER TABLE memberships DROP CONSTRAINT memberships_pkey",
        ],
        [
            "grants: foreign key grants_membership_fkey: dropped in the database, still "
            "created by the migrations",
            "memberships: primary key memberships_pkey: dropped in the database, still "
            "created by the migrations",
        ],
    ),
    "enum value added": (
        ["""ALTER TYPE "Role" ADD VALUE 'GUEST'"""],
        ["enum Role: value 'GUEST' in the database, added by no migration"],
    ),
    "enum added": (
        ["CREATE TYPE mood AS ENUM ('sad', 'ok')"],
        ["enum mood: in the database, created by no migration"],
    ),
    "enum without values added": (
        ["CREATE TYPE later AS ENUM ()"],
        ["enum later: in the database, created by no migration"],
    ),
    "view changed": (
        [
            "CREATE OR REPLACE VIEW active_users AS SELECT id, email FROM users "
            "WHERE deleted_at IS NULL AND score > 0"
        ],
        [
            "view active_users:  SELECT users.id,\n    users.email\n   FROM users\n  WHERE "
            "users.deleted_at IS NULL AND users.score > 0; in the database,  SELECT users.id,\n"
            "    users.email\n   FROM users\n  WHERE users.deleted_at IS NULL; by the migrations"
        ],
    ),
    "view added": (
        ["CREATE VIEW admins AS SELECT id FROM users WHERE role = 'ADMIN'"],
        ["view admins: in the database, created by no migration"],
    ),
    "sequence added": (
        ["CREATE SEQUENCE ticket_seq"],
        ["sequence ticket_seq: in the database, created by no migration"],
    ),
    "sequence changed": (
        ["ALTER SEQUENCE invoice_number_seq INCREMENT BY 10"],
        ["sequence invoice_number_seq: increment 10 in the database, 1 by the migrations"],
    ),
    "extension added": (
        ["CREATE EXTENSION pgcrypto"],
        ["extension pgcrypto: in the database, created by no migration"],
    ),
    "table added, said once": (
        ["CREATE TABLE audit (id serial PRIMARY KEY, note text)"],
        [
            "table audit: in the database, created by no migration",
        ],
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


def test_a_generated_column_made_plain_is_drift(live: Database, expected: Schema) -> None:
    said = drift_after(
        live,
        ["ALTER TABLE users DROP COLUMN full_name", "ALTER TABLE users ADD COLUMN full_name text"],
        expected,
    )
    assert len(said) == 1
    assert said[0].startswith("users.full_name: not generated in the database, GENERATED ALWAYS")


def test_the_live_history_table_is_not_compared(live: Database, expected: Schema) -> None:
    said = drift_after(live, ["ALTER TABLE _prisma_migrations ADD COLUMN x int"], expected)
    assert said == []


def test_a_replay_that_fails_names_the_migration(target: Target, tmp_path: Path) -> None:
    from reconciler.drift.replay import ReplayFailed

    folder = write_history(
        tmp_path / "broken", "postgresql", {"20260101000000_bad": "CREATE TABLE t (x nosuch);"}
    )
    spec = prisma_policy(tmp_path, target.database.redacted, folder).targets[0]
    layout = open_layout(spec.migrations)
    with pytest.raises(ReplayFailed, match="20260101000000_bad fails on an empty database"):
        replay_schema(spec, layout, layout.migrations())
    assert scratch_databases(target.database.redacted, spec.name) == []
