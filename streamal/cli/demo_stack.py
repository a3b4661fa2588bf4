"""What ``streamal demo`` runs: a broker, the real service, a producer and an annotator.

:class:`DemoStack` starts a local tansu broker (unless bootstrap servers are given),
creates the topics, runs ``streamal serve`` in a subprocess with predictions on,
produces the stream (labels stripped) and answers queries with a simulated oracle, both
in threads of this process. A monitor reads the predictions, queries and labels topics
and the service's ``/metrics`` to report progress: prequential accuracy (each prediction
is made before the sample's label can be learned), queries, labels sent and learned.
Everything it started is stopped in :meth:`DemoStack.close`, in reverse order.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamal import defaults
from streamal.exceptions import StreamalError, TransportError

__all__ = ["DemoConfig", "DemoProgress", "DemoStack", "scrape"]

#: How long the service may take to import, restore and answer ``/readyz``.
READY_TIMEOUT = 60.0
#: Graceful stop of the service: SIGTERM, final checkpoint; SIGKILL after this.
STOP_TIMEOUT = 20.0
#: Monitor poll wait, which is also the refresh period of the progress display.
TICK = 0.2
#: Consumer timings for every group of the demo: a group joins in about half the session
#: timeout, so a 6 s session keeps start-up short (the production default is 10 s).
FAST_GROUPS = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 500}


@dataclass(frozen=True)
class DemoConfig:
    """What the demo streams, how fast, and the learner it runs (see ``streamal demo``)."""

    source: str = "river:Phishing"
    limit: int | None = None
    rate: float = 200.0
    delay: str = "1s"
    noise: float = 0.0
    model: str = defaults.DEFAULT_MODEL
    strategy: str = defaults.DEFAULT_STRATEGY
    budget: str = defaults.DEFAULT_BUDGET
    label_rate: float = defaults.DEFAULT_RATE
    seed: int = defaults.DEFAULT_SEED
    bootstrap_servers: str | None = None
    http_port: int | None = None
    timeout: float = 300.0


@dataclass
class DemoProgress:
    """Where the demo stands; ``accuracy`` is prequential over every decided sample."""

    total: int = 0
    produced: int = 0
    decided: int = 0
    correct: int = 0
    queries: int = 0
    labels: int = 0
    learned: int = 0
    model_version: int = 0
    delay_sum: int = 0
    delayed: int = 0
    elapsed: float = 0.0
    phase: str = "starting"
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return self.correct / self.decided if self.decided else 0.0

    @property
    def label_rate(self) -> float:
        return self.queries / self.decided if self.decided else 0.0

    @property
    def label_delay(self) -> float:
        """Mean samples decided between a query and the arrival of its label."""
        return self.delay_sum / self.delayed if self.delayed else 0.0


def scrape(url: str, timeout: float = 2.0) -> dict[str, float]:
    """Metrics at ``url`` as ``{'name{label="v"}': value}`` (empty if unreachable)."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            text = reply.read().decode()
    except OSError:
        return {}
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = float(s.value)
    return out


