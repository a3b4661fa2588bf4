"""Walkthrough 4: batch BALD over a bagging ensemble of Gaussian processes.

The classic setup: 400 samples from 5 Gaussian blobs mapped to 2 classes, a 25 % test
split, a bagging ensemble of Gaussian process classifiers, and 5 cycles that each label
a batch of 4 chosen by greedy BatchBALD (Kirsch et al. 2019) over the whole pool, with
the test accuracy after each cycle. A 2x2 figure shows, for one cycle, the decision
boundary and the utility of every point as the 1st, 2nd, 3rd and 4th member of the batch
(the gain in joint mutual information given the members already picked).

The pool-based loop calls streamal's own BatchBALD selector with the whole pool as the
"window". The streaming version is window mode proper: the pool arrives once, in a
random order, in 5 windows of 60, and :class:`streamal.window.WindowLearner` picks 4 of
each window by BatchBALD over the same ensemble, wrapped by
:class:`streamal.core.sklearn.SklearnClassifier`. Random batches are the baseline beside both.
With no label yet, the first batch has no ensemble to consult and is effectively random.

Run: ``python examples/walkthrough_4_batch_bald.py --out OUT [--fast]``
"""

from __future__ import annotations

import sys
from typing import Any

try:
    import numpy as np
    from sklearn.base import clone
    from sklearn.datasets import make_blobs
    from sklearn.ensemble import BaggingClassifier
    from sklearn.gaussian_process import GaussianProcessClassifier
    from sklearn.model_selection import train_test_split
    from walkthrough_common import options, plt, run_stream, samples, save, seed_table, table

    from streamal import ActiveLearner, budgets, strategies
    from streamal.core.sklearn import OneClassFallback, SklearnClassifier
    from streamal.strategies.batch import Batch, BatchBALD
    from streamal.window import WindowLearner
except ModuleNotFoundError as err:  # an extra is not installed: say which, no traceback
    sys.stderr.write(
        f"error: this example needs {err.name}: pip install 'streamal[sklearn,plots]'\n"
    )
    raise SystemExit(2) from None

CYCLES, BATCH, SHOWN_CYCLE = 5, 4, 3


def ensemble(seed: int, members: int) -> BaggingClassifier:
    # A bootstrap of a few labels may hold one class: OneClassFallback makes that
    # member certain of it instead of failing, as a GP cannot fit one class.
    return BaggingClassifier(
        OneClassFallback(GaussianProcessClassifier()), n_estimators=members, random_state=seed
    )


def data(seed: int) -> tuple[np.ndarray, ...]:
    X, blob = make_blobs(n_samples=400, centers=5, random_state=seed)
    X_pool, X_test, y_pool, y_test = train_test_split(
        X, blob % 2, test_size=0.25, random_state=seed
    )
    return X_pool, y_pool, X_test, y_test


def member_array(model: BaggingClassifier, X: np.ndarray) -> np.ndarray:
    """Members' posteriors over both classes, shape (n, members, 2)."""
    out = np.zeros((len(X), len(model.estimators_), 2))
    for j, (member, cols) in enumerate(
        zip(model.estimators_, model.estimators_features_, strict=True)
    ):
        out[:, j][:, member.classes_.astype(int)] = member.predict_proba(X[:, cols])
    return out


def gains(members: np.ndarray, picked: list[int], candidates: np.ndarray) -> np.ndarray:
    """Marginal BatchBALD gain of each candidate given the picked rows (exact).

    ``I(y_S, y_c; model) − I(y_S; model)`` with the members as posterior samples.
    """
    m = members.shape[1]
    config = np.ones((m, 1))  # each member's probability of every labelling of S
    for i in picked:
        config = (config[:, :, None] * members[i][:, None, :]).reshape(m, -1)
    prior = config.mean(axis=0)
    h_s = -(prior * np.log(np.clip(prior, 1e-300, None))).sum()
    joint = np.einsum("ms,nmc->nsc", config, candidates) / m  # P(labelling of S, y_c)
    h_joint = -(joint * np.log(np.clip(joint, 1e-300, None))).sum(axis=(1, 2))
    p = np.clip(candidates, 1e-12, 1.0)
    aleatoric = -(p * np.log(p)).sum(axis=2).mean(axis=1)
    return h_joint - h_s - aleatoric


def pool_loop(d: tuple[np.ndarray, ...], bald: bool, seed: int, members: int) -> dict[str, Any]:
    """5 cycles of batches of 4 over the whole pool; test accuracy after each cycle."""
    X_pool, y_pool, X_test, y_test = d
    rng = np.random.default_rng(seed)
    labelled: list[int] = []
    model, history, shown = None, [], {}
    for cycle in range(1, CYCLES + 1):
        free = np.setdiff1d(np.arange(len(X_pool)), labelled)
        if model is None or not bald:
            batch = [int(i) for i in rng.choice(free, BATCH, replace=False)]
        else:
            probs = member_array(model, X_pool[free])
            view = Batch(np.zeros(len(free)), X_pool[free], np.zeros((0, 2)), probs)
            batch = [int(free[i]) for i in BatchBALD().select(view, BATCH, rng)]
            if cycle == SHOWN_CYCLE:
                shown = {"model": model, "labelled": list(labelled), "batch": batch}
        labelled += batch
        model = clone(ensemble(seed, members)).fit(X_pool[labelled], y_pool[labelled])
        history.append(float(model.score(X_test, y_test)))
    return {"history": history, "shown": shown}


