"""Committee strategies over river ensembles, pipelines, the sklearn adapter and Committee."""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace
from typing import Any

import pytest
from river import compose, linear_model, naive_bayes, tree

from streamal.core.models import MixedScaler, build_model
from streamal.exceptions import ConfigError
from streamal.offline.streams import open_source
from streamal.strategies import BALD, Committee, ConsensusKL, VoteEntropy
from streamal.strategies.committee import member_probas


def _trained(model: Any, n: int = 300) -> tuple[Any, list[dict[str, Any]]]:
    data = [(s.x, s.y) for s in itertools.islice(open_source("synth:Agrawal:n=2000", seed=3), n)]
    for x, y in data:
        model.learn_one(x, y)
    return model, [x for x, _ in data]


@pytest.mark.parametrize("spec", ["bagging", "arf", "srp"])
def test_members_of_river_ensembles(spec: str) -> None:
    model, xs = _trained(build_model(spec, seed=1))
    probas = member_probas(model, xs[0])
    assert len(probas) == 10
    assert all(isinstance(p, dict) for p in probas)
    for strategy in (VoteEntropy(), ConsensusKL(), BALD()):
        scores = [strategy.score(x, model.predict_proba_one(x), model) for x in xs[:100]]
        assert all(0.0 <= s <= 1.0 for s in scores)
        assert max(scores) > 0.0, f"{type(strategy).__name__} found no disagreement in {spec}"


def test_members_at_the_end_of_a_pipeline() -> None:
    pipeline = compose.Pipeline(MixedScaler(), build_model("bagging", seed=2))
    model, xs = _trained(pipeline)
    assert len(member_probas(model, xs[0])) == 10
    assert 0.0 <= BALD().score(xs[0], model.predict_proba_one(xs[0]), model) <= 1.0


def test_user_committee_learns_by_online_bagging() -> None:
    committee = Committee(
        [
            tree.HoeffdingTreeClassifier(),
            naive_bayes.GaussianNB(),
            compose.Pipeline(MixedScaler(), linear_model.LogisticRegression()),
        ],
        seed=4,
    )
    model, xs = _trained(committee)
    probas = member_probas(model, xs[1])
    assert len(probas) == 3 and all(probas)
    mean = model.predict_proba_one(xs[1])
    assert math.isclose(sum(mean.values()), 1.0)
    clone = committee.clone()
    untrained = [{}, {}, {False: 0.5, True: 0.5}]  # logistic regression starts at 1/2
    assert member_probas(clone, xs[1]) == untrained, "a clone starts untrained"
    with pytest.raises(ConfigError):
        Committee([])


def _fake(*probas: dict[Any, float]) -> SimpleNamespace:
    return SimpleNamespace(member_probas_one=lambda x: list(probas))


def test_bald_equals_kl_to_an_unweighted_consensus() -> None:
    members = ({"a": 0.9, "b": 0.1}, {"a": 0.2, "b": 0.8}, {"a": 0.6, "b": 0.4})
    model = _fake(*members)
    mean = {k: sum(m[k] for m in members) / 3 for k in "ab"}
    assert math.isclose(BALD().score({}, {}, model), ConsensusKL().score({}, mean, model))
    # A weighted consensus moves away from the mean: the KL grows (the mean minimizes it).
    weighted = {"a": 0.8, "b": 0.2}
    assert ConsensusKL().score({}, weighted, model) > BALD().score({}, {}, model)


def test_scores_on_hand_made_committees() -> None:
    split = _fake({"a": 1.0}, {"b": 1.0})
    alike = _fake({"a": 0.5, "b": 0.5}, {"a": 0.5, "b": 0.5})
    assert VoteEntropy().score({}, {}, split) == 1.0
    assert VoteEntropy().score({}, {}, alike) == 0.0
    assert BALD().score({}, {}, split) == 1.0
    assert BALD().score({}, {}, alike) == 0.0
    three = _fake({"a": 1.0}, {"b": 1.0}, {"c": 1.0})
    assert math.isclose(VoteEntropy().score({}, {}, three), 1.0)
    assert VoteEntropy().score({}, {}, _fake({}, {})) == 1.0, "nothing learned: ask"
    assert BALD().score({}, {}, _fake({"a": 0.7})) == 0.0, "one class only: certain"


def test_single_models_are_refused_with_a_hint() -> None:
    model, xs = _trained(build_model("gnb"))
    with pytest.raises(ConfigError, match="bagging.*Committee"):
        VoteEntropy().score(xs[0], model.predict_proba_one(xs[0]), model)
    with pytest.raises(ConfigError):
        BALD().score(xs[0], {}, None)


def test_sklearn_adapter_members() -> None:
    sk = pytest.importorskip("sklearn.ensemble")
    from streamal.core.sklearn import SklearnClassifier

    model = SklearnClassifier(sk.RandomForestClassifier(n_estimators=5, random_state=0))
    model, xs = _trained(model, 200)
    assert len(member_probas(model, xs[0])) == 5
    assert 0.0 <= VoteEntropy().score(xs[0], model.predict_proba_one(xs[0]), model) <= 1.0
