"""``reconciler apply`` checks for drift before its first migration: under ``report`` it
refuses one that creates what drift made, naming both; under ``block`` it applies nothing
while there is drift; ``schedule.drift: null`` turns the check off."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.drift.history import write_history

INIT = {"20260101000000_init": 'CREATE TABLE "users" ("id" INTEGER PRIMARY KEY, "email" TEXT);\n'}
PHONE = {"20260102000000_phone": 'ALTER TABLE "users" ADD COLUMN "phone" TEXT;\n'}


def setup(tmp_path: Path, cli: Callable[..., Result], extra: str) -> tuple[Path, Path]:
    folder = write_history(tmp_path / "migrations", "sqlite", INIT)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "ledger: sqlite:///ledger.db\ntargets:\n  - name: shop\n    environment: staging\n"
        f"    database: sqlite:///shop.db\n    migrations: {{layout: prisma, path: {folder}}}\n"
        + extra,
        encoding="utf-8",
    )
    assert cli("apply", "-c", policy, "--yes").exit_code == 0
    with sqlite3.connect(tmp_path / "shop.db") as db:
        db.execute('ALTER TABLE "users" ADD COLUMN "phone" TEXT')  # a db push
    return policy, folder


def applied(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "shop.db") as db:
        return int(db.execute("SELECT count(*) FROM _prisma_migrations").fetchone()[0])


def test_apply_refuses_a_migration_that_collides_with_drift(
    tmp_path: Path, cli: Callable[[str | Path], Result]
) -> None:
    policy, folder = setup(tmp_path, cli, "    drift: report\n")
    write_history(folder, "sqlite", PHONE)
    result = cli("apply", "-c", policy, "--yes")
    assert result.exit_code == 1
    assert (
        "nothing applied: 20260102000000_phone creates column users.phone, which the database "
        "already has outside the migrations (drift)"
    ) in result.output
    assert applied(tmp_path) == 1


@pytest.mark.parametrize(
    ("extra", "held"), [("    drift: block\n", True), ("    schedule: {drift: null}\n", False)]
)
def test_block_holds_everything_and_null_checks_nothing(
    tmp_path: Path, cli: Callable[[str | Path], Result], extra: str, held: bool
) -> None:
    policy, folder = setup(tmp_path, cli, extra)
    write_history(folder, "sqlite", {"20260102000000_orders": 'CREATE TABLE "orders" ("id" INT);'})
    result = cli("apply", "-c", policy, "--yes")
    if held:
        assert result.exit_code == 1
        assert "nothing applied: drift: block, and 1 difference" in result.output
        assert "users.phone: in the database, created by no migration" in result.output
        assert applied(tmp_path) == 1
    else:
        assert result.exit_code == 0, result.output
        assert applied(tmp_path) == 2
