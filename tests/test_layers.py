"""The pure core imports no edge library; the public surface is guarded."""

from __future__ import annotations

import subprocess
import sys

import streamal

CORE = [
    "streamal", "streamal.messages", "streamal.exceptions", "streamal.models",
    "streamal.strategies", "streamal.budgets", "streamal.pending", "streamal.learner",
    "streamal.registry", "streamal.sources", "streamal.oracle", "streamal.replay",
    "streamal.checkpoint", "streamal.window",
]


def test_core_imports_no_kafka_prometheus_or_settings() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in CORE)
        + "bad = [m for m in ('kafka', 'prometheus_client', 'pydantic_settings', 'typer')"
        " if m in sys.modules]\nprint(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""


def test_public_names_are_sorted_and_exist() -> None:
    names = streamal.__all__
    assert list(names) == sorted(names)
    for name in names:
        assert hasattr(streamal, name), name
