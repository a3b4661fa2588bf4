"""The suite's warning filters: kafka-python's refused-connection sockets are not ours.

kafka-python 3.0 leaves the socket of a refused connection attempt to the garbage
collector; the ResourceWarning then fires in whichever test runs next (on a slow CI
machine, in 21 unrelated tests). pyproject.toml ignores exactly that message: a socket
that never got a peer address. This test provokes the leak on purpose, so it fails if
the filter is lost or stops matching; a leaked connected socket still fails a test.
"""

from __future__ import annotations

import gc
import re
import socket
import tomllib
from pathlib import Path

import pytest

kafka = pytest.importorskip("kafka")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_refused_kafka_connections_do_not_fail_the_suite() -> None:
    consumer = kafka.KafkaConsumer(
        bootstrap_servers=f"127.0.0.1:{_closed_port()}",
        request_timeout_ms=2000,
        api_version=(3, 9),  # no bootstrap in the constructor: the poll below connects
    )
    try:
        consumer.poll(timeout_ms=500)
    except kafka.errors.KafkaError:
        pass
    finally:
        consumer.close()
    gc.collect()  # frees the dropped sockets here, under the suite's filters


def _suite_socket_rule() -> re.Pattern[str]:
    with (Path(__file__).parents[1] / "pyproject.toml").open("rb") as handle:
        rules = tomllib.load(handle)["tool"]["pytest"]["ini_options"]["filterwarnings"]
    (rule,) = [r for r in rules if r.startswith("ignore:unclosed <socket")]
    return re.compile(rule.split(":")[1], re.IGNORECASE)


def test_a_leaked_connected_socket_is_not_covered_by_the_rule() -> None:
    rule = _suite_socket_rule()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    with server, socket.create_connection(server.getsockname()) as client:
        peer, _ = server.accept()
        with peer:
            assert rule.match(f"unclosed {client!r}") is None
            assert rule.match(f"unclosed {server!r}") is None
    refused = socket.socket()
    with refused:
        assert refused.connect_ex(("127.0.0.1", _closed_port())) != 0
        assert rule.match(f"unclosed {refused!r}") is not None
