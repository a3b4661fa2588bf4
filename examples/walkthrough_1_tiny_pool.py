"""Walkthrough 1: the uncertainty loop on a tiny pool, then the same data as a stream.

The classic setup: 100 two-feature samples from ``make_classification(random_state=42)``,
5 random initial labels, a random forest, and 5 rounds that each query the pool sample
whose class probability is closest to 0.5, printing the accuracy on all 100 samples.

The streaming version sees the other 95 samples once each, in a random order, and must
decide on the spot: least-confidence scores, a budget of 5 labels (rate 5/95) spent by
the variable-threshold manager (Žliobaitė et al. 2014), the same forest wrapped by
:class:`streamal.core.sklearn.SklearnClassifier`. Random querying at the same budget is the
baseline for both. Since one seed of a 100-sample problem says little, the same
comparison is then repeated over several seeds (different initial labels and orders).

Run: ``python examples/walkthrough_1_tiny_pool.py --out OUT [--fast]``
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

try:
    import numpy as np
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from walkthrough_common import options, plt, run_stream, samples, save, seed_table, table

    from streamal import ActiveLearner, budgets, strategies
    from streamal.core.sklearn import SklearnClassifier
except ModuleNotFoundError as err:  # an extra is not installed: say which, no traceback
    sys.stderr.write(
        f"error: this example needs {err.name}: pip install 'streamal[sklearn,plots]'\n"
    )
    raise SystemExit(2) from None

POOL, INITIAL, ROUNDS = 100, 5, 5


def forest(seed: int, trees: int) -> RandomForestClassifier:
    return RandomForestClassifier(n_estimators=trees, random_state=seed)


def pool_loop(
    X: np.ndarray,
    y: np.ndarray,
    initial: np.ndarray,
    pick: Callable[..., int],
    seed: int,
    trees: int,
) -> list[float]:
    """The classic loop: fit, query one pool sample, refit; accuracy on all samples."""
    labelled = list(initial)
    model = forest(seed, trees).fit(X[labelled], y[labelled])
    history = [float(model.score(X, y))]
    for _ in range(ROUNDS):
        pool = np.setdiff1d(np.arange(len(X)), labelled)
        labelled.append(int(pool[pick(model, X[pool])]))
        model = forest(seed, trees).fit(X[labelled], y[labelled])
        history.append(float(model.score(X, y)))
    return history


def closest_to_half(model: Any, Xp: np.ndarray) -> int:
    proba = model.predict_proba(Xp)
    return int(np.argmin(np.abs(proba.max(axis=1) - 0.5)))


def stream_loop(
    X: np.ndarray, y: np.ndarray, initial: np.ndarray, budget: Any, seed: int, trees: int
) -> tuple[list[float], list[int]]:
    """The stream: warm start on the initial labels, then one pass over the rest."""
    rng = np.random.default_rng(seed)
    rest = rng.permutation(np.setdiff1d(np.arange(len(X)), initial))
    model = SklearnClassifier(forest(seed, trees), seed=seed)
    learner = ActiveLearner(model, strategies.LeastConfidence(), budget)
    learner.warm_start(samples(X[initial], y[initial], initial))
    everything = samples(X, y)

    def score() -> float:
        predicted = model.predict_batch([s.x for s in everything])
        return float(np.mean([p == s.y for p, s in zip(predicted, everything, strict=True)]))

    history, when = [score()], []
    for position, (_, decision, _) in enumerate(
        run_stream(learner, samples(X[rest], y[rest], rest))
    ):
        if decision.queried:
            history.append(score())
            when.append(position + 1)
    return history, when


def main() -> None:
    args = options("walkthrough_1", __doc__.splitlines()[0])
    trees = 20 if args.fast else 50
    X, y = make_classification(
        n_samples=POOL, n_features=2, n_informative=2, n_redundant=0, random_state=42
    )
    rate = ROUNDS / (POOL - INITIAL)

    def runs(seed: int) -> dict[str, tuple[list[float], list[int]]]:
        initial = np.random.default_rng(seed).choice(POOL, INITIAL, replace=False)
        rnd = np.random.default_rng(seed + 1)
        return {
            "pool uncertainty": (pool_loop(X, y, initial, closest_to_half, seed, trees), []),
            "pool random": (
                pool_loop(X, y, initial, lambda m, p: int(rnd.integers(len(p))), seed, trees),
                [],
            ),
            "stream uncertainty": stream_loop(
                X, y, initial, budgets.VariableThreshold(rate=rate, seed=seed), seed, trees
            ),
            "stream random": stream_loop(
                X, y, initial, budgets.RandomBudget(rate=rate, seed=seed), seed, trees
            ),
        }

    main_runs = runs(args.seed)
    print(f"Seed {args.seed}: accuracy on all {POOL} samples after each label")
    width = 1 + ROUNDS
    rows = [
        [name, *(hist + [float("nan")] * (width - len(hist)))]
        for name, (hist, _) in main_runs.items()
    ]
    print(table(["run", "initial", *(f"label {i}" for i in range(1, width))], rows))
    hist, when = main_runs["stream uncertainty"]
    print(f"stream uncertainty queried arrivals {when} of {POOL - INITIAL} (budget {ROUNDS})")

    seeds = range(args.seed, args.seed + (3 if args.fast else 10))
    finals: dict[str, list[float]] = {name: [] for name in main_runs}
    labels: dict[str, list[int]] = {name: [] for name in main_runs}
    for seed in seeds:
        for name, (hist, _) in runs(seed).items():
            finals[name].append(hist[-1])
            labels[name].append(INITIAL + len(hist) - 1)
    summary_rows = seed_table(
        f"Over {len(seeds)} seeds: final accuracy (mean, std) and labels used",
        finals,
        counts=("labels", labels),
    )

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, (hist, _) in main_runs.items():
        ax.plot(range(INITIAL, INITIAL + len(hist)), hist, marker="o", label=name)
    ax.set(
        xlabel="labels used",
        ylabel=f"accuracy on all {POOL} samples",
        title=f"Tiny pool vs stream (seed {args.seed})",
    )
    ax.legend()
    save(
        fig,
        args.out,
        "walkthrough_1",
        {
            "seed": args.seed,
            "runs": {n: {"history": h, "queried_at": w} for n, (h, w) in main_runs.items()},
            "seeds": len(seeds),
            "mean_final_accuracy": {r[0]: r[1] for r in summary_rows},
            "mean_labels": {r[0]: r[3] for r in summary_rows},
        },
    )


if __name__ == "__main__":
    main()
