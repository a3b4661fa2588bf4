"""``streamal serve`` (the live service) and ``streamal config`` (its effective settings).

Exit codes of ``serve``: 0 after a graceful stop (SIGTERM/SIGINT), 2 when the settings
or the snapshot need an operator (the message says what to do), 3 when the broker
stayed unreachable (a restart may help), 1 for anything unexpected.
"""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from streamal.cli.errors import friendly_errors
from streamal.exceptions import TransportError
from streamal.redact import redact

__all__ = ["register", "to_toml"]

log = logging.getLogger("streamal.cli")

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", envvar="STREAMAL_CONFIG", help="TOML settings file."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override any setting as SECTION.KEY=VALUE (repeatable), "
        "e.g. --set learner.rate=0.05 --set topics.predictions=preds.",
    ),
]
BootstrapOpt = Annotated[
    str | None, typer.Option(help="Kafka bootstrap servers (kafka.bootstrap_servers).")
]
CheckpointOpt = Annotated[Path | None, typer.Option(help="Snapshot directory (checkpoint.dir).")]
PortOpt = Annotated[
    int | None,
    typer.Option(help="Port of /metrics, /healthz, /readyz, /label, /labels (service.http_port)."),
]


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def overrides(
    sets: list[str] | None,
    bootstrap_servers: str | None = None,
    checkpoint_dir: Path | None = None,
    http_port: int | None = None,
) -> dict[str, Any]:
    """Nested settings from ``--set`` items and the shortcut flags.

    Examples
    --------
    >>> overrides(["learner.rate=0.05", "topics.predictions=preds"], http_port=0)
    {'learner': {'rate': 0.05}, 'topics': {'predictions': 'preds'}, 'service': {'http_port': 0}}
    """
    out: dict[str, Any] = {}
    for item in sets or []:
        key, eq, value = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not (eq and dot and section and name):
            from streamal.exceptions import ConfigError

            raise ConfigError(f"bad --set {item!r}; write SECTION.KEY=VALUE")
        out.setdefault(section, {})[name] = _value(value.strip())
    flags: dict[tuple[str, str], Any] = {
        ("kafka", "bootstrap_servers"): bootstrap_servers,
        ("checkpoint", "dir"): checkpoint_dir,
        ("service", "http_port"): http_port,
    }
    for (section, name), value in flags.items():
        if value is not None:
            out.setdefault(section, {})[name] = value
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        items = ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items())
        return f"{{ {items} }}" if items else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value)  # strings, numbers and booleans are spelled alike


def to_toml(data: dict[str, Any]) -> str:
    """Settings as TOML text (unset values are left out).

    Examples
    --------
    >>> print(to_toml({"a": {"x": 1, "y": None, "z": "s", "m": {"k": True}}}))
    [a]
    x = 1
    z = "s"
    m = { "k" = true }
    <BLANKLINE>
    """
    lines = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            if value is not None:
                lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


@friendly_errors
def config_command(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    bootstrap_servers: BootstrapOpt = None,
    checkpoint_dir: CheckpointOpt = None,
    http_port: PortOpt = None,
) -> None:
    """Print the effective settings of `streamal serve` as TOML, secrets masked."""
    from streamal.service.config import load_settings

    settings = load_settings(config, overrides(set_, bootstrap_servers, checkpoint_dir, http_port))
    typer.echo(to_toml(settings.masked()), nl=False)


@friendly_errors
def serve_command(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    bootstrap_servers: BootstrapOpt = None,
    checkpoint_dir: CheckpointOpt = None,
    http_port: PortOpt = None,
) -> None:
    """Run the active-learning service on Kafka until SIGTERM or SIGINT.

    Consumes samples and labels, publishes queries (and predictions, dead letters),
    checkpoints the model with the consumed offsets, and serves /metrics, /healthz and
    /readyz, plus the labelling page /label and POST /labels (labelling.enabled; a
    bearer token with labelling.token). Settings: defaults < --config TOML <
    STREAMAL_* env < flags.

    Scale-out: with --set group.enabled=true, N instances of one kafka.group_id share
    the samples partitions (a budget per partition, its state on group.state_topic)
    and each learns every label; also group.instance_id (default: the hostname) and
    group.catch_up_timeout. See docs/service.md, "Group mode".
    """
    from prometheus_client import CollectorRegistry

    from streamal.service.config import load_settings
    from streamal.service.factory import build_labelling, build_service
    from streamal.service.http import HttpServer

    settings = load_settings(config, overrides(set_, bootstrap_servers, checkpoint_dir, http_port))
    _logging(settings.service.log_level, settings.service.log_format)
    registry = CollectorRegistry()
    try:
        service = build_service(settings, registry, lock=True)
    except TransportError as err:
        typer.echo(f"error: {redact(str(err))}", err=True)
        raise typer.Exit(3) from None
    http = labelling = None
    runtime = settings.service
    if runtime.http_port is not None:
        try:
            labelling = build_labelling(settings, service)
        except TransportError as err:
            service.close()
            typer.echo(f"error: {redact(str(err))}", err=True)
            raise typer.Exit(3) from None
        http = HttpServer(
            registry,
            service.health,
            service.readiness,
            runtime.http_host,
            runtime.http_port,
            timeout=runtime.http_timeout,
            max_connections=runtime.http_max_connections,
            routes=labelling,
            max_body=settings.labelling.max_request_bytes,
        )
        http.start()
        log.info("serving /metrics, /healthz, /readyz on http://%s:%d", http.host, http.port)
        if labelling is not None:
            log.info("labelling page on http://%s:%d/label", http.host, http.port)
    signals = {"count": 0}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        signals["count"] += 1
        if signals["count"] == 1:
            log.info("signal %d: stopping after the current batch", signum)
            service.stop()
        else:  # a second signal: stop now, without the final checkpoint
            service.stop(fail=True)
            raise KeyboardInterrupt

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        processed = service.run()
        log.info("stopped gracefully after %d messages", processed)
    except TransportError as err:
        typer.echo(f"error: {redact(str(err))}", err=True)
        raise typer.Exit(3) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        try:
            service.close()
        except TransportError as err:
            log.warning("closing the transports: %s", err)
        if http is not None:
            http.stop()
        if labelling is not None:
            try:
                labelling.gateway.sink.close(settings.kafka.max_block_ms / 1000)
            except TransportError as err:
                log.warning("closing the labels producer: %s", err)


def _logging(level: str, fmt: str = "text") -> None:
    from streamal.service.logs import configure_logging

    configure_logging(level, fmt)
    # kafka-python logs every failed reconnect at ERROR; the service reports outages itself.
    quiet = logging.WARNING if level.upper() == "DEBUG" else logging.CRITICAL
    logging.getLogger("kafka").setLevel(quiet)


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``config`` to the ``streamal`` app."""
    app.command("serve")(serve_command)
    app.command("config")(config_command)
