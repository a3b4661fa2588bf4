"""The core issue's promises, measured: no deadlock, and better than random for the labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamal import Label
from streamal.defaults import DEFAULT_BUDGET, DEFAULT_MODEL, DEFAULT_STRATEGY
from streamal.offline.replay import ReplayConfig, build_learner, compare
from streamal.offline.streams import open_source

ELEC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "elec.csv"


def longest_gap(model: str, budget: str, n: int = 20_000) -> tuple[int, int]:
    """Longest run of arrivals without a query, and labels spent, on a drifting stream."""
    learner = build_learner(model, DEFAULT_STRATEGY, budget, 0.1, seed=1)
    gap = longest = 0
    for sample in open_source(f"synth:Agrawal:n={n}", seed=1):
        d = learner.process(sample)
        if d.queried:
            learner.learn(Label(sample_id=sample.id, y=sample.y))  # type: ignore[arg-type]
            gap = 0
        else:
            gap += 1
            longest = max(longest, gap)
    return longest, learner.budget.spent


@pytest.mark.slow
@pytest.mark.parametrize("model", ["hoeffding", DEFAULT_MODEL])
def test_default_strategy_never_deadlocks_with_overconfident_models(model: str) -> None:
    longest, spent = longest_gap(model, DEFAULT_BUDGET)
    assert longest < 2000
    assert 1900 <= spent <= 2000


@pytest.mark.slow
def test_fixed_threshold_does_deadlock_so_the_check_can_fail() -> None:
    # A Hoeffding tree answers P = 1.0 after its first labels: a fixed rule stops asking.
    longest, spent = longest_gap("hoeffding", "fixed_threshold")
    assert longest >= 2000 and spent < 1000


def beats_random(source: str) -> tuple[float, float, int, int]:
    config = ReplayConfig(source=source, strategy="entropy", budget="variable_threshold", rate=0.1)
    main, random = compare(config, ["random"])
    return main.accuracy, random.accuracy, main.labels_used, random.labels_used


@pytest.mark.slow
def test_variable_threshold_entropy_beats_random_on_drifting_agrawal() -> None:
    acc, acc_random, labels, labels_random = beats_random("synth:Agrawal")
    assert acc > acc_random and labels <= labels_random


@pytest.mark.slow
@pytest.mark.skipif(not ELEC.exists(), reason=f"Elec2 recording not found at {ELEC}")
def test_variable_threshold_entropy_beats_random_on_elec2() -> None:
    acc, acc_random, labels, labels_random = beats_random(str(ELEC))
    assert acc > acc_random and labels <= labels_random
