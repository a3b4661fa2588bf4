"""The one place where settings become objects: learner, transports, loop, service.

Examples
--------
>>> from streamal.service.config import load_settings
>>> settings = load_settings(overrides={"learner": {"model": "logreg", "rate": 0.2}})
>>> learner = build_learner(settings)
>>> type(learner.budget).__name__, learner.budget.rate
('ReserveQuantile', 0.2)
>>> len(config_hash(settings))
16
>>> kafka_client_options(settings.kafka)["bootstrap_servers"]
'localhost:9092'
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from streamal import __version__
from streamal.core.checkpoint import Checkpointer
from streamal.core.protocol import Learner
from streamal.core.spec import build_learner as build_from_spec
from streamal.labelling.policy import LabelPolicy
from streamal.messages import Limits
from streamal.service.config import KafkaSettings, Settings
from streamal.service.loop import LoopPolicy, Service, Topics
from streamal.service.metrics import Metrics
from streamal.service.warm import warm_start_hook
from streamal.transports.base import Sink, Source

if TYPE_CHECKING:
    from streamal.labelling.gateway import LabelGateway

__all__ = [
    "build_labelling",
    "build_learner",
    "build_service",
    "build_transports",
    "config_hash",
    "kafka_client_options",
    "label_gateway",
    "label_policy",
    "limits",
    "loop_policy",
    "topics",
]


def config_hash(settings: Settings) -> str:
    """A short hash of the settings a snapshot depends on (learner and input topics)."""
    text = json.dumps(settings.learner_identity(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_learner(settings: Settings) -> Learner:
    """A fresh learner, built exactly as replay builds it (one spec, one builder).

    With ``learner.window_selector`` set, it is a :class:`~streamal.window.WindowLearner`
    (window mode). With ``learner.pending="sqlite"`` the pending store is the file
    ``pending.sqlite`` in the checkpoint directory.
    """
    pending_file = None
    if settings.learner.pending == "sqlite":
        path = settings.checkpoint.dir / "pending.sqlite"
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        pending_file = str(path)
    return build_from_spec(settings.learner.to_spec(pending_file))


def kafka_client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """kafka-python settings shared by consumer and producer (connection and security)."""
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers.split(","),
        "client_id": kafka.client_id,
        "security_protocol": kafka.security_protocol,
        "request_timeout_ms": kafka.request_timeout_ms,
        "ssl_check_hostname": kafka.ssl_check_hostname,
    }
    optional = {
        "sasl_mechanism": kafka.sasl_mechanism,
        "sasl_plain_username": kafka.sasl_username,
        "sasl_plain_password": kafka.sasl_password,
        "ssl_cafile": kafka.ssl_cafile,
        "ssl_certfile": kafka.ssl_certfile,
        "ssl_keyfile": kafka.ssl_keyfile,
        "ssl_password": kafka.ssl_password,
    }
    for key, value in optional.items():
        if value is not None:
            options[key] = value.get_secret_value() if hasattr(value, "get_secret_value") else value
    if len(options["bootstrap_servers"]) == 1:
        options["bootstrap_servers"] = options["bootstrap_servers"][0]
    return options


def build_transports(settings: Settings) -> tuple[Source, Sink]:
    """The Kafka source (group consumer) and sink (producer).

    In group mode the client id carries the instance id (``client_id-instance``).
    """
    from streamal.transports.kafka import KafkaSink, KafkaSource

    kafka = settings.kafka
    client = kafka_client_options(kafka)
    if settings.group.enabled:
        client["client_id"] = f"{kafka.client_id}-{_instance(settings)}"
    # Give up connecting after the same time the loop tolerates an unreachable broker.
    bootstrap_ms = int(settings.service.broker_timeout * 1000)
    consumer = {
        "session_timeout_ms": kafka.session_timeout_ms,
        "heartbeat_interval_ms": kafka.heartbeat_interval_ms,
        "max_poll_interval_ms": kafka.max_poll_interval_ms,
        "fetch_max_wait_ms": kafka.fetch_max_wait_ms,
        "bootstrap_timeout_ms": bootstrap_ms,
        # A topic created after the service started is seen within 10 s (kafka-python's
        # default of 5 minutes left such a service idle for minutes).
        "metadata_max_age_ms": 10_000,
        **kafka.consumer,
    }
    producer = {"max_block_ms": kafka.max_block_ms, "bootstrap_timeout_ms": bootstrap_ms}
    source = KafkaSource(client, kafka.group_id, consumer)
    try:
        sink = KafkaSink(client, {**producer, **kafka.producer})
    except BaseException:
        source.close()
        raise
    return source, sink


def label_policy(settings: Settings) -> LabelPolicy:
    """What queries offer annotators and which labels are taken (``learner`` section)."""
    spec = settings.learner
    return LabelPolicy.build(spec.classes, spec.query_meta_bytes, spec.unsolicited)


def label_gateway(settings: Settings, sink: Sink) -> LabelGateway:
    """``POST /labels``: labels checked as ``label_policy`` says, produced with ``sink``.

    The ``labelling`` section gives the token and the request limits; ``streamal serve``
    and ``streamal label --web`` both build their gateway here.
    """
    from streamal.labelling.gateway import LabelGateway

    spec = settings.labelling
    token = None if spec.token is None else spec.token.get_secret_value()
    return LabelGateway(
        sink,
        settings.topics.labels,
        label_policy(settings),
        token,
        spec.max_request_bytes,
        spec.max_labels,
    )


def topics(settings: Settings) -> Topics:
    """The topic names."""
    t = settings.topics
    return Topics(t.samples, t.labels, t.queries, t.dead_letters, t.predictions)


def loop_policy(settings: Settings) -> LoopPolicy:
    """Loop timings from the ``service`` and ``checkpoint`` sections."""
    s, c = settings.service, settings.checkpoint
    return LoopPolicy(
        max_batch=s.max_batch,
        poll_timeout=s.poll_timeout,
        commit_every=c.every,
        commit_interval=c.interval,
        broker_timeout=s.broker_timeout,
        health_interval=s.health_interval,
        flush_timeout=s.flush_timeout,
        stall_timeout=s.stall_timeout,
        tune_gc=s.tune_gc,
    )


def limits(settings: Settings) -> Limits:
    """The message limits of the ``limits`` section."""
    return Limits(**settings.limits.model_dump())


def build_service(
    settings: Settings,
    registry: CollectorRegistry,
    source: Source | None = None,
    sink: Sink | None = None,
    lock: bool = False,
) -> Service:
    """The whole service; Kafka transports unless ``source`` and ``sink`` are given.

    The learner is built first, so that a bad setting fails before any connection.
    With ``lock``, the checkpoint directory is locked for this process first (a second
    service on it is refused with a :class:`~streamal.exceptions.CheckpointError`).
    """
    if settings.group.enabled and (
        settings.learner.window_selector is not None or settings.learner.pending != "memory"
    ):
        from streamal.exceptions import ConfigError

        raise ConfigError(
            "group mode (group.enabled) needs learner.window_selector unset and "
            "learner.pending=memory"
        )
    learner = build_learner(settings)
    key = settings.checkpoint.key
    checkpointer = Checkpointer(
        settings.checkpoint.dir,
        keep=settings.checkpoint.keep,
        key=None if key is None else key.get_secret_value().encode(),
        lock=lock,
    )
    if source is None or sink is None:
        try:
            source, sink = build_transports(settings)
        except BaseException:
            checkpointer.close()
            raise
    metrics = Metrics(registry)
    digest = config_hash(settings)
    spec = settings.learner
    warm = warm_start_hook(
        spec.warm_start,
        spec.warm_start_topic,
        kafka_client_options(settings.kafka),
        spec.warm_start_first,
        spec.warm_start_charge,
        settings.service.broker_timeout,
    )
    metrics.build.info({"version": __version__, "config_hash": digest})
    if settings.group.enabled:
        return _group_service(settings, registry, learner, source, sink, checkpointer, metrics)
    service = Service(
        learner,
        source,
        sink,
        checkpointer,
        topics(settings),
        loop_policy(settings),
        metrics,
        digest,
        limits=limits(settings),
        warm_start=warm,
    )
    service.handler.policy = label_policy(settings)
    metrics.track_lag(source, lambda: service.offsets.positions)
    return service


def _instance(settings: Settings) -> str:
    """This instance's name in group mode: ``group.instance_id``, else the hostname."""
    from streamal.service.group import default_instance_id

    return settings.group.instance_id or default_instance_id()


