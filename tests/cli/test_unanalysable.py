"""An Alembic revision whose SQL cannot be rendered offline is accounted for: lint and plan
give it a finding of its own (``unanalysable-revision``) that blocks in production unless
the target rehearses or an approval covers it. Before, it was left out without a word."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.schema.alembic_scripts import add_revision, create_table, query, script_dir, tables

Cli = Callable[..., Result]

READS_THEN_DROPS = """
bind = op.get_bind()
kept = bind.execute(sa.text("SELECT count(*) FROM legacy")).scalar()
op.drop_table("legacy")
"""
"""A revision as real ones are written: it reads data through the connection (offline,
``op.get_bind()`` executes nothing and returns None), then drops a table."""


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'app.db'}"


def history(tmp_path: Path) -> Path:
    folder = script_dir(tmp_path)
    add_revision(folder, "a1legacy", None, create_table("legacy", "note"))
    add_revision(folder, "a2readdrop", "a1legacy", READS_THEN_DROPS)
    return folder


def policy_text(url: str, folder: Path, extra: str = "") -> str:
    return (
        f"ledger: sqlite:///ledger.db\ntargets:\n  - name: app\n    database: {url}\n"
        f"    migrations: {{layout: alembic, path: {folder}, revision: a1legacy}}\n" + extra
    )


def test_static_lint_names_the_revision_it_cannot_render(cli: Cli, tmp_path: Path) -> None:
    folder = history(tmp_path)
    for path in (folder, folder / "versions" / "a2readdrop.py"):
        result = cli("lint", path)
        assert result.exit_code == 1, result.output
        line = next(ln for ln in result.stdout.splitlines() if "unanalysable-revision" in ln)
        assert "a2readdrop.py:1: data-loss unanalysable-revision BLOCKS" in line
        assert "(versions/a2readdrop.py:18: AttributeError: " in line  # where and why
        assert "rehearse: true" in line
        assert "approved by id" in line
    assert "unanalysable" not in cli("lint", folder / "versions" / "a1legacy.py").stdout


def test_plan_blocks_it_in_production_until_approved(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path, url: str
) -> None:
    folder = history(tmp_path)
    policy = write_policy(policy_text(url, folder))
    assert cli("apply", "-c", policy, "--yes").exit_code == 0
    query(url, "INSERT INTO legacy (note) VALUES ('kept'), ('kept too')")
    head = write_policy(policy.read_text().replace("revision: a1legacy", "revision: head"))

    planned = cli("plan", "-c", head)
    assert planned.exit_code == 2, planned.output
    assert "x apply a2readdrop" in planned.stdout
    assert "unanalysable-revision [BLOCKS]" in planned.stdout
    assert "rules: [unanalysable-revision]" in planned.stdout  # the approval to paste
    assert cli("apply", "-c", head, "--yes").exit_code == 3
    assert "legacy" in tables(url)

    linted = cli("lint", "-c", head)
    assert linted.exit_code == 1
    assert "unanalysable-revision BLOCKS" in linted.stdout

    revision = folder / "versions" / "a2readdrop.py"
    checksum = hashlib.sha256(revision.read_bytes()).hexdigest()[:12]
    approved = write_policy(
        head.read_text()
        + "    safety:\n      approvals:\n"
        + f"        - {{migration: a2readdrop, checksum: '{checksum}', "
        "rules: [unanalysable-revision], reason: legacy notes archived}\n",
        "approved.yaml",
    )
    assert cli("lint", "-c", approved).exit_code == 0
    applied = cli("apply", "-c", approved, "--yes")
    assert applied.exit_code == 0, applied.output
    assert "legacy" not in tables(url)


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ("    environment: staging\n", "not production"),
        (
            "    backup: {driver: sqlite, dir: backups}\n    rehearse: true\n",
            "the rehearsal measures",
        ),
    ],
)
def test_outside_production_or_under_a_rehearsal_it_is_shown_not_blocking(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path, extra: str, why: str
) -> None:
    folder = history(tmp_path)
    url = f"sqlite:///{tmp_path / 'app.db'}"
    policy = write_policy(policy_text(url, folder, extra).replace("a1legacy}", "head}"))
    planned = cli("plan", "-c", policy)
    assert planned.exit_code == 2, planned.output
    assert "+ apply a2readdrop" in planned.stdout
    assert "info unanalysable-revision" in planned.stdout
    assert why in planned.stdout


def test_check_warns_of_it_and_passes(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path, url: str
) -> None:
    folder = history(tmp_path)
    policy = write_policy(policy_text(url, folder, "    environment: staging\n"))
    checked = cli("check", "-c", policy)
    assert checked.exit_code == 0, checked.output
    assert checked.stderr.splitlines() == [
        "reconciler: warning: app: "
        f"{folder / 'versions' / 'a2readdrop.py'}: not analysed: its SQL cannot be rendered "
        "offline (versions/a2readdrop.py:18: AttributeError: 'NoneType' object has no "
        "attribute 'scalar')"
    ]


def test_lint_with_an_unreachable_database_still_names_it(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    folder = history(tmp_path)
    unreachable = "postgresql://app:pw@127.0.0.1:1/app"
    policy = write_policy(policy_text(unreachable, folder).replace("a1legacy}", "head}"))
    result = cli("lint", "-c", policy)
    assert result.exit_code == 1, result.output
    assert "a2readdrop.py:1: data-loss unanalysable-revision BLOCKS" in result.stdout
