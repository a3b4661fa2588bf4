"""``decide`` and ``verdict`` are one rule written twice (the hot path skips a call)."""

from __future__ import annotations

import random

import pytest

from streamal.core.registry import BUDGETS, make_budget


@pytest.mark.parametrize("name", sorted(BUDGETS))
def test_decide_and_verdict_agree_arrival_by_arrival(name: str) -> None:
    rng = random.Random(5)
    scores = [rng.random() ** 2 for _ in range(3000)]
    by_decide = make_budget(name, rate=0.1, seed=3)
    by_verdict = make_budget(name, rate=0.1, seed=3)
    for i, score in enumerate(scores):
        pending = i % 7
        chosen = by_decide.decide(score, float(i), pending)
        verdict = by_verdict.verdict(score, float(i), pending)
        assert chosen == verdict.query
        assert by_decide.last_allowed == verdict.allowed == by_verdict.last_allowed
        assert by_decide.last_probability == verdict.probability
    assert by_decide.spent == by_verdict.spent > 0
    assert by_decide.seen == by_verdict.seen == len(scores)
