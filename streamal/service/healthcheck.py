"""The container image's health check: ``python -m streamal.service.healthcheck``.

Every container of the image runs ``streamal COMMAND``. Only ``streamal serve`` serves
HTTP (``/healthz`` on ``service.http_port``); the companions (``produce``, ``oracle``,
``record``, ``annotate``) serve nothing, so for them the check passes as long as the
process runs (Docker already marks a container whose process exited). For ``serve`` the
check asks ``/healthz`` on the port given by ``--http-port`` or
``STREAMAL_SERVICE__HTTP_PORT`` (default 9108); an empty port means no HTTP endpoint.

Examples
--------
>>> http_port(["streamal", "oracle", "synth:SEA"], {}) is None
True
>>> http_port(["python", "/usr/local/bin/streamal", "serve"], {})
9108
>>> http_port(["streamal", "serve", "--http-port", "9200"], {"STREAMAL_SERVICE__HTTP_PORT": "1"})
9200
>>> http_port(["streamal", "serve"], {"STREAMAL_SERVICE__HTTP_PORT": ""}) is None
True
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["http_port", "main"]

#: The default of ``service.http_port``.
DEFAULT_PORT = 9108


def http_port(args: Sequence[str], env: Mapping[str, str]) -> int | None:
    """The port ``streamal serve`` listens on, given its command line; ``None`` if no HTTP."""
    names = [os.path.basename(a) for a in args]
    if "streamal" not in names:
        return None
    rest = list(args[names.index("streamal") + 1 :])
    command = next((a for a in rest if not a.startswith("-")), None)
    if command != "serve":
        return None
    port = env.get("STREAMAL_SERVICE__HTTP_PORT", str(DEFAULT_PORT))
    for i, arg in enumerate(rest):
        if arg == "--http-port" and i + 1 < len(rest):
            port = rest[i + 1]
        elif arg.startswith("--http-port="):
            port = arg.partition("=")[2]
    return int(port) if port.strip() else None


def main(args: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Exit code 0 if healthy: the companions always, ``serve`` when ``/healthz`` says 200.

    ``args`` is the container's command line (default: PID 1's), ``env`` its environment.
    """
    if args is None:
        try:
            raw = Path("/proc/1/cmdline").read_bytes()
            args = [a.decode() for a in raw.split(b"\0") if a]
        except OSError:
            args = ["streamal", "serve"]
    port = http_port(args, os.environ if env is None else env)
    if port is None:
        return 0
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
            return 0 if reply.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
