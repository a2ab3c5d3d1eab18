"""The daemon's drift concern on real PostgreSQL: it checks on its own, exports
``reconciler_schema_drift_objects`` and ``SchemaDrift``, shows the drift in ``/status``, holds
every migration under ``drift: block``, and never runs one that collides with the drift."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from prometheus_client import generate_latest

from reconciler.runtime import views
from reconciler.runtime.daemon import Daemon
from tests.conftest import pg_query
from tests.drift.history import write_history

INIT = {"20260101000000_init": 'CREATE TABLE "users" ("id" INTEGER PRIMARY KEY, "email" TEXT);\n'}
PHONE = 'ALTER TABLE "users" ADD COLUMN "phone" TEXT;\n'
ORDERS = 'CREATE TABLE "orders" ("id" INTEGER PRIMARY KEY);\n'


def gauge(daemon: Daemon) -> float | None:
    value = daemon.metrics.registry.get_sample_value(
        "reconciler_schema_drift_objects", {"target": "shop"}
    )
    return value


def conditions(daemon: Daemon) -> dict[str, str]:
    return {c.type: c.reason for c in daemon.targets["shop"].conditions}


@pytest.fixture
def shop(
    tmp_path: Path, pg_url: str, write_policy: Callable[[str], Path]
) -> Iterator[Callable[[str], Daemon]]:
    """A daemon (not started: the test drives its runs) for one PostgreSQL target whose
    first migration is applied; ``drift`` is the policy's value."""
    folder = write_history(tmp_path / "migrations", "postgresql", INIT)
    daemons: list[Daemon] = []

    def make(drift: str) -> Daemon:
        policy = write_policy(
            f"""
            ledger: sqlite:///ledger.db
            targets:
              - name: shop
                environment: staging
                database: {pg_url}
                migrations: {{layout: prisma, path: {folder}}}
                drift: {drift}
            """
        )
        daemon = Daemon(policy, serving=False)
        daemons.append(daemon)
        assert daemon.reconcile("shop", "schema", trigger="once") == "InSync"
        return daemon

    yield make
    for daemon in daemons:
        daemon.stop(grace=0)


def add(tmp_path: Path, name: str, sql: str) -> None:
    write_history(tmp_path / "migrations", "postgresql", {name: sql})


def test_drift_is_checked_exported_and_shown(shop: Callable[[str], Daemon], pg_url: str) -> None:
    daemon = shop("report")
    assert gauge(daemon) == 0.0  # there from the start, before any check
    assert "reconciler_schema_drift_objects" in generate_latest(daemon.metrics.registry).decode()
    assert daemon.reconcile("shop", "drift", trigger="once") == "InSync"
    pg_query(pg_url, 'ALTER TABLE "users" ADD COLUMN "phone" TEXT')
    assert daemon.reconcile("shop", "drift", trigger="once") == "SchemaDrift"
    assert gauge(daemon) == 1.0
    assert conditions(daemon)["Ready"] == "SchemaDrift"
    assert conditions(daemon)["Stalled"] == "SchemaDrift"
    shown = views.status(daemon)["targets"][0]
    assert shown["drift"]["differences"] == [
        "users.phone: in the database, created by no migration"
    ]
    assert "drift: report, reported only" in shown["concerns"]["drift"]["message"]
    pg_query(pg_url, 'ALTER TABLE "users" DROP COLUMN "phone"')
    assert daemon.reconcile("shop", "drift", trigger="once") == "InSync"
    assert gauge(daemon) == 0.0
    assert conditions(daemon)["Ready"] == "InSync"


def test_report_applies_what_does_not_collide_and_refuses_what_does(
    shop: Callable[[str], Daemon], pg_url: str, tmp_path: Path
) -> None:
    daemon = shop("report")
    pg_query(pg_url, 'ALTER TABLE "users" ADD COLUMN "phone" TEXT')
    add(tmp_path, "20260102000000_orders", ORDERS)
    assert daemon.reconcile("shop", "schema", trigger="once") == "InSync"
    assert pg_query(pg_url, "SELECT to_regclass('orders') IS NOT NULL") == [(True,)]
    add(tmp_path, "20260103000000_phone", PHONE)
    assert daemon.reconcile("shop", "schema", trigger="once") == "SchemaDrift"
    message = daemon.targets["shop"].concerns["schema"].message
    assert message.startswith(
        "nothing applied: 20260103000000_phone creates column users.phone, which the database "
        "already has outside the migrations (drift)"
    )
    assert "drift --config" in message
    applied = "SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL"
    assert pg_query(pg_url, applied) == [(2,)]
    assert daemon.targets["shop"].schema["blocker"] == message
    assert gauge(daemon) == 1.0  # the check before the apply exported what it found


def test_block_holds_every_migration_while_there_is_drift(
    shop: Callable[[str], Daemon], pg_url: str, tmp_path: Path
) -> None:
    daemon = shop("block")
    pg_query(pg_url, 'CREATE INDEX "users_email" ON "users"("email")')
    add(tmp_path, "20260102000000_orders", ORDERS)
    assert daemon.reconcile("shop", "schema", trigger="once") == "SchemaDrift"
    message = daemon.targets["shop"].concerns["schema"].message
    assert message.startswith("nothing applied: drift: block, and 1 difference from the schema")
    assert "users: index users_email: in the database, created by no migration" in message
    assert pg_query(pg_url, "SELECT to_regclass('orders') IS NULL") == [(True,)]
    pg_query(pg_url, 'DROP INDEX "users_email"')
    assert daemon.reconcile("shop", "schema", trigger="once") == "InSync"
    assert pg_query(pg_url, "SELECT to_regclass('orders') IS NOT NULL") == [(True,)]


