"""The audit plan: which arrivals an audit slice labels, decided apart from the model.

An audit slice of share ``a`` of a rate-``b`` budget labels one arrival in every block
of ``K = round(1 / (a · b))`` consecutive arrivals, at a position drawn uniformly in
the block from a seeded generator (stratified sampling). Every arrival is audited with
probability exactly ``1 / K``, whatever the model, the scores, the guards or the
manager did: the plan is drawn ahead and never looks at the stream. The audited
arrivals are therefore a uniform sample of the stream and their accuracy an unbiased
estimate of its prequential accuracy.

The budget manager pays for the audit: :class:`AuditPlan` keeps back, from what the
manager may spend, the labels every drawn audit will need, so that no guard ever
refuses an audit (an audit refused where the guards are tight, and served later,
lands in confident stretches: that was the bias of the earlier design, +1.4 to +2.8
points on recorded streams). The reservation is exact for the cumulative promise and
for the sliding window: the manager is allowed a label only if, counting the audits
already drawn for the next ``window`` arrivals, no window would exceed its cap. Only a
capacity cap (:class:`~streamal.budgets.wrappers.HardCap`) may still refuse an audit;
such refusals are counted (:attr:`AuditPlan.refused`), and the estimate is exactly
unbiased only while that count is 0.

Examples
--------
>>> plan = AuditPlan(audit=0.2, rate=0.1, window=1000, seed=1)
>>> plan.period
50
>>> audited = [plan.is_audit(n) for n in range(1, 1001)]
>>> sum(audited), sum(audited[:50]), sum(audited[50:100])
(20, 1, 1)
"""

from __future__ import annotations

import bisect
import random
from collections import deque

__all__ = ["AuditPlan"]


class AuditPlan:
    """Stratified audit positions and the labels the manager must leave for them.

    Parameters
    ----------
    audit
        Share of the budget for the audit slice, in ``(0, 1]``.
    rate
        The budget's label rate.
    window
        The budget's sliding-window length (its window guard).
    seed
        Seed of the audit positions.
    """

    def __init__(self, audit: float, rate: float, window: int, seed: int | None) -> None:
        self.audit = audit
        self.rate = rate
        self.window = window
        #: Arrivals per audit block: each arrival is audited with probability 1 / period.
        self.period = max(1, round(1.0 / (audit * rate)))
        self._rng = random.Random(None if seed is None else f"{seed}/audit")
        self._next_block = 0
        #: Audit arrival numbers (1-based) from ``window`` back to ``window`` ahead.
        self._positions: deque[int] = deque()
        #: Arrival numbers of the manager's own labels in the last ``window`` arrivals.
        self._manager: deque[int] = deque()
        #: Labels the manager spent on arrivals that are not audits.
        self.manager_spent = 0
        #: Audits served (labelled).
        self.served = 0
        #: Audits a capacity cap refused.
        self.refused = 0

    @property
    def probability(self) -> float:
        """The probability with which every arrival is audited."""
        return 1.0 / self.period

    def _draw_to(self, last: int) -> None:
        period, positions = self.period, self._positions
        while self._next_block * period < last:
            start = self._next_block * period
            positions.append(start + 1 + self._rng.randrange(period))
            self._next_block += 1

    def is_audit(self, n: int) -> bool:
        """Whether arrival ``n`` (1-based, in order) is audited; also moves the plan on."""
        self._draw_to(n + self.window)
        positions = self._positions
        while positions and positions[0] <= n - self.window:
            positions.popleft()
        manager = self._manager
        while manager and manager[0] <= n - self.window:
            manager.popleft()
        i = bisect.bisect_left(positions, n)
        return i < len(positions) and positions[i] == n

    def manager_allowed(self, n: int, cap: int, credit: float = 0.0) -> bool:
        """Whether the manager may spend a label on arrival ``n`` (a non-audit one).

        ``cap`` is the window cap the budget applies now and ``credit`` any labels it
        may currently spend beyond ``rate · n`` (a drift boost).

        Cumulative: manager labels ``M`` and served audits ``A`` satisfy
        ``A(n) ≤ ceil(n / K) < n / K + 1``; the manager is held to
        ``M + 1 ≤ (rate - 1/K) · n - 1 + credit``, so that ``M + A ≤ rate · n + credit``.
        Window: for every window that holds ``n`` and ends within the next ``window``
        arrivals, the manager's labels in it, plus one, plus the audits drawn for it,
        stay within ``cap``.
        """
        if self.manager_spent + 1 > (self.rate - 1.0 / self.period) * n - 1.0 + credit + 1e-9:
            return False
        positions, manager, window = self._positions, self._manager, self.window
        # Windows (m - window, m] for m from n to n + window - 1: the count can only
        # rise where an audit enters, so check m = n and m = each later audit.
        ends = [n] + [p for p in positions if n < p < n + window]
        for m in ends:
            low = m - window
            held = len(manager) - bisect.bisect_right(manager, low)
            audits = bisect.bisect_right(positions, m) - bisect.bisect_right(positions, low)
            if held + 1 + audits > cap:
                return False
        return True

    def manager_spends(self, n: int) -> None:
        """The manager spent a label on arrival ``n`` (not an audit)."""
        self.manager_spent += 1
        self._manager.append(n)
