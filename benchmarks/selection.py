"""Selection suite: the default against uniform random, full labels and scikit-activeml.

Prequential replay (test, then maybe query, then learn when the label comes) on a suite
split in two halves, so that a choice tuned on one half is checked on the other:

* ``tune``: Elec2 (``/work/shared/data/elec.csv`` or ``$STREAMAL_ELEC2``), river's
  Bananas, synthetic SEA (abrupt drift) and Hyperplane (gradual drift), scikit-learn's
  breast_cancer and digits;
* ``held-out``: river's Phishing and ImageSegments, synthetic Agrawal (abrupt drift) and
  RandomRBFDrift, scikit-learn's wine and iris.

Each stream is replayed in three fixed orders (the noise yardstick: deterministic models
on one order have no seed spread): synthetic streams with generator seeds 1, 2, 3;
Elec2 from offsets 0, 10,000 and 20,000; river's and scikit-learn's datasets in their own
order (river) or a fixed shuffle (scikit-learn, seed 0) and two more fixed shuffles.

Configurations: the candidates (``--pairs``), uniform random at the same rate, full
labels, and scikit-activeml's VariableUncertainty + BIQF, VariableUncertainty and
StreamProbabilisticAL (their budget managers, unguarded: see ``peers.py``), and
VariableUncertainty + BIQF held to the default's label count on the same replay (equal
labels: ``--peers matched`` runs only that one). ``--extra-dir DIR`` adds every CSV file
of DIR as a stream of a third group, "external", reported apart (``external.md``). Each
run records accuracy, macro-F1, Cohen's kappa and labels used. Results are cached one
JSON line per run (``--cache``); a rerun computes only what is missing.

Usage::

    python benchmarks/selection.py --part first2000 --models logreg,gnb,hoeffding,arf \
        --delays 0 --peers matched --extra-dir DIR
    python benchmarks/selection.py --part full --peers matched --extra-dir DIR
    python benchmarks/selection.py --extra-dir DIR   # reports from the cache
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import multiprocessing
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hindsight  # noqa: E402
from common import ELEC, ROOT, ResultCache, cache_key, materialize, progress  # noqa: E402
from peers import MANAGERS as PEER_MANAGERS  # noqa: E402
from peers import MATCHED, PEERS, build_peer_learner, matched_enough, next_scale  # noqa: E402

from streamal.defaults import DEFAULT_BUDGET, DEFAULT_STRATEGY  # noqa: E402
from streamal.messages import Sample  # noqa: E402
from streamal.offline.oracle import SimulatedOracle  # noqa: E402
from streamal.offline.replay import build_learner, iter_replay  # noqa: E402

HALVES = {
    "tune": ("Elec2", "Bananas", "SEA", "Hyperplane", "breast_cancer", "digits"),
    "held-out": ("Phishing", "ImageSegments", "Agrawal", "RandomRBFDrift", "wine", "iris"),
}
ORDERS = (0, 1, 2)
#: ``--extra-dir``: CSV streams outside the repository, the group "external" (name →
#: file). Never tuned on: they are reported apart, in their own files.
EXTERNAL: dict[str, Path] = {}
#: Results known before a run (the cache), for the equal-labels peer's label count.
KNOWN: dict[str, dict[str, Any]] = {}
#: Streams too short for a label delay of 500 arrivals to mean anything (fewer than
#: 2,000 arrivals); external files are measured when added (:func:`short`).
SHORT = ("Phishing", "breast_cancer", "digits", "wine", "iris")
#: Rates below this one are reported in groups of their own (``... / rate 0.01``).
LOW_RATE = 0.05
#: Arrivals a stream needs for a delayed-label replay.
LONG_ENOUGH = 2000


def short(name: str) -> bool:
    """Whether a stream has too few arrivals to replay with delayed labels."""
    if name in EXTERNAL:
        path = EXTERNAL[name]
        with gzip.open(path) if path.suffix == ".gz" else path.open("rb") as f:  # after the header
            return sum(1 for _ in itertools.islice(f, LONG_ENOUGH + 1)) - 1 < LONG_ENOUGH
    return name in SHORT


KEY = ("stream", "order", "limit", "model", "strategy", "budget", "rate", "delay")
#: Candidates compared by default: the new default, the old one, and BIQF under guards.
CANDIDATES = (
    (DEFAULT_STRATEGY, DEFAULT_BUDGET),
    ("entropy", "variable_threshold"),
    ("least_confidence", "biqf"),
    ("margin", "reserve_quantile"),
    ("margin", "reserve_quantile:explore=0"),
)
#: Ablations run on the first 2,000 arrivals only: no initial allowance, no exploration.
ABLATIONS = (("margin", "reserve_quantile"), ("margin", "reserve_quantile:explore=0"))
BASELINES = (("random", "random"), ("random", "full"))


def _sklearn(name: str, order: int) -> list[Sample]:
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    rows = list(zip(bunch.data.tolist(), bunch.target.tolist(), strict=True))
    random.Random(order).shuffle(rows)
    return [
        Sample(id=str(i), x={f"x{j}": float(v) for j, v in enumerate(x)}, y=int(y))
        for i, (x, y) in enumerate(rows)
    ]


def load(name: str, order: int, limit: int | None) -> list[Sample]:
    """One fixed order of a stream of the suite, at most ``limit`` arrivals."""
    n = limit or 10_000
    if name in EXTERNAL:  # the file's order, then two fixed shuffles (as river's)
        data = materialize(str(EXTERNAL[name]), 1, None)
        if order:
            random.Random(order).shuffle(data)
        return data[:limit]
    if name in ("SEA", "Agrawal", "Hyperplane", "RandomRBFDrift"):
        return materialize(f"synth:{name}:n={max(n, 2000)}", order + 1, n)
    if name in ("breast_cancer", "digits", "wine", "iris"):
        return _sklearn(name, order)[:limit]
    if name == "Elec2":
        data = materialize(str(ELEC), 1, order * 10_000 + n)
        return data[order * 10_000 :]
    data = materialize(f"river:{name}", 1, None)
    if order:
        random.Random(order).shuffle(data)
    return data[:limit]


def _model(family: str, classes: int) -> str:
    return "softmax" if family == "logreg" and classes > 2 else family


def _metrics(pairs: list[tuple[Any, Any]]) -> tuple[float, float]:
    """Macro-F1 over the true classes and Cohen's kappa of (truth, prediction) pairs."""
    n = len(pairs)
    labels = {y for y, _ in pairs}
    true, pred = Counter(y for y, _ in pairs), Counter(p for _, p in pairs)
    hit = Counter(y for y, p in pairs if y == p)
    f1 = []
    for c in labels:
        denom = true[c] + pred[c]
        f1.append(2 * hit[c] / denom if denom else 0.0)
    observed = sum(hit.values()) / n
    expected = sum(true[c] * pred[c] for c in true) / (n * n)
    kappa = (observed - expected) / (1 - expected) if expected < 1 else 0.0
    return statistics.fmean(f1), kappa


