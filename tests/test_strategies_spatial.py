"""Density-focused margin (DBALStream), PAL and expected gradient length."""

from __future__ import annotations

import copy
import itertools
import math
import random

import numpy as np
import pytest

from streamal.core.models import build_model
from streamal.exceptions import ConfigError
from streamal.offline.streams import open_source
from streamal.strategies import DensityMargin, ExpectedGradientLength, ProbabilisticAL
from streamal.strategies.egl import linear_features

UNSURE = {"y": 0.5, "n": 0.5}


def _brute_density(window: list[np.ndarray], x: np.ndarray) -> int:
    """Number of window points whose nearest neighbour within the window is farther than x."""
    count = 0
    for i, p in enumerate(window):
        others = [np.linalg.norm(p - q) for j, q in enumerate(window) if j != i]
        if others and np.linalg.norm(p - x) < min(others):
            count += 1
    return count


def test_density_factor_matches_brute_force_on_scaled_data() -> None:
    rng = np.random.default_rng(0)
    s = DensityMargin(window=30)
    points = rng.normal(size=(30, 2))  # features on the same scale, mean 0, sd 1
    for p in points:
        s.observe({"a": float(p[0]), "b": float(p[1])})
    s._refresh()  # nearest-neighbour distances in the final scaling
    scaler = s._scaler
    scaled = [scaler.scale(scaler.vector({"a": float(p[0]), "b": float(p[1])})) for p in points]
    for q in rng.normal(size=(20, 2)) * 1.5:
        x = {"a": float(q[0]), "b": float(q[1])}
        assert s.density(x) == _brute_density(scaled, scaler.scale(scaler.vector(x)))


def test_density_gates_outliers_and_weights_softly() -> None:
    rng = random.Random(1)
    gate, weight = DensityMargin(window=100), DensityMargin(window=100, mode="weight")
    for _ in range(300):
        x = {"a": rng.gauss(0, 1), "b": rng.gauss(0, 1)}
        gate.observe(x)
        weight.observe(x)
    assert gate.score({"a": 40.0, "b": -40.0}, UNSURE) == 0.0
    inside = [
        gate.score({"a": rng.gauss(0, 0.3), "b": rng.gauss(0, 0.3)}, UNSURE) for _ in range(50)
    ]
    assert sum(v == 1.0 for v in inside) > 10
    soft = weight.score({"a": 0.0, "b": 0.0}, UNSURE)
    assert 0.0 <= soft < 1.0
    with pytest.raises(ConfigError, match="mode"):
        DensityMargin(mode="both")


def test_density_ignores_strings_and_grows_columns() -> None:
    s = DensityMargin(window=10)
    s.observe({"a": 1.0, "city": "Oslo"})
    s.observe({"a": 2.0, "b": 5.0})
    assert s._scaler.dim == 2
    assert 0.0 <= s.score({"a": 1.5, "b": 1.0, "city": "Rome"}, UNSURE) <= 1.0


def test_pal_is_high_where_labels_are_missing_or_mixed() -> None:
    s = ProbabilisticAL()
    rng = random.Random(2)
    for _ in range(200):  # left: class "l" only; middle: mixed; right: nothing labelled
        a = rng.uniform(-3, -1)
        s.observe({"a": a})
        s.learn({"a": a}, "l")
        m = rng.uniform(-0.5, 0.5)
        s.observe({"a": m})
        s.learn({"a": m}, "l" if rng.random() < 0.5 else "r")
        s.observe({"a": rng.uniform(1, 3)})
    left, middle, right = (s.score({"a": v}, {}) for v in (-2.0, 0.0, 2.0))
    assert left < 0.05
    assert middle > left and right > middle


def test_pal_with_model_posterior_and_warm_start() -> None:
    s = ProbabilisticAL(use_model=True, window=50)
    s.learn({"a": 1.0}, "x")  # labelled before observed: the scaler learns it
    s.learn({"a": 1.1}, "y")
    assert s._scaler.dim == 1
    sure = s.score({"a": 1.05}, {"x": 0.99, "y": 0.01})
    unsure = s.score({"a": 1.05}, {"x": 0.5, "y": 0.5})
    assert 0.0 <= sure < unsure <= 1.0
    for i in range(500):
        s.learn({"a": float(i)}, "x")
    assert len(s._labelled) == 50, "the labelled window is bounded"


def test_egl_equals_the_expected_weight_change_of_river_logistic_regression() -> None:
    """For a binary logistic regression, the expected gradient length is the expected norm
    of the weight update one label would cause, divided by the learning rate."""
    model = build_model("logreg", seed=0)
    data = [(s.x, s.y) for s in itertools.islice(open_source("synth:SEA:n=500", seed=4), 300)]
    for x, y in data[:200]:
        model.learn_one(x, y)
    binary = model.steps["BinaryLabels"]
    lr = binary.classifier.optimizer.learning_rate
    labels = binary._labels
    s = ExpectedGradientLength(scale=1.0)
    for x, _ in data[200:230]:
        proba = model.predict_proba_one(x)
        z = linear_features(model, x)
        expected = 0.0
        for label in labels:
            clf = copy.deepcopy(binary.classifier)
            w0, b0 = dict(clf.weights), clf.intercept
            clf.learn_one(z, labels.index(label) == 1)
            step = sum((clf.weights.get(k, 0.0) - w0.get(k, 0.0)) ** 2 for k in z)
            step += (clf.intercept - b0) ** 2
            expected += proba[label] * math.sqrt(step) / lr
        g = -math.log(1.0 - s.score(x, proba, model))  # undo the squash (scale 1)
        assert math.isclose(g, expected, rel_tol=1e-6)


def test_egl_needs_a_linear_model() -> None:
    model = build_model("hoeffding")
    model.learn_one({"a": 1.0}, True)
    with pytest.raises(ConfigError, match="linear model"):
        ExpectedGradientLength().score({"a": 1.0}, {True: 1.0}, model)
    assert ExpectedGradientLength().score({"a": 1.0}, {}, build_model("softmax")) == 1.0
