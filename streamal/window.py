"""Window (batch) mode: buffer a window of arrivals, then choose which to label at once.

:class:`WindowLearner` wraps an :class:`~streamal.learner.ActiveLearner`. Each arrival is
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
from typing import Any

import numpy as np

from streamal.exceptions import MessageRejected
from streamal.learner import ActiveLearner, Decision, LabelOutcome
from streamal.messages import Label, Sample
from streamal.pending import PendingEntry
from streamal.registry import Entry, parse_spec
from streamal.strategies._features import FeatureScaler, RingBuffer
from streamal.strategies.batch import Batch, BatchBALD, CoreSet, Diverse, Selector, TopK
from streamal.strategies.committee import member_probas

__all__ = ["SELECTORS", "WindowLearner", "make_selector"]

SELECTORS: dict[str, Entry] = {
    e.name: e
    for e in (
        Entry("topk", TopK, "the k highest scores of the window"),
        Entry("coreset", CoreSet, "k-center greedy in feature space (core-set, Sener 2018)"),
        Entry("diverse", Diverse, "greedy trade-off of score and distance to labelled/picked"),
        Entry("batchbald", BatchBALD, "greedy BatchBALD over the ensemble members (Kirsch 2019)"),
    )
}


def make_selector(spec: str | Selector) -> Selector:
    """Build a selector from its spec (``"diverse:weight=0.7"``) or pass one through."""
    if isinstance(spec, Selector):
        return spec
    from streamal.exceptions import ConfigError

    name, params = parse_spec(spec)
    if name not in SELECTORS:
        raise ConfigError(f"unknown selector {name!r}; choose one of: {', '.join(SELECTORS)}")
    try:
        selector: Selector = SELECTORS[name].factory(**params)
    except TypeError as err:
        raise ConfigError(f"cannot build selector {spec!r}: {err}") from None
    return selector


class WindowLearner:
    """Batch-mode active learning around an :class:`~streamal.learner.ActiveLearner`.

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
        self._queries: list[Decision] = []
        self._asked: OrderedDict[str, np.ndarray] = OrderedDict()

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Window learners pickled before the OrderedDict kept a plain dict.
        state["_asked"] = OrderedDict(state["_asked"])
        self.__dict__.update(state)

    # -- delegation ------------------------------------------------------------------
    @property
    def model(self) -> Any:
        return self.learner.model

    @property
    def stats(self) -> Any:
        return self.learner.stats

    @property
    def pending(self) -> Any:
        return self.learner.pending

    @property
    def model_version(self) -> int:
        return self.learner.model_version

    # -- arrivals ----------------------------------------------------------------------
    def process(self, sample: Sample) -> Decision:
        """Predict and score ``sample`` now; buffer it; close the window when it is full."""
        learner = self.learner
        if sample.id in learner.pending:
            raise MessageRejected(
                "sample_pending", f"sample {sample.id!r} is already waiting for its label"
            )
        x, model, strategy = sample.x, learner.model, learner.strategy
        # Prediction and score first: if the model raises, nothing has changed yet.
        proba = model.predict_proba_one(x)
        score = strategy.score(x, proba, model)
        learner.stats.seen += 1
        now = float(sample.ts) if sample.ts is not None else float(learner.stats.seen)
        # The learner compares label arrival with deadlines at its own clock.
        learner._now = now
        if learner.ttl is not None:
            learner.expire(now)
        if (
            self.seconds is not None
            and self._opened_at is not None
            and now - self._opened_at >= self.seconds
        ):
            self._close(now)
        prediction = max(proba, key=proba.__getitem__) if proba else None
        if strategy.stateful:
            strategy.observe(x)
        members = member_probas(model, x) if self._selector.needs_members else []
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

    def take_queries(self) -> list[Decision]:
        """The decisions of the arrivals chosen since the last call (``queried=True``)."""
        out, self._queries = self._queries, []
        return out

    def flush(self) -> list[Decision]:
        """Close the current window now (end of stream) and return all untaken queries."""
        if self._buffer:
            self._close(self._opened_at if self._opened_at is not None else 0.0)
        return self.take_queries()

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
            learner._put(
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
            learner.stats.queried += 1
            self._remember(sample.id, vector)
            self._queries.append(
                decision._replace(
                    queried=True,
                    reason="query",
                    propensity=k / len(buffer),
                    expires_at=expires_at,
                )
            )

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
