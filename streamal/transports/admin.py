"""Topic administration on Kafka: create the service's topics explicitly.

Brokers that auto-create topics pick their own partition count (tansu: 4, Kafka: its
``num.partitions``), and a consumer's metadata request can trigger it; the demo, the
tests and operators create topics up front instead. Errors surface as
:class:`~streamal.exceptions.TransportError`, through the Kafka transports' one error
boundary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from streamal.exceptions import TransportError
from streamal.transports.kafka import map_kafka_errors

__all__ = ["TopicReport", "TopicSpec", "create_topics", "delete_topics", "ensure_topics"]

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
    admin = _admin(client)
    try:
        existing = _create(admin, [TopicSpec(name, partitions, replication) for name in names])
    finally:
        admin.close()
    return [name for name in names if name not in existing]


def _create(admin: Any, specs: Sequence[TopicSpec]) -> set[str]:
    """Create the topics of ``specs``; return the names that existed already.

    Raises :class:`TransportError` when the broker refuses a topic for another reason.
    """
    from kafka.admin import NewTopic

    with map_kafka_errors("cannot create topics"):
        result = admin.create_topics(
            [
                NewTopic(s.name, s.partitions, s.replication, topic_configs=dict(s.configs))
                for s in specs
            ],
            raise_errors=False,
        )
    existing = set()
    for topic in result["topics"]:
        code, name = topic["error_code"], topic["name"]
        if code == _ALREADY_EXISTS:
            existing.add(name)
        elif code != 0:
            raise TransportError(
                f"cannot create topic {name!r}: {topic['error_message']} (code {code})"
            )
    return existing


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


@dataclass(frozen=True)
class TopicSpec:
    """A topic the service needs, and what an existing one must have.

    Parameters
    ----------
    name
        The topic.
    partitions
        Partitions to create it with.
    replication
        Replication factor to create it with.
    exact_partitions
        An existing topic must have exactly ``partitions`` (the samples topic: its
        partitions bound the instances of a group); otherwise any number will do.
    check_replication
        An existing topic must have ``replication`` replicas (when the operator asked
        for a factor).
    configs
        Topic settings to create it with, which an existing topic must have too (the
        state topic's ``cleanup.policy=compact``).
    """

    name: str
    partitions: int = 1
    replication: int = 1
    exact_partitions: bool = False
    check_replication: bool = False
    configs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TopicReport:
    """What :func:`ensure_topics` found or did for one topic."""

    name: str
    status: Literal["created", "exists", "mismatch"]
    detail: str = ""


#: Kafka's default of the topic settings :class:`TopicSpec` may ask for (a broker that
#: lists no value for a setting has its default).
_DEFAULTS = {"cleanup.policy": "delete"}


def ensure_topics(client: Mapping[str, Any], specs: Sequence[TopicSpec]) -> list[TopicReport]:
    """Create the topics of ``specs`` that do not exist; check the ones that do.

    Idempotent: an existing topic with the settings a spec asks for is reported as
    ``exists``, one without them as ``mismatch`` (with what differs); nothing existing is
    changed.

    Raises
    ------
    TransportError
        If the broker is unreachable or refuses a topic (the message names it).
    """
    from kafka.admin import ConfigResource, ConfigResourceType

    admin = _admin(client)
    try:
        names = _create(admin, specs)
        existing = [s for s in specs if s.name in names]
        described: dict[str, Any] = {}
        configs: dict[str, Any] = {}
        if existing:
            with map_kafka_errors("cannot describe the existing topics"):
                described = {
                    t["name"]: t for t in admin.describe_topics([s.name for s in existing])
                }
                if any(s.configs for s in existing):
                    resources = [
                        ConfigResource(ConfigResourceType.TOPIC, s.name)
                        for s in existing
                        if s.configs
                    ]
                    configs = admin.describe_configs(resources, config_filter="all").get(
                        "topic", {}
                    )
    finally:
        admin.close()
    reports = []
    for spec in specs:
        if spec not in existing:
            reports.append(TopicReport(spec.name, "created"))
            continue
        problems = _differences(spec, described.get(spec.name, {}), configs.get(spec.name, {}))
        status: Literal["exists", "mismatch"] = "mismatch" if problems else "exists"
        reports.append(TopicReport(spec.name, status, "; ".join(problems)))
    return reports


def _differences(
    spec: TopicSpec, topic: Mapping[str, Any], configs: Mapping[str, Any]
) -> list[str]:
    """What an existing topic has other than ``spec`` asks for.

    Examples
    --------
    >>> spec = TopicSpec("s", 6, exact_partitions=True, configs={"cleanup.policy": "compact"})
    >>> _differences(spec, {"partitions": [{"replica_nodes": [1]}] * 4}, {})
    ['4 partitions, not 6', 'cleanup.policy=delete, not compact']
    """
    problems = []
    parts = topic.get("partitions") or []
    if spec.exact_partitions and len(parts) != spec.partitions:
        problems.append(f"{len(parts)} partitions, not {spec.partitions}")
    if spec.check_replication and parts:
        replicas = len(parts[0].get("replica_nodes") or [])
        if replicas != spec.replication:
            problems.append(f"replication {replicas}, not {spec.replication}")
    for key, wanted in spec.configs.items():
        found = configs.get(key)
        value = found.get("value") if isinstance(found, Mapping) else None
        value = _DEFAULTS.get(key, "") if value is None else str(value)
        if value != wanted:
            problems.append(f"{key}={value or '(unset)'}, not {wanted}")
    return problems
