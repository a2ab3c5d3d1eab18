"""``restore`` on the bad day, from the command line, on real PostgreSQL and SQLite: the
database ends up holding exactly the backup (rows and tables added since gone, tables
dropped since back), success is claimed only once the census matches the backup's, a
failure says pg_restore's or PostgreSQL's own words and changes nothing, and a script can
restore a production database with ``--force --yes``."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import psycopg
import pytest
from click.testing import Result

from tests.conftest import ALEMBIC, PRISMA_PG, PRISMA_SQLITE, pg_query

Cli = Callable[..., Result]


def write_policy(
    tmp_path: Path, url: str, *, layout: str = "prisma", environment: str = "staging"
) -> Path:
    folder = tmp_path / "migrations"
    if not folder.exists():
        source = {"prisma": PRISMA_PG, "alembic": ALEMBIC}[layout]
        shutil.copytree(PRISMA_SQLITE if url.startswith("sqlite") else source, folder)
    driver = "sqlite" if url.startswith("sqlite") else "pg_dump"
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "ledger: sqlite:///ledger.db\ntargets:\n  - name: shop\n"
        f"    environment: {environment}\n    database: {url}\n"
        f"    migrations: {{layout: {layout}, path: migrations}}\n"
        f"    backup: {{driver: {driver}, dir: backups}}\n"
    )
    return policy


def backups(cli: Cli, policy: Path) -> dict[str, str]:
    """Backup ids by reason."""
    shown = cli("backups", "-c", policy, "-o", "json")
    assert shown.exit_code == 0, shown.output
    return {str(b["reason"]): str(b["id"]) for b in json.loads(shown.stdout)["backups"]}


def prepared(cli: Cli, policy: Path, url: str) -> str:
    """Migrate, hold ada and grace, back up; the backup's id."""
    applied = cli("apply", "-c", policy, "--yes")
    assert applied.exit_code == 0, applied.output
    run(url, "INSERT INTO users (email, name) VALUES ('ada@example.com', 'Ada')")
    run(url, "INSERT INTO users (email, name) VALUES ('grace@example.com', NULL)")
    run(url, "INSERT INTO subscriptions (user_id, plan) SELECT id, 'pro' FROM users")
    taken = cli("backup", "-c", policy, "-t", "shop")
    assert taken.exit_code == 0, taken.output
    return backups(cli, policy)["manual"]


