"""Žliobaitė's windowed estimate of the label spending rate."""

from __future__ import annotations

__all__ = ["EstimatedBudget"]


class EstimatedBudget:
    """Exponentially windowed estimate of the share of arrivals labelled.

    ``u ← u (w − 1) / w + [labelled]`` and ``û = u / w``; a label may be bought while
    ``û < rate``. Unlike the paper, ``u`` starts at ``rate · w`` (as if the last window
    had spent exactly the budget) instead of 0, which removes the start-up burst in which
    the whole window's labels are spent back to back.

    Parameters
    ----------
    rate
        Target label rate.
    w
        Window length in arrivals (scikit-activeml's default is 100).

    References
    ----------
    Žliobaitė, I., Bifet, A., Pfahringer, B., & Holmes, G. (2014). Active learning with
    drifting streaming data. IEEE Transactions on Neural Networks and Learning Systems,
    25(1), 27–39.

    Examples
    --------
    >>> e = EstimatedBudget(rate=0.1, w=100)
    >>> e.available()
    False
    >>> e.update(False)
    >>> e.available()
    True
    """

    __slots__ = ("rate", "w", "u", "_decay")

    def __init__(self, rate: float, w: int = 100) -> None:
        self.rate = rate
        self.w = w
        self.u = rate * w
        self._decay = (w - 1) / w

    def available(self) -> bool:
        """Whether the estimated spending rate is below the target."""
        return self.u / self.w < self.rate

    def update(self, labelled: bool) -> None:
        """Account for one arrival."""
        self.u = self.u * self._decay + (1.0 if labelled else 0.0)

    @property
    def estimate(self) -> float:
        """The current estimate ``û``."""
        return self.u / self.w

    def __getstate__(self) -> tuple[float, int, float]:
        return (self.rate, self.w, self.u)

    def __setstate__(self, state: tuple[float, int, float]) -> None:
        self.rate, self.w, self.u = state
        self._decay = (self.w - 1) / self.w

    def __repr__(self) -> str:
        return f"EstimatedBudget(rate={self.rate}, w={self.w}, u={self.u:.3f})"
