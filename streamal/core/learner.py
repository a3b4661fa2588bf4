"""The active learner: one core for the live service, offline replay and user loops."""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, NamedTuple

from streamal.budgets.base import BudgetManager
from streamal.core.audit import AuditPlan
from streamal.core.evaluation import LabelEvaluation
from streamal.core.pending import MemoryPendingStore, PendingEntry, PendingStore
from streamal.core.protocol import Queried
from streamal.core.registry import strategy_name
from streamal.exceptions import MessageRejected
from streamal.messages import (
    MAX_QUERY_META_BYTES,
    Label,
    Purpose,
    Query,
    Sample,
    bound_meta,
    offered_classes,
    query_bytes,
)
from streamal.strategies.base import Strategy

__all__ = ["ActiveLearner", "Decision", "LabelOutcome", "LearnerStats", "Reason", "top_class"]

_INF = math.inf


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


#: Why an arrival was or was not queried (see :class:`Decision`).
Reason = Literal["query", "score", "budget", "window"]


class Decision(NamedTuple):
    """The result of scoring one arrival (a named tuple: cheap to make, read by name).

    ``reason`` is ``"query"`` when a label was requested, ``"score"`` when the budget
    manager found the arrival not informative enough, ``"budget"`` when no label was
    left to spend, and ``"window"`` when window mode decides later (when the window
    closes). ``purpose`` is ``"learn"`` for the strategy's queries and ``"audit"`` for
    the audit slice.
    """

    sample_id: str
    proba: dict[Any, float]
    prediction: Any
    score: float
    queried: bool
    reason: Reason
    model_version: int
    propensity: float | None = None
    expires_at: float | None = None
    purpose: Purpose = "learn"


#: ``Decision`` from a tuple of all its fields: the learner makes one per arrival, and
#: ``tuple.__new__`` skips the keyword handling of the named tuple's ``__new__``.
_decision: Callable[[tuple[Any, ...]], Decision] = partial(tuple.__new__, Decision)


def top_class(proba: dict[Any, float]) -> Any:
    """The most probable class, the first one on ties (``None`` for an empty posterior).

    What ``max(proba, key=proba.__getitem__)`` gives, with two classes (the common case)
    unpacked directly instead of through a key function.

    Examples
    --------
    >>> top_class({"a": 0.4, "b": 0.6}), top_class({1: 0.5, 2: 0.5}), top_class({})
    ('b', 1, None)
    """
    if len(proba) == 2:
        (first, p), (second, q) = proba.items()
        return second if q > p else first
    prediction = None
    if proba:
        items = iter(proba.items())
        prediction, best = next(items)
        for label, p in items:
            if p > best:
                prediction, best = label, p
    return prediction


@dataclass(slots=True)
class LearnerStats:
    """Counters of everything the learner did since it was created."""

    #: Arrivals processed.
    seen: int = 0
    #: Queries asked (labels requested).
    queried: int = 0
    #: Labels the model learned from.
    applied: int = 0
    #: Labels for a query answered before (ignored).
    duplicate: int = 0
    #: Labels for an id never queried, or forgotten (ignored).
    unknown: int = 0
    #: Expiry *events*: a query closed because its deadline passed, and a label that
    #: came for a query already closed by expiry or eviction (counted again here).
    expired: int = 0
    #: Queries closed because the pending store was full (the oldest goes first).
    evicted: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    #: Expired *queries*: each query closed without a label because its deadline
    #: passed, counted once (by expiry, or when its late label came first).
    expired_queries: int = 0
    #: Labels learned by :meth:`ActiveLearner.warm_start` (before or beside the stream).
    warm_start: int = 0
    #: Of those, how many were charged to the label budget.
    warm_start_charged: int = 0
    #: Labels learned for samples never queried (:meth:`ActiveLearner.learn_unsolicited`).
    unsolicited: int = 0


