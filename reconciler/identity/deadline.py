"""A total deadline for an HTTP call, and a way to end it early, whatever the server sends.

httpx's timeouts bound each network operation on its own: a read that waits 30 s at most,
then the next read, with a fresh 30 s. A server that sends one byte every few seconds (in
its headers or its body) is never timed out, and the call never ends. So every read, write,
connect and TLS handshake of the connections made here is cut into slices of at most
``SLICE`` seconds, and between slices the call's ``Deadline`` is checked: once it has
passed, or its ``cancel`` event is set (the daemon is stopping), the operation fails, and
httpx raises its ``ReadTimeout`` / ``ReadError`` from it. The per-operation timeouts the
client asks for still hold too.

The deadline belongs to the thread making the call (``within``): a provider opens one for
each request with its retries, and a connection kept between requests obeys the deadline of
the request using it. These connections come from ``client()``: httpx's own transport over a
connection pool whose network backend (an httpcore option) wraps the plain socket backend.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import httpx

SLICE = 0.25
"""How often a waiting operation looks at its deadline and its cancel event (seconds)."""


class Deadline:
    """The moment (monotonic) by which a call must be done, and an event that ends it early."""

    def __init__(self, seconds: float, cancel: threading.Event | None = None) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.cancel = cancel

    def remaining(self) -> float:
        return max(self.at - time.monotonic(), 0.0)

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at

    @property
    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless cancelled first; False if cancelled."""
        if self.cancel is None:
            time.sleep(seconds)
            return True
        return not self.cancel.wait(seconds)


_local = threading.local()


def current() -> Deadline | None:
    """The deadline of the call this thread is making, if any."""
    deadline: Deadline | None = getattr(_local, "deadline", None)
    return deadline


@contextlib.contextmanager
def within(deadline: Deadline) -> Iterator[Deadline]:
    """Every network operation of this thread's connections obeys ``deadline`` meanwhile."""
    before = current()
    _local.deadline = deadline
    try:
        yield deadline
    finally:
        _local.deadline = before


def _check() -> None:
    deadline = current()
    if deadline is None:
        return
    if deadline.cancelled:
        raise httpcore.ReadError("cancelled: stopping")
    if deadline.expired:
        raise httpcore.ReadTimeout(f"no complete answer within {deadline.seconds:g}s")


def _step(timeout: float | None, waited: float) -> float:
    """The next slice: at most ``SLICE``, what is left of ``timeout`` and of the deadline."""
    step = SLICE if timeout is None else min(SLICE, max(timeout - waited, 0.0))
    deadline = current()
    if deadline is not None:
        step = min(step, deadline.remaining())
    return max(step, 0.001)


def _bounded(timeout: float | None) -> float | None:
    """``timeout`` shortened to the deadline (an operation that cannot be sliced)."""
    deadline = current()
    if deadline is None:
        return timeout
    remaining = max(deadline.remaining(), 0.001)
    return remaining if timeout is None else min(timeout, remaining)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        waited = 0.0
        while True:
            _check()
            step = _step(timeout, waited)
            try:
                return self._inner.read(max_bytes, step)
            except httpcore.ReadTimeout:
                waited += step
                _check()
                if timeout is not None and waited >= timeout:
                    raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # A write the kernel cannot take at once is rare (a request is a few hundred
        # bytes): one bounded write, not sliced.
        _check()
        self._inner.write(buffer, _bounded(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        _check()
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, _bounded(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        _check()
        try:
            stream = self._inner.connect_tcp(
                host, port, _bounded(timeout), local_address, socket_options
            )
        except httpcore.ConnectTimeout:
            _check()
            raise
        return _Stream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_unix_socket(path, _bounded(timeout), socket_options))

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _Transport(httpx.HTTPTransport):
    """httpx's transport, its connection pool (direct, or through an HTTP proxy) built
    over ``_Backend``."""

    def __init__(self, proxy: httpx.Proxy | None = None) -> None:
        # httpx's own __init__ only builds the pool this replaces, with an SSL context of
        # its own (30 to 200 ms): not called.
        context = httpx.create_ssl_context()
        if proxy is None:
            self._pool = httpcore.ConnectionPool(
                ssl_context=context, max_connections=1, network_backend=_Backend()
            )
            return
        self._pool = httpcore.HTTPProxy(
            proxy_url=httpcore.URL(
                scheme=proxy.url.raw_scheme,
                host=proxy.url.raw_host,
                port=proxy.url.port,
                target=proxy.url.raw_path,
            ),
            proxy_auth=proxy.raw_auth,
            proxy_headers=proxy.headers.raw,
            ssl_context=context,
            proxy_ssl_context=proxy.ssl_context,
            max_connections=1,
            network_backend=_Backend(),
        )


def _proxy(url: str) -> httpx.Proxy | None:
    """The HTTP proxy the environment names for ``url`` (``HTTPS_PROXY``, ``HTTP_PROXY``,
    ``ALL_PROXY``, minus ``NO_PROXY``), as httpx's own client would use it."""
    target = httpx.URL(url)
    proxies = urllib.request.getproxies_environment()
    if urllib.request.proxy_bypass(target.host):  # NO_PROXY (on Linux, from the environment)
        return None
    named = proxies.get(target.scheme) or proxies.get("all")
    if not named or not named.startswith(("http://", "https://")):
        return None  # SOCKS needs an extra package httpx does not install by default
    return httpx.Proxy(named)


def client(timeout: httpx.Timeout, url: str) -> httpx.Client:
    """A client for ``url`` whose calls obey the thread's ``Deadline``, through the proxy
    the environment names for it. One connection at a time: a provider makes one request
    at a time."""
    return httpx.Client(timeout=timeout, transport=_Transport(_proxy(url)))
