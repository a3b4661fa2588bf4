"""Any scikit-learn classifier as a streamal model (``pip install 'streamal[sklearn]'``).

:class:`SklearnClassifier` wraps an unfitted scikit-learn classifier (random forest, MLP,
Gaussian process, logistic regression, a pipeline, a bagging ensemble of any of them) and
gives it the river surface the learner calls: ``predict_proba_one(x)`` and
``learn_one(x, y)``. It learns in one of two ways:

* **refit** (default): the labelled samples (all of them, or the ``window`` most recent)
  are kept, and a fresh clone of the estimator is fitted on them every ``every`` labels
  (lazily: when the model is next read, so a warm start on many labels costs one fit);
* **incremental**: estimators with ``partial_fit`` (SGD, naive Bayes, MLP, perceptron
  with a probabilistic loss) are updated with the new labels every ``every`` labels.
  ``partial_fit`` must know every class on its first call: pass ``classes`` if you know
  them; otherwise the first update waits for two classes, and when a new class (or a new
  feature column) shows up later the estimator is rebuilt from the ``window`` most recent
  labelled samples (1,000 if ``window`` is ``None``).

Before the first fit the posterior is empty (``{}``: strategies score it as maximally
informative); with a single class seen it is ``{label: 1.0}``, as for river's trees.

Feature dicts become columns in a stable order, learned from the labelled samples:
numbers in the order their names are first seen, and string features one-hot encoded as
``"name=value"`` columns (as :class:`streamal.core.models.MixedScaler` does). A missing feature,
an unseen category and a feature never seen in a label all count 0. Booleans count 0/1;
any other type is refused with :class:`~streamal.exceptions.DecodeError`.

For ensembles (scikit-learn's bagging, forests, voting, possibly at the end of a pipeline)
:meth:`SklearnClassifier.member_probas_one` gives each member's posterior, which
committee strategies and BALD read. The wrapper pickles (for snapshots and replay), and
``seed`` is passed to every ``random_state`` of the estimator, so runs repeat exactly.

Examples
--------
>>> from sklearn.linear_model import LogisticRegression
>>> model = SklearnClassifier(LogisticRegression(), seed=0)
>>> model.predict_proba_one({"a": 1.0})
{}
>>> model.learn_one({"a": 1.0, "colour": "red"}, "yes")
>>> model.predict_proba_one({"a": 1.0})
{'yes': 1.0}
>>> model.learn_one({"a": -1.0, "colour": "blue"}, "no")
>>> model.columns
['a', 'colour=red', 'colour=blue']
>>> model.predict_one({"a": 2.0, "colour": "red"})
'yes'
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from numbers import Real
from typing import Any

import numpy as np
from river import base

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.base import clone as _sk_clone
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "streamal.core.sklearn needs scikit-learn: pip install 'streamal[sklearn]'"
    ) from err

from streamal.exceptions import ConfigError, DecodeError

__all__ = ["OneClassFallback", "SklearnClassifier"]

#: Labelled samples kept to rebuild an incremental model when a new class or column
#: appears and no ``window`` is given: enough for a sound restart, bounded in memory.
_REBUILD_WINDOW = 1000

#: A labelled sample as kept for refitting: its ``(column, value)`` cells and its label.
_Row = tuple[list[tuple[int, float]], Any]


class SklearnClassifier(base.Classifier):  # type: ignore[misc]
    """A scikit-learn classifier learning one labelled sample at a time.

    Parameters
    ----------
    estimator
        An unfitted scikit-learn classifier with ``predict_proba`` (or ``predict``);
        it is cloned, never fitted in place.
    every
        Refit (or update, in incremental mode) after every ``every`` labels. The first
        fit happens as soon as it is possible, whatever ``every`` is.
    window
        Keep only the ``window`` most recent labelled samples (``None``: all of them in
        refit mode). A bounded window also forgets old concepts after a drift.
    incremental
        ``True`` to learn with ``partial_fit``, ``False`` to refit; ``None`` chooses
        ``partial_fit`` when the estimator has it.
    classes
        Every class the stream can hold, handed to ``partial_fit`` on its first call.
    seed
        Passed to every ``random_state`` parameter of the estimator (``None`` leaves
        them as they are).
    """

    def __init__(
        self,
        estimator: Any,
        every: int = 1,
        window: int | None = None,
        incremental: bool | None = None,
        classes: Sequence[Any] | None = None,
        seed: int | None = None,
    ) -> None:
        if every < 1:
            raise ConfigError(f"every must be >= 1, got {every}")
        if window is not None and window < 1:
            raise ConfigError(f"window must be >= 1 or None, got {window}")
        has_partial = hasattr(estimator, "partial_fit")
        if incremental and not has_partial:
            raise ConfigError(
                f"{type(estimator).__name__} has no partial_fit; use incremental=False"
            )
        self.estimator = estimator
        self.every = every
        self.window = window
        self.incremental = incremental
        self.classes = classes
        self.seed = seed
        self._partial = has_partial if incremental is None else incremental
        kept = window if window is not None or not self._partial else _REBUILD_WINDOW
        self._rows: deque[_Row] = deque(maxlen=kept)
        self._columns: dict[str, int] = {}
        self._labels: list[Any] = [] if classes is None else list(classes)
        self._fitted: Any = None
        self._fit_columns = 0
        self._fit_labels = 0
        self._waiting = 0

    # -- columns ---------------------------------------------------------------------
    @property
    def columns(self) -> list[str]:
        """Feature columns in their learned order (one-hot columns as ``name=value``)."""
        return list(self._columns)

    def _cells(self, x: dict[str, Any], grow: bool = False) -> list[tuple[int, float]]:
        """``x`` as ``(column, value)`` pairs; ``grow`` adds unseen columns, else drops them."""
        pairs = []
        for name, value in x.items():
            if isinstance(value, str):
                pairs.append((f"{name}={value}", 1.0))
            elif isinstance(value, Real):  # bool and numpy numbers included
                pairs.append((name, float(value)))
            elif value is not None:
                raise DecodeError(
                    f"{type(value).__name__} is not a feature type; use a number or a string",
                    field=f"x.{name}",
                )
        columns = self._columns
        if grow:
            for name, _ in pairs:
                columns.setdefault(name, len(columns))
        return [(columns[n], v) for n, v in pairs if n in columns]

    @staticmethod
    def _matrix(rows: Iterable[list[tuple[int, float]]], n: int, width: int) -> np.ndarray:
        out = np.zeros((n, width))
        for i, cells in enumerate(rows):
            for j, value in cells:
                if j < width:
                    out[i, j] = value
        return out

    # -- learning --------------------------------------------------------------------
    def accepts_label(self, y: Any) -> bool:
        """Whether :meth:`learn_one` takes ``y`` (any label unless ``classes`` is set)."""
        return self.classes is None or y in self.classes

    def learn_one(self, x: dict[str, Any], y: Any) -> None:
        if self.classes is not None and y not in self.classes:
            raise ConfigError(f"label {y!r} is not among classes={list(self.classes)!r}")
        cells = self._cells(x, grow=True)
        if y not in self._labels:
            self._labels.append(y)
        self._rows.append((cells, y))
        self._waiting += 1
        if self._partial:
            self._learn_partial()

    @property
    def estimator_(self) -> Any:
        """The fitted scikit-learn estimator (``None`` before the first fit).

        In refit mode the fit is lazy: it happens when the model is next read, once
        ``every`` labels (or the first fittable set) arrived, so that a warm start on
        many labels costs one fit, not one per label.
        """
        waiting = self._waiting
        if not self._partial and waiting and len(self._labels) > 1:
            if self._fitted is None or waiting >= self.every:
                self._refit()
        return self._fitted

    def _fresh(self) -> Any:
        est = _sk_clone(self.estimator)
        if self.seed is not None:
            seeds = {k: self.seed for k in est.get_params() if k.endswith("random_state")}
            est.set_params(**seeds)
        return est

    def _refit(self) -> None:
        rows = self._rows
        ys = [y for _, y in rows]
        if len(set(ys)) < 2:  # most estimators refuse one class; keep the last fit
            return
        width = len(self._columns)
        est = self._fresh()
        est.fit(self._matrix((c for c, _ in rows), len(rows), width), np.asarray(ys))
        self._fitted, self._fit_columns, self._waiting = est, width, 0

    def _learn_partial(self) -> None:
        labels = self._labels
        if len(labels) < 2 and self.classes is None:
            return
        grown = len(self._columns) > self._fit_columns or len(labels) > self._fit_labels
        if self._fitted is not None and not grown:
            if self._waiting >= self.every:
                new = list(self._rows)[-self._waiting :]
                self._partial_fit(self._fitted, new)
                self._waiting = 0
            return
        est = self._fresh()  # first fit, or a new class/column: rebuild from the kept rows
        self._fit_columns, self._fit_labels = len(self._columns), len(labels)
        self._partial_fit(est, list(self._rows), classes=labels)
        self._fitted, self._waiting = est, 0

    def _partial_fit(self, est: Any, rows: list[_Row], **kw: Any) -> None:
        X = self._matrix((c for c, _ in rows), len(rows), self._fit_columns)
        est.partial_fit(X, np.asarray([y for _, y in rows]), **kw)

    # -- prediction ------------------------------------------------------------------
    def predict_proba_one(self, x: dict[str, Any]) -> dict[Any, float]:
        return self.predict_proba_batch([x])[0]

    def predict_proba_batch(self, xs: Sequence[dict[str, Any]]) -> list[dict[Any, float]]:
        """Posteriors of many samples in one call (much faster than one by one)."""
        est = self.estimator_
        if est is None:
            one = len(self._labels) == 1 and self._rows
            return [{self._labels[0]: 1.0} if one else {} for _ in xs]
        X = self._matrix(map(self._cells, xs), len(xs), self._fit_columns)
        return _posterior(est, X, est.classes_)

    def predict_batch(self, xs: Sequence[dict[str, Any]]) -> list[Any]:
        """Predicted labels of many samples (``None`` before anything was learned)."""
        return [max(p, key=p.__getitem__) if p else None for p in self.predict_proba_batch(xs)]

    def member_probas_one(self, x: dict[str, Any]) -> list[dict[Any, float]]:
        """Each ensemble member's posterior for ``x`` (``[]`` if the model is no ensemble).

        Members of scikit-learn's own ensembles are fitted on encoded labels, sometimes
        on a bootstrap that misses a class; their posteriors are mapped back to the
        ensemble's labels (a class a member never saw gets no entry).
        """
        est = self.estimator_
        if est is None:
            return []
        X = self._matrix([self._cells(x)], 1, self._fit_columns)
        final = est
        if hasattr(est, "steps"):  # a Pipeline: transform, then read its last step
            X, final = est[:-1].transform(X), est[-1]
        members = getattr(final, "estimators_", None)
        if not isinstance(members, list) or not members:
            return []
        feats = getattr(final, "estimators_features_", None)
        encoded = type(final).__module__.startswith("sklearn.ensemble")
        out = []
        for i, member in enumerate(members):
            Xm = X if feats is None else X[:, feats[i]]
            names = member.classes_
            if encoded:
                names = final.classes_[np.asarray(names, dtype=int)]
            out.append(_posterior(member, Xm, names)[0])
        return out

    @property
    def n_members(self) -> int:
        """Number of ensemble members of the fitted model (0 if none or not fitted)."""
        final = self.estimator_
        if final is not None and hasattr(final, "steps"):
            final = final[-1]
        members = getattr(final, "estimators_", None)
        return len(members) if isinstance(members, list) else 0

    @property
    def n_labels(self) -> int:
        """Labelled samples currently kept for refitting."""
        return len(self._rows)


def _posterior(est: Any, X: np.ndarray, names: Any) -> list[dict[Any, float]]:
    """Row-wise ``{label: probability}`` of ``est`` on ``X``, with Python label types."""
    labels = np.asarray(names).tolist()
    if hasattr(est, "predict_proba"):
        P = est.predict_proba(X)
    else:  # a hard classifier: its vote is a one-hot posterior
        pred = np.asarray(est.predict(X)).tolist()
        P = np.asarray([[1.0 if c == p else 0.0 for c in est.classes_.tolist()] for p in pred])
    return [dict(zip(labels, map(float, row), strict=True)) for row in P]


class OneClassFallback(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A scikit-learn classifier that also fits on labels of a single class.

    Bagging draws bootstraps of the few labels an active learner has; one of them may
    hold a single class, which Gaussian processes, logistic regression and SVMs refuse.
    Wrapped in ``OneClassFallback``, such a member predicts its one class with
    probability 1 (a committee member with no doubt); with two classes or more it is
    the wrapped estimator.

    Parameters
    ----------
    estimator
        The scikit-learn classifier to wrap (cloned on each fit).

    Examples
    --------
    >>> from sklearn.gaussian_process import GaussianProcessClassifier
    >>> m = OneClassFallback(GaussianProcessClassifier()).fit([[0.0], [1.0]], ["a", "a"])
    >>> m.predict_proba([[0.5]]).tolist(), m.classes_.tolist()
    ([[1.0]], ['a'])
    """

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def fit(self, X: Any, y: Any) -> OneClassFallback:
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        self.fitted_ = None if len(self.classes_) < 2 else _sk_clone(self.estimator).fit(X, y)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        if self.fitted_ is None:
            return np.ones((len(X), 1))
        return np.asarray(self.fitted_.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.classes_[np.argmax(self.predict_proba(X), axis=1)])
