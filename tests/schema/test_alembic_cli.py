"""The command line over Alembic targets: exit codes and one-line errors, as CI sees them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from reconciler.ledger import Ledger
from reconciler.policy import load_policy
from tests.schema.alembic_scripts import (
    add_revision,
    alembic_policy,
    create_table,
    query,
    script_dir,
    tables,
    versions,
)

Cli = Callable[..., Result]
WritePolicy = Callable[[str], Path]


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh empty database of each kind, as a URL."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'app.db'}"


def three_revisions(tmp_path: Path) -> Path:
    folder = script_dir(tmp_path)
    add_revision(folder, "c1users", None, create_table("users", "email"))
    add_revision(folder, "c2orders", "c1users", create_table("orders"))
    add_revision(
        folder, "c3names", "c2orders", "op.add_column('users', sa.Column('name', sa.Text()))"
    )
    return folder


def error_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_alembic_cli_plan_apply_plan(
    cli: Cli, url: str, tmp_path: Path, write_policy: WritePolicy
) -> None:
    folder = three_revisions(tmp_path)
    policy, _ = alembic_policy(write_policy, url, folder)

    checked = cli("check", "--config", policy)
    assert checked.exit_code == 0, checked.output
    assert "1 target(s), 3 migration(s) checked" in checked.stdout

    planned = cli("plan", "--config", policy)
    assert planned.exit_code == 2, planned.output
    assert "Plan: 3 migrations to apply." in planned.stdout
    assert "alembic migrations" in planned.stdout
    listed = [ln.split()[2] for ln in planned.stdout.splitlines() if ln.startswith("  + apply")]
    assert listed == ["c1users", "c2orders", "c3names"]
    assert tables(url) == set(), "plan changes nothing"

    applied = cli("apply", "--config", policy, "--yes")
    assert applied.exit_code == 0, applied.output
    assert "Apply complete: app: applied 3 migrations; at c3names" in applied.stdout
    assert versions(url) == {"c3names"}
    assert {"users", "orders"} <= tables(url)

    again = cli("plan", "--config", policy)
    assert again.exit_code == 0, again.output
    assert "No changes. The database is at the desired revision." in again.stdout
    assert "live revision     c3names" in again.stdout

    status = cli("status", "--config", policy)
    assert status.exit_code == 0, status.output
    assert "live       c3names" in status.stdout
    assert "pending    0" in status.stdout

    ledger = Ledger(load_policy(policy, environ={}).ledger)
    run = ledger.runs("app")[0]
    assert (run.trigger, run.outcome, run.source) == ("cli", "InSync", str(policy))
    assert [s.migration for s in ledger.steps(run.id)] == ["c1users", "c2orders", "c3names"]
    ledger.close()


def test_alembic_cli_plan_shows_two_heads_and_the_pending_merge(
    cli: Cli, tmp_path: Path, write_policy: WritePolicy
) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    folder = script_dir(tmp_path)
    add_revision(folder, "m0root", None, create_table("root"))
    add_revision(folder, "m1left", "m0root", create_table("left_side"))
    add_revision(folder, "m2right", "m0root", create_table("right_side"))
    policy, _ = alembic_policy(write_policy, url, folder, revision="heads")
    assert cli("apply", "--config", policy, "--yes").exit_code == 0
    assert versions(url) == {"m1left", "m2right"}

    add_revision(folder, "m3merge", ("m1left", "m2right"), "pass")
    planned = cli("plan", "--config", policy)

    assert planned.exit_code == 2, planned.output
    assert "live revision     m1left, m2right" in planned.stdout
    assert "desired revision  m3merge" in planned.stdout
    assert "Plan: 1 migration to apply." in planned.stdout
    assert "+ apply m3merge" in planned.stdout
    assert cli("apply", "--config", policy, "--yes").exit_code == 0
    assert versions(url) == {"m3merge"}
    assert cli("plan", "--config", policy).exit_code == 0


def test_alembic_cli_syntax_error_fails_check_and_plan_with_one_line(
    cli: Cli, url: str, tmp_path: Path, write_policy: WritePolicy
) -> None:
    folder = script_dir(tmp_path)
    add_revision(folder, "s1users", None, create_table("users"))
    broken = add_revision(folder, "s2broken", "s1users", "if True\n    pass")
    line = broken.read_text(encoding="utf-8").splitlines().index("    if True") + 1
    policy, _ = alembic_policy(write_policy, url, folder)

    for command in ("check", "plan"):
        result = cli(command, "--config", policy)
        assert result.exit_code == 1, (command, result.output)
        lines = error_lines(result)
        assert len(lines) == 1, (command, lines)
        assert lines[0].startswith(f"reconciler: error: app: {broken}:{line}: "), lines[0]

    applied = cli("apply", "--config", policy, "--yes")
    assert applied.exit_code == 1, applied.output
    assert f"{broken}:{line}" in applied.stderr
    assert tables(url) == set(), "nothing may reach the database"


def test_alembic_cli_policy_revision_that_does_not_exist(
    cli: Cli, url: str, tmp_path: Path, write_policy: WritePolicy
) -> None:
    folder = three_revisions(tmp_path)
    policy, _ = alembic_policy(write_policy, url, folder, revision="nosuchrev")

    for args in (("check",), ("plan",), ("apply", "--yes")):
        result = cli(*args, "--config", policy)
        assert result.exit_code == 1, (args, result.output)
        lines = error_lines(result)
        assert len(lines) == 1, (args, lines)
        assert lines[0].startswith("reconciler: error: app: ")
        assert "'nosuchrev'" in lines[0]
    assert tables(url) == set()


def test_alembic_cli_unknown_revision_in_database_exits_1_and_changes_nothing(
    cli: Cli, tmp_path: Path, write_policy: WritePolicy
) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    folder = three_revisions(tmp_path)
    policy, _ = alembic_policy(write_policy, url, folder, revision="c1users")
    assert cli("apply", "--config", policy, "--yes").exit_code == 0
    query(url, "UPDATE alembic_version SET version_num = 'feedc0ffee00'")
    policy, _ = alembic_policy(write_policy, url, folder)

    planned = cli("plan", "--config", policy)
    assert planned.exit_code == 1, planned.output
    assert "x blocked (UnknownRevision)" in planned.stdout
    assert "Plan: blocked (UnknownRevision); nothing can be applied." in planned.stdout

    applied = cli("apply", "--config", policy, "--yes")
    assert applied.exit_code == 1, applied.output
    assert "Apply stopped (UnknownRevision)" in applied.stderr
    assert versions(url) == {"feedc0ffee00"}
    assert "orders" not in tables(url)
