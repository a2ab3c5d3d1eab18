"""The daemon as a real process: a git repository as the source, real PostgreSQL, HTTP."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from svix.webhooks import Webhook

from tests.conftest import PRISMA_PG, pg_query
from tests.identity.doubles import ClerkDouble, Population, clerk_user

TOKEN = "tok-9f8e7d6c5b4a"
PASSWORD_FREE_SECRET = "sk_test_Secret-Never-Shown-42"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
    }
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Deployment:
    """A git repository holding the policy and migrations, and daemons that follow it."""

    def __init__(self, tmp_path: Path, pg_url: str) -> None:
        self.tmp_path, self.pg_url = tmp_path, pg_url
        self.repo = tmp_path / "repo"
        self.repo.mkdir()
        git(self.repo, "init", "-q", "-b", "main")
        shutil.copytree(PRISMA_PG, self.repo / "migrations")
        self.write_policy()
        self.commit("initial")
        self.processes: list[tuple[subprocess.Popen[str], Path]] = []
        self.files: list[Any] = []

    def write_policy(self, extra: str = "", clerk: str = "http://127.0.0.1:9/v1") -> None:
        (self.repo / "policy.yaml").write_text(
            "targets:\n  - name: shop\n    database: ${SHOP_DB}\n"
            "    migrations: {layout: prisma, path: migrations}\n"
            "    schedule: {schema: 2s, identity: 3s, jitter: 0%, retry: 1s}\n"
            "    identity:\n      provider: clerk\n"
            f"      clerk: {{secret_key: '${{CLERK_KEY}}', api_url: '{clerk}',\n"
            "              webhook_secret: '${CLERK_WEBHOOK_SECRET}'}\n"
            "      key: clerk_id\n"
            "      columns: {email: email, first_name: first_name, last_name: last_name}\n" + extra
        )

    def commit(self, message: str) -> str:
        git(self.repo, "add", "-A")
        git(self.repo, "commit", "-q", "-m", message)
        return git(self.repo, "rev-parse", "HEAD")

    def add_migration(self, name: str, sql: str) -> str:
        path = self.repo / "migrations" / name / "migration.sql"
        path.parent.mkdir()
        path.write_text(sql)
        return self.commit(name)

    def start(self, ledger: str | None = None) -> str:
        index = len(self.processes)
        home = self.tmp_path / f"replica{index}"
        home.mkdir()
        port = free_port()
        (home / "bootstrap.yaml").write_text(
            f"ledger: {ledger or 'sqlite:///ledger.db'}\n"
            f"source: {{git: {{url: '{self.repo}', ref: main, path: policy.yaml, "
            "interval: 1s}}\n"
            f"server: {{listen: '127.0.0.1:{port}', token: '${{RECONCILER_TOKEN}}'}}\n"
            "targets:\n  - name: bootstrap\n    database: sqlite:///unused.db\n"
            "    migrations: {layout: prisma, path: " + str(PRISMA_PG) + "}\n"
        )
        log = home / "daemon.log"
        output = log.open("w")
        self.files.append(output)
        env = {
            **os.environ,
            "SHOP_DB": self.pg_url,
            "CLERK_KEY": PASSWORD_FREE_SECRET,
            "CLERK_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "RECONCILER_TOKEN": TOKEN,
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "run", "--config", str(home / "bootstrap.yaml")],
            cwd=home,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.processes.append((process, log))
        url = f"http://127.0.0.1:{port}"
        wait_for(
            lambda: httpx.get(f"{url}/healthz", timeout=1).status_code == 200,
            what=f"replica {index} to serve",
            log=log,
        )
        return url

    def stop_all(self) -> list[int]:
        codes = []
        for process, _ in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            codes.append(process.wait(timeout=60))
        for output in self.files:
            output.close()
        self.files = []
        return codes

    def logs(self) -> str:
        return "".join(log.read_text() for _, log in self.processes)


def wait_for(
    check: Callable[[], Any], *, what: str, timeout: float = 30, log: Path | None = None
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (httpx.HTTPError, KeyError, IndexError, psycopg.errors.UndefinedTable):
            pass  # not yet: no answer, no such entry, no table before the first apply
        time.sleep(0.2)
    detail = log.read_text()[-3000:] if log else ""
    pytest.fail(f"timed out waiting for {what}\n{detail}")


@pytest.fixture
def deployment(tmp_path: Path, pg_url: str) -> Iterator[Deployment]:
    deployed = Deployment(tmp_path, pg_url)
    yield deployed
    deployed.stop_all()


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def status(url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/status", headers=auth(), timeout=5).json())


def shop(url: str) -> dict[str, Any]:
    return next(t for t in status(url)["targets"] if t["name"] == "shop")


def test_new_commit_is_applied_and_shown(deployment: Deployment) -> None:
    url = deployment.start()
    wait_for(
        lambda: shop(url)["schema"].get("live_revision", "").endswith("canceled_at"),
        what="the initial history to be applied",
    )
    commit = deployment.add_migration(
        "20261201000000_add_notes", 'ALTER TABLE "users" ADD COLUMN "notes" TEXT;\n'
    )
    wait_for(lambda: status(url)["source"]["commit"] == commit, what="the new commit")
    wait_for(
        lambda: shop(url)["schema"]["live_revision"] == "20261201000000_add_notes",
        what="the new migration to be applied",
    )
    assert pg_query(
        deployment.pg_url,
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_name = 'users' AND column_name = 'notes'",
    ) == [(1,)]
    metrics = httpx.get(f"{url}/metrics").text
    assert f'reconciler_source_info{{commit="{commit}"}} 1.0' in metrics
    assert 'reconciler_schema_pending_migrations{target="shop"} 0.0' in metrics
    assert 'reconciler_migrations_applied_total{target="shop"} 8.0' in metrics
    assert 'reconciler_leader{target="shop"} 1.0' in metrics
    wait_for(
        lambda: shop(url)["concerns"].get("identity", {}).get("finished_at"),
        what="an identity run to end",
    )
    conditions = {c["type"]: c for c in shop(url)["conditions"]}
    # Identity points at a closed port: the provider is unavailable, not the schema.
    assert conditions["Ready"]["reason"] == "ProviderUnavailable"
    assert conditions["Stalled"]["status"] == "False"


def signed(kind: str, data: dict[str, Any], secret: str = WEBHOOK_SECRET) -> dict[str, Any]:
    """A Clerk webhook delivery as Svix sends it: the body and its headers."""
    msg_id, when = f"msg_{time.time_ns()}", datetime.now(UTC)
    body = json.dumps({"type": kind, "object": "event", "data": data})
    signature = Webhook(secret).sign(msg_id, when, body)
    headers = {
        "svix-id": msg_id,
        "svix-timestamp": str(int(when.timestamp())),
        "svix-signature": signature,
        "content-type": "application/json",
    }
    return {"content": body, "headers": headers}


def test_identity_follows_the_provider_and_its_webhooks(deployment: Deployment) -> None:
    population = Population(100)
    with ClerkDouble(population, PASSWORD_FREE_SECRET) as clerk:
        deployment.write_policy(clerk=clerk.url)
        deployment.commit("identity from the Clerk double")
        url = deployment.start()
        with_email = sum(1 for u in population if u["email_addresses"])
        wait_for(
            lambda: pg_query(deployment.pg_url, "SELECT count(*) FROM users") == [(with_email,)],
            what="the periodic sync to create the provider's users",
            log=deployment.processes[0][1],
        )
        wait_for(lambda: shop(url)["identity"].get("applied"), what="the sync shown in /status")
        assert shop(url)["identity"]["listed"] == 100
        assert shop(url)["identity"]["not_taken"] == 100 - with_email == 1  # no email address
        metrics = httpx.get(f"{url}/metrics").text
        assert (
            f'reconciler_identity_changes_total{{action="created",target="shop"}} '
            f"{float(with_email)}" in metrics
        )
        # A user created in the provider reaches the table through its webhook.
        newcomer = clerk_user(1000)
        forged = signed("user.created", newcomer, secret="whsec_" + "A" * 32)
        assert httpx.post(f"{url}/webhooks/clerk", **forged).status_code == 401
        newcomer_email = newcomer["email_addresses"][0]["email_address"]
        assert pg_query(
            deployment.pg_url, "SELECT count(*) FROM users WHERE email = %s", (newcomer_email,)
        ) == [(0,)]
        delivery = signed("user.created", newcomer)
        assert httpx.post(f"{url}/webhooks/clerk", **delivery).status_code == 200
        assert pg_query(
            deployment.pg_url, "SELECT clerk_id FROM users WHERE email = %s", (newcomer_email,)
        ) == [(newcomer["id"],)]
        again = httpx.post(f"{url}/webhooks/clerk", **delivery)
        assert again.status_code == 200
        assert again.json() == {"result": "duplicate delivery"}
        counted = httpx.get(f"{url}/metrics").text
        for outcome in ("rejected", "applied", "replayed"):
            assert (
                f'reconciler_webhook_deliveries_total{{outcome="{outcome}",target="shop"}} 1.0'
                in counted
            )
        shown = httpx.get(f"{url}/status", headers=auth()).text + metrics + deployment.logs()
        assert WEBHOOK_SECRET not in shown
        assert PASSWORD_FREE_SECRET not in shown


def test_bad_commit_keeps_the_last_good_policy(deployment: Deployment) -> None:
    url = deployment.start()
    wait_for(
        lambda: shop(url)["schema"].get("live_revision", "").endswith("canceled_at"),
        what="the initial history",
    )
    good = status(url)["source"]["commit"]
    (deployment.repo / "policy.yaml").write_text("targets:\n  - name: shop\n    databse: x\n")
    deployment.commit("broken policy")
    wait_for(lambda: status(url)["source"]["error"], what="the invalid policy to be reported")
    report = status(url)
    assert report["source"]["commit"] == good
    assert "targets[0].databse: unknown key" in report["source"]["error"]
    assert {c["type"]: c["reason"] for c in shop(url)["conditions"]}["Stalled"] == "InvalidPolicy"

    # A policy saved in Latin-1: named as such, and still the last good policy in force.
    text = (deployment.repo / "policy.yaml").read_text()
    (deployment.repo / "policy.yaml").write_bytes(f"# caf\xe9\n{text}".encode("latin-1"))
    deployment.commit("latin-1 policy")
    wait_for(lambda: "not UTF-8" in status(url)["source"]["error"], what="the encoding error")
    assert status(url)["source"]["commit"] == good


def test_tokens_are_enforced_and_secrets_never_shown(deployment: Deployment) -> None:
    url = deployment.start()
    assert httpx.get(f"{url}/status").status_code == 401
    assert httpx.get(f"{url}/status", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert httpx.post(f"{url}/targets/shop/reconcile").status_code == 401
    assert httpx.post(f"{url}/targets/shop/reconcile", headers=auth()).status_code == 202
    wait_for(
        lambda: shop(url)["concerns"].get("identity", {}).get("finished_at"),
        what="an identity run to end",
    )
    exposed = httpx.get(f"{url}/metrics").text + httpx.get(f"{url}/status", headers=auth()).text
    deployment.stop_all()
    for text in (exposed, deployment.logs()):
        assert PASSWORD_FREE_SECRET not in text
        assert TOKEN not in text


def test_two_replicas_apply_each_migration_once(deployment: Deployment, pg_url: str) -> None:
    ledger = pg_url  # a PostgreSQL ledger: leadership is an advisory lock on it
    first, second = deployment.start(ledger), deployment.start(ledger)
    deployment.add_migration(
        "20261201000000_add_notes", 'ALTER TABLE "users" ADD COLUMN "notes" TEXT;\n'
    )
    wait_for(
        lambda: (
            pg_query(
                pg_url,
                "SELECT count(*) FROM _prisma_migrations WHERE "
                "migration_name = '20261201000000_add_notes'",
            )
            == [(1,)]
        ),
        what="the migration to be applied",
    )
    time.sleep(3)
    rows = pg_query(
        pg_url,
        "SELECT migration_name, count(*) FROM _prisma_migrations "
        "GROUP BY migration_name HAVING count(*) > 1",
    )
    assert rows == []
    leaders = [shop(u)["leader"] for u in (first, second)]
    assert sorted(leaders) == [False, True]


def test_sigterm_exits_cleanly(deployment: Deployment) -> None:
    url = deployment.start()
    wait_for(lambda: shop(url)["concerns"].get("schema"), what="a first run")
    assert deployment.stop_all() == [0]


def test_sigterm_taken_by_another_thread_still_stops_it(deployment: Deployment) -> None:
    """The kernel may give a signal sent to the process to any of its threads, and Python
    runs the handler in the main thread only: the daemon stops all the same, cleanly."""
    import ctypes

    url = deployment.start()
    wait_for(lambda: shop(url)["concerns"].get("schema"), what="a first run")
    ((process, log),) = deployment.processes
    others = sorted(
        int(t) for t in os.listdir(f"/proc/{process.pid}/task") if int(t) != process.pid
    )
    assert others, "the daemon runs threads besides the main one"
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.tgkill(process.pid, others[0], signal.SIGTERM) == 0, ctypes.get_errno()
    assert process.wait(timeout=30) == 0
    assert "signal SIGTERM: stopping" in log.read_text()


def test_metrics_pass_promtool(deployment: Deployment) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed (.ci/run installs Debian's prometheus)")
    url = deployment.start()
    wait_for(lambda: shop(url)["concerns"].get("schema"), what="a first run")
    text = httpx.get(f"{url}/metrics").text
    assert "reconciler_build_info" in text
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_sigterm_during_a_slow_migration_lets_it_finish(deployment: Deployment) -> None:
    url = deployment.start()
    wait_for(
        lambda: shop(url)["schema"].get("live_revision", "").endswith("canceled_at"),
        what="the initial history",
    )
    deployment.add_migration(
        "20261201000000_slow", 'SELECT pg_sleep(3);\nCREATE TABLE "slow_done" ("id" INTEGER);\n'
    )
    wait_for(
        lambda: (
            pg_query(
                deployment.pg_url,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state = 'active' AND query LIKE '%pg_sleep(3)%' AND pid <> pg_backend_pid()",
            )
            == [(1,)]
        ),
        what="the slow migration to start",
    )
    assert deployment.stop_all() == [0]
    # It finished inside the grace period: the schema, Prisma's history and the ledger agree.
    assert pg_query(deployment.pg_url, "SELECT to_regclass('slow_done') IS NOT NULL") == [(True,)]
    assert pg_query(
        deployment.pg_url,
        "SELECT finished_at IS NOT NULL FROM _prisma_migrations "
        "WHERE migration_name = '20261201000000_slow'",
    ) == [(True,)]
    import sqlite3

    ledger = deployment.tmp_path / "replica0" / "ledger.db"
    with sqlite3.connect(ledger) as conn:
        steps = conn.execute(
            "SELECT outcome FROM steps WHERE migration = '20261201000000_slow'"
        ).fetchall()
    assert steps == [("applied",)]
