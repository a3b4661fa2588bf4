"""A ceiling for selection: a selector that reads each arrival's true label.

Not a method (no live service knows the label before it asks for it): an estimate of how
much of the random→full-label gap *which arrivals are asked for* can close at all with a
given model, under the default's budget manager and promise. The strategy ``hindsight``
scores an arrival the current model predicts wrongly above every arrival it predicts
rightly (``0.5 + 0.5 · margin`` against ``0.5 · margin``, ``margin`` the default
strategy's score), so the default manager (same quantile filter, exploration share,
initial allowance, guards) buys the model's mistakes first, nearest the boundary first.
It is a greedy oracle: not the best subset in hindsight (which no replay could search),
but a selector that knows what the model is about to get wrong, which is what
uncertainty sampling guesses from the model's posterior. With the budget
``sk_biqf_eq`` it runs under the equal-labels peer's manager instead (BIQF unguarded,
held to the default's label count on the same replay): the same count, spent when
BIQF's filter says and with no initial allowance, so the difference between the two
shows what the default manager's schedule is worth.

The runs go through ``selection.py`` (same streams, orders, models, oracle and cache),
with the strategy name ``hindsight``::

    D=/path/to/extdata
    B="reserve_quantile:initial=500,repay=1000"
    P="hindsight/$B;hindsight/$B,explore=0"
    python benchmarks/selection.py --part first2000 --models arf20,logreg,gnb,hoeffding,arf \
        --delays 0 --no-peers --extra-dir $D --pairs "$P"
    python benchmarks/selection.py --part first2000 --models arf20,logreg --delays 0 \
        --no-peers --extra-dir $D --pairs hindsight/sk_biqf_eq
    python benchmarks/selection.py --part arf_full --models arf20 --no-peers --extra-dir $D \
        --pairs "$P;hindsight/sk_biqf_eq"
    python benchmarks/selection.py --part full --models logreg --no-peers --extra-dir $D \
        --pairs "$P;hindsight/sk_biqf_eq"
    python benchmarks/hindsight.py --extra-dir $D     # the table, from the cache

(the unguarded variant needs the default's runs on the same replays in the cache: its
label count is the default's).

``selection.py`` leaves the ``hindsight`` runs out of its own reports; this script
reports them beside the default, uniform random and the equal-labels peer, per group of
streams (``benchmarks/results/selection/hindsight.md``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, ResultCache  # noqa: E402
from peers import MATCHED  # noqa: E402

from streamal.core.learner import ActiveLearner  # noqa: E402
from streamal.defaults import DEFAULT_BUDGET, DEFAULT_STRATEGY  # noqa: E402
from streamal.messages import Sample  # noqa: E402
from streamal.strategies.base import Strategy  # noqa: E402
from streamal.strategies.uncertainty import Margin  # noqa: E402

#: The strategy name with which ``selection.py`` builds a learner and hands it to :func:`peek`.
NAME = "hindsight"
#: Streams shorter than this get more than ``rate · n`` labels from the default's initial
#: allowance (it is repaid by arrival 1,000): their rows are not at equal labels with random.
EQUAL_LABELS_FROM = 1000


class HindsightError(Strategy):
    """The model's mistakes first: ``0.5 + 0.5 · margin`` if the prediction is wrong, else
    ``0.5 · margin`` (0.5 itself only for a sure mistake or an exact tie). Reads the true
    label, set in :attr:`truth` before each arrival.

    Examples
    --------
    >>> s = HindsightError()
    >>> s.truth = "a"
    >>> s.score({}, {"a": 0.9, "b": 0.1}) < 0.5 < s.score({}, {"a": 0.2, "b": 0.8})
    True
    """

    def __init__(self) -> None:
        self.truth: Any = None
        self._margin = Margin()

    def score(self, x: dict[str, Any], proba: dict[Any, float], model: Any = None) -> float:
        margin = self._margin.score(x, proba, model)
        predicted = max(proba, key=proba.__getitem__) if proba else None
        return 0.5 + 0.5 * margin if predicted != self.truth else 0.5 * margin


class Peeking:
    """An :class:`ActiveLearner` whose :class:`HindsightError` sees each arrival's label."""

    def __init__(self, learner: ActiveLearner, strategy: HindsightError) -> None:
        self.learner = learner
        self.strategy = strategy

    def process(self, sample: Sample) -> Any:
        self.strategy.truth = sample.y
        return self.learner.process(sample)

    def learn(self, label: Any) -> Any:
        return self.learner.learn(label)

    def take_queried(self) -> list[Any]:
        return list(self.learner.take_queried())

    def finish(self) -> list[Any]:
        return list(self.learner.finish())


def peek(learner: ActiveLearner) -> Peeking:
    """``learner`` with its strategy replaced by :class:`HindsightError` (its manager kept:
    the default's, or the equal-labels peer's for ``sk_biqf_eq``)."""
    strategy = HindsightError()
    learner.strategy = strategy
    return Peeking(learner, strategy)


