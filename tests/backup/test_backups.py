"""Backups proven by a restore, retention, and the faults that must stop a schema change."""

from __future__ import annotations

import shutil
import sqlite3
import stat
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler.act import reconcile_schema
from reconciler.act.backups import prune, take_backup
from reconciler.backup import BackupError, open_driver
from reconciler.backup.pg_dump import PgDumpDriver
from reconciler.backup.scratch import scratch_prefix
from reconciler.db.connection import connect
from reconciler.db.url import parse_database_url
from reconciler.ledger import Ledger
from reconciler.observe.census import differences, take_census
from reconciler.policy import Policy, load_policy
from tests.conftest import PRISMA_PG, PRISMA_SQLITE, SERVER, pg_query, scratch_databases

FILL = """
INSERT INTO users (email, name, clerk_id)
SELECT 'u' || i || '@example.com', CASE WHEN i % 3 = 0 THEN NULL ELSE 'Name ' || i END,
       'user_' || i FROM generate_series(1, 300) AS i;
INSERT INTO subscriptions (user_id, plan) SELECT id, 'pro' FROM users WHERE id % 2 = 0;
INSERT INTO invoices (subscription_id, amount_cents) SELECT id, id * 100 FROM subscriptions;
"""


def files(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "backups"
    return [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []


def policy_for(tmp_path: Path, url: str, *, extra: str = "", backup: str = "") -> Policy:
    folder = tmp_path / "migrations"
    if not folder.exists():
        shutil.copytree(PRISMA_PG if url.startswith("postgresql") else PRISMA_SQLITE, folder)
    driver = "pg_dump" if url.startswith("postgresql") else "sqlite"
    path = tmp_path / "policy.yaml"
    path.write_text(
        "ledger: sqlite:///ledger.db\n"
        "targets:\n  - name: shop\n"
        f"    database: {url}\n"
        "    migrations: {layout: prisma, path: migrations}\n"
        f"    backup: {{driver: {driver}, dir: backups{backup}}}\n" + extra
    )
    return load_policy(path, environ={})


@pytest.fixture
def shop(pg_url: str, tmp_path: Path) -> tuple[str, Policy]:
    """A migrated PostgreSQL shop with 300 users, subscriptions and invoices."""
    policy = policy_for(tmp_path, pg_url)
    with Ledger(policy.ledger) as ledger:
        assert reconcile_schema(policy.targets[0], ledger, trigger="t", source="p").in_sync
    pg_query(pg_url, FILL)
    return pg_url, policy


def owner_only(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) == 0o600


def test_pg_dump_backup_restores_every_row(
    shop: tuple[str, Policy], pg_url: str, tmp_path: Path
) -> None:
    url, policy = shop
    target = policy.targets[0]
    with Ledger(policy.ledger) as ledger:
        result = take_backup(target, ledger, reason="manual")
        record = ledger.backup(result.artifact.id)
    assert result.verified is True
    assert record is not None
    assert record.verified is True
    assert record.size_bytes == Path(result.artifact.location).stat().st_size
    assert len(record.sha256 or "") == 64
    assert not list(Path(result.artifact.location).parent.glob(".*partial"))
    assert owner_only(Path(result.artifact.location))  # customer data: 0600

    name = pg_url.rsplit("/", 1)[1] + "_copy"
    pg_query(SERVER, f'CREATE DATABASE "{name}"')
    try:
        copy_url = SERVER.rsplit("/", 1)[0] + "/" + name
        open_driver(target).restore(result.artifact, parse_database_url(copy_url))
        live, copy = (connect(parse_database_url(u)) for u in (url, copy_url))
        assert differences(take_census(live), take_census(copy)) == []
        assert take_census(copy).tables["users"].rows == 300
        assert take_census(copy).tables["users"].non_null["name"] == 200
        live.close()
        copy.close()
    finally:
        pg_query(SERVER, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert scratch_databases(url) == []


def test_sqlite_backup_round_trip(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    policy = policy_for(tmp_path, url)
    with Ledger(policy.ledger) as ledger:
        assert reconcile_schema(policy.targets[0], ledger, trigger="t", source="p").in_sync
        with sqlite3.connect(tmp_path / "shop.db") as conn:
            conn.executemany(
                "INSERT INTO users (email, name) VALUES (?, ?)",
                [(f"u{i}@x", None if i % 4 else f"n{i}") for i in range(500)],
            )
        result = take_backup(policy.targets[0], ledger, reason="manual")
    assert result.verified is True
    assert owner_only(Path(result.artifact.location))
    restored = tmp_path / "restored.db"
    open_driver(policy.targets[0]).restore(
        result.artifact, parse_database_url(f"sqlite:///{restored}")
    )
    with sqlite3.connect(restored) as conn:
        assert conn.execute("SELECT count(*), count(name) FROM users").fetchone() == (500, 125)


def test_retention_keeps_the_newest_and_the_newest_verified(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    policy = policy_for(tmp_path, url, backup=", keep: {last: 2, max_age: 10d}")
    target = policy.targets[0]
    with Ledger(policy.ledger) as ledger:
        reconcile_schema(target, ledger, trigger="t", source="p")
        ids = [take_backup(target, ledger, reason="manual").artifact.id for _ in range(4)]
        kept = [b.id for b in ledger.backups("shop")]
        assert kept == [ids[3], ids[2]], "keep.last: 2 keeps the two newest"
        for gone in ids[:2]:
            assert not list((tmp_path / "backups" / "shop").glob(f"{gone}*"))
        # Twenty days on, every backup is past max_age, but the newest verified one stays.
        removed = prune(
            target, open_driver(target), ledger, now=datetime.now(UTC) + timedelta(days=20)
        )
        assert removed == [ids[2]]
        assert [b.id for b in ledger.backups("shop")] == [ids[3]]


def test_corrupted_dump_fails_verification_and_blocks_apply(
    shop: tuple[str, Policy], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, policy = shop
    original = PgDumpDriver._dump

    def corrupting(self: PgDumpDriver, snapshot: str | None):  # type: ignore[no-untyped-def]
        artifact = original(self, snapshot)
        data = Path(artifact.location).read_bytes()
        Path(artifact.location).write_bytes(data[: len(data) // 2])
        return artifact

    monkeypatch.setattr(PgDumpDriver, "_dump", corrupting)
    folder = tmp_path / "migrations" / "20261201000000_add_notes"
    folder.mkdir()
    (folder / "migration.sql").write_text('ALTER TABLE "users" ADD COLUMN "notes" TEXT;\n')
    with Ledger(policy.ledger) as ledger:
        outcome = reconcile_schema(policy.targets[0], ledger, trigger="t", source="p")
        records = ledger.backups("shop")
    assert outcome.reason == "BackupFailed"
    assert "failed verification" in outcome.message
    assert records[0].verified is False
    assert pg_query(
        url,
        "SELECT count(*) FROM information_schema.columns WHERE "
        "table_name = 'users' AND column_name = 'notes'",
    ) == [(0,)]


def test_garbage_dump_fails_at_restore(shop: tuple[str, Policy], tmp_path: Path) -> None:
    _, policy = shop
    target = policy.targets[0]
    driver = open_driver(target)
    with Ledger(policy.ledger) as ledger:
        artifact = take_backup(target, ledger, reason="manual").artifact
    Path(artifact.location).write_bytes(b"PGDMP not really a dump")
    from dataclasses import replace

    from reconciler.act.backups import verify

    problems = verify(driver, replace(artifact, sha256=None), None, target)
    assert problems
    assert problems[0].startswith("restore failed: pg_restore of")


@pytest.mark.parametrize("fault", ["missing", "too-old", "failing", "dir-is-a-file", "disk-full"])
def test_backup_faults_apply_nothing(
    shop: tuple[str, Policy], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    url, policy = shop
    from reconciler.backup import pg_dump

    expected = {
        "missing": "pg_dump not found",
        "too-old": "pg_dump 12 is older than the server",
        "failing": "pg_dump of shop failed",
        "dir-is-a-file": "backup directory",
        "disk-full": "No space left on device",
    }[fault]
    before = sorted(files(tmp_path))
    if fault == "missing":
        monkeypatch.setattr(pg_dump, "_installed", lambda name: {})
    elif fault == "too-old":
        monkeypatch.setattr(pg_dump, "_installed", lambda name: {12: "/usr/bin/" + name})
    elif fault == "failing":
        fake = tmp_path / "pg_dump"
        fake.write_text("#!/bin/sh\necho 'pg_dump: error: connection lost' >&2\nexit 1\n")
        fake.chmod(0o755)
        monkeypatch.setattr(pg_dump, "_installed", lambda name: {15: str(fake), 99: str(fake)})
    elif fault == "dir-is-a-file":
        shutil.rmtree(tmp_path / "backups")
        (tmp_path / "backups").write_text("not a folder")
    else:

        def full(src: object, dst: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(pg_dump.os, "replace", full)
    folder = tmp_path / "migrations" / "20261201000000_add_notes"
    folder.mkdir()
    (folder / "migration.sql").write_text('ALTER TABLE "users" ADD COLUMN "notes" TEXT;\n')
    with Ledger(policy.ledger) as ledger:
        outcome = reconcile_schema(policy.targets[0], ledger, trigger="t", source="p")
    assert outcome.reason == "BackupFailed", outcome.message
    assert expected in outcome.message
    assert outcome.applied == 0
    assert pg_query(
        url,
        "SELECT count(*) FROM information_schema.columns WHERE "
        "table_name = 'users' AND column_name = 'notes'",
    ) == [(0,)]
    if (tmp_path / "backups").is_dir():
        assert sorted(files(tmp_path)) == before, "no partial or new file is left behind"


def test_scratch_database_that_cannot_be_created_blocks(
    shop: tuple[str, Policy], tmp_path: Path
) -> None:
    url, _ = shop
    role = f"rt_nocreatedb_{uuid.uuid4().hex[:8]}"  # roles are server-wide: one of our own
    pg_query(SERVER, f"CREATE ROLE {role} LOGIN NOCREATEDB")
    pg_query(url, f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
    pg_query(url, f"GRANT ALL ON SCHEMA public TO {role}")
    pg_query(url, f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
    try:
        weak = url.replace("postgres@", f"{role}@")
        policy = policy_for(tmp_path, weak)
        with (
            Ledger(policy.ledger) as ledger,
            pytest.raises(BackupError, match=r"cannot create the scratch database"),
        ):
            take_backup(policy.targets[0], ledger, reason="manual")
    finally:
        pg_query(url, f"REASSIGN OWNED BY {role} TO postgres")
        pg_query(url, f"DROP OWNED BY {role}")
        pg_query(SERVER, f"DROP ROLE IF EXISTS {role}")


def test_leftover_scratch_databases_are_dropped_at_the_next_run(
    shop: tuple[str, Policy], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url, policy = shop
    leftover = f"{scratch_prefix(parse_database_url(url), 'shop')}20000101000000_dead01"
    # Another deployment's target on this server is called shop too: its scratch database
    # is not this target's to drop.
    foreign = f"rcl_scratch_shop_20000101000000_{uuid.uuid4().hex[:6]}"
    for name in (leftover, foreign):
        pg_query(SERVER, f'CREATE DATABASE "{name}"')
    request.addfinalizer(lambda: pg_query(SERVER, f'DROP DATABASE IF EXISTS "{foreign}"'))
    folder = tmp_path / "migrations" / "20261201000000_add_notes"
    folder.mkdir()
    (folder / "migration.sql").write_text('ALTER TABLE "users" ADD COLUMN "notes" TEXT;\n')
    with Ledger(policy.ledger) as ledger:
        outcome = reconcile_schema(policy.targets[0], ledger, trigger="t", source="p")
    assert outcome.in_sync, outcome.message
    assert scratch_databases(url) == []
    assert pg_query(SERVER, "SELECT 1 FROM pg_database WHERE datname = %s", (foreign,))
