"""Query strategies: how informative is an arrival? (scores in ``[0, 1]``)."""

from streamal.strategies.base import Strategy, normalize
from streamal.strategies.committee import BALD, Committee, ConsensusKL, VoteEntropy
from streamal.strategies.density import DensityMargin
from streamal.strategies.egl import ExpectedGradientLength
from streamal.strategies.inflight import InFlight
from streamal.strategies.pal import ProbabilisticAL
from streamal.strategies.random import RandomScore
from streamal.strategies.uncertainty import Entropy, LeastConfidence, Margin

__all__ = [
    "BALD",
    "Committee",
    "ConsensusKL",
    "DensityMargin",
    "Entropy",
    "ExpectedGradientLength",
    "InFlight",
    "LeastConfidence",
    "Margin",
    "ProbabilisticAL",
    "RandomScore",
    "Strategy",
    "VoteEntropy",
    "normalize",
]
