"""Verify reaches scripts that manage their own transactions: each ``BEGIN ... COMMIT`` of
the script (and each run of statements between them) runs as a transaction of ours, checked
before its COMMIT; a statement that cannot run in a transaction block runs alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.act import plan_target, reconcile_schema
from reconciler.act.resolve import resolve_failed
from reconciler.errors import MigrationFailed
from reconciler.source.sql import script_parts
from tests.conftest import pg_query
from tests.schema.helpers import add_migration, ledger_of, prisma_policy
from tests.schema.test_verify import approving, migrated_with_users

OWN_TRANSACTION_DELETE = """BEGIN;
DO $$ BEGIN DELETE FROM "users" WHERE "id" % 2 = 0; END $$;
COMMIT;
"""


def test_a_delete_inside_the_scripts_own_transaction_is_rolled_back(
    pg_url: str, tmp_path: Path
) -> None:
    folder, policy = migrated_with_users(pg_url, tmp_path)
    add_migration(folder, "20261201000000_cleanup", OWN_TRANSACTION_DELETE)

    outcome = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")

    assert outcome.reason == "VerifyFailed", outcome.message
    assert "line 2: verify: users: 5 rows deleted, which no approval covers" in outcome.message
    assert "(rolled back: nothing of it is in effect)" in outcome.message
    assert pg_query(pg_url, "SELECT count(*) FROM users") == [(10,)]

    # Approved, after the failed attempt is resolved, the same script deletes what it may.
    step = plan_target(prisma_policy(tmp_path, pg_url, folder).targets[0]).steps[0]
    approved = approving(tmp_path, pg_url, folder, step, ["opaque-statement"], ["users"])
    resolve_failed(approved.targets[0], "20261201000000_cleanup", "rolled-back")
    again = reconcile_schema(approved.targets[0], ledger_of(approved), trigger="t", source="p")
    assert again.reason == "InSync", again.message
    assert pg_query(pg_url, "SELECT count(*) FROM users") == [(5,)]


def test_a_later_transaction_that_loses_data_says_what_is_in_effect(
    pg_url: str, tmp_path: Path
) -> None:
    folder, policy = migrated_with_users(pg_url, tmp_path)
    add_migration(
        folder,
        "20261201000000_two_steps",
        'CREATE TABLE "audit" ("id" INTEGER);\n'
        "BEGIN;\n"
        'INSERT INTO "audit" VALUES (1);\n'
        "COMMIT;\n"
        "BEGIN;\n"
        'DO $$ BEGIN DELETE FROM "users"; END $$;\n'
        'ALTER TABLE "audit" ADD COLUMN "note" TEXT;\n'
        "COMMIT;\n"
        'CREATE INDEX CONCURRENTLY "audit_id_idx" ON "audit"("id");\n',
    )

    outcome = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")

    assert outcome.reason == "VerifyFailed", outcome.message
    assert "users: 10 rows deleted" in outcome.message
    assert (
        'in effect: line 1, line 3 (table "audit", rows of "audit"); lines 6-7 rolled back; '
        "not run: line 9" in outcome.message
    )
    assert pg_query(pg_url, "SELECT count(*) FROM users") == [(10,)]
    assert pg_query(pg_url, "SELECT count(*) FROM audit") == [(1,)]
    assert pg_query(
        pg_url,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'audit'",
    ) == [("id",)]
    logs = pg_query(
        pg_url,
        "SELECT logs, applied_steps_count, finished_at IS NULL FROM _prisma_migrations "
        "WHERE migration_name = '20261201000000_two_steps'",
    )
    assert "in effect: line 1, line 3" in str(logs[0][0])
    assert logs[0][1:] == (2, True)


def test_a_delete_beside_a_concurrent_index_is_rolled_back(pg_url: str, tmp_path: Path) -> None:
    folder, policy = migrated_with_users(pg_url, tmp_path)
    add_migration(
        folder,
        "20261201000000_index_and_purge",
        'CREATE INDEX CONCURRENTLY "users_name_idx" ON "users"("name");\n'
        'DO $$ BEGIN DELETE FROM "users" WHERE "id" > 3; END $$;\n',
    )

    outcome = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")

    assert outcome.reason == "VerifyFailed", outcome.message
    assert "users: 7 rows deleted" in outcome.message
    assert 'in effect: line 1 (index "users_name_idx"); line 2 rolled back' in outcome.message
    assert pg_query(pg_url, "SELECT count(*) FROM users") == [(10,)]


def test_prismas_enum_recreation_in_its_own_transaction_still_applies(
    pg_url: str, tmp_path: Path
) -> None:
    folder, policy = migrated_with_users(pg_url, tmp_path)
    pg_query(
        pg_url,
        "INSERT INTO subscriptions (user_id, plan, status) SELECT id, 'pro', 'past_due' FROM users",
    )
    # As ``prisma migrate dev`` writes an enum change, then a value added on its own.
    add_migration(
        folder,
        "20261201000000_trialing",
        "-- AlterEnum\n"
        "BEGIN;\n"
        "CREATE TYPE \"SubscriptionStatus_new\" AS ENUM ('active', 'trialing', 'past_due', "
        "'canceled');\n"
        'ALTER TABLE "subscriptions" ALTER COLUMN "status" DROP DEFAULT;\n'
        'ALTER TABLE "subscriptions" ALTER COLUMN "status" TYPE "SubscriptionStatus_new" '
        'USING ("status"::text::"SubscriptionStatus_new");\n'
        'ALTER TYPE "SubscriptionStatus" RENAME TO "SubscriptionStatus_old";\n'
        'ALTER TYPE "SubscriptionStatus_new" RENAME TO "SubscriptionStatus";\n'
        'DROP TYPE "SubscriptionStatus_old";\n'
        'ALTER TABLE "subscriptions" ALTER COLUMN "status" SET DEFAULT \'active\';\n'
        "COMMIT;\n",
    )
    add_migration(
        folder,
        "20261202000000_paused",
        "-- AlterEnum\nALTER TYPE \"SubscriptionStatus\" ADD VALUE 'paused';\n",
    )

    outcome = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")

    assert outcome.reason == "InSync", outcome.message
    assert pg_query(pg_url, 'SELECT enum_range(NULL::"SubscriptionStatus")::text') == [
        ("{active,trialing,past_due,canceled,paused}",)
    ]
    assert pg_query(pg_url, "SELECT count(*) FROM subscriptions WHERE status = 'past_due'") == [
        (10,)
    ]
    assert pg_query(
        pg_url,
        "SELECT applied_steps_count, finished_at IS NOT NULL FROM _prisma_migrations "
        "WHERE migration_name = '20261201000000_trialing'",
    ) == [(1, True)]


@pytest.mark.parametrize(
    ("script", "parts"),
    [
        # Prisma's enum change: its own transaction, then statements of ours.
        (
            "-- AlterEnum\nBEGIN;\nCREATE TYPE a AS ENUM ('x');\nDROP TYPE b;\nCOMMIT;\n"
            "ALTER TABLE t ADD c INT;\n",
            ["lines 3-4", "line 6"],
        ),
        # A statement that cannot run in a transaction is a part alone.
        (
            "CREATE TABLE t (id INT);\nCREATE INDEX CONCURRENTLY i ON t (id);\nDELETE FROM t;\n",
            ["line 1", "line 2 outside", "line 3"],
        ),
        # END and START TRANSACTION; COMMIT AND CHAIN opens the next one at once.
        (
            "START TRANSACTION;\nDELETE FROM t;\nCOMMIT AND CHAIN;\nDELETE FROM u;\nEND;\n",
            ["line 2", "line 4"],
        ),
        # BEGIN's modes go with its transaction, and with the one AND CHAIN opens.
        (
            "BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY;\nSELECT 1;\nCOMMIT AND CHAIN;\n"
            "SELECT 2;\nCOMMIT;\nSELECT 3;\n",
            [
                "line 2 ISOLATION LEVEL SERIALIZABLE, READ ONLY",
                "line 4 ISOLATION LEVEL SERIALIZABLE, READ ONLY",
                "line 6",
            ],
        ),
        # The script's own ROLLBACK: run, then undone.
        ("BEGIN;\nDELETE FROM t;\nROLLBACK;\nSELECT 1;\n", ["line 2 rolled back", "line 4"]),
        # Words inside a function body, a string or a comment are not transaction control.
        (
            "-- BEGIN; COMMIT;\nCREATE FUNCTION f() RETURNS INT AS $$\nBEGIN\n  RETURN 1;\n"
            "END;\n$$ LANGUAGE plpgsql;\nSELECT 'COMMIT;';\n",
            ["lines 2-7"],
        ),
    ],
)
def test_a_script_is_cut_at_its_own_transaction_control(script: str, parts: list[str]) -> None:
    found = script_parts(script)
    described = [
        p.lines
        + (" outside" if p.outside else "")
        + (" rolled back" if p.rolled_back else "")
        + (f" {p.modes}" if p.modes else "")
        for p in found
    ]
    assert described == parts
    for part in found:  # each part keeps the script's line numbers
        assert part.text.count("\n", 0, len(part.text) - len(part.text.lstrip("\n"))) == (
            part.first_line - 1
        )


@pytest.mark.parametrize(
    ("script", "error"),
    [
        ("CREATE TABLE t (id INT);\nBEGIN;\nDELETE FROM t;\n", "line 2: BEGIN without a COMMIT"),
        ("BEGIN;\nDELETE FROM t;\nPREPARE TRANSACTION 'x';\n", "line 3: two-phase commit"),
        ("BEGIN;\nDELETE FROM t WHERE;\nCOMMIT;\n", "line 2: syntax error"),
    ],
)
def test_a_script_whose_transactions_cannot_be_followed_is_refused(script: str, error: str) -> None:
    with pytest.raises(MigrationFailed, match=error):
        script_parts(script)


def test_a_script_refused_before_it_runs_changes_nothing(pg_url: str, tmp_path: Path) -> None:
    folder, policy = migrated_with_users(pg_url, tmp_path)
    add_migration(
        folder,
        "20261201000000_unfinished",
        'CREATE TABLE "audit" ("id" INTEGER);\nBEGIN;\nINSERT INTO "audit" VALUES (1);\n',
    )

    outcome = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")

    assert outcome.reason == "ApplyFailed", outcome.message
    assert "line 2: BEGIN without a COMMIT" in outcome.message
    assert pg_query(pg_url, "SELECT to_regclass('audit')") == [(None,)]
    assert pg_query(pg_url, "SELECT count(*) FROM users") == [(10,)]


def test_what_the_scripts_begin_asks_of_its_transaction_is_kept(
    pg_url: str, tmp_path: Path
) -> None:
    folder, policy = migrated_with_users(pg_url, tmp_path)
    add_migration(
        folder,
        "20261201000000_snapshot",
        "BEGIN ISOLATION LEVEL REPEATABLE READ;\n"
        'CREATE TABLE "levels" AS SELECT current_setting(\'transaction_isolation\') AS "level";\n'
        "COMMIT;\n",
    )

    outcome = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")

    assert outcome.reason == "InSync", outcome.message
    assert pg_query(pg_url, 'SELECT "level" FROM "levels"') == [("repeatable read",)]


def test_the_scripts_own_rollback_undoes_its_transaction(pg_url: str, tmp_path: Path) -> None:
    folder, policy = migrated_with_users(pg_url, tmp_path)
    add_migration(
        folder,
        "20261201000000_tried",
        'CREATE TABLE "audit" ("id" INTEGER);\n'
        "BEGIN;\n"
        'INSERT INTO "audit" VALUES (1);\n'
        "ROLLBACK;\n"
        'INSERT INTO "audit" VALUES (2);\n',
    )

    outcome = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")

    assert outcome.reason == "InSync", outcome.message
    assert pg_query(pg_url, 'SELECT "id" FROM "audit"') == [(2,)]


def test_a_database_dropped_outside_any_transaction_is_refused_before_anything_runs(
    pg_url: str, other_pg_url: str, tmp_path: Path
) -> None:
    folder, policy = migrated_with_users(pg_url, tmp_path)
    pg_query(other_pg_url, "CREATE TABLE archive AS SELECT 1 AS id")
    other = other_pg_url.rsplit("/", 1)[1]
    add_migration(
        folder,
        "20261201000000_drop_archive",
        f'CREATE TABLE "audit" ("id" INTEGER);\nDROP DATABASE "{other}";\n',
    )

    outcome = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")

    assert outcome.reason == "ApplyFailed", outcome.message
    assert "line 2: DROP DATABASE runs outside any transaction" in outcome.message
    assert pg_query(other_pg_url, "SELECT count(*) FROM archive") == [(1,)]
    assert pg_query(pg_url, "SELECT to_regclass('audit')") == [(None,)]
