"""Verify on the live database: what a migration loses is measured inside its transaction,
before COMMIT, and a loss no approval covers rolls it back whole (``VerifyFailed``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.act import plan_target, reconcile_schema
from reconciler.act.resolve import resolve_failed
from reconciler.plan.model import Step
from reconciler.policy import Policy
from tests.conftest import pg_query
from tests.schema.alembic_scripts import (
    add_revision,
    alembic_policy,
    create_table,
    script_dir,
    tables,
    versions,
)
from tests.schema.alembic_scripts import ledger_of as alembic_ledger
from tests.schema.alembic_scripts import query as alembic_query
from tests.schema.helpers import add_migration, ledger_of, prisma_copy, prisma_policy

# A DELETE no rule can see: inside a DO block, with a table created in the same migration.
HIDDEN_DELETE = """CREATE TABLE "audit" ("id" INTEGER);
DO $$
BEGIN
  DELETE FROM "users" WHERE "id" % 2 = 0;
END
$$;
"""


def migrated_with_users(pg_url: str, tmp_path: Path) -> tuple[Path, Policy]:
    folder = prisma_copy(tmp_path, "postgresql")
    policy = prisma_policy(tmp_path, pg_url, folder)
    assert reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p").in_sync
    pg_query(
        pg_url,
        "INSERT INTO users (email) SELECT 'u' || i || '@example.com' FROM generate_series(1, 10) i",
    )
    return folder, policy


def approving(
    tmp_path: Path,
    url: str,
    folder: Path,
    step: Step,
    rules: list[str],
    tables: tuple[str, ...] | list[str] = (),
) -> Policy:
    """The policy with an approval of ``rules`` (and measured losses on ``tables``) for
    ``step``'s migration."""
    return prisma_policy(
        tmp_path,
        url,
        folder,
        extra=(
            "    safety:\n      approvals:\n"
            f"        - {{migration: {step.migration.id}, checksum: "
            f"{step.migration.checksum[:12]}, rules: [{', '.join(rules)}], "
            f"tables: [{', '.join(tables)}], reason: reviewed}}\n"
        ),
    )


def test_a_delete_no_rule_sees_is_rolled_back_before_commit(pg_url: str, tmp_path: Path) -> None:
    folder, policy = migrated_with_users(pg_url, tmp_path)
    add_migration(folder, "20261201000000_cleanup", HIDDEN_DELETE)

    outcome = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")

    assert outcome.reason == "VerifyFailed", outcome.message
    assert "users: 5 rows deleted, which no approval covers" in outcome.message
    assert pg_query(pg_url, "SELECT count(*) FROM users") == [(10,)]
    assert pg_query(pg_url, "SELECT to_regclass('audit')") == [(None,)]
    assert pg_query(
        pg_url,
        "SELECT finished_at IS NULL, rolled_back_at IS NULL FROM _prisma_migrations "
        "WHERE migration_name = '20261201000000_cleanup'",
    ) == [(True, True)]
    blocked = plan_target(policy.targets[0])
    assert blocked.blocker is not None
    assert "add the approval above to safety.approvals" in blocked.blocker.message
    assert (
        "approve it: {migration: '20261201000000_cleanup', checksum: '" in blocked.blocker.message
    )
    assert "tables: [users], reason: ...}" in blocked.blocker.message


def test_an_approved_do_block_deletes_what_it_was_approved_to(pg_url: str, tmp_path: Path) -> None:
    folder, _ = migrated_with_users(pg_url, tmp_path)
    add_migration(folder, "20261201000000_cleanup", HIDDEN_DELETE)
    step = plan_target(prisma_policy(tmp_path, pg_url, folder).targets[0]).steps[0]
    policy = approving(tmp_path, pg_url, folder, step, ["opaque-statement"])

    outcome = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")

    assert outcome.reason == "InSync", outcome.message
    assert pg_query(pg_url, "SELECT count(*) FROM users") == [(5,)]


