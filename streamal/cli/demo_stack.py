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
import os
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamal import defaults
from streamal.cli.demo_progress import DemoProgress, ProgressTracker, scrape
from streamal.exceptions import StreamalError, TransportError

__all__ = ["DemoConfig", "DemoStack"]

#: How long the service may take to import, restore and answer ``/readyz``.
READY_TIMEOUT = 60.0
#: Graceful stop of the service: SIGTERM, final checkpoint; SIGKILL after this.
STOP_TIMEOUT = 20.0
#: Monitor poll wait, which is also the refresh period of the progress display.
TICK = 0.2
#: Seconds between two reads of the service's /metrics while watching.
SCRAPE_EVERY = 0.5
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
            from streamal.dev.broker import LocalBroker

            self.broker = LocalBroker(log_path=self._dir / "broker.log").start()
        create_topics(self._client(), list(self.topics.values()))

    def start_service(self) -> None:
        """Run ``streamal serve`` in a subprocess and wait until ``/readyz`` says ready."""
        from streamal.dev.broker import die_with_parent, free_port

        c, t = self.config, self.topics
        self.port = c.http_port or free_port()
        sets = {
            **{f"topics.{role}": name for role, name in t.items()},
            "kafka.group_id": self.group,
            **{f"kafka.{k}": v for k, v in FAST_GROUPS.items()},
            "learner.model": c.model, "learner.strategy": c.strategy, "learner.budget": c.budget,
            "learner.rate": c.label_rate, "learner.seed": c.seed,
            # Queries leave at each checkpoint: checkpoint often so that they flow at once.
            "checkpoint.interval": 0.5, "checkpoint.every": 200,
            "service.http_host": "127.0.0.1", "service.max_batch": 100,
        }  # fmt: skip
        args = [
            sys.executable, "-m", "streamal", "serve", "--bootstrap-servers", self.bootstrap,
            "--checkpoint-dir", str(self._dir / "state"), "--http-port", str(self.port),
        ]  # fmt: skip
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
            env=self._env(),
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
        from streamal.cli.companions_cmd import make_sink, seconds_delay
        from streamal.companions.annotators import OracleAnswerer
        from streamal.companions.loops import FromStart, answer_queries, produce
        from streamal.offline.oracle import SimulatedOracle
        from streamal.offline.streams import open_source

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
        p, started = self.progress, time.monotonic()
        tracker = ProgressTracker(p, self.topics, self._truth)
        last_scrape = 0.0
        while True:
            if self._errors:
                raise self._errors[0]
            if self.service is not None and self.service.poll() is not None:
                raise StreamalError(
                    f"the service stopped (code {self.service.returncode}):\n"
                    + self.service_log_tail()
                )
            for env in self._monitor.poll(2000, TICK):
                tracker.observe(env)
            now = time.monotonic()
            if now - last_scrape >= SCRAPE_EVERY:
                tracker.observe_metrics(scrape(self.metrics_url))
                last_scrape = now
            p.elapsed = now - started
            produced_all = self._produced_all.is_set()
            p.phase = (
                "draining" if produced_all else "streaming" if self._streaming.is_set()
                else "joining"
            )  # fmt: skip
            on_progress(p)
            if produced_all and tracker.settled(self._oracle_waiting()):
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
        from streamal.service.config import KafkaSettings, Settings, load_settings

        group = f"{self.group}-{role}"
        kafka: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap, "group_id": group, "client_id": group,
            **FAST_GROUPS,
        }  # fmt: skip
        if self.config.bootstrap_servers is None:  # local tansu: ignore STREAMAL_* settings
            return Settings.model_construct(kafka=KafkaSettings.model_validate(kafka))
        return load_settings(overrides={"kafka": kafka})  # e.g. SASL settings apply

    def _env(self) -> dict[str, str]:
        """The service's environment: without ``STREAMAL_*`` variables on local tansu."""
        if self.config.bootstrap_servers is not None:
            return dict(os.environ)
        return {k: v for k, v in os.environ.items() if not k.startswith("STREAMAL_")}

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
