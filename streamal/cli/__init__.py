"""The ``streamal`` command line (typer + rich)."""
