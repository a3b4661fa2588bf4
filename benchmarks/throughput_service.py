"""The service through a real broker: throughput against a bare consumer, and latency.

A local tansu broker (:class:`streamal.dev.broker.LocalBroker`) holds one topic of samples
(Elec2, or SEA, without labels). Per round, on that same topic, with fresh consumer
groups:

* **bare**: a kafka-python ``KafkaConsumer`` polls (``max_records=500``), ``json.loads``
  each value and calls the model's ``predict_proba_one`` on ``x``;
* **service**: ``streamal serve``'s :class:`~streamal.service.loop.Service` as the
  factory builds it (decode and validate the sample, process it with entropy and the
  variable threshold at rate 0.1, queue its query, update the metrics, checkpoint with
  the default settings, once a second or after 10,000 messages: flush, snapshot,
  publish the queries, commit).

Both use the same logistic regression, warmed on the same 2,000 labelled samples; no
label arrives during the timing, so neither learns. The clock runs from the first
sample handled to the last, with no per-message instrumentation in either loop (the
group join and the service's final checkpoint are not timed; its periodic ones are).

Latency: a separate process appends samples at a fixed rate to a fresh topic while the
service (or, for comparison, the bare loop) runs; the latency of a sample is the
wall-clock time from its record's timestamp (set when the producer appends it) to the
end of its decision (1 ms resolution: Kafka timestamps are in milliseconds). It is
measured with the consumer's default fetch wait and with ``fetch_max_wait_ms=5``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from throughput import SEED, core_data

from streamal.core.models import build_model
from streamal.messages import Sample, encode

WARM = 2000
#: Queries unanswered for 1,000 arrivals expire, so the pending store (and the snapshot
#: that holds it) stays small although no label arrives while the service is timed.
TTL: float | None = 1000.0
#: Consumer settings that let a tansu group join in about 3 s (as the tests use).
CONSUMER = {
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 500,
    "max_poll_interval_ms": 60_000,
}
PRODUCER = {"enable_idempotence": False, "acks": "all", "linger_ms": 5}
#: Latency is measured with kafka-python's default fetch wait (500 ms: tansu answers a
#: fetch only when that wait is over, so it dominates) and with a 5 ms wait, set through
#: the service's ``kafka.fetch_max_wait_ms`` setting.
LATENCY_SETTINGS: dict[str, dict[str, Any]] = {
    "default": {},
    "fetch_max_wait_ms=5": {"fetch_max_wait_ms": 5},
}


#: Durations (seconds) of the checkpoints run during the throughput rounds.
CHECKPOINTS: list[float] = []


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, **PRODUCER)
    for v in values:
        producer.send(topic, v)
    producer.flush(60)
    producer.close()


def _bare_setup(
    bootstrap: str, topic: str, warm: list[Sample], extra: dict[str, Any] | None = None
) -> tuple[Any, Any]:
    """The bare loop's warmed model and its consumer (a fresh group on ``topic``)."""
    from kafka import KafkaConsumer

    model = build_model("logreg", SEED)
    for s in warm:
        model.learn_one(s.x, s.y)
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=_unique("bare"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **CONSUMER,
        **(extra or {}),
    )
    return model, consumer


def _bare(bootstrap: str, topic: str, n: int, warm: list[Sample]) -> float:
    model, consumer = _bare_setup(bootstrap, topic, warm)
    count, first = 0, 0.0
    predict, loads = model.predict_proba_one, json.loads
    try:
        while count < n:
            for records in consumer.poll(timeout_ms=500, max_records=500).values():
                for record in records:
                    if not count:
                        first = time.perf_counter()
                    predict(loads(record.value)["x"])
                    count += 1
        return (n - 1) / (time.perf_counter() - first)
    finally:
        consumer.close(autocommit=False)


