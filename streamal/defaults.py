"""Default components, shared by replay, the service and the CLI.

They are the best measured choices that work for binary and multi-class streams alike
(see ``docs/benchmarks.md`` for the measurements behind them).
"""

from __future__ import annotations

__all__ = ["DEFAULT_BUDGET", "DEFAULT_MODEL", "DEFAULT_RATE", "DEFAULT_SEED", "DEFAULT_STRATEGY"]

#: Model spec (see :mod:`streamal.core.models`).
DEFAULT_MODEL = "arf20"
#: Strategy spec (see :mod:`streamal.core.registry`).
DEFAULT_STRATEGY = "margin"
#: Budget manager spec.
DEFAULT_BUDGET = "reserve_quantile:initial=500,repay=1000"
#: Share of arrivals that may be labelled.
DEFAULT_RATE = 0.1
#: Seed of every random choice when none is given.
DEFAULT_SEED = 42
