"""The Prisma layout end to end on real PostgreSQL and SQLite: apply, history, failures."""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from pathlib import Path

import pytest

from reconciler.act import Outcome, plan_target, reconcile_schema
from reconciler.db.connection import connect
from reconciler.policy import Policy
from tests.conftest import pg_query
from tests.schema.helpers import add_migration, ledger_of, prisma_copy, prisma_policy

EXAMPLE_COUNT = 7


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(dialect, url) of a fresh empty database of each kind."""
    if request.param == "postgresql":
        return "postgresql", request.getfixturevalue("pg_url")
    return "sqlite", f"sqlite:///{tmp_path / 'app.db'}"


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return conn.execute(sql).fetchall()
    return pg_query(url, sql)


def tables(url: str) -> set[str]:
    if url.startswith("sqlite"):
        rows = query(url, "SELECT name FROM sqlite_master WHERE type='table'")
    else:
        rows = query(url, "SELECT tablename FROM pg_tables WHERE schemaname='public'")
    return {str(r[0]) for r in rows}


def history(url: str) -> list[tuple[object, ...]]:
    return query(
        url,
        "SELECT migration_name, checksum, finished_at, rolled_back_at, logs, "
        'applied_steps_count, id FROM "_prisma_migrations" ORDER BY started_at',
    )


def apply_with(pg_url: str, tmp_path: Path, name: str, sql: str) -> tuple[Policy, Outcome]:
    """The example history plus one migration ``name``, applied to PostgreSQL."""
    folder = prisma_copy(tmp_path, "postgresql")
    add_migration(folder, name, sql)
    policy = prisma_policy(tmp_path, pg_url, folder)
    return policy, reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")


def test_fresh_database_reaches_head_and_history_matches_prisma(
    database: tuple[str, str], tmp_path: Path
) -> None:
    dialect, url = database
    folder = prisma_copy(tmp_path, dialect)
    policy = prisma_policy(tmp_path, url, folder)
    target = policy.targets[0]

    outcome = reconcile_schema(target, ledger_of(policy), trigger="test", source="p")

    assert outcome.reason == "InSync", outcome.message
    assert outcome.applied == EXAMPLE_COUNT
    assert {"users", "subscriptions", "invoices"} <= tables(url)
    rows = history(url)
    assert [r[0] for r in rows] == sorted(p.name for p in folder.iterdir() if p.is_dir())
    for name, checksum, finished, rolled_back, logs, steps, row_id in rows:
        sql = (folder / str(name) / "migration.sql").read_bytes()
        assert checksum == hashlib.sha256(sql).hexdigest()
        assert finished is not None
        assert rolled_back is None
        assert logs is None
        assert steps == 1
        assert uuid.UUID(str(row_id)).version == 4
    again = reconcile_schema(target, ledger_of(policy), trigger="test", source="p")
    assert (again.reason, again.applied) == ("InSync", 0)


def test_partly_migrated_database_gets_only_the_rest(
    database: tuple[str, str], tmp_path: Path
) -> None:
    dialect, url = database
    folder = prisma_copy(tmp_path, dialect)
    names = sorted(p.name for p in folder.iterdir() if p.is_dir())
    middle = prisma_policy(tmp_path, url, folder, revision=names[2])
    first = reconcile_schema(middle.targets[0], ledger_of(middle), trigger="t", source="p")
    assert first.applied == 3
    assert "invoices" in tables(url)
    assert "clerk_id" not in str(query(url, "SELECT * FROM users LIMIT 0") or "")

    head = prisma_policy(tmp_path, url, folder)
    plan = plan_target(head.targets[0])
    assert [s.migration.id for s in plan.steps] == names[3:]
    assert plan.live_revision == names[2]
    rest = reconcile_schema(head.targets[0], ledger_of(head), trigger="t", source="p")
    assert rest.applied == EXAMPLE_COUNT - 3
    steps = ledger_of(head).steps(rest.run_id or 0)
    assert [s.migration for s in steps] == names[3:]
    assert all(s.outcome == "applied" and s.duration_seconds is not None for s in steps)


def test_failing_migration_rolls_back_and_blocks_until_resolved(
    database: tuple[str, str], tmp_path: Path
) -> None:
    dialect, url = database
    folder = prisma_copy(tmp_path, dialect)
    bad = add_migration(
        folder,
        "20261201000000_half_done",
        'CREATE TABLE "audit" ("id" INTEGER NOT NULL);\nINSERT INTO "no_such_table" VALUES (1);\n',
    )
    add_migration(folder, "20261202000000_after", 'CREATE TABLE "later" ("id" INTEGER);\n')
    policy = prisma_policy(tmp_path, url, folder)
    target = policy.targets[0]

    outcome = reconcile_schema(target, ledger_of(policy), trigger="t", source="p")

    assert outcome.reason == "ApplyFailed"
    assert "20261201000000_half_done" in outcome.message
    assert "no_such_table" in outcome.message
    assert outcome.applied == EXAMPLE_COUNT
    assert "audit" not in tables(url), "the failed migration's transaction must roll back"
    assert "later" not in tables(url), "nothing after a failure may run"
    failed = [r for r in history(url) if r[0] == "20261201000000_half_done"]
    assert len(failed) == 1
    assert failed[0][2] is None
    assert "no_such_table" in str(failed[0][4])
    step = ledger_of(policy).steps(outcome.run_id or 0)[-1]
    assert (step.migration, step.outcome) == ("20261201000000_half_done", "failed")

    # Like Prisma's P3009: the next run refuses and says how to resolve.
    blocked = reconcile_schema(target, ledger_of(policy), trigger="t", source="p")
    assert blocked.reason == "FailedMigration"
    assert "--rolled-back 20261201000000_half_done" in blocked.message
    assert "no_such_table" in blocked.message  # what failed, from the history's logs
    assert "Fix its migration.sql" in blocked.message
    assert "later" not in tables(url)

    bad.write_text('CREATE TABLE "audit" ("id" INTEGER NOT NULL);\n', encoding="utf-8")
    from reconciler.act.resolve import resolve_failed

    resolve_failed(target, "20261201000000_half_done", "rolled-back")
    fixed = reconcile_schema(target, ledger_of(policy), trigger="t", source="p")
    assert (fixed.reason, fixed.applied) == ("InSync", 2)
    assert {"audit", "later"} <= tables(url)
    names = [r[0] for r in history(url)]
    assert names.count("20261201000000_half_done") == 2  # the rolled-back row stays


def test_a_migration_refused_at_commit_is_a_failed_migration(pg_url: str, tmp_path: Path) -> None:
    """A deferred foreign key is checked at COMMIT, after the script ran without error: the
    migration has failed all the same, nothing of it is in effect, and both ledgers say so."""
    policy, outcome = apply_with(
        pg_url,
        tmp_path,
        "20261201000000_deferred_check",
        'CREATE TABLE "parent" ("id" INTEGER PRIMARY KEY);\n'
        'CREATE TABLE "child" ("id" INTEGER PRIMARY KEY, "parent_id" INTEGER\n'
        '    REFERENCES "parent" ("id") DEFERRABLE INITIALLY DEFERRED);\n'
        'INSERT INTO "child" VALUES (1, 42);\n',
    )

    assert outcome.reason == "ApplyFailed", outcome.message
    assert 'at COMMIT: insert or update on table "child" violates foreign key' in outcome.message
    assert "child" not in tables(pg_url)
    failed = [r for r in history(pg_url) if r[0] == "20261201000000_deferred_check"]
    assert len(failed) == 1
    assert failed[0][2] is None
    assert "at COMMIT" in str(failed[0][4])
    step = ledger_of(policy).steps(outcome.run_id or 0)[-1]
    assert (step.migration, step.outcome) == ("20261201000000_deferred_check", "failed")
    blocked = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")
    assert blocked.reason == "FailedMigration"


def test_a_function_body_or_a_comment_never_takes_a_migration_out_of_its_transaction(
    pg_url: str, tmp_path: Path
) -> None:
    """A plpgsql body ends with ``END;`` on its own line and a comment may mention VACUUM:
    neither is the script's own transaction control, so the migration still runs in one
    transaction and a failure leaves nothing of it."""
    _, outcome = apply_with(
        pg_url,
        tmp_path,
        "20261201000000_trigger_then_typo",
        "-- Run VACUUM ANALYZE on users after this, or CREATE INDEX CONCURRENTLY later.\n"
        'CREATE TABLE "audit" ("id" INTEGER);\n'
        'CREATE FUNCTION "touch"() RETURNS trigger AS $$\n'
        "BEGIN\n"
        "  RETURN NEW;\n"
        "END;\n"
        "$$ LANGUAGE plpgsql;\n"
        'INSERT INTO "no_such_table" VALUES (1);\n',
    )

    assert outcome.reason == "ApplyFailed"
    assert "(rolled back: nothing of it is in effect)" in outcome.message
    assert "line 8: " in outcome.message
    assert "audit" not in tables(pg_url)
    assert pg_query(pg_url, "SELECT count(*) FROM pg_proc WHERE proname = 'touch'") == [(0,)]


def test_edited_and_missing_migrations_are_reported_as_drift(
    database: tuple[str, str], tmp_path: Path
) -> None:
    dialect, url = database
    folder = prisma_copy(tmp_path, dialect)
    policy = prisma_policy(tmp_path, url, folder)
    reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")
    names = sorted(p.name for p in folder.iterdir() if p.is_dir())

    edited = folder / names[1] / "migration.sql"
    edited.write_text(edited.read_text() + "\n-- a later edit\n")
    crlf = folder / names[2] / "migration.sql"
    crlf.write_bytes(crlf.read_bytes().replace(b"\n", b"\r\n"))
    (folder / names[3] / "migration.sql").unlink()
    (folder / names[3]).rmdir()

    plan = plan_target(prisma_policy(tmp_path, url, folder).targets[0])
    kinds = {(d.migration, d.kind) for d in plan.drift}
    assert kinds == {(names[1], "edited"), (names[3], "missing-file")}
    assert plan.steps == ()


@pytest.mark.usefixtures("pg_server")
def test_postgres_scripts_run_whole_with_do_blocks_and_concurrent_indexes(
    pg_url: str, tmp_path: Path
) -> None:
    folder = prisma_copy(tmp_path, "postgresql")
    add_migration(
        folder,
        "20261201000000_functions",
        """
