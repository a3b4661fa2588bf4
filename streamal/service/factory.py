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
from typing import Any

from prometheus_client import CollectorRegistry

from streamal import __version__
from streamal.checkpoint import Checkpointer
from streamal.exceptions import ConfigError
from streamal.pending import SQLitePendingStore
from streamal.replay import build_learner as build_replay_learner
from streamal.service.config import KafkaSettings, Settings
from streamal.service.loop import LoopPolicy, Service, Topics
from streamal.service.metrics import Metrics
from streamal.transports.base import Sink, Source

__all__ = [
    "build_learner",
    "build_service",
    "build_transports",
    "config_hash",
    "kafka_client_options",
    "loop_policy",
    "topics",
]


def config_hash(settings: Settings) -> str:
    """A short hash of the settings a snapshot depends on (learner and input topics)."""
    text = json.dumps(settings.learner_identity(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_learner(settings: Settings) -> Any:
    """A fresh learner, built exactly as replay builds it (same specs, same seed).

    With ``learner.window_selector`` set, it is wrapped in a
    :class:`~streamal.window.WindowLearner` (window mode).
    """
    spec = settings.learner
    learner = build_replay_learner(
        spec.model, spec.strategy, spec.budget, spec.rate, spec.seed, spec.ttl, spec.audit
    )
    if spec.pending == "sqlite":
        path = settings.checkpoint.dir / "pending.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        learner.pending = SQLitePendingStore(str(path), max_size=spec.max_pending)
    else:
        learner.pending.max_size = spec.max_pending
    if spec.window_selector is not None:
        from streamal.window import WindowLearner

        if spec.audit:
            raise ConfigError("learner.audit is not available in window mode (window_selector)")

        return WindowLearner(
            learner, spec.window_selector, spec.window_size, spec.window_seconds, seed=spec.seed
        )
    return learner


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
    """The Kafka source (group consumer) and sink (producer)."""
    from streamal.transports.kafka import KafkaSink, KafkaSource

    kafka = settings.kafka
    client = kafka_client_options(kafka)
    # Give up connecting after the same time the loop tolerates an unreachable broker.
    bootstrap_ms = int(settings.service.broker_timeout * 1000)
    consumer = {
        "session_timeout_ms": kafka.session_timeout_ms,
        "heartbeat_interval_ms": kafka.heartbeat_interval_ms,
        "max_poll_interval_ms": kafka.max_poll_interval_ms,
        "fetch_max_wait_ms": kafka.fetch_max_wait_ms,
        "bootstrap_timeout_ms": bootstrap_ms,
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


def build_service(
    settings: Settings,
    registry: CollectorRegistry,
    source: Source | None = None,
    sink: Sink | None = None,
) -> Service:
    """The whole service; Kafka transports unless ``source`` and ``sink`` are given.

    The learner is built first, so that a bad setting fails before any connection.
    """
    learner = build_learner(settings)
    checkpointer = Checkpointer(settings.checkpoint.dir, keep=settings.checkpoint.keep)
    if source is None or sink is None:
        source, sink = build_transports(settings)
    metrics = Metrics(registry)
    digest = config_hash(settings)
    metrics.build.info({"version": __version__, "config_hash": digest})
    service = Service(
        learner,
        source,
        sink,
        checkpointer,
        topics(settings),
        loop_policy(settings),
        metrics,
        digest,
    )
    metrics.track_lag(source, lambda: service.offsets.positions)
    return service
