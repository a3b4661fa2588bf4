"""``streamal produce``, ``record`` and ``oracle``: the service's companions.

They read the same settings as ``streamal serve`` (``--config``, ``STREAMAL_*``,
``--set``, ``--bootstrap-servers``), so topic names and Kafka security match the
service's. Each companion has its own consumer group. SIGTERM and SIGINT stop them after
the current message; exit codes follow ``serve``: 2 for bad input or settings, 3 when
the broker cannot be reached.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from streamal.cli.errors import friendly_errors
from streamal.cli.serve_cmd import BootstrapOpt, ConfigOpt, SetOpt, overrides
from streamal.exceptions import DecodeError, TransportError
from streamal.messages import Sample, decode_sample

__all__ = [
    "CountOpt",
    "IdleOpt",
    "companion_settings",
    "companion_transports",
    "make_sink",
    "open_samples",
    "register",
    "seconds_delay",
]

SourceArg = Annotated[
    str,
    typer.Argument(
        help="A .jsonl file of samples, a .csv/.tsv file (maybe .gz), a .parquet file, "
        "river:NAME or synth:NAME[:k=v,...] (see `streamal datasets`)."
    ),
]
TargetOpt = Annotated[str | None, typer.Option(help="CSV target column (default: last).")]
TimeColOpt = Annotated[
    str | None, typer.Option("--time", help="CSV column with event time (seconds).")
]
SeedOpt = Annotated[int, typer.Option(help="Seed of synthetic streams (and of oracle noise).")]
CountOpt = Annotated[int | None, typer.Option(help="Stop after this many messages.")]
TimeoutOpt = Annotated[float | None, typer.Option(help="Stop after this many seconds.")]
IdleOpt = Annotated[
    float | None, typer.Option(help="Stop after this many seconds without a query.")
]


def _unlabelled_jsonl(path: Path) -> Iterator[Sample]:
    import gzip

    opened = gzip.open(path, "rb") if path.name.lower().endswith(".gz") else path.open("rb")
    with opened as fh:
        for line, raw in enumerate(fh, start=1):
            if raw.strip():
                try:
                    yield decode_sample(raw)
                except DecodeError as err:
                    raise err.at_row(line) from None


def open_samples(
    spec: str, target: str | None = None, time_col: str | None = None, seed: int = 42
) -> Iterable[Sample]:
    """Samples of a source spec; unlike replay, a JSONL file's samples may lack ``y``.

    A missing file or unknown stream is reported here, before any connection is made.

    Examples
    --------
    >>> next(iter(open_samples("synth:Agrawal:n=5"))).id
    '0'
    """
    path = Path(spec)
    if path.name.lower().removesuffix(".gz").endswith((".jsonl", ".ndjson")) and path.is_file():
        return _unlabelled_jsonl(path)
    from streamal.offline.streams import open_source

    return open_source(spec, target=target, time=time_col, seed=seed)


@contextmanager
def _stop_on_signals() -> Iterator[Callable[[], bool]]:
    """Yield ``should_stop``; SIGTERM/SIGINT set it instead of killing the process."""
    stopping = {"flag": False}

    def handler(signum: int, frame: FrameType | None) -> None:
        stopping["flag"] = True

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield lambda: stopping["flag"]
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def companion_settings(
    config: Path | None, sets: list[str] | None, bootstrap: str | None, **kafka: Any
) -> Any:
    from streamal.service.config import load_settings

    extra = overrides(sets, bootstrap)
    extra["kafka"] = {**extra.get("kafka", {}), **kafka}
    return load_settings(config, extra)


def make_sink(settings: Any) -> Any:
    """A Kafka producer configured like the service's (connection, security, extras)."""
    from streamal.service.factory import kafka_client_options
    from streamal.transports.kafka import KafkaSink

    # Give up connecting after as long as the service tolerates an unreachable broker.
    options = {
        "max_block_ms": settings.kafka.max_block_ms,
        "bootstrap_timeout_ms": int(settings.service.broker_timeout * 1000),
        **settings.kafka.producer,
    }
    return KafkaSink(kafka_client_options(settings.kafka), options)


def companion_transports(settings: Any) -> tuple[Any, Any]:
    from streamal.service.factory import build_transports

    try:
        return build_transports(settings)  # type: ignore[no-any-return]
    except TransportError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(3) from None


@friendly_errors
def produce_command(
    source: SourceArg,
    rate: Annotated[
        float, typer.Option(help="Messages per second; 0 sends as fast as possible.")
    ] = 0.0,
    limit: Annotated[int | None, typer.Option(help="Send at most this many samples.")] = None,
    keep_y: Annotated[
        bool, typer.Option(help="Keep the true label y in the messages (a live stream has none).")
    ] = False,
    topic: Annotated[str | None, typer.Option(help="Topic (default: topics.samples).")] = None,
    target: TargetOpt = None,
    time_col: TimeColOpt = None,
    seed: SeedOpt = 42,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    bootstrap_servers: BootstrapOpt = None,
) -> None:
    """Replay a recorded or built-in stream into the samples topic, keyed by sample id."""
    from streamal.companions.loops import produce

    settings = companion_settings(config, set_, bootstrap_servers)
    samples = open_samples(source, target, time_col, seed)
    dest = topic or settings.topics.samples
    try:
        sink = make_sink(settings)
    except TransportError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(3) from None
    started = time.monotonic()
    with _stop_on_signals() as should_stop:
        try:
            sent = produce(
                samples,
                sink,
                dest,
                rate=rate or None,
                keep_y=keep_y,
                limit=limit,
                should_stop=should_stop,
            )
        finally:
            sink.close(settings.kafka.max_block_ms / 1000)
    took = time.monotonic() - started
    typer.echo(
        f"sent {sent} samples to {dest} in {took:.1f} s ({sent / max(took, 1e-9):.0f}/s)", err=True
    )


