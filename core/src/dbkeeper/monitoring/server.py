"""``dbkeeper metrics --serve``: ``/metrics`` and ``/probe?target=NAME`` over HTTP.

``/metrics`` scrapes every configured connection (several at once, each bounded by its
deadline); ``/probe?target=NAME`` scrapes the one connection *NAME* of ``dbkeeper.toml``
(the exporters' multi-target convention). Credentials come only from the configuration:
a target that is not a configured name (a URL, say) is refused with ``400`` and a body
that does not repeat it. The standard library's threaded HTTP server answers; each
request runs on its own thread.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from dbkeeper.connections.config import listen_address
from dbkeeper.errors import ConfigError
from dbkeeper.monitoring.prometheus import CONTENT_TYPE, exposition
from dbkeeper.monitoring.scrape import DatabaseMonitor

INDEX = (
    "dbkeeper metrics\n\n"
    "/metrics                every configured connection\n"
    "/probe?target=NAME      the connection NAME of dbkeeper.toml\n"
)


class _Server(ThreadingHTTPServer):
    """The HTTP server, holding the monitor its handlers scrape with."""

    daemon_threads = True  # a request still scraping does not hold the process's exit
    monitor: DatabaseMonitor


class _Server6(_Server):
    """The HTTP server on an IPv6 address."""

    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    """Answers ``/``, ``/metrics`` and ``/probe``; anything else is 404."""

    server: _Server
    server_version = "dbkeeper"

    def do_GET(self) -> None:
        """Route the request."""
        parts = urlsplit(self.path)
        routes: dict[str, Callable[[str], None]] = {"/": self._index, "/metrics": self._metrics, "/probe": self._probe}
        route = routes.get(parts.path)
        if route is None:
            self._reply(HTTPStatus.NOT_FOUND, b"not found: try /metrics or /probe?target=NAME\n")
        else:
            route(parts.query)

    def _index(self, query: str) -> None:
        self._reply(HTTPStatus.OK, INDEX.encode())

    def _metrics(self, query: str) -> None:
        monitor = self.server.monitor
        self._reply(HTTPStatus.OK, exposition(monitor.scrape_all()), CONTENT_TYPE)

    def _probe(self, query: str) -> None:
        monitor = self.server.monitor
        targets = parse_qs(query).get("target", [])
        if len(targets) != 1 or targets[0] not in monitor.targets():
            self._reply(
                HTTPStatus.BAD_REQUEST,
                b"bad target: give target=NAME, the name of one connection in dbkeeper.toml (never a URL)\n",
            )
            return
        self._reply(HTTPStatus.OK, exposition(monitor.scrape_all(targets)), CONTENT_TYPE)

    def _reply(self, status: HTTPStatus, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Say nothing per request (Prometheus scrapes every few seconds)."""


def make_server(monitor: DatabaseMonitor, address: str) -> ThreadingHTTPServer:
    """A server bound to *address* (``HOST:PORT``; port 0 picks a free one), not yet serving."""
    host, port = listen_address(address, "--serve")
    kind = _Server6 if ":" in host else _Server
    try:
        server = kind((host, port), _Handler)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {address}: {exc.strerror}; choose another HOST:PORT") from None
    server.monitor = monitor
    return server


def serve(monitor: DatabaseMonitor, address: str, on_ready: Callable[[str], None]) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM raise ``KeyboardInterrupt``); *on_ready* gets the URL.

    The connections *monitor* keeps between scrapes are closed when the server stops.
    """
    server = make_server(monitor, address)
    host, port = str(server.server_address[0]), server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    try:
        on_ready(f"http://{shown}:{port}/metrics")
        server.serve_forever()
    finally:
        server.server_close()
        monitor.close()
