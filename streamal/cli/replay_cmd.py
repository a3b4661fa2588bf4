"""``streamal replay``: offline prequential replay of a recorded or built-in stream."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from streamal import defaults
from streamal.cli.errors import friendly_errors
from streamal.exceptions import ConfigError
from streamal.offline.replay import Progress as ReplayProgress
from streamal.offline.replay import ReplayConfig, ReplayResult, plan, run
from streamal.offline.report import summary, write_report
from streamal.offline.streams import open_source

__all__ = ["register"]

HELP = """Replay SOURCE prequentially (test, then train) with active learning.

SOURCE is a .jsonl file of samples with their y, a .csv or .tsv file (target column:
--target, default the last), any of these gzipped (.gz), a .parquet file (the parquet
extra), river:NAME (Phishing, Bananas, ImageSegments) or synth:NAME[:k=v,...] (Agrawal,
SEA, Hyperplane, RandomRBFDrift). See `streamal datasets`. Empty cells and JSON nulls
are missing features (left out of x); true/false are 1.0/0.0.

Accuracy counts the predicted arrivals; those before the model's first prediction are
reported apart (unpredicted), as river's progressive validation skips them.

Each --compare entry is STRATEGY\\[/BUDGET] or a baseline, `random` or `full`; all runs
share the stream, model, rate, delay and seed.
"""


def _table(results: list[ReplayResult]) -> Table:
    data = summary(results)
    table = Table(title=f"{results[0].source}: rate {results[0].rate}, delay {results[0].delay}")
    for col in (
        "run",
        "strategy / budget",
        "labels",
        "label rate",
        "accuracy",
        "unpredicted",
        "gap closed",
        "µs/sample",
    ):
        table.add_column(col, justify="left" if col in {"run", "strategy / budget"} else "right")
    for result, entry in zip(results, data["runs"], strict=True):
        gap = entry.get("gap_closed")
        table.add_row(
            entry["name"],
            result.components,
            str(entry["labels_used"]),
            f"{entry['label_rate']:.4f}",
            f"{entry['accuracy']:.4f}",
            str(entry["unpredicted"]),
            "" if gap is None else f"{gap:.1%}",
            f"{entry['us_per_sample']:.1f}",
        )
    return table


def _estimates(results: list[ReplayResult]) -> Table:
    table = Table(title="accuracy estimated from the labels alone (vs the true accuracy)")
    for col in ("run", "true", "audit", "queried only", "IPW", "audit labels"):
        table.add_column(col, justify="left" if col == "run" else "right")

    def fmt(value: object) -> str:
        return f"{value:.4f}" if isinstance(value, float) else "-"

    for r in results:
        e = r.estimates
        table.add_row(
            r.name,
            f"{r.accuracy:.4f}",
            fmt(e.get("audit_accuracy")),
            fmt(e.get("queried_accuracy")),
            fmt(e.get("ipw_accuracy")),
            str(e.get("audit_labels", 0)),
        )
    return table


@friendly_errors
def replay_command(
    source: Annotated[str, typer.Argument(help="File, river:NAME or synth:NAME stream.")],
    target: Annotated[str | None, typer.Option(help="CSV target column (default: last).")] = None,
    time: Annotated[str | None, typer.Option(help="CSV column with event time (seconds).")] = None,
    model: Annotated[
        str,
        typer.Option(
            help="Model spec: logreg, softmax, ovr, gnb, hoeffding, "
            "hat, arf, arf20, bagging, srp, knn or module:attr."
        ),
    ] = defaults.DEFAULT_MODEL,
    strategy: Annotated[
        str, typer.Option(help="Query strategy (see `streamal strategies`).")
    ] = defaults.DEFAULT_STRATEGY,
    budget: Annotated[
        str, typer.Option(help="Budget manager (see `streamal strategies`).")
    ] = defaults.DEFAULT_BUDGET,
    rate: Annotated[
        float, typer.Option(help="Label budget: share of samples labelled.")
    ] = defaults.DEFAULT_RATE,
    delay: Annotated[
        str, typer.Option(help="Label delay: N samples, Ns seconds, exp:MEAN, uniform:LOW:HIGH.")
    ] = "0",
    noise: Annotated[float, typer.Option(help="Probability of a wrong label.")] = 0.0,
    ttl: Annotated[
        float | None,
        typer.Option(
            help="Queries expire after this much stream time (seconds, or samples without ts)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = defaults.DEFAULT_SEED,
    limit: Annotated[int | None, typer.Option(help="Stop after this many samples.")] = None,
    window: Annotated[
        int | None,
        typer.Option(help="Window (batch) mode: choose rate x W of every W arrivals at once."),
    ] = None,
    selector: Annotated[
        str | None,
        typer.Option(
            help="Window-mode selector: topk "
            "(default), coreset, diverse, "
            "batchbald; needs --window."
        ),
    ] = None,
    audit: Annotated[
        float,
        typer.Option(
            help="Share of the budget spent on an audit slice "
            "of random samples (unbiased accuracy)."
        ),
    ] = 0.0,
    warm_start: Annotated[
        str | None,
        typer.Option(
            help="Labelled JSONL/CSV file (or source spec) learned before the stream; its "
            "labels are counted apart and not charged to the budget unless "
            "--warm-start-charge."
        ),
    ] = None,
    warm_start_first: Annotated[
        int | None,
        typer.Option(
            help="Learn only the first N rows of --warm-start; without --warm-start, learn "
            "the first N rows of SOURCE and replay the rest."
        ),
    ] = None,
    warm_start_charge: Annotated[
        bool,
        typer.Option(
            help="Charge the warm-start labels to the budget (the stream's first query comes "
            "after about N / rate arrivals)."
        ),
    ] = False,
    compare: Annotated[
        str,
        typer.Option(help="Comma-separated runs to compare: STRATEGY\\[/BUDGET], random, full."),
    ] = "",
    report: Annotated[
        str | None,
        typer.Option(help="Write curve.csv, summary.json and accuracy_vs_labels.png here."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout.")
    ] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    config = ReplayConfig(
        source=source,
        model=model,
        strategy=strategy,
        budget=budget,
        rate=rate,
        delay=delay,
        seed=seed,
        noise=noise,
        ttl=ttl,
        target=target,
        time=time,
        limit=limit,
        window=window,
        selector=selector,
        audit=audit,
        warm_start=warm_start,
        warm_start_first=warm_start_first,
        warm_start_charge=warm_start_charge,
    )
    if selector is not None and window is None:
        raise ConfigError("--selector chooses in window mode only; give --window N as well")
    runs = plan(config, compare.split(","))
    length = open_source(source, target=target, time=time, seed=seed).length
    if length is not None and warm_start is None and warm_start_first:
        length = max(0, length - warm_start_first)
    total = min(length, limit) if length is not None and limit is not None else (length or limit)
    console = Console(stderr=True)
    results: list[ReplayResult] = []
    show = not quiet and not as_json and console.is_terminal
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("acc {task.fields[acc]:.3f} labels {task.fields[labels]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not show,
    ) as bar:
        for spec in runs:
            task = bar.add_task(spec.name, total=total, acc=0.0, labels=0)

            def update(p: ReplayProgress, task: TaskID = task) -> None:
                bar.update(task, completed=p.samples, acc=p.accuracy, labels=p.labels_used)

            results.append(run(config, spec, on_progress=update))
    if report is not None:
        paths = write_report(results, report)
        if not as_json:
            console.print("report: " + ", ".join(str(p) for p in paths))
    if as_json:
        sys.stdout.write(json.dumps(summary(results)) + "\n")
    else:
        out = Console()
        if not out.is_terminal:
            out = Console(width=140)
        out.print(_table(results))
        if results and results[0].warm_start_labels:
            charged = "charged to" if results[0].warm_start_charged else "not charged to"
            out.print(
                f"warm start: {results[0].warm_start_labels} labels learned before the "
                f"stream, {charged} the budget (not in the labels column)"
            )
        if audit:
            out.print(_estimates(results))


def register(app: typer.Typer) -> None:
    """Add ``replay`` to the app."""
    app.command("replay", help=HELP)(replay_command)