def run(url: str, sql: str) -> list[tuple[object, ...]]:
    if url.startswith("sqlite"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn, conn:
            return conn.execute(sql).fetchall()
    return pg_query(url, sql)


def tables(url: str) -> list[str]:
    if url.startswith("sqlite"):
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
    else:
        sql = (
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
        )
    return [str(r[0]) for r in run(url, sql)]


def emails(url: str) -> list[str]:
    return [str(r[0]) for r in run(url, "SELECT email FROM users ORDER BY email")]


def move_on(url: str) -> None:
    """What happens after the backup: a row added, a row changed, a table created, a table
    dropped (with its rows)."""
    run(url, "INSERT INTO users (email, name) VALUES ('eve@example.com', 'Eve')")
    run(url, "UPDATE users SET name = 'Renamed' WHERE email = 'ada@example.com'")
    run(url, "CREATE TABLE later (id integer PRIMARY KEY, note text)")
    run(url, "INSERT INTO later VALUES (1, 'x')")
    run(url, "DROP TABLE invoices")


def restore(cli: Cli, policy: Path, backup: str, to: str, *extra: str) -> Result:
    return cli("restore", backup, "-c", policy, "-t", "shop", "--to", to, *extra)


@pytest.mark.parametrize("layout", ["prisma", "alembic"])
def test_a_populated_postgres_database_is_restored_exactly(
    cli: Cli, pg_url: str, tmp_path: Path, layout: str
) -> None:
    policy = write_policy(tmp_path, pg_url, layout=layout)
    backup = prepared(cli, policy, pg_url)
    tables_then = tables(pg_url)
    users_then = run(pg_url, "SELECT * FROM users ORDER BY id")
    version_then = run(
        pg_url,
        "SELECT version_num FROM alembic_version"
        if layout == "alembic"
        else "SELECT migration_name FROM _prisma_migrations ORDER BY 1",
    )
    move_on(pg_url)
    run(pg_url, "CREATE SCHEMA reports; CREATE TABLE reports.daily (day date)")

    # The target's own database, its URL spelled without the port: still its own.
    own = pg_url.replace(":5432/", "/")
    assert own != pg_url
    restored = restore(cli, policy, backup, own, "--force")

    assert restored.exit_code == 0, restored.output
    assert "Backing up shop's database before overwriting it" in restored.stdout
    assert "census identical to the backup's" in restored.stdout
    assert tables(pg_url) == tables_then
    assert "public.later" not in tables_then
    assert "public.invoices" in tables_then
    assert run(pg_url, "SELECT * FROM users ORDER BY id") == users_then
    assert run(pg_url, "SELECT count(*) FROM subscriptions") == [(2,)]
    assert run(pg_url, "SELECT 1 FROM pg_namespace WHERE nspname = 'reports'") == []
    version_now = run(
        pg_url,
        "SELECT version_num FROM alembic_version"
        if layout == "alembic"
        else "SELECT migration_name FROM _prisma_migrations ORDER BY 1",
    )
    assert version_now == version_then
    # public is made again as PostgreSQL 15 makes it, usable by every role.
    [(usable,)] = run(pg_url, "SELECT has_schema_privilege('public', 'public', 'USAGE')")
    assert usable is True
    # The data replaced is one restore away.
    assert "before-restore" in backups(cli, policy)


def test_the_backup_before_the_first_migration_restores_an_empty_database(
    cli: Cli, pg_url: str, tmp_path: Path
) -> None:
    """The Alembic case reported: the backup apply took before the first revision holds
    no table; restoring it used to say ``Restored`` and leave everything in place, since
    a dump with nothing in it collides with nothing."""
    policy = write_policy(tmp_path, pg_url, layout="alembic")
    prepared(cli, policy, pg_url)
    first = backups(cli, policy)["schema-change"]
    move_on(pg_url)

    restored = restore(cli, policy, first, pg_url, "--force")

    assert restored.exit_code == 0, restored.output
    assert "census identical to the backup's (0 tables, 0 rows)" in restored.stdout
    assert tables(pg_url) == []
    # Every migration is pending again: said, before a daemon runs them once more.
    said = " ".join(restored.stdout.split())
    pending = re.search(r"Note: (\d+) migration\(s\) of shop's desired revision are pending", said)
    assert pending, said
    assert int(pending[1]) > 0
    kept = backups(cli, policy)["before-restore"]
    again = restore(cli, policy, kept, pg_url, "--force")
    assert again.exit_code == 0, again.output
    assert "pending again" not in again.stdout  # back at head: nothing to say
    assert "eve@example.com" in emails(pg_url)
    assert "public.later" in tables(pg_url)


def test_another_non_empty_database_is_restored_exactly(
    cli: Cli, pg_url: str, other_pg_url: str, tmp_path: Path
) -> None:
    policy = write_policy(tmp_path, pg_url)
    backup = prepared(cli, policy, pg_url)
    run(other_pg_url, "CREATE TABLE users (id int, email text)")
    run(other_pg_url, "INSERT INTO users VALUES (7, 'stranger@example.com')")
    run(other_pg_url, "CREATE TABLE unrelated (x int)")

    refused = restore(cli, policy, backup, other_pg_url)
    assert refused.exit_code == 1
    assert "not empty" in refused.stderr

    restored = restore(cli, policy, backup, other_pg_url, "--force")

    assert restored.exit_code == 0, restored.output
    assert "census identical" in restored.stdout
    assert "Backing up" not in restored.stdout  # not the target's database
    assert tables(other_pg_url) == tables(pg_url)
    assert emails(other_pg_url) == ["ada@example.com", "grace@example.com"]


def test_a_restore_that_differs_from_the_recorded_census_is_reported_failed(
    cli: Cli, pg_url: str, other_pg_url: str, tmp_path: Path
) -> None:
    policy = write_policy(tmp_path, pg_url)
    backup = prepared(cli, policy, pg_url)
    # The census recorded with the backup says three users (as if the dump lost one).
    with closing(sqlite3.connect(tmp_path / "ledger.db")) as ledger, ledger:
        [(raw,)] = ledger.execute("SELECT census FROM backups WHERE id = ?", (backup,))
        census = json.loads(raw)
        census["users"]["rows"] = 3
        ledger.execute("UPDATE backups SET census = ? WHERE id = ?", (json.dumps(census), backup))

    restored = restore(cli, policy, backup, other_pg_url)

    assert restored.exit_code == 1
    assert "Restored" not in restored.stdout
    assert "does not match the census recorded with the backup" in restored.stderr
    assert "users: 3 rows, copy has 2" in restored.stderr


def test_pg_restores_own_error_surfaces_and_nothing_changes(
    cli: Cli, pg_url: str, tmp_path: Path
) -> None:
    """A dump cut short (its checksum recorded as it is now, so only pg_restore can tell)."""
    policy = write_policy(tmp_path, pg_url)
    backup = prepared(cli, policy, pg_url)
    [dump] = (tmp_path / "backups" / "shop").glob(f"{backup}.dump")
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size * 3 // 4])
    from reconciler.backup.base import sha256_file

    with closing(sqlite3.connect(tmp_path / "ledger.db")) as ledger, ledger:
        ledger.execute("UPDATE backups SET sha256 = ? WHERE id = ?", (sha256_file(dump)[0], backup))
    move_on(pg_url)
    tables_now = tables(pg_url)

    restored = restore(cli, policy, backup, pg_url, "--force")

    assert restored.exit_code == 1
    [line] = restored.stderr.splitlines()
    assert line.startswith(f"reconciler: error: restore of {backup} failed, nothing was changed: ")
    assert "pg_restore: " in line
    assert "could not read" in line or "end of file" in line, line
    assert not line.endswith(");")
    assert tables(pg_url) == tables_now
    assert "eve@example.com" in emails(pg_url)


def test_a_session_holding_a_lock_stops_the_restore_and_is_counted(
    cli: Cli, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("reconciler.backup.replace.LOCK_TIMEOUT", "1s")
    policy = write_policy(tmp_path, pg_url)
    backup = prepared(cli, policy, pg_url)
    run(pg_url, "INSERT INTO users (email, name) VALUES ('eve@example.com', 'Eve')")
    with psycopg.connect(pg_url) as application:
        application.execute("SELECT count(*) FROM users")  # its transaction stays open

        restored = restore(cli, policy, backup, pg_url, "--force")

    assert restored.exit_code == 1
    [line] = restored.stderr.splitlines()
    assert "nothing was changed" in line
    assert "ERROR: canceling statement due to lock timeout" in line
    assert "1 other session(s) are connected to" in line
    assert "eve@example.com" in emails(pg_url)


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_a_script_restores_a_production_database_with_force_and_yes(
    cli: Cli, pg_url: str, tmp_path: Path, backend: str
) -> None:
    url = pg_url if backend == "postgresql" else "sqlite:///shop.db"
    full = pg_url if backend == "postgresql" else f"sqlite:///{tmp_path / 'shop.db'}"
    policy = write_policy(tmp_path, url, environment="production")
    backup = prepared(cli, policy, full)
    move_on(full)

    alone = restore(cli, policy, backup, url, "--force")
    assert alone.exit_code == 1
    [line] = alone.stderr.splitlines()
    assert "--yes" in line
    assert "eve@example.com" in emails(full)

    scripted = restore(cli, policy, backup, url, "--force", "--yes")  # no input at all

    assert scripted.exit_code == 0, scripted.output
    assert emails(full) == ["ada@example.com", "grace@example.com"]
    assert "later" not in "".join(tables(full))
    assert "census identical" in scripted.stdout


def test_a_populated_wal_mode_sqlite_file_is_restored_exactly(cli: Cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    policy = write_policy(tmp_path, "sqlite:///shop.db")
    backup = prepared(cli, policy, url)
    assert run(url, "PRAGMA journal_mode") == [("wal",)]
    tables_then = tables(url)
    move_on(url)

    restored = restore(cli, policy, backup, "sqlite:///shop.db", "--force")

    assert restored.exit_code == 0, restored.output
    assert "census identical" in restored.stdout
    assert tables(url) == tables_then
    assert emails(url) == ["ada@example.com", "grace@example.com"]
    assert run(url, "SELECT name FROM users WHERE email = 'ada@example.com'") == [("Ada",)]
    assert run(url, "PRAGMA journal_mode") == [("wal",)]  # as its application chose


def test_pg_restores_first_error_is_what_a_failure_says(
    cli: Cli, pg_url: str, other_pg_url: str, tmp_path: Path
) -> None:
    """A plain pg_restore into a populated database, the run restore used to make: its
    stderr ends with the failed statement's last line, ``);``."""
    from reconciler.backup.pg_dump import PgDumpDriver, tool_error
    from reconciler.db.url import parse_database_url

    policy = write_policy(tmp_path, pg_url)
    backup = prepared(cli, policy, pg_url)
    run(other_pg_url, "CREATE TABLE _prisma_migrations (id int)")
    [dump] = (tmp_path / "backups" / "shop").glob(f"{backup}.dump")
    driver = PgDumpDriver("shop", parse_database_url(pg_url), tmp_path)
    pg_restore = driver.tool("pg_restore", driver._server_major())
    failed = subprocess.run(
        [pg_restore, "--no-owner", "--exit-on-error", "--dbname", other_pg_url, str(dump)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert failed.returncode == 1
    assert failed.stderr.strip().endswith(");")

    said = tool_error(failed.stderr, failed.returncode)

    assert said == (
        'error: could not execute query: ERROR: relation "_prisma_migrations" already exists'
    )
