"""A provider that never finishes answering, over real TCP on 127.0.0.1.

``SlowServer("trickle", every=1.0)`` reads each request, then sends a well-formed answer one
byte every ``every`` seconds, headers first (each byte restarts httpx's read timeout, so only
a total deadline ends the call); ``SlowServer("stall")`` accepts and reads each request and
never answers. ``requests`` counts the requests read; the server stops with the block, and
its connections are closed.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Literal

_BODY = b'{"total_count": 1, "totalResults": 1, "Resources": []}'
ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(_BODY)).encode()
    + b"\r\n\r\n"
    + _BODY
)


class SlowServer:
    def __init__(self, how: Literal["trickle", "stall"], every: float = 1.0) -> None:
        self.how = how
        self.every = every
        self.requests = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> SlowServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(5)
        for connection in list(self._connections):
            connection.close()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._connections.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(0.2)
        received = b""
        while not self._stop.is_set():
            try:
                chunk = connection.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            received += chunk
            if b"\r\n\r\n" not in received:
                continue
            received = b""
            self.requests += 1
            if self.how == "stall":
                continue
            for byte in ANSWER:
                if self._stop.wait(self.every):
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return


def elapsed(since: float) -> float:
    return time.monotonic() - since
