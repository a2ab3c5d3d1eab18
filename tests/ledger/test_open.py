"""Replicas started together on a fresh ledger: every one opens it, its schema migrated once.

Each opener is a real process (as replicas are: Alembic's context is one per process), made
ready first and then released at the same instant, as the replicas of a first deploy start;
each round is a fresh ledger."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from reconciler.db.locks import LEDGER_MIGRATIONS, NAMESPACE
from reconciler.db.url import parse_database_url
from reconciler.ledger import Ledger, store
from reconciler.ledger.store import HEAD, LedgerLocked
from tests.conftest import ROOT, pg_query

OPENERS = 4
ROUNDS = 5
OPENER = """
import sys
import alembic.command, alembic.config  # loaded before the start: the opens overlap more
from reconciler.db.url import parse_database_url
from reconciler.ledger.store import Ledger
print("ready", flush=True)
sys.stdin.readline()
try:
    Ledger(parse_database_url(sys.argv[1])).close()
except Exception as exc:
    print(f"{type(exc).__name__}: {exc}", flush=True)
    sys.exit(1)
"""


def open_together(url: str) -> list[str]:
    """``OPENERS`` processes open the ledger at ``url`` at once; what the failing ones said."""
    openers = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
        for _ in range(OPENERS)
    ]
    try:
        for opener in openers:
            assert opener.stdout is not None
            assert opener.stdout.readline().strip() == "ready"
        for opener in openers:  # all at once
            assert opener.stdin is not None
            opener.stdin.write("go\n")
            opener.stdin.flush()
        said = [opener.communicate(timeout=60)[0] for opener in openers]
    finally:
        for opener in openers:
            if opener.poll() is None:
                opener.kill()
                opener.wait()
    return [s.strip() for s, o in zip(said, openers, strict=True) if o.returncode != 0]


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_replicas_open_a_fresh_postgresql_ledger_together(round_: int, pg_url: str) -> None:
    assert open_together(pg_url) == []
    assert pg_query(pg_url, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    with Ledger(parse_database_url(pg_url)) as ledger:  # and it is a ledger that works
        ledger.finish_run(ledger.start_run("shop", "schema", "schedule", "p.yaml"), "InSync", "")


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_replicas_open_a_fresh_sqlite_ledger_together(round_: int, tmp_path: Path) -> None:
    path = tmp_path / "var" / "ledger.db"  # its folder is created by the openers too
    assert open_together(f"sqlite:///{path}") == []
    import sqlite3

    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
    with Ledger(parse_database_url(f"sqlite:///{path}")) as ledger:
        ledger.finish_run(ledger.start_run("shop", "schema", "schedule", "p.yaml"), "InSync", "")


MIGRATION_LOCKS = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s "
    "AND objid = %s AND objsubid = 1 AND database = "
    "(SELECT oid FROM pg_database WHERE datname = current_database())"
)


def open_in_thread(url: str) -> tuple[threading.Thread, list[object]]:
    result: list[object] = []

    def open_one() -> None:
        try:
            result.append(Ledger(parse_database_url(url)))
        except Exception as exc:  # the test's finding
            result.append(exc)

    thread = threading.Thread(target=open_one)
    thread.start()
    return thread, result


def the_ledger(result: list[object]) -> Ledger:
    assert len(result) == 1, result
    assert isinstance(result[0], Ledger), result
    return result[0]


def test_a_replica_waits_for_the_one_migrating_the_ledger(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as other:  # another replica, migrating
        other.execute("SELECT pg_advisory_lock(%s)", (LEDGER_MIGRATIONS,))
        thread, result = open_in_thread(pg_url)
        time.sleep(1.0)
        assert thread.is_alive()  # waiting,
        assert result == []  # not failing
        assert pg_query(pg_url, "SELECT to_regclass('alembic_version')") == [(None,)]
    thread.join(timeout=60)  # the other session ended: its lock went with it
    ledger = the_ledger(result)
    assert pg_query(pg_url, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    # The ledger is open; the lock it took to migrate is not held any more.
    locks = pg_query(pg_url, MIGRATION_LOCKS, (NAMESPACE, LEDGER_MIGRATIONS & 0xFFFFFFFF))
    ledger.close()
    assert locks == [(0,)]


def test_a_stuck_holder_of_the_migration_lock_is_named_not_waited_for_forever(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session left holding the lock (a replica hung mid-migration, a forgotten psql)
    would keep every replica from starting, silently; past the wait, the holder is named."""
    monkeypatch.setattr(store, "MIGRATION_LOCK_WAIT", 1.0)
    with psycopg.connect(pg_url, autocommit=True) as other:
        other.execute("SET application_name = 'stuck-migrator'")
        other.execute("SELECT pg_advisory_lock(%s)", (LEDGER_MIGRATIONS,))
        holder = other.info.backend_pid
        started = time.monotonic()
        with pytest.raises(LedgerLocked) as raised:
            Ledger(parse_database_url(pg_url))
        assert time.monotonic() - started < 30
        message = str(raised.value)
        assert f"pid {holder} (stuck-migrator, idle)" in message
        assert "held for over 1s" in message
        assert message.startswith("ledger postgresql://")
        # Nothing was created, and the next start, once the holder is gone, migrates.
        assert pg_query(pg_url, "SELECT to_regclass('alembic_version')") == [(None,)]
    Ledger(parse_database_url(pg_url)).close()
    assert pg_query(pg_url, "SELECT version_num FROM alembic_version") == [(HEAD,)]


def test_a_ledger_at_head_opens_without_taking_the_lock(pg_url: str) -> None:
    Ledger(parse_database_url(pg_url)).close()
    with psycopg.connect(pg_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (LEDGER_MIGRATIONS,))
        thread, result = open_in_thread(pg_url)
        thread.join(timeout=10)
        assert not thread.is_alive(), "an open at head waited for the migration lock"
    the_ledger(result).close()
