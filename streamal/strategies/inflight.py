"""In-flight-aware selection: do not ask twice about one region before the answers come.

With delayed labels the model does not change while queries wait for their labels, so
an uncertainty strategy keeps choosing near-duplicates of the arrivals it has just
asked about; their labels come back together and teach little more than one of them.
:class:`InFlight` discounts an arrival's score by its similarity to the arrivals whose
queries are still pending, so that the budget is spread over different uncertain
regions. With labels that come back before the next arrival nothing is pending when an
arrival is scored, and the score is the inner strategy's.

The learner tells the strategy which arrivals it queried (:meth:`Strategy.queried`),
which were answered (:meth:`Strategy.learn`) and which closed without a label
(:meth:`Strategy.closed`); the strategy keeps the feature vectors of the most recent
pending queries itself, so it works the same with every pending store.

Related work: Pham, Kottke, Krempl & Sick, "Stream-based active learning for sliding
windows under the influence of verification latency", Machine Learning 111 (2022),
which simulates the labels of pending queries; Castellani, Schmitt & Hammer,
"Stream-based active learning with verification latency in non-stationary
environments", ICANN 2022. Here the pending queries only discount the score. It is
opt-in and not recommended by measurement: docs/benchmarks.md, "In-flight-aware
selection", gives the figures.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from streamal.exceptions import ConfigError
from streamal.strategies._features import FeatureScaler
from streamal.strategies.base import Strategy

__all__ = ["InFlight"]

_Key = tuple[tuple[str, Any], ...]


def _key(x: dict[str, Any]) -> _Key:
    return tuple(x.items())


class InFlight(Strategy):
    """The inner strategy's score, discounted near the queries still waiting for labels.

    ``score = inner × (1 − max_j k(x, p_j))`` over the pending queries ``p_j``, with the
    Gaussian kernel ``k(x, p) = exp(−‖z(x) − z(p)‖² / (2 · width² · d))`` on the ``d``
    numeric features standardized with running means and variances (string features
    are ignored). ``width`` is in standard deviations per feature: an arrival one
    ``width`` away from a pending query on every feature keeps ``1 − e^{−1/2} ≈ 0.39``
    of its score, an arrival identical to one keeps nothing. With nothing pending the
    score is the inner strategy's, exactly.

    Cost and memory are bounded: only the ``recent`` most recently queried arrivals
    still pending are compared (older pending queries are forgotten by the strategy,
    not by the learner), so scoring costs ``O(recent · d)``. The learner reports
    queries, answers and queries closed without a label (expired, evicted); an answered
    arrival is matched by its feature values (the first pending one equal to it goes).

    Parameters
    ----------
    inner
        The strategy whose score is discounted: a registry spec (``"margin"``,
        ``"entropy"``; parameters separated by ``;``) or a :class:`Strategy`.
    width
        Kernel width, in standard deviations per feature.
    recent
        Most recent pending queries compared with an arrival.
    seed
        Passed to the inner strategy when it is built from a spec.

    Examples
    --------
    >>> s = InFlight(inner="margin", width=0.5)
    >>> for i in range(20):
    ...     s.observe({"a": i / 10})
    >>> proba = {"y": 0.5, "n": 0.5}
    >>> s.score({"a": 1.0}, proba)  # nothing pending: the margin score
    1.0
    >>> s.queried({"a": 1.0})
    >>> s.score({"a": 1.0}, proba)  # the same region is already asked about
    0.0
    >>> round(s.score({"a": 1.2}, proba), 3)  # near it: most of the score goes
    0.214
    >>> round(s.score({"a": 1.8}, proba), 3)  # far from it: almost the full score
    0.979
    >>> s.learn({"a": 1.0}, "y")  # the answer came: nothing pending any more
    >>> s.score({"a": 1.0}, proba)
    1.0
    """

    stateful = True

    def __init__(
        self,
        inner: str | Strategy = "margin",
        width: float = 0.5,
        recent: int = 200,
        seed: int | None = None,
    ) -> None:
        if not (width > 0.0 and math.isfinite(width)):
            raise ConfigError(f"width must be a positive number, got {width!r}")
        if not isinstance(recent, int) or recent < 1:
            raise ConfigError(f"recent must be a positive integer, got {recent!r}")
        self.inner = inner
        self.width = width
        self.recent = recent
        self.seed = seed
        self._inner = self._build_inner(inner, seed)
        self.needs_ensemble = self._inner.needs_ensemble
        self._scaler = FeatureScaler()
        #: Pending queries, oldest first: their feature values (to match answers) and
        #: raw numeric vectors.
        self._keys: list[_Key] = []
        self._rows: list[np.ndarray] = []
        #: ``_rows`` stacked (padded to the widest), rebuilt whenever they change.
        self._matrix = np.zeros((0, 0))

    @staticmethod
    def _build_inner(inner: str | Strategy, seed: int | None) -> Strategy:
        if isinstance(inner, Strategy):
            if isinstance(inner, InFlight):
                raise ConfigError("an in-flight strategy cannot wrap another one")
            fresh: Strategy = inner.clone()
            return fresh
        from streamal.core.registry import make_strategy  # the registry imports this module

        built = make_strategy(str(inner).replace(";", ","), seed=seed)
        if isinstance(built, InFlight):
            raise ConfigError("an in-flight strategy cannot wrap another one")
        return built

    @property
    def pending(self) -> int:
        """Pending queries the strategy compares arrivals with."""
        return len(self._keys)

    def similarity(self, x: dict[str, Any]) -> float:
        """The largest kernel similarity of ``x`` to a pending query (0 if none)."""
        matrix = self._matrix
        scaler = self._scaler
        d = scaler.dim
        if not len(matrix) or d == 0:
            return 0.0
        if matrix.shape[1] < d:
            matrix = np.pad(matrix, ((0, 0), (0, d - matrix.shape[1])))
        elif matrix.shape[1] > d:  # pragma: no cover - columns only grow
            matrix = matrix[:, :d]
        diff = scaler.scale(matrix) - scaler.scale(scaler.vector(x))
        nearest = float(np.einsum("ij,ij->i", diff, diff).min())
        return math.exp(-nearest / (2.0 * self.width * self.width * d))

    def score(self, x: dict[str, Any], proba: dict[Any, float], model: Any = None) -> float:
        utility = self._inner.score(x, proba, model)
        if not self._keys or utility <= 0.0:
            return utility
        return max(0.0, utility * (1.0 - self.similarity(x)))

    def observe(self, x: dict[str, Any]) -> None:
        self._scaler.learn(x)
        if self._inner.stateful:
            self._inner.observe(x)

    def learn(self, x: dict[str, Any], y: Any) -> None:
        self._forget(x)
        if self._inner.stateful:
            self._inner.learn(x, y)

    def queried(self, x: dict[str, Any]) -> None:
        self._keys.append(_key(x))
        self._rows.append(self._scaler.vector(x))
        if len(self._keys) > self.recent:
            del self._keys[0], self._rows[0]
        self._stack()

    def closed(self, x: dict[str, Any]) -> None:
        self._forget(x)

    def _forget(self, x: dict[str, Any]) -> None:
        if not self._keys:
            return
        key = _key(x)
        for i, known in enumerate(self._keys):
            if known == key:
                del self._keys[i], self._rows[i]
                self._stack()
                return

    def _stack(self) -> None:
        rows = self._rows
        if not rows:
            self._matrix = np.zeros((0, 0))
            return
        d = max(len(r) for r in rows)
        self._matrix = np.vstack([np.pad(r, (0, d - len(r))) for r in rows])
