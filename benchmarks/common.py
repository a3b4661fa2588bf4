"""Helpers shared by the benchmarks: the machine, streams held in memory, a results cache."""

from __future__ import annotations

import itertools
import json
import os
import platform
import statistics
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from streamal.messages import Sample
from streamal.offline.streams import open_source

ROOT = Path(__file__).resolve().parent.parent
ELEC = Path(os.environ.get("STREAMAL_ELEC2", "/work/shared/data/elec.csv"))


def machine() -> dict[str, Any]:
    """What the benchmark ran on: CPU model, cores, memory, Python, river, load."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = int(line.split()[1]) / 2**20
    except OSError:
        pass
    import river

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "python": platform.python_version(),
        "river": river.__version__,
        "platform": platform.platform(),
        "load": os.getloadavg(),
    }


def materialize(source: str, seed: int, n: int | None) -> list[Sample]:
    """The first ``n`` samples of ``source`` (seeded), held in memory so that the timed
    replay measures the learner, not CSV parsing or stream generation."""
    return list(itertools.islice(open_source(source, seed=seed), n))


def cache_key(row: dict[str, Any], fields: Iterable[str]) -> str:
    """A stable key of the identifying ``fields`` of a result row."""
    return json.dumps([row[f] for f in fields])


class ResultCache:
    """Results appended one JSON object a line; a rerun skips what is already there."""

    def __init__(self, path: Path, fields: tuple[str, ...]) -> None:
        self.path = path
        self.fields = fields
        self.rows: dict[str, dict[str, Any]] = {}
        if path.is_file():
            for line in path.read_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.rows[cache_key(row, fields)] = row

    def __contains__(self, key: str) -> bool:
        return key in self.rows

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as fh:
            for row in rows:
                self.rows[cache_key(row, self.fields)] = row
                fh.write(json.dumps(row) + "\n")


def mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and population standard deviation (0 for a single value)."""
    return statistics.fmean(values), statistics.pstdev(values) if len(values) > 1 else 0.0


def progress(done: int, total: int, what: str) -> None:
    """A one-line progress note on stderr."""
    print(f"\r[{done}/{total}] {what:<70}", end="", file=sys.stderr, flush=True)


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    """``items`` in consecutive lists of at most ``size``."""
    for i in range(0, len(items), size):
        yield items[i : i + size]
