"""Build a river classifier from a short spec.

=========== ==========================================================================
spec        model
=========== ==========================================================================
logreg      scaled logistic regression (binary)
softmax     scaled softmax regression (multi-class)
ovr         scaled one-vs-rest logistic regression (binary and multi-class)
gnb         Gaussian naive Bayes
hoeffding   Hoeffding tree
hat         Hoeffding adaptive tree (drift-aware)
arf         adaptive random forest (10 trees)
arf20       adaptive random forest (20 trees; the default)
bagging     online bagging of 10 Hoeffding trees
srp         streaming random patches of 10 Hoeffding trees
knn         scaled k nearest neighbours (k=5) among the last 500 labelled samples
module:attr any river estimator factory, e.g. ``river.naive_bayes:GaussianNB``
=========== ==========================================================================

Linear models, Gaussian naive Bayes and nearest neighbours get :class:`MixedScaler` in
front of them, which standardizes numeric features and one-hot encodes string features in
one pass, so that categorical features work everywhere. Trees handle string features
natively.

``knn`` costs the other way round from the trees: a prediction compares the sample with
each of the 500 samples kept (about 100 µs), learning a label only appends it (a few
µs). It suits streams whose classes form local clusters, and in group mode
(docs/scaling.md) it is the model for which more instances pay off most, since every
instance learns every label.

Examples
--------
>>> model = build_model("logreg", seed=1)
>>> model.learn_one({"age": 30.0, "city": "Oslo"}, "yes")
>>> model.learn_one({"age": 60.0, "city": "Rome"}, "no")
>>> sorted(model.predict_proba_one({"age": 30.0, "city": "Oslo"}))
['no', 'yes']
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from typing import Any

from river import base, compose

from streamal.exceptions import ConfigError

__all__ = ["MODEL_SPECS", "BinaryLabels", "MixedScaler", "build_model"]


class MixedScaler(base.Transformer):  # type: ignore[misc]
    """Standardize numeric features and one-hot encode string features, in one pass.

    Numbers are centred and scaled with running means and variances (Welford's method);
    a string feature ``name`` with value ``v`` becomes ``{"name=v": 1.0}``. Doing both in
    one transformer is cheaper per sample than river's ``SelectType | StandardScaler``
    union with a ``OneHotEncoder`` branch (``docs/benchmarks.md``).

    Examples
    --------
    >>> t = MixedScaler()
    >>> for v in (1.0, 3.0):
    ...     t.learn_one({"a": v, "c": "red"})
    >>> t.transform_one({"a": 3.0, "c": "blue"})
    {'a': 1.0, 'c=blue': 1.0}
    """

    def __init__(self) -> None:
        self._n: dict[str, int] = {}
        self._mean: dict[str, float] = {}
        self._m2: dict[str, float] = {}

    def learn_one(self, x: dict[str, Any]) -> None:
        n_, mean_, m2_ = self._n, self._mean, self._m2
        for k, v in x.items():
            if isinstance(v, str):
                continue
            n = n_.get(k, 0) + 1
            mean = mean_.get(k, 0.0)
            delta = v - mean
            mean += delta / n
            n_[k] = n
            mean_[k] = mean
            m2_[k] = m2_.get(k, 0.0) + delta * (v - mean)

    def transform_one(self, x: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        n_, mean_, m2_ = self._n, self._mean, self._m2
        for k, v in x.items():
            if isinstance(v, str):
                out[f"{k}={v}"] = 1.0
                continue
            n = n_.get(k, 0)
            if n < 2:
                out[k] = 0.0
                continue
            var = m2_[k] / n
            out[k] = (v - mean_[k]) / math.sqrt(var) if var > 0.0 else 0.0
        return out


class BinaryLabels(base.Wrapper, base.Classifier):  # type: ignore[misc]
    """Let a boolean-target classifier (river's logistic regression) take any two labels.

    The first label seen maps to ``False``, the second to ``True``; a third label is
    refused with a clear error, because the wrapped model is binary.

    Examples
    --------
    >>> from river import linear_model
    >>> m = BinaryLabels(linear_model.LogisticRegression())
    >>> m.learn_one({"a": 1.0}, "spam")
    >>> m.learn_one({"a": -1.0}, "ham")
    >>> sorted(m.predict_proba_one({"a": 1.0}))
    ['ham', 'spam']
    """

    def __init__(self, classifier: base.Classifier) -> None:
        self.classifier = classifier
        self._labels: list[Any] = []

    @property
    def _wrapped_model(self) -> base.Classifier:
        return self.classifier

    def accepts_label(self, y: Any) -> bool:
        """Whether :meth:`learn_one` takes ``y`` (a known label, or one of the first two)."""
        return y in self._labels or len(self._labels) < 2

    def learn_one(self, x: dict[str, Any], y: Any) -> None:
        labels = self._labels
        if y not in labels:
            if len(labels) == 2:
                raise ConfigError(
                    f"label {y!r} is a third class, but this model is binary "
                    f"(it has seen {labels[0]!r} and {labels[1]!r}); use model 'ovr' or "
                    "'softmax' for multi-class streams"
                )
            labels.append(y)
        self.classifier.learn_one(x, labels.index(y) == 1)

    def predict_proba_one(self, x: dict[str, Any]) -> dict[Any, float]:
        labels = self._labels
        if not labels:
            return {}
        p_true = self.classifier.predict_proba_one(x).get(True, 0.5)
        if len(labels) == 1:
            return {labels[0]: 1.0 - p_true}
        return {labels[0]: 1.0 - p_true, labels[1]: p_true}


def _river(module: str) -> Any:
    # river's model modules take about a second to import (they pull in river.datasets):
    # import them when a model is built, so commands that build none start fast.
    return importlib.import_module(f"river.{module}")


def _scaled(model: base.Estimator) -> base.Estimator:
    return compose.Pipeline(MixedScaler(), model)


def _hoeffding(seed: int | None) -> base.Estimator:
    return _river("tree").HoeffdingTreeClassifier()


# Each factory takes the seed, so models with randomness (ensembles) are reproducible.
MODEL_SPECS: dict[str, tuple[str, Callable[[int | None], base.Estimator]]] = {
    "logreg": (
        "scaled logistic regression (binary)",
        lambda s: _scaled(BinaryLabels(_river("linear_model").LogisticRegression())),
    ),
    "softmax": (
        "scaled softmax regression (multi-class)",
        lambda s: _scaled(_river("linear_model").SoftmaxRegression()),
    ),
    "ovr": (
        "scaled one-vs-rest logistic regression (binary and multi-class)",
        lambda s: _scaled(_ovr()),
    ),
    "gnb": ("Gaussian naive Bayes", lambda s: _scaled(_river("naive_bayes").GaussianNB())),
    "hoeffding": ("Hoeffding tree", _hoeffding),
    "hat": (
        "Hoeffding adaptive tree (drift-aware)",
        lambda s: _river("tree").HoeffdingAdaptiveTreeClassifier(seed=s),
    ),
    "arf": ("adaptive random forest, 10 trees", lambda s: _arf(10, s)),
    "arf20": ("adaptive random forest, 20 trees (the default)", lambda s: _arf(20, s)),
    "bagging": (
        "online bagging of 10 Hoeffding trees",
        lambda s: _river("ensemble").BaggingClassifier(_hoeffding(s), n_models=10, seed=s),
    ),
    "srp": (
        "streaming random patches of 10 Hoeffding trees",
        lambda s: _river("ensemble").SRPClassifier(_hoeffding(s), n_models=10, seed=s),
    ),
    "knn": (
        "scaled k nearest neighbours (k=5) among the last 500 labelled samples",
        lambda s: _scaled(_knn()),
    ),
}


def _arf(n_models: int, seed: int | None) -> base.Estimator:
    return _river("forest").ARFClassifier(n_models=n_models, seed=seed)


def _knn() -> base.Estimator:
    neighbors = _river("neighbors")
    return neighbors.KNNClassifier(n_neighbors=5, engine=neighbors.LazySearch(window_size=500))


def _ovr() -> base.Estimator:
    return _river("multiclass").OneVsRestClassifier(_river("linear_model").LogisticRegression())


def build_model(spec: str, seed: int | None = None) -> base.Estimator:
    """Build a fresh river classifier from ``spec`` (see the module docstring).

    Raises
    ------
    ConfigError
        If the spec is unknown or the factory does not give a classifier.
    """
    if spec in MODEL_SPECS:
        return MODEL_SPECS[spec][1](seed)
    if ":" not in spec:
        names = ", ".join(MODEL_SPECS)
        raise ConfigError(f"unknown model {spec!r}; use one of {names}, or module:attr")
    module_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"cannot load model factory {spec!r}: {err}") from None
    try:
        model = factory()
    except TypeError as err:  # a class or function that needs arguments
        raise ConfigError(
            f"cannot build {spec!r} without arguments ({err}); point the spec at a function "
            "of your own that returns a configured classifier"
        ) from None
    if not hasattr(model, "predict_proba_one") or not hasattr(model, "learn_one"):
        raise ConfigError(f"{spec!r} did not build a classifier with predict_proba_one/learn_one")
    return model  # type: ignore[no-any-return]
