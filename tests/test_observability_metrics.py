"""The service's metrics: values after real traffic, and no dangling dashboard or alert."""

from __future__ import annotations

import json
import math
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from _helpers import wait_until
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streamal.messages import Label, Sample, encode
from streamal.offline.streams import open_source
from streamal.service.config import load_settings
from streamal.service.factory import build_service
from streamal.transports import MemoryBroker, MemorySink, MemorySource
from streamal.transports.base import TopicPartition

#: Polls every 0.2 s.
_wait = partial(wait_until, interval=0.2)

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
RATE = 0.1
Scrape = dict[str, dict[tuple[tuple[str, str], ...], float]]


def referenced_metrics() -> set[str]:
    """Every ``streamal_*`` series named by the Grafana dashboard and the alert rules."""
    exprs: list[str] = []
    for path in (DEPLOY / "grafana" / "dashboards").glob("*.json"):
        for panel in json.loads(path.read_text())["panels"]:
            exprs += [t["expr"] for t in panel.get("targets", [])]
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    names = {name for e in exprs for name in re.findall(r"\bstreamal_[a-z0-9_]+", e)}
    # Group mode's own metrics (the group dashboard) exist only in group mode: checked
    # against its registry by tests/test_deploy_scale.py.
    from streamal.service.group import GroupMetrics
    from streamal.service.metrics import Metrics

    group = CollectorRegistry()
    GroupMetrics(Metrics(group))
    plain = CollectorRegistry()
    Metrics(plain)
    only = {f.name for f in group.collect()} - {f.name for f in plain.collect()}
    return {n for n in names if n.removesuffix("_total") not in only}


def parse(text: str) -> Scrape:
    """Scraped samples by series name, then by sorted label pairs."""
    out: Scrape = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def value(scrape: Scrape, name: str, **labels: str) -> float:
    series = scrape.get(name, {})
    return sum(v for k, v in series.items() if set(labels.items()) <= set(k))


def test_the_dashboard_and_alerts_reference_metrics() -> None:
    names = referenced_metrics()
    assert len(names) >= 25
    assert {"streamal_accuracy_ratio", "streamal_consumer_lag"} <= names


# -- in memory: fast, every code path ---------------------------------------------------


class _LagSource(MemorySource):
    """A memory source that knows its partitions' end offsets, as Kafka's does."""

    def highwater(self, tp: TopicPartition) -> int | None:
        return len(self.broker.topics[tp[0]].partitions[tp[1]])


def _memory_service(tmp_path: Path, budget: str = "variable_threshold") -> tuple[Any, Any, Any]:
    broker = MemoryBroker()
    settings = load_settings(
        overrides={
            "learner": {
                "model": "logreg",
                "rate": RATE,
                "audit": 0.2,
                "ttl": 150.0,
                "budget": budget,
            },
            "checkpoint": {"dir": str(tmp_path), "every": 200},
            "service": {"http_port": None, "max_batch": 100},
        }
    )
    registry = CollectorRegistry()
    service = build_service(settings, registry, _LagSource(broker), MemorySink(broker))
    return broker, service, registry


def _answer(broker: MemoryBroker, truth: dict[str, Any], answered: set[str], every: int) -> int:
    """Answer the published queries not answered yet, skipping every ``every``-th."""
    n = 0
    for i, raw in enumerate(broker.values("streamal.queries")):
        query = json.loads(raw or b"{}")
        sid = query["sample_id"]
        if sid in answered or i % every == every - 1:
            continue
        answered.add(sid)
        broker.produce("streamal.labels", encode(Label(sample_id=sid, y=truth[sid])))
        n += 1
    return n


