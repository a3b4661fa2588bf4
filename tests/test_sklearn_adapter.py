"""The scikit-learn model adapter: refit/incremental learning, columns, members, pickling."""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import make_classification  # noqa: E402
from sklearn.ensemble import BaggingClassifier, RandomForestClassifier  # noqa: E402
from sklearn.gaussian_process import GaussianProcessClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression, Perceptron, SGDClassifier  # noqa: E402
from sklearn.naive_bayes import GaussianNB  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from streamal import ActiveLearner, Label, Sample, budgets, strategies  # noqa: E402
from streamal.core.sklearn import OneClassFallback, SklearnClassifier  # noqa: E402
from streamal.exceptions import ConfigError, DecodeError  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread() -> Iterator[None]:
    """Tiny fits run fastest on one BLAS thread (many threads thrash on a busy CI box)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def _data(n: int = 200, classes: int = 2, seed: int = 0) -> list[tuple[dict[str, float], str]]:
    X, y = make_classification(
        n,
        n_features=4,
        n_informative=3,
        n_redundant=0,
        n_classes=classes,
        class_sep=2.0,
        random_state=seed,
    )
    names = np.array(["a", "b", "c", "d"])[y]
    return [
        ({f"f{j}": float(v) for j, v in enumerate(row)}, str(c))
        for row, c in zip(X, names, strict=True)
    ]


def _accuracy(model: SklearnClassifier, data: list[tuple[dict[str, float], str]]) -> float:
    return float(np.mean([model.predict_one(x) == y for x, y in data]))


def test_cold_start_one_class_then_fit() -> None:
    model = SklearnClassifier(LogisticRegression())
    assert model.predict_proba_one({"a": 1.0}) == {}
    assert model.predict_one({"a": 1.0}) is None
    model.learn_one({"a": 1.0}, 3)
    assert model.predict_proba_one({"a": 0.0}) == {3: 1.0}
    model.learn_one({"a": -1.0}, 7)
    proba = model.predict_proba_one({"a": 5.0})
    assert sorted(proba) == [3, 7] and all(type(k) is int for k in proba)
    assert proba[3] > proba[7]
    assert sum(proba.values()) == pytest.approx(1.0)


def test_refit_every_k_labels_and_learns() -> None:
    data = _data()
    model = SklearnClassifier(LogisticRegression(), every=10)
    fits = []
    for x, y in data[:100]:
        model.learn_one(x, y)
        model.predict_proba_one(x)  # the fit is lazy: reading the model triggers it
        fits.append(model.estimator_)
    distinct = {id(f) for f in fits if f is not None}
    # the first fit as soon as two classes are seen, then one per 10 labels
    first = next(i for i, f in enumerate(fits) if f is not None)
    assert len(distinct) == 1 + (100 - 1 - first) // 10
    # the last fit saw exactly the labels up to its refit point, like a plain fit
    seen = first + 1 + 10 * ((100 - 1 - first) // 10)
    X = np.array([list(x.values()) for x, _ in data])
    plain = LogisticRegression().fit(X[:seen], [y for _, y in data[:seen]])
    expected = plain.predict_proba(X[100:])[:, 0]
    got = [model.predict_proba_one(x)["a"] for x, _ in data[100:]]
    assert got == pytest.approx(expected.tolist())
    assert _accuracy(model, data[100:]) > 0.8


def test_window_bounds_memory_and_forgets_old_concept() -> None:
    data = _data(300)
    flipped = [(x, {"a": "b", "b": "a"}[y]) for x, y in data]
    bounded = SklearnClassifier(LogisticRegression(), every=5, window=50)
    unbounded = SklearnClassifier(LogisticRegression(), every=5)
    for x, y in data + flipped[:150]:
        bounded.learn_one(x, y)
        unbounded.learn_one(x, y)
    assert bounded.n_labels == 50 and unbounded.n_labels == 450
    assert _accuracy(bounded, flipped[150:]) > 0.75
    assert _accuracy(unbounded, flipped[150:]) < 0.5


def test_string_features_one_hot_and_bad_types_refused() -> None:
    model = SklearnClassifier(LogisticRegression(C=100.0))
    for _ in range(5):
        model.learn_one({"colour": "red", "n": 1}, "warm")
        model.learn_one({"colour": "blue", "n": True}, "cold")
    assert model.columns == ["colour=red", "n", "colour=blue"]
    assert model.predict_one({"colour": "red"}) == "warm"
    assert model.predict_one({"colour": "blue"}) == "cold"
    # an unseen category and an unseen feature count 0: the model still answers
    assert set(model.predict_proba_one({"colour": "green", "extra": 3.0})) == {"warm", "cold"}
    with pytest.raises(DecodeError, match="x.tags"):
        model.learn_one({"tags": [1, 2]}, "warm")


def test_partial_fit_incremental_with_known_classes() -> None:
    data = _data(400, classes=3)
    model = SklearnClassifier(SGDClassifier(loss="log_loss"), classes=["a", "b", "c"], seed=1)
    assert model._partial
    model.learn_one(*data[0])  # one class is enough when the classes are known
    assert sorted(model.predict_proba_one(data[1][0])) == ["a", "b", "c"]
    first = model._fitted
    for x, y in data[1:300]:
        model.learn_one(x, y)
    assert model._fitted is first  # updated in place, never refitted
    assert _accuracy(model, data[300:]) > 0.6
    xs = [x for x, _ in data[300:]]
    for batch, one in zip(
        model.predict_proba_batch(xs), map(model.predict_proba_one, xs), strict=True
    ):
        assert batch == pytest.approx(one)
    assert model.predict_batch(xs) == [model.predict_one(x) for x in xs]
    with pytest.raises(ConfigError, match="not among classes"):
        model.learn_one(data[0][0], "z")


def test_partial_fit_rebuilds_on_new_class_and_new_column() -> None:
    data = _data(300, classes=3)
    model = SklearnClassifier(GaussianNB())
    two = [(x, y) for x, y in data if y != "c"]
    for x, y in two[:60]:
        model.learn_one(x, y)
    assert sorted(model.predict_proba_one(data[0][0])) == ["a", "b"]
    before = model._fitted
    third = next((x, y) for x, y in data if y == "c")
    model.learn_one(*third)
    assert model._fitted is not before
    assert sorted(model.predict_proba_one(third[0])) == ["a", "b", "c"]
    model.learn_one({**third[0], "new": 1.0}, "c")
    assert model.estimator_.n_features_in_ == 5
    for x, y in data[:200]:
        model.learn_one(x, y)
    assert _accuracy(model, data[200:]) > 0.6


def test_warm_start_costs_one_fit() -> None:
    model = SklearnClassifier(LogisticRegression(), every=1)
    for x, y in _data(50):
        model.learn_one(x, y)
    assert model._fitted is None  # nothing fitted until the model is read
    first = model.estimator_
    assert first is not None and first.n_features_in_ == 4
    assert model.estimator_ is first  # no new label, no refit


def test_refit_forced_and_bad_arguments() -> None:
    model = SklearnClassifier(GaussianNB(), incremental=False)
    assert not model._partial
    with pytest.raises(ConfigError, match="no partial_fit"):
        SklearnClassifier(RandomForestClassifier(), incremental=True)
    with pytest.raises(ConfigError, match="every"):
        SklearnClassifier(LogisticRegression(), every=0)
    with pytest.raises(ConfigError, match="window"):
        SklearnClassifier(LogisticRegression(), window=0)


def test_hard_classifier_gives_one_hot_posterior() -> None:
    model = SklearnClassifier(Perceptron(), incremental=False)
    for x, y in _data(60):
        model.learn_one(x, y)
    proba = model.predict_proba_one(_data(60)[0][0])
    assert sorted(proba.values()) == [0.0, 1.0]


@pytest.mark.parametrize(
    "estimator",
    [
        RandomForestClassifier(n_estimators=7),
        BaggingClassifier(LogisticRegression(), n_estimators=5, max_features=3),
        make_pipeline(StandardScaler(), BaggingClassifier(GaussianNB(), n_estimators=4)),
    ],
    ids=["forest", "bagging-feature-subsets", "pipeline-bagging"],
)
def test_members_average_to_the_ensemble(estimator: object) -> None:
    data = _data(80, classes=3)
    model = SklearnClassifier(estimator, every=20, seed=3)
    for x, y in data:
        model.learn_one(x, y)
    for x, _ in data[:10]:
        members = model.member_probas_one(x)
        assert len(members) == model.n_members > 1
        mean = {c: np.mean([m.get(c, 0.0) for m in members]) for c in ("a", "b", "c")}
        proba = model.predict_proba_one(x)
        assert proba == pytest.approx(mean)


def test_members_of_gp_bagging_on_a_single_class_bootstrap() -> None:
    est = BaggingClassifier(OneClassFallback(GaussianProcessClassifier()), n_estimators=8)
    model = SklearnClassifier(est, seed=0)
    x0, x1 = {"u": 0.0}, {"u": 1.0}
    model.learn_one(x0, "left")
    model.learn_one(x1, "right")
    members = model.member_probas_one({"u": 0.5})
    assert len(members) == 8
    # with 2 labels some bootstrap holds one class: that member is certain of it
    assert any(len(m) == 1 and next(iter(m.values())) == 1.0 for m in members)
    assert all(set(m) <= {"left", "right"} for m in members)
    assert SklearnClassifier(LogisticRegression()).member_probas_one(x0) == []


def test_pickle_round_trip_and_clone() -> None:
    data = _data(120)
    model = SklearnClassifier(RandomForestClassifier(n_estimators=5), every=5, seed=7)
    for x, y in data[:60]:
        model.learn_one(x, y)
    copy = pickle.loads(pickle.dumps(model))
    for x, y in data[60:]:
        assert copy.predict_proba_one(x) == model.predict_proba_one(x)
        model.learn_one(x, y)
        copy.learn_one(x, y)
    fresh = model.clone()
    assert fresh.predict_proba_one(data[0][0]) == {} and fresh.seed == 7


def test_seed_makes_runs_repeat() -> None:
    data = _data(100)

    def run(seed: int) -> list[dict[str, float]]:
        model = SklearnClassifier(RandomForestClassifier(n_estimators=5), every=10, seed=seed)
        out = []
        for x, y in data:
            out.append(model.predict_proba_one(x))
            model.learn_one(x, y)
        return out

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_drives_the_active_learner_reproducibly() -> None:
    data = _data(300)

    def run() -> tuple[list[bool], int]:
        learner = ActiveLearner(
            SklearnClassifier(LogisticRegression(), every=2, seed=0),
            strategies.LeastConfidence(),
            budgets.VariableThreshold(rate=0.1, seed=0),
        )
        queried = []
        for i, (x, y) in enumerate(data):
            d = learner.process(Sample(id=str(i), x=x))
            queried.append(d.queried)
            if d.queried:
                assert learner.learn(Label(sample_id=str(i), y=y))
        return queried, learner.model_version

    first, version = run()
    assert first == run()[0]
    assert 5 <= sum(first) <= 30 and version == sum(first)


def test_core_package_does_not_import_the_adapter() -> None:
    code = "import sys, streamal; print('streamal.core.sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
