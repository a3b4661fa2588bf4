"""Batching, checkpoint and failure timings of the service loop."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LoopPolicy"]


@dataclass(frozen=True)
class LoopPolicy:
    """Batching, checkpoint and failure timings of the loop (all times in seconds).

    Examples
    --------
    >>> LoopPolicy(commit_every=50).commit_interval
    1.0

    ``max_batch`` bounds one poll, so labels wait for at most one batch of samples and a
    revoke waits for at most one batch. ``poll_timeout`` bounds how late a ``stop()`` is
    noticed. ``commit_every``/``commit_interval`` bound the work redone after a crash
    and how long a query waits before it is published: by default a checkpoint runs
    once a second, or sooner after 50,000 messages, so a query is out within about a
    second (what a checkpoint costs is measured in ``docs/benchmarks.md``, "Figures
    behind design choices"). ``broker_timeout`` is how long the broker may be unreachable before the
    service exits non-zero (so that an orchestrator restarts it); ``health_interval`` is
    how often it is probed when idle.
    ``flush_timeout`` bounds each flush, including the one on a graceful stop.
    A loop turn longer than ``stall_timeout`` marks the process unhealthy.
    Dead letters larger than ``dead_letter_max_bytes`` are cut (below Kafka's default
    1 MB message limit). ``tune_gc`` lets the first run tune the garbage collector
    (see :func:`streamal.service.loop.tune_gc`).
    """

    max_batch: int = 500
    poll_timeout: float = 0.5
    commit_every: int = 50_000
    commit_interval: float = 1.0
    broker_timeout: float = 60.0
    health_interval: float = 5.0
    flush_timeout: float = 10.0
    stall_timeout: float = 120.0
    dead_letter_max_bytes: int = 900_000
    tune_gc: bool = True
