"""The pure core imports no edge library; the public surface is guarded."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import streamal

ROOT = Path(streamal.__file__).parent
#: Folders (and root modules) of the pure side: no Kafka, Prometheus, settings or CLI.
PURE = ("core", "window", "offline", "strategies", "budgets")
PURE_ROOT = ("streamal", "streamal.messages", "streamal.exceptions", "streamal.defaults")
#: What the pure side may not import from streamal itself (the edges and the tools).
EDGES = (
    "streamal.transports",
    "streamal.service",
    "streamal.cli",
    "streamal.companions",
    "streamal.dev",
)


def _modules(folder: str) -> list[str]:
    return [f"streamal.{folder}"] + [
        f"streamal.{folder}.{info.name}" for info in pkgutil.iter_modules([str(ROOT / folder)])
    ]


CORE = [*PURE_ROOT, *(m for folder in PURE for m in _modules(folder))]


def test_core_imports_no_kafka_prometheus_or_settings() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in CORE)
        + "bad = [m for m in ('kafka', 'prometheus_client', 'pydantic_settings', 'typer')"
        " if m in sys.modules]\nprint(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_pure_side_imports_no_edge_module() -> None:
    bad = []
    for folder in PURE:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for name in _imported(path):
                if name.startswith(EDGES):
                    bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert bad == []


def test_public_names_are_sorted_and_exist() -> None:
    names = streamal.__all__
    assert list(names) == sorted(names)
    for name in names:
        assert hasattr(streamal, name), name
