"""Label efficiency: accuracy per label of every strategy/manager pair against baselines.

Prequential replay (test, then maybe query, then learn when the label comes) of every
sensible strategy/budget-manager pair, the random baseline (random labels at the same
rate), a periodic baseline (every 1/rate-th arrival) and the full-label baseline, over:

* streams: Elec2 (``/work/shared/data/elec.csv`` or ``$STREAMAL_ELEC2``; skipped with a
  message if absent), river's Phishing, Bananas and ImageSegments (7 classes), and the
  synthetic SEA and Agrawal (abrupt drift half-way), Hyperplane (gradual drift) and
  RandomRBFDrift (3 classes, moving centroids), 20,000 samples each;
* the first 20,000 samples of every stream (``--limit``; the river ones are shorter);
* rates 0.01, 0.05, 0.1, 0.2; seeds 1, 2, 3; label delays 0 and 500 samples (at delay
  500, the uncertainty strategies with every manager and the baselines: the spatial
  strategies and EGL are compared at delay 0, to keep the grid near an hour on 2 cores);
* peers: scikit-activeml's VariableUncertainty with BIQF and with its own manager, and
  StreamProbabilisticAL (BIQF), their budget managers unguarded (``peers.py``);
* two model families: scaled logistic regression (``logreg``; ``softmax`` on multi-class
  streams) and a Hoeffding tree (``hoeffding``).

Every run's result is appended to a cache (``--cache``), so an interrupted or extended
run only computes what is missing. On binary streams ``least_confidence`` and ``margin``
are the same score (both ``2 (1 - max p)``), so the margin run is computed once and
reported under both names.

Usage::

    python benchmarks/label_efficiency.py --full       # the grid in docs/benchmarks.md
    python benchmarks/label_efficiency.py --quick      # a minute: 1 seed, small streams
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ELEC, ROOT, ResultCache, cache_key, machine, materialize, progress  # noqa: E402
from label_efficiency_report import write_report  # noqa: E402
from peers import MANAGERS as PEER_MANAGERS  # noqa: E402
from peers import PEERS, build_peer_learner  # noqa: E402

from streamal.messages import Sample  # noqa: E402
from streamal.offline.oracle import SimulatedOracle  # noqa: E402
from streamal.offline.replay import build_learner, replay  # noqa: E402

#: Score-aware managers compared (the score-blind ones are the baselines).
MANAGERS = (
    "reserve_quantile",
    "variable_threshold",
    "fixed_threshold",
    "rand_variable_threshold",
    "split",
    "selective_sampling",
    "biqf",
    "drift_aware",
)
#: Strategies paired with every manager.
UNCERTAINTY = ("least_confidence", "margin", "entropy")
#: Spatial strategies cost 3-5x more per sample (a window of recent arrivals): paired
#: with the variable threshold only (the default manager).
SPATIAL = ("density", "pal")
SPATIAL_MANAGERS = ("variable_threshold",)
BASELINES = (("random", "random"), ("random", "periodic"), ("random", "full"))
FAMILIES = ("linear", "tree")  # "forest" (ARF, ~10x the cost) on request: --families
KEY = ("stream", "limit", "family", "strategy", "budget", "rate", "delay", "seed")


@dataclass(frozen=True)
class Grid:
    """What to run."""

    streams: dict[str, str]
    rates: tuple[float, ...] = (0.01, 0.05, 0.1, 0.2)
    seeds: tuple[int, ...] = (1, 2, 3)
    delays: tuple[int, ...] = (0, 500)
    families: tuple[str, ...] = FAMILIES
    limit: int | None = None
    pairs: tuple[tuple[str, str], ...] | None = None  # None: every sensible pair
    extra: dict[str, Any] = field(default_factory=dict)


def streams(n: int, elec_limit: int | None = None) -> dict[str, str]:
    """Stream name → source spec (Elec2 only if its file exists)."""
    out: dict[str, str] = {}
    if ELEC.is_file():
        out["Elec2"] = str(ELEC)
    else:
        print(f"{ELEC} not found: Elec2 skipped (set STREAMAL_ELEC2)", file=sys.stderr)
    out |= {
        "Phishing": "river:Phishing",
        "Bananas": "river:Bananas",
        "ImageSegments": "river:ImageSegments",
        "SEA (abrupt)": f"synth:SEA:n={n}",
        "Agrawal (abrupt)": f"synth:Agrawal:n={n}",
        "Hyperplane (gradual)": f"synth:Hyperplane:n={n}",
        "RandomRBFDrift": f"synth:RandomRBFDrift:n={n}",
    }
    return out


def pairs(family: str, grid: Grid, delay: int = 0) -> list[tuple[str, str]]:
    """Every (strategy, budget) run of a family at one rate and delay, baselines first."""
    if grid.pairs is not None:
        return list(BASELINES) + [
            p for p in grid.pairs if p not in BASELINES and (family == "linear" or p[0] != "egl")
        ]
    out = list(BASELINES)
    out += [(s, m) for s in UNCERTAINTY for m in MANAGERS]
    # scikit-activeml's VariableUncertainty (+ BIQF) and StreamProbabilisticAL, unguarded.
    out += [p for p in PEERS.values() if not delay or p[0] != "pal"]
    if delay:
        return out
    if family == "linear":  # expected gradient length needs a linear model's gradient
        out += [("egl", m) for m in MANAGERS]
    out += [(s, m) for s in SPATIAL for m in SPATIAL_MANAGERS]
    return out


def model_spec(family: str, classes: int) -> str:
    """The model of a family: ``linear``, ``tree`` or ``forest`` (ARF, the default model)."""
    if family in ("tree", "forest"):
        return "hoeffding" if family == "tree" else "arf"
    return "logreg" if classes <= 2 else "softmax"


def _run(
    data: list[Sample], model: str, strategy: str, budget: str, rate: float, delay: int, seed: int
) -> dict[str, Any]:
    if budget in PEER_MANAGERS:
        learner = build_peer_learner(model, strategy, budget, rate, seed)
    else:
        learner = build_learner(model, strategy, budget, rate, seed)
    oracle = SimulatedOracle(str(delay), seed=seed)
    final, _ = replay(data, learner, oracle, step=len(data))
    return {
        "model": model,
        "samples": final.samples,
        "labels": final.labels_used,
        "accuracy": final.accuracy,
        "us": 1e6 * final.seconds / final.samples,
    }


_STREAM: dict[tuple[str, int, int | None], list[Sample]] = {}


def task(args: tuple[str, str, int, int | None, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Run ``todo`` (rows without results) on one stream and seed; return the rows."""
    name, source, seed, limit, todo = args
    key = (source, seed, limit)
    if key not in _STREAM:  # one stream per worker at a time: tasks come grouped
        _STREAM.clear()
        _STREAM[key] = materialize(source, seed, limit)
    data = _STREAM[key]
    classes = len({s.y for s in data})
    out, done = [], {}
    for row in todo:
        strategy = row["strategy"]
        if classes <= 2 and strategy == "least_confidence":
            strategy = "margin"  # the same score on two classes
        ident = (row["family"], strategy, row["budget"], row["rate"], row["delay"])
        if ident not in done:
            model = model_spec(row["family"], classes)
            done[ident] = _run(
                data, model, strategy, row["budget"], row["rate"], row["delay"], seed
            )
        result = dict(done[ident], classes=classes)
        if strategy != row["strategy"]:
            result["same_as"] = strategy
        out.append(row | result)
    return out


