"""``streamal bridge label-studio``: queries become Label Studio tasks, annotations labels.

See :mod:`streamal.labelling.label_studio` for what is durable and idempotent, and
``docs/labelling.md`` for a walk-through.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from streamal.cli.companions_cmd import (
    CountOpt,
    IdleOpt,
    companion_settings,
    companion_transports,
)
from streamal.cli.errors import friendly_errors
from streamal.cli.serve_cmd import BootstrapOpt, ConfigOpt, SetOpt, _logging
from streamal.exceptions import DecodeError, TransportError
from streamal.transports.base import TopicPartition

__all__ = ["register", "webhook_server"]

log = logging.getLogger("streamal.bridge")

bridge_app = typer.Typer(help="Connect the service to annotation tools.", no_args_is_help=True)

#: Most bytes of one webhook delivery (an annotation with its task; 1 MiB is plenty).
MAX_WEBHOOK_BYTES = 1_048_576


class _Keep:
    """Rebalance listener: positions come from the group's committed offsets."""

    def on_revoked(self, partitions: list[TopicPartition]) -> None:
        pass

    def on_assigned(self, partitions: list[TopicPartition]) -> None:
        pass


def webhook_server(bridge: Any, host: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server answering Label Studio's webhooks at ``POST /webhook`` (started)."""
    import threading

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the http.server name)
            size = int(self.headers.get("Content-Length") or 0)
            if self.path.split("?", 1)[0] != "/webhook" or not 0 < size <= MAX_WEBHOOK_BYTES:
                self.close_connection = True
                code = 404 if self.path.split("?", 1)[0] != "/webhook" else 413
            else:
                code = bridge.webhook(self.rfile.read(size))
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="streamal-webhook", daemon=True).start()
    return server


@friendly_errors
def label_studio_command(
    url: Annotated[str, typer.Option(help="Label Studio's address, e.g. http://localhost:8080.")],
    project: Annotated[int, typer.Option(help="The Label Studio project id.")],
    token: Annotated[
        str,
        typer.Option(
            envvar="LABEL_STUDIO_TOKEN",
            help="Label Studio legacy API token (or LABEL_STUDIO_TOKEN; never printed).",
            show_default=False,
        ),
    ],
    state: Annotated[
        Path, typer.Option(help="SQLite file: which queries became tasks, what was published.")
    ] = Path("label-studio-bridge.sqlite"),
    listen: Annotated[
        str | None,
        typer.Option(help="HOST:PORT to receive webhooks at /webhook (default: poll only)."),
    ] = None,
    webhook_url: Annotated[
        str | None,
        typer.Option(help="URL Label Studio calls (default http://LISTEN/webhook); registered."),
    ] = None,
    poll: Annotated[
        float, typer.Option(help="Seconds between polls of the project's annotations.")
    ] = 5.0,
    classes: Annotated[
        str | None,
        typer.Option(help='Classes as JSON, e.g. \'["spam", "ham"]\' (default learner.classes).'),
    ] = None,
    configure: Annotated[
        bool, typer.Option(help="Write the project's labelling config from the classes.")
    ] = True,
    group: Annotated[str, typer.Option(help="Consumer group of the bridge.")] = (
        "streamal-label-studio"
    ),
    count: CountOpt = None,
    idle: IdleOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    bootstrap_servers: BootstrapOpt = None,
) -> None:
    """Turn queries into Label Studio tasks and publish its annotations as labels.

    Each query becomes a task (its sample id, an item text from meta and features) with
    the model's prediction as a pre-annotation and its score. Annotations come back by
    webhook (--listen; ANNOTATION_CREATED/UPDATED) and by polling (--poll). Restart-safe
    and idempotent: --state remembers tasks made and annotations published.
    """
    from streamal.labelling.label_studio import BridgeState, LabelStudioBridge
    from streamal.labelling.label_studio_api import LabelStudioClient
    from streamal.messages import decode_query

    settings = companion_settings(config, set_, bootstrap_servers, group_id=group, client_id=group)
    _logging(settings.service.log_level, settings.service.log_format)
    offered = json.loads(classes) if classes else settings.learner.classes
    client = LabelStudioClient(url, token)
    try:
        client.project(project)  # fail early on a wrong address, token or project
    except TransportError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(3) from None
    source, sink = companion_transports(settings)
    bridge = LabelStudioBridge(
        client, project, BridgeState(state), sink, settings.topics.labels, offered, configure
    )
    server = None
    if listen is not None:
        host, _, port = listen.rpartition(":")
        server = webhook_server(bridge, host or "127.0.0.1", int(port))
        target = webhook_url or f"http://{host or '127.0.0.1'}:{server.server_address[1]}/webhook"
        if not any(hook.get("url") == target for hook in client.webhooks(project)):
            client.add_webhook(project, target)
        log.info("webhooks on %s", target)
    source.subscribe([settings.topics.queries], _Keep())
    positions: dict[TopicPartition, int] = {}
    tasks = 0
    started = last_query = last_poll = time.monotonic()
    stopping = {"flag": False}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping["flag"] = True  # finish the batch, commit, close

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while (count is None or tasks < count) and not stopping["flag"]:
            batch = source.poll(100, 0.5)
            for env in batch:
                try:
                    bridge.add_query(decode_query(env.value or b""))
                    tasks += 1
                except DecodeError as err:
                    log.warning("skipping an undecodable query: %s", err)
                positions[(env.topic, env.partition)] = env.offset + 1
            if batch:
                source.commit(positions)  # after the tasks are made and recorded
                last_query = time.monotonic()
            elif not source.assignment():
                last_query = time.monotonic()
            now = time.monotonic()
            if now - last_poll >= poll:
                bridge.poll()
                last_poll = now
            if idle is not None and now - last_query >= idle:
                break
        if not stopping["flag"]:
            bridge.poll()
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if server is not None:
            server.shutdown()
            server.server_close()
        source.close()
        sink.close(settings.kafka.max_block_ms / 1000)
        bridge.state.close()
    typer.echo(
        f"bridge: {tasks} queries read, {bridge.published} labels published "
        f"in {time.monotonic() - started:.0f} s",
        err=True,
    )


def register(app: typer.Typer) -> None:
    """Add ``bridge label-studio`` to the app."""
    bridge_app.command("label-studio")(label_studio_command)
    app.add_typer(bridge_app, name="bridge")
