"""Counters exist at 0 from the start: ``increase()`` over a series that appears with its
first event misses that event, so an alert on failures would wait for the second."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from reconciler.runtime.daemon import Daemon
from tests.conftest import PRISMA_SQLITE


def samples(daemon: Daemon, name: str) -> dict[str, float]:
    text = generate_latest(daemon.metrics.registry).decode()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{")
    }


def test_every_counter_of_a_target_starts_at_zero_and_counts_the_first_failure(
    tmp_path: Path, write_policy: Callable[[str], Path]
) -> None:
    shutil.copytree(PRISMA_SQLITE, tmp_path / "migrations")
    (tmp_path / "users.yaml").write_text("users: []\n")
    policy = write_policy(
        """
        ledger: sqlite:///ledger.db
        targets:
          - name: shop
            database: sqlite:///shop.db
            migrations: {layout: prisma, path: migrations}
            identity: {provider: file, file: {path: users.yaml}, key: clerk_id}
          - name: blog
            database: sqlite:///blog.db
            migrations: {layout: prisma, path: migrations}
        """
    )
    daemon = Daemon(policy)
    try:
        runs = samples(daemon, "reconciler_reconcile_total")
        assert runs == {
            f'reconciler_reconcile_total{{concern="{c}",result="{r}",target="{t}"}}': 0.0
            for t, concerns in (
                ("shop", ("schema", "identity", "drift")),
                ("blog", ("schema", "drift")),
            )
            for c in concerns
            for r in ("success", "failure")
        }
        assert set(samples(daemon, "reconciler_webhook_deliveries_total").values()) == {0.0}
        assert len(samples(daemon, "reconciler_webhook_deliveries_total")) == 9  # shop only
        assert samples(daemon, "reconciler_identity_changes_total") == {
            f'reconciler_identity_changes_total{{action="{a}",target="shop"}}': 0.0
            for a in ("created", "updated", "soft_deleted", "deleted")
        }

        shutil.rmtree(tmp_path / "migrations")  # the next schema run of blog fails
        daemon.reconcile("blog", "schema", trigger="once")
        failures = samples(daemon, "reconciler_reconcile_total")
        key = 'reconciler_reconcile_total{concern="schema",result="failure",target="blog"}'
        assert failures[key] == 1.0
    finally:
        daemon.stop(grace=0)


def test_outcomes_are_logged_as_loud_as_they_are(
    tmp_path: Path, write_policy: Callable[[str], Path], caplog: pytest.LogCaptureFixture
) -> None:
    """A person must act: error. Retried by itself: warning. Settled: info."""
    shutil.copytree(PRISMA_SQLITE, tmp_path / "migrations")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "20260101000000_bad").mkdir()
    (tmp_path / "broken" / "20260101000000_bad" / "migration.sql").write_text("CREATE TABLE (;\n")
    policy = write_policy(
        """
        ledger: sqlite:///ledger.db
        targets:
          - name: shop
            database: sqlite:///shop.db
            migrations: {layout: prisma, path: migrations}
          - name: lost  # nothing listens on port 1
            database: postgresql://postgres@127.0.0.1:1/shop
            migrations: {layout: prisma, path: migrations}
          - name: bad
            database: sqlite:///bad.db
            migrations: {layout: prisma, path: broken}
        """
    )
    daemon = Daemon(policy)
    try:
        with caplog.at_level(logging.INFO, logger="reconciler"):
            reasons = {
                name: daemon.reconcile(name, "schema", trigger="once") for name in daemon.targets
            }
        levels = {
            r.message.split(" ", 1)[0]: r.levelname
            for r in caplog.records
            if r.message.split(" ", 2)[1:2] == ["schema:"]
        }
        assert reasons == {
            "shop": "InSync",
            "lost": "DatabaseUnavailable",
            "bad": "ApplyFailed",
        }
        assert levels == {"shop": "INFO", "lost": "WARNING", "bad": "ERROR"}
    finally:
        daemon.stop(grace=0)