def _service(
    bootstrap: str,
    topics: dict[str, str],
    warm: list[Sample],
    state: Path,
    consumer: dict[str, Any] | None = None,
) -> Any:
    from prometheus_client import CollectorRegistry

    from streamal.service.config import load_settings
    from streamal.service.factory import build_service

    settings = load_settings(
        overrides={
            "kafka": {
                "bootstrap_servers": bootstrap,
                "group_id": _unique("svc"),
                **CONSUMER,
                **(consumer or {}),  # typed settings: kafka.consumer may not shadow them
            },
            "topics": topics,
            "learner": {"model": "logreg", "seed": SEED, "ttl": TTL},
            "checkpoint": {"dir": str(state)},
            "service": {"http_port": None},
        }
    )
    svc = build_service(settings, CollectorRegistry())
    svc.learner.warm_start(warm)
    return svc


def _timed(svc: Any, on_sample: Callable[[Any], None]) -> None:
    """Call ``on_sample(envelope)`` after the service handles each sample."""
    handle, samples = svc.handler.handle, svc.handler.topics.samples

    def wrapped(env: Any) -> None:
        handle(env)
        if env.topic == samples:
            on_sample(env)

    svc.handler.handle = wrapped


def _checkpoint_times(svc: Any) -> list[float]:
    """Seconds of each checkpoint the service runs from now on (it runs inside the loop)."""
    checkpoint, times = svc.checkpoint, []

    def wrapped(*args: Any, **kwargs: Any) -> bool:
        start = time.perf_counter()
        try:
            return bool(checkpoint(*args, **kwargs))
        finally:
            times.append(time.perf_counter() - start)

    svc.checkpoint = wrapped
    return times


def _checkpoint_summary(times: list[float]) -> dict[str, float]:
    return (
        {
            "checkpoints": len(times),
            "mean_ms": 1000 * statistics.fmean(times),
            "max_ms": 1000 * max(times),
        }
        if times
        else {"checkpoints": 0}
    )


def _service_rate(bootstrap: str, topics: dict[str, str], n: int, warm: list[Sample]) -> float:
    """Samples per second from the first sample handled to the end of the loop.

    Like the bare loop, the service carries no per-message instrumentation: the clock
    starts when the first sample is handled (a wrapper that removes itself) and stops
    when the loop ends, which is when the final checkpoint (timed) begins.
    """
    first: list[float] = []
    with tempfile.TemporaryDirectory() as state:
        svc = _service(bootstrap, topics, warm, Path(state))
        handle, samples = svc.handler.handle, svc.handler.topics.samples

        def first_sample(env: Any) -> None:
            handle(env)
            if env.topic == samples and not first:
                first.append(time.perf_counter())
                svc.handler.handle = handle  # the loop binds it again at the next batch

        svc.handler.handle = first_sample
        checkpoints = _checkpoint_times(svc)
        try:
            svc.run(count=n)
            end = time.perf_counter() - checkpoints[-1]  # the final checkpoint is not timed
        finally:
            svc.close()
    CHECKPOINTS.extend(checkpoints[:-1])
    return (n - 1) / (end - first[0])


PACED = """
import sys, time
from kafka import KafkaProducer
bootstrap, topic, n, rate = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
values = [line.rstrip(b"\\n") for line in sys.stdin.buffer]
p = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks=1, linger_ms=0)
start = time.perf_counter()
for i in range(n):
    delay = start + i / rate - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
    p.send(topic, values[i % len(values)])
p.flush(30)
p.close()
"""


def _paced(bootstrap: str, topic: str, values: list[bytes], n: int, rate: float) -> None:
    subprocess.run(
        [sys.executable, "-c", PACED, bootstrap, topic, str(n), str(rate)],
        input=b"\n".join(values),
        check=True,
        timeout=n / rate + 60,
    )


def _feed(
    assigned: Callable[[], Any],
    bootstrap: str,
    topic: str,
    values: list[bytes],
    n: int,
    rate: float,
) -> None:
    """Once the consumer has its partitions, append ``n`` samples at ``rate`` per second."""
    deadline = time.monotonic() + 30
    while not assigned() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the first fetch after the join
    _paced(bootstrap, topic, values, n, rate)


