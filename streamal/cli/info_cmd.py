"""``streamal datasets`` and ``streamal schema``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from streamal.cli.errors import friendly_errors
from streamal.messages import encode, json_schemas
from streamal.offline.streams import BUNDLED, SYNTHETIC, open_source

__all__ = ["register"]


@friendly_errors
def datasets_command(
    export: Annotated[
        str | None,
        typer.Option(help="Export this stream (e.g. river:Phishing or synth:SEA:n=5000) to JSONL."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output file for --export (default stdout).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of synthetic streams.")] = 42,
) -> None:
    """List the built-in streams, or export one to JSONL (one Sample with its y per line)."""
    if export is not None:
        source = open_source(export, seed=seed)
        if out is None:
            for sample in source:
                typer.echo(encode(sample).decode())
            return
        with out.open("wb") as fh:
            n = 0
            for sample in source:
                fh.write(encode(sample) + b"\n")
                n += 1
        typer.echo(f"wrote {n} samples to {out}", err=True)
        return
    from river import datasets

    table = Table(title="built-in streams (use as SOURCE)")
    for col in ("source", "samples", "features", "task"):
        table.add_column(col)
    for name in BUNDLED:
        d = getattr(datasets, name)()
        table.add_row(f"river:{name}", str(d.n_samples), str(d.n_features), d.task)
    for name, (_, description) in SYNTHETIC.items():
        table.add_row(f"synth:{name}", "n (default 20000)", "", description)
    Console().print(table)


def schema_command(
    message: Annotated[
        str | None, typer.Argument(help="Sample, Query or Label (default: all).")
    ] = None,
) -> None:
    """Print the JSON Schemas of the wire messages."""
    schemas = json_schemas()
    if message is not None:
        if message not in schemas:
            typer.echo(
                f"error: unknown message {message!r}; use one of {', '.join(schemas)}", err=True
            )
            raise typer.Exit(2)
        typer.echo(json.dumps(schemas[message], indent=2))
        return
    typer.echo(json.dumps(schemas, indent=2))


def register(app: typer.Typer) -> None:
    """Add ``datasets`` and ``schema`` to the app."""
    app.command("datasets")(datasets_command)
    app.command("schema")(schema_command)
