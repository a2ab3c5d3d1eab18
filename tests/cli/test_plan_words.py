"""What ``plan``, ``check`` and ``status`` say about the gate's verdicts and the policy:
a syntax error is invalid (no approval can fix it), an approval may be given ahead of a
pinned revision, a production target without a backup is said to have none."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.conftest import PRISMA_PG, PRISMA_SQLITE

Cli = Callable[..., Result]

PG_TARGET = (
    "targets:\n  - name: shop\n    database: {url}\n"
    "    migrations: {{layout: prisma, path: migrations{revision}}}\n"
)


def pg_policy(
    write_policy: Callable[[str], Path], url: str, revision: str = "", extra: str = ""
) -> Path:
    pinned = f", revision: {revision}" if revision else ""
    return write_policy(PG_TARGET.format(url=url, revision=pinned) + extra)


def test_a_syntax_error_is_said_invalid_not_awaiting_an_approval(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path, pg_url: str
) -> None:
    shutil.copytree(PRISMA_PG, tmp_path / "migrations")
    bad = tmp_path / "migrations" / "20261201000000_typo" / "migration.sql"
    bad.parent.mkdir()
    bad.write_text('-- AlterTable\nALTER TABLE "users"\n  ADD COLUMN "x" TEXT,,\n')
    policy = pg_policy(write_policy, pg_url)

    planned = cli("plan", "-c", policy)
    assert planned.exit_code == 2, planned.output  # changes pending, one of them invalid
    last = planned.stdout.strip().splitlines()[-1]
    assert "then 20261201000000_typo is invalid (PostgreSQL cannot parse it)" in last, last
    assert "approval" not in last
    assert "To approve" not in planned.stdout


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_an_approval_ahead_of_the_pinned_revision_is_a_pre_approval(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path, pg_url: str, dialect: str
) -> None:
    shutil.copytree(PRISMA_PG if dialect == "postgresql" else PRISMA_SQLITE, tmp_path / "m")
    url = pg_url if dialect == "postgresql" else "sqlite:///shop.db"
    nxt = "20261110150000_add_subscriptions_canceled_at"
    checksum = hashlib.sha256((tmp_path / "m" / nxt / "migration.sql").read_bytes()).hexdigest()
    approvals = (
        "    safety:\n      approvals:\n"
        f"        - {{migration: {nxt}, checksum: '{checksum[:12]}', rules: [drop-column],"
        " reason: next release}\n"
    )
    policy = write_policy(
        f"targets:\n  - name: shop\n    database: {url}\n"
        "    migrations: {layout: prisma, path: m, revision: 20261103113000_add_users_name_parts}\n"
        + approvals
    )
    planned = cli("plan", "-c", policy)
    assert planned.exit_code == 2, planned.output
    assert "InvalidPolicy" not in planned.stdout
    assert f"pre-approved: {nxt} comes after the pinned revision" in planned.stdout
    assert cli("apply", "-c", policy, "--yes").exit_code == 0
    assert "pre-approved" in cli("plan", "-c", policy).stdout

    typo = write_policy(policy.read_text().replace(nxt, "20991231000000_nope"), "typo.yaml")
    refused = cli("plan", "-c", typo)
    assert refused.exit_code == 1
    assert "blocked (InvalidPolicy)" in refused.stdout
