"""The daemon's cycle across targets, in-process: connections kept between runs, leadership
on one shared connection, and targets that cannot be reached reported, never skipped."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reconciler.db.locks import NAMESPACE
from reconciler.runtime.daemon import Daemon
from reconciler.runtime.endpoints import routes
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
    holders = lock_holders(ledger)
    assert len(holders) == 1  # one connection holds both targets' locks
    terminate(ledger, holders[0])
    assert second.run_once() == 0  # the locks went with the connection: it leads now
    assert [t.leader for t in second.targets.values()] == [True, True]
    runs_before = len(first.ledger.runs("shop", limit=100))
    assert first.run_once() == 0
    assert [t.leader for t in first.targets.values()] == [False, False]
    assert len(first.ledger.runs("shop", limit=100)) == runs_before  # it did not act


def lock_holders(ledger: str) -> list[int]:
    """The sessions holding leadership locks on this ledger's database."""
    rows = pg_query(
        ledger,
        "SELECT DISTINCT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 "
        "AND classid = %s AND database = "
        "(SELECT oid FROM pg_database WHERE datname = current_database())",
        (NAMESPACE,),
    )
    return [int(str(r[0])) for r in rows]


def terminate(url: str, pid: int) -> None:
    """End a session and wait until it is gone, and its locks with it (the plain call only
    signals it: the next try for its lock could still find it held)."""
    assert pg_query(url, "SELECT pg_terminate_backend(%s, 10000)", (pid,)) == [(True,)]


def reported(daemon: Daemon) -> tuple[bool, bool]:
    """Whether ``/status`` and ``/metrics`` say this replica leads ``shop``."""
    table = routes(daemon)
    _, _, body = table[("GET", "/status")]({}, b"")
    status = next(t for t in json.loads(body)["targets"] if t["name"] == "shop")
    _, _, text = table[("GET", "/metrics")]({}, b"")
    return bool(status["leader"]), 'reconciler_leader{target="shop"} 1.0' in text.decode()


class Watch:
    """Polls both replicas' ``/status`` and ``/metrics``, one after the other, every 20 ms,
    and keeps who said it leads, in the order asked."""

    def __init__(self, replicas: dict[str, Daemon]) -> None:
        self.replicas = replicas
        self.said: list[tuple[str, str]] = []  # (replica, "status" or "metrics")
        self.polls = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.poll, daemon=True)
        self.thread.start()

    def poll(self) -> None:
        while not self.done.is_set():
            for name, daemon in self.replicas.items():
                status, metrics = reported(daemon)
                self.said += [(name, "status")] if status else []
                self.said += [(name, "metrics")] if metrics else []
            self.polls += 1
            time.sleep(0.02)

    def stop(self) -> list[str]:
        """Who was reported leader, each change of hands once."""
        self.done.set()
        self.thread.join(timeout=30)
        leaders: list[str] = []
        for name, _ in self.said:
            if not leaders or leaders[-1] != name:
                leaders.append(name)
        return leaders


def test_a_replica_that_lost_its_lock_connection_never_reports_or_acts_as_leader(
    pg_url: str, other_pg_url: str, deploy: Deploy
) -> None:
    ledger, fleet = pg_url, (("shop", other_pg_url),)
    first, second = deploy(*fleet, ledger=ledger), deploy(*fleet, ledger=ledger)
    assert first.run_once() == 0
    assert second.run_once() == 0
    watch = Watch({"first": first, "second": second})
    time.sleep(0.5)
    (holder,) = lock_holders(ledger)
    terminate(ledger, holder)
    assert second.run_once() == 0  # the lock was free: the second replica takes the lead
    time.sleep(1.0)
    runs = len(first.ledger.runs("shop", limit=100))
    assert first.run_once() == 0  # the first finds it lost the lead: it does not act
    assert len(first.ledger.runs("shop", limit=100)) == runs
    time.sleep(1.0)
    # Requests taken in order, one at a time: once the second replica said it leads, the
    # first never did again, in /status or in its metrics; so the two never both led.
    assert watch.stop() == ["first", "second"]
    assert watch.polls > 20  # it watched throughout
    assert reported(first) == (False, False)
    assert reported(second) == (True, True)


def test_a_replica_that_cannot_reconnect_its_locks_does_not_report_the_lead(
    pg_url: str, other_pg_url: str, deploy: Deploy
) -> None:
    ledger = pg_url
    daemon = deploy(("shop", other_pg_url), ledger=ledger)
    assert daemon.run_once() == 0
    assert reported(daemon) == (True, True)
    (holder,) = lock_holders(ledger)
    name = ledger.rsplit("/", 1)[1]
    pg_query(other_pg_url, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    try:
        terminate(other_pg_url, holder)
        assert daemon.run_once() == 1  # no connection to hold the lock on: reported
        assert daemon.targets["shop"].concerns["schema"].reason == "DatabaseUnavailable"
        assert daemon.targets["shop"].leader is False
        assert reported(daemon) == (False, False)
    finally:
        pg_query(other_pg_url, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    assert daemon.run_once() == 0  # back: it leads again
    assert reported(daemon) == (True, True)


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
