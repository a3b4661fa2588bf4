"""``streamal topics create``: create the service's topics from its own settings.

The same settings as ``streamal serve`` (defaults < ``--config`` TOML < ``STREAMAL_*``
environment < ``--set`` and flags) name the topics, so an init container or a
deployment step cannot drift from the service it prepares. Exit codes: 0 when every
topic exists with the settings asked for (created now or before), 1 when an existing
topic has other settings (each is named, with what differs), 2 for a usage or settings
error, 3 when the broker stayed unreachable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from streamal.cli.errors import friendly_errors
from streamal.cli.serve_cmd import BootstrapOpt, ConfigOpt, SetOpt, overrides
from streamal.exceptions import ConfigError, TransportError
from streamal.redact import redact

if TYPE_CHECKING:
    from streamal.service.config import Settings
    from streamal.transports.admin import TopicSpec

__all__ = ["register", "topic_specs"]

topics_app = typer.Typer(
    name="topics",
    help="Manage the Kafka topics of `streamal serve` (from the same settings).",
    no_args_is_help=True,
)


def topic_specs(
    settings: Settings, partitions: int | None, replication: int | None, state: bool | None
) -> list[TopicSpec]:
    """The topics ``settings`` use, as :class:`~streamal.transports.admin.TopicSpec`.

    The samples topic gets ``partitions`` (required in group mode: it bounds the
    instances that decide), the others one partition; the state topic (group mode, or
    ``state=True``) is compacted. ``replication`` (default 1) is checked on existing
    topics only when given.

    Examples
    --------
    >>> from streamal.service.config import Settings
    >>> specs = topic_specs(Settings(group={"enabled": True}), 6, None, None)
    >>> [(s.name, s.partitions, s.configs) for s in specs]  # doctest: +NORMALIZE_WHITESPACE
    [('streamal.samples', 6, {}), ('streamal.queries', 1, {}), ('streamal.labels', 1, {}),
     ('streamal.dead-letters', 1, {}), ('streamal.state', 1, {'cleanup.policy': 'compact'})]
    """
    from streamal.transports.admin import TopicSpec

    group = settings.group.enabled
    if partitions is None:
        if group:
            raise ConfigError(
                "group mode (group.enabled): give the samples topic's partitions with "
                "--partitions N, at least the number of instances that should decide"
            )
        partitions = 1
    topics = settings.topics
    names = [topics.samples, topics.queries, topics.labels, topics.dead_letters]
    if topics.predictions is not None:
        names.append(topics.predictions)
    with_state = group if state is None else state
    if with_state:
        names.append(settings.group.state_topic)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(
            f"topic {repeated[0]!r} is named for two roles; give each of topics.* "
            "(and group.state_topic) its own topic"
        )
    factor = 1 if replication is None else replication
    checked = replication is not None
    specs = [
        TopicSpec(topics.samples, partitions, factor, True, checked),
        *(TopicSpec(name, 1, factor, False, checked) for name in names[1:]),
    ]
    if with_state:
        specs[-1] = TopicSpec(
            settings.group.state_topic, 1, factor, False, checked, {"cleanup.policy": "compact"}
        )
    return specs


PartitionsOpt = Annotated[
    int | None,
    typer.Option(
        "--partitions",
        "-p",
        min=1,
        help="Partitions of the samples topic (required in group mode: at least the "
        "number of instances; default 1 otherwise). An existing samples topic must have "
        "exactly this many.",
    ),
]
ReplicationOpt = Annotated[
    int | None,
    typer.Option(
        "--replication",
        "-r",
        min=1,
        help="Replication factor of every topic (default 1; use 3 on a production "
        "cluster). When given, existing topics must have it too.",
    ),
]
StateOpt = Annotated[
    bool | None,
    typer.Option(
        "--state/--no-state",
        help="Create the compacted group.state_topic (default: when group.enabled).",
    ),
]
WaitOpt = Annotated[
    float,
    typer.Option(
        "--wait",
        min=0.0,
        help="Seconds to wait for the broker to accept connections (an init container "
        "may start before the broker).",
    ),
]


@friendly_errors
def create_command(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    bootstrap_servers: BootstrapOpt = None,
    partitions: PartitionsOpt = None,
    replication: ReplicationOpt = None,
    state: StateOpt = None,
    wait: WaitOpt = 30.0,
) -> None:
    """Create the topics of `streamal serve` from its settings.

    The samples topic (--partitions), the queries, labels and dead-letter topics (and
    predictions when set), and in group mode the compacted group.state_topic.
    Idempotent: a topic that exists with the settings asked for is left as it is. One line
    per topic says created, exists, or MISMATCH (an existing topic with other partitions,
    replication or cleanup.policy: nothing is changed, the line says what differs).
    Settings: defaults < --config TOML < STREAMAL_* env < --set and flags, as for serve.

    Exit codes: 0 every topic is as asked; 1 a topic exists with other settings; 2 a
    usage or settings error; 3 the broker stayed unreachable.
    """
    from streamal.service.config import load_settings
    from streamal.service.factory import kafka_client_options
    from streamal.transports.admin import ensure_topics
    from streamal.transports.kafka import wait_for_broker

    settings = load_settings(config, overrides(set_, bootstrap_servers))
    specs = topic_specs(settings, partitions, replication, state)
    client = kafka_client_options(settings.kafka)
    try:
        wait_for_broker(client["bootstrap_servers"], wait)
        reports = ensure_topics(client, specs)
    except TransportError as err:
        typer.echo(f"error: {redact(str(err))}", err=True)
        raise typer.Exit(3) from None
    wanted = {s.name: s for s in specs}
    mismatched = 0
    for report in reports:
        spec = wanted[report.name]
        what = f"{spec.partitions} partition{'s' if spec.partitions > 1 else ''}"
        what += f", replication {spec.replication}"
        what += "".join(f", {k}={v}" for k, v in spec.configs.items())
        if report.status == "mismatch":
            mismatched += 1
            typer.echo(f"MISMATCH {report.name}: {report.detail} (asked for {what})", err=True)
        else:
            typer.echo(f"{report.status:8} {report.name} ({what})")
    if mismatched:
        typer.echo(
            f"error: {mismatched} existing topic(s) differ from the settings; nothing was "
            "changed. Alter them (kafka-topics.sh --alter --partitions N, kafka-configs.sh "
            "--alter --add-config cleanup.policy=compact) or name other topics",
            err=True,
        )
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``topics`` (with ``topics create``) to the ``streamal`` app."""
    topics_app.command("create")(create_command)
    app.add_typer(topics_app)
