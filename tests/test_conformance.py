"""Conformance suite: generic checks over every registered strategy and budget manager.

Strategies: clone is idempotent, pickle round-trips (identical further scores), ``score``
is pure, same seed gives the same scores, scores lie in [0, 1] (binary and multi-class),
state stays bounded over 100,000 arrivals.

Budget managers: clone and pickle round-trips give identical further decisions, same
seed gives the same decisions, the realized rate never exceeds the target (at any point
of a 20,000-arrival stream) and no window of 1,000 arrivals exceeds 1.05 × target,
state stays bounded over 100,000 arrivals, and no manager (except those that may starve
by design) goes 2,000 arrivals without a query while its budget allows one. Score
streams are realistic (real river models on drifting synthetic streams) and adversarial
(constant 0, constant 1, bursts, spikes, ramps).
"""

from __future__ import annotations

import functools
import itertools
import math
import pickle
import random
from typing import Any

import numpy as np
import pytest
from _helpers import documented_allowance

from streamal import ActiveLearner, Label
from streamal.budgets.drift import DriftAware
from streamal.core.models import build_model
from streamal.core.registry import BUDGETS, STRATEGIES, make_budget, make_strategy
from streamal.exceptions import ConfigError
from streamal.offline.streams import open_source
from streamal.strategies.base import normalize

STRATEGY_NAMES = sorted(STRATEGIES)
BUDGET_NAMES = sorted(BUDGETS)
N = 20_000
WINDOW = 1000


# -- strategies ------------------------------------------------------------------------
def _model_spec(name: str, classes: int) -> str:
    if STRATEGIES[name].factory.needs_ensemble:
        return "bagging"
    if classes > 2:
        return "softmax"
    return "logreg"


@functools.cache
def _labelled(classes: int, n: int = 400) -> list[tuple[dict[str, Any], Any]]:
    spec = "synth:Agrawal:n=2000" if classes == 2 else "synth:RandomRBFDrift:n=2000"
    return [(s.x, s.y) for s in itertools.islice(open_source(spec, seed=7), n)]


def _drive(strategy: Any, model: Any, data: list[tuple[dict[str, Any], Any]]) -> list[float]:
    """Score every arrival, learn every third one (model and strategy)."""
    scores = []
    for i, (x, y) in enumerate(data):
        proba = model.predict_proba_one(x)
        scores.append(strategy.score(x, proba, model))
        if strategy.stateful:
            strategy.observe(x)
        if i % 3 == 0:
            model.learn_one(x, y)
            if strategy.stateful:
                strategy.learn(x, y)
    return scores


