"""Ctrl-C during ``reconciler apply``, as a real process on real PostgreSQL: the running
migration's transaction rolls back, the output says so, the ledger records the run as
interrupted (not a failure to settle), and the next ``apply`` runs the migration."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

from tests.conftest import PRISMA_PG, pg_query, run_process

SLOW = "20270101000000_slow"


TRANSACTIONAL = (
    'CREATE TABLE "slow_a" ("id" INTEGER);\nSELECT pg_sleep(30);\n'
    'CREATE TABLE "slow_b" ("id" INTEGER);\n'
)


def slow_apply(tmp_path: Path, pg_url: str, sql: str = TRANSACTIONAL) -> Path:
    """A policy whose history is applied, and one more migration that sleeps mid-way."""
    shutil.copytree(PRISMA_PG, tmp_path / "migrations")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "ledger: sqlite:///ledger.db\n"
        "targets:\n  - name: shop\n"
        f"    database: {pg_url}\n"
        "    migrations: {layout: prisma, path: migrations}\n",
        encoding="utf-8",
    )
    first = run_process("apply", "-c", policy, "--yes", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    folder = tmp_path / "migrations" / SLOW
    folder.mkdir()
    (folder / "migration.sql").write_text(sql, encoding="utf-8")
    return policy


def interrupt_apply(tmp_path: Path, policy: Path, pg_url: str) -> tuple[int, str]:
    """Run ``apply``, press Ctrl-C while its migration sleeps; the exit code and output."""
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", "-c", str(policy), "--yes"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            running = pg_query(
                pg_url,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()",
            )
            if running == [(1,)]:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the slow migration never started")
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, output


def last_run(tmp_path: Path) -> tuple[str, str]:
    with closing(sqlite3.connect(tmp_path / "ledger.db")) as ledger:
        row = ledger.execute("SELECT outcome, message FROM runs ORDER BY id DESC LIMIT 1")
        outcome, message = row.fetchone()
    return str(outcome), str(message)


def test_ctrl_c_rolls_the_running_migration_back_and_says_so(tmp_path: Path, pg_url: str) -> None:
    policy = slow_apply(tmp_path, pg_url)
    code, output = interrupt_apply(tmp_path, policy, pg_url)
    assert code == 130, output
    assert f"~ applying {SLOW} ... interrupted, rolled back" in output
    assert (
        f"Apply stopped (Interrupted): shop: {SLOW} was interrupted (Ctrl-C): its "
        "transaction was rolled back, nothing of it is applied; the next apply runs it again"
    ) in output
    assert "Aborted!" not in output
    assert "Traceback" not in output
    # Nothing of it: no table of its first statement, no history row.
    assert pg_query(pg_url, "SELECT to_regclass('slow_a')") == [(None,)]
    assert pg_query(
        pg_url, "SELECT count(*) FROM _prisma_migrations WHERE migration_name = %s", (SLOW,)
    ) == [(0,)]
    run = last_run(tmp_path)
    assert run[0] == "Interrupted"
    assert "nothing of it is applied" in run[1]

    # No resolve needed: the next apply runs it (shortened, so the test stays short).
    script = tmp_path / "migrations" / SLOW / "migration.sql"
    script.write_text(script.read_text().replace("pg_sleep(30)", "pg_sleep(0)"))
    again = run_process("apply", "-c", policy, "--yes", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "applied 1 migration" in again.stdout
    assert pg_query(pg_url, "SELECT to_regclass('slow_b') IS NOT NULL") == [(True,)]


def test_ctrl_c_in_a_migration_outside_one_transaction_says_what_stays(
    tmp_path: Path, pg_url: str
) -> None:
    """A script with a CONCURRENTLY statement runs in parts, each committed on its own: the
    parts before the one interrupted stay, so it is not said to be rolled back (the next
    apply resumes it after the parts in effect: ``test_apply_crash``)."""
    sql = (
        'CREATE TABLE "slow_a" ("id" INTEGER);\n'
        'CREATE INDEX CONCURRENTLY "slow_a_id" ON "slow_a" ("id");\nSELECT pg_sleep(30);\n'
    )
    policy = slow_apply(tmp_path, pg_url, sql)
    code, output = interrupt_apply(tmp_path, policy, pg_url)
    assert code == 130, output
    assert f"~ applying {SLOW} ... FAILED" in output
    assert (
        f"Apply stopped (ApplyFailed): shop: {SLOW} was interrupted (Ctrl-C) part-way: it "
        "does not run in one transaction of reconciler's, so the statements it completed "
        "stay in effect"
    ) in output
    assert "rolled back" not in output
    assert "Traceback" not in output
    assert pg_query(pg_url, "SELECT to_regclass('slow_a') IS NOT NULL") == [(True,)]
    assert last_run(tmp_path)[0] == "ApplyFailed"
