"""The suite's warning filters: kafka-python's refused-connection sockets are not ours.

kafka-python 3.0 leaves the socket of a refused connection attempt to the garbage
collector; the ResourceWarning then fires in whichever test runs next (on a slow CI
machine, in 21 unrelated tests). pyproject.toml ignores exactly that message: a socket
that never got a peer address. This test provokes the leak on purpose, so it fails if
the filter is lost or stops matching; a leaked connected socket still fails a test.
"""

from __future__ import annotations

import gc
import socket
import warnings

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


def test_a_leaked_connected_socket_still_warns() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            # re-apply the suite's ignore rule on top, as pytest does
            warnings.filterwarnings(
                "ignore",
                r"unclosed <socket\.socket fd=\d+, family=\d+, type=\d+, proto=\d+, "
                r"laddr=\(.0\.0\.0\.0., \d+\)>$",
                ResourceWarning,
            )
            client.__del__()
        assert any(issubclass(w.category, ResourceWarning) for w in caught)
    finally:
        for sock in (client, peer, server):
            sock.close()
