"""Window (batch) mode: the WindowLearner contract, its selectors and its rate bound."""

from __future__ import annotations

import itertools
import math
import pickle
from typing import Any

import numpy as np
import pytest

from streamal import ActiveLearner, Label, Sample, budgets, strategies
from streamal.core.models import build_model
from streamal.exceptions import ConfigError
from streamal.offline.oracle import SimulatedOracle
from streamal.offline.replay import replay
from streamal.offline.streams import open_source
from streamal.strategies.batch import Batch, BatchBALD
from streamal.window import SELECTORS, WindowLearner, make_selector


def _learner(model: str = "logreg", rate: float = 0.1, ttl: float | None = None) -> ActiveLearner:
    return ActiveLearner(
        build_model(model, seed=1),
        strategies.Margin(),
        budgets.RandomBudget(rate=rate, seed=1),
        ttl=ttl,
    )


def _stream(n: int, spec: str = "synth:SEA:n=5000") -> list[Sample]:
    return list(itertools.islice(open_source(spec, seed=2), n))


def _run(wl: WindowLearner, samples: list[Sample], answer: bool = True) -> list[tuple[int, str]]:
    """Process samples; answer each query at once; return (arrival index, id) of queries."""
    truth = {s.id: s.y for s in samples}
    asked = []
    for i, sample in enumerate(samples):
        d = wl.process(sample)
        assert (d.queried, d.reason) == (False, "window")
        for q in wl.take_queries():
            assert q.queried and q.reason == "query"
            asked.append((i, q.sample_id))
            if answer:
                wl.learn(Label(sample_id=q.sample_id, y=truth[q.sample_id]))
    return asked


@pytest.mark.parametrize("selector", sorted(SELECTORS))
def test_contract_and_rate(selector: str) -> None:
    model = "bagging" if SELECTORS[selector].factory.needs_members else "logreg"
    wl = WindowLearner(_learner(model, rate=0.1), selector, window=100, seed=0)
    samples = _stream(3000)
    asked = _run(wl, samples)
    assert len(asked) == 300 and len({sid for _, sid in asked}) == 300
    assert wl.take_queries() == []
    # Queries come out when a window closes, for arrivals of that window only.
    for i, sid in asked:
        assert (i + 1) % 100 == 0 and i - 100 < int(sid) <= i
    decisions = np.zeros(len(samples), dtype=int)
    decisions[[i for i, _ in asked]] = 1
    counts = np.convolve(decisions, np.ones(1000, dtype=int), "valid")
    assert counts.max() <= 100
    assert wl.stats.applied == 300 and wl.model_version == 300


def test_fractional_quota_is_carried_over() -> None:
    wl = WindowLearner(_learner(rate=0.05), "topk", window=30)
    asked = _run(wl, _stream(3000))
    assert len(asked) == 150
    per_close: dict[int, int] = {}
    for i, _ in asked:
        per_close[i] = per_close.get(i, 0) + 1
    assert set(per_close.values()) <= {1, 2}
    seen = np.array(sorted(per_close))
    spent = np.cumsum([per_close[i] for i in seen])
    assert (spent <= np.floor(0.05 * (seen + 1) + 1e-9)).all()


def test_time_windows_close_on_stream_time() -> None:
    wl = WindowLearner(_learner(rate=0.2), "topk", window=1000, seconds=10.0)
    samples = [Sample(id=str(i), x={"a": float(i % 7)}, ts=float(i) * 0.5) for i in range(200)]
    closes = sorted({i for i, _ in _run(wl, samples, answer=False)})
    # 20 arrivals per 10 s: the window closes when the 21st arrives (its own window opens).
    assert closes[:3] == [20, 40, 60]
    assert len(wl.pending) == 4 * 9


def test_topk_takes_the_most_informative() -> None:
    wl = WindowLearner(_learner(rate=0.1), "topk", window=50)
    samples = _stream(1000)
    scores: dict[str, float] = {}
    for s in samples:
        scores[s.id] = wl.process(s).score
        taken = wl.take_queries()
        if taken:
            ids = {q.sample_id for q in taken}
            window = [sid for sid in scores if int(sid) > int(s.id) - 50]
            rest = [scores[k] for k in window if k not in ids]
            assert len(taken) == 5 and min(q.score for q in taken) >= max(rest)


