"""Budget managers: do we spend a label on an arrival?"""

from streamal.budgets.base import BudgetManager
from streamal.budgets.estimate import EstimatedBudget
from streamal.budgets.random import FullBudget, RandomBudget
from streamal.budgets.threshold import FixedThreshold, VariableThreshold

__all__ = [
    "BudgetManager",
    "EstimatedBudget",
    "FixedThreshold",
    "FullBudget",
    "RandomBudget",
    "VariableThreshold",
]
