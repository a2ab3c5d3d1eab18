"""A fleet of tenants that share one history replays it once: the schema built is kept by
dialect and the checksums of the applied migrations, for the life of the process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from reconciler.db.connection import connect
from reconciler.drift import check_drift
from reconciler.drift.replay import clear_cache, replay_count
from reconciler.policy import Policy, load_policy
from tests.conftest import _fresh_database
from tests.drift.history import migrate, write_history

HISTORY = {
    "20260101000000_init": 'CREATE TABLE "users" ("id" INTEGER PRIMARY KEY, "email" TEXT);\n',
    "20260102000000_orders": 'CREATE TABLE "orders" ("id" INTEGER PRIMARY KEY, "note" TEXT);\n',
}


def fleet(tmp_path: Path, provider: str, urls: list[str]) -> Policy:
    """Tenants ``t0``, ``t1``... on ``urls``, all migrated from one folder."""
    folder = write_history(tmp_path / "migrations", provider, HISTORY)
    targets = "".join(
        f"  - name: t{i}\n    database: {url}\n    migrations: {{layout: prisma, path: {folder}}}\n"
        for i, url in enumerate(urls)
    )
    path = tmp_path / "policy.yaml"
    path.write_text(f"ledger: sqlite:///ledger.db\ntargets:\n{targets}", encoding="utf-8")
    policy = load_policy(path, environ={})
    for spec in policy.targets:
        migrate(spec)
    return policy


@pytest.fixture
def pg_fleet(pg_server: str, tmp_path: Path) -> Iterator[Policy]:
    with ExitStack() as stack:
        urls = [stack.enter_context(_fresh_database(pg_server)) for _ in range(3)]
        yield fleet(tmp_path, "postgresql", urls)


def test_tenants_sharing_a_history_replay_it_once(pg_fleet: Policy) -> None:
    clear_cache()
    before = replay_count()
    first, second, third = pg_fleet.targets
    assert check_drift(first).differences == []
    db = connect(second.database)
    try:
        db.execute('ALTER TABLE "users" ADD COLUMN "phone" TEXT')
    finally:
        db.close()
    said = [d.message for d in check_drift(second).differences]
    assert said == ["users.phone: in the database, created by no migration"]
    assert check_drift(third).differences == []
    assert replay_count() - before == 1
    # Checked again: the history is unchanged, so nothing is replayed.
    assert check_drift(first).differences == []
    assert replay_count() - before == 1


def test_an_edited_migration_is_replayed_again(tmp_path: Path) -> None:
    urls = [f"sqlite:///{tmp_path / f't{i}.db'}" for i in range(2)]
    one, two = fleet(tmp_path, "sqlite", urls).targets
    clear_cache()
    before = replay_count()
    assert check_drift(one).differences == []
    assert check_drift(two).differences == []
    assert replay_count() - before == 1
    sql = next((tmp_path / "migrations").glob("*_orders/migration.sql"))
    sql.write_text(sql.read_text() + 'CREATE INDEX "orders_note" ON "orders"("note");\n')
    report = check_drift(one)
    assert replay_count() - before == 2
    assert [d.message for d in report.differences] == [
        "orders: index orders_note: dropped in the database, still created by the migrations"
    ]
