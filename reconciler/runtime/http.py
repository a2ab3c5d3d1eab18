"""A small HTTP server for the daemon's endpoints, on the standard library.

Routes are ``(method, path) -> handler``; a handler gets the request's headers and raw body
and returns ``(status, content type, body bytes)``. Threads serve requests concurrently;
the server binds where the policy says (``server.listen``) and stops cleanly.

Connections are kept alive (HTTP/1.1), so a body the server does not read (too large, for a
route that does not exist, sent chunked) would be read as the next request: the answer to
such a request closes the connection instead. A client that goes away mid-answer is a debug
line, not a traceback on stderr.
"""

from __future__ import annotations

import errno
import json
import logging
import sys
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from reconciler.errors import ReconcilerError

log = logging.getLogger(__name__)

Reply = tuple[int, str, bytes]
Handler = Callable[[Mapping[str, str], bytes], Reply]
MAX_BODY = 1 << 20


def json_reply(status: int, body: Any) -> Reply:
    return status, "application/json", json.dumps(body).encode()


def _content_length(value: str | None) -> int | None:
    """The declared body size: 0 without the header, None when it is not a number >= 0."""
    if value is None:
        return 0
    text = value.strip()
    return int(text) if text.isdigit() else None


class _Httpd(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """Through the log, not ``socketserver``'s traceback on stderr: a client gone
        mid-answer (reset, broken pipe, timeout) is a debug line; anything else an error."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            log.debug("client %s went away: %s", client_address[0], error)
        else:
            log.exception("request from %s failed", client_address[0])


class Server:
    def __init__(self, host: str, port: int, routes: Mapping[tuple[str, str], Handler]) -> None:
        self.routes = dict(routes)
        server = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self, method: str) -> None:
                path = self.path.split("?", 1)[0]
                handler = server.routes.get((method, path))
                length = _content_length(self.headers.get("Content-Length"))
                chunked = "Transfer-Encoding" in self.headers
                unread = chunked or length != 0  # the body is in the stream unless read below
                if chunked:
                    status, kind, body = json_reply(411, {"error": "send a Content-Length"})
                elif length is None:
                    status, kind, body = json_reply(400, {"error": "bad Content-Length"})
                elif length > MAX_BODY:
                    status, kind, body = json_reply(413, {"error": "body too large"})
                elif handler is None:
                    known = any(p == path for _, p in server.routes)
                    status, kind, body = json_reply(
                        405 if known else 404,
                        {"error": "not found" if not known else "method not allowed"},
                    )
                else:
                    raw = self.rfile.read(length) if length else b""
                    unread = False
                    try:
                        status, kind, body = handler(dict(self.headers.items()), raw)
                    except Exception:  # one bad request must not take the server down
                        log.exception("handler for %s %s failed", method, path)
                        status, kind, body = json_reply(500, {"error": "internal error"})
                if unread:
                    self.close_connection = True
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                if self.close_connection:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("%s %s", self.address_string(), format % args)

        try:
            self.httpd = _Httpd((host, port), RequestHandler)
        except OSError as exc:
            raise ReconcilerError(
                f"server.listen {host}:{port}: cannot listen: {exc.strerror or exc}"
                + (" (another process holds the port)" if exc.errno == errno.EADDRINUSE else "")
            ) from None
        self.httpd.daemon_threads = True
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Server:
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="http", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self.thread is not None:
            self.thread.join(timeout=5)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
