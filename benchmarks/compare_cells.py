"""Difference of candidates against a reference, per stream × rate cell, from the cache.

Mean ± standard error over the stream × rate cells of the order-mean accuracy difference
(points), the candidate's mean gap closed and mean accuracy, and its wins over random.
This is the figure the issue-15 section of ``docs/benchmarks.md`` reports for every
screened change.

Usage::

    python benchmarks/compare_cells.py --model arf --limit 2000 --delay 0 \
        --streams Elec2,Bananas --ref margin/reserve_quantile:initial=200 \
        --cand vote_entropy/reserve_quantile:initial=200
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _cells(
    rows: list[dict[str, Any]], model: str, limit: int | None, delay: int, streams: list[str]
) -> dict[tuple[str, str, float], dict[int, float]]:
    out: dict[tuple[str, str, float], dict[int, float]] = defaultdict(dict)
    for r in rows:
        if r["model"] != model or r["limit"] != limit or r["stream"] not in streams:
            continue
        if r["budget"] != "full" and r["delay"] != delay:
            continue
        name = f"{r['strategy']}/{r['budget']}"
        out[(name, r["stream"], r["rate"])][r["order"]] = r["accuracy"]
    return out


def compare(
    rows: list[dict[str, Any]],
    model: str,
    limit: int | None,
    delay: int,
    streams: list[str],
    ref: str,
    cands: list[str],
    rates: list[float],
    ref_model: str | None = None,
) -> list[dict[str, Any]]:
    """One summary per candidate (the reference first)."""
    mine = _cells(rows, model, limit, delay, streams)
    base = _cells(rows, ref_model or model, limit, delay, streams)
    out = []
    for i, cand in enumerate([ref, *cands]):
        src = mine if i else base  # the candidate's own random and full
        d, gaps, accs, wins, n = [], [], [], [], 0
        for s in streams:
            for rate in rates:
                c = src.get((cand, s, rate))
                b = base.get((ref, s, rate))
                rnd = src.get(("random/random", s, rate))
                fl = src.get(("random/full", s, 1.0))
                if not c or not b or set(c) != set(b):
                    continue
                n += 1
                acc = statistics.fmean(c.values())
                accs.append(acc)
                d.append(acc - statistics.fmean(b.values()))
                if rnd and fl:
                    racc, facc = statistics.fmean(rnd.values()), statistics.fmean(fl.values())
                    wins.append(acc > racc)
                    if facc - racc > 0.005:
                        gaps.append((acc - racc) / (facc - racc))
        if not d:
            out.append({"cand": cand if i else f"{cand} (reference)", "cells": 0})
            continue
        se = statistics.stdev(d) / math.sqrt(len(d)) if len(d) > 1 else float("nan")
        out.append(
            {
                "cand": cand if i else f"{cand} (reference)",
                "cells": n,
                "diff": 100 * statistics.fmean(d),
                "se": 100 * se,
                "acc": statistics.fmean(accs),
                "gap": statistics.fmean(gaps) if gaps else float("nan"),
                "wins": f"{sum(wins)}/{len(wins)}",
                "ahead": f"{sum(x > 0 for x in d)}/{len(d)}",
            }
        )
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", type=Path, default=ROOT / "benchmarks/results/selection.jsonl")
    p.add_argument("--model", required=True)
    p.add_argument("--ref-model", help="model of the reference (default: --model)")
    p.add_argument("--limit", type=int, default=2000, help="0: full streams")
    p.add_argument("--delay", type=int, default=0)
    p.add_argument("--streams", required=True)
    p.add_argument("--rates", default="0.05,0.1,0.2")
    p.add_argument("--ref", default="margin/reserve_quantile:initial=200")
    p.add_argument("--cand", default="", help="candidates, ';'-separated")
    a = p.parse_args()
    rows = [json.loads(line) for line in a.cache.read_text().splitlines() if line.strip()]
    res = compare(
        rows,
        a.model,
        a.limit or None,
        a.delay,
        a.streams.split(","),
        a.ref,
        [c for c in a.cand.split(";") if c],
        [float(r) for r in a.rates.split(",")],
        a.ref_model,
    )
    print(
        "| candidate | cells | Δ vs ref (points) | ahead of ref | accuracy | gap closed "
        "| ahead of random |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in res:
        if not r["cells"]:
            print(f"| {r['cand']} | 0 | | | | | |")
            continue
        print(
            f"| {r['cand']} | {r['cells']} | {r['diff']:+.2f} ± {r['se']:.2f} | {r['ahead']} "
            f"| {r['acc']:.4f} "
            f"| {r['gap']:.2f} | {r['wins']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
