"""Walkthrough 3: iterations of a fixed batch size, with per-iteration records.

The classic setup: 500 two-feature samples (two interleaved moons), a 20 % test split,
a scaled MLP, 2 initial labels (one per class), then batches of 4 chosen by margin
("breaking ties": the smallest gap between the two most probable classes) until the
pool is exhausted. Every iteration keeps a record of its labelled set, its fitted model
and its test F1, and the F1 is plotted against the number of labels.

The streaming version uses window mode: the 398 other samples arrive once each in a
random order; after every window of 16 arrivals, :class:`streamal.window.WindowLearner`
picks the 4 with the highest margin score (rate 4/16), the labels come back at once, and
the same MLP, wrapped by :class:`streamal.core.sklearn.SklearnClassifier`, is refitted. It
keeps the same per-window records. Random batches are the baseline beside both.

Run: ``python examples/walkthrough_3_batches.py --out OUT [--fast]``
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from typing import Any

try:
    import numpy as np
    from sklearn.base import clone
    from sklearn.datasets import make_moons
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import f1_score
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from walkthrough_common import options, plt, run_stream, samples, save, seed_table, table

    from streamal import ActiveLearner, budgets, strategies
    from streamal.core.sklearn import SklearnClassifier
    from streamal.window import WindowLearner
except ModuleNotFoundError as err:  # an extra is not installed: say which, no traceback
    sys.stderr.write(
        f"error: this example needs {err.name}: pip install 'streamal[sklearn,plots]'\n"
    )
    raise SystemExit(2) from None

BATCH, WINDOW = 4, 16

# On 2 to 10 labels lbfgs now and then stops on a failed line search ("ABNORMAL"); the
# fit it returns is used anyway, as the classic loop does.
warnings.filterwarnings("ignore", category=ConvergenceWarning)


@dataclass
class Record:
    """What one iteration (or closed window) leaves behind."""

    iteration: int
    labelled: list[int]
    model: Any
    f1: float


def mlp(seed: int) -> Any:
    return make_pipeline(
        StandardScaler(),
        # L2 penalty 0.1: on noisy moons the unpenalized net overfits and lbfgs stalls
        MLPClassifier((8,), solver="lbfgs", alpha=0.1, max_iter=1000, random_state=seed),
    )


def data(seed: int, n: int) -> tuple[np.ndarray, ...]:
    X, y = make_moons(n_samples=n, noise=0.25, random_state=seed)
    X_pool, X_test, y_pool, y_test = train_test_split(X, y, test_size=0.2, random_state=seed)
    rng = np.random.default_rng(seed)
    initial = np.array([rng.choice(np.flatnonzero(y_pool == c)) for c in (0, 1)])
    return X_pool, y_pool, X_test, y_test, initial


def margin(proba: np.ndarray) -> np.ndarray:
    top2 = np.sort(proba, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def pool_loop(
    d: tuple[np.ndarray, ...], by_margin: bool, seed: int, max_labels: int | None = None
) -> list[Record]:
    """Batches of ``BATCH`` until the pool is exhausted (or ``max_labels`` are used);
    one record per iteration."""
    X_pool, y_pool, X_test, y_test, initial = d
    rng = np.random.default_rng(seed)
    labelled = [int(i) for i in initial]
    records = []
    for iteration in range(len(X_pool)):
        model = clone(mlp(seed)).fit(X_pool[labelled], y_pool[labelled])
        records.append(
            Record(iteration, list(labelled), model, float(f1_score(y_test, model.predict(X_test))))
        )
        free = np.setdiff1d(np.arange(len(X_pool)), labelled)
        if not len(free) or (max_labels is not None and len(labelled) >= max_labels):
            return records
        if by_margin:
            batch = free[np.argsort(margin(model.predict_proba(X_pool[free])), kind="stable")]
        else:
            batch = rng.permutation(free)
        labelled += [int(i) for i in batch[:BATCH]]
    return records


def stream_loop(d: tuple[np.ndarray, ...], strategy: Any, seed: int) -> list[Record]:
    """Window mode over the rest of the pool; one record per window that asked labels."""
    X_pool, y_pool, X_test, y_test, initial = d
    model = SklearnClassifier(mlp(seed), seed=seed)
    inner = ActiveLearner(model, strategy, budgets.RandomBudget(rate=BATCH / WINDOW))
    inner.warm_start(samples(X_pool[initial], y_pool[initial], initial))
    learner = WindowLearner(inner, "topk", window=WINDOW, seed=seed)
    rest = np.random.default_rng(seed).permutation(np.setdiff1d(np.arange(len(X_pool)), initial))
    test = samples(X_test, y_test)
    labelled = [int(i) for i in initial]

    def record(iteration: int) -> Record:
        predicted = model.predict_batch([s.x for s in test])
        return Record(
            iteration, list(labelled), model.estimator_, float(f1_score(y_test, predicted))
        )

    records = [record(0)]
    for _, _, answered in run_stream(learner, samples(X_pool[rest], y_pool[rest], rest)):
        if answered:  # a window closed and its labels were learned
            labelled += [int(i) for i in answered]
            records.append(record(len(records)))
    return records


def main() -> None:
    args = options("walkthrough_3", __doc__.splitlines()[0])
    n = 200 if args.fast else 500
    d = data(args.seed, n)
    runs = {
        "pool margin": pool_loop(d, True, args.seed),
        "pool random": pool_loop(d, False, args.seed),
        "stream window margin": stream_loop(d, strategies.Margin(), args.seed),
        "stream window random": stream_loop(d, strategies.RandomScore(seed=args.seed), args.seed),
    }
    stream_labels = len(runs["stream window margin"][-1].labelled)
    print(f"{n} samples, {len(d[0])} in the pool, {len(d[2])} test; batches of {BATCH}")
    rows = []
    for name, records in runs.items():
        at = next((r for r in records if len(r.labelled) >= stream_labels), records[-1])
        rows.append(
            [name, len(records), len(records[-1].labelled), records[-1].f1, len(at.labelled), at.f1]
        )
    print(table(["run", "iterations", "labels", "final F1", "labels", "F1 there"], rows))
    first = runs["pool margin"][1]
    print(
        f"\nrecord of pool iteration 1: {len(first.labelled)} labels {first.labelled}, "
        f"model {type(first.model).__name__}, test F1 {first.f1:.3f}"
    )

    seeds = range(args.seed + 1, args.seed + (2 if args.fast else 6))
    at_end: dict[str, list[float]] = {name: [] for name in runs}
    for seed in seeds:
        ds = data(seed, n)
        margin_run = stream_loop(ds, strategies.Margin(), seed)
        labels = len(margin_run[-1].labelled)
        for name, records in {
            "pool margin": pool_loop(ds, True, seed, labels),
            "pool random": pool_loop(ds, False, seed, labels),
            "stream window margin": margin_run,
            "stream window random": stream_loop(ds, strategies.RandomScore(seed=seed), seed),
        }.items():
            at_end[name].append(records[-1].f1)
    seed_rows = seed_table(
        f"Over {len(seeds)} more seeds: test F1 at the stream's label count (mean, std)",
        at_end,
        metric="mean F1",
    )

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, records in runs.items():
        ax.plot(
            [len(r.labelled) for r in records],
            [r.f1 for r in records],
            label=name,
            linestyle="-" if name.startswith("pool") else "--",
        )
    ax.set(
        xlabel="labels",
        ylabel="test F1",
        xscale="log",
        title=f"Batches of {BATCH}: pool vs window mode (seed {args.seed})",
    )
    ax.legend()
    save(
        fig,
        args.out,
        "walkthrough_3",
        {
            "seed": args.seed,
            "samples": n,
            "curves": {k: [[len(r.labelled), r.f1] for r in v] for k, v in runs.items()},
            "seeds": len(seeds),
            "mean_f1_at_stream_end": {r[0]: r[1] for r in seed_rows},
            "table": {
                r[0]: {
                    "iterations": r[1],
                    "labels": r[2],
                    "final_f1": r[3],
                    "labels_at_stream_end": r[4],
                    "f1_at_stream_end": r[5],
                }
                for r in rows
            },
        },
    )


if __name__ == "__main__":
    main()
