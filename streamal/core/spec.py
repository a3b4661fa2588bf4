"""One learner spec and one builder, for Python users, replay and the service.

A :class:`LearnerSpec` names every part of a learner by its registry spec (see
:mod:`streamal.core.registry`); :func:`build_learner` turns it into an
:class:`~streamal.core.learner.ActiveLearner`, or into a
:class:`~streamal.window.WindowLearner` around one when ``window`` is set. Replay
(:class:`~streamal.offline.replay.ReplayConfig`) and the service
(:class:`~streamal.service.config.LearnerSettings`) convert their own configuration
into a ``LearnerSpec``, so the same settings build the same learner everywhere.

Examples
--------
>>> learner = build_learner(LearnerSpec(model="logreg", strategy="margin", rate=0.2))
>>> type(learner).__name__, type(learner.budget).__name__, learner.target_rate
('ActiveLearner', 'ReserveQuantile', 0.2)
>>> windowed = build_learner(LearnerSpec(model="logreg", window=WindowSpec("coreset", 50)))
>>> type(windowed).__name__, windowed.window
('WindowLearner', 50)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streamal.core.learner import ActiveLearner
from streamal.core.models import build_model
from streamal.core.pending import MemoryPendingStore, PendingStore, SQLitePendingStore
from streamal.core.protocol import Learner
from streamal.core.registry import make_budget, make_strategy
from streamal.defaults import (
    DEFAULT_BUDGET,
    DEFAULT_MODEL,
    DEFAULT_RATE,
    DEFAULT_SEED,
    DEFAULT_STRATEGY,
)
from streamal.exceptions import ConfigError
from streamal.window.learner import WindowLearner

__all__ = ["LearnerSpec", "WindowSpec", "build_active_learner", "build_learner"]

#: Queries a pending store holds before it evicts the oldest.
DEFAULT_MAX_PENDING = 100_000


@dataclass(frozen=True)
class WindowSpec:
    """Window (batch) mode: which selector, how many arrivals, how much stream time.

    Parameters
    ----------
    selector
        Selector spec (``"topk"``, ``"coreset"``, ``"diverse:weight=0.7"``, ...).
    size
        Arrivals per window.
    seconds
        Also close a window after this much stream time, if given.
    """

    selector: str = "topk"
    size: int = 100
    seconds: float | None = None


@dataclass(frozen=True)
class LearnerSpec:
    """Everything that shapes a learner, as specs; every random part seeded with ``seed``.

    Parameters
    ----------
    model, strategy, budget
        Specs of the model (:func:`~streamal.core.models.build_model`), the strategy
        and the budget manager (:mod:`streamal.core.registry`).
    rate
        Share of arrivals that may be labelled.
    seed
        Seed of the model, the strategy, the budget manager and the audit draws.
    ttl
        Query lifetime in stream time (``None``: forever).
    audit
        Share of the budget for the audit slice (not in window mode).
    pending_file
        An SQLite file for the pending store; in memory when ``None``.
    max_pending
        Queries the pending store holds before it evicts the oldest.
    window
        Window mode when set (:class:`WindowSpec`); one decision per arrival otherwise.
    classes
        The labels the stream may carry, if known (others are refused); ``None``: the
        first label fixes the label type.
    """

    model: str = DEFAULT_MODEL
    strategy: str = DEFAULT_STRATEGY
    budget: str = DEFAULT_BUDGET
    rate: float = DEFAULT_RATE
    seed: int = DEFAULT_SEED
    ttl: float | None = None
    audit: float = 0.0
    pending_file: str | None = None
    max_pending: int = DEFAULT_MAX_PENDING
    window: WindowSpec | None = None
    classes: tuple[Any, ...] | None = None


def _pending_store(spec: LearnerSpec) -> PendingStore:
    if spec.pending_file is None:
        return MemoryPendingStore(max_size=spec.max_pending)
    return SQLitePendingStore(spec.pending_file, max_size=spec.max_pending)


def build_active_learner(spec: LearnerSpec) -> ActiveLearner:
    """The per-arrival :class:`ActiveLearner` of ``spec`` (``spec.window`` is not used)."""
    return ActiveLearner(
        build_model(spec.model, seed=spec.seed),
        make_strategy(spec.strategy, seed=spec.seed),
        make_budget(spec.budget, rate=spec.rate, seed=spec.seed),
        pending=_pending_store(spec),
        ttl=spec.ttl,
        audit=spec.audit,
        seed=spec.seed,
        classes=spec.classes,
    )


def build_learner(spec: LearnerSpec) -> Learner:
    """The learner ``spec`` describes: an active learner, wrapped in window mode if asked.

    Raises
    ------
    ConfigError
        If a spec names an unknown component or a bad parameter, or asks for the audit
        slice in window mode.
    """
    if spec.window is not None and spec.audit:
        raise ConfigError(
            "the audit slice is not available in window mode; set audit to 0 or leave "
            "window mode (no window selector)"
        )
    learner = build_active_learner(spec)
    window = spec.window
    if window is None:
        return learner
    return WindowLearner(learner, window.selector, window.size, window.seconds, seed=spec.seed)