class DemoStack:
    """Starts, watches and stops the demo's parts; use as a context manager."""

    def __init__(self, config: DemoConfig, workdir: Path | None = None) -> None:
        self.config = config
        self.workdir = workdir
        self._dir = Path(workdir or tempfile.mkdtemp(prefix="streamal-demo-"))
        self._dir.mkdir(parents=True, exist_ok=True)
        run = uuid.uuid4().hex[:8]
        prefix = "streamal" if config.bootstrap_servers is None else f"streamal-demo-{run}"
        self.topics = {k: f"{prefix}.{k}" for k in ("samples", "labels", "queries", "predictions")}
        self.topics["dead_letters"] = f"{prefix}.dead-letters"
        self.group = f"streamal-demo-{run}"
        self.broker: Any = None
        self.service: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.progress = DemoProgress()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self._closers: list[Callable[[], None]] = []
        self._oracle_waiting: Callable[[], int] = lambda: 0
        self._produced_all = threading.Event()
        self._streaming = threading.Event()
        self._truth: dict[str, Any] = {}

    @property
    def bootstrap(self) -> str:
        return str(self.config.bootstrap_servers or self.broker.bootstrap)

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def __enter__(self) -> DemoStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(failed=exc[0] is not None)

    # -- start -----------------------------------------------------------------------
    def start_broker(self) -> None:
        """Start tansu (or check the given brokers) and create the topics."""
        from streamal.transports.admin import create_topics

        if self.config.bootstrap_servers is None:
            from streamal.broker import LocalBroker

            self.broker = LocalBroker(log_path=self._dir / "broker.log").start()
        create_topics(self._client(), list(self.topics.values()))

    def start_service(self) -> None:
        """Run ``streamal serve`` in a subprocess and wait until ``/readyz`` says ready."""
        from streamal.broker import die_with_parent, free_port

        c, t = self.config, self.topics
        self.port = c.http_port or free_port()
        sets = {
            "topics.samples": t["samples"],
            "topics.labels": t["labels"],
            "topics.queries": t["queries"],
            "topics.predictions": t["predictions"],
            "topics.dead_letters": t["dead_letters"],
            "kafka.group_id": self.group,
            "learner.model": c.model,
            "learner.strategy": c.strategy,
            "learner.budget": c.budget,
            "learner.rate": c.label_rate,
            "learner.seed": c.seed,
            # Queries leave at each checkpoint: checkpoint often so that they flow at once.
            "checkpoint.interval": 0.5,
            "checkpoint.every": 200,
            "service.http_host": "127.0.0.1",
            "service.max_batch": 100,
            **{f"kafka.{k}": v for k, v in FAST_GROUPS.items()},
        }
        args = [
            sys.executable,
            "-m",
            "streamal",
            "serve",
            "--bootstrap-servers",
            self.bootstrap,
            "--checkpoint-dir",
            str(self._dir / "state"),
            "--http-port",
            str(self.port),
        ]
        for key, value in sets.items():
            args += ["--set", f"{key}={json.dumps(value) if not isinstance(value, str) else value}"]
        log = (self._dir / "service.log").open("wb")
        self._closers.append(log.close)
        on_main = threading.current_thread() is threading.main_thread()
        self.service = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent if sys.platform == "linux" and on_main else None,
        )
        deadline = time.monotonic() + READY_TIMEOUT
        url = f"http://127.0.0.1:{self.port}/readyz"
        while time.monotonic() < deadline:
            if self.service.poll() is not None:
                raise StreamalError(
                    f"the service exited with code {self.service.returncode}:\n"
                    + self.service_log_tail()
                )
            try:
                with urllib.request.urlopen(url, timeout=1.0) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise TransportError(
            f"the service was not ready after {READY_TIMEOUT:.0f} s:\n" + self.service_log_tail()
        )

    def start_clients(self) -> None:
        """Start the monitor, the oracle and the producer."""
        from streamal.annotators import OracleAnswerer
        from streamal.cli.companions_cmd import make_sink, seconds_delay
        from streamal.companions import FromStart, answer_queries, produce
        from streamal.oracle import SimulatedOracle
        from streamal.sources import open_source

        c = self.config
        samples = list(open_source(c.source, seed=c.seed))[: c.limit]
        self._truth = {s.id: s.y for s in samples}
        self.progress.total = len(samples)
        self._monitor = self._source("monitor")
        self._closers.append(self._monitor.close)
        self._monitor.subscribe(
            [self.topics[k] for k in ("predictions", "queries", "labels")],
            FromStart(self._monitor, from_beginning=True),
        )
        oracle = SimulatedOracle(seconds_delay(c.delay), noise=c.noise, seed=c.seed)
        answerer = OracleAnswerer(self._truth, oracle)
        self._oracle_waiting = answerer.waiting
        source, oracle_sink = self._source("oracle"), make_sink(self._settings("oracle"))
        self._spawn(
            "oracle",
            lambda: answer_queries(
                source,
                oracle_sink,
                self.topics["queries"],
                self.topics["labels"],
                answerer,
                should_stop=self._stop.is_set,
            ),
            source.close,
            lambda: oracle_sink.close(5.0),
        )
        producer = make_sink(self._settings("producer"))

        def feed() -> None:
            # One sample first: stream the rest once the service has decided it and the
            # annotator has joined its group, so that no sample waits for a group join.
            produce(samples[:1], producer, self.topics["samples"], on_sent=self._sent)
            deadline = time.monotonic() + READY_TIMEOUT
            while not (self.progress.decided and source.assignment()):
                if self._stop.wait(0.05) or time.monotonic() > deadline:
                    return
            self._streaming.set()
            produce(
                samples[1:],
                producer,
                self.topics["samples"],
                rate=c.rate or None,
                on_sent=lambda n: self._sent(n + 1),
                should_stop=self._stop.is_set,
            )
            self._produced_all.set()

        self._spawn("producer", feed, lambda: producer.close(5.0))

    # -- run -------------------------------------------------------------------------
    def watch(self, on_progress: Callable[[DemoProgress], None]) -> DemoProgress:
        """Follow the run until every sample is decided and every label learned."""
        p, started, seen_queries = self.progress, time.monotonic(), set()
        last_scrape, received = 0.0, 0.0
        asked_at: dict[str, int] = {}  # sample id -> samples decided when it was queried
        while True:
            if self._errors:
                raise self._errors[0]
            if self.service is not None and self.service.poll() is not None:
                raise StreamalError(
                    f"the service stopped (code {self.service.returncode}):\n"
                    + self.service_log_tail()
                )
            for env in self._monitor.poll(2000, TICK):
                if env.topic == self.topics["predictions"]:
                    pred = json.loads(env.value or b"{}")
                    p.decided += 1
                    p.correct += pred.get("prediction") == self._truth.get(pred.get("sample_id"))
                    if pred.get("queried"):
                        asked_at[pred["sample_id"]] = p.decided
                elif env.topic == self.topics["queries"]:
                    seen_queries.add(env.key)
                    p.queries = len(seen_queries)
                else:
                    p.labels += 1
                    asked = asked_at.pop((env.key or b"").decode(), None)
                    if asked is not None:
                        p.delay_sum += p.decided - asked
                        p.delayed += 1
            now = time.monotonic()
            if now - last_scrape >= 0.5:
                p.metrics = scrape(self.metrics_url) or p.metrics
                p.learned = int(p.metrics.get('streamal_learner_events{event="applied"}', 0))
                p.model_version = int(p.metrics.get("streamal_model_version", 0))
                received = sum(
                    v for k, v in p.metrics.items() if k.startswith("streamal_labels_total{")
                )
                last_scrape = now
            p.elapsed = now - started
            p.phase = (
                "draining"
                if self._produced_all.is_set()
                else "streaming"
                if self._streaming.is_set()
                else "joining"
            )
            done = (
                self._produced_all.is_set()
                and p.decided >= p.produced
                and self._oracle_waiting() == 0
                and p.labels >= p.queries
                and received >= p.labels
            )
            on_progress(p)
            if done:
                p.phase = "done"
                return p
            if p.elapsed > self.config.timeout:
                raise StreamalError(f"the demo did not finish within {self.config.timeout:.0f} s")

    # -- stop ------------------------------------------------------------------------
    def close(self, failed: bool = False) -> None:
        """Stop everything started, newest first; keep the files if asked or on failure."""
        self._stop.set()
        for thread in self._threads:
            thread.join(10.0)
        if self.service is not None and self.service.poll() is None:
            self.service.send_signal(signal.SIGTERM)
            try:
                self.service.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.service.kill()
                self.service.wait()
        for closer in reversed(self._closers):
            try:
                closer()
            except (StreamalError, OSError):
                pass
        if self.broker is not None:
            self.broker.stop()
        if self.workdir is None and not failed:
            shutil.rmtree(self._dir, ignore_errors=True)

    def service_log_tail(self, lines: int = 15) -> str:
        path = self._dir / "service.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:]) + f"\n(log: {path})"

    # -- helpers ---------------------------------------------------------------------
    def _client(self) -> dict[str, Any]:
        return {"bootstrap_servers": self.bootstrap}

    def _settings(self, role: str) -> Any:
        from streamal.service.config import load_settings

        group = f"{self.group}-{role}"
        kafka = {"bootstrap_servers": self.bootstrap, "group_id": group, "client_id": group}
        return load_settings(overrides={"kafka": {**kafka, **FAST_GROUPS}})

    def _source(self, role: str) -> Any:
        from streamal.service.factory import kafka_client_options
        from streamal.transports.kafka import KafkaSource

        settings = self._settings(role)
        return KafkaSource(
            kafka_client_options(settings.kafka), settings.kafka.group_id, FAST_GROUPS
        )

    def _sent(self, n: int) -> None:
        self.progress.produced = n

    def _spawn(self, name: str, target: Callable[[], Any], *closers: Callable[[], None]) -> None:
        def run() -> None:
            try:
                target()
            except BaseException as err:  # reported by watch() on the main thread
                self._errors.append(err)

        thread = threading.Thread(target=run, name=f"streamal-demo-{name}", daemon=True)
        self._closers.extend(closers)
        self._threads.append(thread)
        thread.start()
