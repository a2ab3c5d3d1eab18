"""The workflow docs/drift.md prescribes, end to end, as a person types it: ``drift --sql``
into a new migration folder, ``resolve --applied`` records it on the drifted database without
running it, ``drift`` then finds none, and the same history applied to an empty database
builds the live schema. ``resolve --applied`` records only a migration the live schema
already has."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from tests.conftest import _fresh_database, pg_query
from tests.drift.history import write_history
from tests.drift.test_sql import _pg_dump

Cli = Callable[..., Result]
SYNC = "20260103000000_sync_state"
INIT = {
    "20260101000000_init": """
CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN');
CREATE TABLE "users" (
    "id" SERIAL PRIMARY KEY,
    "email" TEXT NOT NULL,
    "role" "Role" NOT NULL DEFAULT 'USER'
);
CREATE INDEX "users_email_idx" ON "users"("email");
""",
}
PUSHED = [  # a db push and a hand-run ALTER
    'ALTER TABLE "users" ADD COLUMN "phone" TEXT',
    "ALTER TYPE \"Role\" ADD VALUE 'GUEST'",
    'CREATE TABLE "notes" ("id" SERIAL PRIMARY KEY, "user_id" INTEGER NOT NULL '
    'REFERENCES "users"("id") ON DELETE CASCADE, "body" TEXT)',
    'DROP INDEX "users_email_idx"',
]


def policy(folder: Path, live: str, empty: str, migrations: Path) -> Path:
    """A production target (drift: block by default) and a second one on an empty database
    sharing its history: a new tenant, staging, a developer's database."""
    file = folder / "policy.yaml"
    file.write_text(
        f"ledger: sqlite:///{folder / 'ledger.db'}\n"
        "targets:\n"
        "  - name: shop\n"
        f"    database: '{live}'\n"
        f"    migrations: {{layout: prisma, path: {migrations}}}\n"
        "  - name: tenant\n"
        f"    database: '{empty}'\n"
        f"    migrations: {{layout: prisma, path: {migrations}}}\n",
        encoding="utf-8",
    )
    return file


def capture(cli: Cli, config: Path, migrations: Path) -> str:
    """``mkdir migrations/<ts>_sync_state; reconciler drift ... --sql > .../migration.sql``."""
    result = cli("drift", "-c", config, "-t", "shop", "--sql")
    assert result.exit_code == 2, result.output
    (migrations / SYNC).mkdir()
    (migrations / SYNC / "migration.sql").write_text(result.output, encoding="utf-8")
    return result.output


def test_the_documented_workflow_on_postgres(cli: Cli, pg_server: str, tmp_path: Path) -> None:
    migrations = write_history(tmp_path / "migrations", "postgresql", INIT)
    with _fresh_database(pg_server) as live, _fresh_database(pg_server) as empty:
        config = policy(tmp_path, live, empty, migrations)
        assert cli("apply", "-c", config, "-t", "shop", "-y").exit_code == 0
        for statement in PUSHED:
            pg_query(live, statement)
        capture(cli, config, migrations)

        # Not recorded yet: the drift is still there, and the guard holds the file
        plan = cli("plan", "-c", config, "-t", "shop")
        assert plan.exit_code == 1
        assert "x blocked (SchemaDrift): nothing applied: drift: block" in plan.output

        result = cli("resolve", "-c", config, "-t", "shop", "--applied", SYNC)
        assert result.exit_code == 0, result.output
        assert result.output == (
            f"shop: {SYNC} recorded as applied, not run: the live schema already has what "
            "it makes.\n"
        )
        row = pg_query(
            live,
            "SELECT finished_at IS NOT NULL, rolled_back_at IS NULL, applied_steps_count, "
            "length(checksum) FROM _prisma_migrations WHERE migration_name = %s",
            (SYNC,),
        )
        assert row == [(True, True, 0, 64)]

        result = cli("drift", "-c", config, "-t", "shop")
        assert (result.exit_code, result.output) == (0, "shop: no drift (2 migrations replayed)\n")
        plan = cli("plan", "-c", config, "-t", "shop")
        assert plan.exit_code == 0, plan.output
        assert "  schema drift      none (2 migrations replayed)\n" in plan.output

        # Every other database of the history runs it like any migration
        result = cli("apply", "-c", config, "-t", "tenant", "-y")
        assert result.exit_code == 0, result.output
        assert _pg_dump(empty) == _pg_dump(live)
        assert cli("drift", "-c", config, "-t", "tenant").exit_code == 0

        again = cli("resolve", "-c", config, "-t", "shop", "--applied", SYNC)
        assert again.exit_code == 1
        assert again.output == (f"reconciler: error: shop: {SYNC} is already recorded as applied\n")


