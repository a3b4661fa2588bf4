"""Every metric the service exports is in docs/service.md's metrics table, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from streamal.service.metrics import Metrics

DOC = Path(__file__).resolve().parents[1] / "docs" / "service.md"


def exported_names() -> set[str]:
    registry = CollectorRegistry()
    Metrics(registry)
    names = set()
    for family in registry.collect():
        suffix = {"counter": "_total", "info": "_info"}.get(family.type, "")
        names.add(family.name.removeprefix("streamal_") + suffix)
    return names


def documented_names() -> set[str]:
    text = DOC.read_text()
    table = text[text.index("| metric | type | meaning |") :]
    table = table[: table.index("\n\n")]
    names = set()
    for row in table.splitlines()[2:]:
        first_cell = row.split("|")[1]
        names |= {re.sub(r"\{.*\}", "", name) for name in re.findall(r"`([^`]+)`", first_cell)}
    return names


def test_every_exported_metric_is_documented() -> None:
    exported, documented = exported_names(), documented_names()
    assert len(exported) >= 30
    assert exported - documented == set(), "exported but not in docs/service.md"
    assert documented - exported == set(), "in docs/service.md but not exported"
