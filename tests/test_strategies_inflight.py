"""In-flight-aware selection: scores discounted near the queries still waiting for labels."""

from __future__ import annotations

import itertools
import pickle
from typing import Any

import pytest

from streamal.core.learner import ActiveLearner
from streamal.core.models import build_model
from streamal.core.pending import MemoryPendingStore
from streamal.core.registry import make_budget, make_strategy
from streamal.exceptions import ConfigError
from streamal.messages import Label, Sample
from streamal.offline.streams import open_source
from streamal.strategies import InFlight, Margin
from streamal.strategies.base import Strategy

UNSURE = {"y": 0.5, "n": 0.5}


def _warm(s: InFlight, n: int = 50) -> None:
    for i in range(n):
        s.observe({"a": float(i % 10), "b": float((3 * i) % 7)})


def test_an_arrival_like_a_pending_query_scores_lower_than_a_distant_one() -> None:
    s = InFlight(width=0.5)
    _warm(s)
    near, far = {"a": 2.0, "b": 3.0}, {"a": 9.0, "b": 0.0}
    assert s.score(near, UNSURE) == s.score(far, UNSURE) == 1.0
    s.queried(dict(near))
    assert s.pending == 1
    assert s.score(near, UNSURE) == 0.0
    assert s.score({"a": 2.5, "b": 3.0}, UNSURE) < s.score(far, UNSURE)
    assert s.score(far, UNSURE) > 0.99
    s.learn(dict(near), "y")  # the answer comes (a copy, as from a pending store)
    assert s.pending == 0 and s.score(near, UNSURE) == 1.0


def test_with_nothing_pending_it_is_the_inner_strategy() -> None:
    data = [s.x for s in itertools.islice(open_source("synth:Agrawal:n=500", seed=3), 300)]
    model = build_model("logreg", 1)
    s, margin = InFlight(), Margin()
    for i, x in enumerate(data):
        proba = model.predict_proba_one(x)
        assert s.score(x, proba, model) == margin.score(x, proba, model)
        s.observe(x)
        if i % 4 == 0:
            s.queried(x)
            y = x["salary"] > 75_000
            model.learn_one(x, y)
            s.learn(x, y)
    assert s.pending == 0


def _replay(strategy: Strategy, delay: int, n: int = 1200) -> list[bool]:
    """Decisions of the default budget on Agrawal, labels ``delay`` arrivals late."""
    learner = ActiveLearner(
        build_model("logreg", 1), strategy, make_budget("reserve_quantile:initial=200", 0.1, 1)
    )
    stream = list(itertools.islice(open_source("synth:Agrawal:n=2000", seed=5), n))
    waiting: list[tuple[int, Label]] = []
    decisions = []
    for i, sample in enumerate(stream):
        d = learner.process(sample)
        decisions.append(d.queried)
        if d.queried:
            waiting.append((i + delay, Label(sample_id=sample.id, y=sample.y)))
        while waiting and waiting[0][0] <= i:
            learner.learn(waiting.pop(0)[1])
    return decisions


def test_no_op_without_delay_and_different_with_delay() -> None:
    assert _replay(InFlight(), 0) == _replay(Margin(), 0)
    late = _replay(InFlight(width=1.0), 300)
    assert late != _replay(Margin(), 300)
    assert sum(late) <= 0.1 * len(late) + 20  # the manager's promise is untouched


def test_the_learner_reports_queries_answers_expiries_and_evictions() -> None:
    s = InFlight()
    learner = ActiveLearner(
        build_model("logreg", 1), s, make_budget("full"), pending=MemoryPendingStore(3), ttl=10
    )
    for i in range(3):
        learner.process(Sample(id=str(i), x={"a": float(i)}))
    assert s.pending == 3
    learner.learn(Label(sample_id="0", y=True))
    assert s.pending == 2
    learner.process(Sample(id="3", x={"a": 3.0}))
    learner.process(Sample(id="4", x={"a": 4.0}))  # the store is full: "1" is evicted
    assert learner.stats.evicted == 1 and s.pending == 3
    for i in range(5, 20):  # "2", "3", "4" expire on the way; the last 3 stay pending
        learner.process(Sample(id=str(i), x={"a": float(i)}))
    assert len(learner.pending) == 3 and s.pending == 3


def test_only_the_most_recent_pending_queries_are_compared() -> None:
    s = InFlight(recent=5)
    _warm(s)
    for i in range(12):
        s.queried({"a": float(i % 10), "b": float(i)})
    assert s.pending == 5
    assert s.score({"a": 0.0, "b": 0.0}, UNSURE) > 0.5  # the first query is forgotten
    assert s.score({"a": 1.0, "b": 11.0}, UNSURE) == 0.0


def test_pickle_clone_and_spec() -> None:
    s = make_strategy("inflight:inner=entropy,width=1.0,recent=50", seed=2)
    assert isinstance(s, InFlight) and type(s._inner).__name__ == "Entropy"
    _warm(s)  # type: ignore[arg-type]
    s.queried({"a": 1.0, "b": 2.0})
    copy = pickle.loads(pickle.dumps(s))
    x: dict[str, Any] = {"a": 1.5, "b": 2.0}
    assert copy.score(x, UNSURE) == s.score(x, UNSURE) < 1.0
    fresh = s.clone()
    assert fresh.pending == 0 and repr(fresh) == repr(s)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "spec",
    ["inflight:width=0", "inflight:width=-1", "inflight:recent=0", "inflight:inner=inflight"],
)
def test_bad_parameters_are_refused(spec: str) -> None:
    with pytest.raises(ConfigError):
        make_strategy(spec)