def test_rows_a_foreign_key_cascades_to_are_counted(pg_url: str, tmp_path: Path) -> None:
    folder, _ = migrated_with_users(pg_url, tmp_path)
    add_migration(
        folder,
        "20261201000000_notes",
        'CREATE TABLE "notes" ("id" SERIAL PRIMARY KEY, "user_id" INTEGER NOT NULL '
        'REFERENCES "users" ("id") ON DELETE CASCADE);\n',
    )
    policy = prisma_policy(tmp_path, pg_url, folder)
    assert reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p").in_sync
    pg_query(pg_url, "INSERT INTO notes (user_id) SELECT id FROM users")
    delete = add_migration(
        folder, "20261202000000_drop_test_user", 'DELETE FROM "users" WHERE "id" = 1;\n'
    )
    step = plan_target(policy.targets[0]).steps[0]
    assert step.migration.id == delete.parent.name
    rules = sorted({f.rule for f in step.findings if f.table == "users"})
    approved = approving(tmp_path, pg_url, folder, step, rules)

    outcome = reconcile_schema(approved.targets[0], ledger_of(approved), trigger="t", source="p")

    # The users row was approved; the note that went with it was not.
    assert outcome.reason == "VerifyFailed", outcome.message
    assert "notes: 1 row deleted" in outcome.message
    assert "users:" not in outcome.message
    assert "tables: [notes]" in outcome.message  # the approval that would accept it
    assert pg_query(pg_url, "SELECT count(*) FROM notes") == [(10,)]

    # A reviewer accepts the cascade too: the failed attempt is resolved, the run goes on.
    both = approving(tmp_path, pg_url, folder, step, rules, tables=["notes"])
    resolve_failed(both.targets[0], delete.parent.name, "rolled-back")
    again = reconcile_schema(both.targets[0], ledger_of(both), trigger="t", source="p")
    assert again.reason == "InSync", again.message
    assert pg_query(pg_url, "SELECT count(*) FROM notes") == [(9,)]


def sqlite_shop_with_ada(tmp_path: Path) -> tuple[Path, Policy]:
    """The example history on SQLite, applied, with one user who has a name."""
    folder = prisma_copy(tmp_path, "sqlite")
    policy = prisma_policy(tmp_path, f"sqlite:///{tmp_path / 'app.db'}", folder)
    assert reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p").in_sync
    with sqlite3.connect(tmp_path / "app.db") as conn:
        conn.execute("INSERT INTO users (email, name) VALUES ('ada@example.com', 'Ada')")
    return folder, policy


def test_on_sqlite_a_trigger_that_deletes_is_rolled_back(tmp_path: Path) -> None:
    folder, policy = sqlite_shop_with_ada(tmp_path)
    add_migration(
        folder,
        "20261201000000_audit",
        'CREATE TABLE "audit" ("id" INTEGER);\n'
        'CREATE TRIGGER "purge" AFTER INSERT ON "audit" BEGIN DELETE FROM "users"; END;\n'
        'INSERT INTO "audit" VALUES (1);\n',
    )

    outcome = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")

    assert outcome.reason == "VerifyFailed", outcome.message
    assert "users: 1 row deleted" in outcome.message
    with sqlite3.connect(tmp_path / "app.db") as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (1,)
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'audit'").fetchall() == []


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'app.db'}"


def test_an_alembic_revision_is_checked_in_env_pys_transaction(
    url: str, tmp_path: Path, write_policy: Callable[[str], Path]
) -> None:
    folder = script_dir(tmp_path)
    add_revision(
        folder,
        "v1users",
        None,
        f"""
        {create_table("users", "email")}
        op.execute("INSERT INTO users (id, email) VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        """,
    )
    if url.startswith("sqlite"):
        purge = (
            'op.execute("CREATE TRIGGER purge AFTER INSERT ON audit '
            'BEGIN DELETE FROM users WHERE id > 1; END")'
        )
    else:
        purge = (
            'op.execute("CREATE RULE purge AS ON INSERT TO audit '
            'DO ALSO DELETE FROM users WHERE id > 1")'
        )
    add_revision(
        folder,
        "v2audit",
        "v1users",
        f"""
        {create_table("audit", "what")}
        {purge}
        op.execute("INSERT INTO audit (id, what) VALUES (1, 'x')")
        """,
    )
    _, policy = alembic_policy(write_policy, url, folder)

    outcome = reconcile_schema(policy.targets[0], alembic_ledger(policy), trigger="t", source="p")

    assert outcome.reason == "VerifyFailed", outcome.message
    assert "users: 2 rows deleted, which no approval covers" in outcome.message
    assert versions(url) == {"v1users"}
    assert "audit" not in tables(url)
    assert alembic_query(url, "SELECT count(*) FROM users") == [(3,)]


def test_on_sqlite_a_rename_is_not_a_loss(tmp_path: Path) -> None:
    folder, policy = sqlite_shop_with_ada(tmp_path)
    add_migration(
        folder,
        "20261201000000_full_name",
        'ALTER TABLE "users" RENAME COLUMN "name" TO "full_name";\n',
    )
    outcome = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")
    assert outcome.reason == "InSync", outcome.message
