"""Group mode's pacing: the whole stream's window promise from per-partition budgets.

Each samples partition has its own budget manager; paced (:meth:`BudgetManager.pace`),
each guards ``ceil(W / P)`` of its own arrivals with ``floor(floor(b·W) / P)`` labels
and spends ``floor(k / P)`` of the initial allowance ``k``, so that a stream spread
evenly over the ``P`` partitions keeps one manager's promise: at most ``floor(b·W)``
labels in any ``W`` consecutive arrivals of the whole stream.
"""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path
from typing import Any

import pytest
from _helpers import memory_group_member

from streamal.budgets import RandomBudget
from streamal.budgets.base import BudgetManager
from streamal.core.learner import ActiveLearner
from streamal.core.registry import BUDGETS, make_budget
from streamal.core.spec import LearnerSpec
from streamal.defaults import DEFAULT_BUDGET
from streamal.exceptions import ConfigError
from streamal.messages import Label, Sample, encode
from streamal.offline.streams import open_source
from streamal.service.group import GroupService
from streamal.service.loop import Topics
from streamal.transports import MemoryBroker

RATE = 0.1
WINDOW = 1000
TOPICS = Topics()


def worst_window(positions: list[int], window: int = WINDOW) -> int:
    """The most positions (sorted or not) in any ``window`` consecutive ones."""
    ordered, worst, first = sorted(positions), 0, 0
    for last, pos in enumerate(ordered):
        while ordered[first] <= pos - window:
            first += 1
        worst = max(worst, last - first + 1)
    return worst


def test_worst_window_counts_a_sliding_window() -> None:
    assert worst_window([0, 1, 999, 1000, 1001], 1000) == 3  # 1, 999, 1000
    assert worst_window([], 1000) == 0


@pytest.mark.parametrize(("parts", "span", "cap"), [(1, 1000, 100), (4, 250, 25), (6, 167, 16)])
def test_pace_shares_the_window_guard(parts: int, span: int, cap: int) -> None:
    m = RandomBudget(rate=RATE, seed=1)
    m.pace(parts)
    assert m.paced == (span, cap)
    asked = [i for i in range(20_000) if m.decide(1.0)]
    assert worst_window(asked, span) <= cap
    assert len(asked) <= RATE * 20_000
    clone = pickle.loads(pickle.dumps(m))  # the pacing travels with the state
    assert clone.paced == (span, cap)
    assert [clone.decide(1.0) for _ in range(500)] == [m.decide(1.0) for _ in range(500)]


def test_pace_is_for_fresh_managers_and_leaves_a_full_budget_alone() -> None:
    m = RandomBudget(rate=RATE, seed=1)
    m.decide(0.5)
    with pytest.raises(ValueError, match="fresh manager"):
        m.pace(2)
    with pytest.raises(ConfigError, match="at least 1"):
        RandomBudget(rate=RATE).pace(0)
    full = make_budget("full", rate=1.0)
    full.pace(6)
    assert all(full.decide(0.0) for _ in range(1000))


def test_a_manager_pickled_before_pacing_existed_reads_unpaced() -> None:
    m = RandomBudget(rate=RATE, seed=1)
    state = m.__dict__.copy()
    del state["_span"], state["_parts"]
    old = RandomBudget.__new__(RandomBudget)
    old.__setstate__(state)
    assert old.paced == (1000, 100)


