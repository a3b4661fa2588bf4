"""Walkthrough 5: a tour of query strategies on one stream, at the same budget.

A user's first comparison: river's Phishing stream (1,250 web pages, 9 features), a
budget of 10 % of the labels, labels back before the next arrival, and prequential
accuracy (every arrival is predicted before it can be learned) for each strategy:

* with an adaptive random forest (10 trees, whose members vote):
  least confidence, margin, entropy, BALD, vote entropy and KL divergence to the
  consensus (query by committee), per arrival with the variable-threshold budget
  manager; core-set and "diverse batch" (margin plus diversity) in window mode, 5 labels
  per window of 50 arrivals;
* with a logistic regression, because expected model change (expected gradient length)
  is defined for linear models: least confidence and expected gradient length.

Each model also runs with random labels (``random``) and with every label (``full``),
the floor and the ceiling of its group. Everything goes through
:func:`streamal.offline.replay.replay`, the same driver as ``streamal replay``.

Run: ``python examples/walkthrough_5_strategy_tour.py --out OUT [--fast]``
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from walkthrough_common import options, plt, save, table

from streamal import ActiveLearner
from streamal.core.models import build_model
from streamal.core.registry import make_budget, make_strategy
from streamal.offline.oracle import SimulatedOracle
from streamal.offline.replay import replay
from streamal.offline.streams import open_source
from streamal.window import WindowLearner

RATE = 0.1
KEYS = ["model", "strategy", "labels", "accuracy", "std", "us_per_sample"]

#: (run name, model spec, strategy spec, how labels are chosen)
RUNS = [
    ("random", "arf", "random", "random"),
    ("least confidence", "arf", "least_confidence", "variable_threshold"),
    ("margin", "arf", "margin", "variable_threshold"),
    ("entropy", "arf", "entropy", "variable_threshold"),
    ("BALD", "arf", "bald", "variable_threshold"),
    ("vote entropy", "arf", "vote_entropy", "variable_threshold"),
    ("KL to consensus", "arf", "kl_consensus", "variable_threshold"),
    ("core-set (window)", "arf", "margin", "window:coreset"),
    ("diverse batch (window)", "arf", "margin", "window:diverse"),
    ("full", "arf", "random", "full"),
    ("random", "logreg", "random", "random"),
    ("least confidence", "logreg", "least_confidence", "variable_threshold"),
    ("expected gradient length", "logreg", "egl", "variable_threshold"),
    ("full", "logreg", "random", "full"),
]


def learner_for(model: str, strategy: str, how: str, seed: int) -> Any:
    rate = 1.0 if how == "full" else RATE
    inner = ActiveLearner(
        build_model(model, seed=seed),
        make_strategy(strategy, seed=seed),
        make_budget("random" if how.startswith("window") else how, rate=rate, seed=seed),
    )
    if how.startswith("window:"):
        return WindowLearner(inner, how.split(":", 1)[1], window=50, rate=RATE, seed=seed)
    return inner


def main() -> None:
    args = options("walkthrough_5", __doc__.splitlines()[0])
    limit = 500 if args.fast else None
    stream = list(itertools.islice(open_source("river:Phishing", seed=args.seed), limit))
    seeds = list(range(args.seed, args.seed + (1 if args.fast else 3)))
    print(f"river:Phishing, {len(stream)} samples, budget {RATE:.0%}, seeds {seeds}")
    acc: dict[tuple[str, str], list[float]] = {}
    labels: dict[tuple[str, str], list[int]] = {}
    cost: dict[tuple[str, str], list[float]] = {}
    curves = {}
    for seed, (name, model, strategy, how) in itertools.product(seeds, RUNS):
        learner = learner_for(model, strategy, how, seed)
        final, curve = replay(stream, learner, SimulatedOracle(0, seed=seed), step=50)
        acc.setdefault((model, name), []).append(final.accuracy)
        labels.setdefault((model, name), []).append(final.labels_used)
        cost.setdefault((model, name), []).append(1e6 * final.seconds / final.samples)
        if seed == args.seed:
            curves[(model, name)] = [(p.samples, p.accuracy) for p in curve]
    results = [
        [
            m,
            n,
            round(float(np.mean(labels[m, n]))),
            float(np.mean(a)),
            float(np.std(a)),
            round(float(np.mean(cost[m, n]))),
        ]
        for (m, n), a in acc.items()
    ]
    print(table(["model", "strategy", "labels", "accuracy", "std", "µs/sample"], results))
    for model in ("arf", "logreg"):
        rows = {r[1]: r[3] for r in results if r[0] == model}
        low, high = rows["random"], rows["full"]
        best = max(
            (r for r in results if r[0] == model and r[1] not in ("random", "full")),
            key=lambda r: r[3],
        )
        share = (best[3] - low) / (high - low) if high > low else float("nan")
        print(
            f"{model}: best {best[1]} {best[3]:.3f} closes {share:.0%} of the random "
            f"{low:.3f} -> full {high:.3f} gap"
        )

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, model in zip(axes, ("arf", "logreg"), strict=True):
        for (m, name), points in curves.items():
            if m == model:
                style = ":" if name in ("random", "full") else "-"
                ax.plot(*zip(*points, strict=True), style, label=name)
        ax.set(
            xlabel="samples",
            title=f"{model} on river:Phishing, {RATE:.0%} labels (seed {args.seed})",
        )
        ax.legend(fontsize=7)
    axes[0].set_ylabel("prequential accuracy")
    save(
        fig,
        args.out,
        "walkthrough_5",
        {
            "source": "river:Phishing",
            "samples": len(stream),
            "rate": RATE,
            "seeds": seeds,
            "runs": [dict(zip(KEYS, r, strict=True)) for r in results],
        },
    )


if __name__ == "__main__":
    main()
