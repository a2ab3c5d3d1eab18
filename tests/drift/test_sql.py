"""``reconciler drift --sql``: the printed ``sync_state`` migration, added to the history as
a new Prisma migration and applied to an empty database, rebuilds the live schema exactly
(``pg_dump --schema-only`` of both equal); and with it in the history, there is no drift.

One drifted database carries every kind of hand change at once, so the whole module needs
two replays: the drifted one and the check that the migration closed the gap.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.conftest import _fresh_database, pg_query
from tests.drift.history import POSTGRES, migrate, write_history
from tests.schema.helpers import prisma_policy

Cli = Callable[..., Result]

# Hand changes, as a `db push` or a person at psql would make them.
DRIFT = [
    'ALTER TABLE "users" ADD COLUMN "phone" TEXT',  # column added
    'ALTER TABLE "memberships" DROP COLUMN "since"',  # column dropped
    'ALTER TABLE "teams" ALTER COLUMN "name" TYPE VARCHAR(200)',  # type changed
    'ALTER TABLE "users" ALTER COLUMN "deleted_at" SET DEFAULT now()',  # default set
    "ALTER TYPE \"Role\" ADD VALUE 'GUEST' BEFORE 'USER'",  # enum value added, and used:
    'ALTER TABLE "users" ALTER COLUMN "role" SET DEFAULT \'GUEST\'',  # default changed
    'ALTER TABLE "users" ALTER COLUMN "score" DROP NOT NULL',  # NOT NULL dropped
    'ALTER TABLE "users" ALTER COLUMN "first" SET NOT NULL',  # NOT NULL set
    'CREATE INDEX "users_phone_idx" ON "users" (lower("phone")) WHERE "phone" IS NOT NULL',
    'DROP INDEX "users_live_idx"',  # index dropped
    'ALTER TABLE "teams" ADD COLUMN "owner_id" INTEGER',
    'ALTER TABLE "teams" ADD CONSTRAINT "teams_owner_id_fkey" FOREIGN KEY ("owner_id") '
    'REFERENCES "users"("id") ON DELETE SET NULL ON UPDATE CASCADE',  # foreign key with actions
    'ALTER TABLE "teams" ADD CONSTRAINT "teams_name_check" CHECK ("name" <> \'\')',
    'ALTER TABLE "users" DROP CONSTRAINT "users_score_check"',  # check constraint dropped
    'DROP TABLE "grants"',  # table dropped, with its composite foreign key
    "CREATE TYPE \"OrderStatus\" AS ENUM ('open', 'paid')",  # new enum
    'CREATE TABLE "Orders" ("id" SERIAL PRIMARY KEY, "user_id" INTEGER NOT NULL '
    'REFERENCES "users"("id") ON DELETE CASCADE, "status" "OrderStatus" NOT NULL '
    'DEFAULT \'open\', "total" NUMERIC(10, 2), "code" TEXT UNIQUE)',  # new table
    'CREATE VIEW "open_orders" AS SELECT "id", "user_id" FROM "Orders" '
    "WHERE \"status\" = 'open'",  # view over the new table
    # a column retyped under a view: the view is dropped and made again around it
    'DROP VIEW "active_users"',
    'ALTER TABLE "users" ALTER COLUMN "deleted_at" TYPE TIMESTAMPTZ(3)',
    'CREATE VIEW "active_users" AS SELECT "id", "email" FROM "users" WHERE "deleted_at" IS NULL',
    'CREATE SEQUENCE "order_ref_seq" INCREMENT 5 START 100',  # sequence added
    'DROP SEQUENCE "invoice_number_seq"',  # sequence dropped
    'CREATE EXTENSION IF NOT EXISTS "pg_trgm"',  # extension
]


def _policy_file(folder: Path, url: str, migrations: Path) -> Path:
    file = folder / "policy.yaml"
    file.write_text(
        f"ledger: sqlite:///{folder / 'ledger.db'}\n"
        "targets:\n"
        "  - name: shop\n"
        f"    database: '{url}'\n"
        f"    migrations: {{layout: prisma, path: {migrations}}}\n",
        encoding="utf-8",
    )
    return file


def _pg_dump(url: str) -> str:
    """The schema as pg_dump prints it (the client of the server's major version), without
    the comments, settings and blank lines that say nothing about the schema."""
    (version,) = pg_query(url, "SHOW server_version_num")[0]
    binary = Path(f"/usr/lib/postgresql/{int(str(version)) // 10000}/bin/pg_dump")
    dump = subprocess.run(
        [str(binary), "--schema-only", "--no-owner", "--no-privileges", "-d", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    noise = re.compile(r"^(--|SET |SELECT pg_catalog\.set_config|\\(un)?restrict )")
    return "\n".join(line for line in dump.splitlines() if line and not noise.match(line))


def test_the_sync_state_migration_rebuilds_the_live_schema(
    cli: Cli, pg_server: str, tmp_path: Path
) -> None:
    history = write_history(tmp_path / "migrations", "postgresql", POSTGRES)
    with _fresh_database(pg_server) as live_url, _fresh_database(pg_server) as empty_url:
        migrate(prisma_policy(tmp_path, live_url, history).targets[0])
        for statement in DRIFT:
            pg_query(live_url, statement)

        result = cli("drift", "-c", _policy_file(tmp_path, live_url, history), "--sql")
        assert result.exit_code == 2, result.output
        sql = result.output
        assert sql.startswith("-- shop: the live schema, from the 2 applied migrations")
        # dependency order: the enum before the table using it, tables before their keys,
        # the foreign keys last, views after their tables; drops before creates; two
        # transactions, as an added enum value cannot be used in the one that adds it
        order = [
            "BEGIN;",
            'DROP VIEW "active_users"',
            'ALTER TABLE "grants" DROP CONSTRAINT "grants_membership_fkey"',
            'DROP INDEX "users_live_idx"',
            'ALTER TABLE "memberships" DROP COLUMN "since"',
            'DROP TABLE "grants"',
            'DROP SEQUENCE "invoice_number_seq"',
            'CREATE EXTENSION IF NOT EXISTS "pg_trgm"',
            'CREATE TYPE "OrderStatus"',
            "ALTER TYPE \"Role\" ADD VALUE 'GUEST' BEFORE 'USER'",
            "COMMIT;\n\nBEGIN;",  # the new value committed before the default uses it
            'CREATE TABLE "Orders"',
            'ALTER TABLE "Orders" ADD CONSTRAINT "Orders_pkey" PRIMARY KEY',
            'ALTER TABLE "Orders" ADD CONSTRAINT "Orders_user_id_fkey" FOREIGN KEY',
            "CREATE INDEX users_phone_idx ON public.users USING btree (lower(phone)) WHERE",
            'CREATE VIEW "active_users"',
            'CREATE VIEW "open_orders"',
        ]
        positions = [sql.find(part) for part in order]
        assert -1 not in positions, [p for p, at in zip(order, positions, strict=True) if at < 0]
        assert positions == sorted(positions), sql

        synced = tmp_path / "synced"
        shutil.copytree(history, synced)
        (synced / "20260103000000_sync_state").mkdir()
        (synced / "20260103000000_sync_state" / "migration.sql").write_text(sql, "utf-8")
        migrate(prisma_policy(tmp_path, empty_url, synced).targets[0])
        live_dump, rebuilt_dump = _pg_dump(live_url), _pg_dump(empty_url)
        assert '"Orders"' in live_dump
        assert rebuilt_dump == live_dump
        assert 'ALTER TABLE "users" ALTER COLUMN "role" DROP DEFAULT' not in sql  # SET says it

        # with the migration in its history, the rebuilt database shows no drift
        again = _policy_file(tmp_path, empty_url, synced)
        result = cli("drift", "-c", again, "--sql")
        assert (result.exit_code, result.output) == (
            0,
            "-- shop: no drift (3 migrations replayed)\n",
        )
        result = cli("drift", "-c", again, "--sql", "-o", "json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["targets"][0]["sql"] == ""


def test_sql_for_a_sqlite_target_is_a_one_line_error(cli: Cli, tmp_path: Path) -> None:
    from tests.conftest import PRISMA_SQLITE

    config = _policy_file(tmp_path, f"sqlite:///{tmp_path / 'shop.db'}", PRISMA_SQLITE)
    assert cli("apply", "-c", config, "-y").exit_code == 0
    result = cli("drift", "-c", config, "--sql")
    assert result.exit_code == 1
    assert (
        result.output
        == "reconciler: error: shop: drift --sql: SQLite targets are not supported yet\n"
    )


@pytest.fixture(autouse=True)
def _pg_dump_present() -> None:
    if not list(Path("/usr/lib/postgresql").glob("*/bin/pg_dump")):
        pytest.fail("pg_dump is not installed under /usr/lib/postgresql")
