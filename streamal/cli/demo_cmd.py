"""``streamal demo``: the whole live loop on one machine, in about twenty seconds.

With no ``--bootstrap-servers`` it starts a local Kafka-protocol broker (tansu, from the
``broker`` extra), creates the topics, runs ``streamal serve``, streams a built-in
dataset into it and answers its queries with a simulated annotator, showing live
progress; then it prints a summary and stops everything it started.
"""

from __future__ import annotations

import signal
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from streamal import defaults
from streamal.cli.demo_progress import DemoProgress
from streamal.cli.demo_stack import DemoConfig, DemoStack
from streamal.cli.errors import friendly_errors
from streamal.exceptions import ConfigError

__all__ = ["register", "render"]


def _bar(done: int, total: int, width: int = 24) -> str:
    filled = int(width * done / total) if total else 0
    return "█" * filled + "░" * (width - filled)


def render(p: DemoProgress, title: str = "streamal demo") -> Table:
    """The progress table (also the final summary).

    Examples
    --------
    >>> p = DemoProgress(total=10, produced=10, decided=8, correct=6, queries=2, labels=2,
    ...                  learned=1, elapsed=3.0, phase="draining")
    >>> console = Console(width=80, color_system=None)
    >>> with console.capture() as cap:
    ...     console.print(render(p))
    >>> "75.0%" in cap.get() and "25.0%" in cap.get()
    True
    """
    table = Table(title=f"{title} · {p.phase} · {p.elapsed:.1f} s", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_column()
    table.add_row("samples sent", f"{p.produced}/{p.total}", _bar(p.produced, p.total))
    table.add_row("samples decided", str(p.decided), _bar(p.decided, p.total))
    table.add_row("queries", str(p.queries), f"label rate {p.label_rate:.1%}")
    table.add_row(
        "labels answered", str(p.labels), f"{p.label_delay:.0f} samples after their query"
    )
    table.add_row("labels learned", str(p.learned), f"model version {p.model_version}")
    table.add_row("accuracy", f"{p.accuracy:.1%}", "prequential: predicted before learned")
    return table


@friendly_errors
def demo_command(
    source: Annotated[
        str, typer.Option(help="Stream to play: river:NAME, synth:NAME[:k=v], or a file.")
    ] = "river:Phishing",
    limit: Annotated[int | None, typer.Option(help="Play at most this many samples.")] = None,
    rate: Annotated[
        float, typer.Option(help="Samples per second (0: as fast as possible).")
    ] = 200.0,
    delay: Annotated[str, typer.Option(help="Annotator delay: 1s, exp:1s, ...")] = "1s",
    noise: Annotated[float, typer.Option(help="Probability of a wrong label.")] = 0.0,
    model: Annotated[str, typer.Option(help="Model spec.")] = defaults.DEFAULT_MODEL,
    strategy: Annotated[str, typer.Option(help="Query strategy.")] = defaults.DEFAULT_STRATEGY,
    budget: Annotated[str, typer.Option(help="Budget manager.")] = defaults.DEFAULT_BUDGET,
    label_rate: Annotated[
        float, typer.Option(help="Label budget: share of samples labelled.")
    ] = defaults.DEFAULT_RATE,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = (
        defaults.DEFAULT_SEED
    ),
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(help="Use this Kafka instead of a local tansu (topics get a unique prefix)."),
    ] = None,
    http_port: Annotated[
        int | None, typer.Option(help="Port of the service's /metrics (default: a free one).")
    ] = None,
    hold: Annotated[
        float, typer.Option(help="Keep everything running this many seconds after the end.")
    ] = 0.0,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 300.0,
) -> None:
    """Run the live service end to end on a local broker, with a simulated annotator.

    Needs the broker extra (pip install 'streamal\\[broker]') unless --bootstrap-servers
    points at a running Kafka.
    """
    config = DemoConfig(
        source=source, limit=limit, rate=rate, delay=delay, noise=noise, model=model,
        strategy=strategy, budget=budget, label_rate=label_rate, seed=seed,
        bootstrap_servers=bootstrap_servers, http_port=http_port, timeout=timeout,
    )  # fmt: skip
    if not 0.0 < label_rate <= 1.0:
        raise ConfigError(f"--label-rate must be in (0, 1], got {label_rate}")
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {limit}")
    # SIGTERM unwinds like Ctrl-C, so that everything started is stopped on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    console = Console()
    started = time.monotonic()
    steps: list[str] = []

    def step(what: str) -> None:
        steps.append(f"{what} {time.monotonic() - started:.1f} s")
        console.print(f"[dim]{time.monotonic() - started:5.1f} s[/dim]  {what}")

    with DemoStack(config) as stack:
        stack.start_broker()
        where = "local tansu" if bootstrap_servers is None else "Kafka"
        prefix = stack.topics["samples"].rsplit(".", 1)[0]
        step(
            f"broker ready: {where} at {stack.bootstrap}; topics {prefix}.{{samples,labels,"
            "queries,predictions,dead-letters}"
        )
        stack.start_service()
        step(
            f"service ready: streamal serve (model {model}, {strategy} / {budget}, "
            f"rate {label_rate}), metrics on {stack.metrics_url}"
        )
        stack.start_clients()
        step(
            f"streaming {stack.progress.total} samples from {source} at "
            f"{'max' if not rate else f'{rate:g}/s'}; annotator delay {delay}"
        )
        with Live(
            render(stack.progress),
            console=console,
            refresh_per_second=8,
            transient=not console.is_terminal,
        ) as live:
            final = stack.watch(lambda p: live.update(render(p)))
        if hold > 0:
            console.print(f"holding for {hold:g} s: try curl {stack.metrics_url}")
            time.sleep(hold)
    total = time.monotonic() - started
    console.print(render(final, title="streamal demo summary"))
    m = final.metrics
    console.print(
        f"[bold]done in {total:.1f} s[/bold]: {final.decided} samples decided, "
        f"{final.queries} labels bought ({final.label_rate:.1%} of the stream, "
        f"budget {label_rate:.0%}), accuracy {final.accuracy:.1%}; "
        f"{int(m.get('streamal_checkpoint_duration_seconds_count', 0))} checkpoints.\n"
        f"Labels came {final.label_delay:.0f} samples after their query; compare offline: "
        f"streamal replay {source} --model {model} --strategy {strategy} --budget {budget} "
        f"--rate {label_rate:g} --seed {seed} --delay {final.label_delay:.0f}"
        f"{'' if limit is None else f' --limit {limit}'}\n"
        f"Metrics were served at {stack.metrics_url} (Prometheus text format); "
        "everything the demo started is stopped."
    )


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the app."""
    app.command("demo")(demo_command)
