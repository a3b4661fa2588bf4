"""Density-focused uncertainty (DBALStream).

References
----------
Ienco, D., Žliobaitė, I., & Pfahringer, B. (2014). High density-focused uncertainty
sampling for active learning over evolving stream data. BigMine 2014, Proceedings of
Machine Learning Research 36, 133–148.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from streamal.exceptions import ConfigError
from streamal.strategies._features import FeatureScaler, RingBuffer
from streamal.strategies.base import Strategy
from streamal.strategies.uncertainty import Margin

__all__ = ["DensityMargin"]

_MARGIN = Margin()


class DensityMargin(Strategy):
    """Margin uncertainty, kept only where the arrival lies in a dense region.

    The *local density factor* of an arrival is the number of recent arrivals (the last
    ``window``) for which it would be the new nearest neighbour: outliers have factor 0,
    arrivals in populated regions a positive one. With ``mode="gate"`` (the paper's
    rule) the score is the margin score when the factor reaches ``min_density`` and 0
    otherwise; with ``mode="weight"`` it is the margin score times
    ``1 − exp(−factor)``, a softer preference for dense regions.

    Distances are Euclidean over standardized numeric features (running means and
    variances); string features are ignored. Each recent arrival remembers the distance
    to its nearest neighbour; these are updated with every arrival and recomputed from
    scratch whenever the window has grown or turned over by a quarter, so that they
    follow the running scaling. Memory is bounded by ``window`` vectors.

    Parameters
    ----------
    window
        Number of recent arrivals the density is measured among (paper default 100).
    mode
        ``"gate"`` or ``"weight"``.
    min_density
        Smallest local density factor that passes the gate.

    Examples
    --------
    >>> s = DensityMargin(window=20)
    >>> for i in range(10):
    ...     s.observe({"a": i / 10})
    >>> s.observe({"a": 5.0})
    >>> s.score({"a": 0.45}, {"y": 0.5, "n": 0.5})  # among its neighbours: dense
    1.0
    >>> s.score({"a": 50.0}, {"y": 0.5, "n": 0.5})  # far from everything: an outlier
    0.0
    """

    stateful = True

    def __init__(self, window: int = 100, mode: str = "gate", min_density: int = 1) -> None:
        if mode not in ("gate", "weight"):
            raise ConfigError(f"mode must be 'gate' or 'weight', got {mode!r}")
        self.window = window
        self.mode = mode
        self.min_density = min_density
        self._scaler = FeatureScaler()
        self._buffer = RingBuffer(window)
        self._since_refresh = 0
        # Distances of the last scored arrival, reused by observe() for the same values.
        self._memo: tuple[tuple[Any, ...], np.ndarray] | None = None

    def _distances(self, x: dict[str, Any]) -> np.ndarray:
        key = tuple(x.items())
        memo = self._memo
        if memo is not None and memo[0] == key:
            return memo[1]
        buffer, scaler = self._buffer, self._scaler
        if not len(buffer):
            dist = np.zeros(0)
        else:
            d = scaler.dim
            diff = scaler.scale(buffer.rows(d)) - scaler.scale(scaler.vector(x))
            dist = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        self._memo = (key, dist)
        return dist

    def density(self, x: dict[str, Any]) -> int:
        """The local density factor of ``x`` among the recent arrivals."""
        dist = self._distances(x)
        return int(np.count_nonzero(dist < self._buffer.values())) if dist.size else 0

    def score(self, x: dict[str, Any], proba: dict[Any, float], model: Any = None) -> float:
        uncertainty = _MARGIN.score(x, proba)
        factor = self.density(x)
        if self.mode == "gate":
            return uncertainty if factor >= self.min_density else 0.0
        return uncertainty * (1.0 - math.exp(-factor))

    def observe(self, x: dict[str, Any]) -> None:
        dist = self._distances(x)
        buffer = self._buffer
        if dist.size:
            nearest = buffer.values()
            np.minimum(nearest, dist, out=nearest)
            own = float(dist.min())
        else:
            own = math.inf
        self._memo = None
        self._scaler.learn(x)
        buffer.append(self._scaler.vector(x), value=own)
        self._since_refresh += 1
        if 4 * self._since_refresh >= len(buffer):
            self._refresh()

    def _refresh(self) -> None:
        """Recompute every nearest-neighbour distance in the current scaling."""
        self._since_refresh = 0
        buffer = self._buffer
        if len(buffer) < 2:
            buffer.values()[:] = math.inf
            return
        z = self._scaler.scale(buffer.rows(self._scaler.dim))
        sq = np.einsum("ij,ij->i", z, z)
        gram = sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)
        np.fill_diagonal(gram, math.inf)
        buffer.values()[:] = np.sqrt(np.maximum(gram.min(axis=1), 0.0))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_memo"] = None  # a cache, not state
        return state
