"""The ``streamal`` command: one typer app, commands registered from small modules.

Each module in :data:`COMMAND_MODULES` defines ``register(app: typer.Typer) -> None``.
"""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from streamal import __version__

__all__ = ["COMMAND_MODULES", "app", "main"]

#: Modules that add commands to the app, in the order they appear in ``--help``.
COMMAND_MODULES = [
    "streamal.cli.replay_cmd",
    "streamal.cli.info_cmd",
    "streamal.cli.serve_cmd",
    "streamal.cli.topics_cmd",
    "streamal.cli.catalog_cmd",
    "streamal.cli.companions_cmd",
    "streamal.cli.annotate_cmd",
    "streamal.cli.label_cmd",
    "streamal.cli.bridge_cmd",
    "streamal.cli.demo_cmd",
    "streamal.cli.export_cmd",
]

app = typer.Typer(
    name="streamal",
    help="Stream-based online active learning: replay recorded streams, serve on Kafka.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"streamal {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Options of the ``streamal`` command itself (before any subcommand)."""


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    """Entry point of the ``streamal`` console script."""
    app()
