"""ActiveLearner: decisions, pending labels, idempotence, expiry, warm start, pickling."""

from __future__ import annotations

import pickle

import pytest

from streamal import ActiveLearner, Label, LabelOutcome, Sample, budgets, strategies
from streamal.core.models import build_model
from streamal.core.pending import SQLitePendingStore
from streamal.offline.replay import build_learner
from streamal.offline.streams import open_source


def learner(rate: float = 0.5, ttl: float | None = None, **kw: object) -> ActiveLearner:
    return ActiveLearner(
        build_model("logreg"),
        strategies.Entropy(),
        budgets.VariableThreshold(rate=rate),
        ttl=ttl,
        **kw,
    )  # type: ignore[arg-type]


def sample(i: int, ts: float | None = None) -> Sample:
    return Sample(id=str(i), x={"a": float(i % 3), "c": "x" if i % 2 else "y"}, ts=ts)


def test_queried_samples_wait_for_their_label_and_update_the_model() -> None:
    al = learner()
    decisions = [al.process(sample(i)) for i in range(20)]
    queried = [d.sample_id for d in decisions if d.queried]
    assert queried and len(al.pending) == len(queried)
    assert all(d.reason == "query" for d in decisions if d.queried)
    assert {d.reason for d in decisions if not d.queried} <= {"score", "budget"}
    for n, sid in enumerate(queried, start=1):
        assert al.apply(Label(sample_id=sid, y=int(sid) % 2 == 0)) is LabelOutcome.APPLIED
        assert al.model_version == n
    assert len(al.pending) == 0 and al.stats.applied == len(queried)


def test_duplicate_unknown_and_expired_labels_are_reported_not_raised() -> None:
    al = learner(ttl=3.0)
    decisions = [al.process(sample(i)) for i in range(30)]
    first = next(d for d in decisions if d.queried)
    # queries older than 3 samples have expired by now
    assert al.apply(Label(sample_id=first.sample_id, y=True)) is LabelOutcome.EXPIRED
    assert al.apply(Label(sample_id="never-seen", y=True)) is LabelOutcome.UNKNOWN
    al2 = learner()
    d = next(d for d in (al2.process(sample(i)) for i in range(30)) if d.queried)
    assert al2.learn(Label(sample_id=d.sample_id, y=True)) is True
    version = al2.model_version
    assert al2.apply(Label(sample_id=d.sample_id, y=False)) is LabelOutcome.DUPLICATE
    assert al2.model_version == version
    assert (al.stats.expired, al.stats.unknown, al2.stats.duplicate) >= (1, 1, 1)


def test_an_id_whose_query_was_closed_is_not_bought_again() -> None:
    al = learner()
    al.budget = budgets.FullBudget()
    assert al.process(sample(1)).queried
    assert al.apply(Label(sample_id="1", y=False)) is LabelOutcome.APPLIED
    again = al.process(sample(1))  # its label would be refused as a duplicate
    assert not again.queried and al.budget.spent == 1
    assert al.process(sample(2)).queried  # other ids still are


def test_with_an_audit_slice_a_closed_id_is_bought_neither_by_the_manager_nor_as_audit() -> None:
    al = learner(audit=1.0, seed=3)  # audit blocks of 2 arrivals: one in two is audited
    al.budget = budgets.FullBudget()
    assert al.process(sample(1)).queried
    assert al.apply(Label(sample_id="1", y=False)) is LabelOutcome.APPLIED
    plan = al._audit_plan
    assert plan is not None and plan.refused == 0
    # Its label would be refused as a duplicate: neither the manager nor an audit buys it.
    again = [al.process(sample(1)) for _ in range(10)]
    assert not any(d.queried for d in again) and al.budget.spent == 1
    assert plan.refused >= 3  # the audits drawn on those arrivals are counted as refused


