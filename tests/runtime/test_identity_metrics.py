"""The identity drift a dashboard shows after a sync: what the policy only reports, and users
the table cannot take, stay visible (the drift alert fires on them)."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

from prometheus_client import generate_latest

from reconciler.runtime.daemon import Daemon
from tests.conftest import PRISMA_SQLITE


def drift(daemon: Daemon) -> dict[str, float]:
    text = generate_latest(daemon.metrics.registry).decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("reconciler_identity_drift{"):
            labels, value = line.rsplit(" ", 1)
            kind = labels.split('kind="')[1].split('"')[0]
            values[kind] = float(value)
    return values


def test_drift_left_after_a_sync_stays_on_the_gauge(
    tmp_path: Path, write_policy: Callable[[str], Path]
) -> None:
    shutil.copytree(PRISMA_SQLITE, tmp_path / "migrations")
    (tmp_path / "users.yaml").write_text(
        "users:\n"
        "  - {id: user_1, email: ada@example.com, first_name: Ada}\n"
        "  - {id: user_2, first_name: Nomail}\n"  # users.email is NOT NULL: never taken
    )
    policy = write_policy(
        """
        ledger: sqlite:///ledger.db
        targets:
          - name: shop
            database: sqlite:///shop.db
            migrations: {layout: prisma, path: migrations}
            identity:
              provider: file
              file: {path: users.yaml}
              key: clerk_id
              columns: {email: email, first_name: first_name}
              orphans: report
        """
    )
    daemon = Daemon(policy)
    try:
        daemon.reconcile("shop", "schema", trigger="once")
        with sqlite3.connect(tmp_path / "shop.db") as conn:
            conn.execute(
                "INSERT INTO users (email, clerk_id) VALUES ('gone@example.com', 'user_gone')"
            )
        assert daemon.reconcile("shop", "identity", trigger="once") == "InSync"
        assert drift(daemon) == {"missing": 0, "changed": 0, "orphans": 1, "not_taken": 1}
    finally:
        daemon.stop(grace=0)
