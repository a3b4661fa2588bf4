"""Scale-out: N ``streamal serve`` instances in group mode against one, through a real broker.

A local tansu broker (:class:`streamal.dev.broker.LocalBroker`) holds a samples topic of
``--partitions`` partitions, pre-filled with ``--samples`` unlabelled samples of a
synthetic stream (Agrawal), spread evenly over the partitions. For each round and each
instance count N (alternating, so that load from other processes hits every N alike),
with a fresh consumer group and fresh queries, labels and state topics:

* N ``streamal serve`` processes start with ``group.enabled`` on and the model of the
  ``--regime``, warmed from the same 2,000 labelled samples (a ``learner.warm_start``
  file), each with its own checkpoint directory and HTTP port;
* an oracle thread in this process answers every query at once with the stream's true
  label (so every instance learns every label: the fan-out), unless ``--no-labels``. It
  is cheap: it reads the sample id from the query's key (no JSON parsing) and looks the
  encoded label up in a dict (every answer is encoded before anything is timed: in
  production the oracle runs elsewhere, here it shares the two cores with the instances).

Two CPU-bound regimes (``--regime``), both of which the cost law below covers:

* ``arf`` (default): the default model, an adaptive random forest. Learning a label
  costs several decisions (measured ``t_d`` = 98 µs, ``t_l`` = 636 µs), so with
  ``b = 0.1`` the fan-out of labels caps what a second instance adds (law: 1.43×).
* ``knn``: the ``knn`` model spec (k nearest neighbours among the last 500 labelled
  samples). Deciding dominates (a prediction compares the sample with 500 kept ones),
  learning a label only appends it, so the law predicts close to 2× for two instances:
  what group mode can give when decisions are the work.

The samples are all produced before anything is timed, so no producer competes with the
instances for the CPU.
* this process scrapes every instance's ``/metrics`` every 0.25 s. Once the group is
  stable (every partition owned, every instance deciding), it times a window of
  ``--window`` seconds: the **aggregate decided samples per second** is the growth of
  ``streamal_partition_samples_total`` summed over the instances, divided by the window.
  When the instances decide the whole backlog before the group is stable (some joined
  late on a loaded machine), there is nothing to time: the run is repeated with a fresh
  group, up to three times (``attempts`` in the results).

Also recorded per run: the labels each instance learned in the window
(``streamal_model_version``), and the CPU seconds (``/proc``) the instances, the broker
and this process (the oracle) spent in the window, per 1,000 samples decided: the
broker's cost per sample and the fan-out. From the instances' CPU comes a second rate,
``core_each_per_s``: the decided samples over the busiest instance's CPU seconds, what
the group would decide if each instance had a core of its own and nothing else ran (on
a shared or small machine the measured rate falls short of it; the law below bounds
it). A ``single`` run learns its labels through the samples consumer: with the
pre-filled backlog it may learn few or none in the window
(``labels_learned_per_instance``), so its rate is not the cost of the same work; compare
group runs.

In-process, the script times the model's two costs that decide how far N can go: a
decision (``ActiveLearner.process``) and a learned label (``ActiveLearner.learn``), on
the same warmed model. With ``t_d`` and ``t_l`` and a label rate ``b``, each instance
spends ``t_d / N + b·t_l`` of CPU per sample of the whole stream, so the aggregate
throughput of N instances (one core each) is at most ``1 / (t_d / N + b·t_l)``, and
never more than ``1 / (b·t_l)``.

Usage::

    python benchmarks/scale.py [--regime arf|knn] [--instances single,1,2] [--rounds 2]
                               [--window 20] [--rate 0.1] [--quick] [--json FILE]

Needs the group mode (``group.enabled``); run it ``nice``'d on a quiet machine: every
instance wants a core of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, materialize  # noqa: E402

from streamal.messages import Label, Sample, encode  # noqa: E402

SEED = 1
#: The model of each CPU-bound regime (``--regime``).
REGIMES = {"arf": "arf", "knn": "knn"}
STREAM = "synth:Agrawal"
WARM = 2000
#: Consumer settings that let a tansu group join and rebalance in seconds.
KAFKA = {
    "STREAMAL_KAFKA__SESSION_TIMEOUT_MS": "6000",
    "STREAMAL_KAFKA__HEARTBEAT_INTERVAL_MS": "500",
    "STREAMAL_KAFKA__MAX_POLL_INTERVAL_MS": "60000",
}
PRODUCER = {"enable_idempotence": False, "acks": 1, "linger_ms": 5, "batch_size": 262_144}
SCRAPE_EVERY = 0.25
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def scrape(port: int) -> dict[str, float]:
    """The group metrics of one instance (sums over their labels); empty if unreachable."""
    from prometheus_client.parser import text_string_to_metric_families

    wanted = {
        "streamal_partition_samples_total": "samples",
        "streamal_partition_queries_total": "queries",
        "streamal_partitions_assigned": "assigned",
        "streamal_model_version": "version",
        "streamal_catch_up_seconds": "catch_up",
        "streamal_samples_total": "all_samples",
    }
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as reply:
            text = reply.read().decode()
    except OSError:
        return {}
    out = dict.fromkeys(wanted.values(), 0.0)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in wanted:
                out[wanted[s.name]] += s.value
    return out


class Oracle(threading.Thread):
    """Answers every query on ``queries`` at once with the true label."""

    def __init__(self, bootstrap: str, queries: str, labels: str, answers: dict[bytes, bytes]):
        super().__init__(daemon=True)
        self.bootstrap, self.queries, self.labels = bootstrap, queries, labels
        self.answers = answers  # sample id (the query's key) -> the encoded label
        self.stop = threading.Event()
        self.answered = 0

    def run(self) -> None:
        from kafka import KafkaConsumer, KafkaProducer

        consumer = KafkaConsumer(
            self.queries,
            bootstrap_servers=self.bootstrap,
            group_id=f"oracle-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=6000,
            heartbeat_interval_ms=500,
        )
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, **PRODUCER)
        answered: set[bytes] = set()
        try:
            while not self.stop.is_set():
                for records in consumer.poll(timeout_ms=200, max_records=1000).values():
                    for record in records:
                        sid = record.key  # the query's key is its sample id
                        if sid in answered:  # a query republished after a partition moved
                            continue
                        answered.add(sid)
                        producer.send(self.labels, self.answers[sid], key=sid)
                        self.answered += 1
                producer.flush(10)
        finally:
            producer.close(5)
            consumer.close(autocommit=False)


def fill(bootstrap: str, topic: str, samples: list[Sample], partitions: int) -> None:
    """Append ``samples`` (without labels) round-robin over the partitions."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, **PRODUCER)
    for i, s in enumerate(samples):
        value = encode(Sample(id=s.id, x=s.x))
        producer.send(topic, value, key=s.id.encode(), partition=i % partitions)
    producer.flush(120)
    producer.close(10)


