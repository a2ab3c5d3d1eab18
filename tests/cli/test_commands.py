"""The command line as people and CI use it: exit codes, confirmations, bad input."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from reconciler.cli import main
from tests.conftest import (
    EXAMPLES,
    PRISMA_PG,
    PRISMA_SQLITE,
    ROOT,
    pg_query,
    run_on_terminal,
    run_process,
)

Cli = Callable[..., Result]


def sqlite_policy(write_policy: Callable[[str], Path], tmp_path: Path, **extra: str) -> Path:
    shutil.copytree(PRISMA_SQLITE, tmp_path / "migrations")
    lines = "".join(f"    {key}: {value}\n" for key, value in extra.items())
    return write_policy(
        "ledger: sqlite:///var/ledger.db\n"
        "targets:\n"
        "  - name: shop\n"
        "    database: sqlite:///var/shop.db\n"
        "    migrations: {layout: prisma, path: migrations}\n" + lines
    )


def user_tables(db: Path) -> set[str]:
    with closing(sqlite3.connect(db)) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_plan_apply_status_cycle(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    policy = sqlite_policy(write_policy, tmp_path)

    planned = cli("plan", "--config", policy)
    assert planned.exit_code == 2
    assert "Plan: 7 migrations to apply." in planned.stdout
    assert "+ apply 20261001090000_init" in planned.stdout

    refused = cli("apply", "--config", policy)
    assert refused.exit_code == 1
    assert "refusing to apply without --yes" in refused.stderr
    assert not (tmp_path / "var" / "shop.db").exists() or "users" not in user_tables(
        tmp_path / "var" / "shop.db"
    )

    applied = cli("apply", "--config", policy, "--yes")
    assert applied.exit_code == 0, applied.output
    assert "Apply complete: shop: applied 7 migrations" in applied.stdout
    assert {"users", "subscriptions", "invoices"} <= user_tables(tmp_path / "var" / "shop.db")

    assert cli("plan", "--config", policy).exit_code == 0
    status = cli("status", "--config", policy)
    assert status.exit_code == 0
    assert "pending    0" in status.stdout
    assert "InSync (applied 7 migrations" in status.stdout

    as_json = json.loads(cli("status", "-c", policy, "-o", "json").stdout)
    entry = as_json["targets"][0]
    assert entry["pending"] == 0
    assert entry["last_run"]["outcome"] == "InSync"


def test_plan_status_and_lint_create_no_sqlite_file(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    """Looking changes nothing: a database file that does not exist yet is planned as the
    empty database it would be, and only apply creates it."""
    policy = sqlite_policy(write_policy, tmp_path)
    shop = tmp_path / "var" / "shop.db"
    planned = cli("plan", "-c", policy)
    assert planned.exit_code == 2
    assert "Plan: 7 migrations to apply." in planned.stdout
    assert cli("status", "-c", policy).exit_code == 0
    assert cli("lint", "-c", policy).exit_code == 0
    assert not shop.exists()
    assert cli("apply", "-c", policy, "--yes").exit_code == 0
    assert "users" in user_tables(shop)


def test_plan_rehearse_on_a_database_that_does_not_exist_yet(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    policy = sqlite_policy(write_policy, tmp_path, backup="{driver: sqlite, dir: var/backups}")
    result = cli("plan", "-c", policy, "--rehearse")
    assert result.exit_code == 2, result.output
    assert "20261110150000_add_subscriptions_canceled_at: " in result.stdout
    assert "no data lost" in result.stdout
    assert not user_tables(tmp_path / "var" / "shop.db"), "the rehearsal ran on a copy"


def test_a_command_line_that_cannot_be_parsed_exits_1_not_2(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    """2 is "changes pending" for plan: a typo in CI must not read as one."""
    policy = sqlite_policy(write_policy, tmp_path)
    for args in (
        ["plan", "-c", policy, "--outptu", "json"],
        ["identity", "sync", "-c", policy, "--allow-deletions", "-1"],
        ["no-such-verb"],
    ):
        result = cli(*args)
        assert result.exit_code == 1, args
        assert "Usage: " in result.stderr, args


def commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += commands(command, (*path, name))
        else:
            found.append((*path, name))
    return found


@pytest.mark.parametrize("command", commands(main), ids=lambda c: " ".join(c) or "reconciler")
def test_help_never_splits_a_word_at_its_hyphen(command: tuple[str, ...]) -> None:
    """click reflows help to the terminal: 80 columns at most, 50 at least, less 2."""
    for width in range(50, 79):
        shown = CliRunner().invoke(main, [*command, "--help"], terminal_width=width).output
        split = [line for line in shown.splitlines() if re.search(r"\w-$", line)]
        assert split == [], f"at {width} columns"
        if command == ("restore",):
            assert "(reason before-restore)" in " ".join(shown.split())


def test_plan_json_lists_every_step(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    policy = sqlite_policy(write_policy, tmp_path)
    result = cli("plan", "-c", policy, "--output", "json")
    assert result.exit_code == 2
    plan = json.loads(result.stdout)["targets"][0]
    assert plan["in_sync"] is False
    assert [s["migration"] for s in plan["steps"]] == sorted(
        p.name for p in PRISMA_SQLITE.iterdir() if p.is_dir()
    )
    assert all(len(s["checksum"]) == 64 for s in plan["steps"])


def test_apply_on_a_terminal_says_that_only_yes_confirms(
    write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    policy = sqlite_policy(write_policy, tmp_path)
    question = "Apply 7 migration(s) to shop (production)? Only 'yes' will be accepted: "
    code, shown = run_on_terminal("apply", "-c", policy, answer="y")
    assert code == 1
    assert f"{question}y\n" in shown
    assert "apply cancelled: only 'yes' confirms. Nothing was changed." in shown
    assert not (tmp_path / "var" / "shop.db").exists() or "users" not in user_tables(
        tmp_path / "var" / "shop.db"
    )
    code, shown = run_on_terminal("apply", "-c", policy, answer="yes")
    assert code == 0, shown
    assert f"{question}yes\n" in shown
    assert "users" in user_tables(tmp_path / "var" / "shop.db")


def test_reset_on_a_terminal_names_what_it_refuses_and_cancels(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    policy = sqlite_policy(write_policy, tmp_path, environment="development")
    assert cli("apply", "-c", policy, "--yes").exit_code == 0
    refused = cli("reset", "-c", policy, "-t", "shop")
    assert refused.exit_code == 1
    assert "refusing to reset without --yes: standard input is not a terminal" in refused.stderr
    code, shown = run_on_terminal("reset", "-c", policy, "-t", "shop", answer="no")
    assert code == 1
    assert "and rebuild it? Only 'yes' will be accepted: no\n" in shown
    assert "reset cancelled: only 'yes' confirms. Nothing was changed." in shown
    assert "users" in user_tables(tmp_path / "var" / "shop.db")


def test_check_validates_offline(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    policy = sqlite_policy(write_policy, tmp_path)
    ok = cli("check", "-c", policy)
    assert ok.exit_code == 0
    assert "policy valid; 1 target(s), 7 migration(s) checked" in ok.stdout
    (tmp_path / "migrations" / "20261001090000_init" / "migration.sql").unlink()
    broken = cli("check", "-c", policy)
    assert broken.exit_code == 1
    assert "no migration.sql in 20261001090000_init: restore the file" in broken.stderr
    assert not (tmp_path / "var").exists(), "check must not touch any database"


def test_check_names_a_users_file_that_is_not_there(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    policy = sqlite_policy(
        write_policy,
        tmp_path,
        identity="{provider: file, file: {path: users.yaml}, key: clerk_id}",
    )
    missing = cli("check", "-c", policy)
    assert missing.exit_code == 1
    assert missing.stderr.splitlines() == [
        f"reconciler: error: shop: identity.file.path: {tmp_path / 'users.yaml'} not found"
    ]
    (tmp_path / "users.yaml").write_text("users: []\n")
    assert cli("check", "-c", policy).exit_code == 0


def test_status_of_a_target_without_its_migrations_folder_says_so_and_exits_1(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    policy = sqlite_policy(write_policy, tmp_path)
    shutil.rmtree(tmp_path / "migrations")
    problem = f"{tmp_path / 'migrations'}: Prisma migrations folder not found"
    status = cli("status", "-c", policy)
    assert status.exit_code == 1
    assert f"  error      {problem}" in status.stdout.splitlines()
    as_json = cli("status", "-c", policy, "-o", "json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["targets"][0]["error"] == problem


def test_a_migration_folder_without_its_file_stops_plan_and_apply(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    """As Prisma's P3015: the migrations after it must not run without it."""
    policy = sqlite_policy(write_policy, tmp_path)
    (tmp_path / "migrations" / "20261013101500_add_invoices" / "migration.sql").unlink()
    for command in (["plan"], ["apply", "--yes"]):
        result = cli(*command, "-c", policy)
        assert result.exit_code == 1, command
        assert "no migration.sql in 20261013101500_add_invoices" in result.stderr, command
    shop = tmp_path / "var" / "shop.db"
    assert not shop.exists() or not user_tables(shop)


