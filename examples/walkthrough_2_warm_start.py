"""Walkthrough 2: least confidence with a warm start and a held-out test set.

The classic setup: 1,000 samples (10 features, 5 informative, 10 % label noise, one
cluster per class), a 10 % test split, 10 % of the rest as the initial labelled set,
logistic regression, and 20 single queries by least confidence, with the test accuracy
after each query.

The streaming version warm-starts on the same 90 labels and then sees the other 810
samples once each, in a random order, with a budget of the same 20 labels (rate 20/810):
least-confidence scores, spent by the balanced incremental quantile filter (Kottke et
al. 2015) or by the variable threshold (Žliobaitė et al. 2014), the same logistic
regression refitted by :class:`streamal.core.sklearn.SklearnClassifier` after every label. Random
querying at the same number of labels is the baseline beside both. The comparison is
repeated over several seeds (different splits and orders).

Run: ``python examples/walkthrough_2_warm_start.py --out OUT [--fast]``
"""

from __future__ import annotations

import sys
from typing import Any

try:
    import numpy as np
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from walkthrough_common import options, plt, run_stream, samples, save, seed_table, table

    from streamal import ActiveLearner, budgets, strategies
    from streamal.core.sklearn import SklearnClassifier
except ModuleNotFoundError as err:  # an extra is not installed: say which, no traceback
    sys.stderr.write(
        f"error: this example needs {err.name}: pip install 'streamal[sklearn,plots]'\n"
    )
    raise SystemExit(2) from None

QUERIES = 20


def split(seed: int, n: int) -> tuple[np.ndarray, ...]:
    """Test split, initial labelled set and pool, as in the classic setup."""
    X, y = make_classification(
        n_samples=n,
        n_features=10,
        n_informative=5,
        flip_y=0.1,
        n_clusters_per_class=1,
        random_state=seed,
    )
    X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=0.1, random_state=seed)
    X_pool, X_init, y_pool, y_init = train_test_split(
        X_rest, y_rest, test_size=0.1, random_state=seed
    )
    return X_init, y_init, X_pool, y_pool, X_test, y_test


def pool_loop(data: tuple[np.ndarray, ...], uncertainty: bool, seed: int) -> list[float]:
    """Fit, query the least confident pool sample (or a random one), refit; test accuracy."""
    X_init, y_init, X_pool, y_pool, X_test, y_test = data
    rng = np.random.default_rng(seed)
    X_lab, y_lab = X_init.copy(), y_init.copy()
    available = np.ones(len(X_pool), dtype=bool)
    model = LogisticRegression().fit(X_lab, y_lab)
    history = [float(model.score(X_test, y_test))]
    for _ in range(QUERIES):
        candidates = np.flatnonzero(available)
        if uncertainty:
            confidence = model.predict_proba(X_pool[candidates]).max(axis=1)
            pick = candidates[np.argmin(confidence)]
        else:
            pick = rng.choice(candidates)
        available[pick] = False
        X_lab, y_lab = np.vstack([X_lab, X_pool[pick]]), np.append(y_lab, y_pool[pick])
        model = LogisticRegression().fit(X_lab, y_lab)
        history.append(float(model.score(X_test, y_test)))
    return history


def stream_loop(data: tuple[np.ndarray, ...], budget: Any, seed: int) -> list[float]:
    """Warm start, then one pass over the pool with a budget of ``QUERIES`` labels."""
    X_init, y_init, X_pool, y_pool, X_test, y_test = data
    model = SklearnClassifier(LogisticRegression(), seed=seed)
    learner = ActiveLearner(model, strategies.LeastConfidence(), budget)
    learner.warm_start(samples(X_init, y_init))
    test = samples(X_test, y_test)

    def accuracy() -> float:
        predicted = model.predict_batch([s.x for s in test])
        return float(np.mean([p == s.y for p, s in zip(predicted, test, strict=True)]))

    order = np.random.default_rng(seed).permutation(len(X_pool))
    history = [accuracy()]
    for _, decision, _ in run_stream(learner, samples(X_pool[order], y_pool[order], order)):
        if decision.queried:
            history.append(accuracy())
    return history


def runs(seed: int, n: int) -> dict[str, list[float]]:
    data = split(seed, n)
    rate = QUERIES / len(data[2])
    return {
        "pool least confidence": pool_loop(data, True, seed),
        "pool random": pool_loop(data, False, seed),
        "stream LC, quantile filter": stream_loop(
            data, budgets.QuantileFilter(rate=rate, seed=seed), seed
        ),
        "stream LC, variable threshold": stream_loop(
            data, budgets.VariableThreshold(rate=rate, seed=seed), seed
        ),
        "stream random": stream_loop(data, budgets.RandomBudget(rate=rate, seed=seed), seed),
    }


def main() -> None:
    args = options("walkthrough_2", __doc__.splitlines()[0])
    n = 1000
    main_runs = runs(args.seed, n)
    print(f"Seed {args.seed}: test accuracy (100 held-out samples) after 0, 5, ..., 20 queries")
    marks = range(0, QUERIES + 1, 5)
    rows = [
        [name, *(h[i] if i < len(h) else float("nan") for i in marks)]
        for name, h in main_runs.items()
    ]
    print(table(["run", *(f"{i} q" for i in marks)], rows))

    seeds = range(args.seed, args.seed + (3 if args.fast else 20))
    finals: dict[str, list[float]] = {name: [] for name in main_runs}
    used: dict[str, list[int]] = {name: [] for name in main_runs}
    for seed in seeds:
        for name, h in runs(seed, n).items():
            finals[name].append(h[-1])
            used[name].append(len(h) - 1)
    summary_rows = seed_table(
        f"Over {len(seeds)} seeds: final test accuracy (mean, std) and queries used",
        finals,
        counts=("queries", used),
    )

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, h in main_runs.items():
        ax.plot(
            range(len(h)),
            h,
            marker=".",
            label=name,
            linestyle="-" if name.startswith("pool") else "--",
        )
    ax.set(
        xlabel="queries after the 90 initial labels",
        ylabel="test accuracy",
        title=f"Least confidence, pool vs stream (seed {args.seed})",
    )
    ax.legend()
    save(
        fig,
        args.out,
        "walkthrough_2",
        {
            "seed": args.seed,
            "history": main_runs,
            "seeds": len(seeds),
            "mean_final_accuracy": {r[0]: r[1] for r in summary_rows},
            "mean_queries": {r[0]: r[3] for r in summary_rows},
        },
    )


if __name__ == "__main__":
    main()
