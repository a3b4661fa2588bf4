"""``streamal strategies``: the catalog of strategies, budget managers and window selectors."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from streamal.core.registry import BUDGETS, SELECTORS, STRATEGIES, Entry

__all__ = ["catalog", "register"]


def _needs(entry: Entry) -> str:
    factory = entry.factory
    if getattr(factory, "needs_ensemble", False) or getattr(factory, "needs_members", False):
        return "ensemble"
    return ""


def catalog() -> dict[str, list[dict[str, Any]]]:
    """Every registered component: name, summary, parameters with their defaults."""
    return {
        kind: [
            {
                "name": e.name,
                "summary": e.summary,
                "parameters": e.parameters(),
                "needs": _needs(e),
            }
            for e in table.values()
        ]
        for kind, table in (
            ("strategies", STRATEGIES),
            ("budgets", BUDGETS),
            ("selectors", SELECTORS),
        )
    }


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items())


def strategies_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the catalog as JSON.")] = False,
) -> None:
    """List the query strategies, budget managers and window selectors with their parameters.

    Use the names with ``streamal replay --strategy NAME --budget NAME``; set parameters
    as ``NAME:k=v,k=v`` (e.g. ``--budget variable_threshold:step=0.02``).
    """
    data = catalog()
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=repr))
        return
    console = Console()
    titles = {
        "strategies": "query strategies (--strategy): how informative is an arrival?",
        "budgets": "budget managers (--budget): do we spend a label? (rate and seed are implied)",
        "selectors": "window selectors (--window W --selector NAME): rate x W of every W at once",
    }
    for kind, rows in data.items():
        table = Table(title=titles[kind], title_justify="left")
        for col in ("name", "what it does", "parameters"):
            table.add_column(col, overflow="fold")
        for row in rows:
            summary = row["summary"] + (" (needs an ensemble)" if row["needs"] else "")
            table.add_row(row["name"], summary, _params(row["parameters"]))
        console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``strategies`` to the app."""
    app.command("strategies")(strategies_command)