def plan(grid: Grid, cache: ResultCache) -> list[tuple[str, str, int, int | None, list[Any]]]:
    """Tasks of missing rows, one per (delay, stream, seed, family, rate), delay 0 first."""
    tasks = []
    for delay in grid.delays:
        for name, source in grid.streams.items():
            for seed in grid.seeds:
                for family in grid.families:
                    for rate in grid.rates:
                        todo = []
                        for strategy, budget in pairs(family, grid, delay):
                            r = 1.0 if budget == "full" else rate
                            if budget == "full" and rate != grid.rates[0]:
                                continue
                            row = {
                                "stream": name,
                                "source": source,
                                "limit": grid.limit,
                                "family": family,
                                "strategy": strategy,
                                "budget": budget,
                                "rate": r,
                                "delay": delay,
                                "seed": seed,
                            }
                            if cache_key(row, KEY) not in cache:
                                todo.append(row)
                        if todo:
                            tasks.append((name, source, seed, grid.limit, todo))
    return tasks


def run_grid(grid: Grid, cache: ResultCache, jobs: int) -> None:
    tasks = plan(grid, cache)
    total = sum(len(t[4]) for t in tasks)
    print(
        f"{total} runs to compute in {len(tasks)} tasks ({len(cache.rows)} cached)", file=sys.stderr
    )
    done = 0
    started = time.perf_counter()
    results: Iterable[list[dict[str, Any]]]
    if jobs <= 1:
        results = map(task, tasks)
    else:
        pool = multiprocessing.get_context("fork").Pool(jobs, maxtasksperchild=50)
        results = pool.imap(task, tasks)
    for rows in results:
        cache.add(rows)
        done += len(rows)
        minutes = (time.perf_counter() - started) / 60
        progress(
            done,
            total,
            f"{rows[0]['stream']} seed {rows[0]['seed']} "
            f"{rows[0]['family']} delay {rows[0]['delay']} ({minutes:.1f} min)",
        )
    if jobs > 1:
        pool.close()
        pool.join()
    print(file=sys.stderr)