-- A data backfill with semicolons inside strings and a DO block, as real histories have.
CREATE EXTENSION IF NOT EXISTS "pgcrypto";
UPDATE "users" SET "name" = 'a;b' WHERE "name" IS NULL;
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'Tier') THEN
    CREATE TYPE "Tier" AS ENUM ('free', 'pro');
  END IF;
END
$$;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN NEW."name" := coalesce(NEW."name", 'x;y'); RETURN NEW; END;
$fn$;
""",
    )
    add_migration(
        folder,
        "20261202000000_concurrent_index",
        'CREATE INDEX CONCURRENTLY "users_name_idx" ON "users"("name");\n',
    )
    policy = prisma_policy(tmp_path, pg_url, folder)

    outcome = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")

    assert outcome.reason == "InSync", outcome.message
    assert pg_query(pg_url, "SELECT 1 FROM pg_type WHERE typname = 'Tier'")
    assert pg_query(pg_url, "SELECT 1 FROM pg_indexes WHERE indexname = 'users_name_idx'")
    row = pg_query(
        pg_url,
        "SELECT finished_at, applied_steps_count FROM _prisma_migrations "
        "WHERE migration_name = '20261202000000_concurrent_index'",
    )
    assert row[0][0] is not None
    assert row[0][1] == 1


def test_history_written_by_prisma_is_understood(pg_url: str, tmp_path: Path) -> None:
    """A database Prisma migrated: same rows, reconciler only applies what is new."""
    folder = prisma_copy(tmp_path, "postgresql")
    names = sorted(p.name for p in folder.iterdir() if p.is_dir())
    conn = connect(prisma_policy(tmp_path, pg_url, folder).targets[0].database)
    from reconciler.source.prisma import _CREATE_TABLE

    conn.execute(_CREATE_TABLE["postgresql"])
    for name in names[:4]:
        sql = (folder / name / "migration.sql").read_text()
        conn.run_script(sql)
        # A CRLF checkout on Windows wrote this checksum: still not drift.
        checksum = hashlib.sha256(sql.replace("\n", "\r\n").encode()).hexdigest()
        conn.execute(
            "INSERT INTO _prisma_migrations (id, checksum, migration_name, finished_at, "
            "applied_steps_count) VALUES (%s, %s, %s, now(), 1)",
            (str(uuid.uuid4()), checksum, name),
        )
    conn.close()
    policy = prisma_policy(tmp_path, pg_url, folder)

    plan = plan_target(policy.targets[0])

    assert plan.drift == ()
    assert [s.migration.id for s in plan.steps] == names[4:]


def test_prisma_lock_is_respected(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.source import prisma

    monkeypatch.setattr(prisma, "LOCK_WAIT_SECONDS", 0.5)
    policy = prisma_policy(tmp_path, pg_url, prisma_copy(tmp_path, "postgresql"))
    holder = connect(policy.targets[0].database)
    holder.query("SELECT pg_advisory_lock(72707369)")
    try:
        outcome = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")
    finally:
        holder.close()
    assert outcome.reason == "Locked"
    assert "72707369" in outcome.message
    assert "users" not in tables(pg_url)


def test_a_migration_stuck_behind_traffic_times_out_and_runs_again(
    pg_url: str, tmp_path: Path
) -> None:
    folder = prisma_copy(tmp_path, "postgresql")
    policy = prisma_policy(tmp_path, pg_url, folder)
    reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")
    add_migration(
        folder, "20261201000000_alter_users", 'ALTER TABLE "users" ADD COLUMN "plan" TEXT;\n'
    )
    policy = prisma_policy(
        tmp_path, pg_url, folder, extra="    timeouts: {lock: 300ms, statement: 1m}\n"
    )
    reader = connect(policy.targets[0].database)
    with reader.transaction():
        reader.query('SELECT * FROM "users"')  # holds ACCESS SHARE until commit
        outcome = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")
    reader.close()
    assert outcome.reason == "LocksUnavailable"
    assert "lock timeout" in outcome.message
    assert "it runs again on the next attempt" in outcome.message
    # Nothing is wrong with the migration: the attempt is history, not a failure to resolve.
    assert query(
        pg_url,
        "SELECT finished_at IS NULL, rolled_back_at IS NOT NULL, logs LIKE '%lock timeout%' "
        "FROM _prisma_migrations WHERE migration_name = '20261201000000_alter_users'",
    ) == [(True, True, True)]

    retried = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")
    assert retried.reason == "InSync", retried.message
    assert [r.step.migration.id for r in retried.results] == ["20261201000000_alter_users"]
    assert query(
        pg_url,
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_name = 'users' AND column_name = 'plan'",
    ) == [(1,)]


def test_a_migration_over_the_statement_timeout_says_which_setting_to_raise(
    pg_url: str, tmp_path: Path
) -> None:
    folder = prisma_copy(tmp_path, "postgresql")
    add_migration(folder, "20261201000000_slow_backfill", "SELECT pg_sleep(5);\n")
    policy = prisma_policy(
        tmp_path, pg_url, folder, extra="    timeouts: {lock: 5s, statement: 200ms}\n"
    )
    outcome = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")
    assert outcome.reason == "ApplyFailed"
    assert "statement timeout" in outcome.message

    blocked = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")
    assert blocked.reason == "FailedMigration"
    assert "It ran longer than timeouts.statement" in blocked.message


PRISMA_COLUMNS_PG = [
    # name, data type, character length, nullable, default
    ("id", "character varying", 36, "NO", None),
    ("checksum", "character varying", 64, "NO", None),
    ("finished_at", "timestamp with time zone", None, "YES", None),
    ("migration_name", "character varying", 255, "NO", None),
    ("logs", "text", None, "YES", None),
    ("rolled_back_at", "timestamp with time zone", None, "YES", None),
    ("started_at", "timestamp with time zone", None, "NO", "now()"),
    ("applied_steps_count", "integer", None, "NO", "0"),
]


def test_history_table_has_exactly_prismas_columns_on_postgres(pg_url: str, tmp_path: Path) -> None:
    policy = prisma_policy(tmp_path, pg_url, prisma_copy(tmp_path, "postgresql"))
    reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")
    columns = pg_query(
        pg_url,
        "SELECT column_name, data_type, character_maximum_length, is_nullable, "
        "column_default FROM information_schema.columns "
        "WHERE table_name = '_prisma_migrations' ORDER BY ordinal_position",
    )
    assert columns == PRISMA_COLUMNS_PG
    primary = pg_query(
        pg_url,
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = '_prisma_migrations'::regclass "
        "AND i.indisprimary",
    )
    assert primary == [("id",)]


def test_history_table_has_exactly_prismas_columns_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    policy = prisma_policy(tmp_path, url, prisma_copy(tmp_path, "sqlite"))
    reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")
    columns = query(url, 'PRAGMA table_info("_prisma_migrations")')
    assert [(c[1], c[2], c[3], c[4], c[5]) for c in columns] == [
        ("id", "TEXT", 1, None, 1),
        ("checksum", "TEXT", 1, None, 0),
        ("finished_at", "DATETIME", 0, None, 0),
        ("migration_name", "TEXT", 1, None, 0),
        ("logs", "TEXT", 0, None, 0),
        ("rolled_back_at", "DATETIME", 0, None, 0),
        ("started_at", "DATETIME", 1, "current_timestamp", 0),
        ("applied_steps_count", "INTEGER UNSIGNED", 1, "0", 0),
    ]


def test_plan_changes_nothing(database: tuple[str, str], tmp_path: Path) -> None:
    dialect, url = database
    policy = prisma_policy(tmp_path, url, prisma_copy(tmp_path, dialect))
    plan = plan_target(policy.targets[0])
    assert len(plan.steps) == EXAMPLE_COUNT
    assert tables(url) == set()


def test_ledger_on_postgres_records_runs_and_steps(pg_url: str, tmp_path: Path) -> None:
    folder = prisma_copy(tmp_path, "sqlite")
    app = f"sqlite:///{tmp_path / 'app.db'}"
    path = tmp_path / "policy.yaml"
    path.write_text(
        f"ledger: {pg_url}\ntargets:\n  - name: shop\n    database: {app}\n"
        f"    migrations: {{layout: prisma, path: {folder}}}\n"
    )
    from reconciler.policy import load_policy

    policy = load_policy(path, environ={})
    outcome = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")
    assert outcome.in_sync
    runs = pg_query(pg_url, "SELECT target, outcome, finished_at IS NOT NULL FROM runs")
    assert runs == [("shop", "InSync", True)]
    steps = pg_query(pg_url, "SELECT count(*) FROM steps WHERE outcome = 'applied'")
    assert steps == [(EXAMPLE_COUNT,)]
    from reconciler.ledger.store import HEAD

    assert pg_query(pg_url, "SELECT version_num FROM alembic_version") == [(HEAD,)]