def test_metrics_after_traffic_in_memory(tmp_path: Path) -> None:
    broker, service, registry = _memory_service(tmp_path)
    truth: dict[str, Any] = {}
    answered: set[str] = set()
    stream = iter(open_source("synth:SEA:n=6000", seed=5))
    for _ in range(6):
        for sample in [next(stream) for _ in range(1000)]:
            truth[sample.id] = sample.y
            broker.produce("streamal.samples", encode(Sample(id=sample.id, x=sample.x)))
        broker.produce("streamal.samples", b"{not json")
        service.run(timeout=0.5)
        _answer(broker, truth, answered, every=7)
    broker.produce("streamal.labels", encode(Label(sample_id="ghost", y=1)))
    service.run(timeout=0.5)
    m = parse(generate_latest(registry).decode())

    assert value(m, "streamal_samples_total") == 6000
    # No prediction before the first label (the model knows no class yet).
    assert 4000 < value(m, "streamal_predictions_total") <= 6000
    assert value(m, "streamal_decode_failures_total", kind="sample") == 6
    assert value(m, "streamal_dead_letters_total", reason="invalid_json") == 6
    assert value(m, "streamal_dead_letters_total", reason="label_unknown") == 1
    assert value(m, "streamal_consumer_lag", topic="streamal.samples", partition="0") == 0
    queries = value(m, "streamal_queries_total")
    assert abs(queries / 6000 - RATE) <= 0.1 * RATE
    assert value(m, "streamal_queries_total", purpose="audit") > 0
    assert abs(value(m, "streamal_budget_realized_ratio") - RATE) <= 0.1 * RATE
    assert abs(value(m, "streamal_budget_realized_window_ratio") - RATE) <= 0.2 * RATE
    assert value(m, "streamal_budget_target_ratio") == RATE
    assert value(m, "streamal_budget_audit_ratio") == 0.2
    assert 0.0 <= value(m, "streamal_budget_threshold") <= 1.0
    assert value(m, "streamal_score_count") == 6000
    applied = value(m, "streamal_labels_total", outcome="applied")
    expired = value(m, "streamal_expired_queries_total")
    assert applied > 0 and expired > 0  # every 7th query is never answered: its TTL passes
    assert value(m, "streamal_pending_queries") == queries - applied - expired
    assert value(m, "streamal_label_delay_seconds_count") == applied
    assert value(m, "streamal_model_updates_total") == applied
    assert value(m, "streamal_model_version") == applied
    for estimate in ("queried", "audit"):
        assert 0.5 < value(m, "streamal_accuracy_ratio", estimate=estimate) <= 1.0
    assert value(m, "streamal_accuracy_labels", estimate="audit") > 0
    assert value(m, "streamal_checkpoint_duration_seconds_count") > 0
    assert value(m, "streamal_checkpoint_last_success_timestamp_seconds") > time.time() - 60
    assert value(m, "streamal_checkpoint_failures_total") == 0
    info = next(iter(m["streamal_build_info"]))
    assert dict(info)["config_hash"] == service.config_hash
    missing = referenced_metrics() - _series_names(m)
    assert not missing, f"dashboard/alerts reference metrics the service lacks: {missing}"


def _series_names(m: Scrape) -> set[str]:
    names = set(m)
    for name in list(m):  # histogram families: the base name is referenced too
        for suffix in ("_bucket", "_count", "_sum", "_info"):
            if name.endswith(suffix):
                names.add(name[: -len(suffix)])
    return names


def test_hard_cap_refusals_are_counted(tmp_path: Path) -> None:
    broker, service, registry = _memory_service(
        tmp_path, budget="capped:inner=variable_threshold,max_pending=3"
    )
    for sample in open_source("synth:SEA:n=2000", seed=2):
        broker.produce("streamal.samples", encode(Sample(id=sample.id, x=sample.x)))
    service.run(timeout=0.5)
    m = parse(generate_latest(registry).decode())
    assert value(m, "streamal_budget_refused_total") > 0
    assert value(m, "streamal_pending_queries") <= 3


def test_label_delay_and_unknown_ids() -> None:
    from streamal.service.metrics import Metrics

    metrics = Metrics(CollectorRegistry())
    metrics.query("entropy", "learn", "a")
    metrics.label("applied", "a")
    metrics.label("duplicate", "a")
    metrics.label("applied", "never-asked")
    assert metrics.registry.get_sample_value("streamal_label_delay_seconds_count") == 1
    assert (
        metrics.registry.get_sample_value("streamal_label_delay_seconds_bucket", {"le": "604800.0"})
        == 1
    )


