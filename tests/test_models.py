"""Model specs: every spec builds, learns binary or multi-class data, handles strings."""

from __future__ import annotations

import pickle

import pytest

from streamal.core.models import MODEL_SPECS, BinaryLabels, MixedScaler, build_model
from streamal.exceptions import ConfigError

ROWS = [
    ({"size": 1.0, "colour": "red"}, "a"),
    ({"size": 5.0, "colour": "blue"}, "b"),
    ({"size": 9.0, "colour": "green"}, "c"),
] * 100


@pytest.mark.parametrize("spec", sorted(MODEL_SPECS))
def test_every_spec_learns_with_categorical_features(spec: str) -> None:
    model = build_model(spec, seed=1)
    rows = [(x, y) for x, y in ROWS if spec != "logreg" or y != "c"]
    for x, y in rows:
        model.predict_proba_one(x)
        model.learn_one(x, y)
    hits = 0
    for x, y in rows[:30]:
        proba = model.predict_proba_one(x)
        hits += max(proba, key=proba.get) == y
    assert hits >= 20  # well above chance (1/3 or 1/2)
    clone = pickle.loads(pickle.dumps(model))
    assert clone.predict_proba_one(rows[0][0]) == pytest.approx(model.predict_proba_one(rows[0][0]))


def test_logreg_refuses_a_third_class_clearly() -> None:
    model = build_model("logreg")
    model.learn_one({"a": 1.0}, "x")
    model.learn_one({"a": 2.0}, "y")
    with pytest.raises(ConfigError, match="third class"):
        model.learn_one({"a": 3.0}, "z")


def test_binary_labels_before_and_after_first_class() -> None:
    from river import linear_model

    m = BinaryLabels(linear_model.LogisticRegression())
    assert m.predict_proba_one({"a": 1.0}) == {}
    m.learn_one({"a": 1.0}, 0)
    assert list(m.predict_proba_one({"a": 1.0})) == [0]


def test_mixed_scaler_standardizes_numbers_and_one_hots_strings() -> None:
    t = MixedScaler()
    for v in (2.0, 4.0, 6.0):
        t.learn_one({"v": v, "c": "x"})
    out = t.transform_one({"v": 4.0, "c": "y"})
    assert out == {"v": 0.0, "c=y": 1.0}
    assert t.transform_one({"new": 3.0}) == {"new": 0.0}


def test_module_attr_spec_and_errors() -> None:
    model = build_model("river.naive_bayes:GaussianNB")
    assert type(model).__name__ == "GaussianNB"
    with pytest.raises(ConfigError, match="unknown model"):
        build_model("nope")
    with pytest.raises(ConfigError, match="cannot load"):
        build_model("river.tree:Nope")
    with pytest.raises(ConfigError, match="did not build a classifier"):
        build_model("collections:OrderedDict")


@pytest.mark.parametrize("spec", sorted(MODEL_SPECS))
def test_every_spec_loads_with_the_restricted_unpickler(spec: str) -> None:
    """Snapshots and state records are read with the allow-list (knn's distance too)."""
    from streamal.core.safepickle import loads

    model = build_model(spec, seed=1)
    for x, y in ROWS[:60]:
        model.learn_one(x, y if spec != "logreg" or y != "c" else "a")
    clone = loads(pickle.dumps(model))
    assert clone.predict_proba_one(ROWS[0][0]) == pytest.approx(model.predict_proba_one(ROWS[0][0]))