@friendly_errors
def record_command(
    topic: Annotated[str, typer.Argument(help="Topic to dump, e.g. streamal.samples.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="JSONL file ('-': stdout).")
    ] = Path("-"),
    count: CountOpt = None,
    idle: Annotated[
        float, typer.Option(help="Stop after this many seconds without a message.")
    ] = 3.0,
    follow: Annotated[bool, typer.Option(help="Keep recording until SIGINT/SIGTERM.")] = False,
    headers: Annotated[
        bool | None,
        typer.Option(
            "--headers/--no-headers",
            help="Write each message as {headers, value} (default: dead letters only).",
            show_default=False,
        ),
    ] = None,
    timeout: TimeoutOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    bootstrap_servers: BootstrapOpt = None,
) -> None:
    """Dump a topic from its first message to JSON lines (for `produce` or `replay`).

    Reading uses a fresh consumer group and commits nothing. Samples recorded with their
    y (see `produce --keep-y`) can be replayed offline with `streamal replay`. Dead
    letters keep their headers (reason, error, origin): each line is {"headers": ...,
    "value": ...}.
    """
    import uuid

    from streamal.companions.loops import record

    group = f"streamal-record-{uuid.uuid4().hex[:8]}"
    source, sink = companion_transports(
        companion_settings(config, set_, bootstrap_servers, group_id=group)
    )
    sink.close(1.0)
    out = sys.stdout if str(output) == "-" else output.open("w", encoding="utf-8")
    try:
        with _stop_on_signals() as should_stop:
            written, skipped = record(
                source,
                topic,
                out,
                count=count,
                idle=None if follow else idle,
                timeout=timeout,
                should_stop=should_stop,
                headers=headers,
            )
    finally:
        source.close()
        if out is not sys.stdout:
            out.close()
    note = f" ({skipped} non-JSON skipped)" if skipped else ""
    typer.echo(f"recorded {written} messages from {topic}{note}", err=True)


def seconds_delay(delay: str) -> Any:
    """A delay spec read in seconds: ``"2"`` means two seconds, like ``"2s"``."""
    from dataclasses import replace

    from streamal.offline.oracle import parse_delay

    parsed = parse_delay(delay)
    return parsed if parsed.seconds else replace(parsed, seconds=True)


@friendly_errors
def oracle_command(
    source: SourceArg,
    delay: Annotated[
        str, typer.Option(help="Answer delay in seconds: 2s (or 2), exp:1s, uniform:0.5s:3s.")
    ] = "1s",
    noise: Annotated[float, typer.Option(help="Probability of a wrong label.")] = 0.0,
    group: Annotated[str, typer.Option(help="Consumer group of the oracle.")] = "streamal-oracle",
    count: CountOpt = None,
    idle: IdleOpt = None,
    timeout: TimeoutOpt = None,
    target: TargetOpt = None,
    time_col: TimeColOpt = None,
    seed: SeedOpt = 42,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    bootstrap_servers: BootstrapOpt = None,
) -> None:
    """A simulated annotator: answer queries with SOURCE's true labels after a delay.

    SOURCE must be the stream `streamal produce` sent (same spec and seed), so that the
    sample ids match. Queries for unknown ids are left unanswered (and counted).
    """
    from streamal.companions.annotators import OracleAnswerer
    from streamal.companions.loops import answer_queries
    from streamal.offline.oracle import SimulatedOracle
    from streamal.offline.streams import open_source

    truth = {s.id: s.y for s in open_source(source, target=target, time=time_col, seed=seed)}
    oracle = SimulatedOracle(seconds_delay(delay), noise=noise, seed=seed)
    settings = companion_settings(config, set_, bootstrap_servers, group_id=group, client_id=group)
    source_, sink = companion_transports(settings)
    typer.echo(
        f"oracle: {len(truth)} labels from {source}, delay {oracle.delay}, noise {noise}; "
        f"answering {settings.topics.queries} -> {settings.topics.labels}",
        err=True,
    )
    try:
        with _stop_on_signals() as should_stop:
            stats = answer_queries(
                source_,
                sink,
                settings.topics.queries,
                settings.topics.labels,
                OracleAnswerer(truth, oracle),
                count=count,
                idle=idle,
                timeout=timeout,
                should_stop=should_stop,
            )
    finally:
        source_.close()
        sink.close(settings.kafka.max_block_ms / 1000)
    typer.echo(
        f"oracle: {stats.queries} queries, {stats.labels} labels "
        f"({oracle.flipped} flipped by noise), {stats.unanswered} unknown ids, "
        f"{stats.undecodable} undecodable",
        err=True,
    )


def register(app: typer.Typer) -> None:
    """Add ``produce``, ``record`` and ``oracle`` to the app."""
    app.command("produce")(produce_command)
    app.command("record")(record_command)
    app.command("oracle")(oracle_command)
