"""Benchmark of the strategy and budget-manager catalog (docs/strategies.md).

Three parts:

``promise``  realized label rate and worst 1,000-arrival window, per budget manager, over
             the conformance suite's score streams at rates 0.05/0.1/0.2 (seconds).
``micro``    cost of each component alone: µs per ``score`` (ARF, or logistic regression
             for EGL, trained on 2,000 Agrawal samples) and per ``decide`` (a minute).
``replay``   prequential accuracy of every strategy (with the default manager), every
             manager (with the default strategy), every window selector, and the random
             and full-label baselines, at rates 0.05/0.1/0.2, three seeds, on Elec2
             (``/work/shared/data/elec.csv``, skipped with a message if absent), a drifting
             Agrawal stream and ImageSegments (7 classes); µs per sample of the whole
             replay (model included). About 15 minutes on 2 cores with ``--jobs 2``.

Usage::

    python benchmarks/catalog.py [promise|micro|replay ...] [--jobs 2] [--n 20000]
        [--json results.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from streamal.core.models import build_model
from streamal.core.registry import BUDGETS, STRATEGIES, make_budget, make_strategy
from streamal.defaults import DEFAULT_BUDGET, DEFAULT_MODEL, DEFAULT_STRATEGY
from streamal.offline.oracle import SimulatedOracle
from streamal.offline.replay import build_learner, replay
from streamal.offline.streams import open_source
from streamal.window import SELECTORS, WindowLearner

ELEC = Path("/work/shared/data/elec.csv")
RATES = (0.05, 0.1, 0.2)
SEEDS = (1, 2, 3)
WINDOW = 100  # arrivals per window in window mode


# -- promise ---------------------------------------------------------------------------
def _score_streams(n: int) -> dict[str, list[float]]:
    rng = random.Random(42)
    streams = {
        "zeros": [0.0] * n,
        "ones": [1.0] * n,
        "bursts": [1.0 if i % 1000 >= 300 else 0.0 for i in range(n)],
        "uniform": [rng.random() for _ in range(n)],
    }
    for name, source, spec, strat in (
        ("hoeffding_agrawal", "synth:Agrawal:n=20000", "hoeffding", "least_confidence"),
        ("logreg_sea", "synth:SEA:n=20000", "logreg", "margin"),
    ):
        model, s, out = build_model(spec, 3), make_strategy(strat), []
        for i, sample in enumerate(itertools.islice(open_source(source, seed=3), n)):
            out.append(s.score(sample.x, model.predict_proba_one(sample.x), model))
            if i % 5 == 0:
                model.learn_one(sample.x, sample.y)
        streams[name] = out
    return streams


def _worst(decisions: list[bool], rate: float) -> tuple[float, float]:
    d = np.asarray(decisions, dtype=np.int64)
    windows = np.convolve(d[1000:], np.ones(1000, dtype=np.int64), "valid")
    realized = float(np.max(np.cumsum(d)[999:] / np.arange(1000, len(d) + 1)))
    return realized / rate, float(windows.max()) / (rate * 1000)


def promise(n: int) -> list[dict[str, Any]]:
    """Worst realized rate (any prefix ≥ 1,000) and worst window, relative to the target."""
    streams = _score_streams(n)
    rows = []
    for name in BUDGETS:
        worst_rate = worst_window = 0.0
        for rate, scores in itertools.product(RATES, streams.values()):
            m = make_budget(name, rate=rate, seed=1)
            r, w = _worst([m.decide(s) for s in scores], m.rate)
            worst_rate, worst_window = max(worst_rate, r), max(worst_window, w)
        rows.append({"manager": name, "worst_rate": worst_rate, "worst_window": worst_window})
    rows.append(_drift_promise(streams["uniform"]))
    rows += _skactiveml_promise(streams)
    return rows


def _drift_promise(scores: list[float]) -> dict[str, Any]:
    """drift_aware when labels report an error jump (10 % → 50 %) at a third of the stream."""
    worst_rate = worst_window = 0.0
    for rate in RATES:
        m, rng, decisions = make_budget("drift_aware", rate=rate, seed=1), random.Random(1), []
        for i, s in enumerate(scores):
            decisions.append(m.decide(s))
            if decisions[-1]:
                m.on_label(rng.random() >= (0.1 if i < len(scores) // 3 else 0.5))
        r, w = _worst(decisions, rate)
        worst_rate, worst_window = max(worst_rate, r), max(worst_window, w)
    return {
        "manager": "drift_aware (error jump)",
        "worst_rate": worst_rate,
        "worst_window": worst_window,
    }


def _skactiveml_promise(streams: dict[str, list[float]]) -> list[dict[str, Any]]:
    try:
        from skactiveml.stream import budgetmanager as bm
    except ImportError:
        print("scikit-activeml not installed: its rows are skipped", file=sys.stderr)
        return []
    rows = []
    makers = {
        "skactiveml VariableUncertainty": lambda r: bm.VariableUncertaintyBudgetManager(budget=r),
        "skactiveml Split": lambda r: bm.SplitBudgetManager(budget=r, random_state=1),
        "skactiveml RandomBudgetManager": lambda r: bm.RandomBudgetManager(
            budget=r, random_state=1
        ),
    }
    for label, make in makers.items():
        worst_rate = worst_window = 0.0
        for rate, name in itertools.product(RATES, ("hoeffding_agrawal", "uniform", "bursts")):
            m, decisions = make(rate), []
            for u in streams[name][:5000]:  # scikit-activeml costs ~0.3 ms per arrival
                q = m.query_by_utility(np.array([u]))
                m.update(np.zeros((1, 1)), q)
                decisions.append(len(q) > 0)
            r, w = _worst(decisions, rate)
            worst_rate, worst_window = max(worst_rate, r), max(worst_window, w)
        rows.append({"manager": label, "worst_rate": worst_rate, "worst_window": worst_window})
    return rows


# -- micro -----------------------------------------------------------------------------
def micro() -> list[dict[str, Any]]:
    """µs per score (model trained on 2,000 Agrawal samples) and per decide (100,000)."""
    data = [(s.x, s.y) for s in itertools.islice(open_source("synth:Agrawal:n=4000", seed=1), 4000)]
    rows = []
    for name in STRATEGIES:
        spec = "logreg" if name == "egl" else DEFAULT_MODEL
        model = build_model(spec, seed=1)
        s = make_strategy(name, seed=1)
        for x, y in data[:2000]:
            model.learn_one(x, y)
            if s.stateful:
                s.observe(x)
                s.learn(x, y)
        probas = [model.predict_proba_one(x) for x, _ in data[2000:]]
        start = time.perf_counter()
        for (x, _), p in zip(data[2000:], probas, strict=True):
            s.score(x, p, model)
            if s.stateful:
                s.observe(x)
        us = 1e6 * (time.perf_counter() - start) / 2000
        rows.append({"component": f"strategy {name}", "model": spec, "us": us})
    rng = random.Random(0)
    scores = [rng.random() for _ in range(100_000)]
    for name in BUDGETS:
        m = make_budget(name, rate=0.1, seed=1)
        start = time.perf_counter()
        for s in scores:
            if m.decide(s):
                m.on_label(s > 0.3)
        rows.append(
            {
                "component": f"budget {name}",
                "model": "",
                "us": 1e6 * (time.perf_counter() - start) / len(scores),
            }
        )
    return rows


# -- replay ----------------------------------------------------------------------------
def _datasets(n: int) -> dict[str, str]:
    out = {}
    if ELEC.is_file():
        out["Elec2"] = str(ELEC)
    else:
        print(f"{ELEC} not found: Elec2 skipped", file=sys.stderr)
    out["Agrawal (drift)"] = f"synth:Agrawal:n={n}"
    out["ImageSegments"] = "river:ImageSegments"
    return out


def _runs(dataset: str) -> list[tuple[str, str, str, str]]:
    """(label, model, strategy, budget) — budget ``window:SEL`` means window mode."""
    linear = "softmax" if dataset == "ImageSegments" else "logreg"
    runs = [
        ("random", DEFAULT_MODEL, "random", "random"),
        ("full", DEFAULT_MODEL, "random", "full"),
    ]
    runs += [
        (f"{s} / {DEFAULT_BUDGET}", linear if s == "egl" else DEFAULT_MODEL, s, DEFAULT_BUDGET)
        for s in STRATEGIES
        if s != "random"
    ]
    runs += [
        (f"{DEFAULT_STRATEGY} / {b}", DEFAULT_MODEL, DEFAULT_STRATEGY, b)
        for b in BUDGETS
        if b not in ("random", "full", DEFAULT_BUDGET)
    ]
    runs += [
        (f"window {sel} ({DEFAULT_STRATEGY})", DEFAULT_MODEL, DEFAULT_STRATEGY, f"window:{sel}")
        for sel in SELECTORS
    ]
    runs += [
        (f"{linear}: random", linear, "random", "random"),
        (f"{linear}: full", linear, "random", "full"),
    ]
    return runs


def _one(task: tuple[str, str, str, str, str, str, float, int, int]) -> dict[str, Any]:
    dataset, source, label, model, strategy, budget, rate, seed, n = task
    stream = itertools.islice(open_source(source, seed=seed), n)
    if budget.startswith("window:"):
        inner = build_learner(model, strategy, "random", rate, seed)
        learner: Any = WindowLearner(inner, budget.split(":", 1)[1], window=WINDOW, seed=seed)
    else:
        learner = build_learner(model, strategy, budget, rate, seed)
    final, _ = replay(stream, learner, SimulatedOracle("0", seed=seed), step=n)
    return {
        "dataset": dataset,
        "run": label,
        "rate": rate,
        "seed": seed,
        "accuracy": final.accuracy,
        "label_rate": final.labels_used / final.samples,
        "us": 1e6 * final.seconds / final.samples,
        "samples": final.samples,
    }


def replay_all(n: int, jobs: int) -> list[dict[str, Any]]:
    tasks = []
    for dataset, source in _datasets(n).items():
        for label, model, strategy, budget in _runs(dataset):
            rates = (1.0,) if budget == "full" else RATES
            for rate, seed in itertools.product(rates, SEEDS):
                tasks.append((dataset, source, label, model, strategy, budget, rate, seed, n))
    # Slow runs first, so that the pool does not end on one long task.
    tasks.sort(key=lambda t: (t[5] != "full", not t[2].startswith(("bald", "kl", "vote"))))
    with multiprocessing.Pool(jobs) as pool:
        return list(pool.imap_unordered(_one, tasks))


# -- reporting -------------------------------------------------------------------------
def _table_replay(results: list[dict[str, Any]]) -> str:
    out = []
    for dataset in dict.fromkeys(r["dataset"] for r in results):
        rows = [r for r in results if r["dataset"] == dataset]
        n = rows[0]["samples"]
        out.append(
            f"\n**{dataset}** ({n} samples; accuracy mean ± sd over seeds "
            f"{', '.join(map(str, SEEDS))}; realized label rate; µs per sample)\n"
        )
        out.append(
            "| run | "
            + " | ".join(f"acc @ {r}" for r in RATES)
            + " | label rate @ 0.1 | µs/sample @ 0.1 |"
        )
        out.append("|---|" + "---|" * (len(RATES) + 2))
        order = {label: i for i, (label, *_rest) in enumerate(_runs(dataset))}
        for run in sorted(dict.fromkeys(r["run"] for r in rows), key=order.__getitem__):
            cells, rate_cell, us_cell = [], "", ""
            for rate in RATES:
                sel = [r for r in rows if r["run"] == run and r["rate"] in (rate, 1.0)]
                acc = [r["accuracy"] for r in sel]
                cells.append(f"{statistics.mean(acc):.3f} ± {statistics.pstdev(acc):.3f}")
                if rate == 0.1:
                    rate_cell = f"{statistics.mean(r['label_rate'] for r in sel):.3f}"
                    us_cell = f"{statistics.mean(r['us'] for r in sel):.0f}"
            out.append(f"| {run} | " + " | ".join(cells) + f" | {rate_cell} | {us_cell} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", default=["promise", "micro", "replay"])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--n", type=int, default=20_000, help="samples per stream")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"load_before": os.getloadavg()}
    started = time.perf_counter()
    if "promise" in args.parts:
        results["promise"] = promise(args.n)
        print("\n| manager | worst realized rate / target | worst 1000-window / target |")
        print("|---|---|---|")
        for r in results["promise"]:
            print(f"| {r['manager']} | {r['worst_rate']:.3f} | {r['worst_window']:.3f} |")
    if "micro" in args.parts:
        results["micro"] = micro()
        print("\n| component | model | µs per call |\n|---|---|---|")
        for r in results["micro"]:
            print(f"| {r['component']} | {r['model']} | {r['us']:.1f} |")
    if "replay" in args.parts:
        results["replay"] = replay_all(args.n, args.jobs)
        print(_table_replay(results["replay"]))
    results["load_after"] = os.getloadavg()
    # Timings are only comparable on an otherwise idle machine: say how busy it was.
    print(
        f"\n(total {time.perf_counter() - started:.0f} s; load average "
        f"{results['load_before'][0]:.1f} before, {results['load_after'][0]:.1f} after, "
        f"{os.cpu_count()} CPUs)",
        file=sys.stderr,
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