def select(grid: Grid, cache: ResultCache) -> list[dict[str, Any]]:
    """The cached rows that belong to ``grid``."""
    wanted = set()
    for task_ in plan(grid, ResultCache(Path("/nonexistent"), KEY)):
        wanted |= {cache_key(row, KEY) for row in task_[4]}
    return [row for key, row in cache.rows.items() if key in wanted]


QUICK_PAIRS = (
    ("entropy", "variable_threshold"),
    ("margin", "variable_threshold"),
    ("entropy", "biqf"),
    ("margin", "split"),
    ("egl", "variable_threshold"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--full", action="store_true", help="the whole grid (default)")
    mode.add_argument(
        "--quick",
        action="store_true",
        help="seed 1, rates 0.05/0.2, delay 0, 3,000 samples, five pairs",
    )
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--n", type=int, help="samples of each synthetic stream")
    parser.add_argument("--limit", type=int, help="at most this many samples of every stream")
    parser.add_argument("--streams", help="comma-separated stream names (default: all)")
    parser.add_argument("--cache", type=Path, help="results cache (JSON lines)")
    parser.add_argument(
        "--out",
        type=Path,
        help="directory of the report: markdown, CSV, plots, summary.json "
        "(default: docs/img/benchmarks for --full, benchmarks/results/... for --quick)",
    )
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--families", help="comma-separated: linear, tree, forest (ARF)")
    parser.add_argument("--pairs", help="comma-separated STRATEGY/BUDGET pairs (default: all)")
    parser.add_argument("--rates", help="comma-separated label rates")
    parser.add_argument("--delays", help="comma-separated label delays, in samples")
    args = parser.parse_args(argv)
    if args.quick:
        grid = Grid(
            streams(args.n or 3000),
            rates=(0.05, 0.2),
            seeds=(1,),
            delays=(0,),
            limit=args.limit or 3000,
            pairs=QUICK_PAIRS,
        )
        tag = "quick"
    else:
        grid = Grid(streams(args.n or 20_000), limit=args.limit or 20_000)
        tag = "full"
    if args.streams:
        names = [s.strip() for s in args.streams.split(",")]
        grid = replace(grid, streams={k: v for k, v in grid.streams.items() if k in names})
    if args.families:
        grid = replace(grid, families=tuple(f.strip() for f in args.families.split(",")))
    if args.pairs:
        chosen = [tuple(p.strip().split("/", 1)) for p in args.pairs.split(",")]
        grid = replace(grid, pairs=tuple((a, b) for a, b in chosen))
    if args.rates:
        grid = replace(grid, rates=tuple(float(r) for r in args.rates.split(",")))
    if args.delays:
        grid = replace(grid, delays=tuple(int(d) for d in args.delays.split(",")))
    cache = ResultCache(
        args.cache or ROOT / "benchmarks" / "results" / f"label_efficiency_{tag}.jsonl", KEY
    )
    started = time.perf_counter()
    run_grid(grid, cache, args.jobs)
    rows = select(grid, cache)
    # The full grid's report goes next to the docs that quote it.
    default_out = (
        ROOT / "docs" / "img" / "benchmarks"
        if tag == "full"
        else (ROOT / "benchmarks" / "results" / f"label_efficiency_{tag}")
    )
    out = args.out or default_out
    summary = write_report(rows, out, plots=not args.no_plots)
    summary["machine"] = machine()
    summary["seconds"] = time.perf_counter() - started
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    best = summary["recommended"]
    print(
        f"recommended: {best['strategy']} / {best['budget']} "
        f"(mean gap closed {best['gap']:.3f} over {best['cells']} stream/rate/model/delay cells)"
    )
    print(f"report: {out}/label_efficiency.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
