"""Committee disagreement: vote entropy, KL divergence to the consensus, BALD.

The committee is the members of an ensemble model: river's ``BaggingClassifier``,
``ARFClassifier`` and ``SRPClassifier`` (model specs ``bagging``, ``arf``, ``srp``), also
at the end of a pipeline; any model with a ``member_probas_one(x)`` method (the
scikit-learn adapter, :class:`Committee`); or a committee of your own models wrapped in
:class:`Committee`.

References
----------
Seung, H. S., Opper, M., & Sompolinsky, H. (1992). Query by committee. COLT '92, 287–294.
Dagan, I., & Engelson, S. P. (1995). Committee-based sampling for training probabilistic
classifiers. ICML 1995, 150–157 (vote entropy).
McCallum, A., & Nigam, K. (1998). Employing EM and pool-based active learning for text
classification. ICML 1998, 350–358 (KL divergence to the mean).
Houlsby, N., Huszár, F., Ghahramani, Z., & Lengyel, M. (2011). Bayesian active learning
for classification and preference learning. arXiv:1112.5745 (BALD).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any

from river import base, compose

from streamal.exceptions import ConfigError
from streamal.strategies.base import Strategy

__all__ = ["BALD", "Committee", "ConsensusKL", "VoteEntropy", "member_probas"]

# Keeps log(p / q) finite when the consensus gives a class no mass at all.
_EPS = 1e-12


class Committee(base.Classifier):  # type: ignore[misc]
    """A committee of your own river classifiers, trained by online bagging.

    Each member learns each labelled sample ``k ~ Poisson(1)`` times (Oza & Russell's
    online bagging), or once with ``bootstrap=False``; the committee predicts the mean of
    the members' posteriors.

    Examples
    --------
    >>> from river import linear_model, naive_bayes, tree
    >>> c = Committee([tree.HoeffdingTreeClassifier(), naive_bayes.GaussianNB()], seed=1)
    >>> for i in range(20):
    ...     c.learn_one({"a": float(i % 2)}, i % 2 == 0)
    >>> len(c.member_probas_one({"a": 0.0}))
    2
    """

    def __init__(self, models: list[Any], bootstrap: bool = True, seed: int | None = None) -> None:
        if not models:
            raise ConfigError("a Committee needs at least one model")
        self.models = models
        self.bootstrap = bootstrap
        self.seed = seed
        self._rng = random.Random(seed)

    def _get_params(self) -> dict[str, Any]:
        # river recurses into estimator parameters but copies lists as they are: hand it
        # untrained clones of the members, so that clone() starts from scratch.
        params: dict[str, Any] = super()._get_params()
        params["models"] = [model.clone() for model in self.models]
        return params

    def _poisson1(self) -> int:
        # Knuth's method for Poisson(1).
        limit, k, p = math.exp(-1.0), 0, self._rng.random()
        while p > limit:
            k += 1
            p *= self._rng.random()
        return k

    def learn_one(self, x: dict[str, Any], y: Any) -> None:
        for model in self.models:
            for _ in range(self._poisson1() if self.bootstrap else 1):
                model.learn_one(x, y)

    def member_probas_one(self, x: dict[str, Any]) -> list[dict[Any, float]]:
        """Each member's posterior for ``x``."""
        return [model.predict_proba_one(x) for model in self.models]

    def predict_proba_one(self, x: dict[str, Any]) -> dict[Any, float]:
        total: Counter[Any] = Counter()
        for proba in self.member_probas_one(x):
            total.update(proba)
        n = sum(total.values())
        return {k: v / n for k, v in total.items()} if n > 0 else {}


def member_probas(model: Any, x: dict[str, Any]) -> list[dict[Any, float]]:
    """The posteriors of the committee members of ``model`` for ``x``.

    Raises
    ------
    ConfigError
        If ``model`` is not an ensemble (has no members to disagree).
    """
    method = getattr(model, "member_probas_one", None)
    if callable(method):
        return method(x)  # type: ignore[no-any-return]
    if isinstance(model, compose.Pipeline):
        steps = list(model.steps.values())
        for step in steps[:-1]:
            x = step.transform_one(x)
        return member_probas(steps[-1], x)
    members = getattr(model, "models", None)
    if isinstance(members, list):
        return [m.predict_proba_one(x) for m in members]
    raise ConfigError(
        f"this strategy needs an ensemble model, but {type(model).__name__} has no members: "
        "use model 'bagging', 'arf' or 'srp', or wrap your models in "
        "streamal.strategies.Committee"
    )