def test_a_failed_migration_names_the_resolve_command_to_run(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    """The command in the message runs as it is: with the policy file the person gave."""
    shutil.copytree(PRISMA_SQLITE, tmp_path / "migrations")
    policy = write_policy(
        "ledger: sqlite:///ledger.db\ntargets:\n  - name: shop\n"
        "    database: sqlite:///shop.db\n    migrations: {layout: prisma, path: migrations}\n",
        name="shop policy.yaml",
    )
    broken = tmp_path / "migrations" / "20270101000000_broken" / "migration.sql"
    broken.parent.mkdir()
    broken.write_text('INSERT INTO "no_such_table" VALUES (1);\n')
    assert cli("apply", "-c", policy, "--yes").exit_code == 1
    planned = cli("plan", "-c", policy)
    assert planned.exit_code == 1
    hint = re.search(r"then mark it with `([^`]*)`", planned.stdout)
    assert hint is not None, planned.stdout
    assert hint.group(1) == (
        f"reconciler resolve --config '{policy}' --target shop --rolled-back 20270101000000_broken"
    )
    broken.write_text('CREATE TABLE "fixed" ("id" INTEGER);\n')
    resolved = cli(*shlex.split(hint.group(1))[1:])
    assert resolved.exit_code == 0, resolved.output
    assert cli("apply", "-c", policy, "--yes").exit_code == 0
    assert "fixed" in user_tables(tmp_path / "shop.db")


def test_reset_is_refused_outside_development(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    policy = sqlite_policy(write_policy, tmp_path, environment="production")
    assert cli("apply", "-c", policy, "--yes").exit_code == 0
    result = cli("reset", "-c", policy, "--target", "shop", "--yes")
    assert result.exit_code == 1
    assert "reset refused: target 'shop' is a production target" in result.stderr
    assert "users" in user_tables(tmp_path / "var" / "shop.db")


def test_reset_rebuilds_a_development_database_and_seeds_it(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    policy = sqlite_policy(
        write_policy, tmp_path, environment="development", seed=str(EXAMPLES / "seed.sql")
    )
    assert cli("apply", "-c", policy, "--yes").exit_code == 0
    db = tmp_path / "var" / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE scratch (x INTEGER)")
        conn.execute("INSERT INTO users (email) VALUES ('stray@example.com')")
    result = cli("reset", "-c", policy, "--target", "shop", "--yes")
    assert result.exit_code == 0, result.output
    assert "scratch" not in user_tables(db)
    with sqlite3.connect(db) as conn:
        emails = {r[0] for r in conn.execute("SELECT email FROM users")}
        invoices = conn.execute("SELECT count(*) FROM invoices").fetchone()[0]
    assert "stray@example.com" not in emails
    assert len(emails) == 3
    assert invoices == 4


@pytest.mark.parametrize(
    ("policy_text", "expected"),
    [
        ("targets: [\n", "invalid YAML"),
        ("targets:\n  - name: shop\n    databse: x\n", "targets[0].databse: unknown key"),
        (
            "targets:\n  - name: shop\n    database: ${NOT_SET_ANYWHERE}\n"
            "    migrations: {layout: prisma, path: migrations}\n",
            "environment variable NOT_SET_ANYWHERE is not set",
        ),
        (
            "targets:\n  - name: shop\n    database: sqlite:///x.db\n"
            "    migrations: {layout: prisma, path: nowhere}\n",
            "Prisma migrations folder not found",
        ),
        (
            "targets:\n  - name: shop\n    database: postgresql://postgres@127.0.0.1:1/x\n"
            "    migrations: {layout: prisma, path: migrations}\n",
            "cannot connect to postgresql://postgres@127.0.0.1:1/x",
        ),
        (
            "targets:\n  - name: shop\n    database: postgresql://postgres@127.0.0.1/test\n"
            "    migrations: {layout: prisma, path: migrations}\n",
            "written for provider 'sqlite' but the target database is postgresql",
        ),
        (
            "targets:\n  - name: shop\n    timeouts: {lock: 1}\n    database: sqlite:///x.db\n"
            "    migrations: {layout: prisma, path: migrations, revision: 2099_nope}\n",
            "revision '2099_nope' names no migration folder",
        ),
    ],
)
def test_bad_input_is_one_clear_line_and_changes_nothing(
    cli: Cli,
    write_policy: Callable[[str], Path],
    tmp_path: Path,
    policy_text: str,
    expected: str,
) -> None:
    shutil.copytree(PRISMA_SQLITE, tmp_path / "migrations")
    policy = write_policy(policy_text)
    result = cli("apply", "-c", policy, "--yes")
    assert result.exit_code == 1
    assert expected in result.stderr
    assert "Traceback" not in result.output
    assert all(line.startswith("reconciler: error: ") for line in result.stderr.splitlines())
    assert not (tmp_path / "x.db").exists() or "users" not in user_tables(tmp_path / "x.db")


def test_rejected_login_never_echoes_the_password(
    cli: Cli,
    write_policy: Callable[[str], Path],
    tmp_path: Path,
    pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shutil.copytree(PRISMA_PG, tmp_path / "migrations")
    secret = "Wr0ng-Pa55-XYZ"
    url = pg_url.replace("postgres@", f"no_such_role:{secret}@")
    monkeypatch.setenv("SHOP_DB", url)
    policy = write_policy(
        "targets:\n  - name: shop\n    database: ${SHOP_DB}\n"
        "    migrations: {layout: prisma, path: migrations}\n"
    )
    result = cli("plan", "-c", policy)
    assert result.exit_code == 1
    assert secret not in result.output
    assert "cannot connect to postgresql://no_such_role:***@" in result.stderr
    assert 'role "no_such_role" does not exist' in result.stderr


def test_syntax_error_blocks_before_anything_runs(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path, pg_url: str
) -> None:
    shutil.copytree(PRISMA_PG, tmp_path / "migrations")
    bad = tmp_path / "migrations" / "20261201000000_typo" / "migration.sql"
    bad.parent.mkdir()
    bad.write_text('-- AlterTable\nALTER TABLE "users"\n  ADD COLUMN "x" TEXT,,\n')
    policy = write_policy(
        f"targets:\n  - name: shop\n    database: {pg_url}\n"
        "    migrations: {layout: prisma, path: migrations}\n"
    )
    checked = cli("check", "-c", policy)
    assert checked.exit_code == 1
    assert "20261201000000_typo/migration.sql:3: PostgreSQL cannot parse" in checked.stderr
    applied = cli("apply", "-c", policy, "--yes")
    assert applied.exit_code == 1
    assert "nothing applied" in applied.stderr
    assert pg_query(pg_url, "SELECT to_regclass('_prisma_migrations')") == [(None,)]


def test_a_migration_that_is_not_utf8_is_named_with_its_line(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    policy = sqlite_policy(write_policy, tmp_path)
    bad = tmp_path / "migrations" / "20270101000000_latin1" / "migration.sql"
    bad.parent.mkdir()
    bad.write_bytes(b'-- AlterTable\nALTER TABLE "users" ADD COLUMN "caf\xe9" TEXT;\n')
    expected = "20270101000000_latin1/migration.sql:2:36: not UTF-8 (byte 0xe9)"
    for command in (["check"], ["plan"], ["apply", "--yes"]):
        result = cli(*command, "-c", policy)
        assert result.exit_code == 1, command
        assert expected in result.stderr, command
        assert "Traceback" not in result.output
    assert not (tmp_path / "var" / "shop.db").exists() or not user_tables(
        tmp_path / "var" / "shop.db"
    )


def test_python_dash_m_runs_the_example_end_to_end(tmp_path: Path) -> None:
    """The README's first command, as a real process on a copy of the repository layout."""
    shutil.copy(ROOT / "config.example.yaml", tmp_path / "config.example.yaml")
    shutil.copytree(EXAMPLES, tmp_path / "examples" / "shop")
    env = {"DATABASE_URL": ""}
    first = run_process("run", "--config", "config.example.yaml", "--once", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert "shop schema: InSync: applied 7 migrations" in first.stdout
    assert "shop identity: InSync: 5 listed; 5 missing" in first.stdout
    second = run_process("plan", "--config", "config.example.yaml", cwd=tmp_path, env=env)
    assert second.returncode == 0
    assert "No changes." in second.stdout
    assert (tmp_path / "var" / "shop.db").is_file()
    assert (tmp_path / "var" / "reconciler.db").is_file()


def test_a_pinned_revision_behind_the_database_rolls_nothing_back(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    policy = sqlite_policy(write_policy, tmp_path)
    assert cli("apply", "-c", policy, "--yes").exit_code == 0
    text = policy.read_text().replace(
        "path: migrations}", "path: migrations, revision: 20261001090000_init}"
    )
    policy.write_text(text)
    tables = user_tables(tmp_path / "var" / "shop.db")

    planned = cli("plan", "-c", policy)
    assert planned.exit_code == 0, planned.output
    assert "drift (ahead): 20261110150000_add_subscriptions_canceled_at is applied" in (
        planned.stdout
    )
    assert "ahead of the desired revision; nothing is rolled back" in planned.stdout
    assert cli("apply", "-c", policy, "--yes").exit_code == 0
    assert user_tables(tmp_path / "var" / "shop.db") == tables


def test_an_existing_sqlite_database_keeps_its_journal_mode(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    """The application chose it; a new database is created in WAL mode."""
    policy = sqlite_policy(write_policy, tmp_path)
    shop = tmp_path / "var" / "shop.db"
    shop.parent.mkdir()
    sqlite3.connect(shop).close()  # an empty file in the default rollback-journal mode
    assert cli("apply", "-c", policy, "--yes").exit_code == 0
    with sqlite3.connect(shop) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)

    shop.unlink()
    assert cli("apply", "-c", policy, "--yes").exit_code == 0
    with sqlite3.connect(shop) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_identity_plan_creates_no_sqlite_file(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    (tmp_path / "users.yaml").write_text("users:\n  - {id: user_1, email: a@example.com}\n")
    policy = sqlite_policy(
        write_policy,
        tmp_path,
        identity="{provider: file, file: {path: users.yaml}, key: clerk_id}",
    )
    planned = cli("identity", "plan", "-c", policy)
    assert planned.exit_code == 1
    assert "table 'users' does not exist (apply the migrations that create it first)" in (
        planned.output
    )
    assert not (tmp_path / "var" / "shop.db").exists()
