"""Is the broker reachable? A probe when idle, and a deadline for long outages.

Kafka clients hide outages: a poll just returns nothing. :class:`BrokerWatch` probes the
broker every ``interval`` seconds while no records arrive, and raises
:class:`~streamal.exceptions.TransportError` once the broker has been unreachable for
``timeout`` seconds, so that the process exits non-zero and an orchestrator restarts it
(shorter outages are ridden out: the clients reconnect by themselves). A poll that raises
(kafka-python 3 raises a refused connection from ``poll``) counts as the same outage:
:meth:`BrokerWatch.poll` returns no records for it, and raises the same error once polls
have failed for ``timeout`` seconds.

Examples
--------
>>> from streamal.transports import MemoryBroker, MemorySource
>>> broker, now = MemoryBroker(), [0.0]
>>> watch = BrokerWatch(MemorySource(broker), timeout=30, interval=5, clock=lambda: now[0])
>>> broker.down = True
>>> now[0] = 6.0; watch.observe(got_records=False); watch.reachable
False
>>> now[0] = 40.0; watch.observe(got_records=False)
Traceback (most recent call last):
...
streamal.exceptions.TransportError: the broker has been unreachable for 34 s (...
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from streamal.exceptions import TransportError
from streamal.transports.base import Envelope, Reader, Source

__all__ = ["BrokerWatch"]

log = logging.getLogger("streamal.service")


class BrokerWatch:
    """Tracks broker reachability from probes and traffic.

    Parameters
    ----------
    source
        Probed with :meth:`~streamal.transports.base.Source.ping`.
    timeout
        Seconds of continuous unreachability before :meth:`observe` raises.
    interval
        Seconds between probes while no records arrive.
    clock
        Monotonic clock in seconds.
    on_change
        Called with the new reachability after every probe (for a metric).
    """

    def __init__(
        self,
        source: Source,
        timeout: float,
        interval: float,
        clock: Callable[[], float],
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.source = source
        self.timeout = timeout
        self.interval = interval
        self.clock = clock
        self.on_change = on_change
        self.reachable = True
        self._last_probe = clock()
        self._down_since: float | None = None
        #: Since when each poller's polls have raised (by ``id``), for :meth:`poll`.
        self._polls_failing: dict[int, float] = {}

    def poll(self, source: Source | Reader, max_records: int, timeout: float) -> list[Envelope]:
        """``source.poll``, with a poll that raises taken as an outage.

        A failed poll is noted like :meth:`failed`, pauses for ``timeout`` (at most half a
        second, so that a poll that fails at once does not spin) and returns no records;
        once this source's polls have failed for ``timeout`` seconds of the watch, the
        error is raised as an outage that is too long.
        """
        try:
            batch = source.poll(max_records, timeout)
        except TransportError as err:
            now = self.clock()
            since = self._polls_failing.setdefault(id(source), now)
            self.failed(str(err))
            if now - since >= self.timeout:
                raise TransportError(self._too_long(now - since, err)) from err
            time.sleep(min(timeout, 0.5))
            return []
        self._polls_failing.pop(id(source), None)
        return batch

    def observe(self, got_records: bool) -> None:
        """Note one loop turn; probe if due; raise if the outage is too long."""
        now = self.clock()
        if got_records:
            self._set(True, now)
            return
        if now - self._last_probe < self.interval:
            return
        self._last_probe = now
        try:
            # A probe may take up to 2 s against an unresponsive host; shorter intervals
            # shrink it.
            self.source.ping(min(2.0, self.interval))
        except TransportError as err:
            self.failed(str(err))
            down = now - (self._down_since or now)
            if down >= self.timeout:
                raise TransportError(self._too_long(down, err)) from err
            return
        self._set(True, now)

    @staticmethod
    def _too_long(down: float, err: TransportError) -> str:
        return (
            f"the broker has been unreachable for {down:.0f} s (last error: {err}); "
            "exiting so that the service is restarted. Check that the broker is up "
            "and that kafka.bootstrap_servers points at it"
        )

    def failed(self, reason: str) -> None:
        """Note a broker operation that failed (a flush or commit): unreachable until a probe
        or records say otherwise."""
        now = self.clock()
        if self._down_since is None:
            self._down_since = now
            log.warning("broker unreachable: %s", reason)
        self._set(False, now)

    def _set(self, up: bool, now: float) -> None:
        if up:
            if self._down_since is not None:
                log.info("broker reachable again after %.0f s", now - self._down_since)
            self._down_since = None
        self.reachable = up
        if self.on_change is not None:
            self.on_change(up)
