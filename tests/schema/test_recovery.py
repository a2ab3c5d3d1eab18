"""A Prisma script run in parts that its SQL stopped half-way: the INVALID index a failed
``CREATE INDEX CONCURRENTLY`` left is dropped at once, and the refusal that follows names
what is in effect and the one command that settles it, which works when followed as
printed."""

from __future__ import annotations

import hashlib
import re
import shlex
from pathlib import Path

import psycopg
from click.testing import CliRunner

from reconciler.act import plan_target, reconcile_schema
from reconciler.act.resolve import resolve_failed
from reconciler.cli import main
from tests.conftest import pg_query
from tests.schema.helpers import add_migration, ledger_of, prisma_copy, prisma_policy

MIGRATION = "20261201000000_audit"


def follow_the_advice(message: str, pg_url: str) -> None:
    """Do what a refusal says: run the lines it names of the file it names by hand, then
    the command it prints, as printed."""
    found = re.search(r"fixed, run (.+?) of (\S+) by hand, then `([^`]+)`", message)
    assert found is not None, message
    lines, path, command = found.groups()
    script = Path(path).read_text(encoding="utf-8").splitlines()
    for span in lines.split(", "):
        numbers = [int(n) for n in span.split(" ", 1)[1].split("-")]
        pg_query(pg_url, "\n".join(script[numbers[0] - 1 : numbers[-1]]))
    words = shlex.split(command)
    assert words[0] == "reconciler", command
    result = CliRunner().invoke(main, words[1:], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def history(pg_url: str) -> list[tuple[object, ...]]:
    return pg_query(
        pg_url,
        "SELECT finished_at IS NOT NULL, rolled_back_at IS NOT NULL FROM _prisma_migrations "
        "WHERE migration_name = %s",
        (MIGRATION,),
    )


def test_a_failed_concurrent_index_is_dropped_and_the_printed_fix_works(
    pg_url: str, tmp_path: Path
) -> None:
    folder = prisma_copy(tmp_path, "postgresql")
    policy = prisma_policy(tmp_path, pg_url, folder)
    assert reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p").in_sync
    add_migration(
        folder,
        MIGRATION,
        'CREATE TABLE "audit" ("id" INTEGER);\n'
        'INSERT INTO "audit" VALUES (1), (1);\n'
        'CREATE UNIQUE INDEX CONCURRENTLY "audit_id_key" ON "audit"("id");\n'
        'CREATE TABLE "audit_after" ("id" INTEGER);\n',
    )

    failed = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")

    assert failed.reason == "ApplyFailed", failed.message
    assert 'the INVALID index "audit_id_key" it left was dropped' in failed.message
    assert pg_query(pg_url, "SELECT count(*) FROM pg_class WHERE relname = 'audit_id_key'") == [
        (0,)
    ]

    refused = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")

    assert refused.reason == "FailedMigration", refused.message
    assert f"migration {MIGRATION} failed at line 3: " in refused.message
    assert 'lines 1-2 of it are in effect (table "audit", rows of "audit")' in refused.message
    assert "not in effect: line 3, line 4" in refused.message
    assert "--rolled-back" not in refused.message
    pg_query(pg_url, 'DELETE FROM "audit" WHERE ctid = (SELECT min(ctid) FROM "audit")')
    follow_the_advice(refused.message, pg_url)

    again = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")

    assert again.reason == "InSync", again.message
    assert history(pg_url) == [(True, False)]
    assert pg_query(
        pg_url,
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'audit_id_key'::regclass",
    ) == [(True,)]
    assert pg_query(pg_url, "SELECT to_regclass('audit_after') IS NOT NULL") == [(True,)]


def test_a_later_transaction_stopped_by_its_sql_is_settled_by_the_printed_command(
    pg_url: str, tmp_path: Path
) -> None:
    folder = prisma_copy(tmp_path, "postgresql")
    policy = prisma_policy(tmp_path, pg_url, folder)
    assert reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p").in_sync
    add_migration(
        folder,
        MIGRATION,
        'CREATE TABLE "audit" ("id" INTEGER);\n'
        'INSERT INTO "audit" VALUES (0);\n'
        "COMMIT;\n"
        "BEGIN;\n"
        'ALTER TABLE "audit" ADD CONSTRAINT "audit_positive" CHECK ("id" > 0);\n'
        "COMMIT;\n",
    )

    failed = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")
    assert failed.reason == "ApplyFailed", failed.message
    refused = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")

    assert refused.reason == "FailedMigration", refused.message
    assert 'lines 1-2 of it are in effect (table "audit", rows of "audit")' in refused.message
    assert "not in effect: line 5" in refused.message
    pg_query(pg_url, 'UPDATE "audit" SET "id" = 1')
    follow_the_advice(refused.message, pg_url)

    again = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")

    assert again.reason == "InSync", again.message
    assert history(pg_url) == [(True, False)]
    assert pg_query(
        pg_url, "SELECT count(*) FROM pg_constraint WHERE conname = 'audit_positive'"
    ) == [(1,)]


def test_a_concurrent_index_that_waited_too_long_for_a_lock_runs_again_by_itself(
    pg_url: str, tmp_path: Path
) -> None:
    folder = prisma_copy(tmp_path, "postgresql")
    policy = prisma_policy(tmp_path, pg_url, folder, extra="    timeouts: {lock: 1s}\n")
    assert reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p").in_sync
    add_migration(
        folder,
        MIGRATION,
        'CREATE TABLE "audit" ("id" INTEGER);\n'
        'CREATE INDEX CONCURRENTLY "users_email_lookup" ON "users"("email");\n'
        'CREATE TABLE "audit_after" ("id" INTEGER);\n',
    )
    with psycopg.connect(pg_url) as blocker:  # the application's open write transaction
        blocker.execute('LOCK TABLE "users" IN ROW EXCLUSIVE MODE')
        waited = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")

    assert waited.reason == "LocksUnavailable", waited.message
    assert (
        'the INVALID index "users_email_lookup" it left is dropped on the next attempt'
        in waited.message
    )
    assert "it runs again from line 2 on the next attempt" in waited.message
    plan = plan_target(policy.targets[0])
    assert plan.blocker is None
    assert [s.migration.id for s in plan.runnable] == [MIGRATION]

    again = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")

    assert again.reason == "InSync", again.message
    assert history(pg_url) == [(True, False)]
    assert pg_query(
        pg_url,
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'users_email_lookup'::regclass",
    ) == [(True,)]
    assert pg_query(pg_url, "SELECT count(*) FROM pg_class WHERE relname LIKE 'audit%'") == [(2,)]


def test_a_failed_concurrent_index_with_nothing_before_it_runs_again_once_resolved(
    pg_url: str, tmp_path: Path
) -> None:
    """Nothing of the script is in effect: the usual advice (fix the cause, resolve it
    rolled back) is right, and works, as the INVALID index is gone."""
    folder = prisma_copy(tmp_path, "postgresql")
    policy = prisma_policy(tmp_path, pg_url, folder)
    assert reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p").in_sync
    pg_query(pg_url, "INSERT INTO users (email, name) VALUES ('a@x', 'Ann'), ('b@x', 'Bea')")
    add_migration(
        folder,
        MIGRATION,
        'CREATE INDEX CONCURRENTLY "users_name_key" ON "users"((1 / (length("name") - 3)));\n'
        'CREATE TABLE "audit_after" ("id" INTEGER);\n',
    )

    failed = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")
    refused = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")

    assert failed.reason == "ApplyFailed", failed.message
    assert 'the INVALID index "users_name_key" it left was dropped' in failed.message
    assert refused.reason == "FailedMigration", refused.message
    assert f"resolve --config {tmp_path / 'policy.yaml'} --target shop --rolled-back" in (
        refused.message
    )
    pg_query(pg_url, "UPDATE users SET name = name || 'tty'")
    resolve_failed(policy.targets[0], MIGRATION, "rolled-back")
    again = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")

    assert again.reason == "InSync", again.message
    assert pg_query(
        pg_url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'users_name_key'::regclass"
    ) == [(True,)]


def test_a_concurrent_index_built_before_the_crash_could_be_recorded_is_not_built_twice(
    pg_url: str, tmp_path: Path
) -> None:
    """A kill between the end of ``CREATE INDEX CONCURRENTLY`` and the history's count of
    it: the row is left as it was while the statement ran, the index is valid, and the
    next apply goes on after it instead of failing on "already exists"."""
    folder = prisma_copy(tmp_path, "postgresql")
    policy = prisma_policy(tmp_path, pg_url, folder)
    assert reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p").in_sync
    add_migration(
        folder,
        MIGRATION,
        'CREATE TABLE "audit" ("id" INTEGER);\n'
        'CREATE INDEX CONCURRENTLY "audit_id_idx" ON "audit"("id");\n'
        'CREATE TABLE "audit_after" ("id" INTEGER);\n',
    )
    path = folder / MIGRATION / "migration.sql"
    pg_query(pg_url, 'CREATE TABLE "audit" ("id" INTEGER)')  # lines 1 and 2 in effect
    pg_query(pg_url, 'CREATE INDEX "audit_id_idx" ON "audit" ("id")')
    checksum = hashlib.sha256(path.read_bytes()).hexdigest()
    pg_query(  # what the row says while line 2 runs
        pg_url,
        "INSERT INTO _prisma_migrations (id, checksum, migration_name, logs, "
        "applied_steps_count) VALUES (gen_random_uuid()::text, %s, %s, %s, 1)",
        (
            checksum,
            MIGRATION,
            'running in parts: parts; line 2 builds index "audit_id_idx", absent before it',
        ),
    )
    assert plan_target(policy.targets[0]).blocker is None

    again = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")

    assert again.reason == "InSync", again.message
    assert history(pg_url) == [(True, False)]
    logs = pg_query(
        pg_url, "SELECT logs FROM _prisma_migrations WHERE migration_name = %s", (MIGRATION,)
    )
    assert 'line 2 had completed (index "audit_id_idx" is valid)' in str(logs[0][0])
    assert pg_query(pg_url, "SELECT to_regclass('audit_after') IS NOT NULL") == [(True,)]
