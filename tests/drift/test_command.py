"""``reconciler drift`` from the command line: exit codes, text and JSON, Alembic revisions
replayed through env.py, the ledger's tables left out, and errors on one line."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from tests.conftest import ALEMBIC, PRISMA_PG, PRISMA_SQLITE, pg_query, scratch_databases

Cli = Callable[..., Result]


def policy(folder: Path, url: str, layout: str, path: Path, ledger: str | None = None) -> Path:
    file = folder / "policy.yaml"
    file.write_text(
        f"ledger: {ledger or 'sqlite:///ledger.db'}\n"
        "targets:\n"
        "  - name: shop\n"
        f"    database: '{url}'\n"
        f"    migrations: {{layout: {layout}, path: {path}}}\n",
        encoding="utf-8",
    )
    return file


def test_postgres_drift_exits_2_and_says_it(cli: Cli, pg_url: str, tmp_path: Path) -> None:
    config = policy(tmp_path, pg_url, "prisma", PRISMA_PG)
    assert cli("apply", "-c", config, "-y").exit_code == 0
    pg_query(pg_url, "ALTER TABLE users ADD COLUMN phone text")
    pg_query(pg_url, "ALTER TABLE invoices ALTER COLUMN issued_at DROP NOT NULL")
    result = cli("drift", "-c", config)
    assert result.exit_code == 2, result.output
    assert result.output.splitlines()[1:] == [
        "  invoices.issued_at: nullable in the database, NOT NULL by the migrations",
        "  users.phone: in the database, created by no migration",
    ]
    assert result.output.startswith("shop: 2 differences from the schema the applied migrations")
    assert scratch_databases(pg_url) == []  # the replay's scratch database is gone


def test_alembic_revisions_replay_through_env_py(cli: Cli, pg_url: str, tmp_path: Path) -> None:
    config = policy(tmp_path, pg_url, "alembic", ALEMBIC)
    assert cli("apply", "-c", config, "-y").exit_code == 0
    pg_query(pg_url, "CREATE INDEX users_by_name ON users (lower(email))")
    result = cli("drift", "-c", config, "-o", "json")
    assert result.exit_code == 2, result.output
    (report,) = json.loads(result.output)["targets"]
    assert report["replayed"] == 7
    assert [(d["kind"], d["object"], d["change"]) for d in report["drift"]] == [
        ("index", "users_by_name", "added")
    ]
    assert "USING btree (lower(email))" in report["drift"][0]["live"]["definition"]


def test_no_drift_exits_0(cli: Cli, tmp_path: Path) -> None:
    config = policy(tmp_path, f"sqlite:///{tmp_path / 'shop.db'}", "prisma", PRISMA_SQLITE)
    assert cli("apply", "-c", config, "-y").exit_code == 0
    result = cli("drift", "-c", config)
    assert (result.exit_code, result.output) == (0, "shop: no drift (7 migrations replayed)\n")


def test_the_ledger_in_the_targets_own_database_is_not_drift(cli: Cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    config = policy(tmp_path, url, "prisma", PRISMA_SQLITE, ledger=url)
    assert cli("apply", "-c", config, "-y").exit_code == 0
    with sqlite3.connect(tmp_path / "shop.db") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert {"runs", "steps"} <= tables  # the ledger is really there
    result = cli("drift", "-c", config)
    assert result.exit_code == 0, result.output


def test_a_ledger_named_table_of_the_application_is_still_compared(
    cli: Cli, tmp_path: Path
) -> None:
    config = policy(tmp_path, f"sqlite:///{tmp_path / 'shop.db'}", "prisma", PRISMA_SQLITE)
    assert cli("apply", "-c", config, "-y").exit_code == 0
    with sqlite3.connect(tmp_path / "shop.db") as conn:
        conn.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY)")
    result = cli("drift", "-c", config, "-o", "json")
    assert result.exit_code == 2, result.output
    (report,) = json.loads(result.output)["targets"]
    assert [d["message"] for d in report["drift"]] == [
        "table runs: in the database, created by no migration"
    ]


def test_an_applied_migration_without_its_file_is_an_error(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(PRISMA_SQLITE, folder)
    config = policy(tmp_path, f"sqlite:///{tmp_path / 'shop.db'}", "prisma", folder)
    assert cli("apply", "-c", config, "-y").exit_code == 0
    gone = sorted(p for p in folder.iterdir() if p.is_dir())[-1]
    shutil.rmtree(gone)
    result = cli("drift", "-c", config)
    assert result.exit_code == 1
    assert result.output == (
        f"reconciler: error: shop: cannot rebuild the schema the migrations produce: "
        f"{gone.name} is recorded as applied but not in {folder}\n"
    )


def test_an_edited_migration_is_replayed_as_it_is_now_and_said(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(PRISMA_SQLITE, folder)
    config = policy(tmp_path, f"sqlite:///{tmp_path / 'shop.db'}", "prisma", folder)
    assert cli("apply", "-c", config, "-y").exit_code == 0
    edited = sorted(p for p in folder.iterdir() if p.is_dir())[-1]
    script = edited / "migration.sql"
    script.write_text(script.read_text() + "\nCREATE INDEX later ON users (email);\n")
    result = cli("drift", "-c", config)
    assert result.exit_code == 2, result.output
    assert result.output.splitlines()[1:] == [
        "  users: index later: dropped in the database, still created by the migrations",
        f"  note: {edited.name} was edited after it was applied: replayed as it is now",
    ]


def test_an_env_py_that_reaches_the_live_database_is_refused_and_changes_nothing(
    cli: Cli, tmp_path: Path
) -> None:
    from tests.schema.alembic_scripts import ENV_PY, add_revision, create_table, script_dir

    live = tmp_path / "shop.db"
    folder = script_dir(tmp_path)
    # The application's env.py takes its own URL, not the one it is given: during the replay
    # it would migrate the live database instead of the scratch copy.
    own = ENV_PY.replace(
        'url = config.get_main_option("sqlalchemy.url")', f"url = 'sqlite:///{live}'"
    )
    (folder / "env.py").write_text(own, encoding="utf-8")
    add_revision(folder, "a1", None, create_table("users", "email"))
    config = policy(tmp_path, f"sqlite:///{live}", "alembic", folder)
    assert cli("apply", "-c", config, "-y").exit_code == 0
    before = live.read_bytes()
    result = cli("drift", "-c", config)
    assert result.exit_code == 1, result.output
    assert result.output.startswith(
        "reconciler: error: shop: cannot rebuild the schema the migrations produce: a1 fails "
        "on an empty database:"
    )
    assert live.read_bytes() == before


def test_alembic_on_sqlite_says_only_the_hand_made_table(cli: Cli, tmp_path: Path) -> None:
    live = tmp_path / "shop.db"
    config = policy(tmp_path, f"sqlite:///{live}", "alembic", ALEMBIC)
    assert cli("apply", "-c", config, "-y").exit_code == 0
    with sqlite3.connect(live) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    result = cli("drift", "-c", config)
    assert result.exit_code == 2, result.output
    assert result.output.splitlines()[1:] == [
        "  table notes: in the database, created by no migration"
    ]


LEAVES = "CREATE TABLE a (id int);\nSET default_transaction_read_only = on;\n"


def test_a_setting_one_migration_leaves_does_not_reach_the_next_in_the_replay(
    cli: Cli, pg_url: str, tmp_path: Path
) -> None:
    """The history was applied over several runs, each on a fresh session: the replay starts
    each migration from the session's defaults too."""
    from tests.drift.history import write_history

    folder = write_history(
        tmp_path / "migrations",
        "postgresql",
        {"20260101000000_leaves": LEAVES},
    )
    config = policy(tmp_path, pg_url, "prisma", folder)
    assert cli("apply", "-c", config, "-y").exit_code == 0
    write_history(folder, "postgresql", {"20260102000000_next": "CREATE TABLE b (id int);\n"})
    assert cli("apply", "-c", config, "-y").exit_code == 0
    result = cli("drift", "-c", config)
    assert (result.exit_code, result.output) == (0, "shop: no drift (2 migrations replayed)\n")
