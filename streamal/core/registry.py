"""Strategies, budget managers and window selectors by name, side by side.

The CLI, the service settings, replay and :mod:`streamal.core.spec` build components
from these tables.

A spec is a name, optionally followed by constructor parameters:
``"variable_threshold"`` or ``"variable_threshold:step=0.02,budget_window=200"``.
Values are parsed as Python literals where possible (numbers, booleans, ``None``),
otherwise kept as strings.

Examples
--------
>>> make_budget("variable_threshold:step=0.02", rate=0.1, seed=0)
VariableThreshold (
  rate=0.1
  step=0.02
  theta=1.
  budget_window=100
  window=1000
  seed=0
)
>>> type(make_strategy("entropy")).__name__
'Entropy'
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamal import budgets, strategies
from streamal.budgets.base import BudgetManager
from streamal.budgets.wrappers import Wrapper
from streamal.exceptions import ConfigError
from streamal.strategies.base import Strategy
from streamal.strategies.batch import BatchBALD, CoreSet, Diverse, Selector, TopK

__all__ = [
    "BUDGETS",
    "SELECTORS",
    "STRATEGIES",
    "Entry",
    "make_budget",
    "make_selector",
    "make_strategy",
    "parse_spec",
    "register_budget",
    "register_selector",
    "register_strategy",
    "strategy_name",
]


@dataclass(frozen=True)
class Entry:
    """A named component: its factory and one line saying what it does."""

    name: str
    factory: Callable[..., Any]
    summary: str

    def parameters(self) -> dict[str, Any]:
        """Constructor parameters and their defaults (``rate`` and ``seed`` are implied)."""
        sig = inspect.signature(self.factory)
        return {
            p.name: (None if p.default is inspect.Parameter.empty else p.default)
            for p in sig.parameters.values()
            if p.name not in {"self", "rate", "seed"} and p.kind is p.POSITIONAL_OR_KEYWORD
        }


STRATEGIES: dict[str, Entry] = {}
BUDGETS: dict[str, Entry] = {}
SELECTORS: dict[str, Entry] = {}


def register_strategy(name: str, factory: Callable[..., Strategy], summary: str) -> None:
    """Make a strategy reachable by ``name``."""
    STRATEGIES[name] = Entry(name, factory, summary)
    _STRATEGY_NAMES.clear()


#: Strategy classes already named by :func:`strategy_name`.
_STRATEGY_NAMES: dict[type, str] = {}


def strategy_name(strategy: Any) -> str:
    """The name settings and the CLI give ``strategy``'s class; its class name if none.

    Queries and metrics name strategies this way, so that one spelling is used
    everywhere.

    Examples
    --------
    >>> strategy_name(strategies.Entropy()), strategy_name(make_strategy("kl_consensus"))
    ('entropy', 'kl_consensus')
    """
    cls = type(strategy)
    name = _STRATEGY_NAMES.get(cls)
    if name is None:
        found = [entry.name for entry in STRATEGIES.values() if entry.factory is cls]
        name = _STRATEGY_NAMES[cls] = found[0] if found else cls.__name__
    return name


def register_budget(name: str, factory: Callable[..., BudgetManager], summary: str) -> None:
    """Make a budget manager reachable by ``name``."""
    BUDGETS[name] = Entry(name, factory, summary)


def register_selector(name: str, factory: Callable[..., Selector], summary: str) -> None:
    """Make a window selector reachable by ``name``."""
    SELECTORS[name] = Entry(name, factory, summary)


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``"name:k=v,k=v"`` into the name and its parameters."""
    name, _, rest = spec.strip().partition(":")
    params: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"bad parameter {item!r} in {spec!r}; write key=value")
        params[key.strip()] = _literal(value.strip())
    return name.strip(), params


def _build(kind: str, table: dict[str, Entry], spec: str, **implied: Any) -> Any:
    name, params = parse_spec(spec)
    if name not in table:
        raise ConfigError(f"unknown {kind} {name!r}; choose one of: {', '.join(sorted(table))}")
    entry = table[name]
    accepted = inspect.signature(entry.factory).parameters
    for key in params:
        if key not in accepted:
            allowed = ", ".join(entry.parameters()) or "none"
            raise ConfigError(
                f"cannot build {kind} {spec!r}: {kind} {name!r} has no parameter {key!r} "
                f"(parameters: {allowed})"
            )
    kwargs = {k: v for k, v in implied.items() if k in accepted and k not in params}
    if isinstance(entry.factory, type) and issubclass(entry.factory, Wrapper):
        _build_inner(params, kwargs, accepted["inner"].default)
    try:
        return entry.factory(**kwargs, **params)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"cannot build {kind} {spec!r}: {err}") from None


def _build_inner(params: dict[str, Any], kwargs: dict[str, Any], default: Any) -> None:
    """Build a wrapper's inner manager from its spec, in place of the spec.

    Wrappers are built from instances: the inner spec (its own parameters separated by
    ``;``) is built here with the wrapper's rate and seed, and the wrapper takes its
    rate from it.
    """
    inner = params.get("inner", default)
    if not isinstance(inner, str):
        return
    rate = params.pop("rate", kwargs.pop("rate", None))
    seed = params.get("seed", kwargs.get("seed"))
    params["inner"] = make_budget(
        inner.replace(";", ","), rate=0.1 if rate is None else rate, seed=seed
    )


