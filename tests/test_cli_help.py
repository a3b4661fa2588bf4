"""Every command's --help renders (rich markup in help texts must be escaped)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from streamal.cli.app import app

COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)  # type: ignore[union-attr]


def test_top_level_help_lists_every_command() -> None:
    out = CliRunner().invoke(app, ["--help"])
    assert out.exit_code == 0
    for name in COMMANDS:
        assert name in out.output


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help_renders(command: str) -> None:
    out = CliRunner().invoke(app, [command, "--help"])
    assert out.exit_code == 0, out.output
    assert "Usage" in out.output
