"""One HTTP port: ``/metrics`` (Prometheus), ``/healthz`` (alive), ``/readyz`` (ready).

Other paths go to ``routes`` when given (the labelling page and ``POST /labels``,
:mod:`streamal.labelling.web`); a request body above ``max_body`` is refused with 413
before it is read.

``/healthz`` and ``/readyz`` answer ``200 ok`` or ``503`` with the reason, so that an
orchestrator restarts a stuck process and routes nothing to one that is still restoring
or cut off from its broker.

The endpoint is bounded: at most ``max_connections`` requests are served at once (one
thread each; a connection beyond them is closed at once), and a client that sends
nothing for ``timeout`` seconds is disconnected, so idle or slow connections cannot pile
up threads.

Examples
--------
>>> from urllib.request import urlopen
>>> from prometheus_client import CollectorRegistry, Counter
>>> registry = CollectorRegistry()
>>> Counter("demo_total", "A demo counter.", registry=registry).inc()
>>> server = HttpServer(registry, lambda: (True, "ok"), lambda: (False, "restoring"), port=0)
>>> server.start()
>>> b"demo_total 1.0" in urlopen(f"http://127.0.0.1:{server.port}/metrics").read()
True
>>> try:
...     urlopen(f"http://127.0.0.1:{server.port}/readyz")
... except Exception as err:
...     print(err.code, err.read())
503 b'restoring\\n'
>>> server.stop()
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["HttpServer"]

Probe = Callable[[], tuple[bool, str]]
#: ``(method, path, headers, body) -> (status, body, content type)``, ``None``: not mine.
#: Header names are in Title-Case (``Authorization``).
Routes = Callable[[str, str, Mapping[str, str], bytes], tuple[int, bytes, str] | None]


class _BoundedServer(ThreadingHTTPServer):
    """A threading server that serves at most ``slots`` connections at once."""

    daemon_threads = True
    request_queue_size = 128  # a burst of connections is accepted (and closed) quickly

    def __init__(self, address: tuple[str, int], handler: Any, slots: int) -> None:
        self._slots = threading.BoundedSemaphore(slots)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # full: close at once, spawn no thread
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out or went away is not worth a traceback


class HttpServer:
    """Serves metrics and probes from a daemon thread.

    Parameters
    ----------
    registry
        The registry whose metrics ``/metrics`` shows.
    health, ready
        Called per request; return ``(ok, reason)``.
    host, port
        Where to listen; port 0 picks a free port (see :attr:`port` after :meth:`start`).
    timeout
        Seconds a connection may stay silent (reading a request) before it is closed.
    max_connections
        Connections served at once; more are closed as they arrive.
    routes
        Answers the other paths (and ``POST``), if given.
    max_body
        The largest request body passed to ``routes``.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        health: Probe,
        ready: Probe,
        host: str = "127.0.0.1",
        port: int = 9108,
        timeout: float = 5.0,
        max_connections: int = 16,
        routes: Routes | None = None,
        max_body: int = 1_048_576,
    ) -> None:
        self.routes = routes
        self.max_body = max_body
        self.registry = registry
        self.health = health
        self.ready = ready
        self.host = host
        self.port = port
        self.timeout = timeout
        self.max_connections = max_connections
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind and serve in the background."""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            timeout = owner.timeout  # applied to the socket: a silent client is dropped

            def do_GET(self) -> None:  # noqa: N802 (the http.server name)
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._reply(200, generate_latest(owner.registry), CONTENT_TYPE_LATEST)
                elif path in ("/healthz", "/readyz"):
                    ok, reason = (owner.health if path == "/healthz" else owner.ready)()
                    self._reply(200 if ok else 503, f"{reason}\n".encode(), "text/plain")
                else:
                    self._route("GET")

            def do_POST(self) -> None:  # noqa: N802 (the http.server name)
                self._route("POST")

            def _route(self, method: str) -> None:
                reply = None
                if owner.routes is not None:
                    try:
                        size = int(self.headers.get("Content-Length") or 0)
                    except ValueError:
                        size = -1
                    if not 0 <= size <= owner.max_body:
                        self.close_connection = True  # the body is left unread
                        reply = (413, b"request body too large or unsized\n", "text/plain")
                    else:
                        body = self.rfile.read(size) if size else b""
                        headers = {k.title(): v for k, v in self.headers.items()}
                        reply = owner.routes(method, self.path, headers, body)
                if reply is None:
                    reply = (404, b"not found: try /metrics, /healthz or /readyz\n", "text/plain")
                self._reply(*reply)

            def _reply(self, code: int, body: bytes, content_type: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # scrapes every few seconds would flood the log

        self._server = _BoundedServer((self.host, self.port), Handler, self.max_connections)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="streamal-http", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
