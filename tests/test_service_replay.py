"""One core: the service decides exactly as replay on the same stream, settings and seed.

The service runs on in-memory transports; a label is delivered before the next sample,
which is replay's delay ``"0"``. Its decisions are read back from the predictions topic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streamal.core.checkpoint import Checkpointer
from streamal.messages import Label, Sample, encode
from streamal.offline.oracle import SimulatedOracle
from streamal.offline.replay import build_learner, replay
from streamal.offline.streams import open_source
from streamal.service import LoopPolicy, Service, Topics
from streamal.transports import MemoryBroker, MemorySink, MemorySource

TOPICS = Topics(predictions="preds")


class Recording:
    """Records every decision of the learner it wraps."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.decisions: list[tuple[str, bool, float, Any]] = []

    def process(self, sample: Sample) -> Any:
        d = self.inner.process(sample)
        self.decisions.append((d.sample_id, d.queried, d.score, d.prediction))
        return d

    def learn(self, label: Label) -> bool:
        return bool(self.inner.learn(label))

    # The rest of the Learner protocol that replay drives (window mode's late queries).
    def take_queried(self) -> list[Any]:
        return list(self.inner.take_queried())

    def finish(self) -> list[Any]:
        return list(self.inner.finish())


def _service_decisions(
    stream: list[Sample], spec: tuple[str, str, str, float], seed: int, folder: Path
) -> tuple[list[tuple[str, bool, float, Any]], Any]:
    broker = MemoryBroker()
    truth = {s.id: s.y for s in stream}
    service = Service(
        build_learner(*spec, seed=seed),
        MemorySource(broker),
        MemorySink(broker),
        Checkpointer(folder),
        TOPICS,
        LoopPolicy(commit_every=10_000, commit_interval=1e9),
    )
    answered = 0
    for s in stream:
        broker.produce(TOPICS.samples, encode(s.model_copy(update={"y": None})))
        service.run(count=1)  # ends with a checkpoint: the query is published
        # replay delivers the labels due when the stream ends: the last answer comes too
        queries = broker.values(TOPICS.queries)[answered:]
        for q in queries:
            sid = json.loads(q)["sample_id"]  # type: ignore[arg-type]
            broker.produce(TOPICS.labels, encode(Label(sample_id=sid, y=truth[sid])))
        answered += len(queries)
        if queries:
            service.run(count=len(queries))
    preds = [json.loads(v) for v in broker.values("preds")]  # type: ignore[arg-type]
    decisions = [(p["sample_id"], p["queried"], p["score"], p["prediction"]) for p in preds]
    return decisions, service.learner


@pytest.mark.parametrize(
    ("source", "spec"),
    [
        ("synth:SEA:n=400", ("logreg", "entropy", "variable_threshold", 0.1)),
        ("river:Phishing", ("hoeffding", "margin", "random", 0.2)),
    ],
)
def test_service_decides_like_replay(tmp_path: Path, source: str, spec: Any) -> None:
    seed = 5
    stream = list(open_source(source, seed=seed))[:300]
    recorded = Recording(build_learner(*spec, seed=seed))
    replay(stream, recorded, SimulatedOracle("0", seed=seed))
    served, learner = _service_decisions(stream, spec, seed, tmp_path)
    assert len(served) == len(recorded.decisions) == 300
    assert sum(q for _, q, _, _ in served) > 5
    # Same ids, same queried flags, bit-identical scores, same predictions.
    assert served == recorded.decisions
    assert learner.stats == recorded.inner.stats
    assert learner.model_version == recorded.inner.model_version