@pytest.mark.parametrize("classes", [2, 4])
@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_strategy_scores_in_unit_interval(name: str, classes: int) -> None:
    scores = _drive(
        make_strategy(name, seed=1), build_model(_model_spec(name, classes), 1), _labelled(classes)
    )
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert len(set(scores)) > 3, "a strategy that scores everything alike ranks nothing"


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_strategy_clone_is_idempotent(name: str) -> None:
    data = _labelled(2)
    used = make_strategy(name, seed=3)
    _drive(used, build_model(_model_spec(name, 2), 1), data[:200])
    clone = used.clone()
    assert repr(clone) == repr(used) == repr(clone.clone())
    fresh = make_strategy(name, seed=3)
    assert _drive(clone, build_model(_model_spec(name, 2), 1), data) == _drive(
        fresh, build_model(_model_spec(name, 2), 1), data
    ), "a clone must start from scratch, like a freshly built strategy"


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_strategy_pickle_round_trip(name: str) -> None:
    data = _labelled(2)
    model = build_model(_model_spec(name, 2), 1)
    a = make_strategy(name, seed=5)
    _drive(a, model, data[:200])
    b = pickle.loads(pickle.dumps(a))
    for i, (x, y) in enumerate(data[200:]):
        proba = model.predict_proba_one(x)
        assert a.score(x, proba, model) == b.score(x, proba, model)
        if a.stateful:
            a.observe(x)
            b.observe(x)
        if i % 3 == 0:
            model.learn_one(x, y)
            if a.stateful:
                a.learn(x, y)
                b.learn(x, y)


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_strategy_score_is_pure(name: str) -> None:
    data = _labelled(2)
    model = build_model(_model_spec(name, 2), 1)
    s = make_strategy(name, seed=2)
    _drive(s, model, data[:200])
    for x, _ in data[200:260]:
        proba = model.predict_proba_one(x)
        before = pickle.dumps(s)
        first = s.score(x, proba, model)
        assert s.score(x, proba, model) == first
        assert pickle.dumps(s) == before, "score() changed the strategy's state"
        if s.stateful:
            s.observe(x)


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_strategy_same_seed_same_scores(name: str) -> None:
    data = _labelled(2)
    runs = [
        _drive(make_strategy(name, seed=11), build_model(_model_spec(name, 2), 4), data)
        for _ in range(2)
    ]
    assert runs[0] == runs[1]


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_strategy_state_is_bounded(name: str) -> None:
    s = make_strategy(name, seed=1)
    rng = random.Random(0)
    proba = {"a": 0.6, "b": 0.4}
    sizes = {}
    for i in range(1, 100_001):
        x = {"f1": rng.random(), "f2": rng.gauss(0, 3), "f3": float(i % 7)}
        if s.stateful:
            s.observe(x)
            if i % 10 == 0:
                s.learn(x, "a" if x["f1"] < 0.5 else "b")
        if i in (10_000, 100_000):
            sizes[i] = len(pickle.dumps(s))
    model = build_model(_model_spec(name, 2), 1)
    model.learn_one({"f1": 0.5, "f2": 0.0, "f3": 1.0}, "a")
    assert 0.0 <= s.score({"f1": 0.5, "f2": 0.0, "f3": 1.0}, proba, model) <= 1.0
    assert sizes[100_000] <= 1.02 * sizes[10_000] + 256, sizes


@pytest.mark.parametrize(
    "name", [n for n in STRATEGY_NAMES if STRATEGIES[n].factory.needs_ensemble]
)
def test_ensemble_strategies_refuse_single_models(name: str) -> None:
    model = build_model("logreg", 1)
    model.learn_one({"a": 1.0}, True)
    with pytest.raises(ConfigError, match="ensemble"):
        make_strategy(name).score({"a": 1.0}, model.predict_proba_one({"a": 1.0}), model)


# -- score streams for budget managers -------------------------------------------------
@functools.cache
def _model_scores(source: str, model_spec: str, strategy: str) -> tuple[float, ...]:
    """Scores a real river model gives a drifting stream (it learns every 5th label)."""
    model = build_model(model_spec, seed=3)
    s = make_strategy(strategy, seed=3)
    out = []
    for i, sample in enumerate(open_source(source, seed=3)):
        proba = model.predict_proba_one(sample.x)
        out.append(s.score(sample.x, proba, model))
        if i % 5 == 0:
            model.learn_one(sample.x, sample.y)
    return tuple(out)