def make_strategy(spec: str, seed: int | None = None) -> Strategy:
    """Build a strategy from its spec (see :data:`STRATEGIES`)."""
    strategy: Strategy = _build("strategy", STRATEGIES, spec, seed=seed)
    return strategy


def make_budget(spec: str, rate: float = 0.1, seed: int | None = None) -> BudgetManager:
    """Build a budget manager from its spec (see :data:`BUDGETS`)."""
    manager: BudgetManager = _build("budget manager", BUDGETS, spec, rate=rate, seed=seed)
    return manager


def make_selector(spec: str | Selector) -> Selector:
    """Build a window selector from its spec (``"diverse:weight=0.7"``) or pass one through."""
    if isinstance(spec, Selector):
        return spec
    selector: Selector = _build("selector", SELECTORS, spec)
    return selector


register_strategy(
    "least_confidence", strategies.LeastConfidence, "1 - top class probability, rescaled to [0, 1]"
)
register_strategy(
    "margin", strategies.Margin, "1 - gap between the two most probable classes (breaking ties)"
)
register_strategy("entropy", strategies.Entropy, "posterior entropy / log(number of classes)")
register_strategy("random", strategies.RandomScore, "seeded uniform random score (baseline)")
register_strategy(
    "vote_entropy",
    strategies.VoteEntropy,
    "entropy of the ensemble members' votes (bagging, arf, srp or a Committee)",
)
register_strategy(
    "kl_consensus",
    strategies.ConsensusKL,
    "mean KL divergence of the members' posteriors to the ensemble's consensus",
)
register_strategy(
    "bald",
    strategies.BALD,
    "mutual information between prediction and model over the ensemble members (BALD)",
)
register_strategy(
    "density",
    strategies.DensityMargin,
    "margin kept only in dense regions among recent arrivals (DBALStream)",
)
register_strategy(
    "egl",
    strategies.ExpectedGradientLength,
    "expected gradient length of the log loss, for linear models (logreg, softmax, ovr)",
)
register_strategy(
    "pal",
    strategies.ProbabilisticAL,
    "probabilistic active learning: expected gain from kernel label frequencies",
)
register_strategy(
    "inflight",
    strategies.InFlight,
    "an inner strategy (margin) discounted near the queries still waiting for labels",
)

register_budget(
    "variable_threshold",
    budgets.VariableThreshold,
    "Zliobaite variable uncertainty: threshold tightens on query, relaxes otherwise",
)
register_budget(
    "fixed_threshold",
    budgets.FixedThreshold,
    "ask when score >= a fixed threshold (default 1 - rate) and the estimate allows",
)
register_budget(
    "random",
    budgets.RandomBudget,
    "label a uniformly random rate share of each block of arrivals, ignoring the score",
)
register_budget("full", budgets.FullBudget, "ask every arrival (full-label baseline)")
register_budget(
    "rand_variable_threshold",
    budgets.RandomizedVariableThreshold,
    "variable threshold randomized by eta ~ N(1, delta): also labels confident regions",
)
register_budget(
    "split",
    budgets.Split,
    "a share v of arrivals decided at random, the rest by the variable threshold",
)
register_budget(
    "selective_sampling",
    budgets.SelectiveSampling,
    "ask with probability b / (b + margin), b adapted to the rate (Cesa-Bianchi 2006)",
)
register_budget("periodic", budgets.Periodic, "ask every 1/rate-th arrival (score-blind baseline)")
register_budget(
    "biqf",
    budgets.QuantileFilter,
    "balanced incremental quantile filter: score above the recent (1-rate)-quantile",
)
register_budget(
    "reserve_quantile",
    budgets.ReserveQuantile,
    "score in the top share of recent scores; the share follows the saved allowance",
)
register_budget(
    "estimated",
    budgets.EstimatedGreedy,
    "ask whenever Zliobaite's windowed spending estimate is below the rate (score-blind)",
)
register_budget(
    "capped",
    budgets.HardCap,
    "hard cap around any manager: labels per window / per period of stream time, max pending",
)
register_budget(
    "explore",
    budgets.ExplorationFloor,
    "exploration floor around any manager: random labels after a long quiet stretch",
)
register_budget(
    "drift_aware",
    budgets.DriftAware,
    "Page-Hinkley on the labelled error; after a drift spend more for a while, then pay it back",
)

register_selector("topk", TopK, "the k highest scores of the window")
register_selector("coreset", CoreSet, "k-center greedy in feature space (core-set, Sener 2018)")
register_selector("diverse", Diverse, "greedy trade-off of score and distance to labelled/picked")
register_selector(
    "batchbald", BatchBALD, "greedy BatchBALD over the ensemble members (Kirsch 2019)"
)