def _charge(budget: BudgetManager, n: int) -> None:
    """Count ``n`` labels bought outside the stream as spent by ``budget`` (and its inner).

    Only the cumulative guard hears of them (they were bought at no arrival, so no
    sliding window holds them); a wrapper's inner manager is charged too, so that its
    own guards agree with the wrapper's.
    """
    manager: Any = budget
    while manager is not None:
        manager._spent += n
        manager = getattr(manager, "_inner", None)


class _RecentIds:
    """Bounded memory of closed query ids and how they closed (oldest forgotten first).

    A dict of outcomes and a deque of ids in closing order: forgetting the oldest is
    ``O(1)``. (``next(iter(d))`` on a dict skips the slots of every key deleted from its
    front since the last resize, which made each label slow once the memory was full.)
    An id closed again keeps its first place in the order.
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
        # pickles about four times faster than as a dict of enum members. A dict
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
        Share of the label budget spent on an **audit slice**: one arrival in every
        block of ``K = round(1 / (audit * budget.rate))``, at a uniformly drawn position
        (:class:`~streamal.core.audit.AuditPlan`), queried with ``purpose="audit"`` whatever
        its score, the model or the guards. They count inside the same budget: the
        manager is held back so that the guards hold for the sum and never refuse an
        audit. Their accuracy is an unbiased estimate of the stream's
        (:attr:`evaluation`); every query also carries its inclusion probability
        (``propensity``), which makes the IPW estimate use every label. ``0`` (the
        default) draws nothing and changes no decision.
    seed
        Seed of the audit draws.
    classes
        The labels the stream may carry, if known. A label outside them is refused
        (:class:`~streamal.exceptions.MessageRejected`, a dead letter in the service)
        before anything changes. Without it, the first label fixes the label *type*
        (``bool``, ``int`` or ``str``): a label of another type is refused, and so is
        a new class that the model cannot take (a third class for ``logreg``).

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

    With an audit slice, some queries are random picks marked ``purpose="audit"`` (the
    manager keeps one label in hand for the next audit):

    >>> audited = ActiveLearner(
    ...     models.build_model("logreg"), strategies.Entropy(),
    ...     budgets.VariableThreshold(rate=0.5), audit=0.5, seed=3,
    ... )
    >>> decisions = [audited.process(Sample(id=str(i), x={"a": 1.0})) for i in range(40)]
    >>> sorted({d.purpose for d in decisions if d.queried}), sum(d.queried for d in decisions)
    (['audit', 'learn'], 19)
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
        classes: Sequence[Any] | None = None,
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
        self.classes = None if classes is None else tuple(classes)
        self.model_version = 0
        self.stats = LearnerStats()
        self._closed = _RecentIds(remember)
        #: Applied labels not folded yet: (sample id, purpose, correct, propensity).
        self._applied: list[tuple[str, Purpose, bool, float | None]] = []
        #: Their ids, so that ``process`` can tell a closed id without folding.
        self._applied_ids: set[str] = set()
        self._now = 0.0
        self._next_deadline: float | None = None
        self._audit_plan = AuditPlan(audit, budget.rate, budget.window, seed) if audit else None
        self._evaluation = LabelEvaluation()
        self._label_type: type | None = None
        self._class_keys = None if classes is None else {(type(c), c) for c in classes}
        #: Warm starts done, by the name they were given: name → labels learned.
        self.warm_starts: dict[str, int] = {}
        #: (model, its label guard): :meth:`_model_guard`'s cache, not pickled.
        self._guard: tuple[Any, Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_guard", None)
        state.pop("_applied_ids", None)  # rebuilt from ``_applied`` on load
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Learners pickled before the audit slice existed have none.
        state.setdefault("audit", 0.0)
        state.setdefault("seed", None)
        state.setdefault("remember", 100_000)
        if "_audit_plan" not in state:  # pickled before the audit plan: start one now
            plan = None
            if state["audit"]:
                budget = state["budget"]
                plan = AuditPlan(state["audit"], budget.rate, budget.window, state["seed"])
                plan._next_block = math.ceil(state["stats"].seen / plan.period)
                plan.manager_spent = budget.spent
            state["_audit_plan"] = plan
        state.pop("_audit_rng", None)
        state.pop("_audit_owed", None)
        state.setdefault("_evaluation", state.pop("evaluation", None) or LabelEvaluation())
        state.setdefault("_applied", [])
        state.setdefault("_applied_ids", {entry[0] for entry in state["_applied"]})
        state.setdefault("classes", None)
        state.setdefault("_label_type", None)
        state.setdefault("_class_keys", None)
        state.setdefault("warm_starts", {})
        state["_guard"] = None
        self.__dict__.update(state)
        for name in ("expired_queries", "warm_start", "warm_start_charged", "unsolicited"):
            if not hasattr(self.stats, name):
                setattr(self.stats, name, 0)

    @property
    def evaluation(self) -> LabelEvaluation:
        """Accuracy estimates from the applied labels (queried, audit, IPW)."""
        self._fold_applied()
        return self._evaluation

    # -- what the drivers read (see streamal.core.protocol.Learner) -------------------
    @property
    def target_rate(self) -> float:
        """The share of arrivals the learner may label: its budget manager's rate."""
        return self.budget.rate

    @property
    def threshold(self) -> float | None:
        """The budget manager's score threshold, if it has one."""
        return self.budget.threshold

    @property
    def audit_refused(self) -> int:
        """Audit draws the guards refused (none unless the audit slice is on)."""
        plan = self._audit_plan
        return 0 if plan is None else plan.refused

    @property
    def now(self) -> float:
        """The stream clock: the last arrival's ``ts``, or the number of arrivals."""
        return self._now

    # -- arrivals ------------------------------------------------------------------
    def process(self, sample: Sample) -> Decision:
        """Predict, score and decide for one arrival; keep it pending if queried.

        Raises
        ------
        MessageRejected
            If a sample with the same id is still waiting for its label (it would be
            paid for twice); nothing changes. An exception from the model's prediction
            or the strategy's score also leaves everything as it was: both run before
            any state is touched.
        """
        # The hot path: arrive, top_class and add_pending are written out here (one
        # call each less per arrival); the methods stay for window mode and readers.
        sample_id = sample.id
        pending = self.pending
        if sample_id in pending:
            raise MessageRejected(
                "sample_pending", f"sample {sample_id!r} is already waiting for its label"
            )
        x = sample.x
        model = self.model
        proba = model.predict_proba_one(x)
        if len(proba) == 2:  # top_class(proba)
            (first, p), (second, q) = proba.items()
            prediction = second if q > p else first
        else:
            prediction = top_class(proba)
        strategy = self.strategy
        score = strategy.score(x, proba, model)
        stats = self.stats  # arrive(sample)
        seen = stats.seen = stats.seen + 1
        ts = sample.ts
        now = self._now = float(seen if ts is None else ts)
        soonest = self._next_deadline
        if soonest is not None and now >= soonest:
            self.expire(now)
        # An id whose query was closed (answered, expired) is not bought again: its
        # label would be refused as closed, so the label would be paid for in vain.
        fresh = sample_id not in self._applied_ids and self._closed.get(sample_id) is None
        if self.audit:
            queried, allowed, purpose, propensity = self._decide_audited(score, now, fresh)
        else:
            queried, allowed, propensity = self.budget.verdict(
                score, now, len(pending), allowed=fresh
            )
            purpose = "learn"
        if strategy.stateful:
            strategy.observe(x)
        ttl = self.ttl
        expires_at = None if ttl is None else now + ttl
        version = self.model_version
        if queried:
            deadline = _INF if expires_at is None else expires_at
            stats.queried += 1  # add_pending(entry)
            evicted = pending.put(
                PendingEntry(
                    sample_id, x, now, deadline, score, prediction, version, purpose, propensity
                )
            )
            if strategy.stateful:
                strategy.queried(x)
            if evicted is not None:
                stats.evicted += 1
                self._close(evicted.sample_id, LabelOutcome.EXPIRED)
                if strategy.stateful:
                    strategy.closed(evicted.x)
            if deadline != _INF:
                soonest = self._next_deadline
                if soonest is None or deadline < soonest:
                    self._next_deadline = deadline
            reason = "query"
        else:
            reason = "score" if allowed else "budget"
        return _decision(
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
            )
        )

    def arrive(self, sample: Sample) -> float:
        """Count an arrival, move the clock to it and expire the queries now due.

        The step of :meth:`process` after predicting and scoring (written out there);
        window mode calls it for each arrival it buffers. Returns the stream time of the
        arrival (``ts``, else its number).
        """
        stats = self.stats
        seen = stats.seen = stats.seen + 1
        ts = sample.ts
        now = self._now = float(seen if ts is None else ts)
        deadline = self._next_deadline
        if deadline is not None and now >= deadline:
            self.expire(now)
        return now

    def assess(self, x: dict[str, Any]) -> tuple[dict[Any, float], Any, float]:
        """Predict and score features ``x`` without deciding: ``(proba, prediction, score)``.

        The strategy observes the arrival (what :meth:`process` does besides deciding);
        window mode decides later, for a whole window.
        """
        model = self.model
        proba = model.predict_proba_one(x)
        strategy = self.strategy
        score = strategy.score(x, proba, model)
        if strategy.stateful:
            strategy.observe(x)
        return proba, top_class(proba), score

    def _decide_audited(
        self, score: float, now: float, fresh: bool
    ) -> tuple[bool, bool, Purpose, float | None]:
        """The decision when an audit slice is on: (queried, allowed, purpose, propensity).

        Whether the arrival is audited comes from the :class:`~streamal.core.audit.AuditPlan`
        (drawn ahead, blind to the stream). The manager decides first, held back by the
        plan so that every audit finds a label; an audited arrival is then labelled
        whatever the manager decided. ``propensity`` is the probability that this
        arrival was queried given the past: ``1/K + (1 - 1/K) · p``, with ``p`` the
        manager's query probability (from its verdict, else 1 if it chose the arrival
        and 0 if not, exact for deterministic managers). An arrival whose id already
        closed (``fresh`` false) is bought neither by the manager nor as an audit: its
        label would be refused, paid for in vain; an audit drawn there counts as refused.
        """
        budget, plan = self.budget, self._audit_plan
        assert plan is not None
        n = self.stats.seen
        audited = plan.is_audit(n)
        waiting = len(self.pending)
        credit = getattr(budget, "credit", None)
        cap = getattr(budget, "window_cap", None)
        gate = plan.manager_allowed(
            n,
            cap() if cap is not None else max(1, math.floor(budget.rate * budget.window + 1e-9)),
            credit() if credit is not None else 0.0,
        )
        chosen, allowed, p = budget.verdict(score, now, waiting, allowed=gate and fresh)
        if not allowed:
            p = 0.0
        elif p is None:
            p = 1.0 if chosen else 0.0
        q = plan.probability
        propensity = q + (1.0 - q) * p
        if audited:
            if chosen or (fresh and budget.spend_extra(now, waiting)):
                plan.served += 1
                return True, allowed, "audit", propensity
            plan.refused += 1
            return False, allowed, "learn", propensity
        if chosen:
            plan.manager_spends(n)
        return chosen, allowed, "learn", propensity

    def add_pending(self, entry: PendingEntry) -> None:
        """Keep a queried arrival pending and count the query.

        Window mode calls it for the arrivals its selector chose (:meth:`process` does
        the same inline for its own queries). A query the store evicts to make room
        closes as expired.
        """
        self.stats.queried += 1
        evicted = self.pending.put(entry)
        strategy = self.strategy
        if strategy.stateful:
            strategy.queried(entry.x)
        if evicted is not None:
            self.stats.evicted += 1
            self._close(evicted.sample_id, LabelOutcome.EXPIRED)
            if strategy.stateful:
                strategy.closed(evicted.x)
        deadline = entry.expires_at
        if deadline != _INF:
            soonest = self._next_deadline
            if soonest is None or deadline < soonest:
                self._next_deadline = deadline

    def expire(self, now: float) -> list[PendingEntry]:
        """Expire the queries whose deadline is at or before ``now``; return them."""
        expired = self.pending.expire(now)
        strategy = self.strategy
        for entry in expired:
            self._close(entry.sample_id, LabelOutcome.EXPIRED)
            if strategy.stateful:
                strategy.closed(entry.x)
        self.stats.expired += len(expired)
        self.stats.expired_queries += len(expired)
        deadline = self.pending.next_deadline()
        self._next_deadline = None if deadline == _INF else deadline
        return expired

    def take_queried(self) -> list[Queried]:
        """Queries chosen after their arrival: never any here (each is decided at once)."""
        return []

    def finish(self) -> list[Queried]:
        """The stream ends: nothing is left open here, so no query is chosen."""
        return []

    # -- labels --------------------------------------------------------------------
    def apply(self, label: Label) -> LabelOutcome:
        """Learn from ``label`` if it answers a pending query; say what happened.

        A label for a query answered before is a duplicate and is ignored; a label for an
        expired query, or for an id never queried (or forgotten), changes nothing.

        Raises
        ------
        MessageRejected
            If the label is outside :attr:`classes`, of another type than the labels
            before it, or a class the model cannot take (checked before anything
            changes); or if the model raised while learning it (``model_error``: the
            query stays pending, the model may hold part of the update).
        """
        sample_id = label.sample_id
        y = label.y
        pending = self.pending
        if sample_id not in pending:  # nothing would be learned: the class does not matter
            return self._closed_outcome(sample_id)
        self.check_label(y)
        entry = pending.pop(sample_id)
        if entry is None:
            return self._closed_outcome(sample_id)
        if entry.expires_at < self._now:
            self._close(sample_id, LabelOutcome.EXPIRED)
            if self.strategy.stateful:
                self.strategy.closed(entry.x)
            self.stats.expired += 1
            self.stats.expired_queries += 1
            return LabelOutcome.EXPIRED
        try:  # _update(entry.x, y), written out (one call less per label)
            x = entry.x
            self.model.learn_one(x, y)
            if self._label_type is None:
                self._label_type = type(y)
            strategy = self.strategy
            if strategy.stateful:
                strategy.learn(x, y)
            self.model_version += 1
        except Exception as err:
            pending.put(entry)  # the query stays open: it was just taken out
            raise MessageRejected(
                "model_error",
                f"the model could not learn label {y!r} of {sample_id!r} "
                f"({type(err).__name__}: {err}); check that it takes labels like this one "
                "(models 'ovr', 'softmax' and the trees take any classes)",
            ) from err
        # Prequential outcome of a labelled arrival, for drift-aware budget managers.
        correct = entry.prediction == y
        self.budget.on_label(correct)
        applied = self._applied
        applied.append((sample_id, entry.purpose, correct, entry.propensity))
        self._applied_ids.add(sample_id)
        if len(applied) >= _FOLD_EVERY:
            self._fold_applied()
        self.stats.applied += 1
        return _APPLIED

    def check_label(self, y: Any) -> None:
        """Raise :class:`~streamal.exceptions.MessageRejected` if the model must not learn ``y``.

        Examples
        --------
        >>> from streamal import ActiveLearner, budgets, models, strategies
        >>> learner = ActiveLearner(
        ...     models.build_model("logreg"), strategies.Entropy(), budgets.FullBudget(),
        ...     classes=["spam", "ham"],
        ... )
        >>> learner.check_label("spam")
        >>> learner.check_label("eggs")
        Traceback (most recent call last):
        ...
        streamal.exceptions.MessageRejected: label 'eggs' is not among the classes ['spam', 'ham']
        """
        keys = self._class_keys
        if keys is not None:
            if (type(y), y) not in keys:
                classes = list(self.classes or ())
                raise MessageRejected(
                    "unknown_class", f"label {y!r} is not among the classes {classes!r}"
                )
            return
        known = self._label_type
        if known is not None and type(y) is not known:
            raise MessageRejected(
                "unknown_class",
                f"label {y!r} is a {type(y).__name__}, the labels so far are {known.__name__}s",
            )
        guard = self._guard
        accepts = guard[1] if guard is not None and guard[0] is self.model else self._model_guard()
        if accepts is not None and not accepts(y):
            raise MessageRejected(
                "unknown_class",
                f"label {y!r} is a new class the model cannot take (a third class for a "
                "binary model); use a multi-class model such as 'ovr' or 'softmax'",
            )

    def _model_guard(self) -> Any:
        """:func:`_label_guard` of the current model, looked up once per model object.

        Kept out of snapshots (see :meth:`__getstate__`): a bound method is no state.
        """
        model = self.model
        cached = self._guard
        if cached is None or cached[0] is not model:
            cached = self._guard = (model, _label_guard(model))
        return cached[1]

    def _fold_applied(self) -> None:
        """Bring the closed-id memory and the evaluation up to date with the applied log."""
        applied, self._applied = self._applied, []
        self._applied_ids = set()
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

        Raises
        ------
        MessageRejected
            As :meth:`apply`: a label the model must not learn (see :meth:`check_label`).

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
        self.check_label(label.y)
        self._update(dict(label.x), label.y)
        self._close(sample_id, _APPLIED)
        self.stats.unsolicited += 1
        return LabelOutcome.UNSOLICITED

    def learn(self, label: Label) -> bool:
        """Apply ``label``; ``True`` if the model learned from it (see :meth:`apply`)."""
        return self.apply(label) is _APPLIED

    def settle(self, sample_id: str, y: Any) -> bool:
        """Close the query for ``sample_id`` as answered by ``y``, without learning it.

        Scale-out (group) mode: another learner holds the model and learns the label;
        this one decided the query and keeps its budget. The pending entry goes, the
        budget manager hears whether its prediction was right, and the label counts as
        applied. ``False`` (and nothing changes) when no query for ``sample_id`` waits.

        Examples
        --------
        >>> from streamal import ActiveLearner, Sample, budgets, models, strategies
        >>> decider = ActiveLearner(
        ...     models.build_model("logreg"), strategies.Entropy(), budgets.FullBudget()
        ... )
        >>> _ = decider.process(Sample(id="a", x={"f": 1.0}))
        >>> decider.settle("a", True), decider.settle("a", True), decider.model_version
        (True, False, 0)
        >>> len(decider.pending), decider.stats.applied
        (0, 1)
        """
        entry = self.pending.pop(sample_id)
        if entry is None:
            return False
        if self.strategy.stateful:
            self.strategy.closed(entry.x)
        self.budget.on_label(entry.prediction == y)
        self.stats.applied += 1
        return True

    def outcome_of(self, sample_id: str) -> LabelOutcome | None:
        """How the query for ``sample_id`` closed, if it did and is still remembered.

        ``None`` for an id pending, never queried, or forgotten (see ``remember``).

        Examples
        --------
        >>> from streamal import ActiveLearner, Label, Sample, budgets, models, strategies
        >>> learner = ActiveLearner(
        ...     models.build_model("logreg"), strategies.Entropy(), budgets.FullBudget()
        ... )
        >>> _ = learner.process(Sample(id="a", x={"f": 1.0}))
        >>> learner.outcome_of("a"), learner.apply(Label(sample_id="a", y=True)).value
        (None, 'applied')
        >>> learner.outcome_of("a").value, learner.outcome_of("b")
        ('applied', None)
        """
        self._fold_applied()
        return self._closed.get(sample_id)

    def warm_start(
        self,
        labelled: Iterable[Sample | tuple[dict[str, Any], Any]],
        *,
        charge: bool = False,
        name: str | None = None,
    ) -> int:
        """Learn from already-labelled samples before (or beside) the stream; return how many.

        A cure for the cold start: the first queries are then decided by a model that
        already knows something. The labels are counted apart, in
        ``stats.warm_start``, and are *not* charged to the label budget unless
        ``charge`` is true; charged labels count as spent, so the manager's guards hold
        for the warm-start and stream labels together (after ``n`` arrivals at most
        ``budget.promised(n)`` labels in all, ``floor(rate · n)`` unless the manager has
        an initial allowance: with ``N`` charged labels beyond it the stream's first
        query comes after about ``N / rate`` arrivals).

        Parameters
        ----------
        labelled
            :class:`Sample` with their ``y``, or ``(x, y)`` pairs.
        charge
            Count the labels as spent from the budget.
        name
            A name for this warm start (a file, a topic). A learner that already did a
            warm start of this name learns nothing and returns 0, so that a service
            restarted from a snapshot does not learn the same data twice
            (:attr:`warm_starts` travels in the snapshot).

        Examples
        --------
        >>> from streamal import ActiveLearner, Sample, budgets, models, strategies
        >>> learner = ActiveLearner(
        ...     models.build_model("logreg"), strategies.Entropy(), budgets.VariableThreshold(0.1)
        ... )
        >>> seed = [({"a": float(i % 2)}, i % 2 == 0) for i in range(20)]
        >>> learner.warm_start(seed, name="seed.jsonl"), learner.warm_start(seed, name="seed.jsonl")
        (20, 0)
        >>> learner.stats.warm_start, learner.budget.spent, learner.warm_starts
        (20, 0, {'seed.jsonl': 20})
        """
        if name is not None and name in self.warm_starts:
            return 0
        n = 0
        for item in labelled:
            if isinstance(item, Sample):
                if item.y is None:
                    raise ValueError(f"warm-start sample {item.id!r} has no label y")
                self._update(item.x, item.y)
            else:
                self._update(item[0], item[1])
            n += 1
        self.stats.warm_start += n
        if charge and n:
            _charge(self.budget, n)
            self.stats.warm_start_charged += n
        if name is not None:
            self.warm_starts[name] = n
        return n

    def _update(self, x: dict[str, Any], y: Any) -> None:
        # apply() writes this out: keep both in step.
        self.model.learn_one(x, y)
        if self._label_type is None:  # warm-start labels fix the label type too
            self._label_type = type(y)
        if self.strategy.stateful:
            self.strategy.learn(x, y)
        self.model_version += 1

    # -- helpers -------------------------------------------------------------------
    def query_for(
        self,
        sample: Sample,
        decision: Decision,
        purpose: Purpose | None = None,
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
            strategy=strategy_name(self.strategy),
            model_version=decision.model_version,
            ts=sample.ts,
            expires_at=decision.expires_at,
            purpose=decision.purpose if purpose is None else purpose,
            propensity=decision.propensity,
            meta=meta or None,
            classes=offered_classes(decision.proba, classes),
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

        The same bytes as ``encode(self.query_for(sample, decision))``, through
        :func:`streamal.messages.query_bytes` (the service's per-query path).
        """
        return query_bytes(
            sample,
            decision.proba,
            decision.prediction,
            decision.score,
            strategy_name(self.strategy),
            decision.model_version,
            decision.expires_at,
            decision.purpose,
            decision.propensity,
            meta=bound_meta(sample.meta, meta_bytes) if sample.meta else None,
            classes=offered_classes(decision.proba, classes),
        )

    def __repr__(self) -> str:
        return (
            f"ActiveLearner(strategy={self.strategy!r}, budget={self.budget!r}, "
            f"model_version={self.model_version}, pending={len(self.pending)})"
        )


def _label_guard(model: Any) -> Any:
    """The ``accepts_label`` method of ``model`` or of a pipeline's last step, if any."""
    accepts = getattr(model, "accepts_label", None)
    if accepts is None:
        steps = getattr(model, "steps", None)
        if isinstance(steps, dict) and steps:
            accepts = getattr(list(steps.values())[-1], "accepts_label", None)
    return accepts