def test_ttl_in_seconds_when_samples_carry_time() -> None:
    al = learner(ttl=10.0)
    d = al.process(sample(0, ts=1000.0))
    ds = [al.process(sample(i, ts=1000.0 + i)) for i in range(1, 60)]
    queried = [x for x in [d, *ds] if x.queried]
    assert queried and all(q.expires_at is not None for q in queried)
    late = queried[0]
    assert late.expires_at == float(late.sample_id) + 1000.0 + 10.0
    assert al.apply(Label(sample_id=late.sample_id, y=True)) is LabelOutcome.EXPIRED
    assert al.stats.expired >= 1


def test_bounded_pending_store_evicts_and_reports() -> None:
    from streamal.core.pending import MemoryPendingStore

    al = learner(rate=1.0, pending=MemoryPendingStore(max_size=5))
    al.budget = budgets.FullBudget()
    for i in range(12):
        al.process(sample(i))
    assert len(al.pending) == 5 and al.stats.evicted == 7
    assert al.apply(Label(sample_id="0", y=True)) is LabelOutcome.EXPIRED


def test_warm_start_counts_as_updates() -> None:
    al = learner()
    n = al.warm_start(
        [(sample(i).x, i % 2 == 0) for i in range(5)]
        + [Sample(id="w", x={"a": 1.0, "c": "x"}, y=True)]
    )
    assert n == 6 and al.model_version == 6
    assert al.process(sample(1)).prediction in {True, False}


def test_same_seed_same_decisions_and_pickle_resumes_identically() -> None:
    stream = list(open_source("synth:SEA:n=3000", seed=3))

    def drive(al: ActiveLearner, items: list[Sample]) -> list[bool]:
        out = []
        for s in items:
            d = al.process(s)
            out.append(d.queried)
            if d.queried:
                al.learn(Label(sample_id=s.id, y=s.y))  # type: ignore[arg-type]
        return out

    a = build_learner("hat", "entropy", "variable_threshold", 0.1, seed=5)
    b = build_learner("hat", "entropy", "variable_threshold", 0.1, seed=5)
    assert drive(a, stream) == drive(b, stream)
    c = build_learner("hat", "entropy", "variable_threshold", 0.1, seed=5)
    head = drive(c, stream[:1500])
    resumed = pickle.loads(pickle.dumps(c))
    assert head + drive(resumed, stream[1500:]) == drive(
        build_learner("hat", "entropy", "variable_threshold", 0.1, seed=5), stream
    )


def test_sqlite_pending_store_in_a_learner_pickles() -> None:
    al = learner(rate=1.0, pending=SQLitePendingStore(":memory:"))
    al.budget = budgets.FullBudget()
    for i in range(4):
        al.process(sample(i))
    copy = pickle.loads(pickle.dumps(al))
    assert len(copy.pending) == 4 and copy.learn(Label(sample_id="2", y=True))


def test_query_message_for_a_decision() -> None:
    al = learner(rate=1.0)
    al.budget = budgets.FullBudget()
    s = sample(1, ts=5.0)
    q = al.query_for(s, al.process(s))
    assert q.sample_id == "1" and q.strategy == "entropy" and q.purpose == "learn"
    assert q.x == s.x and 0.0 <= q.score <= 1.0


def test_closed_ids_are_forgotten_oldest_first_and_old_pickles_load() -> None:
    al = learner(rate=1.0, remember=3)
    al.budget = budgets.FullBudget()
    ids = [al.process(sample(i)).sample_id for i in range(5)]
    for sid in ids:
        assert al.learn(Label(sample_id=sid, y=True))
    # the first two closed ids are forgotten: their labels are now unknown
    outcomes = [al.apply(Label(sample_id=sid, y=True)) for sid in ids]
    assert outcomes[:2] == [LabelOutcome.UNKNOWN] * 2
    assert outcomes[2:] == [LabelOutcome.DUPLICATE] * 3
    # a learner pickled when the memory was a plain dict still resumes
    al._closed.__setstate__((3, dict(al._closed._ids)))
    al.process(sample(9))
    assert al.learn(Label(sample_id="9", y=True))
    assert al.apply(Label(sample_id=ids[2], y=True)) is LabelOutcome.UNKNOWN


