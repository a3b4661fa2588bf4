"""Tables, gap closed, ranking and plots of the label-efficiency results."""

from __future__ import annotations

import csv
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from common import mean_sd

from streamal.defaults import DEFAULT_BUDGET, DEFAULT_STRATEGY

#: A random→full gap smaller than this (accuracy points / 100) is noise: such cells get no
#: gap closed and are left out of the averages.
MIN_GAP = 0.005
CURRENT = (DEFAULT_STRATEGY, DEFAULT_BUDGET.split(":")[0])
BASELINE_NAMES = {
    ("random", "random"): "random",
    ("random", "periodic"): "periodic",
    ("random", "full"): "full",
}

Cell = tuple[str, str, int, float]  # stream, family, delay, rate


def aggregate(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """(stream, family, delay, rate, strategy, budget) → means over seeds."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[
            (r["stream"], r["family"], r["delay"], r["rate"], r["strategy"], r["budget"])
        ].append(r)
    out = {}
    for key, rs in groups.items():
        acc, sd = mean_sd([r["accuracy"] for r in rs])
        out[key] = {
            "accuracy": acc,
            "sd": sd,
            "labels": statistics.fmean(r["labels"] for r in rs),
            "us": statistics.fmean(r["us"] for r in rs),
            "seeds": len(rs),
            "samples": rs[0]["samples"],
            "model": rs[0]["model"],
        }
    return out


def gaps(agg: dict[tuple[Any, ...], dict[str, Any]]) -> dict[tuple[Any, ...], float | None]:
    """Share of the random→full gap closed, per aggregated key (``None``: gap too small)."""
    out: dict[tuple[Any, ...], float | None] = {}
    for key, v in agg.items():
        stream, family, delay, rate, strategy, budget = key
        if budget == "full":
            continue
        low = agg.get((stream, family, delay, rate, "random", "random"))
        high = agg.get((stream, family, delay, 1.0, "random", "full"))
        if low is None or high is None or high["accuracy"] - low["accuracy"] < MIN_GAP:
            out[key] = None
        else:
            out[key] = (v["accuracy"] - low["accuracy"]) / (high["accuracy"] - low["accuracy"])
    return out


def ranking(gap: dict[tuple[Any, ...], float | None]) -> list[dict[str, Any]]:
    """Pairs run with both families, by mean gap closed over every defined cell."""
    by_pair: dict[tuple[str, str], dict[Cell, float]] = defaultdict(dict)
    for (stream, family, delay, rate, strategy, budget), g in gap.items():
        if g is not None:
            by_pair[(strategy, budget)][(stream, family, delay, rate)] = g
    families_of = {p: {c[1] for c in cells} for p, cells in by_pair.items()}
    all_families = set().union(*families_of.values()) if families_of else set()
    out = []
    for (strategy, budget), cells in by_pair.items():
        values = list(cells.values())
        row: dict[str, Any] = {
            "strategy": strategy,
            "budget": budget,
            "gap": statistics.fmean(values),
            "median": statistics.median(values),
            "cells": len(values),
            "both_families": families_of[(strategy, budget)] == all_families,
            "baseline": (strategy, budget) in BASELINE_NAMES,
        }
        for name, index in (("family", 1), ("delay", 2), ("rate", 3)):
            for value in sorted({c[index] for c in cells}):
                sel = [g for c, g in cells.items() if c[index] == value]
                row[f"{name}={value}"] = statistics.fmean(sel)
        streams = defaultdict(list)
        for c, g in cells.items():
            streams[c[0]].append(g)
        row["per_stream"] = {s: statistics.fmean(v) for s, v in streams.items()}
        out.append(row)
    out.sort(key=lambda r: -r["gap"])
    return out


def _name(strategy: str, budget: str) -> str:
    return BASELINE_NAMES.get((strategy, budget), f"{strategy} / {budget}")


def _fmt(v: float | None, digits: int = 2) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def ranking_table(rank: list[dict[str, Any]], limit: int | None = None) -> str:
    cols = [k for k in rank[0] if "=" in k] if rank else []
    head = "| pair | mean gap closed | median | " + " | ".join(cols) + " | cells |"
    lines = [head, "|" + "---|" * (len(cols) + 4)]
    for r in rank[:limit]:
        cells = " | ".join(_fmt(r.get(c)) for c in cols)
        lines.append(
            f"| {_name(r['strategy'], r['budget'])} | **{r['gap']:.3f}** | {r['median']:.2f} "
            f"| {cells} | {r['cells']} |"
        )
    return "\n".join(lines)


def per_stream_table(rank: list[dict[str, Any]], pairs: list[tuple[str, str]]) -> str:
    """Mean gap closed per stream (over models, delays and rates) of ``pairs``."""
    streams = list(dict.fromkeys(s for r in rank for s in r["per_stream"]))
    lines = ["| pair | " + " | ".join(streams) + " |", "|" + "---|" * (len(streams) + 1)]
    by_pair = {(r["strategy"], r["budget"]): r for r in rank}
    for pair in pairs:
        r = by_pair.get(pair)
        if r is not None:
            cells = " | ".join(_fmt(r["per_stream"].get(s)) for s in streams)
            lines.append(f"| {_name(*pair)} | {cells} |")
    return "\n".join(lines)


def stream_table(
    agg: dict[tuple[Any, ...], dict[str, Any]],
    gap: dict[tuple[Any, ...], Any],
    stream: str,
    shown: list[tuple[str, str]],
) -> str:
    """One stream: per family, delay and rate, the baselines and the ``shown`` pairs."""
    names = ["random", "periodic"] + [_name(*p) for p in shown] + ["full"]
    names += [f"labels used by {_name(*shown[0])}", "µs/sample: random / it / full"]
    lines = [
        "| model | delay | rate | " + " | ".join(names) + " |",
        "|" + "---|" * (len(names) + 3),
    ]
    keys = sorted({(k[1], k[2], k[3]) for k in agg if k[0] == stream and k[5] != "full"})
    for family, delay, rate in keys:
        full = agg.get((stream, family, delay, 1.0, "random", "full"))
        cells = []
        for pair in [("random", "random"), ("random", "periodic"), *shown]:
            k = (stream, family, delay, rate, *pair)
            v = agg.get(k)
            if v is None:
                cells.append("—")
                continue
            g = gap.get(k)
            extra = "" if pair == ("random", "random") else f" ({_fmt(g)})"
            cells.append(f"{v['accuracy']:.3f} ± {v['sd']:.3f}{extra}")
        model = next(v["model"] for k, v in agg.items() if k[:3] == (stream, family, delay))
        labels = agg[(stream, family, delay, rate, "random", "random")]["labels"]
        cells.append("—" if full is None else f"{full['accuracy']:.3f}")
        first = agg.get((stream, family, delay, rate, *shown[0]))
        low = agg[(stream, family, delay, rate, "random", "random")]
        cells.append("—" if first is None else f"{first['labels']:.0f}")
        us = [_fmt(None if v is None else v["us"], 0) for v in (low, first, full)]
        cells.append(" / ".join(us))
        lines.append(
            f"| {model} | {delay} | {rate:g} ({labels:.0f} labels) | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def write_csv(
    agg: dict[tuple[Any, ...], dict[str, Any]], gap: dict[tuple[Any, ...], Any], path: Path
) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "stream",
                "family",
                "model",
                "delay",
                "rate",
                "strategy",
                "budget",
                "seeds",
                "samples",
                "accuracy_mean",
                "accuracy_sd",
                "labels_used",
                "gap_closed",
                "us_per_sample",
            ]
        )
        for k in sorted(agg, key=str):
            v = agg[k]
            w.writerow(
                [
                    k[0],
                    k[1],
                    v["model"],
                    k[2],
                    k[3],
                    k[4],
                    k[5],
                    v["seeds"],
                    v["samples"],
                    f"{v['accuracy']:.4f}",
                    f"{v['sd']:.4f}",
                    f"{v['labels']:.1f}",
                    _fmt(gap.get(k), 3),
                    f"{v['us']:.1f}",
                ]
            )


def plot(
    agg: dict[tuple[Any, ...], dict[str, Any]], shown: list[tuple[str, str]], out: Path
) -> list[Path]:
    """Accuracy against labels used, one figure per (family, delay), one panel per stream."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    paths = []
    for family, delay in sorted({(k[1], k[2]) for k in agg}):
        streams = list(dict.fromkeys(k[0] for k in agg if k[1] == family and k[2] == delay))
        ncols = 4
        nrows = -(-len(streams) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 3.3 * nrows), squeeze=False)
        for ax, stream in zip(axes.flat, streams, strict=False):
            for pair in [("random", "random"), ("random", "periodic"), *shown]:
                pts = sorted(
                    (v["labels"], v["accuracy"], v["sd"])
                    for k, v in agg.items()
                    if k[:3] == (stream, family, delay) and k[4:] == pair
                )
                if pts:
                    xs, ys, sds = zip(*pts, strict=True)
                    ax.errorbar(xs, ys, yerr=sds, marker="o", ms=3, capsize=2, label=_name(*pair))
            full = agg.get((stream, family, delay, 1.0, "random", "full"))
            if full is not None:
                ax.axhline(full["accuracy"], color="k", ls="--", lw=1, label="full labels")
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(ticker.NullFormatter())
            ax.set_title(f"{stream} ({full['model'] if full else family})", fontsize=9)
            ax.set_xlabel("labels used", fontsize=8)
            ax.set_ylabel("prequential accuracy", fontsize=8)
            ax.tick_params(labelsize=7)
        for ax in list(axes.flat)[len(streams) :]:
            ax.axis("off")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
        fig.suptitle(f"{family} models, label delay {delay} samples (mean ± sd over seeds)")
        fig.tight_layout(rect=(0, 0.05, 1, 0.97))
        path = out / f"accuracy_vs_labels_{family}_delay{delay}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        paths.append(path)
    return paths