@contextmanager
def instances(n: int, env: dict[str, str], workdir: Path) -> Iterator[list[tuple[Any, int]]]:
    """``n`` ``streamal serve`` processes in one group: (process, HTTP port) each."""
    from streamal.dev.broker import free_port

    procs: list[tuple[Any, int]] = []
    try:
        for i in range(n):
            port = free_port()
            state = workdir / f"instance-{i}"
            state.mkdir()
            penv = {
                **os.environ,
                **env,
                "STREAMAL_GROUP__INSTANCE_ID": f"bench-{i}",
                "STREAMAL_CHECKPOINT__DIR": str(state),
                "STREAMAL_SERVICE__HTTP_PORT": str(port),
            }
            log = open(workdir / f"instance-{i}.log", "wb")  # noqa: SIM115 (closed below)
            proc = subprocess.Popen(
                [sys.executable, "-m", "streamal", "serve"],
                env=penv,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
            procs.append((proc, port))
        yield procs
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


class BrokerGone(RuntimeError):
    """The broker process exited during a run (the instances could not settle without it)."""


class DrainedFirst(RuntimeError):
    """The instances read the whole topic before the group was stable: nothing to time.

    Some instances were assigned late (a slow start or join on a loaded machine) and the
    others decided every sample meanwhile. The run is repeated with a fresh group.
    """


#: Runs of one configuration, at most, that drain the topic before the group is stable.
ATTEMPTS = 3


def run_once(
    n: int,
    single: bool,
    bootstrap: str,
    broker_pid: int,
    samples_topic: str,
    partitions: int,
    total: int,
    answers: dict[bytes, bytes],
    warm_file: Path,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """One timed run of ``n`` instances; the measurement of the window.

    ``single``: one instance in the single-instance mode (``group.enabled`` off), the
    baseline of what group mode costs; its decisions are ``streamal_samples_total``.
    """
    from streamal.transports.admin import create_topics

    tag = uuid.uuid4().hex[:8]
    topics = {k: f"{k}-{tag}" for k in ("labels", "queries", "dead_letters", "state")}
    create_topics({"bootstrap_servers": bootstrap}, list(topics.values()))
    env = {
        "STREAMAL_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "STREAMAL_KAFKA__GROUP_ID": f"scale-{tag}",
        **KAFKA,
        "STREAMAL_TOPICS__SAMPLES": samples_topic,
        "STREAMAL_TOPICS__LABELS": topics["labels"],
        "STREAMAL_TOPICS__QUERIES": topics["queries"],
        "STREAMAL_TOPICS__DEAD_LETTERS": topics["dead_letters"],
        "STREAMAL_GROUP__ENABLED": "false" if single else "true",
        "STREAMAL_GROUP__STATE_TOPIC": topics["state"],
        "STREAMAL_LEARNER__MODEL": args.model,
        "STREAMAL_LEARNER__RATE": str(args.rate),
        "STREAMAL_LEARNER__SEED": str(SEED),
        "STREAMAL_LEARNER__WARM_START": str(warm_file),
        "STREAMAL_SERVICE__LOG_LEVEL": "WARNING",
    }
    oracle = None
    if args.labels:
        oracle = Oracle(bootstrap, topics["queries"], topics["labels"], answers)
        oracle.start()
    me = os.getpid()
    key = "all_samples" if single else "samples"
    with tempfile.TemporaryDirectory() as tmp, instances(n, env, Path(tmp)) as procs:
        started = time.monotonic()
        deadline = started + args.settle
        last = [scrape(port) for _, port in procs]
        stable = False
        while time.monotonic() < deadline:
            time.sleep(SCRAPE_EVERY)
            dead = [p.returncode for p, _ in procs if p.poll() is not None]
            if dead:
                logs = "\n".join(p.read_text()[-2000:] for p in Path(tmp).glob("*.log"))
                raise RuntimeError(f"an instance exited ({dead}):\n{logs}")
            now = [scrape(port) for _, port in procs]
            stable = (
                all(m for m in now)
                and (single or all(m["assigned"] >= 1 for m in now))
                and (single or sum(m["assigned"] for m in now) == partitions)
                and all(
                    m[key] > (old.get(key, 0.0) if old else 0.0)
                    for m, old in zip(now, last, strict=True)
                )
            )
            last = now
            if stable:
                break
        if not stable:
            # Say why: an instance without partitions, or one whose count stopped (the
            # topic drained before the group settled: more --samples).
            seen = [((m or {}).get("assigned"), (m or {}).get(key)) for m in last]
            logs = "\n".join(p.read_text()[-2000:] for p in Path(tmp).glob("*.log"))
            drained = all(last) and sum(m[key] for m in last) >= total
            raise (DrainedFirst if drained else RuntimeError)(
                f"{n} instance(s) did not settle in {args.settle} s "
                f"((assigned, {key}) per instance: {seen}; {total} samples):\n{logs}"
            )
        settle_s = time.monotonic() - started
        pids = [p.pid for p, _ in procs]
        t0 = time.perf_counter()
        first = [scrape(port) for _, port in procs]
        cpu0 = [cpu_seconds(pid) for pid in pids], cpu_seconds(broker_pid), cpu_seconds(me)
        time.sleep(args.window)
        t1 = time.perf_counter()
        end = [scrape(port) for _, port in procs]
        cpu1 = [cpu_seconds(pid) for pid in pids], cpu_seconds(broker_pid), cpu_seconds(me)
        assigned = [m["assigned"] for m in end]
    if oracle is not None:
        oracle.stop.set()
        oracle.join(30)
    seconds = t1 - t0
    decided = sum(e[key] - f[key] for e, f in zip(end, first, strict=True))
    queried = sum(e["queries"] - f["queries"] for e, f in zip(end, first, strict=True))
    done = sum(e[key] for e in end)
    per_k = 1000 / decided if decided else float("nan")
    instance_cpu = [b - a for a, b in zip(cpu0[0], cpu1[0], strict=True)]
    return {
        "instances": n,
        "mode": "single" if single else "group",
        "window_s": seconds,
        "settle_s": settle_s,
        "decided_before_window": sum(f[key] for f in first),
        "decided": decided,
        "decided_per_s": decided / seconds,
        # What the group would decide a second if every instance had a core of its own
        # and nothing else ran: the busiest instance's CPU bounds it.
        "core_each_per_s": decided / max(instance_cpu) if max(instance_cpu) > 0 else None,
        "queried": None if single else queried,
        "ran_out": done >= total,
        "assigned_at_end": assigned,
        "labels_learned_per_instance": [
            e["version"] - f["version"] for e, f in zip(end, first, strict=True)
        ],
        "model_version_at_end": [e["version"] for e in end],
        "catch_up_s": [e["catch_up"] for e in end],
        "cpu_s": {
            "instances": instance_cpu,
            "broker": cpu1[1] - cpu0[1],
            "bench_and_oracle": cpu1[2] - cpu0[2],
        },
        "cpu_s_per_1000_samples": {
            "instances": sum(instance_cpu) * per_k,
            "broker": (cpu1[1] - cpu0[1]) * per_k,
            "bench_and_oracle": (cpu1[2] - cpu0[2]) * per_k,
        },
        "oracle_answered": None if oracle is None else oracle.answered,
        "load_1m": os.getloadavg()[0],
    }


def model_costs(stream: list[Sample], warm: list[Sample], args: argparse.Namespace) -> Any:
    """Microseconds of a decision and of a learned label on the warmed model (in-process)."""
    from streamal.defaults import DEFAULT_BUDGET, DEFAULT_STRATEGY
    from streamal.offline.replay import build_learner

    learner = build_learner(args.model, DEFAULT_STRATEGY, DEFAULT_BUDGET, args.rate, SEED)
    learner.warm_start(warm)
    decide_s = learn_s = 0.0
    decisions = learned = 0
    for s in stream[: args.cost_samples]:
        t = time.perf_counter()
        queried = learner.process(Sample(id=s.id, x=s.x)).queried
        decide_s += time.perf_counter() - t
        decisions += 1
        if queried and s.y is not None:
            label = Label(sample_id=s.id, y=s.y)
            t = time.perf_counter()
            learner.learn(label)
            learn_s += time.perf_counter() - t
            learned += 1
    return {
        "decisions": decisions,
        "labels": learned,
        "decision_us": 1e6 * decide_s / decisions,
        "label_us": 1e6 * learn_s / learned if learned else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--instances",
        default="single,1,2",
        help="instance counts in group mode, and `single` for one instance in the "
        "single-instance mode (the baseline of group mode's own cost)",
    )
    parser.add_argument("--rounds", type=int, default=2, help="rounds (each runs every count)")
    parser.add_argument("--partitions", type=int, default=4, help="samples topic partitions")
    parser.add_argument("--samples", type=int, default=150_000, help="samples pre-filled")
    parser.add_argument("--window", type=float, default=20.0, help="seconds timed per run")
    parser.add_argument("--settle", type=float, default=120.0, help="most seconds to settle")
    parser.add_argument(
        "--regime",
        choices=sorted(REGIMES),
        default="arf",
        help="the CPU-bound model: arf (learning a label costs several decisions; the "
        "fan-out of labels limits N) or knn (deciding dominates, learning is cheap; the "
        "law predicts close to N x)",
    )
    parser.add_argument("--model", help="a model spec instead of the regime's")
    parser.add_argument("--rate", type=float, default=0.1, help="label rate b")
    parser.add_argument(
        "--cost-samples", type=int, default=3000, help="samples for the in-process t_d and t_l"
    )
    parser.add_argument(
        "--no-labels", dest="labels", action="store_false", help="no oracle (no learning)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    args.model = args.model or REGIMES[args.regime]
    if args.quick:
        args.rounds, args.samples, args.window, args.cost_samples = 1, 80_000, 3.0, 300
    runs_of = [c.strip() for c in args.instances.split(",")]
    counts = [1 if c == "single" else int(c) for c in runs_of]
    if max(counts) > args.partitions:
        parser.error("--partitions must be at least the largest instance count")

    from streamal.dev.broker import LocalBroker
    from streamal.transports.admin import create_topics

    data = materialize(f"{STREAM}:n={args.samples + WARM}", SEED, args.samples + WARM)
    warm, stream = data[:WARM], data[WARM:]
    answers = {
        s.id.encode(): encode(Label(sample_id=s.id, y=s.y)) for s in stream if s.y is not None
    }
    costs = model_costs(stream, warm, args)
    print(f"model costs: {costs}", file=sys.stderr)
    runs: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalBroker(log_path=Path(tmp) / "broker.log") as broker,
    ):
        warm_file = Path(tmp) / "warm.jsonl"
        with warm_file.open("w") as fh:
            for s in warm:
                fh.write(encode(s).decode() + "\n")
        bootstrap = broker.bootstrap
        samples_topic = f"samples-{uuid.uuid4().hex[:8]}"
        create_topics({"bootstrap_servers": bootstrap}, [samples_topic], args.partitions)
        fill(bootstrap, samples_topic, stream, args.partitions)
        assert broker.pid is not None
        for r in range(args.rounds):
            for name, n in zip(runs_of, counts, strict=True):
                for attempt in range(1, ATTEMPTS + 1):
                    try:
                        run = run_once(
                            n,
                            name == "single",
                            bootstrap,
                            broker.pid,
                            samples_topic,
                            args.partitions,
                            len(stream),
                            answers,
                            warm_file,
                            args,
                        )
                        break
                    except RuntimeError as err:
                        if not broker.running:
                            log = (Path(tmp) / "broker.log").read_text(errors="replace")[-3000:]
                            raise BrokerGone(
                                f"{err}; the broker exited during the run:\n{log}"
                            ) from err
                        if not isinstance(err, DrainedFirst) or attempt == ATTEMPTS:
                            raise
                        print(
                            f"round {r}, {name}: the topic drained before the group was "
                            f"stable; again with a fresh group ({attempt}/{ATTEMPTS})",
                            file=sys.stderr,
                        )
                run["round"], run["attempts"] = r, attempt
                runs.append(run)
                print(
                    f"round {r}, {name}: {run['decided_per_s']:.0f} samples/s "
                    f"(labels learned per instance {run['labels_learned_per_instance']}, "
                    f"cpu/1000 samples {run['cpu_s_per_1000_samples']}, load "
                    f"{os.getloadavg()[0]:.1f})",
                    file=sys.stderr,
                )

    def name_of(run: dict[str, Any]) -> str:
        return "single" if run["mode"] == "single" else str(run["instances"])

    by_name = {c: [r["decided_per_s"] for r in runs if name_of(r) == c] for c in runs_of}
    medians = {c: statistics.median(v) for c, v in by_name.items()}
    base_name = "1" if "1" in medians else runs_of[0]
    base = medians[base_name]
    # Each round's N-instance rate over the same round's one-instance rate (group mode).
    ratios = {
        c: [
            r["decided_per_s"] / one["decided_per_s"]
            for r in runs
            if name_of(r) == c
            for one in runs
            if name_of(one) == "1" and one["round"] == r["round"]
        ]
        for c in runs_of
    }
    core_each = {
        c: statistics.median(
            r["core_each_per_s"] for r in runs if name_of(r) == c and r["core_each_per_s"]
        )
        for c in runs_of
    }
    b = args.rate
    t_d, t_l = costs["decision_us"] / 1e6, costs["label_us"] / 1e6
    result = {
        "machine": machine(),
        "settings": {k: v for k, v in vars(args).items() if k != "json"} | {"stream": STREAM},
        "model_costs": costs,
        "bound_per_s": {str(n): 1 / (t_d / n + b * t_l) for n in sorted({*counts, 4, 8, 16})},
        "bound_limit_per_s": 1 / (b * t_l),
        "median_decided_per_s": medians,
        "speedup": {c: v / base for c, v in medians.items()},
        "speedup_per_round": ratios,
        "median_core_each_per_s": core_each,
        "core_each_speedup": {c: v / core_each[base_name] for c, v in core_each.items()},
        "runs": runs,
    }
    shown = ("median_decided_per_s", "speedup", "speedup_per_round", "core_each_speedup")
    print(json.dumps({k: result[k] for k in shown}))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
