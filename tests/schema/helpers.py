"""Small builders for schema tests: copies of the example histories, policies, migrations."""

from __future__ import annotations

import shutil
from pathlib import Path

from reconciler.ledger import Ledger
from reconciler.policy import Policy, load_policy
from tests.conftest import PRISMA_PG, PRISMA_SQLITE


def prisma_copy(tmp_path: Path, dialect: str) -> Path:
    """A private copy of the example Prisma history for ``dialect``, safe to edit."""
    source = PRISMA_PG if dialect == "postgresql" else PRISMA_SQLITE
    target = tmp_path / "migrations"
    shutil.copytree(source, target)
    return target


def add_migration(folder: Path, name: str, sql: str) -> Path:
    path = folder / name / "migration.sql"
    path.parent.mkdir(parents=True)
    path.write_text(sql, encoding="utf-8")
    return path


def prisma_policy(
    tmp_path: Path, url: str, migrations: Path, revision: str = "head", extra: str = ""
) -> Policy:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "ledger: sqlite:///ledger.db\n"
        "targets:\n"
        "  - name: shop\n"
        f"    database: {url}\n"
        f"    migrations: {{layout: prisma, path: {migrations}, revision: {revision}}}\n"
        f"{extra}",
        encoding="utf-8",
    )
    return load_policy(path, environ={})


OPEN_LEDGERS: list[Ledger] = []


def ledger_of(policy: Policy) -> Ledger:
    """The policy's ledger; closed by the ``close_ledgers`` fixture after the test."""
    ledger = Ledger(policy.ledger)
    OPEN_LEDGERS.append(ledger)
    return ledger
