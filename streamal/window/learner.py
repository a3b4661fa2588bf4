"""Window (batch) mode: buffer a window of arrivals, then choose which to label at once.

:class:`WindowLearner` wraps an :class:`~streamal.core.learner.ActiveLearner`. Each arrival is
predicted and scored at once (``process`` returns its decision with ``reason="window"``);
when the window closes (``window`` arrivals, or ``seconds`` of stream time, whichever
first) a selector picks ``k = rate · n`` of the ``n`` buffered arrivals, they join the
learner's pending store, and :meth:`WindowLearner.take_queries` hands out their
decisions (``queried=True``). Labels go through :meth:`WindowLearner.apply` as usual.

The fractional remainder of ``rate · n`` is carried over to the next window, so after
``N`` closed arrivals at most ``floor(rate · N)`` labels were asked. Any ``1000``
consecutive arrivals see at most ``rate · (1000 + window)`` labels, and at most
``rate · 1000`` when only arrival counts close the windows and ``window`` divides 1000.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import numpy as np

from streamal.budgets.base import BudgetManager
from streamal.core.evaluation import LabelEvaluation
from streamal.core.learner import ActiveLearner, Decision, LabelOutcome, LearnerStats
from streamal.core.pending import PendingEntry, PendingStore
from streamal.core.protocol import Queried
from streamal.core.registry import make_selector
from streamal.exceptions import MessageRejected
from streamal.messages import MAX_QUERY_META_BYTES, Label, Purpose, Query, Sample
from streamal.strategies._features import FeatureScaler, RingBuffer
from streamal.strategies.base import Strategy
from streamal.strategies.batch import Batch, Selector
from streamal.strategies.committee import member_probas

__all__ = ["WindowLearner"]


class WindowLearner:
    """Batch-mode active learning around an :class:`~streamal.core.learner.ActiveLearner`.

    Parameters
    ----------
    learner
        The learner whose model, strategy, pending store and TTL are used (its budget
        manager is not: the window's quota replaces it).
    selector
        ``"topk"``, ``"coreset"``, ``"diverse"``, ``"batchbald"`` (a spec) or a
        :class:`~streamal.strategies.batch.Selector`.
    window
        Arrivals per window.
    seconds
        Also close the window after this much stream time (``ts``), if given.
    rate
        Share of arrivals to label; default the learner's budget rate.
    centres
        Number of recently labelled samples the diversity selectors keep away from.
    seed
        Seed of the selectors' random choices (BatchBALD's sampling).

    Examples
    --------
    >>> from streamal import ActiveLearner, Label, Sample, budgets, models, strategies
    >>> inner = ActiveLearner(models.build_model("logreg"), strategies.Margin(),
    ...                       budgets.RandomBudget(rate=0.2))
    >>> wl = WindowLearner(inner, "coreset", window=5, seed=0)
    >>> asked = []
    >>> for i in range(10):
    ...     d = wl.process(Sample(id=str(i), x={"a": float(i)}))
    ...     for q in wl.take_queries():  # the oracle answers at once
    ...         asked.append(q.sample_id)
    ...         _ = wl.apply(Label(sample_id=q.sample_id, y=i > 4))
    >>> d.reason, asked, wl.stats.applied  # the second pick is far from the first label
    ('window', ['0', '9'], 2)
    """

    def __init__(
        self,
        learner: ActiveLearner,
        selector: str | Selector = "topk",
        window: int = 100,
        seconds: float | None = None,
        rate: float | None = None,
        centres: int = 200,
        seed: int | None = None,
    ) -> None:
        self.learner = learner
        self.selector = selector
        self.window = window
        self.seconds = seconds
        self.rate = rate
        self.centres = centres
        self.seed = seed
        self._selector = make_selector(selector)
        self._rate = learner.budget.rate if rate is None else rate
        self._rng = np.random.default_rng(seed)
        self._scaler = FeatureScaler()
        self._labelled = RingBuffer(centres)
        self._buffer: list[tuple[Sample, Decision, np.ndarray, list[dict[Any, float]]]] = []
        self._opened_at: float | None = None
        self._carry = 0.0
        #: Queries chosen when a window closed, not taken yet: (sample, decision).
        self._queries: list[Queried] = []
        self._asked: OrderedDict[str, np.ndarray] = OrderedDict()

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Window learners pickled before the OrderedDict kept a plain dict.
        state["_asked"] = OrderedDict(state["_asked"])
        # Before the window learner kept each query's sample, the service kept the open
        # window's samples beside it; their untaken queries (none at a checkpoint) had
        # no sample and are dropped.
        state["_queries"] = [q for q in state.get("_queries", []) if len(q) == 2]
        self.__dict__.update(state)

    # -- what the drivers read: the inner learner's, except the window's own quota ------
    @property
    def model(self) -> Any:
        """The inner learner's model."""
        return self.learner.model

    @property
    def stats(self) -> LearnerStats:
        """The inner learner's counters."""
        return self.learner.stats

    @property
    def pending(self) -> PendingStore:
        """The inner learner's pending store."""
        return self.learner.pending

    @property
    def model_version(self) -> int:
        """The inner learner's model version."""
        return self.learner.model_version

    @property
    def strategy(self) -> Strategy:
        """The inner learner's strategy."""
        return self.learner.strategy

    @property
    def budget(self) -> BudgetManager:
        """The inner learner's budget manager (not used: the window's quota decides)."""
        return self.learner.budget

    @property
    def target_rate(self) -> float:
        """The share of each window's arrivals that is labelled."""
        return self._rate

    @property
    def threshold(self) -> float | None:
        """Always ``None``: a window's selector takes the best ``k``, with no threshold."""
        return None

    @property
    def audit(self) -> float:
        """Always ``0``: window mode has no audit slice."""
        return self.learner.audit

    @property
    def audit_refused(self) -> int:
        """Audit draws the guards refused: none, window mode has no audit slice."""
        return 0

    @property
    def warm_starts(self) -> dict[str, int]:
        """The inner learner's warm starts, by name."""
        return self.learner.warm_starts

    @property
    def evaluation(self) -> LabelEvaluation:
        """The inner learner's accuracy estimates."""
        return self.learner.evaluation

    # -- arrivals ----------------------------------------------------------------------
    def process(self, sample: Sample) -> Decision:
        """Predict and score ``sample`` now; buffer it; close the window when it is full."""
        learner = self.learner
        if sample.id in learner.pending:
            raise MessageRejected(
                "sample_pending", f"sample {sample.id!r} is already waiting for its label"
            )
        x = sample.x
        # Prediction and score first: if the model raises, nothing has changed yet.
        proba, prediction, score = learner.assess(x)
        now = learner.arrive(sample)
        if (
            self.seconds is not None
            and self._opened_at is not None
            and now - self._opened_at >= self.seconds
        ):
            self._close(now)
        members = member_probas(learner.model, x) if self._selector.needs_members else []
        self._scaler.learn(x)
        decision = Decision(
            sample.id, proba, prediction, score, False, "window", learner.model_version
        )
        self._buffer.append((sample, decision, self._scaler.vector(x), members))
        if self._opened_at is None:
            self._opened_at = now
        if len(self._buffer) >= self.window:
            self._close(now)
        return decision

    def take_queried(self) -> list[Queried]:
        """The arrivals chosen since the last call, with their decisions (``queried=True``)."""
        out, self._queries = self._queries, []
        return out

    def finish(self) -> list[Queried]:
        """Close the current window now (end of stream); return all untaken queries."""
        if self._buffer:
            self._close(self._opened_at if self._opened_at is not None else 0.0)
        return self.take_queried()

    def take_queries(self) -> list[Decision]:
        """The decisions of the arrivals chosen since the last call (``queried=True``)."""
        return [decision for _, decision in self.take_queried()]

    def flush(self) -> list[Decision]:
        """Close the current window now (end of stream) and return all untaken queries."""
        return [decision for _, decision in self.finish()]

    def _close(self, now: float) -> None:
        buffer, self._buffer, self._opened_at = self._buffer, [], None
        quota = self._rate * len(buffer) + self._carry
        k = min(len(buffer), math.floor(quota + 1e-9))
        self._carry = max(0.0, quota - k)
        if k == 0:
            return
        chosen = self._selector.select(self._batch(buffer), k, self._rng)
        learner = self.learner
        ttl = learner.ttl
        expires_at = None if ttl is None else now + ttl
        for i in chosen:
            sample, decision, vector, _ = buffer[i]
            learner.add_pending(
                PendingEntry(
                    sample.id,
                    sample.x,
                    now,
                    math.inf if expires_at is None else expires_at,
                    decision.score,
                    decision.prediction,
                    decision.model_version,
                    "learn",
                    k / len(buffer),
                )
            )
            self._remember(sample.id, vector)
            chosen_decision = decision._replace(
                queried=True, reason="query", propensity=k / len(buffer), expires_at=expires_at
            )
            self._queries.append((sample, chosen_decision))

    def _batch(self, buffer: list[tuple[Sample, Decision, np.ndarray, list[Any]]]) -> Batch:
        scaler = self._scaler
        d = scaler.dim
        raw = np.zeros((len(buffer), d))
        for row, item in enumerate(buffer):
            raw[row, : len(item[2])] = item[2]
        members = None
        if self._selector.needs_members:
            members = _member_array([item[3] for item in buffer])
        return Batch(
            scores=np.array([item[1].score for item in buffer]),
            vectors=scaler.scale(raw),
            centres=scaler.scale(self._labelled.rows(d)),
            members=members,
        )

    def _remember(self, sample_id: str, vector: np.ndarray) -> None:
        asked = self._asked
        asked[sample_id] = vector
        if len(asked) > 10 * self.centres:  # labels that never come are forgotten
            asked.popitem(last=False)

    # -- labels ------------------------------------------------------------------------
    def apply(self, label: Label) -> LabelOutcome:
        """Hand ``label`` to the learner; remember applied samples as labelled centres."""
        outcome = self.learner.apply(label)
        vector = self._asked.pop(label.sample_id, None)
        if outcome is LabelOutcome.APPLIED and vector is not None:
            self._labelled.append(vector)
        return outcome

    def learn(self, label: Label) -> bool:
        """Apply ``label``; ``True`` if the model learned from it."""
        return self.apply(label) is LabelOutcome.APPLIED

    def learn_unsolicited(self, label: Label) -> LabelOutcome:
        """The inner learner's :meth:`~streamal.core.learner.ActiveLearner.learn_unsolicited`."""
        return self.learner.learn_unsolicited(label)

    def warm_start(
        self,
        labelled: Iterable[Sample | tuple[dict[str, Any], Any]],
        *,
        charge: bool = False,
        name: str | None = None,
    ) -> int:
        """The inner learner's :meth:`~streamal.core.learner.ActiveLearner.warm_start`."""
        return self.learner.warm_start(labelled, charge=charge, name=name)

    # -- messages ----------------------------------------------------------------------
    def query_for(
        self,
        sample: Sample,
        decision: Decision,
        purpose: Purpose | None = None,
        *,
        classes: list[Any] | None = None,
        meta_bytes: int = MAX_QUERY_META_BYTES,
    ) -> Query:
        """The :class:`~streamal.messages.Query` for a chosen arrival (the inner learner's)."""
        return self.learner.query_for(
            sample, decision, purpose, classes=classes, meta_bytes=meta_bytes
        )

    def query_json(
        self,
        sample: Sample,
        decision: Decision,
        *,
        classes: list[Any] | None = None,
        meta_bytes: int = MAX_QUERY_META_BYTES,
    ) -> bytes:
        """The wire bytes of :meth:`query_for`'s message."""
        return self.learner.query_json(sample, decision, classes=classes, meta_bytes=meta_bytes)

    def __repr__(self) -> str:
        return (
            f"WindowLearner(selector={self._selector!r}, window={self.window}, "
            f"rate={self._rate}, learner={self.learner!r})"
        )


def _member_array(rows: list[list[dict[Any, float]]]) -> np.ndarray:
    """Posteriors of shape (n, M, C) over the window's classes; silent members uniform."""
    classes: dict[Any, int] = {}
    for members in rows:
        for proba in members:
            for label in proba:
                classes.setdefault(label, len(classes))
    c = max(2, len(classes))
    m = max(1, max(len(members) for members in rows))
    out = np.full((len(rows), m, c), 1.0 / c)
    for i, members in enumerate(rows):
        for j, proba in enumerate(members):
            total = sum(v for v in proba.values() if v > 0.0)
            if total > 0.0:
                out[i, j] = 0.0
                for label, v in proba.items():
                    out[i, j, classes[label]] = max(0.0, v) / total
    return out
