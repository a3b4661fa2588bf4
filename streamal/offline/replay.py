"""Offline replay: prequential evaluation of active learning on a recorded stream.

Every sample is first predicted (test), then offered to the learner, which may query
it; a :class:`~streamal.offline.oracle.SimulatedOracle` answers queries with the recorded label
after a delay, and the learner learns when the label arrives (train). Accuracy counts
every predicted sample, queried or not. Arrivals the model could not predict yet (an
empty posterior: before its first label, for most river models) are counted apart, as
``unpredicted``, and left out of the accuracy, as :func:`river.evaluate.progressive_val_score`
leaves them out.

:func:`iter_replay` is the generator (progress every ``step`` samples); :func:`replay`
wraps it; :func:`run` and :func:`compare` build everything from specs, as the CLI does.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from streamal.core.learner import ActiveLearner
from streamal.core.protocol import Learner
from streamal.core.spec import LearnerSpec, WindowSpec, build_active_learner
from streamal.core.spec import build_learner as build_from_spec
from streamal.defaults import (
    DEFAULT_BUDGET,
    DEFAULT_MODEL,
    DEFAULT_RATE,
    DEFAULT_SEED,
    DEFAULT_STRATEGY,
)
from streamal.exceptions import ConfigError
from streamal.messages import Sample
from streamal.offline.oracle import SimulatedOracle
from streamal.offline.streams import open_source

__all__ = [
    "CurvePoint",
    "Progress",
    "ReplayConfig",
    "ReplayResult",
    "RunSpec",
    "build_learner",
    "compare",
    "gap_closed",
    "iter_replay",
    "parse_run",
    "plan",
    "replay",
    "run",
    "warm_start_data",
]

#: Window of the moving accuracy in learning curves, in samples.
ACCURACY_WINDOW = 1000


@dataclass(slots=True)
class Progress:
    """Where a replay stands."""

    samples: int = 0
    labels_used: int = 0
    correct: int = 0
    #: Arrivals without a prediction (an empty posterior), left out of the accuracy.
    unpredicted: int = 0
    window_correct: int = 0
    window_size: int = 0
    seconds: float = 0.0

    @property
    def accuracy(self) -> float:
        """Prequential accuracy over every predicted sample so far."""
        predicted = self.samples - self.unpredicted
        return self.correct / predicted if predicted > 0 else 0.0

    @property
    def window_accuracy(self) -> float:
        """Prequential accuracy over the last :data:`ACCURACY_WINDOW` predicted samples."""
        return self.window_correct / self.window_size if self.window_size else 0.0


@dataclass(frozen=True)
class CurvePoint:
    """One point of a learning curve."""

    samples: int
    labels_used: int
    accuracy: float
    window_accuracy: float


def iter_replay(
    stream: Iterable[Sample],
    learner: Learner,
    oracle: SimulatedOracle,
    step: int = 500,
) -> Iterator[Progress]:
    """Replay ``stream`` through ``learner``; yield progress every ``step`` samples and at the end.

    ``learner`` is a :class:`~streamal.core.protocol.Learner`: an active learner, or a
    window learner, whose queries chosen when a window closes (``take_queried()``) are
    sent to the oracle as well.
    """
    progress = Progress()
    recent: deque[bool] = deque()
    started = time.perf_counter()
    index = -1
    last_ts: float | None = None
    for index, sample in enumerate(stream):
        ts = last_ts = sample.ts
        if len(oracle):
            for label in oracle.due(index, ts):
                learner.learn(label)
        decision = learner.process(sample)
        y = sample.y
        prediction = decision.prediction
        if prediction is None:
            progress.unpredicted += 1
        else:
            hit = prediction == y
            progress.correct += hit
            progress.window_correct += hit
            recent.append(hit)
            if len(recent) > ACCURACY_WINDOW:
                progress.window_correct -= recent.popleft()
        if decision.queried:
            progress.labels_used += 1
            oracle.ask(sample.id, y, index, ts)
        for chosen, _ in learner.take_queried():  # window mode
            progress.labels_used += 1
            oracle.ask(chosen.id, chosen.y, index, ts)
        if (index + 1) % step == 0:
            progress.samples = index + 1
            progress.window_size = len(recent)
            progress.seconds = time.perf_counter() - started
            yield progress
    # The stream ends: close an open window, then deliver the labels due by now
    # (with no delay, the last arrival's label), as a live oracle would.
    if index >= 0:
        for chosen, _ in learner.finish():
            progress.labels_used += 1
            oracle.ask(chosen.id, chosen.y, index, last_ts)
    for label in oracle.due(index + 1, last_ts):
        learner.learn(label)
    if (index + 1) % step != 0:
        progress.samples = index + 1
        progress.window_size = len(recent)
        progress.seconds = time.perf_counter() - started
        yield progress


@dataclass
class ReplayResult:
    """The outcome of one replay run."""

    name: str
    source: str
    model: str
    strategy: str
    budget: str
    rate: float
    delay: str
    seed: int
    samples: int
    labels_used: int
    label_rate: float
    accuracy: float
    seconds: float
    us_per_sample: float
    stats: dict[str, int] = field(default_factory=dict)
    curve: list[CurvePoint] = field(default_factory=list)
    #: Accuracy estimates from the labels alone (:class:`~streamal.core.evaluation.LabelEvaluation`
    #: since the start): what an operator sees live, to compare with ``accuracy``.
    estimates: dict[str, float | int | None] = field(default_factory=dict)
    audit: float = 0.0
    #: Arrivals without a prediction (before the first label, for most models): not
    #: counted in ``accuracy``, as river's progressive validation skips them.
    unpredicted: int = 0
    #: Window mode: the selector spec and the window length (``None`` otherwise).
    selector: str | None = None
    window: int | None = None

    @property
    def components(self) -> str:
        """What decided the queries: ``strategy / budget``, or the selector in window mode."""
        if self.selector is not None:
            return f"{self.strategy} / {self.selector} (window {self.window})"
        return f"{self.strategy} / {self.budget}"

    #: Labels learned by the warm start before the stream (not in ``labels_used``).
    warm_start_labels: int = 0
    #: Whether the warm-start labels were charged to the budget.
    warm_start_charged: bool = False

    def summary(self) -> dict[str, Any]:
        """The result as a JSON-ready dict, without the curve."""
        out = asdict(self)
        out.pop("curve")
        return out


def replay(
    stream: Iterable[Sample],
    learner: Learner,
    oracle: SimulatedOracle,
    step: int = 500,
    on_progress: Callable[[Progress], None] | None = None,
) -> tuple[Progress, list[CurvePoint]]:
    """Run :func:`iter_replay` to the end; return the final progress and the learning curve.

    ``on_progress`` is called with the progress every ``step`` samples (for progress bars).
    """
    curve: list[CurvePoint] = []
    last = Progress()
    for last in iter_replay(stream, learner, oracle, step):
        curve.append(
            CurvePoint(last.samples, last.labels_used, last.accuracy, last.window_accuracy)
        )
        if on_progress is not None:
            on_progress(last)
    return last, curve


@dataclass(frozen=True)
class RunSpec:
    """One run of a comparison: a name, a strategy spec, a budget spec and its rate."""

    name: str
    strategy: str
    budget: str
    rate: float


def parse_run(entry: str, rate: float, default_budget: str = DEFAULT_BUDGET) -> RunSpec:
    """Parse a ``--compare`` entry: ``random``, ``full`` or ``STRATEGY[/BUDGET]``.

    Examples
    --------
    >>> parse_run("margin/random", 0.1)
    RunSpec(name='margin/random', strategy='margin', budget='random', rate=0.1)
    >>> parse_run("full", 0.1).rate
    1.0
    """
    entry = entry.strip()
    if entry == "random":
        return RunSpec("random", "random", "random", rate)
    if entry == "full":
        return RunSpec("full", "random", "full", 1.0)
    strategy, _, budget = entry.partition("/")
    if not strategy:
        raise ConfigError(f"bad --compare entry {entry!r}; use random, full or STRATEGY[/BUDGET]")
    return RunSpec(entry, strategy, budget or default_budget, rate)


@dataclass(frozen=True)
class ReplayConfig:
    """Everything a replay run needs, as specs (what the CLI takes)."""

    source: str
    model: str = DEFAULT_MODEL
    strategy: str = DEFAULT_STRATEGY
    budget: str = DEFAULT_BUDGET
    rate: float = DEFAULT_RATE
    delay: str = "0"
    seed: int = DEFAULT_SEED
    noise: float = 0.0
    ttl: float | None = None
    target: str | None = None
    time: str | None = None
    limit: int | None = None
    step: int = 500
    window: int | None = None
    #: Window-mode selector (``None``: ``topk``); an error without ``window``.
    selector: str | None = None
    audit: float = 0.0
    #: Labelled source learned before the stream (a file or any source spec).
    warm_start: str | None = None
    #: Learn only the first this many rows of ``warm_start``; without ``warm_start``,
    #: the first this many rows of ``source`` are learned and the replay starts after them.
    warm_start_first: int | None = None
    #: Charge the warm-start labels to the budget.
    warm_start_charge: bool = False

    def learner_spec(self, run: RunSpec | None = None) -> LearnerSpec:
        """The learner of ``run`` (default: the config's own components) on this config.

        Window mode (``window``) applies to every run but the ``full`` baseline, and the
        audit slice to every run but ``full``.
        """
        run = run or RunSpec("main", self.strategy, self.budget, self.rate)
        full = run.budget == "full"
        window = (
            None
            if self.window is None or full
            else WindowSpec(self.selector or "topk", self.window)
        )
        return LearnerSpec(
            model=self.model,
            strategy=run.strategy,
            budget=run.budget,
            rate=run.rate,
            seed=self.seed,
            ttl=self.ttl,
            audit=0.0 if full else self.audit,
            window=window,
        )


def build_learner(
    model: str,
    strategy: str,
    budget: str,
    rate: float,
    seed: int,
    ttl: float | None = None,
    audit: float = 0.0,
    classes: Sequence[Any] | None = None,
) -> ActiveLearner:
    """An :class:`ActiveLearner` from specs, every part seeded with ``seed``.

    A shorthand for :func:`streamal.core.spec.build_active_learner` with a
    :class:`~streamal.core.spec.LearnerSpec` of these fields.
    """
    return build_active_learner(
        LearnerSpec(
            model,
            strategy,
            budget,
            rate,
            seed,
            ttl,
            audit,
            classes=None if classes is None else tuple(classes),
        )
    )


def _limited(stream: Iterable[Sample], limit: int | None, skip: int = 0) -> Iterator[Sample]:
    for i, sample in enumerate(itertools.islice(stream, skip, None)):
        if limit is not None and i >= limit:
            return
        yield sample


def warm_start_data(config: ReplayConfig) -> tuple[list[Sample], int]:
    """The warm-start samples of ``config`` and how many rows of the source they take.

    Examples
    --------
    >>> seed, skip = warm_start_data(ReplayConfig("synth:SEA:n=500", warm_start_first=50))
    >>> len(seed), skip, seed[0].y is not None
    (50, 50, True)
    """
    first = config.warm_start_first
    if first is not None and first < 0:
        raise ConfigError(f"warm_start_first must be at least 0, got {first}")
    if config.warm_start is None:
        if first is None:
            return [], 0
        source = open_source(
            config.source, target=config.target, time=config.time, seed=config.seed
        )
        return list(itertools.islice(source, first)), first
    source = open_source(
        config.warm_start, target=config.target, time=config.time, seed=config.seed
    )
    rows = list(itertools.islice(source, first))
    for sample in rows:
        if sample.y is None:
            raise ConfigError(f"warm-start sample {sample.id!r} in {config.warm_start} has no y")
    return rows, 0


def run(
    config: ReplayConfig,
    spec: RunSpec | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> ReplayResult:
    """Replay ``config.source`` with the run ``spec`` (default: the config's own components)."""
    spec = spec or RunSpec("main", config.strategy, config.budget, config.rate)
    if config.selector is not None and config.window is None:
        raise ConfigError("--selector chooses in window mode only; give --window N as well")
    source = open_source(config.source, target=config.target, time=config.time, seed=config.seed)
    learner_spec = config.learner_spec(spec)
    learner = build_from_spec(learner_spec)
    selector = learner_spec.window.selector if learner_spec.window is not None else None
    seed, skip = warm_start_data(config)
    if seed:
        learner.warm_start(seed, charge=config.warm_start_charge and spec.budget != "full")
    oracle = SimulatedOracle(config.delay, noise=config.noise, seed=config.seed)
    final, curve = replay(
        _limited(source, config.limit, skip), learner, oracle, config.step, on_progress
    )
    stats = learner.stats
    return ReplayResult(
        name=spec.name,
        source=config.source,
        model=config.model,
        strategy=spec.strategy,
        budget=spec.budget,
        rate=spec.rate,
        delay=str(oracle.delay),
        seed=config.seed,
        samples=final.samples,
        labels_used=final.labels_used,
        label_rate=final.labels_used / final.samples if final.samples else 0.0,
        accuracy=final.accuracy,
        seconds=final.seconds,
        us_per_sample=1e6 * final.seconds / final.samples if final.samples else 0.0,
        stats={
            "applied": stats.applied,
            "expired": stats.expired,
            "duplicate": stats.duplicate,
            "unknown": stats.unknown,
            "evicted": stats.evicted,
            "pending": len(learner.pending),
        },
        curve=curve,
        estimates=learner.evaluation.summary(),
        audit=learner_spec.audit,
        unpredicted=final.unpredicted,
        selector=selector,
        window=config.window if selector is not None else None,
        warm_start_labels=len(seed),
        warm_start_charged=bool(seed) and config.warm_start_charge and spec.budget != "full",
    )


def plan(config: ReplayConfig, entries: Iterable[str]) -> list[RunSpec]:
    """The main run, then one run per ``--compare`` entry."""
    runs = [RunSpec("main", config.strategy, config.budget, config.rate)]
    runs += [parse_run(e, config.rate, config.budget) for e in entries if e.strip()]
    return runs


def compare(config: ReplayConfig, entries: Iterable[str]) -> list[ReplayResult]:
    """The main run, then one run per ``--compare`` entry, on the same stream and settings."""
    return [run(config, spec) for spec in plan(config, entries)]


def gap_closed(results: list[ReplayResult]) -> dict[str, float]:
    """Share of the random→full accuracy gap each run closes (needs both baselines)."""
    by_name = {r.name: r for r in results}
    if "random" not in by_name or "full" not in by_name:
        return {}
    low, high = by_name["random"].accuracy, by_name["full"].accuracy
    if high <= low:
        return {}
    return {r.name: (r.accuracy - low) / (high - low) for r in results}
