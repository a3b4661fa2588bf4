"""The HTTP endpoint stays bounded under held connections (issue 14, item 4)."""

from __future__ import annotations

import socket
import threading
import time
from urllib.request import urlopen

from prometheus_client import CollectorRegistry

from streamal.service.http import HttpServer


def _closed(sock: socket.socket, deadline: float) -> bool:
    """Whether the server closes ``sock`` before ``deadline`` (monotonic seconds)."""
    sock.settimeout(max(0.01, deadline - time.monotonic()))
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:  # reset by the server
        return True


def test_held_connections_do_not_pile_up_threads() -> None:
    # Found 4: 200 held connections made 206 threads, still open after 21 s.
    server = HttpServer(
        CollectorRegistry(), lambda: (True, "ok"), lambda: (True, "ok"), port=0, timeout=0.5
    )
    server.start()
    before = threading.active_count()
    held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(200)]
    try:
        peak = threading.active_count()
        # Accepting happens on the server thread; wait until it has seen all 200.
        deadline = time.monotonic() + 30
        for sock in held:
            peak = max(peak, threading.active_count())
            assert _closed(sock, deadline), "a silent connection was kept open"
        assert peak - before <= server.max_connections
        # Once the silent clients are gone, the endpoint answers again.
        with urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=10) as reply:
            assert reply.read() == b"ok\n"
    finally:
        for sock in held:
            sock.close()
        server.stop()
