"""Replay reports: learning curves (CSV), summary (JSON) and a plot (PNG)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streamal.exceptions import ConfigError
from streamal.offline.replay import ReplayResult, gap_closed

__all__ = ["summary", "write_report"]


def summary(results: Sequence[ReplayResult]) -> dict[str, Any]:
    """The JSON summary: the main run's figures at top level, every run under ``runs``."""
    main = results[0].summary()
    gaps = gap_closed(list(results))
    runs = []
    for r in results:
        entry = r.summary()
        if r.name in gaps:
            entry["gap_closed"] = gaps[r.name]
        runs.append(entry)
    return {**{k: v for k, v in runs[0].items()}, "source": main["source"], "runs": runs}


def _plot(results: Sequence[ReplayResult], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("plots need matplotlib: pip install 'streamal[plots]'") from None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        xs = [p.labels_used for p in r.curve]
        ys = [p.accuracy for p in r.curve]
        label = f"{r.name} ({r.components})" if r.name == "main" else r.name
        ax.plot(xs, ys, label=f"{label}: {r.accuracy:.3f}", linewidth=1.5)
    ax.set_xlabel("labels used")
    ax.set_ylabel("prequential accuracy")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_title(f"{results[0].source} (rate {results[0].rate}, delay {results[0].delay})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(results: Sequence[ReplayResult], directory: str | Path) -> list[Path]:
    """Write ``curve.csv``, ``summary.json`` and ``accuracy_vs_labels.png`` into ``directory``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    curve_path = out / "curve.csv"
    with curve_path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["run", "strategy", "budget", "samples", "labels_used", "accuracy", "window_accuracy"]
        )
        for r in results:
            for p in r.curve:
                writer.writerow(
                    [
                        r.name,
                        r.strategy,
                        r.budget,
                        p.samples,
                        p.labels_used,
                        f"{p.accuracy:.6f}",
                        f"{p.window_accuracy:.6f}",
                    ]
                )
    summary_path = out / "summary.json"
    summary_path.write_text(json.dumps(summary(results), indent=2) + "\n")
    plot_path = out / "accuracy_vs_labels.png"
    _plot(results, plot_path)
    return [curve_path, summary_path, plot_path]
