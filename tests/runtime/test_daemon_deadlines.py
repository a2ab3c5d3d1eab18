"""The daemon as a real process against identity providers that never finish answering: a
provider that trickles its answer holds back no migration of the same target, SIGTERM ends
the daemon at once in the middle of such a request, and a stalled provider is reported
within ``identity.deadline``. Real PostgreSQL, real TCP servers on 127.0.0.1."""

from __future__ import annotations

import json
import signal
import time

from tests.conftest import pg_query
from tests.identity.slow import SlowServer
from tests.runtime.test_daemon import Deployment, deployment, shop, wait_for

__all__ = ["deployment"]  # the fixture, used by name


def test_a_trickling_provider_holds_back_no_migration_and_sigterm_ends_it(
    deployment: Deployment,
) -> None:
    with SlowServer("trickle", every=1.0) as provider:
        # A deadline far beyond the test: the identity request is still going throughout.
        deployment.write_policy("      deadline: 10m\n", clerk=f"{provider.url}/v1")
        deployment.commit("a provider that trickles")
        url = deployment.start()
        wait_for(
            lambda: shop(url)["schema"].get("live_revision", "").endswith("canceled_at"),
            what="the initial history",
        )
        wait_for(lambda: provider.requests >= 1, what="an identity request in flight")
        deployment.add_migration(
            "20261201000000_add_notes", 'ALTER TABLE "users" ADD COLUMN "notes" TEXT;\n'
        )
        wait_for(
            lambda: shop(url)["schema"]["live_revision"] == "20261201000000_add_notes",
            what="the new migration to be applied while identity waits on the provider",
        )
        assert pg_query(
            deployment.pg_url,
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'users' AND column_name = 'notes'",
        ) == [(1,)]
        requests = provider.requests
        assert requests >= 1  # still the request in flight (each one takes over a minute)

        process, _ = deployment.processes[0]
        assert process.poll() is None
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        took = time.monotonic() - started
    assert code == 0
    assert took < 5, f"took {took:.1f}s to stop (grace: 30s)"
    logs = deployment.logs()
    assert "signal SIGTERM: stopping" in logs
    assert "stopped: reconciler is shutting down" in logs
    assert json.loads(logs.strip().splitlines()[-1])["message"] == "stopped"
    assert "Traceback" not in logs


def test_a_stalled_provider_is_reported_within_the_deadline(deployment: Deployment) -> None:
    with SlowServer("stall") as provider:
        deployment.write_policy("      deadline: 2s\n", clerk=f"{provider.url}/v1")
        deployment.commit("a provider that never answers")
        url = deployment.start()
        wait_for(
            lambda: shop(url)["schema"].get("live_revision", "").endswith("canceled_at"),
            what="the initial history",
        )
        wait_for(lambda: provider.requests >= 1, what="an identity request")
        started = time.monotonic()
        state = wait_for(
            lambda: (
                (c := shop(url)["concerns"].get("identity"))
                and "identity.deadline" in c.get("message", "")
                and c
            ),
            what="the stalled provider to be reported",
            timeout=15,
        )
        assert time.monotonic() - started < 6
    assert state["reason"] == "ProviderUnavailable"
    assert "no complete answer from 127.0.0.1 within 2s" in state["message"]