def test_the_ledger_in_the_target_database_is_not_drift(
    tmp_path: Path, pg_url: str, write_policy: Callable[[str], Path]
) -> None:
    """The daemon's ledger is the one its bootstrap file names, wherever the targets come
    from: its tables in the application's database are the tool's, not drift."""
    folder = write_history(tmp_path / "migrations", "postgresql", INIT)
    policy = write_policy(
        f"""
        ledger: {pg_url}
        targets:
          - name: shop
            database: {pg_url}
            migrations: {{layout: prisma, path: {folder}}}
        """
    )
    daemon = Daemon(policy, serving=False)
    try:
        assert daemon.reconcile("shop", "schema", trigger="once") == "InSync"
        assert daemon.reconcile("shop", "drift", trigger="once") == "InSync"
    finally:
        daemon.stop(grace=0)


def test_run_once_checks_for_drift_too(
    tmp_path: Path, pg_url: str, write_policy: Callable[[str], Path]
) -> None:
    """A cron job or CI running ``run --once`` gets the drift check, its gauge, its
    condition and its exit code; a check younger than ``schedule.drift`` is reported as it
    was, not made again (the replay is the cost)."""
    import time

    folder = write_history(tmp_path / "migrations", "postgresql", INIT)
    policy = write_policy(
        f"""
        ledger: sqlite:///ledger.db
        targets:
          - name: shop
            environment: staging
            database: {pg_url}
            migrations: {{layout: prisma, path: {folder}}}
            schedule: {{drift: 3s}}
        """
    )
    daemon = Daemon(policy, serving=False)
    try:
        assert daemon.run_once() == 0
        assert daemon.targets["shop"].concerns["drift"].reason == "InSync"
        pg_query(pg_url, 'ALTER TABLE "users" ADD COLUMN "phone" TEXT')
        time.sleep(3)
        assert daemon.run_once() == 1  # SchemaDrift stalls the target, as in the daemon
        state = daemon.targets["shop"].concerns["drift"]
        assert (state.reason, gauge(daemon)) == ("SchemaDrift", 1.0)
        assert conditions(daemon)["Stalled"] == "SchemaDrift"
        pg_query(pg_url, 'ALTER TABLE "users" DROP COLUMN "phone"')
        assert daemon.run_once() == 1  # within 3 s: the last check, as it was
        assert state.reason == "SchemaDrift"
        assert state.message.endswith(" UTC)")
        assert "(checked " in state.message
        assert [r.outcome for r in daemon.ledger.runs("shop", "drift")] == [
            "SchemaDrift",
            "InSync",
        ]
        time.sleep(3)
        assert daemon.run_once() == 0
        assert (state.reason, gauge(daemon)) == ("InSync", 0.0)
    finally:
        daemon.stop(grace=0)


def test_a_run_now_request_checks_for_drift_too(
    tmp_path: Path, pg_url: str, write_policy: Callable[[str], Path]
) -> None:
    import httpx

    from reconciler.runtime.endpoints import routes
    from reconciler.runtime.http import Server

    folder = write_history(tmp_path / "migrations", "postgresql", INIT)
    policy = write_policy(
        f"""
        ledger: sqlite:///ledger.db
        server: {{listen: '127.0.0.1:0', token: 'a-token-for-the-test'}}
        targets:
          - name: shop
            environment: staging
            database: {pg_url}
            migrations: {{layout: prisma, path: {folder}}}
            schedule: {{schema: 1h, drift: 1h}}
        """
    )
    daemon = Daemon(policy)
    server = Server("127.0.0.1", 0, routes(daemon)).start()
    try:
        daemon.start()  # each concern runs once within seconds, then hourly
        for concern in ("schema", "drift"):  # the first migration applied, and checked
            wait(lambda c=concern: daemon.targets["shop"].concern(c).reason == "InSync")
        pg_query(pg_url, 'ALTER TABLE "users" ADD COLUMN "phone" TEXT')
        answer = httpx.post(
            f"{server.url}/targets/shop/reconcile",
            headers={"Authorization": "Bearer a-token-for-the-test"},
        )
        assert answer.status_code == 202
        wait(lambda: gauge(daemon) == 1.0)
        assert daemon.targets["shop"].concerns["drift"].reason == "SchemaDrift"
    finally:
        server.stop()
        daemon.stop(grace=5)


def wait(check: Callable[[], bool], timeout: float = 30) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_the_run_once_command_says_the_drift_and_exits_1(
    tmp_path: Path, write_policy: Callable[[str], Path], cli: Callable[..., Result]
) -> None:
    import sqlite3

    folder = write_history(tmp_path / "migrations", "sqlite", INIT)
    policy = write_policy(
        f"""
        ledger: sqlite:///ledger.db
        targets:
          - name: shop
            environment: staging
            database: sqlite:///shop.db
            migrations: {{layout: prisma, path: {folder}}}
        """
    )
    assert cli("run", "-c", policy, "--once").exit_code == 0
    with sqlite3.connect(tmp_path / "shop.db") as db:
        db.execute('ALTER TABLE "users" ADD COLUMN "phone" TEXT')
    assert cli("run", "-c", policy, "--once").exit_code == 0  # the hourly check was made
    with sqlite3.connect(tmp_path / "ledger.db") as db:  # an hour later
        db.execute("UPDATE runs SET finished_at = '2000-01-01 00:00:00' WHERE concern = 'drift'")
    result = cli("run", "-c", policy, "--once")
    assert result.exit_code == 1
    assert (
        "shop drift: SchemaDrift: 1 difference from the schema the applied migrations build: "
        "users.phone: in the database, created by no migration; drift: report, reported only"
    ) in result.output