class _Recorder:
    """Wraps a learner; keeps (truth, prediction) of every arrival."""

    def __init__(self, learner: Any) -> None:
        self.learner = learner
        self.pairs: list[tuple[Any, Any]] = []

    def process(self, sample: Sample) -> Any:
        d = self.learner.process(sample)
        self.pairs.append((sample.y, d.prediction))
        return d

    def learn(self, label: Any) -> bool:
        return bool(self.learner.learn(label))

    def take_queried(self) -> list[Any]:
        return list(self.learner.take_queried())

    def finish(self) -> list[Any]:
        return list(self.learner.finish())


def _replay(data: list[Sample], row: dict[str, Any], scale: float = 1.0) -> dict[str, Any]:
    classes = len({s.y for s in data})
    model = _model(row["model"], classes)
    rate, seed = row["rate"], 1
    peeks = row["strategy"] == hindsight.NAME  # reads the label: a ceiling, not a method
    strategy = DEFAULT_STRATEGY if peeks else row["strategy"]
    if row["budget"] == "sk_biqf_eq":
        learner = build_peer_learner(
            model, strategy, row["budget"], rate, seed, row["cap"], len(data), scale
        )
    elif row["budget"] in PEER_MANAGERS:
        learner = build_peer_learner(model, strategy, row["budget"], rate, seed)
    else:
        learner = build_learner(model, strategy, row["budget"], rate, seed)
    if peeks:
        learner = hindsight.peek(learner)
    rec = _Recorder(learner)
    started = time.perf_counter()
    oracle = SimulatedOracle(str(row["delay"]), seed=seed)
    final = list(iter_replay(data, rec, oracle, len(data)))[-1]
    f1, kappa = _metrics(rec.pairs)
    return row | {
        "samples": final.samples,
        "labels": final.labels_used,
        "accuracy": final.accuracy,
        "macro_f1": f1,
        "kappa": kappa,
        "seconds": time.perf_counter() - started,
    }


