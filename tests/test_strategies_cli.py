"""``streamal strategies`` lists every registered component with its parameters."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from streamal.cli.app import app
from streamal.core.registry import BUDGETS, STRATEGIES
from streamal.window import SELECTORS


def test_lists_every_component_with_parameters() -> None:
    result = CliRunner().invoke(app, ["strategies"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in [*STRATEGIES, *BUDGETS, *SELECTORS]:
        assert name in result.output
    assert "budget_window=100" in result.output
    assert "needs an ensemble" in result.output


def test_json_catalog() -> None:
    result = CliRunner().invoke(app, ["strategies", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [e["name"] for e in data["strategies"]] == list(STRATEGIES)
    assert [e["name"] for e in data["budgets"]] == list(BUDGETS)
    bald = next(e for e in data["strategies"] if e["name"] == "bald")
    assert bald["needs"] == "ensemble"
    capped = next(e for e in data["budgets"] if e["name"] == "capped")
    assert capped["parameters"]["max_pending"] is None
    assert all(e["summary"] for kind in data.values() for e in kind)
