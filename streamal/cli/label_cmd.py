"""``streamal label --web``: the labelling page as a companion, apart from the service.

It reads the queries and labels topics (from their beginning, in a consumer group of
its own) and serves the same page as ``streamal serve`` does at ``/label``, with
``POST /labels`` writing to the labels topic. Use it when the service's port is not
reachable by the annotators, or to label for a service that runs elsewhere.
"""

from __future__ import annotations

import logging
import signal
import time
import uuid
from types import FrameType
from typing import Annotated

import typer

from streamal.cli.companions_cmd import companion_settings, companion_transports
from streamal.cli.errors import friendly_errors
from streamal.cli.serve_cmd import BootstrapOpt, ConfigOpt, SetOpt, _logging

__all__ = ["register"]

log = logging.getLogger("streamal.cli")


@friendly_errors
def label_command(
    web: Annotated[bool, typer.Option("--web", help="Serve the labelling page.")] = False,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the page (0: a free one).")] = 9111,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    bootstrap_servers: BootstrapOpt = None,
) -> None:
    """Label the service's queries in a browser: open queries, one click or key per label.

    Reads the queries and labels topics, serves the page at http://HOST:PORT/label and
    takes labels at POST /labels (labelling.token, learner.classes apply as in `serve`).
    `streamal serve` serves the same page on its own port; this runs it apart.
    """
    if not web:
        typer.echo("error: use --web (the terminal annotator is `streamal annotate`)", err=True)
        raise typer.Exit(2)
    from prometheus_client import CollectorRegistry

    from streamal.labelling.board import QueryBoard
    from streamal.labelling.feed import TopicFeed
    from streamal.labelling.web import LabellingApp
    from streamal.service.factory import label_gateway
    from streamal.service.http import HttpServer

    group = f"streamal-label-web-{uuid.uuid4().hex[:8]}"  # reads from the start each time
    settings = companion_settings(config, set_, bootstrap_servers, group_id=group, client_id=group)
    _logging(settings.service.log_level, settings.service.log_format)
    source, sink = companion_transports(settings)
    spec = settings.labelling
    board = QueryBoard()
    feed = TopicFeed(source, settings.topics.queries, settings.topics.labels, board)
    app = LabellingApp(label_gateway(settings, sink), board, lambda: {"pending": len(board)})
    http = HttpServer(
        CollectorRegistry(),
        lambda: (feed.error is None, "ok" if feed.error is None else str(feed.error)),
        lambda: (feed.is_alive(), "ok" if feed.is_alive() else "not reading the topics"),
        host,
        port,
        routes=app,
        max_body=spec.max_request_bytes,
    )
    stopping = {"flag": False}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping["flag"] = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    feed.start()
    http.start()
    log.info("labelling page on http://%s:%d/label", http.host, http.port)
    try:
        while not stopping["flag"] and feed.error is None:
            time.sleep(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        http.stop()
        feed.stop()
        feed.join(5)
        source.close()
        sink.close(settings.kafka.max_block_ms / 1000)
    if feed.error is not None:
        typer.echo(f"error: {feed.error}", err=True)
        raise typer.Exit(3)


def register(app: typer.Typer) -> None:
    """Add ``label`` to the app."""
    app.command("label")(label_command)
