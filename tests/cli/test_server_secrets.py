"""Only the daemon serving HTTP needs ``server.*`` secrets (and only the daemon the
notification URL): ``check``, ``plan``, ``lint``, ``status`` and ``run --once`` run without
them; ``${RECONCILER_TOKEN:-}`` means no token, and a daemon without one answers ``/status``
but refuses every run-now request. No secret is ever printed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import Result

from tests.conftest import PRISMA_SQLITE, run_process
from tests.runtime.test_daemon import free_port, wait_for

Cli = Callable[..., Result]
TOKEN = "tok-Only-The-Daemon-7c6b5a"
HOOK = "http://127.0.0.1:9/hooks/Never-Printed-4d3c2b"

POLICY = """\
server: {listen: '127.0.0.1:%(port)s', token: '%(token)s'}
notifications: {url: '${NOTIFY_URL}', format: slack}
targets:
  - name: shop
    database: sqlite:///var/shop.db
    migrations: {layout: prisma, path: migrations}
    schedule: {schema: 1h, identity: null}
"""


REFERENCE = "${RECONCILER_TOKEN}"


def write(folder: Path, token: str = REFERENCE, port: int = 9108) -> Path:
    if not (folder / "migrations").exists():
        shutil.copytree(PRISMA_SQLITE, folder / "migrations")
    policy = folder / "policy.yaml"
    policy.write_text(POLICY % {"port": port, "token": token}, encoding="utf-8")
    return policy


@pytest.fixture(autouse=True)
def no_secrets_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECONCILER_TOKEN", raising=False)
    monkeypatch.delenv("NOTIFY_URL", raising=False)


def test_commands_that_serve_no_http_need_no_server_secret(cli: Cli, tmp_path: Path) -> None:
    policy = write(tmp_path)
    checked = cli("check", "-c", policy)
    assert checked.exit_code == 0, checked.output
    planned = cli("plan", "-c", policy)
    assert planned.exit_code == 2, planned.output
    assert "Plan: 7 migrations to apply." in planned.stdout
    linted = cli("lint", "-c", policy)
    assert linted.exit_code == 0, linted.output
    shown = cli("status", "-c", policy)
    assert shown.exit_code == 0, shown.output


def test_run_needs_the_token_and_names_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = write(tmp_path)
    monkeypatch.setenv("NOTIFY_URL", HOOK)
    ran = run_process("run", "-c", policy, cwd=tmp_path)
    assert ran.returncode == 1
    assert ran.stderr.splitlines() == [
        f"reconciler: error: {policy}:1:36: server.token: environment variable "
        "RECONCILER_TOKEN is not set (write ${RECONCILER_TOKEN:-default} to give a default)"
    ]
    assert not (tmp_path / "var").exists()  # it stopped before the ledger was made
    # Refused the same way when the variable is there but empty.
    ran = run_process("run", "-c", policy, cwd=tmp_path, env={"RECONCILER_TOKEN": ""})
    assert ran.returncode == 1
    assert "server.token: environment variable RECONCILER_TOKEN is not set" in ran.stderr


def test_run_once_serves_no_http_and_needs_no_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = write(tmp_path)
    monkeypatch.setenv("NOTIFY_URL", HOOK)
    ran = run_process("run", "--once", "-c", policy, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "shop schema: InSync" in ran.stdout
    assert HOOK.rsplit("/", 1)[1] not in ran.stdout + ran.stderr
    # It still sends notifications: their URL is needed.
    monkeypatch.delenv("NOTIFY_URL")
    ran = run_process("run", "--once", "-c", policy, cwd=tmp_path)
    assert ran.returncode == 1
    assert "notifications.url: environment variable NOTIFY_URL is not set" in ran.stderr


def test_an_empty_default_means_no_token_and_run_now_is_refused(tmp_path: Path) -> None:
    port = free_port()
    policy = write(tmp_path, token="${RECONCILER_TOKEN:-}", port=port)
    log = tmp_path / "daemon.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "run", "-c", str(policy)],
            cwd=tmp_path,
            env={**os.environ, "NOTIFY_URL": HOOK},
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for(lambda: httpx.get(f"{url}/healthz").status_code == 200, what="the daemon")
            # No token configured: /status answers anyone, as it always did without one.
            assert httpx.get(f"{url}/status").status_code == 200
            # Run-now requests need a token: without one configured, none is accepted.
            for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Bearer x"}):
                refused = httpx.post(f"{url}/targets/shop/reconcile", headers=headers)
                assert refused.status_code == 403
                assert refused.json() == {"error": "set server.token to allow run-now requests"}
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0
    logged = log.read_text()
    assert "server.token is not set" in logged
    assert "Traceback" not in logged
    assert HOOK.rsplit("/", 1)[1] not in logged


def test_the_token_never_shows(tmp_path: Path) -> None:
    """Given, the daemon takes the token; its value is in no output, log or error."""
    port = free_port()
    policy = write(tmp_path, port=port)
    log = tmp_path / "daemon.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "run", "-c", str(policy)],
            cwd=tmp_path,
            env={**os.environ, "RECONCILER_TOKEN": TOKEN, "NOTIFY_URL": HOOK},
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for(lambda: httpx.get(f"{url}/healthz").status_code == 200, what="the daemon")
            assert httpx.get(f"{url}/status").status_code == 401
            auth = {"Authorization": f"Bearer {TOKEN}"}
            shown = httpx.get(f"{url}/status", headers=auth)
            assert shown.status_code == 200
            assert httpx.post(f"{url}/targets/shop/reconcile", headers=auth).status_code == 202
            exposed = shown.text + httpx.get(f"{url}/metrics").text

            def applied() -> bool:  # the plan below needs the history applied first
                targets = httpx.get(f"{url}/status", headers=auth).json()["targets"]
                schema = next(t for t in targets if t["name"] == "shop")["concerns"]
                return bool(schema.get("schema", {}).get("reason") == "InSync")

            wait_for(applied, what="the first schema run")
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0
    for text in (exposed, log.read_text()):
        assert TOKEN not in text
        assert HOOK.rsplit("/", 1)[1] not in text
    # A plan with the token in the environment: never resolved, never shown either.
    planned = run_process("-vv", "plan", "-c", policy, env={"RECONCILER_TOKEN": TOKEN})
    assert planned.returncode == 0  # the daemon applied the history
    assert TOKEN not in planned.stdout + planned.stderr