@pytest.mark.parametrize(
    "ids",
    [[], [""], ["a", "b", "c"], ["a\x00b", "c"], ["\x00"], ["x", ""]],
    ids=["empty", "one-empty-id", "plain", "separator-in-id", "only-separator", "empty-last"],
)
def test_closed_id_memory_pickles_to_the_same_ids_outcomes_and_order(ids: list[str]) -> None:
    from streamal.core.learner import _RecentIds

    memory = _RecentIds(maxlen=10)
    for i, sid in enumerate(ids):
        memory.add(sid, LabelOutcome.EXPIRED if i % 2 else LabelOutcome.APPLIED)
    restored = pickle.loads(pickle.dumps(memory))
    assert restored.maxlen == 10
    assert list(restored._ids.items()) == list(memory._ids.items())
    assert list(restored._order) == list(memory._order)
    assert all(type(v) is LabelOutcome for v in restored._ids.values())


def test_applied_labels_are_folded_in_batches_without_changing_outcomes() -> None:
    from streamal.core.learner import _FOLD_EVERY

    al = learner(rate=1.0, remember=10 * _FOLD_EVERY)
    al.budget = budgets.FullBudget()
    n = _FOLD_EVERY + 7  # one fold on the way, seven labels left in the log
    for i in range(n):
        al.process(sample(i))
        assert al.learn(Label(sample_id=str(i), y=i % 2 == 0))
    assert len(al._applied) == 7
    # a duplicate of a label still in the log, and of one already folded
    assert al.apply(Label(sample_id=str(n - 1), y=True)) is LabelOutcome.DUPLICATE
    assert al.apply(Label(sample_id="0", y=True)) is LabelOutcome.DUPLICATE
    assert al.evaluation.queried.count == n
    # a pickle taken with labels still in the log resumes with the same estimates
    al.process(sample(n))
    al.learn(Label(sample_id=str(n), y=True))
    restored = pickle.loads(pickle.dumps(al))
    assert restored.evaluation.summary() == al.evaluation.summary()
    assert restored.apply(Label(sample_id=str(n), y=True)) is LabelOutcome.DUPLICATE


def test_learner_pickled_with_a_public_evaluation_still_loads() -> None:
    al = learner(rate=1.0)
    al.budget = budgets.FullBudget()
    al.process(sample(1))
    al.learn(Label(sample_id="1", y=True))
    state = al.__dict__.copy()
    state["evaluation"] = state.pop("_evaluation")
    del state["_applied"]
    old = ActiveLearner.__new__(ActiveLearner)
    old.__setstate__(state)
    assert old.evaluation.queried.count == 0  # the unfolded label was in the log
    assert old.apply(Label(sample_id="2", y=True)) is LabelOutcome.UNKNOWN


def test_query_json_is_the_encoded_query_message() -> None:
    from streamal.messages import decode_query, encode

    cases = [
        build_learner("logreg", "entropy", "full", 1.0, seed=1, ttl=50.0),
        build_learner("hoeffding", "margin", "full", 1.0, seed=2),
        ActiveLearner(
            build_model("logreg"), strategies.Entropy(), budgets.FullBudget(), audit=1.0, seed=3
        ),
    ]
    from itertools import islice

    for al in cases:
        for i, row in enumerate(islice(open_source("river:ImageSegments", seed=1), 60)):
            meta = [{}, {"url": f"https://example.org/{i}.png"}, {"text": "x" * 20_000}][i % 3]
            s = Sample(id=row.id, x=row.x, ts=[None, 3, 4.5][i % 3], meta=meta)
            decision = al.process(s)
            assert decision.queried
            fast, slow = al.query_json(s, decision), encode(al.query_for(s, decision))
            assert fast == slow
            cut = al.query_json(s, decision, classes=["a", "b"], meta_bytes=100)
            assert cut == encode(al.query_for(s, decision, classes=["a", "b"], meta_bytes=100))
            assert len(decode_query(fast).meta or {}) <= 1  # 20 kB of text is cut
            assert decode_query(fast) == al.query_for(s, decision)
            multi = isinstance(al.strategy, strategies.Margin)  # the tree takes 7 classes
            assert row.y is not None
            al.learn(Label(sample_id=s.id, y=row.y if multi else i % 2 == 0))