def test_a_migration_the_database_does_not_have_is_never_recorded(
    cli: Cli, pg_server: str, tmp_path: Path
) -> None:
    migrations = write_history(tmp_path / "migrations", "postgresql", INIT)
    with _fresh_database(pg_server) as live, _fresh_database(pg_server) as empty:
        config = policy(tmp_path, live, empty, migrations)
        assert cli("apply", "-c", config, "-t", "shop", "-y").exit_code == 0
        pg_query(live, PUSHED[0])  # users.phone
        later = {
            "20260102000000_more": 'ALTER TABLE "users" ADD COLUMN "phone" TEXT;\n'
            'ALTER TABLE "users" ADD COLUMN "fax" TEXT;\n'
        }
        write_history(migrations, "postgresql", later)
        result = cli("resolve", "-c", config, "-t", "shop", "--applied", "20260102000000_more")
        assert result.exit_code == 1
        assert result.output == (
            "reconciler: error: shop: 20260102000000_more is not in effect on the live "
            "database, nothing recorded: with it, the migrations build a schema that differs "
            "from the live one in 1 more way: users.fax: dropped in the database, still "
            "created by the migrations; apply it instead, or fix it\n"
        )
        assert pg_query(live, "SELECT count(*) FROM _prisma_migrations") == [(1,)]
        unknown = cli("resolve", "-c", config, "-t", "shop", "--applied", "20990101000000_nope")
        assert unknown.exit_code == 1
        assert unknown.output == (
            f"reconciler: error: shop: no migration named '20990101000000_nope' in {migrations}\n"
        )


def test_drift_left_uncaptured_does_not_stop_recording_what_is_in_effect(
    cli: Cli, pg_server: str, tmp_path: Path
) -> None:
    """A sync migration that captures part of the drift is in effect all the same: what it
    does not capture stays drift, and ``drift`` goes on saying it."""
    migrations = write_history(tmp_path / "migrations", "postgresql", INIT)
    with _fresh_database(pg_server) as live, _fresh_database(pg_server) as empty:
        config = policy(tmp_path, live, empty, migrations)
        assert cli("apply", "-c", config, "-t", "shop", "-y").exit_code == 0
        pg_query(live, PUSHED[0])
        pg_query(live, 'CREATE INDEX "users_phone_idx" ON "users"("phone")')
        write_history(migrations, "postgresql", {SYNC: 'ALTER TABLE "users" ADD "phone" TEXT;\n'})
        result = cli("resolve", "-c", config, "-t", "shop", "--applied", SYNC)
        assert result.exit_code == 0, result.output
        result = cli("drift", "-c", config, "-t", "shop")
        assert result.exit_code == 2
        assert result.output.splitlines()[1:] == [
            "  users: index users_phone_idx: in the database, created by no migration"
        ]


def test_applied_still_settles_a_failed_migration(cli: Cli, tmp_path: Path) -> None:
    migrations = write_history(
        tmp_path / "migrations", "sqlite", {"20260101000000_init": 'CREATE TABLE "a" ("id" INT);\n'}
    )
    config = tmp_path / "policy.yaml"
    config.write_text(
        "ledger: sqlite:///ledger.db\ntargets:\n  - name: shop\n    environment: development\n"
        "    database: sqlite:///shop.db\n"
        f"    migrations: {{layout: prisma, path: {migrations}}}\n",
        encoding="utf-8",
    )
    assert cli("apply", "-c", config, "-y").exit_code == 0
    broken = "20260102000000_broken"
    write_history(migrations, "sqlite", {broken: 'CREATE TABLE "b" ("id" INT);\nNOT SQL;\n'})
    assert cli("apply", "-c", config, "-y").exit_code == 1
    with sqlite3.connect(tmp_path / "shop.db") as db:
        db.execute('CREATE TABLE "b" ("id" INT)')  # completed by hand
    result = cli("resolve", "-c", config, "-t", "shop", "--applied", broken)
    assert (result.exit_code, result.output) == (0, f"shop: {broken} marked applied.\n")
    assert cli("plan", "-c", config).exit_code == 0


def test_alembic_targets_are_pointed_to_alembic_stamp(cli: Cli, tmp_path: Path) -> None:
    from tests.conftest import ALEMBIC

    config = tmp_path / "policy.yaml"
    config.write_text(
        "ledger: sqlite:///ledger.db\ntargets:\n  - name: shop\n"
        f"    database: sqlite:///shop.db\n    migrations: {{layout: alembic, path: {ALEMBIC}}}\n",
        encoding="utf-8",
    )
    result = cli("resolve", "-c", config, "-t", "shop", "--applied", "abc")
    assert result.exit_code == 1
    assert "`alembic stamp`" in result.output
