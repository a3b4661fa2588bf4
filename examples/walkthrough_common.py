"""Plumbing shared by the walkthrough scripts: options, samples, tables and output files.

Each ``walkthrough_*.py`` script takes the same options:

``--out DIR``  where the plot and ``summary.json`` go (default ``walkthrough-output/NAME``)
``--fast``     smaller settings for the test suite (also ``STREAMAL_FAST=1``)
``--seed S``   seed of every random choice (default 42)
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # scripts write files; they never open a window

import numpy as np  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from streamal import Label, Sample  # noqa: E402

__all__ = ["Options", "options", "plt", "run_stream", "samples", "save", "seed_table", "table"]


class Options(argparse.Namespace):
    """Parsed command line of a walkthrough."""

    out: Path
    fast: bool
    seed: int


def options(
    name: str,
    description: str,
    argv: Sequence[str] | None = None,
    more: Callable[[argparse.ArgumentParser], Any] | None = None,
) -> Options:
    """Parse the common options (and those ``more`` adds); create the output directory."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=Path("walkthrough-output") / name)
    parser.add_argument("--fast", action="store_true", help="small settings for the test suite")
    parser.add_argument("--seed", type=int, default=42)
    if more is not None:
        more(parser)
    args = parser.parse_args(argv, namespace=Options())
    args.fast = args.fast or os.environ.get("STREAMAL_FAST", "") not in ("", "0")
    args.out.mkdir(parents=True, exist_ok=True)
    # The walkthroughs fit small models many times: one BLAS thread is fastest, and
    # several threads per fit slow down up to 30x on a busy two-core machine (measured).
    threadpool_limits(1)
    return args


def samples(X: np.ndarray, y: Iterable[Any], ids: Iterable[int] | None = None) -> list[Sample]:
    """Rows of ``X`` as :class:`~streamal.Sample` messages with features ``x0, x1, ...``."""
    ids = range(len(X)) if ids is None else ids
    return [
        Sample(id=str(i), x={f"x{j}": float(v) for j, v in enumerate(row)}, y=_py(label))
        for i, row, label in zip(ids, X, y, strict=True)
    ]


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def run_stream(learner: Any, stream: Iterable[Sample]) -> Iterator[tuple[Sample, Any, list[str]]]:
    """Feed ``stream`` to ``learner``; answer each query at once with the true label.

    Yields every arrival with its decision and the ids whose labels were just learned
    (a window-mode learner's queries, from ``take_queries``, are answered the same way).
    """
    truth: dict[str, Any] = {}
    take = getattr(learner, "take_queries", None)
    for sample in stream:
        decision = learner.process(sample)
        truth[sample.id] = sample.y
        asked = [decision] if decision.queried else []
        if take is not None:
            asked += take()
        answered = []
        for query in asked:
            if learner.learn(Label(sample_id=query.sample_id, y=truth.pop(query.sample_id))):
                answered.append(query.sample_id)
        yield sample, decision, answered


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain-text table, numbers rounded to 3 decimals, NaN (no value) shown as ``-``."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def seed_table(
    title: str,
    values: dict[str, list[float]],
    metric: str = "mean accuracy",
    counts: tuple[str, dict[str, list[int]]] | None = None,
) -> list[list[Any]]:
    """Print the mean and spread of each run's values over seeds; return the rows.

    Each row is ``[run, mean, std]``, plus the mean of ``counts`` (labels or queries
    used) when given.
    """
    rows: list[list[Any]] = []
    for name, v in values.items():
        row: list[Any] = [name, float(np.mean(v)), float(np.std(v))]
        if counts is not None:
            row.append(float(np.mean(counts[1][name])))
        rows.append(row)
    headers = ["run", metric, "std", *([counts[0]] if counts is not None else [])]
    print(f"\n{title}")
    print(table(headers, rows))
    return rows


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "-" if value != value else f"{value:.3f}"
    return str(value)


def save(fig: Any, out: Path, name: str, summary: dict[str, Any]) -> None:
    """Write the figure as ``out/name.png`` and the printed numbers as ``out/summary.json``."""
    fig.tight_layout()
    fig.savefig(out / f"{name}.png", dpi=110)
    plt.close(fig)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    print(f"\nwrote {out / (name + '.png')} and {out / 'summary.json'}")
