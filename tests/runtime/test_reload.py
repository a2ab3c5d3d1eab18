"""Reloading a local policy file (SIGHUP): whatever the new file holds, the daemon keeps
the last good policy running and says ``InvalidPolicy`` in ``/status``, one line naming the
file, the line and the column; a reload thread never dies with a traceback."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.errors import PolicyError
from reconciler.runtime import daemon as daemon_module
from reconciler.runtime.daemon import Daemon
from reconciler.runtime.logs import JsonFormatter
from reconciler.secrets import register
from tests.conftest import PRISMA_SQLITE
from tests.runtime.test_daemon import free_port, wait_for

TOKEN = "tok-reload-5e4d3c2b1a"
NEW_TOKEN = "tok-rotated-9f8e7d6c5b"


def good_policy(port: int) -> str:
    return (
        f"server: {{listen: '127.0.0.1:{port}', token: '${{RECONCILER_TOKEN}}'}}\n"
        "targets:\n"
        "  - name: shop\n"
        "    database: sqlite:///shop.db\n"
        "    migrations: {layout: prisma, path: migrations}\n"
        "    timeouts: {lock: 5s}\n"
        "    schedule: {schema: 1h, identity: null}\n"
    )


class LocalDaemon:
    """``reconciler run`` over a policy file in a folder of its own, as a real process."""

    def __init__(self, folder: Path) -> None:
        shutil.copytree(PRISMA_SQLITE, folder / "migrations")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.policy = folder / "policy.yaml"
        self.policy.write_text(good_policy(self.port), encoding="utf-8")
        self.log = folder / "daemon.log"
        self.output = self.log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "run", "--config", str(self.policy)],
            cwd=folder,
            env={**os.environ, "RECONCILER_TOKEN": TOKEN, "RECONCILER_NEW_TOKEN": NEW_TOKEN},
            stdout=self.output,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wait_for(self.shop, what="a first run", log=self.log)

    def status(self, token: str = TOKEN) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        return dict(httpx.get(f"{self.url}/status", headers=headers, timeout=5).json())

    def shop(self) -> dict[str, Any]:
        """The target in ``/status`` once its first schema run has finished; else empty."""
        target = next(t for t in self.status()["targets"] if t["name"] == "shop")
        schema = target["concerns"].get("schema") or {}
        return target if schema.get("finished_at") else {}

    def reload(self, text: str) -> None:
        self.policy.write_text(text, encoding="utf-8")
        self.process.send_signal(signal.SIGHUP)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self.output.close()
        return code


def stalled_reason(daemon: LocalDaemon) -> str:
    conditions = {c["type"]: c for c in daemon.shop()["conditions"]}
    return str(conditions["Stalled"]["reason"])


@pytest.fixture
def local_daemon(tmp_path: Path) -> Iterator[LocalDaemon]:
    started = LocalDaemon(tmp_path)
    yield started
    started.stop()


def test_sighup_with_a_file_that_crashed_the_loader_shows_invalid_policy(
    local_daemon: LocalDaemon,
) -> None:
    good = good_policy(local_daemon.port)
    assert local_daemon.shop()["concerns"]["schema"]["reason"] == "InSync"
    policy = local_daemon.policy
    broken = [
        # Each of these once killed the reload thread: nothing showed in /status.
        (good.replace("{lock: 5s}", "{lock: }"), f"{policy}:6:16: targets[0].timeouts.lock:"),
        (good.replace("name: shop", "name: !prod shop"), f"{policy}:3:5: targets[0].name: tag"),
        (good.replace("name: shop", "name: sh\0op"), f"{policy}:3:13: invalid YAML: control"),
        ("a: &a [*a]\n" + good, f"{policy}:1:8: invalid YAML: recursive alias"),
    ]
    for text, expected in broken:
        local_daemon.reload(text)
        error = wait_for(
            lambda expected=expected: (
                (local_daemon.status()["source"]["error"] or "").startswith(expected)
                and stalled_reason(local_daemon) == "InvalidPolicy"
                and local_daemon.status()["source"]["error"]
            ),
            what=f"the reload to report {expected}",
            log=local_daemon.log,
        )
        assert "\n" not in error
        shop = local_daemon.shop()
        conditions = {c["type"]: c for c in shop["conditions"]}
        assert "still reconciling the last good policy" in conditions["Stalled"]["message"]
        assert shop["name"] == "shop"  # the last good policy is the one in force
    local_daemon.reload(good)
    wait_for(
        lambda: local_daemon.status()["source"]["error"] is None,
        what="the good policy to be taken back",
        log=local_daemon.log,
    )
    assert local_daemon.stop() == 0
    assert "Traceback" not in local_daemon.log.read_text()


def test_sighup_rotates_the_token_and_names_settings_that_need_a_restart(
    local_daemon: LocalDaemon,
) -> None:
    """A leaked token is replaced with a SIGHUP; a new listen address is not taken (the
    port stays), and the log says so, without a value."""
    rotated = good_policy(local_daemon.port).replace("RECONCILER_TOKEN", "RECONCILER_NEW_TOKEN")
    moved = rotated.replace(f"127.0.0.1:{local_daemon.port}", f"127.0.0.1:{free_port()}")
    local_daemon.reload(moved)

    def refused_old() -> bool:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        return (
            httpx.get(f"{local_daemon.url}/status", headers=headers, timeout=5).status_code == 401
        )

    wait_for(refused_old, what="the old token to be refused", log=local_daemon.log)
    assert local_daemon.status(NEW_TOKEN)["targets"][0]["name"] == "shop"
    assert local_daemon.stop() == 0
    logged = local_daemon.log.read_text()
    assert "server.token changed: the new token is in force" in logged
    assert "server.listen changed in " in logged
    assert TOKEN not in logged
    assert NEW_TOKEN not in logged


@pytest.fixture
def sqlite_daemon(tmp_path: Path, write_policy: Callable[..., Path]) -> Iterator[Daemon]:
    shutil.copytree(PRISMA_SQLITE, tmp_path / "migrations")
    started = Daemon(
        write_policy(
            "targets:\n  - name: shop\n    database: sqlite:///shop.db\n"
            "    migrations: {layout: prisma, path: migrations}\n"
        )
    )
    yield started
    started.stop(grace=0)


def test_a_loader_bug_during_a_reload_is_invalid_policy_not_a_dead_thread(
    sqlite_daemon: Daemon, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Should the loader ever raise something it did not mean to, the reload still ends
    in ``InvalidPolicy`` (its type named, its traceback logged), not in a dead thread."""
    assert sqlite_daemon.run_once() == 0

    def buggy(*args: object, **kwargs: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(daemon_module, "load_policy", buggy)
    with caplog.at_level(logging.ERROR, logger="reconciler.daemon"):
        sqlite_daemon.reload()
    assert sqlite_daemon.policy_error == (
        f"{sqlite_daemon.config}: cannot load the policy: internal error "
        "(RecursionError; see the log)"
    )
    stalled = {c.type: c for c in sqlite_daemon.targets["shop"].conditions}["Stalled"]
    assert stalled.reason == "InvalidPolicy"
    assert any(r.exc_info for r in caplog.records)

    def invalid(*args: object, **kwargs: object) -> None:
        raise PolicyError("policy.yaml:3:5: targets[0].name: required\npolicy.yaml:4:1: more")

    monkeypatch.setattr(daemon_module, "load_policy", invalid)
    sqlite_daemon.reload()
    assert sqlite_daemon.policy_error == "policy.yaml:3:5: targets[0].name: required"


def test_runs_under_the_last_good_policy_keep_the_invalid_one_in_view(
    sqlite_daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a run is under way, ``Stalled`` still says ``InvalidPolicy``: the run goes on
    under the last good policy and cannot clear the bad file."""
    assert sqlite_daemon.run_once() == 0

    def invalid(*args: object, **kwargs: object) -> None:
        raise PolicyError("policy.yaml:3:5: targets[0].name: required")

    monkeypatch.setattr(daemon_module, "load_policy", invalid)
    sqlite_daemon.reload()
    seen: list[str] = []
    act = sqlite_daemon._act

    def watched(*args: Any, **kwargs: Any) -> tuple[str, str]:
        runtime = sqlite_daemon.targets["shop"]
        seen.append({c.type: c for c in runtime.conditions}["Stalled"].reason)
        return act(*args, **kwargs)

    monkeypatch.setattr(sqlite_daemon, "_act", watched)
    assert sqlite_daemon.reconcile("shop", "schema", "api") == "InSync"
    stalled = {c.type: c for c in sqlite_daemon.targets["shop"].conditions}["Stalled"]
    assert (seen, stalled.reason) == (["InvalidPolicy"], "InvalidPolicy")


def test_a_logged_exception_shows_no_secret() -> None:
    """The JSON log line of an exception carries its last line: through the redaction too."""
    register("hunter2-is-the-secret")
    try:
        raise ValueError("could not use hunter2-is-the-secret")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = JsonFormatter().format(record)
    assert "hunter2" not in line
    assert "***" in line
