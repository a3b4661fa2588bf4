"""Replay: identical to a hand-written loop, delays, baselines, window mode."""

from __future__ import annotations

from dataclasses import replace

import pytest

from streamal import Label
from streamal.exceptions import ConfigError
from streamal.offline.replay import ReplayConfig, build_learner, compare, gap_closed, parse_run, run
from streamal.offline.streams import open_source

CONFIG = ReplayConfig(source="synth:SEA:n=4000", model="hat", rate=0.1, seed=7, step=500)


def hand_loop(config: ReplayConfig, delay: int) -> tuple[list[bool], int]:
    """The loop a user would write around ActiveLearner, with a fixed delay in samples."""
    learner = build_learner(config.model, config.strategy, config.budget, config.rate, config.seed)
    waiting: list[tuple[int, Label]] = []
    decisions, correct = [], 0
    for i, sample in enumerate(open_source(config.source, seed=config.seed)):
        while waiting and waiting[0][0] <= i:
            learner.learn(waiting.pop(0)[1])
        d = learner.process(sample)
        correct += d.prediction == sample.y
        decisions.append(d.queried)
        if d.queried:
            waiting.append((i + delay + 1, Label(sample_id=sample.id, y=sample.y)))  # type: ignore[arg-type]
    return decisions, correct


@pytest.mark.parametrize("delay", [0, 50])
def test_replay_equals_a_hand_written_loop(delay: int) -> None:
    from streamal.offline.oracle import SimulatedOracle
    from streamal.offline.replay import replay

    config = replace(CONFIG, delay=str(delay))
    expected, correct = hand_loop(config, delay)
    learner = build_learner(config.model, config.strategy, config.budget, config.rate, config.seed)
    seen: list[bool] = []
    original = learner.process

    def spy(sample):  # type: ignore[no-untyped-def]
        d = original(sample)
        seen.append(d.queried)
        return d

    learner.process = spy  # type: ignore[method-assign]
    final, curve = replay(
        open_source(config.source, seed=config.seed),
        learner,
        SimulatedOracle(config.delay),
        step=500,
    )
    assert seen == expected
    assert final.correct == correct and final.labels_used == sum(expected)
    assert [p.samples for p in curve] == list(range(500, 4001, 500))


def test_run_is_deterministic_and_reports_its_settings() -> None:
    a, b = run(CONFIG), run(CONFIG)
    assert (a.accuracy, a.labels_used) == (b.accuracy, b.labels_used)
    assert a.samples == 4000 and a.label_rate <= 0.1 and a.strategy == CONFIG.strategy
    assert a.stats["applied"] == a.labels_used


def test_long_delays_leave_labels_pending_and_cost_accuracy() -> None:
    fast = run(replace(CONFIG, delay="0"))
    slow = run(replace(CONFIG, delay="2000"))
    assert slow.stats["applied"] < fast.stats["applied"] == fast.labels_used
    assert slow.accuracy < fast.accuracy


def test_compare_runs_share_stream_and_baselines_bracket() -> None:
    results = compare(CONFIG, ["random", "full", "margin/random"])
    names = [r.name for r in results]
    assert names == ["main", "random", "full", "margin/random"]
    assert {r.samples for r in results} == {4000}
    full = results[2]
    assert full.labels_used == 4000 and full.rate == 1.0
    assert results[1].labels_used == 400  # random meets the budget exactly
    gaps = gap_closed(results)
    assert gaps["random"] == 0.0 and gaps["full"] == 1.0


def test_parse_run_errors() -> None:
    with pytest.raises(ConfigError):
        parse_run("/random", 0.1)


def test_noise_and_limit() -> None:
    noisy = run(replace(CONFIG, noise=0.4, limit=2000))
    assert noisy.samples == 2000
    assert noisy.accuracy < run(replace(CONFIG, limit=2000)).accuracy


def test_window_mode_replay_spends_the_budget_in_batches() -> None:
    result = run(replace(CONFIG, model="logreg", window=200, selector="topk"))
    assert result.labels_used == pytest.approx(400, abs=20)
    assert result.stats["applied"] == result.labels_used
