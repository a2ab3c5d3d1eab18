"""Verify reaches scripts that manage their own transactions: each ``BEGIN ... COMMIT`` of
the script (and each run of statements between them) runs as a transaction of ours, checked
before its COMMIT; a statement that cannot run in a transaction block runs alone."""

from __future__ import annotations

from pathlib import Path

from reconciler.act import plan_target, reconcile_schema
from reconciler.act.resolve import resolve_failed
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
    assert "in effect: line 1, line 3; lines 6-7 rolled back; not run: line 9" in outcome.message
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
    assert "in effect: line 1; line 2 rolled back" in outcome.message
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