# -- through the real broker and a real `streamal serve` --------------------------------


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.mark.kafka
def test_scrape_a_live_service_through_the_broker(
    kafka_broker: Any, kafka_topics: Any, tmp_path: Path, processes: list[Any]
) -> None:
    n, stream = 5000, "synth:SEA:n=5000"
    samples, labels, queries, letters = kafka_topics("samples", "labels", "queries", "dead")
    env = kafka_broker.env(
        TOPICS__SAMPLES=samples,
        TOPICS__LABELS=labels,
        TOPICS__QUERIES=queries,
        TOPICS__DEAD_LETTERS=letters,
        KAFKA__GROUP_ID=kafka_broker.unique("svc"),
        LEARNER__MODEL="logreg",
        LEARNER__RATE=RATE,
        LEARNER__AUDIT=0.2,
        LEARNER__TTL=1500,
        CHECKPOINT__INTERVAL=0.5,
        SERVICE__HTTP_HOST="127.0.0.1",
        SERVICE__LOG_FORMAT="json",
    )
    cli = [sys.executable, "-c", "from streamal.cli.app import main; main()"]
    # The oracle first: its group joins (~3 s) while the service starts and joins its own.
    oracle_group = kafka_broker.unique("oracle")
    oracle = [*cli, "oracle", stream, "--seed", "1", "--delay", "0.3s", "--timeout", "60"]
    processes.append(
        subprocess.Popen(
            [*oracle, "--group", oracle_group],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    log = tmp_path / "serve.log"
    with log.open("w") as err:
        serve = subprocess.Popen(
            [*cli, "serve", "--checkpoint-dir", str(tmp_path / "state"), "--http-port", "0"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    processes.append(serve)
    port = _wait(lambda: re.search(r"on http://[0-9.]+:(\d+)", log.read_text()), 30, "port")[1]

    def scrape() -> Scrape:
        url = f"http://127.0.0.1:{port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                return parse(reply.read().decode())
        except OSError as error:
            tail = log.read_text()[-3000:]
            raise AssertionError(f"scrape failed ({error}); serve log:\n{tail}") from None

    kafka_broker.send(samples, [b"{not json"])
    kafka_broker.send(labels, [encode(Label(sample_id="ghost", y=1))])
    # The group has joined once the poison message is consumed: now pace the stream.
    _wait(lambda: value(scrape(), "streamal_decode_failures_total") == 1, 30, "the group")
    produce = subprocess.run(
        [*cli, "produce", stream, "--seed", "1", "--rate", "500"],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert produce.returncode == 0, produce.stderr.decode()
    _wait(lambda: value(scrape(), "streamal_samples_total") == n, 30, "every sample")
    m = scrape()

    # Settled: every query is answered, expired, or still pending, once the oracle is done.
    def settled() -> Scrape | None:
        m = scrape()
        closed = value(m, "streamal_labels_total", outcome="applied") + value(
            m, "streamal_expired_queries_total"
        )
        return (
            m
            if closed + value(m, "streamal_pending_queries") == value(m, "streamal_queries_total")
            and value(m, "streamal_pending_queries") <= 20
            else None
        )

    m = _wait(settled, 20, "the labels")
    queries_n = value(m, "streamal_queries_total")
    assert abs(value(m, "streamal_budget_realized_ratio") - RATE) <= 0.1 * RATE
    assert abs(queries_n / n - RATE) <= 0.1 * RATE
    assert value(m, "streamal_budget_target_ratio") == RATE
    assert value(m, "streamal_queries_total", purpose="audit") > 0
    # Paced (10 s), so labels arrive while samples flow once the oracle's group has joined;
    # predictions start with the first label learned.
    assert 0.3 * n < value(m, "streamal_predictions_total") <= n
    assert value(m, "streamal_decode_failures_total", kind="sample") == 1
    assert value(m, "streamal_dead_letters_total", reason="label_unknown") == 1
    lags = {
        dict(k)["partition"]: v
        for k, v in m["streamal_consumer_lag"].items()
        if dict(k)["topic"] == samples
    }
    assert lags and all(v == 0 for v in lags.values())
    applied = value(m, "streamal_labels_total", outcome="applied")
    assert applied > 0.5 * queries_n
    assert value(m, "streamal_pending_queries") == queries_n - applied - value(
        m, "streamal_expired_queries_total"
    )
    delays = value(m, "streamal_label_delay_seconds_sum") / value(
        m, "streamal_label_delay_seconds_count"
    )
    assert 0.2 < delays < 30  # the oracle waits 0.3 s, the service publishes each checkpoint
    assert value(m, "streamal_model_updates_total") == applied
    assert value(m, "streamal_accuracy_labels", estimate="audit") > 0
    assert 0.5 < value(m, "streamal_accuracy_ratio", estimate="audit") <= 1.0
    assert value(m, "streamal_batch_duration_seconds_count") > 0
    assert value(m, "streamal_checkpoint_last_success_timestamp_seconds") > time.time() - 60
    assert value(m, "streamal_broker_up") == 1
    assert math.isfinite(value(m, "streamal_budget_threshold"))
    missing = referenced_metrics() - _series_names(m)
    assert not missing, f"dashboard/alerts reference metrics the service lacks: {missing}"

    serve.send_signal(signal.SIGTERM)
    assert serve.wait(30) == 0
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert lines and all({"ts", "level", "logger", "message"} <= set(e) for e in lines)
    assert not any("sample_id" in e for e in lines)  # no per-sample warning in this run
