"""The hard cap, the exploration floor and the drift-aware mode."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest

from streamal import ActiveLearner, Label, budgets
from streamal.core.models import build_model
from streamal.core.registry import make_budget, make_strategy
from streamal.exceptions import ConfigError
from streamal.offline.streams import open_source


def _windows(decisions: list[bool], width: int) -> int:
    return int(np.convolve(np.asarray(decisions, int), np.ones(width, int), "valid").max())


@pytest.mark.parametrize("inner", ["full", "variable_threshold", "random", "biqf"])
def test_cap_per_window_of_arrivals(inner: str) -> None:
    m = make_budget(f"capped:inner={inner},labels_per_window=7,cap_window=50", rate=0.5, seed=1)
    rng = random.Random(0)
    decisions = [m.decide(rng.random()) for _ in range(5000)]
    assert _windows(decisions, 50) <= 7
    assert sum(decisions) >= 0.9 * 7 * 5000 / 50, "the cap, not the inner rate, should bind"


def test_cap_per_period_of_stream_time() -> None:
    m = budgets.HardCap("full", labels_per_period=3, period=60.0)
    ts = np.cumsum(np.random.default_rng(0).exponential(2.0, 3000))  # ~30 arrivals a minute
    asked = [t for t in ts if m.decide(1.0, ts=float(t))]
    asked_arr = np.asarray(asked)
    for t in asked_arr:
        assert ((asked_arr > t - 60.0) & (asked_arr <= t)).sum() <= 3
    assert len(asked) >= 0.9 * 3 * ts[-1] / 60.0


def test_cap_on_pending_queries_with_a_learner() -> None:
    learner = ActiveLearner(
        build_model("logreg"),
        make_strategy("margin"),
        budgets.HardCap("full", max_pending=5),
    )
    most = 0
    for i, sample in enumerate(open_source("synth:SEA:n=2000", seed=1)):
        learner.process(sample)
        most = max(most, len(learner.pending))
        if i % 10 == 0:  # the annotator answers the oldest query now and then
            oldest = next(iter(learner.pending), None)
            if oldest is not None:
                learner.learn(Label(sample_id=oldest.sample_id, y=True))
    assert most == 5


def test_cap_keeps_the_inner_guards_no_start_up_burst() -> None:
    m = make_budget("capped:inner=variable_threshold,labels_per_window=1000", rate=0.1)
    decisions = [m.decide(1.0) for _ in range(200)]
    spent = np.cumsum(decisions)
    assert (spent <= np.floor(0.1 * np.arange(1, 201) + 1e-9)).all()


def test_wrapper_accepts_an_instance_and_checks_its_rate() -> None:
    inner = budgets.VariableThreshold(rate=0.2)
    m = budgets.HardCap(inner, max_pending=3)
    assert m.rate == 0.2 and m.manager is inner
    with pytest.raises(ConfigError, match="differs"):
        budgets.HardCap(inner, rate=0.1)


def test_inner_spec_takes_its_own_parameters() -> None:
    m = make_budget(
        "capped:inner=variable_threshold:step=0.05;budget_window=20,max_pending=2", rate=0.1, seed=1
    )
    inner = m.manager
    assert isinstance(inner, budgets.VariableThreshold)
    assert inner.step == 0.05 and inner.budget_window == 20


def test_exploration_floor_share_and_rescue() -> None:
    m = budgets.ExplorationFloor("fixed_threshold", rate=0.1, seed=0)
    decisions = [m.decide(0.0) for _ in range(20_000)]
    assert m.explored == sum(decisions) > 0
    assert sum(decisions) <= 20_000 / m._patience + 1  # at most one per quiet stretch
    # With informative scores the inner manager spends and the floor stays idle.
    m = budgets.ExplorationFloor("fixed_threshold", rate=0.1, seed=0)
    for _ in range(20_000):
        m.decide(0.95)
    assert m.explored == 0 and m.spent > 1500


def _labelled_run(manager: budgets.BudgetManager, n: int, jump: int, seed: int = 0) -> list[bool]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        q = manager.decide(rng.random())
        out.append(q)
        if q:
            manager.on_label(rng.random() >= (0.1 if i < jump else 0.45))
    return out


def test_drift_aware_boosts_after_a_drift_then_pays_back() -> None:
    rate = 0.1
    m = budgets.DriftAware("variable_threshold", rate=rate, seed=1)
    decisions = _labelled_run(m, 30_000, jump=10_000)
    assert m.drifts >= 1
    spent = np.cumsum(decisions)
    # More labels shortly after the drift than the plain manager spends there ...
    plain = _labelled_run(budgets.VariableThreshold(rate=rate), 30_000, jump=10_000)
    after = slice(10_000, 12_000)
    assert sum(decisions[after]) > sum(plain[after]) + 10
    # ... within the documented bound, and paid back by the end.
    n = np.arange(1, 30_001)
    assert (spent <= np.floor(rate * n + 1e-9) + m.max_borrow).all()
    assert spent[-1] <= rate * 30_000
    assert not m.boosting and m.credit() == 0.0


def test_drift_aware_ignores_an_improving_error() -> None:
    m = budgets.DriftAware("variable_threshold", rate=0.1, seed=2)
    rng = random.Random(5)
    for i in range(20_000):
        if m.decide(rng.random()):
            m.on_label(rng.random() >= (0.5 if i < 10_000 else 0.05))
    assert m.drifts == 0


def test_drift_aware_hears_labels_through_the_learner() -> None:
    learner = ActiveLearner(
        build_model("hoeffding"),
        make_strategy("least_confidence"),
        make_budget("drift_aware", rate=0.1, seed=0),
    )
    source = open_source("synth:SEA:n=20000,drift_at=20000,noise=0.0", seed=1)
    for i, sample in enumerate(source):
        y = sample.y if i < 10_000 else not sample.y  # the concept flips at 10,000
        if learner.process(sample).queried:
            learner.learn(Label(sample_id=sample.id, y=y))
    manager = learner.budget
    assert isinstance(manager, budgets.DriftAware)
    assert manager.drifts >= 1
    assert manager.spent <= 0.1 * 20_000 + manager.max_borrow
    restored = pickle.loads(pickle.dumps(manager))
    assert restored.drifts == manager.drifts and restored.credit() == manager.credit()


def test_drift_aware_refuses_a_payback_that_cannot_repay() -> None:
    with pytest.raises(ConfigError, match="payback"):
        budgets.DriftAware(rate=0.1, boost=2.0, boost_length=500, payback=500)
