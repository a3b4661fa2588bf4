"""Helpers shared by the test modules (``tests`` is on ``sys.path``: ``pythonpath`` in pyproject).

``wait_until`` polls a check until it returns something true; ``ServeProcess`` is one
``streamal serve`` subprocess (the ``serve_process`` fixture in ``conftest.py`` starts and
stops them); ``labelling_serve_env`` is the service the labelling tests run.
"""

from __future__ import annotations

import math
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any


def documented_allowance(rate: float, initial: int, repay: int, n: int) -> int:
    """``reserve_quantile``'s cumulative promise after ``n`` arrivals, as its docstring
    and the README state it, written out independently of the code."""
    k = math.floor(rate * initial + 1e-9)
    if n >= repay:
        return math.floor(rate * n + 1e-9)
    if repay == initial:
        return max(math.floor(rate * n + 1e-9), k)
    return math.floor(rate * n + k * (1 - n / repay) + 1e-9)


def default_budget_bound(rate: float, n: int) -> int:
    """Most labels the default budget may have bought after ``n`` arrivals at ``rate``.

    Its stated promise: ``floor(rate · n)``, raised by its initial allowance until that
    is paid back (README, "What it promises"; ``BudgetManager.promised``).
    """
    from streamal.core.registry import make_budget
    from streamal.defaults import DEFAULT_BUDGET

    return make_budget(DEFAULT_BUDGET, rate=rate, seed=0).promised(n)


def wait_until(
    check: Callable[[], Any],
    timeout: float,
    what: str,
    interval: float = 0.1,
    log: Path | None = None,
) -> Any:
    """Return the first true value of ``check()``, polled every ``interval`` seconds.

    Raises ``AssertionError`` naming ``what`` when ``timeout`` seconds pass first, with
    the last lines of ``log`` (e.g. a ``ServeProcess``'s) when given: CI keeps no files.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    tail = "" if log is None else "\n" + "\n".join(log.read_text().splitlines()[-30:])
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{tail}")


def labelling_serve_env(broker: Any, topics: dict[str, str]) -> dict[str, str]:
    """``serve`` settings of the labelling tests: logreg, every query asked, spam or ham.

    ``broker`` is the ``kafka_broker`` fixture; ``topics`` maps ``TOPICS__SAMPLES`` (and
    the other topic settings) to names.
    """
    return dict(
        broker.env(
            KAFKA__GROUP_ID=broker.unique("serve"),
            LEARNER__MODEL="logreg",
            LEARNER__BUDGET="full",
            LEARNER__CLASSES='["spam", "ham"]',
            CHECKPOINT__INTERVAL="0.2",
            SERVICE__HTTP_HOST="127.0.0.1",
            SERVICE__HEALTH_INTERVAL="0.5",
            **topics,
        )
    )


class ServeProcess:
    """``streamal serve`` in a subprocess, its log in a file, its HTTP port read from it.

    The log is ``serve-<hex>.log`` next to ``state``; the port must show in it within
    ``startup`` seconds.
    """

    def __init__(self, env: dict[str, str], state: Path, startup: float = 30) -> None:
        self.log = state.parent / f"serve-{uuid.uuid4().hex[:8]}.log"
        code = "from streamal.cli.app import main; main()"
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", code, "serve", "--checkpoint-dir", str(state)]
                + ["--http-port", "0"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + startup
        while time.monotonic() < deadline:
            found = re.search(r"on http://[0-9.]+:(\d+)", self.log.read_text())
            if found:
                self.port = int(found.group(1))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.proc.kill()
        raise AssertionError(f"serve did not start:\n{self.log.read_text()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def metric(self, name: str, **labels: str) -> float:
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        pattern = re.escape(name + (f"{{{want}}}" if want else "")) + r" (\S+)"
        found = re.search(r"^" + pattern + "$", self.get("/metrics")[1], re.M)
        return float(found.group(1)) if found else 0.0

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except BaseException:
            self.proc.kill()
            self.proc.wait(10)
            raise


def memory_group_broker(topics: Any, samples_partitions: int = 2, side_partitions: int = 2) -> Any:
    """An in-memory broker with the topics of a scale-out group (``topics``: ``Topics``)
    and its state topic ``streamal.state``."""
    from streamal.transports import MemoryBroker

    broker = MemoryBroker()
    broker.create_topic(topics.samples, partitions=samples_partitions)
    for name in (topics.queries, topics.labels):
        broker.create_topic(name, partitions=side_partitions)
    broker.create_topic("streamal.state")
    return broker


def memory_group_member(
    broker: Any,
    folder: Path,
    name: str,
    spec: Any,
    topics: Any,
    *,
    decider_seed: int,
    key: bytes | None = None,
    limits: Any = None,
) -> Any:
    """One ``GroupService`` over in-memory transports: the replica is built from ``spec``
    (a ``LearnerSpec``), partition ``p``'s decider from ``spec`` with seed
    ``decider_seed + p``; its checkpoints go to ``folder / name``."""
    from dataclasses import replace

    from streamal.core.checkpoint import Checkpointer
    from streamal.core.spec import build_active_learner, build_learner
    from streamal.service.group import GroupService
    from streamal.service.loop import LoopPolicy
    from streamal.transports import MemoryReader, MemorySink, MemorySource

    return GroupService(
        build_learner(spec),
        MemorySource(broker, share=True),
        MemorySink(broker),
        Checkpointer(folder / name),
        topics,
        LoopPolicy(tune_gc=False),
        config_hash="h",
        limits=limits,
        reader=MemoryReader(broker),
        state_reader=MemoryReader(broker),
        new_decider=lambda p: build_active_learner(replace(spec, seed=decider_seed + p)),
        instance_id=name,
        key=key,
    )