def _adversarial(kind: str) -> list[float]:
    rng = random.Random(42)
    if kind == "zeros":
        return [0.0] * N
    if kind == "ones":
        return [1.0] * N
    if kind == "bursts":  # 300 certain arrivals, then 700 uncertain ones, repeated
        return [1.0 if i % 1000 >= 300 else 0.0 for i in range(N)]
    if kind == "spikes":  # one informative arrival in 997
        return [1.0 if i % 997 == 0 else 0.0 for i in range(N)]
    if kind == "ramp":  # confidence grows all along, then collapses
        return [1.0 - i / N if i < N * 3 // 4 else 1.0 for i in range(N)]
    if kind == "uniform":
        return [rng.random() for _ in range(N)]
    raise AssertionError(kind)


SCORE_STREAMS = {
    "hoeffding_agrawal": lambda: list(
        _model_scores("synth:Agrawal:n=20000", "hoeffding", "least_confidence")
    ),
    "logreg_sea": lambda: list(_model_scores("synth:SEA:n=20000", "logreg", "margin")),
    **{
        k: functools.partial(_adversarial, k)
        for k in ("zeros", "ones", "bursts", "spikes", "ramp", "uniform")
    },
}


def _decisions(manager: Any, scores: list[float]) -> list[bool]:
    decide = manager.decide
    return [decide(s) for s in scores]


def _worst_window(decisions: list[bool], width: int = WINDOW) -> int:
    counts = np.convolve(
        np.asarray(decisions, dtype=np.int64), np.ones(width, dtype=np.int64), mode="valid"
    )
    return int(counts.max()) if len(counts) else 0


def _worst_window_after_first(decisions: list[bool], width: int = WINDOW) -> int:
    return _worst_window(decisions[width:], width)


def _target(name: str, rate: float) -> float:
    return 1.0 if name == "full" else rate


@pytest.mark.parametrize("rate", [0.05, 0.2])
@pytest.mark.parametrize("stream", sorted(SCORE_STREAMS))
@pytest.mark.parametrize("name", BUDGET_NAMES)
def test_budget_meets_its_rate(name: str, stream: str, rate: float) -> None:
    manager = make_budget(name, rate=rate, seed=1)
    target = _target(name, rate)
    decisions = _decisions(manager, SCORE_STREAMS[stream]())
    spent = np.cumsum(decisions)
    allowed = np.floor(target * np.arange(1, N + 1) + 1e-9)
    assert (spent <= allowed).all(), "spent more than floor(rate * n) at some point"
    assert spent[-1] <= target * N
    worst = _worst_window_after_first(decisions)
    assert worst <= 1.05 * target * WINDOW, f"a window of 1000 holds {worst} labels"
    # The guard is exact: no window of 1000 (the first included) beyond floor(rate · 1000).
    assert _worst_window(decisions) <= math.floor(target * WINDOW + 1e-9)
    assert manager.spent == spent[-1] and manager.seen == N


@pytest.mark.parametrize("name", BUDGET_NAMES)
def test_budget_pickle_round_trip(name: str) -> None:
    scores = SCORE_STREAMS["uniform"]()
    a = make_budget(name, rate=0.1, seed=9)
    _decisions(a, scores[:5000])
    b = pickle.loads(pickle.dumps(a))
    assert _decisions(a, scores[5000:10_000]) == _decisions(b, scores[5000:10_000])


@pytest.mark.parametrize("name", BUDGET_NAMES)
def test_budget_clone_is_idempotent(name: str) -> None:
    scores = SCORE_STREAMS["uniform"]()[:5000]
    used = make_budget(name, rate=0.1, seed=4)
    _decisions(used, scores)
    clone = used.clone()
    assert repr(clone) == repr(used) == repr(clone.clone())
    assert _decisions(clone, scores) == _decisions(make_budget(name, rate=0.1, seed=4), scores)


@pytest.mark.parametrize("name", BUDGET_NAMES)
def test_budget_same_seed_same_decisions(name: str) -> None:
    scores = SCORE_STREAMS["logreg_sea"]()[:5000]
    runs = [_decisions(make_budget(name, rate=0.1, seed=21), scores) for _ in range(2)]
    assert runs[0] == runs[1]


@pytest.mark.parametrize("name", BUDGET_NAMES)
def test_budget_state_is_bounded(name: str) -> None:
    rng = random.Random(1)
    manager = make_budget(name, rate=0.1, seed=1)
    sizes = {}
    for i in range(1, 100_001):
        if manager.decide(rng.random() if (i // 5000) % 2 else 1.0) and i % 2:
            manager.on_label(rng.random() < (0.9 if i < 50_000 else 0.6))
        if i in (70_000, 100_000):
            sizes[i] = len(pickle.dumps(manager))
    # Compared from 70,000 on: stored arrival indices pickle wider past 65,535.
    assert sizes[100_000] <= 1.05 * sizes[70_000] + 256, sizes


def _longest_starved_run(manager: Any, scores: list[float]) -> int:
    """Longest run of arrivals without a query during which the budget allowed one."""
    longest = run = 0
    for s in scores:
        if manager.decide(s):
            run = 0
        elif manager.last_allowed:
            run += 1
            longest = max(longest, run)
    return longest


@pytest.mark.parametrize("name", [n for n in BUDGET_NAMES if not BUDGETS[n].factory.can_starve])
def test_no_deadlock_on_certain_scores(name: str) -> None:
    for stream in ("zeros", "ramp"):
        manager = make_budget(name, rate=0.05, seed=2)
        assert _longest_starved_run(manager, SCORE_STREAMS[stream]()) < 2000, stream


def test_no_deadlock_default_with_overconfident_tree() -> None:
    """The default variable threshold keeps asking a Hoeffding tree that is sure of itself."""
    learner = ActiveLearner(
        build_model("hoeffding"),
        make_strategy("least_confidence"),
        make_budget("variable_threshold", rate=0.05, seed=0),
    )
    longest = run = 0
    certain = asked_certain = 0
    for sample in open_source("synth:Agrawal:n=20000,drift_at=20000", seed=5):
        d = learner.process(sample)
        certain += d.score == 0.0
        if d.queried:
            asked_certain += d.score == 0.0
            learner.learn(Label(sample_id=sample.id, y=sample.y))
            run = 0
        elif learner.budget.last_allowed:
            run += 1
            longest = max(longest, run)
    assert certain > 5000, "the tree should be overconfident for this check to mean anything"
    assert asked_certain > 0, "the threshold re-opens even for posteriors of exactly 1"
    assert longest < 2000
    assert learner.stats.queried >= 0.9 * 0.05 * 20_000


def test_fixed_threshold_starves_and_the_floor_rescues_it() -> None:
    zeros = SCORE_STREAMS["zeros"]()
    assert sum(_decisions(make_budget("fixed_threshold", rate=0.1), zeros)) == 0
    floor = make_budget("explore:inner=fixed_threshold", rate=0.1, seed=0)
    assert _longest_starved_run(floor, zeros) < 2000


def test_drift_aware_stays_within_its_documented_bound() -> None:
    rate = 0.1
    manager = make_budget("drift_aware", rate=rate, seed=3)
    assert isinstance(manager, DriftAware)
    rng = random.Random(3)
    scores = SCORE_STREAMS["uniform"]()
    decisions = []
    for i, s in enumerate(scores):
        q = manager.decide(s)
        decisions.append(q)
        if q:  # the error rate jumps from 10 % to 50 % at arrival 8,000
            manager.on_label(rng.random() >= (0.1 if i < 8000 else 0.5))
    assert manager.drifts >= 1
    spent = np.cumsum(decisions)
    n = np.arange(1, N + 1)
    assert (spent <= np.floor(rate * n + 1e-9) + manager.max_borrow).all()
    assert spent[-1] <= rate * N, "the borrowed labels must be paid back by the end"
    boosted = math.floor((1 + manager.boost) * rate * WINDOW + 1e-9)
    assert _worst_window(decisions) <= boosted
    assert _worst_window(decisions) > rate * WINDOW, "the boost should really spend more"


def test_every_component_is_covered() -> None:
    """The suite is parametrized from the registry: nothing registered escapes it."""
    assert {"least_confidence", "margin", "entropy", "random"} <= set(STRATEGY_NAMES)
    assert {"fixed_threshold", "variable_threshold", "random", "full"} <= set(BUDGET_NAMES)
    assert len(STRATEGY_NAMES) >= 10 and len(BUDGET_NAMES) >= 13
    assert normalize({"a": 1.0}) == [1.0]


@pytest.mark.parametrize("rate", [0.05, 0.2])
@pytest.mark.parametrize("stream", sorted(SCORE_STREAMS))
def test_default_initial_allowance_stays_within_its_documented_bound(
    stream: str, rate: float
) -> None:
    """The default advances the budget of its first ``initial`` arrivals (cold start) and
    pays it back by arrival ``repay``, no more (README, "What it promises")."""
    from streamal.defaults import DEFAULT_BUDGET

    manager = make_budget(DEFAULT_BUDGET, rate=rate, seed=1)
    initial = getattr(manager, "initial", 0)
    repay = getattr(manager, "repay", initial)
    decisions = _decisions(manager, SCORE_STREAMS[stream]())
    spent = np.cumsum(decisions)
    n = np.arange(1, N + 1)
    # The stated bound, written out: rate·n + k·(1 − n/repay) before arrival repay (the
    # whole k while n < initial when repay == initial), floor(rate·n) from repay on.
    bound = [documented_allowance(rate, initial, repay, i) for i in range(1, N + 1)]
    assert (spent <= np.array(bound)).all()
    later = n >= repay
    assert (spent[later] <= np.floor(rate * n[later] + 1e-9)).all(), "back to floor(rate·n)"
    assert _worst_window(decisions) <= math.floor(rate * WINDOW + 1e-9)
