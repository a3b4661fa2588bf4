"""A simulated oracle for replay: answers queries with the recorded label, later.

Delays are given as a spec:

============== ==========================================================
``"0"``        the label arrives before the next sample (no delay)
``"500"``      500 samples later
``"30s"``      30 seconds of stream time later (samples must carry ``ts``)
``"exp:500"``  exponentially distributed, mean 500 samples (or ``exp:30s``)
``"uniform:100:1000"``  uniform between 100 and 1,000 samples (or seconds with ``s``)
============== ==========================================================
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from typing import Any

from streamal.exceptions import ConfigError
from streamal.messages import Label

__all__ = ["Delay", "SimulatedOracle", "parse_delay"]


@dataclass(frozen=True)
class Delay:
    """A label delay: a distribution (``fixed``, ``exp``, ``uniform``) in samples or seconds."""

    kind: str = "fixed"
    low: float = 0.0
    high: float = 0.0
    seconds: bool = False

    def draw(self, rng: random.Random) -> float:
        """One delay, in the delay's unit."""
        if self.kind == "exp":
            return rng.expovariate(1.0 / self.low) if self.low > 0 else 0.0
        if self.kind == "uniform":
            return rng.uniform(self.low, self.high)
        return self.low

    def __str__(self) -> str:
        unit = "s" if self.seconds else ""
        if self.kind == "exp":
            return f"exp:{self.low:g}{unit}"
        if self.kind == "uniform":
            return f"uniform:{self.low:g}{unit}:{self.high:g}{unit}"
        return f"{self.low:g}{unit}"


def _amount(text: str, spec: str) -> tuple[float, bool]:
    seconds = text.endswith("s")
    try:
        value = float(text[:-1] if seconds else text)
    except ValueError:
        raise ConfigError(f"bad delay {spec!r}: {text!r} is not a number") from None
    if value < 0:
        raise ConfigError(f"bad delay {spec!r}: delays cannot be negative")
    return value, seconds


def parse_delay(spec: str | int | float | Delay) -> Delay:
    """Parse a delay spec (see the module docstring).

    Examples
    --------
    >>> parse_delay("500")
    Delay(kind='fixed', low=500.0, high=0.0, seconds=False)
    >>> parse_delay("exp:30s")
    Delay(kind='exp', low=30.0, high=0.0, seconds=True)
    """
    if isinstance(spec, Delay):
        return spec
    if isinstance(spec, int | float):
        return Delay("fixed", float(spec))
    parts = spec.strip().split(":")
    if len(parts) == 1:
        low, seconds = _amount(parts[0], spec)
        return Delay("fixed", low, seconds=seconds)
    if parts[0] == "exp" and len(parts) == 2:
        low, seconds = _amount(parts[1], spec)
        return Delay("exp", low, seconds=seconds)
    if parts[0] == "uniform" and len(parts) == 3:
        (low, s1), (high, s2) = _amount(parts[1], spec), _amount(parts[2], spec)
        if s1 != s2 or high < low:
            raise ConfigError(f"bad delay {spec!r}: give uniform:LOW:HIGH in one unit, LOW ≤ HIGH")
        return Delay("uniform", low, high, seconds=s1)
    raise ConfigError(f"bad delay {spec!r}; use N, Ns, exp:MEAN, or uniform:LOW:HIGH")


class SimulatedOracle:
    """Answers queries with their recorded label after a delay, with optional label noise.

    The clock is the arrival index for delays in samples, the stream time ``ts`` for
    delays in seconds. A label asked at arrival ``i`` with delay ``d`` samples is
    delivered before arrival ``i + d + 1`` is processed (``d = 0``: before the next one).

    Parameters
    ----------
    delay
        A delay spec or :class:`Delay`.
    noise
        Probability that the oracle answers a wrong class (uniformly among the other
        classes it has seen so far).
    seed
        Seed of the delays and of the noise.

    Examples
    --------
    >>> oracle = SimulatedOracle("2")
    >>> oracle.ask("a", "spam", index=0)
    >>> oracle.due(index=2), [lb.y for lb in oracle.due(index=3)]
    ([], ['spam'])
    """

    def __init__(
        self, delay: str | int | float | Delay = 0, noise: float = 0.0, seed: int | None = None
    ) -> None:
        self.delay = parse_delay(delay)
        if not 0.0 <= noise < 1.0:
            raise ConfigError(f"noise must be in [0, 1), got {noise}")
        self.noise = noise
        self.seed = seed
        self._rng = random.Random(seed)
        self._heap: list[tuple[float, int, str, Any]] = []
        self._classes: list[Any] = []
        self._seq = 0
        self.flipped = 0

    def _clock(self, index: int, ts: float | None) -> float:
        if not self.delay.seconds:
            return float(index)
        if ts is None:
            raise ConfigError(f"delay {self.delay} is in seconds but the samples carry no ts")
        return float(ts)

    def ask(self, sample_id: str, y: Any, index: int, ts: float | None = None) -> None:
        """Schedule the answer to a query made at arrival ``index`` (stream time ``ts``)."""
        if y not in self._classes:
            self._classes.append(y)
        if self.noise and len(self._classes) > 1 and self._rng.random() < self.noise:
            y = self._rng.choice([c for c in self._classes if c != y])
            self.flipped += 1
        due = self._clock(index, ts) + self.delay.draw(self._rng)
        if not self.delay.seconds:
            due += 1.0
        heapq.heappush(self._heap, (due, self._seq, sample_id, y))
        self._seq += 1

    def due(self, index: int, ts: float | None = None) -> list[Label]:
        """Labels whose time has come at arrival ``index`` (stream time ``ts``)."""
        heap = self._heap
        if not heap:
            return []
        now = self._clock(index, ts)
        out = []
        while heap and heap[0][0] <= now:
            due, _, sample_id, y = heapq.heappop(heap)
            out.append(
                Label.model_construct(
                    sample_id=sample_id, y=y, ts=ts, annotator="oracle", schema_version=1
                )
            )
        return out

    def __len__(self) -> int:
        return len(self._heap)