def test_the_initial_allowance_is_shared() -> None:
    whole = make_budget(DEFAULT_BUDGET, rate=RATE, seed=1)
    k = math.floor(RATE * whole.initial + 1e-9)  # type: ignore[attr-defined]
    first = sum(whole.decide(1.0) for _ in range(5))
    assert first == 5 and k >= 5  # unpaced: the allowance is spent from the start
    for parts in (2, 4, 6):
        m = make_budget(DEFAULT_BUDGET, rate=RATE, seed=1)
        m.pace(parts)
        early = sum(m.decide(1.0) for _ in range(9))  # before rate * n reaches 1
        assert early == min(9, k // parts)


@pytest.mark.parametrize("budget", sorted(BUDGETS))
def test_every_budget_manager_can_be_paced(budget: str) -> None:
    rate = 1.0 if budget == "full" else RATE
    m: BudgetManager = make_budget(budget, rate=rate, seed=3)
    m.pace(4)
    asked = [i for i in range(8000) if m.decide((i * 37 % 100) / 100)]
    assert len(asked) <= math.floor(rate * 8000 + 1e-9) + m.paced[1]  # drift may borrow
    if budget not in ("full", "drift_aware"):
        assert worst_window(asked, m.paced[0]) <= m.paced[1]


# -- the whole stream, through group mode ---------------------------------------------
def _member(broker: MemoryBroker, folder: Path, name: str, partitions: int) -> GroupService:
    spec = LearnerSpec("logreg", "margin", DEFAULT_BUDGET, RATE, seed=7)
    return memory_group_member(broker, folder, name, spec, TOPICS, decider_seed=7)  # type: ignore[no-any-return]


def run_group(
    folder: Path, n: int, partitions: int, members: int, spread: str = "even"
) -> dict[str, Any]:
    """Decide ``n`` samples with ``members`` instances; the labels in produce order.

    ``spread``: ``"even"`` puts sample ``i`` in partition ``i % partitions`` (round
    robin); ``"keyed"`` lets the broker hash each sample's id.
    """
    broker = MemoryBroker()
    broker.create_topic(TOPICS.samples, partitions=partitions)
    for name in (TOPICS.queries, TOPICS.labels, "streamal.state"):
        broker.create_topic(name)
    samples = list(open_source(f"synth:Agrawal:n={n}", seed=3))
    truth = {s.id: s.y for s in samples}
    position = {s.id: i for i, s in enumerate(samples)}
    group = [_member(broker, folder, f"m{i}", partitions) for i in range(members)]
    answered = 0
    for first in range(0, n, 200):
        for i in range(first, min(n, first + 200)):
            s = samples[i]
            part = i % partitions if spread == "even" else None
            broker.produce(TOPICS.samples, encode(Sample(id=s.id, x=s.x)), s.id.encode(), (), part)
        for _ in range(2):
            for member in group:
                member.run(timeout=0.0)
            records = broker.records(TOPICS.queries)
            for env in records[answered:]:
                sid = json.loads(env.value or b"")["sample_id"]
                label = encode(Label(sample_id=sid, y=truth[sid]))
                broker.produce(TOPICS.labels, label, sid.encode())
            answered = len(records)
    for member in group:
        member.run(timeout=0.0)
    asked = {(env.key or b"").decode() for env in broker.records(TOPICS.queries)}
    deciders: list[ActiveLearner] = [d for m in group for d in m.deciders.values()]
    assert sum(d.stats.seen for d in deciders) == n
    return {
        "labels": len(asked),
        "worst_window": worst_window([position[sid] for sid in asked]),
        "paced": sorted({d.budget.paced for d in deciders}),
    }


@pytest.mark.parametrize(("partitions", "members"), [(4, 2), (6, 3)])
def test_an_even_stream_keeps_one_managers_window_promise(
    tmp_path: Path, partitions: int, members: int
) -> None:
    """Any 1,000 consecutive samples of the whole stream: at most b·1000 labels."""
    found = run_group(tmp_path, 6000, partitions, members)
    print(f"\n{partitions} partitions, {members} members: {found}")
    assert found["worst_window"] <= math.floor(RATE * WINDOW)
    assert found["labels"] <= RATE * 6000
    assert found["paced"] == [(-(-WINDOW // partitions), 100 // partitions)]


def _unpaced(self: BudgetManager, parts: int) -> None:
    """What group mode did before pacing (for the numbers in docs/scaling.md)."""


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


if __name__ == "__main__":  # the numbers of docs/scaling.md's promise table
    import sys
    import tempfile

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    originals = {
        cls: vars(cls)["pace"]
        for cls in (BudgetManager, *_subclasses(BudgetManager))
        if "pace" in vars(cls)
    }
    for paced in (False, True):
        for cls in originals:
            cls.pace = originals[cls] if paced else _unpaced  # type: ignore[method-assign]
        for spread in ("even", "keyed"):
            for partitions, members in ((4, 2), (6, 3)):
                with tempfile.TemporaryDirectory() as tmp:
                    found = run_group(Path(tmp), n, partitions, members, spread)
                print(
                    f"paced={paced} spread={spread} partitions={partitions} members={members} "
                    f"n={n}: {found}"
                )
