"""Budget managers: do we spend a label on an arrival?"""

from streamal.budgets.base import BudgetManager
from streamal.budgets.drift import DriftAware
from streamal.budgets.estimate import EstimatedBudget
from streamal.budgets.quantile import QuantileFilter
from streamal.budgets.random import EstimatedGreedy, FullBudget, Periodic, RandomBudget
from streamal.budgets.reserve import ReserveQuantile
from streamal.budgets.selective import SelectiveSampling
from streamal.budgets.threshold import (
    FixedThreshold,
    RandomizedVariableThreshold,
    Split,
    VariableThreshold,
)
from streamal.budgets.wrappers import ExplorationFloor, HardCap, Wrapper

__all__ = [
    "BudgetManager",
    "DriftAware",
    "EstimatedBudget",
    "EstimatedGreedy",
    "ExplorationFloor",
    "FixedThreshold",
    "FullBudget",
    "HardCap",
    "Periodic",
    "QuantileFilter",
    "RandomBudget",
    "RandomizedVariableThreshold",
    "ReserveQuantile",
    "SelectiveSampling",
    "Split",
    "VariableThreshold",
    "Wrapper",
]