def test_coreset_spreads_over_feature_space() -> None:
    line = [Sample(id=str(i), x={"a": float(i)}) for i in range(100)]
    wl = WindowLearner(_learner(rate=0.04), "coreset", window=100)
    picked = sorted(int(sid) for _, sid in _run(wl, line, answer=False))
    assert picked[0] == 0 and picked[-1] == 99
    assert min(np.diff(picked)) >= 25


def test_diverse_avoids_near_twins() -> None:
    twins = [Sample(id=str(i), x={"a": float(i // 2)}) for i in range(40)]
    wl = WindowLearner(_learner(rate=0.25), "diverse:weight=0.3", window=40)
    picked = [int(sid) for _, sid in _run(wl, twins, answer=False)]
    assert len({i // 2 for i in picked}) == len(picked) == 10


def _joint_mi(members: np.ndarray, chosen: list[int]) -> float:
    """Exact joint mutual information of a batch (brute force over configurations)."""
    p = members[chosen]  # (k, M, C)
    k, m, c = p.shape
    joint = 0.0
    for config in itertools.product(range(c), repeat=k):
        per_member = np.prod([p[j, :, config[j]] for j in range(k)], axis=0)
        q = per_member.mean()
        if q > 0:
            joint -= q * math.log(q)
    conditional = float(-(p * np.log(np.clip(p, 1e-300, None))).sum(axis=2).mean(axis=1).sum())
    return joint - conditional


def test_batchbald_sampling_stays_close_to_exact() -> None:
    rng = np.random.default_rng(3)
    members = rng.dirichlet([0.3, 0.3, 0.3], size=(40, 8))
    batch = Batch(np.zeros(40), np.zeros((40, 1)), np.zeros((0, 1)), members)
    exact = BatchBALD(max_configs=10**6).select(batch, 5, np.random.default_rng(0))
    sampled = BatchBALD(max_configs=9, samples=512).select(batch, 5, np.random.default_rng(0))
    topk = sorted(np.argsort(-np.array([_joint_mi(members, [i]) for i in range(40)]))[:5])
    assert _joint_mi(members, sampled) >= 0.95 * _joint_mi(members, exact)
    assert _joint_mi(members, exact) >= _joint_mi(members, [int(i) for i in topk]) - 1e-9


def test_pickle_round_trip_and_same_seed() -> None:
    samples = _stream(1200)
    a = WindowLearner(_learner("bagging"), "batchbald:max_configs=4,samples=64", window=100, seed=5)
    first = _run(a, samples[:600])
    b = pickle.loads(pickle.dumps(a))
    assert _run(a, samples[600:]) == _run(b, samples[600:])
    c = WindowLearner(_learner("bagging"), "batchbald:max_configs=4,samples=64", window=100, seed=5)
    assert _run(c, samples[:600]) == first


def test_ttl_expiry_and_flush() -> None:
    wl = WindowLearner(_learner(rate=0.5, ttl=5.0), "topk", window=4)
    samples = [Sample(id=str(i), x={"a": float(i)}) for i in range(10)]
    asked = _run(wl, samples, answer=False)
    assert [sid for _, sid in asked][:2] and len(wl.pending) <= 4
    assert wl.apply(Label(sample_id=asked[0][1], y=True)).value == "expired"
    tail = wl.flush()
    assert len(tail) == 1 and tail[0].queried


def test_replay_drives_window_mode() -> None:
    source = open_source("synth:Agrawal:n=3000", seed=1)
    wl = WindowLearner(_learner("hoeffding", rate=0.1), "diverse", window=100, seed=1)
    final, curve = replay(source, wl, SimulatedOracle("0", seed=1), step=500)
    assert final.samples == 3000 and final.labels_used == 300
    # Labels of the last window arrive at the end of the stream (or stay pending).
    assert wl.stats.applied + len(wl.pending) == 300 and wl.stats.applied >= 290
    assert 0.5 < final.accuracy <= 1.0
    assert len(curve) == 6


def test_unknown_selector_and_bad_parameters() -> None:
    with pytest.raises(ConfigError, match="unknown selector"):
        make_selector("kmeans")
    with pytest.raises(ConfigError, match="cannot build"):
        make_selector("topk:k=3")
    sel: Any = make_selector("diverse:weight=0.9")
    assert make_selector(sel) is sel and sel.weight == 0.9
