"""The daemon's HTTP endpoints on one port: ``/metrics``, ``/healthz``, ``/readyz``,
``/status``, ``/webhooks/clerk`` and ``POST /targets/{name}/reconcile``.

``/status`` needs the bearer token when ``server.token`` is set; the run-now POST always
needs one (no token configured: refused). Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from reconciler.errors import ReconcilerError
from reconciler.identity.webhooks import ClerkWebhook, webhook_route
from reconciler.runtime import views
from reconciler.runtime.http import Handler, Reply, json_reply

if TYPE_CHECKING:
    from reconciler.runtime.daemon import Daemon


def _authorized(daemon: Daemon, headers: Mapping[str, str], required: bool) -> bool:
    token = daemon.bootstrap.server.token
    if token is None:
        return not required
    given = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
    expected = f"Bearer {token.reveal()}"
    return hmac.compare_digest(given.encode(), expected.encode())


def _count_delivery(daemon: Daemon, target: str, outcome: str) -> None:
    daemon.metrics.webhooks.labels(target, outcome).inc()


def routes(daemon: Daemon) -> dict[tuple[str, str], Handler]:
    def metrics(headers: Mapping[str, str], body: bytes) -> Reply:
        daemon.leading()  # reconciler_leader is 1 only where the lock is held now
        return 200, CONTENT_TYPE_LATEST, generate_latest(daemon.metrics.registry)

    def healthz(headers: Mapping[str, str], body: bytes) -> Reply:
        return 200, "text/plain; charset=utf-8", b"ok\n"

    def readyz(headers: Mapping[str, str], body: bytes) -> Reply:
        try:
            with daemon.ledger.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:  # any failure means: not ready
            return json_reply(503, {"ready": False, "reason": "ledger unreachable"})
        return json_reply(
            200, {"ready": True, "targets": len(daemon.targets), "commit": daemon.commit}
        )

    def status(headers: Mapping[str, str], body: bytes) -> Reply:
        if not _authorized(daemon, headers, required=False):
            return json_reply(401, {"error": "a bearer token is required"})
        return json_reply(200, views.status(daemon))

    table: dict[tuple[str, str], Handler] = {
        ("GET", "/metrics"): metrics,
        ("GET", "/healthz"): healthz,
        ("GET", "/readyz"): readyz,
        ("GET", "/status"): status,
    }
    hooks = []
    for name, runtime in daemon.targets.items():
        spec = runtime.spec

        def run_now(headers: Mapping[str, str], body: bytes, name: str = name) -> Reply:
            if daemon.bootstrap.server.token is None:
                return json_reply(403, {"error": "set server.token to allow run-now requests"})
            if not _authorized(daemon, headers, required=True):
                return json_reply(401, {"error": "a valid bearer token is required"})
            try:
                leads = daemon.targets[name].leadership.acquire()
            except ReconcilerError as exc:
                return json_reply(503, {"error": f"cannot tell who leads {name}: {exc}"})
            if not leads:
                return json_reply(
                    409,
                    {
                        "error": f"this replica does not lead {name}; send "
                        "the request to the one that does"
                    },
                )
            daemon.trigger(name)
            return json_reply(202, {"target": name, "queued": True})

        table[("POST", f"/targets/{name}/reconcile")] = run_now
        if spec.identity and spec.identity.clerk and spec.identity.clerk.webhook_secret:
            hook = webhook_route(
                ClerkWebhook(spec, daemon.ledger), partial(_count_delivery, daemon, name)
            )
            table[("POST", f"/webhooks/clerk/{name}")] = hook
            hooks.append(hook)
    if len(hooks) == 1:
        table[("POST", "/webhooks/clerk")] = hooks[0]
    return table
