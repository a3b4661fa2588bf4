"""The active learner: one core for the live service, offline replay and user loops."""

from __future__ import annotations

import enum
import math
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pydantic_core import to_json

from streamal.budgets.base import BudgetManager
from streamal.evaluation import LabelEvaluation
from streamal.messages import (
    MAX_QUERY_META_BYTES,
    SCHEMA_VERSION,
    Label,
    Query,
    Sample,
    bound_meta,
)
from streamal.pending import MemoryPendingStore, PendingEntry, PendingStore
from streamal.strategies.base import Strategy

__all__ = ["ActiveLearner", "Decision", "LabelOutcome", "LearnerStats"]

_INF = math.inf
#: Audit draws waiting for a label the guards allow (bounded so that a manager that
#: never leaves a label free cannot make the debt grow forever; the guards still pace it).
_MAX_AUDIT_OWED = 1000


class LabelOutcome(enum.StrEnum):
    """What happened to a label handed to :meth:`ActiveLearner.apply`."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    UNSOLICITED = "unsolicited"


_APPLIED = LabelOutcome.APPLIED
_OUTCOMES = {outcome.value: outcome for outcome in LabelOutcome}
#: Separates the ids of the closed-id memory in its pickled form (no outcome holds it).
_SEP = "\x00"
#: Applied labels are logged raw, and folded into the closed-id memory and the
#: evaluation every this many labels or before either is read.
_FOLD_EVERY = 1024


class Decision(NamedTuple):
    """The result of scoring one arrival (a named tuple: cheap to make, read by name).

    ``reason`` is ``"query"`` when a label was requested, ``"score"`` when the budget
    manager found the arrival not informative enough, and ``"budget"`` when no label was
    left to spend.
    """

    sample_id: str
    proba: dict[Any, float]
    prediction: Any
    score: float
    queried: bool
    reason: str
    model_version: int
    propensity: float | None = None
    expires_at: float | None = None
    purpose: str = "learn"


#: Builds a :class:`Decision` from a tuple of all its fields, without the keyword
#: handling of ``Decision(...)`` (the learner makes one per arrival).
_new_tuple = tuple.__new__


@dataclass(slots=True)
class LearnerStats:
    """Counters of everything the learner did since it was created."""

    seen: int = 0
    queried: int = 0
    applied: int = 0
    duplicate: int = 0
    unknown: int = 0
    expired: int = 0
    evicted: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    #: Queries closed without a label because their deadline passed (TTL or late label).
    expired_queries: int = 0
    #: Labels learned for samples never queried (:meth:`ActiveLearner.learn_unsolicited`).
    unsolicited: int = 0


class _RecentIds:
    """Bounded memory of closed query ids and how they closed (oldest forgotten first).

    A dict of outcomes and a deque of ids in closing order: forgetting the oldest is
    ``O(1)``. (``next(iter(d))`` on a dict skips the slots of every key deleted from its
    front since the last resize, which made each label cost tens of microseconds once
    the memory was full.) An id closed again keeps its first place in the order.
    """

    __slots__ = ("maxlen", "_ids", "_order")

    def __init__(self, maxlen: int) -> None:
        self.maxlen = maxlen
        self._ids: dict[str, LabelOutcome] = {}
        self._order: deque[str] = deque()

    def add_all(self, sample_ids: Iterable[str], outcome: LabelOutcome) -> None:
        """Close many ids with the same outcome, in order (what ``add`` does for each)."""
        ids, order = self._ids, self._order
        closed = dict.fromkeys(sample_ids, outcome)
        order.extend([sample_id for sample_id in closed if sample_id not in ids])
        ids.update(closed)
        for _ in range(len(order) - self.maxlen):
            del ids[order.popleft()]

    def add(self, sample_id: str, outcome: LabelOutcome) -> None:
        ids = self._ids
        if sample_id not in ids:
            order = self._order
            order.append(sample_id)
            if len(order) > self.maxlen:
                del ids[order.popleft()]
        ids[sample_id] = outcome

    def get(self, sample_id: str) -> LabelOutcome | None:
        return self._ids.get(sample_id)

    def __getstate__(self) -> tuple[int, str, str] | tuple[int, dict[str, LabelOutcome]]:
        # The memory is in every snapshot: as two joined strings (ids, outcomes) it
        # pickles in about 3 ms at 100,000 ids, as a dict of enum members in 12. A dict
        # keeps insertion order, which is the closing order. The dict itself is kept
        # when empty or when an id holds the separator.
        ids = self._ids
        joined = _SEP.join(ids)
        if not ids or joined.count(_SEP) != len(ids) - 1:
            return (self.maxlen, ids)
        return (self.maxlen, joined, _SEP.join(ids.values()))

    def __setstate__(
        self, state: tuple[int, str, str] | tuple[int, dict[str, LabelOutcome]]
    ) -> None:
        if len(state) == 3:
            self.maxlen, joined, outcomes = state
            parts = map(_OUTCOMES.__getitem__, outcomes.split(_SEP))
            ids = dict(zip(joined.split(_SEP), parts, strict=True))
        else:
            self.maxlen, ids = state
        self._ids = dict(ids)
        self._order = deque(ids)


class ActiveLearner:
    """Scores arrivals, decides which to label, and learns from labels when they come.

    Parameters
    ----------
    model
        A river classifier (``predict_proba_one`` and ``learn_one``).
    strategy
        How informative an arrival is (:mod:`streamal.strategies`).
    budget
        Whether to buy its label (:mod:`streamal.budgets`).
    pending
        Where queried samples wait for their label; an in-memory store by default.
    ttl
        How long a query waits for its label before it expires, in stream time: seconds
        when samples carry ``ts``, otherwise arrivals. ``None`` waits forever (the store
        stays bounded by its ``max_size``).
    remember
        How many closed query ids are remembered to tell duplicate and expired labels
        from unknown ones.
    audit
        Share of the label budget spent on an **audit slice**: arrivals drawn uniformly
        at random (probability ``audit * budget.rate`` each), queried with
        ``purpose="audit"`` whatever their score. They count inside the same budget (the
        manager's guards hold for the sum) and give an unbiased accuracy estimate
        (:attr:`evaluation`). A draw made while the guards leave no label is served by
        the next arrival they allow, before the manager may spend on it. ``0`` (the
        default) draws nothing and changes no decision.
    seed
        Seed of the audit draws.

    Examples
    --------
    >>> from streamal import ActiveLearner, Label, Sample, budgets, models, strategies
    >>> learner = ActiveLearner(
    ...     models.build_model("logreg"),
    ...     strategies.Entropy(),
    ...     budgets.VariableThreshold(rate=0.5),
    ... )
    >>> decisions = [learner.process(Sample(id=str(i), x={"a": float(i % 2)})) for i in range(4)]
    >>> [d.queried for d in decisions]
    [False, True, False, True]
    >>> learner.learn(Label(sample_id="1", y=True)), learner.model_version
    (True, 1)
    >>> learner.apply(Label(sample_id="1", y=True)).value
    'duplicate'

    With an audit slice, some queries are random picks marked ``purpose="audit"``:

    >>> audited = ActiveLearner(
    ...     models.build_model("logreg"), strategies.Entropy(),
    ...     budgets.VariableThreshold(rate=0.5), audit=0.5, seed=3,
    ... )
    >>> decisions = [audited.process(Sample(id=str(i), x={"a": 1.0})) for i in range(40)]
    >>> sorted({d.purpose for d in decisions if d.queried}), sum(d.queried for d in decisions)
    (['audit', 'learn'], 20)
    """

    def __init__(
        self,
        model: Any,
        strategy: Strategy,
        budget: BudgetManager,
        pending: PendingStore | None = None,
        ttl: float | None = None,
        remember: int = 100_000,
        audit: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if not 0.0 <= audit <= 1.0:
            from streamal.exceptions import ConfigError

            raise ConfigError(f"audit must be a share of the budget in [0, 1], got {audit}")
        self.model = model
        self.strategy = strategy
        self.budget = budget
        self.pending: PendingStore = MemoryPendingStore() if pending is None else pending
        self.ttl = ttl
        self.remember = remember
        self.audit = audit
        self.seed = seed
        self.model_version = 0
        self.stats = LearnerStats()
        self._closed = _RecentIds(remember)
        #: Applied labels not folded yet: (sample id, purpose, correct, propensity).
        self._applied: list[tuple[str, str, bool, float | None]] = []
        self._now = 0.0
        self._next_deadline: float | None = None
        self._audit_rng = random.Random(seed)
        self._audit_owed = 0
        self._evaluation = LabelEvaluation()

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Learners pickled before the audit slice existed have none.
        state.setdefault("audit", 0.0)
        state.setdefault("seed", None)
        state.setdefault("remember", 100_000)
        state.setdefault("_audit_rng", random.Random(None))
        state.setdefault("_audit_owed", 0)
        state.setdefault("_evaluation", state.pop("evaluation", None) or LabelEvaluation())
        state.setdefault("_applied", [])
        self.__dict__.update(state)
        if not hasattr(self.stats, "expired_queries"):
            self.stats.expired_queries = 0
        if not hasattr(self.stats, "unsolicited"):
            self.stats.unsolicited = 0

    @property
    def evaluation(self) -> LabelEvaluation:
        """Accuracy estimates from the applied labels (queried, audit, IPW)."""
        self._fold_applied()
        return self._evaluation

    # -- arrivals ------------------------------------------------------------------
    def process(self, sample: Sample) -> Decision:
        """Predict, score and decide for one arrival; keep it pending if queried."""
        stats = self.stats
        seen = stats.seen = stats.seen + 1
        ts = sample.ts
        now = self._now = float(seen if ts is None else ts)
        deadline = self._next_deadline
        if deadline is not None and now >= deadline:
            self.expire(now)
        x = sample.x
        model = self.model
        proba = model.predict_proba_one(x)
        # The most probable class, the first one on ties (what max(proba, key=...) gives).
        if len(proba) == 2:
            (first, p), (second, q) = proba.items()
            prediction = second if q > p else first
        else:
            prediction = None
            if proba:
                items = iter(proba.items())
                prediction, best = next(items)
                for label, p in items:
                    if p > best:
                        prediction, best = label, p
        strategy = self.strategy
        score = strategy.score(x, proba, model)
        budget = self.budget
        if self.audit:
            queried, purpose, propensity = self._decide_audited(score, now)
        else:
            queried = budget.decide(score, now, len(self.pending))
            purpose, propensity = "learn", budget.last_probability
        if strategy.stateful:
            strategy.observe(x)
        ttl = self.ttl
        expires_at = None if ttl is None else now + ttl
        version = self.model_version
        sample_id = sample.id
        if queried:
            stats.queried += 1
            self._put(
                PendingEntry(
                    sample_id,
                    x,
                    now,
                    _INF if expires_at is None else expires_at,
                    score,
                    prediction,
                    version,
                    purpose,
                    propensity,
                )
            )
            reason = "query"
        else:
            reason = "score" if budget.last_allowed else "budget"
        return _new_tuple(  # type: ignore[no-any-return]
            Decision,
            (
                sample_id,
                proba,
                prediction,
                score,
                queried,
                reason,
                version,
                propensity,
                expires_at,
                purpose,
            ),
        )

    def _decide_audited(self, score: float, now: float) -> tuple[bool, str, float | None]:
        """The decision when an audit slice is on: (queried, purpose, propensity)."""
        budget = self.budget
        audit = self.audit
        if self._audit_rng.random() < audit * budget.rate:
            self._audit_owed = min(self._audit_owed + 1, _MAX_AUDIT_OWED)
        if not self._audit_owed:
            queried = budget.decide(score, now, len(self.pending))
            return queried, "learn", budget.last_probability
        # An audit query: the manager sees the arrival but may not spend on it, and the
        # label is bought if the guards leave one (else the next arrival tries). The
        # draw came first and the guards depend only on the past, so the choice never
        # looks at this sample. Where the guards say no, the manager could not have
        # spent either, so its decisions are unchanged.
        waiting = len(self.pending)
        budget.decide(score, now, waiting, allowed=False)
        if budget.spend_extra(now, waiting):
            self._audit_owed -= 1
            return True, "audit", audit * budget.rate
        return False, "learn", audit * budget.rate

    def _put(self, entry: PendingEntry) -> None:
        """Keep a queried arrival pending: close the query it evicts, track its deadline."""
        evicted = self.pending.put(entry)
        if evicted is not None:
            self.stats.evicted += 1
            self._close(evicted.sample_id, LabelOutcome.EXPIRED)
        deadline = entry.expires_at
        if deadline != _INF:
            soonest = self._next_deadline
            if soonest is None or deadline < soonest:
                self._next_deadline = deadline

    def expire(self, now: float) -> list[PendingEntry]:
        """Expire the queries whose deadline is at or before ``now``; return them."""
        expired = self.pending.expire(now)
        for entry in expired:
            self._close(entry.sample_id, LabelOutcome.EXPIRED)
        self.stats.expired += len(expired)
        self.stats.expired_queries += len(expired)
        deadline = self.pending.next_deadline()
        self._next_deadline = None if deadline == _INF else deadline
        return expired

    # -- labels --------------------------------------------------------------------
    def apply(self, label: Label) -> LabelOutcome:
        """Learn from ``label`` if it answers a pending query; say what happened.

        A label for a query answered before is a duplicate and is ignored; a label for an
        expired query, or for an id never queried (or forgotten), changes nothing.
        """
        sample_id = label.sample_id
        entry = self.pending.pop(sample_id)
        if entry is None:
            return self._closed_outcome(sample_id)
        if entry.expires_at < self._now:
            self._close(sample_id, LabelOutcome.EXPIRED)
            self.stats.expired += 1
            self.stats.expired_queries += 1
            return LabelOutcome.EXPIRED
        y = label.y
        self._update(entry.x, y)
        # Prequential outcome of a labelled arrival, for drift-aware budget managers.
        correct = entry.prediction == y
        self.budget.on_label(correct)
        applied = self._applied
        applied.append((sample_id, entry.purpose, correct, entry.propensity))
        if len(applied) >= _FOLD_EVERY:
            self._fold_applied()
        self.stats.applied += 1
        return _APPLIED

    def _fold_applied(self) -> None:
        """Bring the closed-id memory and the evaluation up to date with the applied log."""
        applied, self._applied = self._applied, []
        if applied:
            ids, purposes, hits, propensities = zip(*applied, strict=True)
            self._closed.add_all(ids, _APPLIED)
            self._evaluation.extend(purposes, hits, propensities)

    def _close(self, sample_id: str, outcome: LabelOutcome) -> None:
        """Remember that the query for ``sample_id`` closed with ``outcome``."""
        if self._applied:
            self._fold_applied()
        self._closed.add(sample_id, outcome)

    def _closed_outcome(self, sample_id: str) -> LabelOutcome:
        """What a label for ``sample_id`` is when no query waits for it (and count it)."""
        self._fold_applied()
        outcome = self._closed.get(sample_id) or LabelOutcome.UNKNOWN
        if outcome is _APPLIED:
            outcome = LabelOutcome.DUPLICATE
        stats = self.stats
        setattr(stats, outcome.value, getattr(stats, outcome.value) + 1)
        return outcome

    def learn_unsolicited(self, label: Label) -> LabelOutcome:
        """Learn a label that carries its features ``x`` for a sample never queried.

        A chargeback or a complaint labels a sample nobody asked about. It is learned
        like a bought label, but it is not charged to the budget, not fed to the budget
        manager's accuracy, and counted apart (``stats.unsolicited``). Its id is closed
        afterwards, so a repeat is a duplicate. An id that is pending is applied as the
        answer to its query (:meth:`apply`); one closed before keeps its outcome.

        Examples
        --------
        >>> from streamal import budgets, models, strategies
        >>> learner = ActiveLearner(
        ...     models.build_model("logreg"), strategies.Entropy(), budgets.FullBudget()
        ... )
        >>> label = Label(sample_id="c-9", y=True, x={"amount": 930.0})
        >>> learner.learn_unsolicited(label).value, learner.learn_unsolicited(label).value
        ('unsolicited', 'duplicate')
        >>> learner.stats.unsolicited, learner.budget.spent, learner.model_version
        (1, 0, 1)
        """
        sample_id = label.sample_id
        if label.x is None or sample_id in self.pending:
            return self.apply(label)
        self._fold_applied()
        if self._closed.get(sample_id) is not None:
            return self._closed_outcome(sample_id)
        self._update(dict(label.x), label.y)
        self._close(sample_id, _APPLIED)
        self.stats.unsolicited += 1
        return LabelOutcome.UNSOLICITED

    def learn(self, label: Label) -> bool:
        """Apply ``label``; ``True`` if the model learned from it (see :meth:`apply`)."""
        return self.apply(label) is LabelOutcome.APPLIED

    def warm_start(self, labelled: Iterable[Sample | tuple[dict[str, Any], Any]]) -> int:
        """Learn from already-labelled samples before the stream starts; return how many."""
        n = 0
        for item in labelled:
            if isinstance(item, Sample):
                if item.y is None:
                    raise ValueError(f"warm-start sample {item.id!r} has no label y")
                self._update(item.x, item.y)
            else:
                self._update(item[0], item[1])
            n += 1
        return n

    def _update(self, x: dict[str, Any], y: Any) -> None:
        self.model.learn_one(x, y)
        if self.strategy.stateful:
            self.strategy.learn(x, y)
        self.model_version += 1

    # -- helpers -------------------------------------------------------------------
    def query_for(
        self,
        sample: Sample,
        decision: Decision,
        purpose: str | None = None,
        *,
        classes: list[Any] | None = None,
        meta_bytes: int = MAX_QUERY_META_BYTES,
    ) -> Query:
        """The :class:`Query` message for a queried arrival (``purpose``: the decision's).

        ``classes`` are the labels offered to the annotator; by default, those the model
        knows (the keys of its probabilities). The sample's ``meta`` is cut to
        ``meta_bytes`` (:func:`~streamal.messages.bound_meta`).
        """
        meta = bound_meta(sample.meta, meta_bytes)
        return Query(
            sample_id=sample.id,
            x=sample.x,
            proba={str(k): float(v) for k, v in decision.proba.items()},
            prediction=decision.prediction,
            score=decision.score,
            strategy=type(self.strategy).__name__,
            model_version=decision.model_version,
            ts=sample.ts,
            expires_at=decision.expires_at,
            purpose=decision.purpose if purpose is None else purpose,  # type: ignore[arg-type]
            propensity=decision.propensity,
            meta=meta or None,
            classes=_offered(decision.proba, classes),
        )

    def query_json(
        self,
        sample: Sample,
        decision: Decision,
        *,
        classes: list[Any] | None = None,
        meta_bytes: int = MAX_QUERY_META_BYTES,
    ) -> bytes:
        """The wire bytes of :meth:`query_for`'s message, without building the model.

        The same bytes as ``encode(self.query_for(sample, decision))`` (the service's
        per-query path: a third of the time). The sample and the decision were
        validated already; the tests check that both paths agree.
        """
        fields: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "sample_id": sample.id,
            "x": sample.x,
            "proba": {str(k): float(v) for k, v in decision.proba.items()},
        }
        if decision.prediction is not None:
            fields["prediction"] = decision.prediction
        fields["score"] = float(decision.score)
        fields["strategy"] = type(self.strategy).__name__
        fields["model_version"] = decision.model_version
        if sample.ts is not None:
            fields["ts"] = float(sample.ts)
        if decision.expires_at is not None:
            fields["expires_at"] = float(decision.expires_at)
        fields["purpose"] = decision.purpose
        if decision.propensity is not None:
            fields["propensity"] = float(decision.propensity)
        meta = sample.meta
        if meta:
            fields["meta"] = bound_meta(meta, meta_bytes)
        offered = _offered(decision.proba, classes)
        if offered is not None:
            fields["classes"] = offered
        return to_json(fields)

    def __repr__(self) -> str:
        return (
            f"ActiveLearner(strategy={self.strategy!r}, budget={self.budget!r}, "
            f"model_version={self.model_version}, pending={len(self.pending)})"
        )


def _offered(proba: dict[Any, float], classes: list[Any] | None) -> list[Any] | None:
    """The classes a query offers: ``classes``, else the model's (wire-typed) classes."""
    if classes is None:
        classes = [c for c in proba if type(c) in (bool, int, str)]
    return classes or None