def _matrix(probas: list[dict[Any, float]]) -> tuple[list[list[float]], list[Any]]:
    """Members' posteriors over the union of their classes (rows sum to 1), and the classes.

    Members without a usable posterior (nothing learned yet) are left out.
    """
    classes: dict[Any, int] = {}
    for proba in probas:
        for label in proba:
            classes.setdefault(label, len(classes))
    rows = []
    for proba in probas:
        row = [0.0] * len(classes)
        for label, v in proba.items():
            if v > 0.0 and math.isfinite(v):
                row[classes[label]] = v
        total = sum(row)
        if total > 0.0:
            rows.append([v / total for v in row])
    return rows, list(classes)


def _entropy(p: list[float]) -> float:
    return -sum(v * math.log(v) for v in p if v > 0.0)


def _mean(rows: list[list[float]]) -> list[float]:
    return [sum(col) / len(rows) for col in zip(*rows, strict=True)]


class _CommitteeStrategy(Strategy):
    needs_ensemble = True

    def score(self, x: dict[str, Any], proba: dict[Any, float], model: Any = None) -> float:
        if model is None:
            raise ConfigError(f"{type(self).__name__} reads the model's members; pass the model")
        rows, labels = _matrix(member_probas(model, x))
        if not rows:
            return 1.0  # no member has learned anything yet
        if len(labels) < 2:
            return 0.0
        return min(1.0, max(0.0, self._disagreement(rows, labels, proba)))

    def _disagreement(
        self, rows: list[list[float]], labels: list[Any], proba: dict[Any, float]
    ) -> float:
        raise NotImplementedError


class VoteEntropy(_CommitteeStrategy):
    """Entropy of the members' votes (each votes for its most probable class).

    Normalized by ``log(min(M, C))`` for ``M`` voting members and ``C`` classes, the
    largest entropy the votes can have.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> split = SimpleNamespace(member_probas_one=lambda x: [{"a": 0.9}, {"b": 0.8, "a": 0.2}])
    >>> VoteEntropy().score({}, {}, split)
    1.0
    """

    def _disagreement(
        self, rows: list[list[float]], labels: list[Any], proba: dict[Any, float]
    ) -> float:
        c = len(labels)
        votes = Counter(max(range(c), key=row.__getitem__) for row in rows)
        m = len(rows)
        top = min(m, c)
        if top < 2:
            return 0.0
        return _entropy([v / m for v in votes.values()]) / math.log(top)


class ConsensusKL(_CommitteeStrategy):
    """Mean KL divergence from each member's posterior to the model's consensus.

    The consensus is the model's own posterior (what it predicts: a performance-weighted
    vote for ARF and SRP), or the members' mean when the model gives none. With an
    unweighted mean consensus this equals BALD's mutual information; with a weighted one
    it is larger. Normalized by ``log C``.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> agree = SimpleNamespace(member_probas_one=lambda x: [{"a": 0.7, "b": 0.3}] * 3)
    >>> ConsensusKL().score({}, {"a": 0.7, "b": 0.3}, agree)
    0.0
    """

    def _disagreement(
        self, rows: list[list[float]], labels: list[Any], proba: dict[Any, float]
    ) -> float:
        consensus = _mean(rows)
        total = sum(v for v in proba.values() if v > 0.0 and math.isfinite(v))
        if total > 0.0:
            consensus = [max(0.0, proba.get(label, 0.0)) / total for label in labels]
        q = [max(v, _EPS) for v in consensus]
        kl = sum(
            sum(p * math.log(p / qi) for p, qi in zip(row, q, strict=True) if p > 0.0)
            for row in rows
        )
        return kl / len(rows) / math.log(len(labels))


class BALD(_CommitteeStrategy):
    """Mutual information between the prediction and the model (Houlsby et al., 2011).

    ``I = H(mean of members) − mean of H(member)``: high when the members are each
    confident but disagree, low when they agree or are all unsure alike (aleatoric
    noise, which a label would not resolve). The members play posterior samples.
    Normalized by ``log C``.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> sure_apart = SimpleNamespace(member_probas_one=lambda x: [{"a": 1.0}, {"b": 1.0}])
    >>> BALD().score({}, {}, sure_apart)
    1.0
    >>> unsure_alike = SimpleNamespace(member_probas_one=lambda x: [{"a": .5, "b": .5}] * 2)
    >>> BALD().score({}, {}, unsure_alike)
    0.0
    """

    def _disagreement(
        self, rows: list[list[float]], labels: list[Any], proba: dict[Any, float]
    ) -> float:
        expected = sum(_entropy(row) for row in rows) / len(rows)
        return (_entropy(_mean(rows)) - expected) / math.log(len(labels))
