"""``streamal annotate``: a person labels the service's queries in the terminal.

Each query is shown with :func:`render_query` (features, prediction, class
probabilities); the answer goes through :class:`~streamal.companions.annotators.HumanAnswerer`,
and :func:`~streamal.companions.answer_queries` publishes it and commits the query.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table

from streamal.cli.companions_cmd import (
    CountOpt,
    IdleOpt,
    companion_settings,
    companion_transports,
)
from streamal.cli.errors import friendly_errors
from streamal.cli.serve_cmd import BootstrapOpt, ConfigOpt, SetOpt
from streamal.messages import Query

__all__ = ["register", "render_query"]

#: Features shown per query; wider samples are cut (the count of the rest is shown).
MAX_FEATURES = 40
#: Classes shown with their probability, most likely first.
MAX_CLASSES = 5


def render_query(query: Query) -> Panel:
    """A rich panel for one query.

    Examples
    --------
    >>> from rich.console import Console
    >>> q = Query(sample_id="42", x={"age": 31, "city": "Oslo"}, proba={"yes": 0.7, "no": 0.3},
    ...           prediction="yes", score=0.88, strategy="entropy", model_version=5,
    ...           meta={"note": "renewal call"})
    >>> console = Console(width=60, color_system=None)
    >>> with console.capture() as cap:
    ...     console.print(render_query(q))
    >>> text = cap.get()
    >>> "sample 42" in text and "Oslo" in text and "0.700" in text and "renewal call" in text
    True
    """
    features = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    features.add_column("feature")
    features.add_column("value", overflow="fold")
    items = list(query.x.items())
    for name, value in items[:MAX_FEATURES]:
        features.add_row(str(name), f"{value:.4g}" if isinstance(value, float) else str(value))
    if len(items) > MAX_FEATURES:
        features.add_row("…", f"{len(items) - MAX_FEATURES} more")
    classes = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    classes.add_column("class")
    classes.add_column("probability", justify="right")
    ranked = sorted(query.proba.items(), key=lambda kv: -kv[1])[:MAX_CLASSES]
    for name, p in ranked:
        classes.add_row(name, f"{p:.3f}")
    head = (
        f"prediction [bold]{query.prediction}[/bold] · score {query.score:.3f} "
        f"({query.strategy}) · {query.purpose}"
    )
    title = f"sample {query.sample_id} · model v{query.model_version}"
    parts: list[Any] = [head]
    if query.meta:  # what the sample is (a text, a URL), before what the model saw
        item = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        item.add_column("item")
        item.add_column("", overflow="fold")
        for name, value in list(query.meta.items())[:MAX_FEATURES]:
            item.add_row(str(name), str(value))
        parts.append(item)
    return Panel(Group(*parts, features, classes), title=title, title_align="left")


def _prompt(console: Console) -> Callable[[Any, str | None], str | None]:
    def prompt(query: Any, error: str | None) -> str | None:
        if error is None:
            console.print(render_query(query))
        else:
            console.print(f"[red]{error}[/red]")
        hint = "" if query.prediction is None else f"Enter = {query.prediction}, "
        try:
            return console.input(f"label ({hint}s = skip, q = quit): ")
        except (EOFError, KeyboardInterrupt):
            return None

    return prompt


@friendly_errors
def annotate_command(
    annotator: Annotated[
        str | None, typer.Option(help="Your name on the labels (default: the login name).")
    ] = None,
    group: Annotated[
        str, typer.Option(help="Consumer group of the annotators.")
    ] = "streamal-annotate",
    count: CountOpt = None,
    idle: IdleOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    bootstrap_servers: BootstrapOpt = None,
) -> None:
    """Label the service's queries by hand: see features and prediction, type the label.

    Works from a pipe too (one answer per line; it stops at the end of the input once a
    query is waiting for it, or use --count/--idle). Annotators sharing --group share
    the queue; a query is committed only once its label is sent.
    """
    from streamal.companions.annotators import HumanAnswerer
    from streamal.companions.loops import answer_queries

    # A person may think for long between polls: allow an hour before the group
    # considers this consumer dead (heartbeats keep the session itself alive).
    settings = companion_settings(
        config,
        set_,
        bootstrap_servers,
        group_id=group,
        client_id=group,
        max_poll_interval_ms=3_600_000,
    )
    console = Console()
    human = HumanAnswerer(_prompt(console), annotator=annotator or _login())
    source, sink = companion_transports(settings)
    try:
        stats = answer_queries(
            source,
            sink,
            settings.topics.queries,
            settings.topics.labels,
            human,
            count=count,
            idle=idle,
            should_stop=lambda: human.stopped,
        )
    except KeyboardInterrupt:  # outside the prompt: uncommitted queries come back next time
        raise typer.Exit(130) from None
    finally:
        source.close()
        sink.close(settings.kafka.max_block_ms / 1000)
    typer.echo(f"annotate: {stats.labels} labels sent, {human.skipped} skipped", err=True)


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "human"


def register(app: typer.Typer) -> None:
    """Add ``annotate`` to the app."""
    app.command("annotate")(annotate_command)
