"""``reconciler apply`` killed (SIGKILL) while a ``CREATE INDEX CONCURRENTLY`` waits on
another session's lock, as a real process on real PostgreSQL: the server stops the orphaned
statement, which leaves an INVALID index, and the next ``apply`` converges with no one's
help: the leftover dropped, the index built valid, each statement run once, the migration
recorded once."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import psycopg

from tests.conftest import PRISMA_PG, pg_query, run_process

MIGRATION = "20270101000000_crash"
SQL = (
    'CREATE TABLE "crash_a" ("id" INTEGER);\n'
    'CREATE INDEX CONCURRENTLY "users_crash_idx" ON "users" ("email");\n'
    'CREATE TABLE "crash_b" ("id" INTEGER);\n'
)


def wait_for(pg_url: str, sql: str, expected: object, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pg_query(pg_url, sql) == [(expected,)]:
            return
        time.sleep(0.1)
    raise AssertionError(f"never {expected!r}: {sql}")


def test_a_kill_during_a_concurrent_index_is_recovered_by_the_next_apply(
    tmp_path: Path, pg_url: str
) -> None:
    shutil.copytree(PRISMA_PG, tmp_path / "migrations")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "ledger: sqlite:///ledger.db\n"
        "targets:\n  - name: shop\n"
        f"    database: {pg_url}\n"
        "    migrations: {layout: prisma, path: migrations}\n"
        "    timeouts: {lock: 60s, statement: 10m}\n",
        encoding="utf-8",
    )
    first = run_process("apply", "-c", policy, "--yes", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    (tmp_path / "migrations" / MIGRATION).mkdir()
    (tmp_path / "migrations" / MIGRATION / "migration.sql").write_text(SQL, encoding="utf-8")
    building = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND query LIKE '%CREATE INDEX CONCURRENTLY%users_crash_idx%' "
        "AND pid <> pg_backend_pid()"
    )

    with psycopg.connect(pg_url) as blocker:  # the application's open write transaction
        blocker.execute('LOCK TABLE "users" IN ROW EXCLUSIVE MODE')
        process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "apply", "-c", str(policy), "--yes"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(pg_url, building + " AND wait_event_type = 'Lock'", 1)
        finally:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
        wait_for(pg_url, building, 0, seconds=30)  # the server let the statement go
        assert pg_query(
            pg_url,
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'users_crash_idx'::regclass",
        ) == [(False,)]
        blocker.rollback()

    again = run_process("apply", "-c", policy, "--yes", cwd=tmp_path)

    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{MIGRATION} was cut short at line 2" in again.stdout
    assert "FailedMigration" not in again.stdout
    assert pg_query(
        pg_url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'users_crash_idx'::regclass"
    ) == [(True,)]
    assert pg_query(
        pg_url, "SELECT count(*) FROM pg_class WHERE relname IN ('crash_a', 'crash_b')"
    ) == [(2,)]
    rows = pg_query(
        pg_url,
        "SELECT finished_at IS NOT NULL, rolled_back_at IS NULL, applied_steps_count, logs "
        "FROM _prisma_migrations WHERE migration_name = %s",
        (MIGRATION,),
    )
    assert len(rows) == 1, rows
    assert rows[0][:3] == (True, True, 3)
    assert 'dropped the INVALID index "users_crash_idx"' in str(rows[0][3])
    with closing(sqlite3.connect(tmp_path / "ledger.db")) as ledger:
        steps = ledger.execute(
            "SELECT outcome, error FROM steps WHERE migration = ? ORDER BY id", (MIGRATION,)
        ).fetchall()
    assert steps[-1][0] == "applied", steps
    assert 'dropped the INVALID index "users_crash_idx"' in str(steps[-1][1])
    status = run_process("apply", "-c", policy, "--yes", cwd=tmp_path)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "No changes. The database is at the desired revision." in status.stdout
