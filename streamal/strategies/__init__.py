"""Query strategies: how informative is an arrival? (scores in ``[0, 1]``)."""

from streamal.strategies.base import Strategy, normalize
from streamal.strategies.random import RandomScore
from streamal.strategies.uncertainty import Entropy, LeastConfidence, Margin

__all__ = ["Entropy", "LeastConfidence", "Margin", "RandomScore", "Strategy", "normalize"]
