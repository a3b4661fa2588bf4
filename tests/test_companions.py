"""Companion commands: produce, record, the annotator loop and its answerers.

The first half runs on the in-memory transports; the ``kafka`` tests at the end run the
real ``streamal produce/record/oracle/annotate`` commands in subprocesses against tansu.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streamal.companions import answer_queries, produce, record
from streamal.companions.annotators import HumanAnswerer, OracleAnswerer, coerce_label
from streamal.messages import Query, Sample, decode_label, decode_sample, encode
from streamal.offline.oracle import SimulatedOracle
from streamal.offline.streams import open_source
from streamal.transports import MemoryBroker, MemorySink, MemorySource


def _samples(n: int) -> list[Sample]:
    return [Sample(id=str(i), x={"a": float(i)}, y=i % 2 == 0) for i in range(n)]


def _query(sample_id: str, prediction: Any = True) -> Query:
    return Query(
        sample_id=sample_id,
        x={"a": 1.0},
        prediction=prediction,
        score=0.5,
        strategy="entropy",
        model_version=1,
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


# -- produce ------------------------------------------------------------------------------


def test_produce_strips_labels_keys_by_id_and_keeps_order() -> None:
    broker = MemoryBroker()
    assert produce(_samples(5), MemorySink(broker), "s") == 5
    records = broker.records("s")
    assert [r.key for r in records] == [str(i).encode() for i in range(5)]
    decoded = [decode_sample(r.value or b"") for r in records]
    assert [s.id for s in decoded] == ["0", "1", "2", "3", "4"]
    assert all(s.y is None for s in decoded)


def test_produce_can_keep_labels_and_stop_at_a_limit() -> None:
    broker = MemoryBroker()
    assert produce(_samples(10), MemorySink(broker), "s", keep_y=True, limit=3) == 3
    assert [decode_sample(v or b"").y for v in broker.values("s")] == [True, False, True]


def test_produce_paces_to_the_rate_without_drifting() -> None:
    clock = FakeClock()
    sent_at: list[float] = []
    produce(
        _samples(11),
        MemorySink(MemoryBroker()),
        "s",
        rate=5.0,
        on_sent=lambda n: sent_at.append(clock.now),
        clock=clock,
        sleep=clock.sleep,
    )
    # Message i leaves at i / rate: 10 gaps of 0.2 s, whatever the send itself costs.
    assert sent_at == pytest.approx([i / 5.0 for i in range(11)])
    assert sum(clock.slept) == pytest.approx(2.0)


def test_produce_without_rate_never_sleeps() -> None:
    clock = FakeClock()
    produce(_samples(50), MemorySink(MemoryBroker()), "s", clock=clock, sleep=clock.sleep)
    assert clock.slept == []


# -- record -------------------------------------------------------------------------------


def test_record_writes_one_json_object_per_line_and_skips_the_rest() -> None:
    broker = MemoryBroker()
    for value in [b'{"id": "1", "x": {}}', b"not json", b"[1, 2]", b'{"id": "2", "x": {}}']:
        broker.produce("t", value)
    out = io.StringIO()
    written, skipped = record(MemorySource(broker, group="rec"), "t", out, idle=0.05)
    assert (written, skipped) == (2, 2)
    lines = out.getvalue().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["1", "2"]
    assert "rec" not in broker.committed  # recording never moves a group


def test_record_keeps_the_headers_of_dead_letters() -> None:
    from streamal.service.outputs import dead_letter
    from streamal.transports import Envelope

    broker = MemoryBroker()
    poison = Envelope("streamal.samples", 0, 7, b"k", b'{"id": "p", "x": ')
    value, headers = dead_letter(poison, "invalid_json", "not valid JSON", 1000)
    broker.produce("dl", value, key=b"k", headers=headers)
    broker.produce("dl", b'{"id": "q", "x": {"a": [1]}}', headers=[("streamal.reason", b"x")])
    broker.produce("dl", b'{"plain": 1}')
    out = io.StringIO()
    assert record(MemorySource(broker, group="rec"), "dl", out, idle=0.05) == (3, 0)
    first, second, third = (json.loads(line) for line in out.getvalue().splitlines())
    assert first == {
        "headers": {
            "streamal.reason": "invalid_json",
            "streamal.error": "not valid JSON",
            "streamal.source": "streamal.samples/0/7",
        },
        "value": '{"id": "p", "x": ',
    }
    assert second["value"] == {"id": "q", "x": {"a": [1]}}
    assert third == {"plain": 1}
    out = io.StringIO()
    source = MemorySource(broker, group="rec2")
    assert record(source, "dl", out, idle=0.05, headers=False) == (2, 1)
    out = io.StringIO()
    assert record(MemorySource(broker, group="rec3"), "dl", out, idle=0.05, headers=True)[0] == 3
    assert json.loads(out.getvalue().splitlines()[2]) == {"headers": {}, "value": {"plain": 1}}


def test_record_reads_from_the_beginning_even_past_committed_offsets() -> None:
    broker = MemoryBroker()
    for i in range(4):
        broker.produce("t", json.dumps({"n": i}).encode())
    broker.committed["g"] = {("t", 0): 3}
    out = io.StringIO()
    assert record(MemorySource(broker, group="g"), "t", out, count=2)[0] == 2
    assert [json.loads(x)["n"] for x in out.getvalue().splitlines()] == [0, 1]


# -- the annotator loop -------------------------------------------------------------------


def _oracle_run(queries: list[bytes], answerer: Any, **kwargs: Any) -> tuple[MemoryBroker, Any]:
    broker = MemoryBroker()
    for q in queries:
        broker.produce("q", q)
    source = MemorySource(broker, group="oracle")
    stats = answer_queries(source, MemorySink(broker), "q", "l", answerer, **kwargs)
    return broker, stats


def test_oracle_answers_known_samples_and_commits_everything_handled() -> None:
    truth = {"1": "spam", "2": "ham"}
    queries = [encode(_query("1")), b"garbage", encode(_query("404")), encode(_query("2"))]
    broker, stats = _oracle_run(queries, OracleAnswerer(truth, SimulatedOracle("0s")), count=4)
    labels = [decode_label(v or b"") for v in broker.values("l")]
    assert [(lb.sample_id, lb.y, lb.annotator) for lb in labels] == [
        ("1", "spam", "oracle"),
        ("2", "ham", "oracle"),
    ]
    assert (stats.queries, stats.labels, stats.unanswered, stats.undecodable) == (4, 2, 1, 1)
    assert broker.committed["oracle"] == {("q", 0): 4}


def test_oracle_waits_its_delay_in_wall_time() -> None:
    clock = FakeClock()
    answerer = OracleAnswerer({"1": 1, "2": 0}, SimulatedOracle("5s"), clock=clock)
    assert answerer.ask(_query("1")) and answerer.due() == []
    clock.now = 3.0
    assert answerer.ask(_query("2"))
    clock.now = 4.9
    assert answerer.due() == [] and answerer.waiting() == 2
    clock.now = 5.0
    assert [lb.sample_id for lb in answerer.due()] == ["1"]
    clock.now = 8.0
    assert [lb.sample_id for lb in answerer.due()] == ["2"] and answerer.waiting() == 0


def test_oracle_noise_flips_about_its_share_of_labels_reproducibly() -> None:
    def flipped(seed: int) -> list[bool]:
        truth = {str(i): i % 2 for i in range(2000)}
        answerer = OracleAnswerer(truth, SimulatedOracle("0s", noise=0.2, seed=seed))
        out = []
        for sid, y in truth.items():
            answerer.ask(_query(sid, prediction=0))
            out.append(answerer.due()[0].y != y)
        return out

    first = flipped(7)
    assert 0.17 < sum(first) / len(first) < 0.23
    assert flipped(7) == first and flipped(8) != first


def test_delayed_answers_go_out_while_no_new_query_comes() -> None:
    import time

    published: list[float] = []
    answerer = OracleAnswerer({"a": 1}, SimulatedOracle("0.2s"))
    start = time.monotonic()
    broker, stats = _oracle_run(
        [encode(_query("a"))],
        answerer,
        timeout=5.0,
        drain=0.0,
        on_label=lambda label: published.append(time.monotonic() - start),
        should_stop=lambda: bool(published),
    )
    assert stats.labels == 1 and len(broker.values("l")) == 1
    assert 0.2 <= published[0] < 4.0  # after its delay, long before the timeout


def test_unanswered_delayed_queries_stay_uncommitted_when_stopped() -> None:
    clock = FakeClock()
    answerer = OracleAnswerer({"a": 1, "b": 1}, SimulatedOracle("60s"), clock=clock)
    queries = [encode(_query("a")), encode(_query("b"))]
    broker, stats = _oracle_run(queries, answerer, count=2, drain=0.0)
    assert stats.labels == 0 and broker.values("l") == []
    assert broker.committed["oracle"] == {("q", 0): 0}  # both will be answered again


def test_commit_stops_at_the_first_open_query() -> None:
    clock = FakeClock()
    oracle = SimulatedOracle("uniform:0s:10s", seed=3)
    answerer = OracleAnswerer({str(i): 1 for i in range(6)}, oracle, clock=clock)
    broker = MemoryBroker()
    for i in range(6):
        broker.produce("q", encode(_query(str(i))))
    source, sink = MemorySource(broker, group="o"), MemorySink(broker)
    answer_queries(source, sink, "q", "l", answerer, count=6, drain=0.0)
    clock.now = 5.0
    answer_queries(source, sink, "q", "l", answerer, timeout=0.05, drain=0.0)
    answered = {decode_label(v or b"").sample_id for v in broker.values("l")}
    assert 0 < len(answered) < 6
    first_open = min(i for i in range(6) if str(i) not in answered)
    assert broker.committed["o"] == {("q", 0): first_open}


# -- the human answerer -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prediction", "text", "expected"),
    [
        (True, "n", False),
        (True, "YES", True),
        (False, "", False),
        (2, "0", 0),
        ("spam", "ham", "ham"),
        (None, "true", True),
        (None, "3", 3),
        (None, "cat", "cat"),
    ],
)
def test_coerce_label_follows_the_prediction_type(
    prediction: Any, text: str, expected: Any
) -> None:
    y = coerce_label(text, _query("1", prediction))
    assert y == expected and type(y) is type(expected)


@pytest.mark.parametrize(("prediction", "text"), [(True, "maybe"), (1, "one"), (None, "")])
def test_coerce_label_refuses_what_cannot_be_a_label(prediction: Any, text: str) -> None:
    with pytest.raises(ValueError):
        coerce_label(text, _query("1", prediction))


def test_human_skips_reprompts_and_quitting_leaves_the_query_uncommitted() -> None:
    typed = iter(["s", "perhaps", "no", "q"])
    errors: list[str | None] = []

    def prompt(query: Query, error: str | None) -> str | None:
        errors.append(error)
        return next(typed, None)

    human = HumanAnswerer(prompt, annotator="alice")
    queries = [encode(_query(str(i))) for i in range(4)]
    broker, stats = _oracle_run(queries, human, should_stop=lambda: human.stopped)
    labels = [decode_label(v or b"") for v in broker.values("l")]
    assert [(lb.sample_id, lb.y, lb.annotator) for lb in labels] == [("1", False, "alice")]
    assert errors[2] is not None and "yes/no" in errors[2]
    assert (human.skipped, human.errors, human.stopped) == (1, 1, True)
    # 0 was skipped and 1 answered; 2 was on screen at "q": it is answered next time.
    assert broker.committed["oracle"] == {("q", 0): 2}
    assert stats.labels == 1


# -- the commands, against a real broker ----------------------------------------------------


def _cli(
    args: list[str], env: dict[str, str], stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamal", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.kafka
def test_produce_then_record_round_trips_a_stream(
    kafka_broker: Any, kafka_topics: Any, tmp_path: Path
) -> None:
    (topic,) = kafka_topics("samples")
    env = kafka_broker.env()
    done = _cli(["produce", "synth:Agrawal:n=40", "--topic", topic, "--rate", "400"], env)
    assert done.returncode == 0, done.stderr
    assert f"sent 40 samples to {topic}" in done.stderr
    records = kafka_broker.read(topic, count=40)
    expected = list(open_source("synth:Agrawal:n=40"))
    assert [r.key for r in records] == [s.id.encode() for s in expected]
    sent = [decode_sample(r.value) for r in records]
    assert sent == [s.model_copy(update={"y": None}) for s in expected]

    out = tmp_path / "rec.jsonl"
    done = _cli(["record", topic, "-o", str(out), "--idle", "1"], env)
    assert done.returncode == 0, done.stderr
    assert [decode_sample(line) for line in out.read_text().splitlines()] == sent
    # The recording replays: produce it again into a second topic, with nothing lost.
    (again,) = kafka_topics("again")
    done = _cli(["produce", str(out), "--topic", again], env)
    assert done.returncode == 0, done.stderr
    assert [decode_sample(r.value) for r in kafka_broker.read(again, count=40)] == sent


@pytest.mark.kafka
def test_produce_keep_y_feeds_replay(kafka_broker: Any, kafka_topics: Any, tmp_path: Path) -> None:
    (topic,) = kafka_topics("samples")
    env = kafka_broker.env()
    args = ["produce", "river:Phishing", "--topic", topic, "--limit", "30", "--keep-y"]
    assert _cli(args, env).returncode == 0
    out = tmp_path / "phishing.jsonl"
    assert _cli(["record", topic, "-o", str(out), "--count", "30"], env).returncode == 0
    replayed = list(open_source(str(out)))  # replay refuses samples without y
    assert [(s.id, s.y) for s in replayed] == [
        (s.id, s.y) for s in list(open_source("river:Phishing"))[:30]
    ]


@pytest.mark.kafka
def test_oracle_answers_from_the_source_after_its_delay(
    kafka_broker: Any, kafka_topics: Any
) -> None:
    queries, labels = kafka_topics("queries", "labels")
    truth = {s.id: s.y for s in open_source("synth:SEA:n=20")}
    asked = ["3", "nope", "11", "7"]
    kafka_broker.send(queries, [encode(_query(sid, prediction=0)) for sid in asked])
    env = kafka_broker.env(TOPICS__QUERIES=queries, TOPICS__LABELS=labels)
    args = [
        "oracle",
        "synth:SEA:n=20",
        "--delay",
        "0.3",
        "--count",
        "4",
        "--group",
        kafka_broker.unique("oracle"),
    ]
    done = _cli(args, env)
    assert done.returncode == 0, done.stderr
    assert "4 queries, 3 labels" in done.stderr and "1 unknown ids" in done.stderr
    got = [decode_label(r.value) for r in kafka_broker.read(labels, count=3)]
    assert sorted((lb.sample_id, lb.y) for lb in got) == sorted(
        (sid, truth[sid]) for sid in ("3", "11", "7")
    )
    assert all(lb.annotator == "oracle" for lb in got)


@pytest.mark.kafka
def test_annotate_takes_answers_from_a_pipe(kafka_broker: Any, kafka_topics: Any) -> None:
    queries, labels = kafka_topics("queries", "labels")
    kafka_broker.send(queries, [encode(_query(str(i), prediction=True)) for i in range(3)])
    env = kafka_broker.env(TOPICS__QUERIES=queries, TOPICS__LABELS=labels)
    args = ["annotate", "--annotator", "pat", "--group", kafka_broker.unique("ann"), "--idle", "2"]
    done = _cli(args, env, stdin="no\nwhat\n\ns\n")
    assert done.returncode == 0, done.stderr
    assert "sample 0" in done.stdout and "is not yes/no" in done.stdout
    got = [decode_label(r.value) for r in kafka_broker.read(labels, count=2)]
    assert [(lb.sample_id, lb.y, lb.annotator) for lb in got] == [
        ("0", False, "pat"),
        ("1", True, "pat"),
    ]
    assert "2 labels sent, 1 skipped" in done.stderr


def test_bad_source_and_unreachable_broker_exit_with_their_codes() -> None:
    import os

    env = {**os.environ, "STREAMAL_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    done = _cli(["produce", "no-such-file.csv"], env)
    assert done.returncode == 2 and "no such file" in done.stderr
    done = _cli(["produce", "synth:SEA:n=5", "--set", "service.broker_timeout=1"], env)
    assert done.returncode == 3 and "error:" in done.stderr