def _summary(lat: list[float], rate: float) -> dict[str, float]:
    lat = sorted(lat)
    return {
        "samples": len(lat),
        "rate_per_s": rate,
        "p50_ms": statistics.median(lat),
        "p99_ms": lat[int(0.99 * (len(lat) - 1))],
        "max_ms": lat[-1],
    }


def _bare_latency(
    bootstrap: str,
    topic: str,
    values: list[bytes],
    n: int,
    rate: float,
    warm: list[Sample],
    extra: dict[str, Any] | None = None,
) -> dict[str, float]:
    model, consumer = _bare_setup(bootstrap, topic, warm, extra)
    lat: list[float] = []

    def loop() -> None:
        while len(lat) < n:
            for records in consumer.poll(timeout_ms=500, max_records=500).values():
                for record in records:
                    model.predict_proba_one(json.loads(record.value)["x"])
                    lat.append(time.time() * 1000 - record.timestamp)

    runner = threading.Thread(target=loop, daemon=True)
    runner.start()
    _feed(consumer.assignment, bootstrap, topic, values, n, rate)
    runner.join(timeout=60)
    consumer.close(autocommit=False)
    return _summary(lat, rate)


def _latency(
    bootstrap: str,
    topics: dict[str, str],
    values: list[bytes],
    n: int,
    rate: float,
    warm: list[Sample],
    consumer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    lat: list[float] = []
    with tempfile.TemporaryDirectory() as state:
        svc = _service(bootstrap, topics, warm, Path(state), consumer)
        _timed(svc, lambda env: lat.append(time.time() * 1000 - env.timestamp_ms))
        checkpoints = _checkpoint_times(svc)
        runner = threading.Thread(target=svc.run, kwargs={"count": n}, daemon=True)
        runner.start()
        _feed(svc.source.assignment, bootstrap, topics["samples"], values, n, rate)
        runner.join(timeout=60)
        svc.close()
    return _summary(lat, rate) | {"checkpoint": _checkpoint_summary(checkpoints)}


def service(n: int, rounds: int, latency_n: int, latency_rate: float) -> dict[str, Any]:
    """Service/bare throughput ratio per round (median reported) and append→decision latency."""
    from streamal.dev.broker import LocalBroker
    from streamal.transports.admin import create_topics

    _, data = core_data(n + WARM)
    warm, stream = data[:WARM], data[WARM:]
    values = [encode(Sample(id=s.id, x=s.x)) for s in stream]
    with LocalBroker() as broker:
        bootstrap = broker.bootstrap
        topics = {k: _unique(k) for k in ("samples", "labels", "queries", "dead_letters")}
        create_topics({"bootstrap_servers": bootstrap}, list(topics.values()))
        _produce(bootstrap, topics["samples"], values)
        bare, svc = [], []
        for r in range(rounds):
            bare.append(_bare(bootstrap, topics["samples"], len(values), warm))
            svc.append(_service_rate(bootstrap, topics, len(values), warm))
            print(
                f"service round {r}: bare {bare[-1]:.0f}/s, service {svc[-1]:.0f}/s",
                file=sys.stderr,
            )
        latency: dict[str, Any] = {}
        bare_latency: dict[str, Any] = {}
        for name, consumer in LATENCY_SETTINGS.items():
            lat_topics = dict(topics, samples=_unique("latency"))
            bare_topic = _unique("latency-bare")
            create_topics({"bootstrap_servers": bootstrap}, [lat_topics["samples"], bare_topic])
            args = (values, latency_n, latency_rate, warm, consumer)
            latency[name] = _latency(bootstrap, lat_topics, *args)
            bare_latency[name] = _bare_latency(bootstrap, bare_topic, *args)
    ratios = [s / b for s, b in zip(svc, bare, strict=True)]
    checkpoint = _checkpoint_summary(CHECKPOINTS)
    CHECKPOINTS.clear()
    return {
        "samples": len(values),
        "rounds": rounds,
        "bare_per_s": bare,
        "service_per_s": svc,
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "latency": latency,
        "bare_latency": bare_latency,
        "checkpoint": checkpoint,
    }
