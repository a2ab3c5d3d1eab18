"""The daemon's cycle across targets, in-process: connections kept between runs, leadership
on one shared connection, and targets that cannot be reached reported, never skipped."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reconciler.runtime.daemon import Daemon
from tests.conftest import PRISMA_PG, pg_query

RECONCILER_PIDS = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
    "AND application_name = 'reconciler' AND pid <> pg_backend_pid()"
)


Deploy = Callable[..., Daemon]


@pytest.fixture
def deploy(tmp_path: Path, write_policy: Callable[..., Path]) -> Iterator[Deploy]:
    """A daemon over ``(name, database URL)`` targets sharing one copy of the example
    history; the ledger defaults to SQLite. Stopped after the test."""
    started: list[Daemon] = []
    shutil.copytree(PRISMA_PG, tmp_path / "migrations")

    def make(*targets: tuple[str, str], ledger: str = f"sqlite:///{tmp_path}/l.db") -> Daemon:
        listed = "".join(
            f"""
              - name: {name}
                database: {url}
                migrations: {{layout: prisma, path: migrations}}
                schedule: {{schema: 1h, identity: null}}
            """
            for name, url in targets
        )
        daemon = Daemon(write_policy(f"ledger: {ledger}\ntargets:{listed}"))
        started.append(daemon)
        return daemon

    yield make
    for daemon in started:
        daemon.stop(grace=0)


def test_in_sync_runs_keep_one_connection_and_record_every_run(pg_url: str, deploy: Deploy) -> None:
    daemon = deploy(("shop", pg_url))
    assert daemon.run_once() == 0  # applies the history: that connection is not kept
    assert pg_query(pg_url, RECONCILER_PIDS) == []
    pids = []
    for _ in range(3):
        assert daemon.run_once() == 0
        pids.append(pg_query(pg_url, RECONCILER_PIDS))
    assert len(pids[0]) == 1
    assert pids[0] == pids[1] == pids[2]
    runs = daemon.ledger.runs("shop")
    assert [r.outcome for r in runs] == ["InSync"] * 4
    assert all(r.finished_at is not None and r.finished_at >= r.started_at for r in runs)
    assert runs[0].message == runs[1].message  # each look is its own record
    daemon.stop(grace=0)
    assert pg_query(pg_url, RECONCILER_PIDS) == []


def test_a_setting_left_by_a_migration_does_not_reach_later_runs(
    pg_url: str, tmp_path: Path, deploy: Deploy
) -> None:
    daemon = deploy(("shop", pg_url))
    assert daemon.run_once() == 0
    assert daemon.run_once() == 0  # now a connection is kept
    leaves = tmp_path / "migrations" / "20990101000000_leaves_a_setting"
    leaves.mkdir()
    # A session-level setting: a connection kept after this run would carry it into the
    # next one, and the next migration would fail there.
    (leaves / "migration.sql").write_text(
        "CREATE TABLE note (id int);\nSET default_transaction_read_only = on;\n",
        encoding="utf-8",
    )
    assert daemon.run_once() == 0
    assert daemon.targets["shop"].concerns["schema"].message.startswith("applied 1 migration")
    after = tmp_path / "migrations" / "20990101000001_after_it"
    after.mkdir()
    (after / "migration.sql").write_text("CREATE TABLE later (id int);\n", encoding="utf-8")
    assert daemon.run_once() == 0, daemon.targets["shop"].concerns["schema"].message
    assert pg_query(pg_url, "SELECT to_regclass('later') IS NOT NULL") == [(True,)]


def test_leadership_of_a_fleet_is_one_connection_and_moves_when_it_is_lost(
    pg_url: str, other_pg_url: str, deploy: Deploy
) -> None:
    ledger = pg_url  # a PostgreSQL ledger holds every target's lock
    fleet = (("shop", pg_url), ("admin", other_pg_url))
    first, second = deploy(*fleet, ledger=ledger), deploy(*fleet, ledger=ledger)
    assert first.run_once() == 0
    assert second.run_once() == 0  # the other replica leads both: nothing to do here
    assert [t.leader for t in first.targets.values()] == [True, True]
    assert [t.leader for t in second.targets.values()] == [False, False]
    holders = pg_query(
        ledger,
        "SELECT DISTINCT pid FROM pg_locks WHERE locktype = 'advisory' AND objid IS NOT NULL "
        "AND classid = %s AND database = "
        "(SELECT oid FROM pg_database WHERE datname = current_database())",
        (0x7265636F,),
    )
    assert len(holders) == 1  # one connection holds both targets' locks
    pg_query(ledger, "SELECT pg_terminate_backend(%s)", (holders[0][0],))
    assert second.run_once() == 0  # the locks went with the connection: it leads now
    assert [t.leader for t in second.targets.values()] == [True, True]
    runs_before = len(first.ledger.runs("shop", limit=100))
    assert first.run_once() == 0
    assert [t.leader for t in first.targets.values()] == [False, False]
    assert len(first.ledger.runs("shop", limit=100)) == runs_before  # it did not act


def test_a_target_whose_lock_cannot_be_taken_is_reported(
    deploy: Deploy,
) -> None:
    daemon = deploy(("shop", "postgresql://postgres@127.0.0.1:9/shop"))  # nothing on port 9
    assert daemon.run_once() == 1
    state = daemon.targets["shop"].concerns["schema"]
    assert state.reason == "DatabaseUnavailable"
    assert "127.0.0.1:9" in state.message


def test_a_reload_runs_each_concern_once(pg_url: str, deploy: Deploy) -> None:
    daemon = deploy(("shop", pg_url))
    daemon.start()

    def runs_after(count: int) -> int:
        deadline = time.monotonic() + 20
        while len(daemon.ledger.runs("shop")) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(3)  # the schedule's first runs come within 2 s: any duplicate by now
        return len(daemon.ledger.runs("shop"))

    assert runs_after(1) == 1
    daemon.reload()
    assert runs_after(2) == 2


def test_the_daemon_prunes_its_ledger_as_the_policy_says(
    pg_url: str, tmp_path: Path, write_policy: Callable[..., Path]
) -> None:
    shutil.copytree(PRISMA_PG, tmp_path / "migrations", dirs_exist_ok=True)
    daemon = Daemon(
        write_policy(
            f"""
            ledger: sqlite:///{tmp_path}/l.db
            retention: {{quiet: 0s}}
            targets:
              - name: shop
                database: {pg_url}
                migrations: {{layout: prisma, path: migrations}}
                schedule: {{schema: 1h, identity: null}}
            """
        )
    )
    try:
        for _ in range(3):
            assert daemon.run_once() == 0
        first, *_, last = [r.id for r in reversed(daemon.ledger.runs("shop"))]
        daemon.prune_ledger()
        # The run that applied the history stays; of the in-sync ones, only the newest.
        assert sorted(r.id for r in daemon.ledger.runs("shop")) == [first, last]
    finally:
        daemon.stop(grace=0)
