"""What ``plan``, ``check`` and ``status`` say about the gate's verdicts and the policy:
a syntax error is invalid (no approval can fix it), an approval may be given ahead of a
pinned revision, a production target without a backup is said to have none."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import Result

from reconciler.runtime.daemon import Daemon
from reconciler.runtime.endpoints import routes
from reconciler.runtime.http import Server
from tests.conftest import PRISMA_PG, PRISMA_SQLITE, ROOT

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


def test_a_production_target_without_a_backup_is_said_so_everywhere(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path, pg_url: str
) -> None:
    shutil.copytree(PRISMA_PG, tmp_path / "m")
    shutil.copytree(PRISMA_SQLITE, tmp_path / "s")
    policy = write_policy(
        "ledger: sqlite:///ledger.db\ntargets:\n"
        f"  - {{name: shop, database: '{pg_url}', migrations: {{layout: prisma, path: m}}}}\n"
        "  - {name: lite, database: 'sqlite:///lite.db', migrations: {layout: prisma, path: s}}\n"
        f"  - {{name: kept, database: '{pg_url}', migrations: {{layout: prisma, path: m}},"
        " backup: {driver: pg_dump, dir: backups}}\n"
        f"  - {{name: half, database: '{pg_url}', migrations: {{layout: prisma, path: m}},"
        " backup: {driver: pg_dump, dir: backups, before: [identity-delete]}}\n"
        f"  - {{name: stage, environment: staging, database: '{pg_url}',"
        " migrations: {layout: prisma, path: m}}\n"
    )
    missing = "production without a backup: schema changes are applied with no snapshot"
    checked = cli("check", "-c", policy)
    assert checked.exit_code == 0, checked.output  # a warning, not a refusal
    warned = [ln for ln in checked.stderr.splitlines() if ln.startswith("reconciler: warning:")]
    assert [ln.split(":")[2].strip() for ln in warned] == ["shop", "lite", "half"]
    assert f"shop: {missing}" in checked.stderr
    assert "add a `backup:` section (e.g. backup: {driver: pg_dump" in checked.stderr
    assert "lite: production without a backup" in checked.stderr
    assert "{driver: sqlite, dir: var/backups}" in checked.stderr
    assert "half: production, but backup.before leaves out schema-change" in checked.stderr

    planned = cli("plan", "-c", policy, "-t", "shop")
    assert f"  ! {missing}" in planned.stdout
    for quiet in ("kept", "stage"):
        assert "snapshot" not in cli("plan", "-c", policy, "-t", quiet).stdout
    shown = json.loads(cli("plan", "-c", policy, "-t", "lite", "-o", "json").stdout)
    assert shown["targets"][0]["notes"][0].startswith("production without a backup")

    status = cli("status", "-c", policy)
    assert f"shop (production, prisma, apply: auto)\n  WARNING    {missing}" in status.stdout
    listed = json.loads(cli("status", "-c", policy, "-o", "json").stdout)["targets"]
    assert {t["target"]: bool(t["warnings"]) for t in listed} == {
        "shop": True,
        "lite": True,
        "kept": False,
        "half": True,
        "stage": False,
    }

    daemon = Daemon(policy, serving=False)
    try:
        with Server("127.0.0.1", 0, routes(daemon)) as server:
            host, port = server.httpd.server_address[:2]
            served = httpx.get(f"http://{host}:{port}/status", timeout=5).json()["targets"]
    finally:
        daemon.stop(grace=0)
    by_name = {t["name"]: t["warnings"] for t in served}
    assert by_name["shop"][0].startswith(missing)
    assert by_name["kept"] == by_name["stage"] == []


def test_the_shipped_production_policy_without_a_backup_is_warned_about(cli: Cli) -> None:
    checked = cli("check", "-c", ROOT / "policies" / "postgres-prisma.yaml")
    assert checked.exit_code == 0, checked.output
    assert "shop-postgres: production without a backup" in checked.stderr
