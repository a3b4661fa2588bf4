"""The query-strategy interface: how informative is this arrival?"""

from __future__ import annotations

from typing import Any

from river import base

__all__ = ["Strategy", "normalize"]

_INF = float("inf")


class Strategy(base.Base):  # type: ignore[misc]
    """Scores how informative an arrival is, in ``[0, 1]`` (higher = more informative).

    A strategy only scores; whether a label is bought is the budget manager's decision.
    ``score`` is pure: it reads the model and the strategy's state but changes nothing.
    Strategies that keep state about the stream (density windows, label counts) update
    it in :meth:`observe` (every arrival, after scoring) and :meth:`learn` (every
    labelled sample); those that follow their own pending queries also in
    :meth:`queried` and :meth:`closed`.

    Subclasses store each constructor argument under its own name (river convention),
    so that ``clone()``, ``repr`` and checkpoints work.
    """

    #: Set by strategies that read the members of an ensemble model.
    needs_ensemble: bool = False
    #: Set by strategies whose state changes in observe/learn (hooks are skipped otherwise).
    stateful: bool = False

    def score(self, x: dict[str, Any], proba: dict[Any, float], model: Any = None) -> float:
        """Return the informativeness of ``x`` in ``[0, 1]``."""
        raise NotImplementedError

    def observe(self, x: dict[str, Any]) -> None:
        """Update the strategy's state with an arrival (called after :meth:`score`)."""

    def learn(self, x: dict[str, Any], y: Any) -> None:
        """Update the strategy's state with a labelled sample."""

    def queried(self, x: dict[str, Any]) -> None:
        """``x``'s label was asked for: its query now waits (called after :meth:`observe`).

        Its answer comes through :meth:`learn`; a query that closes without one (expired,
        evicted, or answered to another learner in scale-out mode) through :meth:`closed`.
        """

    def closed(self, x: dict[str, Any]) -> None:
        """The query for ``x`` closed without the strategy learning its label."""


def normalize(proba: dict[Any, float]) -> list[float]:
    """Class probabilities as a list summing to one; negative or non-finite values count 0.

    River models sometimes return unnormalized or single-class posteriors
    (``{'a': 0.7}``); every strategy sees the cleaned distribution, so none divides by
    zero (river's ``EntropySampler`` raises ``ZeroDivisionError`` on such input).

    Examples
    --------
    >>> normalize({"a": 0.7})
    [1.0]
    >>> normalize({"a": 2.0, "b": 2.0, "c": float("nan")})
    [0.5, 0.5, 0.0]
    >>> normalize({})
    []
    """
    values = [v if 0.0 < v < _INF else 0.0 for v in proba.values()]
    total = sum(values)
    if total <= 0.0:
        return [1.0 / len(values)] * len(values) if values else []
    if total == 1.0:
        return values
    return [v / total for v in values]