# -- report ----------------------------------------------------------------------------
def _cells(
    rows: list[dict[str, Any]], low_rate: float
) -> dict[tuple[Any, ...], dict[str, dict[int, dict[str, Any]]]]:
    """(limit, model, delay, stream, rate) → configuration → order → run."""
    cells: dict[tuple[Any, ...], dict[str, dict[int, dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    fulls = {
        (r["limit"], r["model"], r["stream"], r["order"]): r for r in rows if r["budget"] == "full"
    }
    for r in rows:
        if r["budget"] == "full" or r["rate"] < low_rate:  # reported apart
            continue
        key = (r["limit"], r["model"], r["delay"], r["stream"], r["rate"])
        full = fulls.get((r["limit"], r["model"], r["stream"], r["order"]))
        if full is not None:
            cells[key]["full"][r["order"]] = full
        name = f"{r['strategy']}/{r['budget']}"
        cells[key][name][r["order"]] = r
    return cells


def _label(name: str) -> str:
    """``hindsight/<default budget>,k=v`` → ``hindsight, k=v``."""
    budget = name.split("/", 1)[1]
    if budget == "sk_biqf_eq":
        return f"{NAME}, unguarded (BIQF @ equal labels)"
    if budget == DEFAULT_BUDGET:
        return NAME
    if budget.startswith(DEFAULT_BUDGET + ","):
        return f"{NAME}, {budget[len(DEFAULT_BUDGET) + 1 :]}"
    return name


def report(rows: list[dict[str, Any]], groups: dict[str, list[str]], low_rate: float) -> str:
    """Per (replay, model): gap closed and rows ahead of random for the default, the
    hindsight selectors and the equal-labels peer, by group of streams (rates from
    ``low_rate`` up, as ``selection.py``'s main groups)."""
    default = f"{DEFAULT_STRATEGY}/{DEFAULT_BUDGET}"
    (peer,) = ("/".join(spec) for spec in MATCHED.values())
    cells = _cells(rows, low_rate)
    names = sorted({n for c in cells.values() for n in c if n.startswith(NAME + "/")})
    lines = [
        "| replay / model | group | rows | "
        + " | ".join(["default"] + [_label(n) for n in names] + ["VU+BIQF @ equal labels"])
        + " | hindsight − default (points) |",
        "|---|---|---|" + "---|" * (len(names) + 3),
    ]
    tags = sorted({k[:3] for k in cells}, key=str)
    for limit, model, delay in tags:
        if delay:
            continue
        for group, streams in groups.items():
            stats: dict[str, list[float]] = defaultdict(list)
            wins: dict[str, int] = defaultdict(int)
            diffs: list[float] = []
            n = 0
            for (lim, mod, dly, stream, _rate), c in sorted(cells.items(), key=str):
                if (lim, mod, dly) != (limit, model, delay) or stream not in streams:
                    continue
                needed = [default, "random/random", "full", *names]
                if any(len(c.get(k, {})) < 3 for k in needed):
                    continue
                n += 1
                acc = {k: statistics.fmean(r["accuracy"] for r in c[k].values()) for k in c}
                span = acc["full"] - acc["random/random"]
                for k in [default, *names, peer]:
                    if k not in acc:
                        continue
                    wins[k] += acc[k] > acc["random/random"]
                    if span > 0.005:
                        stats[k].append((acc[k] - acc["random/random"]) / span)
                if names:
                    diffs.append(100 * (acc[names[0]] - acc[default]))
            if not n:
                continue
            cols = []
            for k in [default, *names, peer]:
                g = stats.get(k)
                cols.append(f"{statistics.fmean(g):.2f} ({wins[k]}/{n})" if g else "—")
            se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else 0.0
            replay = "full" if limit is None else f"first {limit}"
            lines.append(
                f"| {replay} / {model} | {group} | {n} | "
                + " | ".join(cols)
                + f" | {statistics.fmean(diffs):+.2f} ± {se:.2f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import selection

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cache", type=Path, default=ROOT / "benchmarks" / "results" / "selection.jsonl"
    )
    parser.add_argument("--extra-dir", type=Path, help="the external CSV files (as selection.py)")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "selection" / "hindsight.md"
    )
    args = parser.parse_args(argv)
    rows = list(ResultCache(args.cache, selection.KEY).rows.values())
    suite = [s for half in selection.HALVES.values() for s in half]
    external = sorted({r["stream"] for r in rows if r["stream"].startswith("ext:")})
    if args.extra_dir is None:
        external = []
    n = {r["stream"]: r["samples"] for r in rows if r["budget"] == "full" and r["limit"] is None}
    long_enough = [s for s in suite + external if n.get(s, 0) >= EQUAL_LABELS_FROM]
    groups = {
        f"suite ({len(suite)})": suite,
        f"suite, ≥ {EQUAL_LABELS_FROM} arrivals ({sum(s in long_enough for s in suite)})": [
            s for s in suite if s in long_enough
        ],
        "tuning half": list(selection.HALVES["tune"]),
        "held-out half": list(selection.HALVES["held-out"]),
    }
    if external:
        groups[f"external ({len(external)})"] = external
        ext_long = [s for s in external if s in long_enough]
        groups[f"external, ≥ {EQUAL_LABELS_FROM} arrivals ({len(ext_long)})"] = ext_long
    text = report(rows, groups, selection.LOW_RATE)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
