"""Notifications reach a webhook when a condition changes, and only then."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from reconciler.policy.model import Notifications
from reconciler.runtime.conditions import evaluate
from reconciler.runtime.daemon import Daemon
from reconciler.runtime.http import Reply, Server, json_reply
from reconciler.runtime.notify import Notifier
from tests.conftest import PRISMA_SQLITE


def test_condition_changes_are_posted_once_with_retries() -> None:
    received: list[dict[str, object]] = []
    failures = [503]

    def hook(headers: Mapping[str, str], body: bytes) -> Reply:
        if failures:
            return json_reply(failures.pop(), {})
        received.append(json.loads(body))
        return json_reply(200, {})

    with Server("127.0.0.1", 0, {("POST", "/hook"): hook}) as server:
        notifier = Notifier(Notifications(url=f"{server.url}/hook", format="json"))
        now = datetime.now(UTC)
        ready = evaluate("InSync", "at head", now)
        stalled = evaluate("BackupFailed", "pg_dump failed", now, previous=ready)
        notifier.changed("shop", ready, stalled, "abc123")
        notifier.changed(
            "shop", stalled, evaluate("BackupFailed", "again", now, previous=stalled), "abc123"
        )
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
    assert len(received) == 1, "a repeat of the same condition is not news"
    assert received[0]["reason"] == "BackupFailed"
    assert received[0]["stalled"] is True
    assert received[0]["previous_reason"] == "InSync"


def test_slack_format() -> None:
    received: list[dict[str, object]] = []

    def hook(headers: Mapping[str, str], body: bytes) -> Reply:
        received.append(json.loads(body))
        return json_reply(200, {})

    with Server("127.0.0.1", 0, {("POST", "/slack"): hook}) as server:
        notifier = Notifier(Notifications(url=f"{server.url}/slack", format="slack"))
        now = datetime.now(UTC)
        notifier.changed("shop", (), evaluate("AwaitingApproval", "drop needs review", now), None)
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.1)
    assert received == [{"text": ":rotating_light: *shop* is AwaitingApproval: drop needs review"}]


def test_flush_waits_for_a_delivery_under_way() -> None:
    """``run --once`` flushes before it exits: the notification is sent, not cut short."""
    received: list[dict[str, object]] = []

    def hook(headers: Mapping[str, str], body: bytes) -> Reply:
        time.sleep(0.5)  # a slow receiver
        received.append(json.loads(body))
        return json_reply(200, {})

    with Server("127.0.0.1", 0, {("POST", "/hook"): hook}) as server:
        notifier = Notifier(Notifications(url=f"{server.url}/hook", format="json"))
        notifier.changed("shop", (), evaluate("InSync", "at head", datetime.now(UTC)), None)
        notifier.flush(10)
        assert [r["reason"] for r in received] == ["InSync"]
        assert not any(t.is_alive() for t in notifier.deliveries)


def test_a_stopping_daemon_sends_its_last_notification(
    tmp_path: Path, write_policy: Callable[..., Path]
) -> None:
    """SIGTERM's path waits, within the grace period, for the delivery under way."""
    received: list[dict[str, object]] = []

    def hook(headers: Mapping[str, str], body: bytes) -> Reply:
        time.sleep(0.5)  # a slow receiver
        received.append(json.loads(body))
        return json_reply(200, {})

    shutil.copytree(PRISMA_SQLITE, tmp_path / "migrations")
    with Server("127.0.0.1", 0, {("POST", "/hook"): hook}) as server:
        daemon = Daemon(
            write_policy(
                f"notifications: {{url: '{server.url}/hook', format: json}}\n"
                "targets:\n  - name: shop\n    database: sqlite:///shop.db\n"
                "    migrations: {layout: prisma, path: migrations}\n"
            )
        )
        daemon.reconcile("shop", "schema", "api")  # Ready: InSync, which is announced
        daemon.stop(grace=10)
        assert [r["reason"] for r in received] == ["InSync"]
