"""The reserve quantile manager selects under the guards instead of sampling periodically."""

from __future__ import annotations

import copy
import random
import statistics

import pytest
from _helpers import documented_allowance

from streamal.budgets import ReserveQuantile, VariableThreshold
from streamal.core.registry import make_budget
from streamal.exceptions import ConfigError


def _uniform(n: int, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [rng.random() for _ in range(n)]


def _asked(manager: object, scores: list[float]) -> list[float]:
    return [s for s in scores if manager.decide(s)]  # type: ignore[attr-defined]


@pytest.mark.parametrize("rate", [0.05, 0.1, 0.2])
def test_asks_for_the_top_scores_not_every_nth_arrival(rate: float) -> None:
    scores = _uniform(20_000)
    # A reserve of 100 arrivals' budget: choosier than the default (10) on iid scores.
    mine = _asked(ReserveQuantile(rate=rate, reserve=100, explore=0.0), scores)
    theirs = _asked(VariableThreshold(rate=rate), scores)
    # Uniform scores: the percentile of a score is the score itself. The ideal choice of
    # the top `rate` share sits at 1 - rate / 2 on average; blind sampling at 0.5.
    assert statistics.fmean(mine) >= 1.0 - 1.5 * rate
    assert statistics.fmean(mine) > statistics.fmean(theirs) + 0.05
    assert len(mine) >= 0.97 * rate * len(scores), "it must still spend its budget"


def test_exploration_takes_its_share_of_the_budget() -> None:
    scores = _uniform(20_000, seed=1)
    asked = _asked(ReserveQuantile(rate=0.1, explore=0.25, seed=3), scores)
    low = sum(s < 0.5 for s in asked) / len(asked)
    # A random pick falls below the median half of the time: about 0.25 / 2 of the labels.
    assert 0.08 <= low <= 0.17
    plain = _asked(ReserveQuantile(rate=0.1, explore=0.0), scores)
    assert sum(s < 0.5 for s in plain) / len(plain) < 0.5 * low


def test_the_saving_is_bounded_and_the_excess_forfeited() -> None:
    m = ReserveQuantile(rate=0.1, save=300, explore=0.0)
    cap = max(2.0, 0.1 * 300)
    # 5,000 arrivals on which someone else forbids spending (a hard cap around it).
    for _ in range(5000):
        assert not m.decide(1.0, allowed=False)
    assert m.rate * m.seen - m.spent - m.forfeited == pytest.approx(cap)
    assert m.forfeited == pytest.approx(0.1 * 5000 - cap)
    # Once allowed again it spends the saving and then its rate, not 500 saved labels:
    # the window guard alone would allow 100 labels in the next 1,000 arrivals.
    burst = sum(m.decide(1.0) for _ in range(1000))
    assert burst <= cap + 0.1 * 1000 + 1e-9


def test_rejects_a_bad_exploration_share() -> None:
    with pytest.raises(ConfigError, match="explore"):
        ReserveQuantile(explore=1.0)


def test_registered_with_its_parameters() -> None:
    m = make_budget("reserve_quantile:w=50,explore=0.1", rate=0.2, seed=1)
    assert isinstance(m, ReserveQuantile)
    assert (m.w, m.explore, m.rate) == (50, 0.1, 0.2)


def test_the_initial_allowance_is_spent_early_and_nothing_more() -> None:
    m = ReserveQuantile(rate=0.1, initial=100, explore=0.0)
    decisions = [m.decide(0.5) for _ in range(1000)]
    assert sum(decisions[:10]) == 10, "the first 10 labels come with the first arrivals"
    assert sum(decisions[:100]) == 10, "then nothing until the budget has caught up"
    assert sum(decisions) <= 100
    plain = ReserveQuantile(rate=0.1, explore=0.0)
    assert sum(plain.decide(0.5) for _ in range(9)) == 0  # the first accrues at 10


def test_the_initial_allowance_fits_the_window_guard() -> None:
    m = ReserveQuantile(rate=0.01, initial=100_000, explore=0.0)
    assert sum(m.decide(1.0) for _ in range(1000)) == 10  # floor(0.01 · 1000), not 1,000


@pytest.mark.parametrize(("initial", "repay"), [(500, None), (500, 1000), (300, 1000)])
def test_repaying_the_allowance_keeps_to_its_stated_promise(
    initial: int, repay: int | None
) -> None:
    m = ReserveQuantile(rate=0.1, initial=initial, repay=repay, explore=0.0)
    spent = 0
    for n in range(1, 3001):
        spent += m.decide(1.0)  # every arrival wanted: the guards alone decide
        bound = documented_allowance(0.1, initial, repay or initial, n)
        assert spent <= bound == m.promised(n)
    assert spent == 300


def test_a_longer_repay_keeps_labels_coming_after_the_first_burst() -> None:
    flat = ReserveQuantile(rate=0.1, initial=500, explore=0.0)
    repaid = ReserveQuantile(rate=0.1, initial=500, repay=1000, explore=0.0)
    scores = _uniform(1000, seed=4)
    flat_asked = [i for i, s in enumerate(scores) if flat.decide(s)]
    repaid_asked = [i for i, s in enumerate(scores) if repaid.decide(s)]
    # The same advance up front (50 labels) ...
    assert flat.promised(1) == repaid.promised(1) == 50
    # ... but the flat one has spent it by arrival 100 and then waits for rate · n to
    # catch up at 500; repaid over 1,000 arrivals, labels keep coming in between.
    assert sum(100 <= i < 450 for i in flat_asked) <= 2
    assert sum(100 <= i < 450 for i in repaid_asked) >= 12
    assert len(flat_asked) <= 100 and len(repaid_asked) <= 100


def test_repay_shorter_than_the_allowance_is_refused() -> None:
    with pytest.raises(ConfigError, match="repay"):
        ReserveQuantile(rate=0.1, initial=500, repay=400)


def test_managers_pickled_before_repay_hold_the_whole_advance() -> None:
    m = ReserveQuantile(rate=0.1, initial=500, seed=2)
    for s in _uniform(50, seed=5):
        m.decide(s)
    state = copy.deepcopy(m.__dict__)  # as unpickled: nothing shared with m
    del state["repay"], state["_repay"]
    old = ReserveQuantile.__new__(ReserveQuantile)
    old.__setstate__(state)
    assert old.repay == 500 and old.promised(100) == 50 and old.promised(600) == 60
    same = [old.decide(s) for s in _uniform(2000, seed=6)]
    assert same == [m.decide(s) for s in _uniform(2000, seed=6)]
