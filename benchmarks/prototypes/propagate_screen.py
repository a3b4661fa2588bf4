"""Screen of delay-aware scoring (issue 15): margin on a shadow model that has also
learned the pending queries with their predicted labels.

With labels ``d`` arrivals late, the ``b·d`` pending queries were chosen by a model that
has not learned them yet, so it keeps finding their region uncertain. Following
Castellani, Schmitt & Hammer (ICANN 2022, "PRopagate": predict the requested-but-pending
labels) and Pham et al. (Machine Learning 2022, delay simulation), the strategy scores
each arrival with a copy of the model that has learned every pending query with the
model's own prediction; the real model learns only true labels. With nothing pending
(delay 0) the score is plain margin. A copy is rebuilt whenever a query is made,
answered or closed, so this costs a deep copy and ``|pending|`` updates per change:
a prototype, not a service strategy.

Usage: ``python benchmarks/prototypes/propagate_screen.py <selection.py arguments>``
with ``--pairs propagate/reserve_quantile:initial=200`` (the strategy is registered for
that run only).
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import selection  # noqa: E402

from streamal.core.registry import make_strategy, register_strategy  # noqa: E402
from streamal.strategies.base import Strategy  # noqa: E402


class Propagate(Strategy):
    """Margin of a shadow model that has learned the pending queries' predicted labels."""

    stateful = True

    def __init__(self, recent: int = 200) -> None:
        self.recent = recent
        self._inner = make_strategy("margin")
        self._pending: list[dict[str, Any]] = []
        self._shadow: Any = None
        self._dirty = True

    def score(self, x: dict[str, Any], proba: dict[Any, float], model: Any = None) -> float:
        if not self._pending or model is None:
            return self._inner.score(x, proba, model)
        if self._dirty:
            shadow = copy.deepcopy(model)
            for xp in self._pending:
                pp = model.predict_proba_one(xp)
                if pp:
                    shadow.learn_one(xp, max(pp, key=pp.__getitem__))
            self._shadow, self._dirty = shadow, False
        sp = self._shadow.predict_proba_one(x)
        return self._inner.score(x, sp or proba, self._shadow)

    def learn(self, x: dict[str, Any], y: Any) -> None:
        self._forget(x)
        self._dirty = True  # the real model changed

    def queried(self, x: dict[str, Any]) -> None:
        self._pending.append(x)
        if len(self._pending) > self.recent:
            del self._pending[0]
        self._dirty = True

    def closed(self, x: dict[str, Any]) -> None:
        self._forget(x)
        self._dirty = True

    def _forget(self, x: dict[str, Any]) -> None:
        for i, known in enumerate(self._pending):
            if known == x:
                del self._pending[i]
                return


if __name__ == "__main__":
    register_strategy("propagate", Propagate, "margin on a model that learned the pending")
    raise SystemExit(selection.main(sys.argv[1:]))
