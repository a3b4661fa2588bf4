"""Does a warm start pay? Seed labels before the stream against a cold start.

For each stream, model and number of seed labels ``N`` (50/100/200), the first ``N``
rows of the stream are the labelled seed and the replay runs over the rows after them,
three ways, with the default strategy and manager at rate 0.1:

``cold``     no warm start (the seed rows are skipped, nothing is learned from them);
``warm``     the ``N`` seed labels learned first, not charged (``N`` labels more in all);
``charged``  the ``N`` seed labels learned first and charged to the budget (the same
             number of labels as ``cold``: the seed replaces the first stream queries).

Accuracy is prequential over the first 2,000 arrivals after the seed (where a cold
start shows) and over the whole stream. Elec2 is read from ``STREAMAL_ELEC2`` or
``/work/shared/data/elec.csv`` and skipped if absent.

Usage::

    python benchmarks/warm_start.py [--json out.json] [--rate 0.1] [--seeds 1 2 3]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
from pathlib import Path
from typing import Any

from streamal.defaults import DEFAULT_BUDGET, DEFAULT_STRATEGY
from streamal.offline.oracle import SimulatedOracle
from streamal.offline.replay import build_learner, replay
from streamal.offline.streams import open_source

ELEC = Path(os.environ.get("STREAMAL_ELEC2", "/work/shared/data/elec.csv"))
STREAMS = ["synth:Agrawal:n=20000", "synth:SEA:n=20000", "river:Phishing", "river:Bananas"]
MODELS = ["logreg", "gnb", "hoeffding"]
SEEDS_N = (50, 100, 200)
VARIANTS = ("cold", "warm", "charged")


def one(
    source: str, model: str, n: int, variant: str, rate: float, seed: int, limit: int | None
) -> dict[str, Any]:
    """One replay: accuracy over the arrivals after the ``n`` seed rows, and labels used."""
    rows = list(itertools.islice(open_source(source, seed=seed), n + (limit or 10**9)))
    learner = build_learner(model, DEFAULT_STRATEGY, DEFAULT_BUDGET, rate, seed)
    if variant != "cold":
        learner.warm_start(rows[:n], charge=variant == "charged")
    final, _ = replay(rows[n:], learner, SimulatedOracle(0, seed=seed), step=10**9)
    labels = final.labels_used + (n if variant != "cold" else 0)
    return {"accuracy": final.accuracy, "labels": labels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json")
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    streams = list(STREAMS)
    if ELEC.is_file():
        streams.insert(0, str(ELEC))
    rows = []
    for source in streams:
        for model in MODELS:
            for n in SEEDS_N:
                for limit in (2000, None):
                    entry: dict[str, Any] = {
                        "source": source,
                        "model": model,
                        "n": n,
                        "arrivals": limit or "all",
                    }
                    for variant in VARIANTS:
                        outs = [
                            one(source, model, n, variant, args.rate, s, limit) for s in args.seeds
                        ]
                        entry[variant] = statistics.mean(o["accuracy"] for o in outs)
                        entry[f"{variant}_labels"] = statistics.mean(o["labels"] for o in outs)
                    rows.append(entry)
                    print(json.dumps(entry), flush=True)
    _summary(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


def _summary(rows: list[dict[str, Any]]) -> None:
    """Mean gain of ``warm`` and ``charged`` over ``cold``, per seed size and horizon."""
    for limit in (2000, "all"):
        for n in SEEDS_N:
            sel = [r for r in rows if r["n"] == n and r["arrivals"] == limit]
            if not sel:
                continue
            warm = [r["warm"] - r["cold"] for r in sel]
            charged = [r["charged"] - r["cold"] for r in sel]
            print(
                f"arrivals {limit}, N={n}: warm {100 * statistics.mean(warm):+.2f} points "
                f"(ahead on {sum(d > 0 for d in warm)}/{len(sel)}), charged "
                f"{100 * statistics.mean(charged):+.2f} points "
                f"(ahead on {sum(d > 0 for d in charged)}/{len(sel)})"
            )


if __name__ == "__main__":
    main()