def _group_service(
    settings: Settings,
    registry: CollectorRegistry,
    learner: Learner,
    source: Source,
    sink: Sink,
    checkpointer: Checkpointer,
    metrics: Metrics,
) -> Service:
    """The instance of a scale-out group (``group.enabled``): see :mod:`streamal.service.group`."""
    from dataclasses import replace

    from streamal.core.spec import build_active_learner
    from streamal.service.group import GroupService
    from streamal.transports.kafka import KafkaReader

    group = settings.group
    instance = _instance(settings)
    spec = settings.learner.to_spec()
    kafka = settings.kafka
    client = {**kafka_client_options(kafka), "client_id": f"{kafka.client_id}-{instance}"}
    reading = {
        "fetch_max_wait_ms": kafka.fetch_max_wait_ms,
        "bootstrap_timeout_ms": int(settings.service.broker_timeout * 1000),
        "metadata_max_age_ms": 10_000,
    }
    readers: list[Any] = []
    try:
        readers.append(KafkaReader(client, reading))
        readers.append(KafkaReader(client, reading))
    except BaseException:
        for made in readers:
            made.close()
        source.close()
        sink.close(0.0)
        checkpointer.close()
        raise
    key = settings.checkpoint.key
    digest = config_hash(settings)
    metrics.build.info({"version": __version__, "config_hash": digest, "instance": instance})
    warm = warm_start_hook(
        settings.learner.warm_start,
        settings.learner.warm_start_topic,
        kafka_client_options(kafka),
        settings.learner.warm_start_first,
        settings.learner.warm_start_charge,
        settings.service.broker_timeout,
    )

    def new_decider(partition: int) -> Learner:
        # Each partition's budget manager (and audit draws) is seeded from the partition.
        return build_active_learner(replace(spec, seed=spec.seed + partition))

    service = GroupService(
        learner,
        source,
        sink,
        checkpointer,
        topics(settings),
        loop_policy(settings),
        metrics,
        digest,
        limits=limits(settings),
        warm_start=warm,
        reader=readers[0],
        state_reader=readers[1],
        new_decider=new_decider,
        state_topic=group.state_topic,
        instance_id=instance,
        catch_up_timeout=group.catch_up_timeout,
        key=None if key is None else key.get_secret_value().encode(),
    )
    service.handler.policy = label_policy(settings)
    metrics.track_lag(
        source,
        lambda: {(service.topics.samples, p): pos for p, pos in service.samples_positions.items()},
    )
    return service


