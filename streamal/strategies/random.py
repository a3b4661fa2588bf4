"""Random scores, for baselines."""

from __future__ import annotations

import random
from typing import Any

from streamal.strategies.base import Strategy

__all__ = ["RandomScore"]


class RandomScore(Strategy):
    """A seeded uniform random score in ``[0, 1)``, ignoring the model.

    ``score`` must be pure, so the random number is derived from the arrival count kept
    in :meth:`observe`, not drawn from a shared generator: the same arrival always
    gets the same score.

    Parameters
    ----------
    seed
        Seed of the score sequence.

    Examples
    --------
    >>> s = RandomScore(seed=3)
    >>> a = s.score({}, {})
    >>> a == s.score({}, {})
    True
    >>> s.observe({})
    >>> a == s.score({}, {})
    False
    """

    stateful = True

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self._rng = random.Random(seed)
        self._next = self._rng.random()

    def score(self, x: dict[str, Any], proba: dict[Any, float], model: Any = None) -> float:
        return self._next

    def observe(self, x: dict[str, Any]) -> None:
        self._next = self._rng.random()
