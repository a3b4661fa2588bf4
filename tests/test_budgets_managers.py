"""Behaviour of the individual budget managers (the generic promises are in test_conformance)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from streamal import budgets
from streamal.budgets.quantile import quantile
from streamal.core.registry import make_budget
from streamal.exceptions import ConfigError


def _uniform(n: int, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [rng.random() for _ in range(n)]


@pytest.mark.parametrize("rate", [0.01, 0.1, 0.25, 0.5])
def test_periodic_asks_every_one_over_rate(rate: float) -> None:
    m = budgets.Periodic(rate=rate)
    asked = [i for i in range(1, 2001) if m.decide(0.0)]
    assert len(asked) == math.floor(rate * 2000 + 1e-9)
    gaps = set(np.diff(asked))
    assert gaps <= {math.floor(1 / rate), math.ceil(1 / rate)}


def test_quantile_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 100):
        values = sorted(rng.random(n).tolist())
        for q in (0.0, 0.05, 0.5, 0.8, 0.95, 1.0):
            assert quantile(values, q) == float(np.quantile(values, q))


def test_biqf_prefers_high_scores_and_absorbs_bursts() -> None:
    m = budgets.QuantileFilter(rate=0.1)
    scores = _uniform(20_000)
    asked = [s for s in scores if m.decide(s)]
    assert len(asked) >= 0.95 * 2000
    assert np.mean(asked) > 0.85, "it should label the top of the score distribution"
    # After a long burst of equal scores, spending resumes at the rate.
    m = budgets.QuantileFilter(rate=0.1)
    burst = [0.9] * 3000 + _uniform(5000, 1)
    decisions = [m.decide(s) for s in burst]
    assert 0.09 * 5000 <= sum(decisions[3000:]) <= 0.1 * 5000 + 100


def test_selective_sampling_adapts_b_to_the_rate() -> None:
    for scores in (_uniform(20_000), [0.02] * 20_000, [0.98] * 20_000):
        m = budgets.SelectiveSampling(rate=0.1, seed=1)
        spent = sum(m.decide(s) for s in scores)
        assert 0.85 * 2000 <= spent <= 2000


def test_selective_sampling_prefers_small_margins() -> None:
    m = budgets.SelectiveSampling(rate=0.1, seed=2)
    scores = _uniform(20_000, 3)
    asked = [s for s in scores if m.decide(s)]
    assert np.mean(asked) > 0.7
    assert m.last_probability is not None


def test_selective_sampling_with_fixed_b_is_the_papers_rule() -> None:
    m = budgets.SelectiveSampling(rate=1.0, b=0.5, seed=4)
    n = 20_000
    spent = sum(m.decide(0.5) for _ in range(n))  # margin 0.5: probability 0.5
    assert abs(spent / n - 0.5) < 0.02
    assert m.threshold == 0.5


def test_randomized_threshold_also_asks_confident_arrivals() -> None:
    scores = [0.0 if i % 2 else 0.8 for i in range(20_000)]
    plain = budgets.VariableThreshold(rate=0.1)
    noisy = budgets.RandomizedVariableThreshold(rate=0.1, seed=0)
    confident = {"plain": 0, "noisy": 0}
    for s in scores:
        confident["plain"] += plain.decide(s) and s == 0.0
        confident["noisy"] += noisy.decide(s) and s == 0.0
    assert confident["plain"] == 0
    assert confident["noisy"] > 100


def test_split_labels_a_random_share() -> None:
    scores = [0.0 if i % 2 else 0.9 for i in range(40_000)]
    m = budgets.Split(rate=0.2, v=0.3, seed=1)
    asked = [s for s in scores if m.decide(s)]
    share_confident = sum(s == 0.0 for s in asked) / len(asked)
    assert 0.005 < share_confident < 0.2


def test_estimated_greedy_spends_evenly() -> None:
    m = budgets.EstimatedGreedy(rate=0.05)
    asked = [i for i in range(10_000) if m.decide(1.0)]
    assert len(asked) == 500
    assert max(np.diff(asked)) <= 21


def test_decide_allowed_false_blocks_and_keeps_state_consistent() -> None:
    m = budgets.VariableThreshold(rate=0.5)
    assert not any(m.decide(1.0, allowed=False) for _ in range(10))
    assert m.seen == 10 and m.spent == 0 and not m.last_allowed
    assert m.threshold == 1.0, "a refused arrival must not move the threshold"
    assert any(m.decide(1.0) for _ in range(3))


def test_on_label_is_a_no_op_by_default() -> None:
    m = budgets.RandomBudget(rate=0.1, seed=0)
    before = [m.decide(0.5) for _ in range(100)]
    m.on_label(False)
    assert sum(before) <= 10


def test_registry_builds_every_manager_with_parameters() -> None:
    m = make_budget("biqf:w=50,w_tol=20", rate=0.2, seed=1)
    assert isinstance(m, budgets.QuantileFilter) and m.w == 50 and m.w_tol == 20
    m = make_budget("rand_variable_threshold:delta=0.5", rate=0.2, seed=1)
    assert isinstance(m, budgets.RandomizedVariableThreshold) and m.delta == 0.5
    with pytest.raises(ConfigError, match="no parameter"):
        make_budget("periodic:step=1")
    with pytest.raises(ConfigError, match="rate must be"):
        make_budget("split", rate=0.0)


@pytest.mark.parametrize("name", ["variable_threshold", "drift_aware", "full"])
def test_managers_pickled_with_an_unbounded_window_deque_decide_the_same(name: str) -> None:
    import pickle
    from collections import deque

    rng = random.Random(4)
    scores = [rng.random() for _ in range(3000)]
    manager = make_budget(name, 0.2, seed=1)
    for s in scores[:1500]:
        manager.decide(s)
    state = manager.__dict__.copy()
    # earlier versions kept every label's arrival in an unbounded deque
    state["_recent"] = deque(range(1, manager.spent + 1))
    state["_recent"].extend(manager._recent)
    old = type(manager).__new__(type(manager))
    old.__setstate__(pickle.loads(pickle.dumps(state)))
    assert old._recent.maxlen == manager._recent.maxlen
    assert [old.decide(s) for s in scores[1500:]] == [manager.decide(s) for s in scores[1500:]]
