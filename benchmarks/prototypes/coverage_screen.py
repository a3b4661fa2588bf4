"""Screen of coverage-aware scoring (issue 15): margin, or how far an arrival is from
every arrival already asked about, whichever is larger.

Hypothesis. Uncertainty sampling cannot see what the model has never seen: a class (or
a region) with no label yet is predicted as a known class, often confidently, so its
margin score is low and only the random exploration share ever asks there. That is
where the default closes least of the random-to-full gap (multi-class streams at low
rates: digits, ImageSegments, outdoorStream, RandomRBFDrift; 0.04-0.21 with ARF).
Following the distance-based side of stream active learning (Ienco, Bifet, Zliobaite &
Pfahringer, "Clustering based active learning for evolving data streams", DS 2013;
Sener & Savarese's core-set, ICLR 2018, for the batch case), the score is

    max(margin, novelty)      or      (1 - mix) * margin + mix * novelty

with ``novelty = 1 - max_j exp(-|z - z_j|^2 / (2 width^2 d))`` over the ``recent``
newest queried arrivals ``z_j`` (standardized numeric features, as ``inflight``). Early
on every arrival is novel (coverage sampling); as the queried set covers the stream,
novelty falls and margin decides. The manager and its guards are unchanged.

Usage: ``python benchmarks/prototypes/coverage_screen.py <selection.py arguments>``
with ``--pairs "coverage:mode=max/reserve_quantile:initial=200"`` (the strategy is
registered for that run only).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import selection  # noqa: E402

from streamal.core.registry import make_strategy, register_strategy  # noqa: E402
from streamal.strategies._features import FeatureScaler  # noqa: E402
from streamal.strategies.base import Strategy  # noqa: E402


class Coverage(Strategy):
    """Margin, or the distance to every queried arrival, whichever is larger (or a mix)."""

    stateful = True

    def __init__(
        self, mode: str = "max", mix: float = 0.5, width: float = 0.5, recent: int = 300
    ) -> None:
        self.mode, self.mix, self.width, self.recent = mode, float(mix), float(width), recent
        self._inner = make_strategy("margin")
        self._scaler = FeatureScaler()
        self._rows: list[np.ndarray] = []
        self._matrix = np.zeros((0, 0))

    def novelty(self, x: dict[str, Any]) -> float:
        scaler, matrix = self._scaler, self._matrix
        d = scaler.dim
        if not len(matrix) or d == 0:
            return 1.0
        if matrix.shape[1] < d:
            matrix = np.pad(matrix, ((0, 0), (0, d - matrix.shape[1])))
        diff = scaler.scale(matrix) - scaler.scale(scaler.vector(x))
        nearest = float(np.einsum("ij,ij->i", diff, diff).min())
        return 1.0 - math.exp(-nearest / (2.0 * self.width * self.width * d))

    def score(self, x: dict[str, Any], proba: dict[Any, float], model: Any = None) -> float:
        utility = self._inner.score(x, proba, model)
        novelty = self.novelty(x)
        if self.mode == "max":
            return max(utility, novelty)
        return (1.0 - self.mix) * utility + self.mix * novelty

    def observe(self, x: dict[str, Any]) -> None:
        self._scaler.learn(x)

    def queried(self, x: dict[str, Any]) -> None:
        self._rows.append(self._scaler.vector(x))
        if len(self._rows) > self.recent:
            del self._rows[0]
        d = max(len(r) for r in self._rows)
        self._matrix = np.vstack([np.pad(r, (0, d - len(r))) for r in self._rows])


if __name__ == "__main__":
    register_strategy("coverage", Coverage, "margin or novelty against the queried arrivals")
    raise SystemExit(selection.main(sys.argv[1:]))
