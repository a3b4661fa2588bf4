"""streamal's strategies and budget promise as a river classifier.

:class:`ActiveClassifier` wraps a river classifier in an
:class:`~streamal.core.learner.ActiveLearner` and gives it river's classifier surface, so that
it works with :func:`river.evaluate.progressive_val_score`, river's metrics and
:mod:`river.compose` pipelines:

* ``predict_one`` / ``predict_proba_one`` are the wrapped model's (the posterior as is,
  the most probable class first on ties): they decide nothing and change nothing;
* ``learn_one(x, y)`` is one arrival: the learner predicts, scores ``x`` and asks its
  budget manager whether to buy the label, *without looking at* ``y``; only when the
  label was bought does the model learn from ``(x, y)``. Everything else is dropped, so
  the budget promise of :mod:`streamal.budgets` holds for the labels the model sees.
  :attr:`ActiveClassifier.labels_used` counts them.

The decision is made once per arrival, in ``learn_one``: river's evaluation calls
``predict_one`` (or ``predict_proba_one``) and then ``learn_one`` for every sample, and
only the latter knows that the arrival is over. A label bought in ``learn_one`` is
learned at once, which is what ``streamal replay --delay 0`` does (its label arrives
before the next sample); for the same stream, model, strategy, budget and seed both give
the same accuracy and label count (a test checks it). For delayed labels use replay, or
the learner itself.

Unlike :mod:`river.active`, ``predict_one`` returns the prediction alone (river's active
classifiers return a ``(prediction, ask)`` pair, which metrics and pipelines do not
expect), and the label budget is a promise, not an average.

Examples
--------
>>> from river import datasets, evaluate, linear_model, metrics, preprocessing
>>> from streamal.core.river_compat import ActiveClassifier
>>> model = preprocessing.StandardScaler() | ActiveClassifier(
...     linear_model.LogisticRegression(), "entropy", "variable_threshold", rate=0.1, seed=42
... )
>>> evaluate.progressive_val_score(datasets.Phishing(), model, metrics.Accuracy())
Accuracy: 85.68%
>>> active = model["ActiveClassifier"]
>>> active.labels_used, active.n_seen
(124, 1250)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from river import base

from streamal.budgets.base import BudgetManager
from streamal.core.learner import ActiveLearner, Decision
from streamal.core.registry import make_budget, make_strategy
from streamal.defaults import DEFAULT_BUDGET, DEFAULT_RATE, DEFAULT_STRATEGY
from streamal.messages import Label, Sample
from streamal.strategies.base import Strategy

__all__ = ["ActiveClassifier"]


class ActiveClassifier(base.Wrapper, base.Classifier):  # type: ignore[misc]
    """A river classifier that learns only from the labels its strategy and budget buy.

    Parameters
    ----------
    classifier
        The river classifier to train (``predict_proba_one`` and ``learn_one``).
    strategy
        A strategy spec (``"entropy"``, ``"margin:..."``; see ``streamal strategies``)
        or a :class:`~streamal.strategies.base.Strategy`.
    budget
        A budget-manager spec (``"variable_threshold"``, ``"random"``, ...) or a
        :class:`~streamal.budgets.base.BudgetManager`.
    rate
        The label budget, the share of arrivals whose label may be used; applies to a
        budget given as a spec (a manager object carries its own rate).
    audit
        Share of the budget spent on a uniformly random audit slice (see
        :class:`~streamal.core.learner.ActiveLearner`).
    seed
        Seed of the strategy, the budget manager (when given as specs) and the audit
        draws.

    Attributes
    ----------
    labels_used
        Labels the model learned from so far.
    n_seen
        Arrivals offered to :meth:`learn_one` so far.

    Examples
    --------
    >>> from river import linear_model
    >>> clf = ActiveClassifier(linear_model.LogisticRegression(), rate=0.5, seed=1)
    >>> for i in range(1000):
    ...     clf.learn_one({"a": float(i % 2)}, i % 2 == 1)
    >>> clf.labels_used <= 0.5 * clf.n_seen, clf.predict_one({"a": 1.0})
    (True, True)

    The default budget (``reserve_quantile:initial=500,repay=1000``) may spend the
    budget of the first 500 arrivals from the first arrival on and pays it back by
    arrival 1,000; from then on at most ``rate · n`` labels were used (the bound at any
    ``n`` is ``clf.learner.budget.promised(n)``).
    """

    def __init__(
        self,
        classifier: base.Classifier,
        strategy: str | Strategy = DEFAULT_STRATEGY,
        budget: str | BudgetManager = DEFAULT_BUDGET,
        rate: float = DEFAULT_RATE,
        audit: float = 0.0,
        seed: int | None = None,
    ) -> None:
        self.classifier = classifier
        self.strategy = strategy
        self.budget = budget
        self.rate = rate
        self.audit = audit
        self.seed = seed
        self._learner = ActiveLearner(
            classifier,
            make_strategy(strategy, seed=seed) if isinstance(strategy, str) else strategy,
            make_budget(budget, rate=rate, seed=seed) if isinstance(budget, str) else budget,
            audit=audit,
            seed=seed,
        )
        self.labels_used = 0
        self.n_seen = 0

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        """Parameters for river's conformance checks (``river.checks.check_estimator``)."""
        from river import linear_model, naive_bayes

        yield {"classifier": linear_model.LogisticRegression(), "rate": 0.5, "seed": 1}
        yield {"classifier": naive_bayes.GaussianNB(), "budget": "random", "seed": 2}

    @property
    def _wrapped_model(self) -> base.Classifier:
        return self.classifier

    @property
    def _multiclass(self) -> bool:
        return bool(getattr(self.classifier, "_multiclass", False))

    @property
    def learner(self) -> ActiveLearner:
        """The :class:`~streamal.core.learner.ActiveLearner` behind the classifier."""
        return self._learner

    @property
    def last_decision(self) -> Decision | None:
        """The decision made for the last arrival (``None`` before the first)."""
        return self._last

    _last: Decision | None = None

    def predict_proba_one(self, x: dict[Any, Any], **kwargs: Any) -> dict[Any, float]:
        """The wrapped classifier's posterior for ``x``."""
        proba: dict[Any, float] = self.classifier.predict_proba_one(x, **kwargs)
        return proba

    def learn_one(self, x: dict[Any, Any], y: Any, **kwargs: Any) -> None:
        """Offer the arrival ``x``: learn ``(x, y)`` only if its label is bought.

        The decision reads ``x`` and the model, never ``y``.
        """
        sample_id = str(self.n_seen)
        self.n_seen += 1
        learner = self._learner
        decision = learner.process(
            Sample.model_construct(id=sample_id, x=x, ts=None, y=None, meta={}, schema_version=1)
        )
        self._last = decision
        if decision.queried:
            label = Label.model_construct(
                sample_id=sample_id, y=y, ts=None, annotator=None, schema_version=1
            )
            if learner.learn(label):
                self.labels_used += 1
