"""``backup``, ``backups`` and ``restore`` as a person runs them after a bad day: the data
that a restore overwrites is backed up first, and a refused restore changes nothing."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import Result

from tests.conftest import PRISMA_SQLITE, run_on_terminal

Cli = Callable[..., Result]


def emails(db: Path) -> list[str]:
    with closing(sqlite3.connect(db)) as conn:
        return [r[0] for r in conn.execute("SELECT email FROM users ORDER BY email")]


def add_user(db: Path, email: str) -> None:
    """Closed at once: a restore by another process needs the file to itself."""
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("INSERT INTO users (email, name) VALUES (?, 'x')", (email,))


def listed(cli: Cli, policy: Path) -> list[dict[str, object]]:
    shown = cli("backups", "-c", policy, "-o", "json")
    assert shown.exit_code == 0, shown.output
    backups: list[dict[str, object]] = json.loads(shown.stdout)["backups"]
    return backups


@pytest.fixture
def shop(cli: Cli, tmp_path: Path) -> tuple[Path, Path, str]:
    """A staging shop on SQLite, keeping one backup, holding ada; its manual backup's id."""
    shutil.copytree(PRISMA_SQLITE, tmp_path / "migrations")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "ledger: sqlite:///ledger.db\ntargets:\n  - name: shop\n    environment: staging\n"
        "    database: sqlite:///shop.db\n"
        "    migrations: {layout: prisma, path: migrations}\n"
        "    backup: {driver: sqlite, dir: backups, keep: {last: 1}}\n"
    )
    assert cli("apply", "-c", policy, "--yes").exit_code == 0
    db = tmp_path / "shop.db"
    add_user(db, "ada@example.com")
    taken = cli("backup", "-c", policy, "-t", "shop")
    assert taken.exit_code == 0, taken.output
    [backup] = listed(cli, policy)
    return policy, db, str(backup["id"])


def test_restore_over_the_live_database_backs_it_up_first(
    cli: Cli, shop: tuple[Path, Path, str], tmp_path: Path
) -> None:
    policy, db, ada_only = shop
    add_user(db, "grace@example.com")

    restored = cli("restore", ada_only, "-c", policy, "-t", "shop", "--to", "sqlite:///shop.db")
    assert restored.exit_code == 1
    assert "not empty" in restored.stderr
    assert emails(db) == ["ada@example.com", "grace@example.com"]

    forced = cli(
        "restore", ada_only, "-c", policy, "-t", "shop", "--to", "sqlite:///shop.db", "--force"
    )
    assert forced.exit_code == 0, forced.output
    assert "Backing up shop's database before overwriting it" in forced.stdout
    assert emails(db) == ["ada@example.com"]

    # keep.last is 1, yet the backup restored from is kept, and grace is one restore away.
    backups = {str(b["reason"]): str(b["id"]) for b in listed(cli, policy)}
    assert backups["manual"] == ada_only
    before = backups["before-restore"]
    status = cli("status", "-c", policy)
    assert f"  backup     {before} taken " in status.stdout
    assert status.stdout.rstrip().endswith(", verified")
    again = cli("restore", before, "-c", policy, "-t", "shop", "--to", "sqlite:///copy.db")
    assert again.exit_code == 0, again.output
    assert emails(tmp_path / "copy.db") == ["ada@example.com", "grace@example.com"]


def test_a_production_database_is_not_overwritten_without_a_person(
    cli: Cli, shop: tuple[Path, Path, str]
) -> None:
    policy, db, backup = shop
    policy.write_text(policy.read_text().replace("staging", "production"))
    add_user(db, "grace@example.com")
    for extra in ([], ["--force"]):
        refused = cli(
            "restore", backup, "-c", policy, "-t", "shop", "--to", "sqlite:///shop.db", *extra
        )
        assert refused.exit_code == 1
        assert "production database" in refused.stderr
    assert emails(db) == ["ada@example.com", "grace@example.com"]
    assert [b["reason"] for b in listed(cli, policy)] == ["manual"]


def test_a_production_restore_asks_for_the_target_name_and_says_so(
    cli: Cli, shop: tuple[Path, Path, str]
) -> None:
    policy, db, backup = shop
    policy.write_text(policy.read_text().replace("staging", "production"))
    add_user(db, "grace@example.com")
    args = ("restore", backup, "-c", policy, "-t", "shop", "--to", "sqlite:///shop.db", "--force")
    question = "to overwrite its production database ({}). Only 'shop' will be accepted: "
    code, shown = run_on_terminal(*args, answer="yes")
    assert code == 1
    assert question.format(f"sqlite:///{db}") + "yes\n" in shown
    assert "restore cancelled: only the target's name, shop, confirms." in shown
    assert emails(db) == ["ada@example.com", "grace@example.com"]
    code, shown = run_on_terminal(*args, answer="shop")
    assert code == 0, shown
    assert emails(db) == ["ada@example.com"]
    assert sorted(str(b["reason"]) for b in listed(cli, policy)) == ["before-restore", "manual"]


def test_an_unknown_backup_is_one_line(cli: Cli, shop: tuple[Path, Path, str]) -> None:
    policy, _, _ = shop
    missing = cli("restore", "nope", "-c", policy, "-t", "shop", "--to", "sqlite:///x.db")
    assert missing.exit_code == 1
    assert missing.stderr.strip() == (
        "reconciler: error: no backup 'nope' of target 'shop' (see `reconciler backups`)"
    )


def test_a_backup_leaves_no_journal_files_behind(cli: Cli, shop: tuple[Path, Path, str]) -> None:
    """The shop database is in WAL mode, and the backup is its only connection."""
    policy, db, _ = shop
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert cli("backup", "-c", policy, "-t", "shop").exit_code == 0
    assert sorted(p.name for p in db.parent.glob("shop.db*")) == ["shop.db"]