def stream_loop(d: tuple[np.ndarray, ...], selector: str, seed: int, members: int) -> list[float]:
    """Window mode: 5 windows of 60 arrivals, 4 labels each; accuracy after each window."""
    X_pool, y_pool, X_test, y_test = d
    n = CYCLES * 60
    order = np.random.default_rng(seed).permutation(len(X_pool))[:n]
    model = SklearnClassifier(ensemble(seed, members), seed=seed)
    # BatchBALD reads the members, not the score; "topk" of random scores is the baseline
    score = strategies.Entropy() if selector == "batchbald" else strategies.RandomScore(seed)
    inner = ActiveLearner(model, score, budgets.RandomBudget(rate=BATCH / 60))
    learner = WindowLearner(inner, selector, window=60, seed=seed)
    history = []
    for _, _, answered in run_stream(learner, samples(X_pool[order], y_pool[order], order)):
        if answered:
            predicted = model.predict_batch([s.x for s in samples(X_test, y_test)])
            history.append(float(np.mean(np.asarray(predicted) == y_test)))
    return history


def figure(d: tuple[np.ndarray, ...], shown: dict[str, Any], seed: int) -> Any:
    """Decision boundary and each batch member's utility contour for one cycle."""
    X_pool, y_pool = d[0], d[1]
    model, labelled = shown["model"], shown["labelled"]
    lo, hi = X_pool.min(axis=0) - 1.0, X_pool.max(axis=0) + 1.0
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 80), np.linspace(lo[1], hi[1], 80))
    grid = np.c_[gx.ravel(), gy.ravel()]
    grid_members = member_array(model, grid)
    pool_members = member_array(model, X_pool)
    boundary = model.predict_proba(grid)[:, 1].reshape(gx.shape)
    order: list[int] = []  # greedy order, re-derived with the exact gains above
    for _ in range(BATCH):
        g = gains(pool_members, order, pool_members)
        g[labelled + order] = -np.inf
        order.append(int(np.argmax(g)))
    fig, axes = plt.subplots(2, 2, figsize=(9, 8), sharex=True, sharey=True)
    for j, ax in enumerate(axes.ravel()):
        utility = gains(pool_members, order[:j], grid_members).reshape(gx.shape)
        cs = ax.contourf(gx, gy, utility, levels=12, cmap="Greens")
        fig.colorbar(cs, ax=ax, shrink=0.8)
        ax.contour(gx, gy, boundary, levels=[0.5], colors="k", linewidths=1.5)
        ax.scatter(*X_pool.T, c=y_pool, cmap="coolwarm", s=8, alpha=0.35)
        ax.scatter(
            *X_pool[labelled].T,
            c=y_pool[labelled],
            cmap="coolwarm",
            s=60,
            edgecolors="k",
            label="labelled",
        )
        ax.scatter(
            *X_pool[order[:j]].T,
            marker="s",
            s=70,
            facecolors="none",
            edgecolors="k",
            label="picked before",
        )
        ax.scatter(
            *X_pool[order[j]],
            marker="*",
            s=260,
            c="gold",
            edgecolors="k",
            label=f"batch member {j + 1}",
        )
        ax.set_title(f"utility of batch member {j + 1} (cycle {SHOWN_CYCLE})")
        ax.legend(loc="lower right", fontsize=7)
    return fig, order


def main() -> None:
    args = options("walkthrough_4", __doc__.splitlines()[0])
    members = 5 if args.fast else 10
    d = data(args.seed)
    pool_bald = pool_loop(d, True, args.seed, members)
    runs = {
        "pool BatchBALD": pool_bald["history"],
        "pool random": pool_loop(d, False, args.seed, members)["history"],
        "stream window BatchBALD": stream_loop(d, "batchbald", args.seed, members),
        "stream window random": stream_loop(d, "topk", args.seed, members),
    }
    print(f"Seed {args.seed}: test accuracy (100 samples) after each cycle of {BATCH} labels")
    cols = [f"{BATCH * c} labels" for c in range(1, CYCLES + 1)]
    print(table(["run", *cols], [[k, *v] for k, v in runs.items()]))

    fig, order = figure(d, pool_bald["shown"], args.seed)
    picked = sorted(pool_bald["shown"]["batch"])
    print(
        f"\ncycle {SHOWN_CYCLE}: streamal's BatchBALD picked {picked}; greedy order by the "
        f"exact gains {order}; same set: {sorted(order) == picked}"
    )

    seeds = range(args.seed + 1, args.seed + (2 if args.fast else 6))
    finals: dict[str, list[float]] = {k: [] for k in runs}
    for seed in seeds:
        ds = data(seed)
        finals["pool BatchBALD"].append(pool_loop(ds, True, seed, members)["history"][-1])
        finals["pool random"].append(pool_loop(ds, False, seed, members)["history"][-1])
        finals["stream window BatchBALD"].append(stream_loop(ds, "batchbald", seed, members)[-1])
        finals["stream window random"].append(stream_loop(ds, "topk", seed, members)[-1])
    seed_rows = seed_table(
        f"Over {len(seeds)} more seeds: test accuracy after {CYCLES * BATCH} labels", finals
    )

    curve, ax = plt.subplots(figsize=(6, 4))
    for name, history in runs.items():
        ax.plot([BATCH * c for c in range(1, len(history) + 1)], history, marker="o", label=name)
    ax.set(
        xlabel="labels",
        ylabel="test accuracy",
        title=f"BatchBALD, pool vs window mode (seed {args.seed})",
    )
    ax.legend()
    curve.tight_layout()
    curve.savefig(args.out / "walkthrough_4_accuracy.png", dpi=110)
    plt.close(curve)
    save(
        fig,
        args.out,
        "walkthrough_4",
        {
            "seed": args.seed,
            "history": runs,
            "shown_cycle": SHOWN_CYCLE,
            "picked": picked,
            "greedy_order": order,
            "seeds": len(seeds),
            "mean_final_accuracy": {r[0]: r[1] for r in seed_rows},
        },
    )


if __name__ == "__main__":
    main()
