"""Warm start: labelled data learned before the stream, in Python, replay and serve."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from streamal.cli.app import app
from streamal.core.checkpoint import Checkpointer
from streamal.exceptions import ConfigError, DecodeError
from streamal.messages import Sample, encode
from streamal.offline.replay import ReplayConfig, build_learner, run
from streamal.offline.streams import open_source
from streamal.service import LoopPolicy, Service
from streamal.service.config import load_settings
from streamal.service.factory import build_service, config_hash
from streamal.service.warm import warm_start_hook
from streamal.transports import MemoryBroker, MemorySink, MemorySource


def _write_jsonl(path: Path, samples: list[Sample]) -> Path:
    path.write_text("".join(encode(s).decode() + "\n" for s in samples))
    return path


def _seed(n: int, seed: int = 9) -> list[Sample]:
    return list(itertools.islice(open_source("synth:SEA:n=5000", seed=seed), n))


def test_uncharged_warm_start_leaves_the_budget_alone() -> None:
    learner = build_learner("logreg", "entropy", "variable_threshold", 0.1, seed=1)
    assert learner.warm_start(_seed(200)) == 200
    assert learner.stats.warm_start == 200 and learner.stats.warm_start_charged == 0
    assert learner.budget.spent == 0 and learner.model_version == 200
    queried = [learner.process(s).queried for s in open_source("synth:SEA:n=400", seed=2)]
    assert sum(queried) == 40  # the whole stream allowance, as without a warm start


@pytest.mark.parametrize("budget", ["variable_threshold", "random", "capped:max_pending=50"])
def test_charged_warm_start_counts_inside_the_promise(budget: str) -> None:
    rate, charged = 0.1, 150
    learner = build_learner("logreg", "entropy", budget, rate, seed=1)
    learner.warm_start(_seed(charged), charge=True)
    assert learner.stats.warm_start_charged == charged
    queried = []
    for sample in open_source("synth:SEA:n=4000", seed=2):
        queried.append(learner.process(sample).queried)
    spent = np.cumsum(queried) + charged
    n = np.arange(1, len(queried) + 1)
    # Stream and warm-start labels together keep the cumulative promise once it allows
    # the warm start at all (rate · n ≥ 150 from arrival 1,500 on).
    assert (spent[1499:] <= np.floor(rate * n[1499:] + 1e-9)).all()
    first = queried.index(True) + 1
    assert first >= charged / rate, first
    assert learner.budget.spent == spent[-1]


def test_a_named_warm_start_is_learned_once_and_survives_pickling() -> None:
    import pickle

    learner = build_learner("logreg", "entropy", "variable_threshold", 0.1, seed=1)
    assert learner.warm_start(_seed(50), name="file:a.jsonl") == 50
    restored = pickle.loads(pickle.dumps(learner))
    assert restored.warm_start(_seed(50), name="file:a.jsonl") == 0
    assert restored.warm_starts == {"file:a.jsonl": 50} and restored.model_version == 50
    with pytest.raises(ValueError, match="no label"):
        restored.warm_start([Sample(id="u", x={"a": 1.0})], name="other")


def test_replay_warm_start_first_rows_of_the_source() -> None:
    cold = run(ReplayConfig(source="synth:Agrawal:n=3000", model="logreg", seed=3))
    warm = run(
        ReplayConfig(source="synth:Agrawal:n=3000", model="logreg", seed=3, warm_start_first=200)
    )
    charged = run(
        ReplayConfig(
            source="synth:Agrawal:n=3000",
            model="logreg",
            seed=3,
            warm_start_first=200,
            warm_start_charge=True,
        )
    )
    assert (cold.samples, warm.samples, charged.samples) == (3000, 2800, 2800)
    assert warm.warm_start_labels == charged.warm_start_labels == 200
    assert not warm.warm_start_charged and charged.warm_start_charged
    assert 270 <= warm.labels_used <= 280  # rate · 2,800, on top of the 200
    assert 70 <= charged.labels_used <= 280 - 200
    assert warm.summary()["warm_start_labels"] == 200


def test_replay_warm_start_file_and_errors(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "seed.jsonl", _seed(120))
    out = run(
        ReplayConfig(
            source="synth:SEA:n=1000", model="logreg", warm_start=str(path), warm_start_first=100
        )
    )
    assert out.warm_start_labels == 100 and out.samples == 1000
    unlabelled = tmp_path / "x.jsonl"
    unlabelled.write_text(json.dumps({"id": "1", "x": {"a": 1.0}}) + "\n")
    with pytest.raises(DecodeError, match="missing label"):
        run(ReplayConfig(source="synth:SEA:n=100", warm_start=str(unlabelled)))
    with pytest.raises(ConfigError, match="at least 0"):
        run(ReplayConfig(source="synth:SEA:n=100", warm_start_first=-1))


def test_cli_replay_warm_start(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "seed.jsonl", _seed(80))
    out = CliRunner().invoke(
        app,
        [
            "replay",
            "synth:SEA:n=1000",
            "--model",
            "logreg",
            "--warm-start",
            str(path),
            "--warm-start-charge",
            "--json",
        ],
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["warm_start_labels"] == 80 and data["warm_start_charged"] is True
    assert data["labels_used"] <= 100 - 80
    table = CliRunner().invoke(
        app,
        ["replay", "synth:SEA:n=600", "--model", "logreg", "--warm-start-first", "50", "--quiet"],
    )
    assert table.exit_code == 0, table.output
    assert "warm start: 50 labels" in table.stdout and "not charged" in table.stdout


def _service(broker: MemoryBroker, folder: Path, seed_file: Path, first: int | None) -> Service:
    return Service(
        build_learner("logreg", "entropy", "variable_threshold", 0.2, seed=7),
        MemorySource(broker),
        MemorySink(broker),
        Checkpointer(folder),
        policy=LoopPolicy(commit_every=20, commit_interval=1e9),
        warm_start=warm_start_hook(str(seed_file), None, {}, first=first),
    )


def test_service_warm_start_is_not_learned_twice_after_a_restart(tmp_path: Path) -> None:
    seed_file = _write_jsonl(tmp_path / "seed.jsonl", _seed(60))
    broker = MemoryBroker()
    for i, s in enumerate(open_source("synth:SEA:n=100", seed=4)):
        broker.produce("streamal.samples", encode(Sample(id=f"s{i}", x=s.x)))
    first = _service(broker, tmp_path / "state", seed_file, first=50)
    first.run(count=60)
    assert first.learner.stats.warm_start == 50
    assert first.learner.warm_starts == {f"file:{seed_file}": 50}
    version = first.learner.model_version
    first.close()
    # A restart from the snapshot: the warm start is in it and is not learned again.
    second = _service(broker, tmp_path / "state", seed_file, first=50)
    second.run(count=40)
    assert second.learner.stats.warm_start == 50
    assert second.learner.model_version == version  # no label arrived meanwhile
    second.close()
    # A restart with no snapshot (a crash before the first one) starts a fresh model.
    fresh = _service(MemoryBroker(), tmp_path / "empty", seed_file, first=None)
    fresh.restore()
    assert fresh.learner.stats.warm_start == 60


def test_warm_start_settings_leave_the_config_hash_alone(tmp_path: Path) -> None:
    plain = load_settings(overrides={"learner": {"model": "logreg"}})
    warm = load_settings(
        overrides={"learner": {"model": "logreg", "warm_start": "a.jsonl", "warm_start_first": 10}}
    )
    assert config_hash(plain) == config_hash(warm)
    with pytest.raises(ConfigError, match="warm_start_first"):
        load_settings(overrides={"learner": {"warm_start_first": -1}})


def test_build_service_wires_the_warm_start(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry

    seed_file = _write_jsonl(tmp_path / "seed.jsonl", _seed(30))
    settings = load_settings(
        overrides={
            "learner": {"model": "logreg", "warm_start": str(seed_file), "warm_start_charge": True},
            "checkpoint": {"dir": str(tmp_path / "state")},
        }
    )
    broker = MemoryBroker()
    service = build_service(settings, CollectorRegistry(), MemorySource(broker), MemorySink(broker))
    service.restore()
    assert service.learner.stats.warm_start_charged == 30
    assert service.learner.budget.spent == 30
    assert service.metrics.registry.get_sample_value("streamal_warm_start_labels") == 30


@pytest.mark.kafka
def test_service_warm_start_from_a_topic(kafka_broker: Any, kafka_topics: Any) -> None:
    from streamal.service.warm import read_topic_once, warm_start_topic

    (topic,) = kafka_topics("warm", partitions=2)
    seed = _seed(40)
    kafka_broker.send(topic, [encode(s) for s in seed[:25]], key=b"a")
    kafka_broker.send(topic, [encode(s) for s in seed[25:]], key=b"b")
    read = list(read_topic_once(kafka_broker.client, topic, timeout=20))
    assert sorted(s.id for s in read) == sorted(s.id for s in seed)
    learner = build_learner("logreg", "entropy", "variable_threshold", 0.1, seed=1)
    assert warm_start_topic(learner, kafka_broker.client, topic, timeout=20) == 40
    assert warm_start_topic(learner, kafka_broker.client, topic, timeout=20) == 0
    assert learner.warm_starts == {f"topic:{topic}": 40}
