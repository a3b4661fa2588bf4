"""Topic administration on Kafka: create the service's topics explicitly.

Brokers that auto-create topics pick their own partition count (tansu: 4, Kafka: its
``num.partitions``), and a consumer's metadata request can trigger it; the demo, the
tests and operators create topics up front instead. Errors surface as
:class:`~streamal.exceptions.TransportError`, through the Kafka transports' one error
boundary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from streamal.exceptions import TransportError
from streamal.transports.kafka import map_kafka_errors

__all__ = ["create_topics", "delete_topics"]

#: kafka-python's error code for "Topic with this name already exists".
_ALREADY_EXISTS = 36
#: kafka-python's error code for "This server does not host this topic-partition".
_UNKNOWN_TOPIC = 3
#: Give up on an unreachable broker after this long instead of kafka-python's 30 s.
BOOTSTRAP_TIMEOUT_MS = 10_000


def _admin(client: Mapping[str, Any]) -> Any:
    from kafka import KafkaAdminClient

    settings = {"bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS, **client}
    with map_kafka_errors(f"cannot reach {client.get('bootstrap_servers')} to manage topics"):
        return KafkaAdminClient(**settings)


def create_topics(
    client: Mapping[str, Any],
    names: Sequence[str],
    partitions: int = 1,
    replication: int = 1,
) -> list[str]:
    """Create the topics of ``names`` that do not exist yet; return the ones created.

    ``client`` holds kafka-python connection settings (see
    :func:`streamal.service.factory.kafka_client_options`).

    Raises
    ------
    TransportError
        If the broker is unreachable or refuses a topic (the message names it).
    """
    from kafka.admin import NewTopic

    admin = _admin(client)
    try:
        with map_kafka_errors("cannot create topics"):
            result = admin.create_topics(
                [NewTopic(name, partitions, replication) for name in names], raise_errors=False
            )
    finally:
        admin.close()
    created = []
    for topic in result["topics"]:
        code = topic["error_code"]
        if code == 0:
            created.append(topic["name"])
        elif code != _ALREADY_EXISTS:
            raise TransportError(
                f"cannot create topic {topic['name']!r}: {topic['error_message']} (code {code})"
            )
    return created


def delete_topics(client: Mapping[str, Any], names: Sequence[str]) -> None:
    """Delete topics; ones that do not exist are ignored."""
    if not names:
        return
    admin = _admin(client)
    try:
        with map_kafka_errors("cannot delete topics"):
            result = admin.delete_topics(list(names), raise_errors=False)
    finally:
        admin.close()
    for topic in result["topics"]:
        code = topic["error_code"]
        if code not in (0, _UNKNOWN_TOPIC):
            raise TransportError(f"cannot delete topic {topic['name']!r}: {topic['error_message']}")
