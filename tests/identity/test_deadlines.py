"""Every provider request ends within its deadline, whatever the server does: a server that
trickles its answer a byte at a time (each byte restarts httpx's read timeout), one that
never answers, and one that asks for a retry later than the deadline. A request in flight
ends as soon as it is cancelled (the daemon is stopping). Real TCP servers on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest

from reconciler.errors import ProviderUnavailable
from reconciler.identity.clerk import ClerkProvider
from reconciler.identity.scim import ScimProvider
from reconciler.secrets import Secret
from tests.identity.doubles import ClerkDouble, Population
from tests.identity.slow import SlowServer, elapsed

KEY = "sk_test_4f1c9e2b7a6d3e8f0a1b2c3d"
SCIM_TOKEN = "scim-token-deadline-7c1e9a2b"


@pytest.fixture
def closing() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def clerk(url: str, stack: ExitStack, **options: Any) -> ClerkProvider:
    provider = ClerkProvider(Secret(KEY), url, **{"backoff": 0.2, "max_retries": 3, **options})
    stack.callback(provider.close)
    return provider


def test_a_trickling_provider_is_cut_off_at_the_deadline(closing: ExitStack) -> None:
    server = closing.enter_context(SlowServer("trickle", every=0.3))
    provider = clerk(server.url, closing, deadline=2.0)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable) as caught:
        provider.count()
    took = elapsed(started)
    assert 1.9 <= took < 3.0
    message = str(caught.value)
    assert "user count" in message
    assert "no complete answer from 127.0.0.1 within 2s (identity.deadline" in message
    assert KEY not in message
    assert server.requests == 1  # the deadline is spent: no retry


def test_a_trickling_scim_listing_is_cut_off_at_the_deadline(closing: ExitStack) -> None:
    server = closing.enter_context(SlowServer("trickle", every=0.3))
    provider = ScimProvider(server.url, Secret(SCIM_TOKEN), deadline=1.5, backoff=0.2)
    closing.callback(provider.close)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable, match=r"page 1 of the user listing: no complete"):
        list(provider.users())
    assert elapsed(started) < 2.5


def test_a_stalled_provider_is_reported_at_the_deadline(closing: ExitStack) -> None:
    server = closing.enter_context(SlowServer("stall"))
    provider = clerk(server.url, closing, deadline=2.0)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable, match=r"within 2s \(identity.deadline"):
        list(provider.users())
    assert 1.9 <= elapsed(started) < 3.0


def test_a_cancelled_request_ends_at_once(closing: ExitStack) -> None:
    server = closing.enter_context(SlowServer("trickle", every=0.5))
    cancel = threading.Event()
    provider = clerk(server.url, closing, deadline=60.0, cancel=cancel)
    threading.Timer(1.0, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable, match="stopped: reconciler is shutting down"):
        provider.count()
    assert elapsed(started) < 2.0


def test_a_retry_that_would_outlast_the_deadline_is_not_waited_for(closing: ExitStack) -> None:
    api = closing.enter_context(ClerkDouble(Population(3), KEY))
    api.rate_limit(1, retry_after="30")
    provider = clerk(api.url, closing, deadline=5.0)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable) as caught:
        provider.count()
    assert elapsed(started) < 1.0
    assert "a retry in 30s would outlast the deadline of 5s" in str(caught.value)
    assert (caught.value.retry_after or 0) >= 30


def test_a_provider_within_its_deadline_answers(closing: ExitStack) -> None:
    api = closing.enter_context(ClerkDouble(Population(1234), KEY))
    api.fail(2, 503)
    provider = clerk(api.url, closing, deadline=10.0)
    assert len(list(provider.users())) == 1234
    assert provider.count() == 1234


class _Forwarder(BaseHTTPRequestHandler):
    """A forward HTTP proxy: a GET for an absolute URL, fetched and answered."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Forwarder.seen.append(self.path)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "proxy-connection"}
        answer = httpx.get(self.path, headers=headers, timeout=10, trust_env=False)
        self.send_response(answer.status_code)
        self.send_header("Content-Type", answer.headers.get("content-type", "text/plain"))
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_requests_go_through_the_proxy_the_environment_names(
    closing: ExitStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = closing.enter_context(ClerkDouble(Population(3), KEY))
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _Forwarder)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    closing.callback(proxy.server_close)
    closing.callback(proxy.shutdown)
    _Forwarder.seen.clear()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    provider = clerk(api.url, closing, deadline=5.0)
    assert provider.count() == 3
    assert _Forwarder.seen == [f"{api.url}/users/count"]
