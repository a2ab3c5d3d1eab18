"""``lint`` with a policy where it once looked away: the pre-commit hook's ``lint PATH -c F``
ignored the policy's approvals; ``lint -c F`` read an unreachable database as an empty one;
an Alembic revision that cannot be rendered offline was left out without a word."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from tests.cli.test_lint import risky_folder

Cli = Callable[..., Result]

RISKY = "20261201000000_rename_name"


def approved_policy(write_policy: Callable[[str], Path], folder: Path, url: str) -> Path:
    checksum = hashlib.sha256((folder / RISKY / "migration.sql").read_bytes()).hexdigest()
    return write_policy(
        f"targets:\n  - name: shop\n    database: {url}\n"
        f"    migrations: {{layout: prisma, path: {folder.name}}}\n"
        "    safety:\n      approvals:\n"
        f"        - migration: {RISKY}\n"
        f"          checksum: '{checksum[:12]}'\n"
        "          rules: [drop-column, rename-as-drop-add]\n"
        "          reason: name moved to full_name by hand\n"
    )


def test_the_pre_commit_hook_honours_the_policy_s_approvals(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path, pg_url: str
) -> None:
    folder = risky_folder(tmp_path)
    policy = approved_policy(write_policy, folder, pg_url)
    changed = folder / RISKY / "migration.sql"  # pre-commit passes the changed files

    hook = cli("lint", changed, "-c", policy)
    assert hook.exit_code == 0, hook.output
    assert "drop-column (approved: name moved to full_name by hand)" in hook.stdout
    assert "0 blocking" in hook.stdout
    assert cli("lint", folder, "-c", policy, "-f", "json").exit_code == 0

    without = cli("lint", changed)  # no policy: the default severities, no approvals
    assert without.exit_code == 1
    assert "drop-column BLOCKS" in without.stdout

    changed.write_text(changed.read_text() + "\n-- edited after review\n")
    edited = cli("lint", changed, "-c", policy)
    assert edited.exit_code == 1, "an approval binds to the reviewed file's checksum"
    assert "drop-column BLOCKS" in edited.stdout


UNREACHABLE = "postgresql://app:s3cret-pw@127.0.0.1:1/shop"
"""Nothing listens on port 1: the database CI cannot reach."""


def test_an_unreachable_database_is_unknown_not_empty(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    folder = risky_folder(tmp_path)
    policy = write_policy(
        f"targets:\n  - name: shop\n    database: {UNREACHABLE}\n"
        f"    migrations: {{layout: prisma, path: {folder.name}}}\n"
    )
    for fmt in ("text", "json", "sarif", "github"):
        result = cli("lint", "-c", policy, "-f", fmt)
        assert result.exit_code == 1, (fmt, result.output)
        assert "s3cret" not in result.output
        assert "values lost" not in result.stdout
        first = result.output.splitlines()[0]
        assert "unreachable" in first.lower(), (fmt, first)
    text = cli("lint", "-c", policy).stdout
    first, second = text.splitlines()[:2]
    assert first.startswith("reconciler lint: DATABASE UNREACHABLE: shop: ")
    assert second == (
        "reconciler lint: 8 migration(s), static (database unreachable: live data unknown)"
    )
    assert "drop-column BLOCKS: drops users.name (static analysis: live data unknown)" in text
    github = cli("lint", "-c", policy, "-f", "github").stdout.splitlines()[0]
    assert github.startswith("::warning title=reconciler lint%3A database unreachable::shop: ")
    report = json.loads(cli("lint", "-c", policy, "-f", "json").stdout)
    assert [u["target"] for u in report["unreachable"]] == ["shop"]
    assert "\n" not in report["unreachable"][0]["error"]
    assert report["failed"] is True
    sarif = json.loads(cli("lint", "-c", policy, "-f", "sarif").stdout)
    notes = sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert "database unreachable: shop" in notes[0]["message"]["text"]


def test_a_reachable_database_stays_data_aware(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path, pg_url: str
) -> None:
    folder = risky_folder(tmp_path)
    policy = write_policy(
        f"targets:\n  - name: shop\n    database: {pg_url}\n"
        f"    migrations: {{layout: prisma, path: {folder.name}}}\n"
    )
    result = cli("lint", "-c", policy, "-f", "json")
    assert json.loads(result.stdout)["unreachable"] == []
    assert "unreachable" not in cli("lint", "-c", policy).stdout
