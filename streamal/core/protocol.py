"""The one learner interface that the service, replay and metrics drive.

:class:`~streamal.core.learner.ActiveLearner` (one decision per arrival) and
:class:`~streamal.window.WindowLearner` (decisions per window of arrivals) both
implement :class:`Learner`; the drivers hold a ``Learner`` and nothing else, so they
never ask which kind they hold.

Examples
--------
>>> from streamal import ActiveLearner, Sample, budgets, models, strategies
>>> from streamal.window import WindowLearner
>>> inner = ActiveLearner(models.build_model("logreg"), strategies.Margin(),
...                       budgets.RandomBudget(rate=0.5))
>>> learners: list[Learner] = [inner, WindowLearner(inner, "topk", window=2)]
>>> [type(lrn).__name__ for lrn in learners if isinstance(lrn, Learner)]
['ActiveLearner', 'WindowLearner']
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from streamal.messages import MAX_QUERY_META_BYTES, Label, Purpose, Query, Sample

if TYPE_CHECKING:
    from streamal.budgets.base import BudgetManager
    from streamal.core.evaluation import LabelEvaluation
    from streamal.core.learner import Decision, LabelOutcome, LearnerStats
    from streamal.core.pending import PendingStore
    from streamal.strategies.base import Strategy

__all__ = ["Learner", "Queried"]

#: A query chosen after its arrival was processed (window mode): the sample and its
#: decision (``queried=True``).
Queried = tuple[Sample, "Decision"]


@runtime_checkable
class Learner(Protocol):
    """What a driver (the service, replay, a user's loop) needs from a learner."""

    # -- state the drivers read --------------------------------------------------------
    @property
    def stats(self) -> LearnerStats:
        """Counters of everything the learner did (kept in snapshots)."""
        ...

    @property
    def pending(self) -> PendingStore:
        """Queries waiting for their label."""
        ...

    @property
    def model_version(self) -> int:
        """Labels the model learned from."""
        ...

    @property
    def strategy(self) -> Strategy:
        """How arrivals are scored."""
        ...

    @property
    def budget(self) -> BudgetManager:
        """The budget manager (window mode keeps one, but its window quota decides)."""
        ...

    @property
    def target_rate(self) -> float:
        """The share of arrivals the learner may label."""
        ...

    @property
    def threshold(self) -> float | None:
        """The score threshold in force, if the decision rule has one."""
        ...

    @property
    def audit(self) -> float:
        """Share of the budget spent on the audit slice (``0``: none)."""
        ...

    @property
    def audit_refused(self) -> int:
        """Audit draws the guards refused."""
        ...

    @property
    def warm_starts(self) -> dict[str, int]:
        """Warm starts done, by name: name -> labels learned."""
        ...

    @property
    def evaluation(self) -> LabelEvaluation:
        """Accuracy estimates from the applied labels."""
        ...

    # -- arrivals and labels -----------------------------------------------------------
    def process(self, sample: Sample) -> Decision:
        """Predict, score and decide for one arrival."""
        ...

    def take_queried(self) -> list[Queried]:
        """Queries chosen since the last call for arrivals processed before (window mode)."""
        ...

    def finish(self) -> list[Queried]:
        """The stream ends: decide what is still open; return the queries chosen now."""
        ...

    def apply(self, label: Label) -> LabelOutcome:
        """Learn from ``label`` if it answers a pending query; say what happened."""
        ...

    def learn(self, label: Label) -> bool:
        """Apply ``label``; ``True`` if the model learned from it."""
        ...

    def learn_unsolicited(self, label: Label) -> LabelOutcome:
        """Learn a label that carries its features for a sample never queried."""
        ...

    def warm_start(
        self,
        labelled: Iterable[Sample | tuple[dict[str, Any], Any]],
        *,
        charge: bool = False,
        name: str | None = None,
    ) -> int:
        """Learn from already-labelled samples before the stream; return how many."""
        ...

    # -- messages ----------------------------------------------------------------------
    def query_for(
        self,
        sample: Sample,
        decision: Decision,
        purpose: Purpose | None = None,
        *,
        classes: list[Any] | None = None,
        meta_bytes: int = MAX_QUERY_META_BYTES,
    ) -> Query:
        """The :class:`~streamal.messages.Query` for a queried arrival."""
        ...

    def query_json(
        self,
        sample: Sample,
        decision: Decision,
        *,
        classes: list[Any] | None = None,
        meta_bytes: int = MAX_QUERY_META_BYTES,
    ) -> bytes:
        """The wire bytes of :meth:`query_for`'s message."""
        ...