def build_labelling(settings: Settings, service: Service, sink: Sink | None = None) -> Any:
    """The labelling routes for the HTTP port, or ``None`` with ``labelling.enabled`` off.

    Wraps the service's sink so that the page learns of each query as it is published,
    and gives ``POST /labels`` a producer of its own (a Kafka one unless ``sink`` is
    given). Close ``app.gateway.sink`` after the HTTP server stops.
    """
    from streamal.core.pending import MemoryPendingStore
    from streamal.labelling.board import BoardSink, QueryBoard
    from streamal.labelling.web import LabellingApp

    spec = settings.labelling
    if not spec.enabled:
        return None

    def is_open(sample_id: str) -> bool:
        pending = service.learner.pending
        # Only the in-memory store may be read from the HTTP thread (a set lookup);
        # with SQLite, queries leave the page when labelled over HTTP.
        return not isinstance(pending, MemoryPendingStore) or sample_id in pending

    def counts() -> dict[str, Any]:
        learner = service.learner
        budget, seen = learner.budget, learner.stats.seen
        return {
            "pending": len(learner.pending),
            "spent": budget.spent,
            "target": int(budget.rate * seen),
            "rate": budget.rate,
            "seen": seen,
        }

    board = QueryBoard(is_open=is_open)
    service.sink = BoardSink(service.sink, settings.topics.queries, board)
    if sink is None:
        from streamal.transports.kafka import KafkaSink

        kafka = settings.kafka
        producer = {"max_block_ms": kafka.max_block_ms, "linger_ms": 0}
        sink = KafkaSink(kafka_client_options(kafka), {**producer, **kafka.producer})
    return LabellingApp(label_gateway(settings, sink), board, counts)
