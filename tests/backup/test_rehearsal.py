"""Rehearsal on a copy: the exact data each pending step would lose, before it goes live."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from reconciler.act import reconcile_schema
from reconciler.ledger import Ledger
from reconciler.policy import Policy, load_policy
from tests.conftest import PRISMA_PG, pg_query, scratch_databases

FILL = """
INSERT INTO users (email, name) SELECT 'u' || i || '@x', CASE WHEN i <= 300 THEN 'n' || i END
FROM generate_series(1, 400) AS i;
INSERT INTO subscriptions (user_id, plan) SELECT id, 'pro' FROM users WHERE id <= 50;
INSERT INTO invoices (subscription_id, amount_cents) SELECT s.id, 100 FROM subscriptions s,
generate_series(1, 20);
CREATE TABLE audit_log (id serial PRIMARY KEY, note text);
INSERT INTO audit_log (note) SELECT 'e' || i FROM generate_series(1, 1000) AS i;
CREATE TABLE prices (id serial PRIMARY KEY, amount numeric(10, 2));
INSERT INTO prices (amount) SELECT i + 0.5 FROM generate_series(1, 25) AS i;
"""


def write_policy(tmp_path: Path, url: str, approvals: str = "") -> Policy:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "ledger: sqlite:///ledger.db\ntargets:\n  - name: shop\n"
        f"    database: {url}\n"
        "    migrations: {layout: prisma, path: migrations}\n"
        "    backup: {driver: pg_dump, dir: backups}\n"
        "    rehearse: true\n"
        "    safety:\n      contract_grace: 0s\n" + approvals
    )
    return load_policy(path, environ={})


@pytest.fixture
def shop(pg_url: str, tmp_path: Path) -> str:
    shutil.copytree(PRISMA_PG, tmp_path / "migrations")
    policy = write_policy(tmp_path, pg_url)
    with Ledger(policy.ledger) as ledger:
        assert reconcile_schema(policy.targets[0], ledger, trigger="t", source="p").in_sync
    pg_query(pg_url, FILL)
    return pg_url


def add(tmp_path: Path, name: str, sql: str) -> str:
    path = tmp_path / "migrations" / name / "migration.sql"
    path.parent.mkdir()
    path.write_text(sql)
    return hashlib.sha256(sql.encode()).hexdigest()[:12]


def approval(name: str, checksum: str, rules: str) -> str:
    return (
        f"      approvals:\n        - migration: {name}\n          checksum: '{checksum}'\n"
        f"          rules: [{rules}]\n          reason: reviewed and intended\n"
    )


@pytest.mark.parametrize(
    ("sql", "rules", "loss"),
    [
        (
            'ALTER TABLE "users" DROP COLUMN "name";',
            "drop-column",
            "users.name: column dropped with 300 non-null values",
        ),
        ("DROP TABLE audit_log;", "drop-table", "audit_log: table dropped with 1,000 rows"),
        (
            'DELETE FROM "invoices" WHERE "amount_cents" = 100;',
            "delete-rows",
            "invoices: 1,000 rows deleted",
        ),
        (
            'UPDATE "users" SET "name" = NULL WHERE "id" <= 10;',
            "update-overwrites",
            "users.name: 10 non-null values dropped",
        ),
    ],
)
def test_rehearsal_measures_the_exact_loss_and_blocks_it(
    shop: str, tmp_path: Path, sql: str, rules: str, loss: str
) -> None:
    add(tmp_path, "20261201000000_safe", 'ALTER TABLE "users" ADD COLUMN "notes" TEXT;\n')
    checksum = add(tmp_path, "20261202000000_risky", sql + "\n")
    # Approve the static finding, so only the rehearsal's measurement is in question...
    policy = write_policy(tmp_path, shop, approval("20261202000000_risky", checksum, rules))
    with Ledger(policy.ledger) as ledger:
        outcome = reconcile_schema(policy.targets[0], ledger, trigger="t", source="p")
        rehearsed = ledger.rehearsals(outcome.run_id or 0)
    # ...and it is approved for the same table, so the measured loss is covered.
    assert outcome.in_sync, outcome.message
    assert [(r.migration, r.outcome) for r in rehearsed] == [
        ("20261201000000_safe", "clean"),
        ("20261202000000_risky", "lost"),
    ]
    assert rehearsed[1].losses == [loss]
    assert rehearsed[0].seconds is not None


def test_unapproved_loss_found_only_by_the_rehearsal_blocks_the_live_apply(
    shop: str, tmp_path: Path
) -> None:
    # A DO block hides a delete from the static rules; the copy shows it.
    add(
        tmp_path,
        "20261201000000_cleanup",
        """
DO $$
BEGIN
  EXECUTE 'DELETE FROM audit_log WHERE id > 900';
