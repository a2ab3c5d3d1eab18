"""The daemon's HTTP server over a real socket: a body it does not read never becomes the
next request on a kept-alive connection, and bad framing is refused in one answer."""

from __future__ import annotations

import logging
import shutil
import socket
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from reconciler.runtime.http import MAX_BODY, Reply, Server, json_reply
from tests.conftest import PRISMA_SQLITE, run_process

SMUGGLED = b"GET /secret HTTP/1.1\r\nHost: x\r\n\r\n"


def echo(headers: Mapping[str, str], body: bytes) -> Reply:
    return json_reply(200, {"length": len(body)})


def secret(headers: Mapping[str, str], body: bytes) -> Reply:
    return json_reply(200, {"secret": "reached"})


@pytest.fixture
def server() -> Iterator[Server]:
    with Server("127.0.0.1", 0, {("POST", "/echo"): echo, ("GET", "/secret"): secret}) as s:
        yield s


def exchange(server: Server, request: bytes) -> bytes:
    """Send ``request`` on one connection and read until the server closes it (or 2 s)."""
    host, port = server.httpd.server_address[:2]
    with socket.create_connection((str(host), port), timeout=2) as conn:
        conn.sendall(request)
        received = b""
        try:
            while chunk := conn.recv(65536):
                received += chunk
        except TimeoutError:
            pass
    return received


def test_a_body_too_large_is_refused_and_the_connection_closed(server: Server) -> None:
    body = b"x" * (MAX_BODY + 1 - len(SMUGGLED)) + SMUGGLED
    answer = exchange(
        server,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
    )
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"Connection: close" in answer
    assert answer.count(b"HTTP/1.") == 1, "the unread body was read as a request"


def test_a_body_for_an_unknown_route_never_becomes_a_request(server: Server) -> None:
    answer = exchange(
        server,
        b"POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED,
    )
    assert answer.startswith(b"HTTP/1.1 404 ")
    assert answer.count(b"HTTP/1.1 ") == 1
    assert b"reached" not in answer


def test_chunked_and_bad_lengths_are_refused(server: Server) -> None:
    chunked = exchange(
        server,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n",
    )
    assert chunked.startswith(b"HTTP/1.1 411 ")
    assert b"reached" not in chunked
    for length in (b"-5", b"abc"):
        bad = exchange(
            server, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n"
        )
        assert bad.startswith(b"HTTP/1.1 400 "), length


def test_a_read_body_keeps_the_connection_for_the_next_request(server: Server) -> None:
    answer = exchange(
        server,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /secret HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert answer.count(b"HTTP/1.1 200 ") == 2
    assert b'{"length": 3}' in answer


def test_a_client_that_goes_away_is_a_debug_line_not_a_traceback(
    server: Server, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="reconciler.runtime.http")
    host, port = server.httpd.server_address[:2]
    conn = socket.create_connection((str(host), port), timeout=2)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    conn.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
    conn.close()  # a reset while the server waits for the rest of the body
    printed = ""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        printed += capsys.readouterr().err
        if "Traceback" in printed or any("went away" in r.message for r in caplog.records):
            break
        time.sleep(0.02)
    assert "Traceback" not in printed
    assert any("client 127.0.0.1 went away" in r.message for r in caplog.records)


def test_a_daemon_that_cannot_take_its_port_starts_no_work(tmp_path: Path) -> None:
    shutil.copytree(PRISMA_SQLITE, tmp_path / "migrations")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (tmp_path / "policy.yaml").write_text(
            f"server: {{listen: '127.0.0.1:{port}'}}\n"
            "ledger: sqlite:///ledger.db\n"
            "targets:\n  - name: shop\n    database: sqlite:///shop.db\n"
            "    migrations: {layout: prisma, path: migrations}\n",
            encoding="utf-8",
        )
        result = run_process("run", "--config", tmp_path / "policy.yaml")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"reconciler: error: server.listen 127.0.0.1:{port}: cannot listen: Address already "
        "in use (another process holds the port)"
    )
    assert not (tmp_path / "shop.db").exists(), "no migration may run"