def run_one(data: list[Sample], row: dict[str, Any]) -> dict[str, Any]:
    """Replay one configuration; the row's results. The equal-labels peer is replayed
    with a larger BIQF budget (at most 6 tries) until it spends the default's labels."""
    out = _replay(data, row)
    if row["budget"] == "sk_biqf_eq":
        scale, tries = 1.0, 1
        while not matched_enough(out["labels"], row["cap"]) and tries < 6 and scale < 50:
            scale = next_scale(scale, out["labels"], row["cap"])
            tries += 1
            out = _replay(data, row, scale)
        out |= {"budget_scale": scale, "tries": tries}
    return out


def task(args: tuple[str, int, int | None, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    name, order, limit, todo = args
    data = load(name, order, limit)
    out = []
    for row in todo:
        if row["budget"] == "sk_biqf_eq":  # the default's labels on this replay
            mine = dict(row, strategy=DEFAULT_STRATEGY, budget=DEFAULT_BUDGET)
            ran = KNOWN.get(cache_key(mine, KEY)) or next(
                r for r in out if cache_key(r, KEY) == cache_key(mine, KEY)
            )
            row = row | {"cap": ran["labels"], "matched_to": f"{DEFAULT_STRATEGY}/{DEFAULT_BUDGET}"}
        out.append(run_one(data, row))
    return out


def plan(
    streams: list[str],
    models: list[str],
    rates: list[float],
    delays: list[int],
    limit: int | None,
    pairs: list[tuple[str, str]],
    cache: ResultCache,
) -> list[tuple[str, int, int | None, list[dict[str, Any]]]]:
    tasks = []
    for name, order in itertools.product(streams, ORDERS):
        todo = []
        for model, delay, (strategy, budget) in itertools.product(
            models, delays, list(BASELINES) + pairs
        ):
            if delay and short(name):
                continue
            for rate in [1.0] if budget == "full" else rates:
                row = {
                    "stream": name,
                    "order": order,
                    "limit": limit,
                    "model": model,
                    "strategy": strategy,
                    "budget": budget,
                    "rate": rate,
                    "delay": 0 if budget == "full" else delay,
                }
                if cache_key(row, KEY) not in cache and row not in todo:
                    todo.append(row)
        if todo:
            tasks.append((name, order, limit, todo))
    return tasks


# -- report ----------------------------------------------------------------------------
def _name(strategy: str, budget: str) -> str:
    for peer, spec in (PEERS | MATCHED).items():
        if spec == (strategy, budget):
            return peer
    return f"{strategy}/{budget}"


def report(rows: list[dict[str, Any]], default: str) -> dict[str, Any]:
    """Summaries per (limit, model, delay) group: mean gap closed, wins over random,
    accuracy/F1/kappa and labels per configuration, the default against the VU+BIQF
    peer, and the spread over orders."""
    by_cell: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = defaultdict(dict)
    fulls: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        if r["budget"] == "full":
            fulls[(r["limit"], r["model"], r["stream"], r["order"])] = r
            continue
        cell = (r["limit"], r["model"], r["delay"], r["stream"], r["rate"], r["order"])
        by_cell[cell][_name(r["strategy"], r["budget"])] = r
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for cell, runs in by_cell.items():
        limit, model, delay, stream, rate, order = cell
        full = fulls.get((limit, model, stream, order))
        rnd = runs.get("random/random")
        if full is None or rnd is None:
            continue
        # Rates below 0.05 (0.01) are reported apart: the targets are for 0.05-0.2.
        low = "rate 0.01" if rate < LOW_RATE else ""
        g = groups.setdefault((limit, model, delay, low), {"cells": defaultdict(dict)})
        for name, r in runs.items():
            g["cells"][(stream, rate)].setdefault(name, []).append((r, rnd, full))
    out: dict[str, Any] = {}
    for (limit, model, delay, low), g in sorted(groups.items(), key=str):
        tag = f"{'full' if limit is None else f'first {limit}'} / {model} / delay {delay}"
        tag += f" / {low}" if low else ""
        configs: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        per_stream: dict[str, dict[str, Any]] = {}
        cell_acc: dict[str, dict[tuple[str, float], float]] = defaultdict(dict)
        for (stream, rate), names in g["cells"].items():
            for name, triples in names.items():
                acc = statistics.fmean(r["accuracy"] for r, _, _ in triples)
                racc = statistics.fmean(x["accuracy"] for _, x, _ in triples)
                facc = statistics.fmean(f["accuracy"] for _, _, f in triples)
                gap = (acc - racc) / (facc - racc) if facc - racc > 0.005 else float("nan")
                diffs = [r["accuracy"] - x["accuracy"] for r, x, _ in triples]
                c = configs[name]
                cell_acc[name][(stream, rate)] = acc
                c["accuracy"].append(acc)
                c["macro_f1"].append(statistics.fmean(r["macro_f1"] for r, _, _ in triples))
                c["kappa"].append(statistics.fmean(r["kappa"] for r, _, _ in triples))
                c["labels_share"].append(
                    statistics.fmean(r["labels"] / (r["rate"] * r["samples"]) for r, *_ in triples)
                )
                c["vs_random"].append(acc - racc)
                c["win"].append(float(acc > racc))
                c["order_sd"].append(statistics.pstdev(diffs))
                if gap == gap:  # nan (full and random level) is left out; the key stays
                    c["gap"].append(gap)
                else:
                    c.setdefault("gap", [])
                mine = names.get(default)
                if mine is not None and len(mine) == len(triples):
                    ratios = [
                        r["labels"] / max(1, m["labels"])
                        for (r, _, _), (m, _, _) in zip(triples, mine, strict=True)
                    ]
                    c["labels_vs_default"].append(statistics.fmean(ratios))
                    c["worst_labels_vs_default"].append(max(abs(x - 1) for x in ratios))
                    c["runs_at_equal_labels"].extend(
                        float(abs(r["labels"] - m["labels"]) <= max(1.0, 0.01 * m["labels"]))
                        for (r, _, _), (m, _, _) in zip(triples, mine, strict=True)
                    )
                if name == default:
                    per_stream[f"{stream} @ {rate}"] = {
                        "half": next((h for h, s in HALVES.items() if stream in s), "external"),
                        "accuracy": acc,
                        "random": racc,
                        "full": facc,
                        "gap": gap,
                        "order_sd": statistics.pstdev(diffs),
                        "labels": statistics.fmean(r["labels"] for r, _, _ in triples),
                    }
        summary = {
            name: {
                k: (max(v) if k.startswith("worst") else statistics.fmean(v)) if v else float("nan")
                for k, v in c.items()
            }
            | {"rows": len(c["accuracy"])}
            for name, c in configs.items()
        }
        versus = {}
        for peer in (*MATCHED, "skactiveml VU+BIQF"):  # equal labels first
            if default in configs and peer in configs:
                # Paired by stream x rate: a cell the peer lacks is left out.
                ours, theirs = cell_acc[default], cell_acc[peer]
                d = [a - theirs[k] for k, a in ours.items() if k in theirs]
                versus = {
                    "peer": peer,
                    "default_minus_vu_biqf": statistics.fmean(d),
                    "ahead_rows": sum(x > 0 for x in d),
                    "rows": len(d),
                    "labels_share_default": summary[default]["labels_share"],
                    "labels_share_peer": summary[peer]["labels_share"],
                    "worst_labels_vs_default": summary[peer].get(
                        "worst_labels_vs_default", float("nan")
                    ),
                    "runs_at_equal_labels": summary[peer].get("runs_at_equal_labels", float("nan")),
                }
                break
        halves = {}
        for half in (*HALVES, "external"):
            gaps = [v["gap"] for v in per_stream.values() if v["half"] == half]
            gaps = [g for g in gaps if g == g]  # nan: full and random level
            halves[half] = statistics.fmean(gaps) if gaps else float("nan")
        out[tag] = {
            "configs": summary,
            "default_per_stream": per_stream,
            "default_vs_peer": versus,
            "default_gap_by_half": halves,
        }
    return out


def _headline(summary: dict[str, Any], default: str) -> list[str]:
    """One row per group: the default's gap closed, wins over random, against VU+BIQF."""
    lines = [
        "| replay | default's mean gap closed | default ahead of random | "
        "default − VU+BIQF (points) | ahead rows | labels / budget: default, VU+BIQF "
        "| peer's runs at the default's labels ±1 % or ±1 label |",
        "|---|---|---|---|---|---|---|",
    ]
    for tag, s in summary.items():
        c = s["configs"].get(default)
        v = s["default_vs_peer"]
        if c is None:
            continue
        peer = (
            f"{100 * v['default_minus_vu_biqf']:+.2f} | {v['ahead_rows']}/{v['rows']} | "
            f"{v['labels_share_default']:.3f}, {v['labels_share_peer']:.3f} | "
            f"{v['runs_at_equal_labels']:.0%} ({v['peer']})"
            if v
            else "— | — | — | —"
        )
        lines.append(f"| {tag} | {c['gap']:.2f} | {c['win']:.0%} of {c['rows']} | {peer} |")
    return lines + [""]


def _markdown(summary: dict[str, Any], default: str) -> str:
    lines = _headline(summary, default)
    for tag, s in summary.items():
        lines += [f"### {tag}", ""]
        lines += [
            "| configuration | rows | mean gap closed | vs random (points) | wins over random "
            "| accuracy | macro-F1 | kappa | labels / budget | order SD of Δ (points) |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, c in sorted(s["configs"].items(), key=lambda kv: -kv[1]["accuracy"]):
            mark = " **(default)**" if name == default else ""
            lines.append(
                f"| {name}{mark} | {c['rows']} | {c['gap']:.2f} | {100 * c['vs_random']:+.2f} "
                f"| {c['win']:.0%} | {c['accuracy']:.4f} | {c['macro_f1']:.4f} | {c['kappa']:.4f} "
                f"| {c['labels_share']:.3f} | {100 * c['order_sd']:.2f} |"
            )
        v = s["default_vs_peer"]
        if v:
            lines += [
                "",
                f"Default − {v['peer']}: "
                f"{100 * v['default_minus_vu_biqf']:+.2f} points, "
                f"ahead on {v['ahead_rows']}/{v['rows']} stream × rate rows; labels / budget "
                f"{v['labels_share_default']:.3f} against {v['labels_share_peer']:.3f} "
                f"({v['runs_at_equal_labels']:.0%} of the peer's runs within 1 % or 1 label of "
                f"the default's; worst {100 * v['worst_labels_vs_default']:.1f}% off). "
                "Default's mean gap closed: "
                + ", ".join(f"{h} {g:.2f}" for h, g in s["default_gap_by_half"].items() if g == g)
                + ".",
            ]
        lines += ["", "| stream @ rate | half | default | random | full | gap closed | order SD |"]
        lines += ["|---|---|---|---|---|---|---|"]
        for k, r in sorted(s["default_per_stream"].items()):
            lines.append(
                f"| {k} | {r['half']} | {r['accuracy']:.4f} | {r['random']:.4f} | {r['full']:.4f} "
                f"| {r['gap']:.2f} | {100 * r['order_sd']:.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


PARTS: dict[str, dict[str, Any]] = {
    # Cheap: every stream's first 2,000 arrivals; broad model and delay sweep.
    "first2000": {
        "limit": 2000,
        "models": ["logreg", "gnb"],
        "rates": [0.05, 0.1, 0.2],
        "delays": [0, 500],
    },
    # Up to 10,000 arrivals of each stream (river's and scikit-learn's are shorter).
    "full": {
        "limit": None,
        "models": ["logreg", "gnb"],
        "rates": [0.05, 0.1, 0.2],
        "delays": [0],
    },
    # Trees: Hoeffding (first 2,000 arrivals, delay 0) and ARF (~0.4 ms per arrival:
    # first 2,000 arrivals, delay 0).
    "hoeffding": {"limit": 2000, "models": ["hoeffding"], "rates": [0.05, 0.1, 0.2], "delays": [0]},
    "arf": {"limit": 2000, "models": ["arf"], "rates": [0.05, 0.1, 0.2], "delays": [0]},
    # Hoeffding tree on full streams, rate 0.1 only.
    "hoeffding_full": {"limit": None, "models": ["hoeffding"], "rates": [0.1], "delays": [0]},
    # ARF on full streams, rate 0.1 only (run with --pairs DEFAULT,entropy/variable_threshold).
    "arf_full": {"limit": None, "models": ["arf"], "rates": [0.1], "delays": [0]},
}


def drop_stale_peers(path: Path) -> int:
    """Rewrite the cache without the equal-labels peer runs that no longer match the
    default's label count on their replay (within 1 % or 1 label); how many went."""
    if not path.is_file():
        return 0
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    replay = ("stream", "order", "limit", "model", "rate", "delay")
    mine = {
        cache_key(r, replay): r["labels"]
        for r in rows
        if (r["strategy"], r["budget"]) == (DEFAULT_STRATEGY, DEFAULT_BUDGET)
    }

    def stale(r: dict[str, Any]) -> bool:
        cap = mine.get(cache_key(r, replay))
        return (
            r["budget"] == "sk_biqf_eq"
            and cap is not None
            # over the count or short of it, by more than matched_enough's tolerance
            and not matched_enough(min(r["labels"], cap), max(r["labels"], cap))
        )

    kept = [r for r in rows if not stale(r)]
    path.write_text("".join(json.dumps(r) + "\n" for r in kept))
    return len(rows) - len(kept)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", action="append", choices=sorted(PARTS), default=[])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--streams", help="comma-separated stream names (default: the suite)")
    parser.add_argument(
        "--pairs", help="STRATEGY/BUDGET candidates, separated by ',' (or ';' if a spec has ',')"
    )
    parser.add_argument("--no-peers", action="store_true", help="skip scikit-activeml")
    parser.add_argument(
        "--peers",
        choices=("all", "matched"),
        default="all",
        help="all: VU+BIQF, VU, PAL+BIQF as they spend, and VU+BIQF at the default's labels; "
        "matched: only VU+BIQF at the default's labels",
    )
    parser.add_argument("--models", help="comma-separated model families (override the part's)")
    parser.add_argument("--rates", help="comma-separated rates (override the part's)")
    parser.add_argument("--delays", help="comma-separated delays (override the part's)")
    parser.add_argument(
        "--extra-dir",
        type=Path,
        help="add every CSV file of DIR (header row, target the last column) as a stream of "
        "a third group, 'external', reported apart (external.md); never tune on them",
    )
    parser.add_argument(
        "--cache", type=Path, default=ROOT / "benchmarks" / "results" / "selection.jsonl"
    )
    parser.add_argument("--report", action="store_true", help="write the report from the cache")
    parser.add_argument(
        "--drop-stale-peers",
        action="store_true",
        help="first drop the equal-labels peer runs no longer within 1 %% or 1 label of the "
        "current default's labels on the same replay (after a change of the default)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "selection")
    args = parser.parse_args(argv)
    if args.drop_stale_peers:
        print(f"dropped {drop_stale_peers(args.cache)} stale equal-labels peer runs")
    cache = ResultCache(args.cache, KEY)
    streams = [s.strip() for s in args.streams.split(",")] if args.streams else []
    if args.extra_dir:
        for f in sorted(args.extra_dir.glob("*.csv")) + sorted(args.extra_dir.glob("*.csv.gz")):
            EXTERNAL[f"ext:{f.name.split('.')[0]}"] = f
    streams = streams or [s for half in HALVES.values() for s in half] + list(EXTERNAL)
    if not ELEC.is_file() and "Elec2" in streams:
        print(f"{ELEC} not found: Elec2 skipped (set STREAMAL_ELEC2)", file=sys.stderr)
        streams.remove("Elec2")
    pairs = list(CANDIDATES)
    if args.pairs:
        sep = ";" if ";" in args.pairs else ","  # ";" when specs carry k=v,k=v
        specs = [p for p in args.pairs.split(sep) if p.strip()]  # "a,b=1;" is one spec
        pairs = [tuple(p.split("/", 1)) for p in specs]  # type: ignore[misc]
    if not args.no_peers:
        default_pair = (DEFAULT_STRATEGY, DEFAULT_BUDGET)
        if default_pair not in pairs:  # the equal-labels peer needs the default's labels
            pairs.insert(0, default_pair)
        pairs += (list(PEERS.values()) if args.peers == "all" else []) + list(MATCHED.values())
    KNOWN.update(cache.rows)
    for part in args.part:
        p = dict(PARTS[part])
        for opt, cast in (("models", str), ("rates", float), ("delays", int)):
            if getattr(args, opt):
                p[opt] = [cast(v) for v in getattr(args, opt).split(",")]
        tasks = plan(streams, p["models"], p["rates"], p["delays"], p["limit"], pairs, cache)
        if part != "first2000":  # PAL costs 3-5x, and the ablations: first sweep only
            for t in tasks:
                t[3][:] = [
                    r
                    for r in t[3]
                    if r["strategy"] != "pal" and (r["strategy"], r["budget"]) not in ABLATIONS
                ]
        total = sum(len(t[3]) for t in tasks)
        print(f"{part}: {total} runs in {len(tasks)} tasks", file=sys.stderr)
        done, started = 0, time.perf_counter()
        with multiprocessing.get_context("fork").Pool(max(1, args.jobs)) as pool:
            for rows in pool.imap_unordered(task, tasks):
                cache.add(rows)
                done += len(rows)
                minutes = (time.perf_counter() - started) / 60
                progress(done, total, f"{rows[0]['stream']} ({minutes:.1f} min)")
        print(file=sys.stderr)
    default = f"{DEFAULT_STRATEGY}/{DEFAULT_BUDGET}"
    args.out.mkdir(parents=True, exist_ok=True)
    for group, names, stem in (
        ("suite", [s for s in streams if s not in EXTERNAL], "selection"),
        ("external", [s for s in streams if s in EXTERNAL], "external"),
    ):
        rows = [
            r
            for r in cache.rows.values()
            if r["stream"] in names
            and not (r["delay"] and short(r["stream"]))
            and r["strategy"] != hindsight.NAME  # reported by hindsight.py
        ]
        if not rows:
            continue
        summary = report(rows, default)
        json_name = "summary.json" if group == "suite" else "external.json"
        (args.out / json_name).write_text(json.dumps(summary, indent=1, default=str))
        (args.out / f"{stem}.md").write_text(_markdown(summary, default))
        print(f"report ({group}): {args.out}/{stem}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