END
$$;
""",
    )
    policy = write_policy(tmp_path, shop)
    with Ledger(policy.ledger) as ledger:
        outcome = reconcile_schema(policy.targets[0], ledger, trigger="t", source="p")
    assert outcome.reason == "RehearsalLostData"
    assert "audit_log: 100 rows deleted" in outcome.message
    assert pg_query(shop, "SELECT count(*) FROM audit_log") == [(1000,)]
    assert pg_query(
        shop,
        "SELECT count(*) FROM _prisma_migrations WHERE migration_name = '20261201000000_cleanup'",
    ) == [(0,)]


def test_narrowing_type_change_loses_precision_on_the_copy(shop: str, tmp_path: Path) -> None:
    checksum = add(
        tmp_path,
        "20261201000000_prices_int",
        "ALTER TABLE prices ALTER COLUMN amount TYPE integer;\n",
    )
    policy = write_policy(
        tmp_path, shop, approval("20261201000000_prices_int", checksum, "narrowing-type")
    )
    with Ledger(policy.ledger) as ledger:
        outcome = reconcile_schema(policy.targets[0], ledger, trigger="t", source="p")
    # Rounding keeps the count of values: the census cannot see precision, the rules can.
    assert outcome.in_sync, outcome.message
    assert outcome.plan is not None
    finding = next(f for f in outcome.plan.steps[0].findings if f.rule == "narrowing-type")
    assert "25 values are not whole numbers" in finding.message


def test_step_that_fails_on_the_copy_blocks_and_reports_the_error(
    shop: str, tmp_path: Path
) -> None:
    add(
        tmp_path,
        "20261201000000_bad",
        'ALTER TABLE "users" ADD COLUMN "plan" TEXT;\n'
        'INSERT INTO "users" ("email") SELECT "email" FROM "users" LIMIT 1;\n',
    )
    policy = write_policy(tmp_path, shop)
    with Ledger(policy.ledger) as ledger:
        outcome = reconcile_schema(policy.targets[0], ledger, trigger="t", source="p")
    assert outcome.reason == "RehearsalFailed"
    assert "duplicate key value violates unique constraint" in outcome.message
    assert pg_query(
        shop,
        "SELECT count(*) FROM information_schema.columns WHERE "
        "table_name = 'users' AND column_name = 'plan'",
    ) == [(0,)]
    assert scratch_databases(shop) == []


def test_plan_rehearse_shows_what_a_blocked_step_would_lose(shop: str, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from reconciler.cli import main

    add(tmp_path, "20261201000000_drop_name", 'ALTER TABLE "users" DROP COLUMN "name";\n')
    write_policy(tmp_path, shop)
    result = CliRunner().invoke(main, ["plan", "-c", str(tmp_path / "policy.yaml"), "--rehearse"])
    assert result.exit_code == 2, result.output
    assert "20261201000000_drop_name: " in result.output
    assert (
        "lost users.name: column dropped with 300 non-null values (NOT APPROVED)" in result.output
    )
    assert pg_query(
        shop,
        "SELECT count(*) FROM information_schema.columns WHERE "
        "table_name = 'users' AND column_name = 'name'",
    ) == [(1,)]


def test_renames_lose_nothing_but_a_drop_beside_a_rename_still_does(
    shop: str, tmp_path: Path
) -> None:
    """The safe way to rename (golden rule 3) must not read as a dropped column or table."""
    add(
        tmp_path,
        "20261201000000_renames",
        'ALTER TABLE "users" RENAME COLUMN "name" TO "full_name";\n'
        'ALTER TABLE "audit_log" RENAME TO "audit_events";\n',
    )
    policy = write_policy(tmp_path, shop)
    with Ledger(policy.ledger) as ledger:
        renamed = reconcile_schema(policy.targets[0], ledger, trigger="t", source="p")
        assert renamed.reason == "InSync", renamed.message
        assert renamed.rehearsal is not None
        assert [s.losses for s in renamed.rehearsal.steps] == [()]

        # A rename beside a drop of another column with as many values: the drop is a loss.
        add(
            tmp_path,
            "20261202000000_rename_and_drop",
            'ALTER TABLE "users" RENAME COLUMN "email" TO "login";\n'
            'ALTER TABLE "users" ADD COLUMN "nick" TEXT;\n'
            'UPDATE "users" SET "nick" = "full_name" WHERE "full_name" IS NOT NULL;\n'
            'ALTER TABLE "users" DROP COLUMN "full_name";\n',
        )
        dropped = reconcile_schema(policy.targets[0], ledger, trigger="t", source="p")
    assert dropped.reason in ("AwaitingApproval", "RehearsalLostData"), dropped.message
    assert pg_query(shop, "SELECT count(full_name) FROM users") == [(300,)]