def write_report(rows: list[dict[str, Any]], out: Path, plots: bool = True) -> dict[str, Any]:
    """Write label_efficiency.md, the aggregate CSV and the plots into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    agg = aggregate(rows)
    gap = gaps(agg)
    rank = ranking(gap)
    candidates = [r for r in rank if r["both_families"] and not r["baseline"]] or rank
    best = candidates[0]
    rec = (best["strategy"], best["budget"])
    # The recommended pair, the current default and the runner-up, in the tables and plots.
    runner_ups = [(r["strategy"], r["budget"]) for r in candidates[1:3]]
    shown = list(dict.fromkeys([rec, CURRENT, *runner_ups]))[:3]
    top = [(r["strategy"], r["budget"]) for r in candidates[:8]]
    md = [
        "## Ranking (mean share of the random→full gap closed)",
        "",
        ranking_table(rank),
        "",
        "## Gap closed per stream",
        "",
        per_stream_table(rank, top + [p for p in [CURRENT] if p not in top]),
        "",
    ]
    for stream in dict.fromkeys(k[0] for k in agg):
        runner = max(
            (r for r in candidates if stream in r["per_stream"]),
            key=lambda r: r["per_stream"][stream],
            default=None,
        )
        extra = (
            []
            if runner is None or (runner["strategy"], runner["budget"]) in shown
            else [(runner["strategy"], runner["budget"])]
        )
        md += [f"### {stream}", "", stream_table(agg, gap, stream, shown + extra), ""]
    (out / "label_efficiency.md").write_text("\n".join(md))
    write_csv(agg, gap, out / "label_efficiency.csv")
    figures = [str(p) for p in plot(agg, shown, out)] if plots else []
    current = next((r for r in rank if (r["strategy"], r["budget"]) == CURRENT), None)
    return {
        "recommended": best,
        "current_default": current,
        "ranking": rank,
        "figures": figures,
        "min_gap": MIN_GAP,
        "runs": len(rows),
    }
