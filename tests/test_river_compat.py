"""ActiveClassifier: a river classifier with streamal's strategies and budget promise."""

from __future__ import annotations

import math
import pickle
from typing import Any

import pytest
from river import checks, compose, datasets, evaluate, linear_model, metrics, preprocessing, utils

from streamal import ActiveClassifier
from streamal.core.models import build_model
from streamal.offline.replay import ReplayConfig, run


def _phishing() -> list[tuple[dict[str, Any], Any]]:
    # replay's river: source names features by str(k); do the same.
    return [({str(k): v for k, v in x.items()}, y) for x, y in datasets.Phishing()]


@pytest.mark.parametrize(
    ("model", "strategy", "budget"),
    [
        ("logreg", "entropy", "variable_threshold"),
        ("gnb", "margin", "random"),
        ("hoeffding", "entropy", "split"),
    ],
)
def test_progressive_val_score_matches_replay_with_no_delay(
    model: str, strategy: str, budget: str
) -> None:
    result = run(
        ReplayConfig(
            source="river:Phishing",
            model=model,
            strategy=strategy,
            budget=budget,
            rate=0.1,
            seed=42,
            delay="0",
        )
    )
    clf = ActiveClassifier(build_model(model, seed=42), strategy, budget, rate=0.1, seed=42)
    accuracy = metrics.Accuracy()
    evaluate.progressive_val_score(_phishing(), clf, accuracy)
    # river skips arrivals with no prediction; replay reports them apart.
    assert accuracy.cm.total_weight == result.samples - result.unpredicted
    assert result.unpredicted > 0  # these models predict nothing before their first label
    assert accuracy.get() == result.accuracy
    assert clf.labels_used == result.labels_used
    assert clf.n_seen == result.samples


def test_the_budget_promise_holds_for_every_prefix() -> None:
    clf = ActiveClassifier(
        build_model("logreg", seed=0), "entropy", "variable_threshold", rate=0.05, seed=0
    )
    for n, (x, y) in enumerate(_phishing(), start=1):
        clf.learn_one(x, y)
        assert clf.labels_used <= math.floor(0.05 * n + 1e-9)
    assert clf.labels_used == clf.learner.stats.applied > 0


def test_the_decision_never_reads_the_label() -> None:
    stream = _phishing()
    first = ActiveClassifier(
        build_model("logreg", seed=3), "margin", "variable_threshold", rate=0.1, seed=3
    )
    bought = []
    for i, (x, y) in enumerate(stream):
        first.learn_one(x, y)
        if first.last_decision is not None and first.last_decision.queried:
            bought.append(i)
    # The same stream with every label that was not bought replaced by nonsense.
    second = ActiveClassifier(
        build_model("logreg", seed=3), "margin", "variable_threshold", rate=0.1, seed=3
    )
    again = []
    kept = set(bought)
    for i, (x, y) in enumerate(stream):
        second.learn_one(x, y if i in kept else "nonsense")
        if second.last_decision is not None and second.last_decision.queried:
            again.append(i)
    assert again == bought and second.labels_used == len(bought)
    assert "nonsense" not in second.classifier.predict_proba_one(stream[0][0])


def test_in_a_pipeline_with_river_metrics() -> None:
    model = compose.Pipeline(
        preprocessing.StandardScaler(),
        ActiveClassifier(
            linear_model.LogisticRegression(), "entropy", "variable_threshold", rate=0.2, seed=1
        ),
    )
    scores = metrics.F1() + metrics.CohenKappa() + metrics.ROCAUC()
    evaluate.progressive_val_score(datasets.Phishing(), model, scores)
    f1, kappa, auc = (m.get() for m in scores)
    assert 0.7 < f1 < 1 and 0.4 < kappa < 1 and 0.8 < auc <= 1
    rolling = utils.Rolling(metrics.Accuracy, window_size=200)
    steps = list(
        evaluate.iter_progressive_val_score(datasets.Phishing(), model.clone(), rolling, step=250)
    )
    assert len(steps) == 5 and steps[-1]["Step"] == 1250
    assert model["ActiveClassifier"].labels_used <= 0.2 * 1250


def test_river_conventions() -> None:
    clf = ActiveClassifier(linear_model.LogisticRegression(), rate=0.5, seed=1)
    checks.check_estimator(clf)
    for x, y in _phishing()[:100]:
        clf.learn_one(x, y)
    fresh = clf.clone()
    assert fresh.labels_used == 0 and fresh.n_seen == 0 and fresh.seed == 1
    copy = pickle.loads(pickle.dumps(clf))
    x = _phishing()[200][0]
    assert copy.predict_proba_one(x) == clf.predict_proba_one(x)
    assert copy.labels_used == clf.labels_used > 0


def test_strategy_and_budget_objects_are_accepted() -> None:
    from streamal import budgets, strategies

    clf = ActiveClassifier(
        linear_model.LogisticRegression(),
        strategies.Margin(),
        budgets.RandomBudget(rate=0.3, seed=2),
    )
    for x, y in _phishing()[:300]:
        clf.learn_one(x, y)
    assert 0 < clf.labels_used <= 90
    assert clf.predict_one({}) in {True, False}
