"""The audit slice: random queries inside the budget, and the accuracy estimates."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from streamal import ActiveLearner, Label
from streamal.cli.app import app
from streamal.core.evaluation import LabelEvaluation, RunningMean
from streamal.core.models import build_model
from streamal.core.registry import make_budget, make_strategy
from streamal.exceptions import ConfigError
from streamal.offline.replay import ReplayConfig, run
from streamal.offline.streams import open_source


def _learner(budget: str, rate: float, audit: float, seed: int = 7) -> ActiveLearner:
    return ActiveLearner(
        build_model("logreg", seed=seed),
        make_strategy("entropy", seed=seed),
        make_budget(budget, rate=rate, seed=seed),
        audit=audit,
        seed=seed,
    )


@pytest.mark.parametrize(
    "budget",
    ["variable_threshold", "random", "split", "selective_sampling", "capped:max_pending=5"],
)
def test_audit_stays_inside_the_budget(budget: str) -> None:
    rate, audit, n = 0.1, 0.3, 4000
    learner = _learner(budget, rate, audit)
    purposes: list[str] = []
    for i, sample in enumerate(open_source("synth:SEA:n=4000", seed=3)):
        decision = learner.process(sample)
        if decision.queried:
            purposes.append(decision.purpose)
            assert learner.budget.spent <= rate * (i + 1) + 1e-9  # cumulative promise
            learner.learn(Label(sample_id=sample.id, y=sample.y))
    audits = purposes.count("audit")
    assert len(purposes) <= rate * n
    # About audit * rate * n audit queries (binomial, sd ~ 11 here).
    assert abs(audits - audit * rate * n) < 50, audits
    assert learner.evaluation.audit.count == audits


def test_no_audit_changes_nothing() -> None:
    plain = _learner("variable_threshold", 0.1, 0.0)
    other = ActiveLearner(
        build_model("logreg", seed=7),
        make_strategy("entropy", seed=7),
        make_budget("variable_threshold", rate=0.1, seed=7),
    )
    for sample in open_source("synth:SEA:n=1500", seed=2):
        a, b = plain.process(sample), other.process(sample)
        assert (a.queried, a.purpose) == (b.queried, "learn")


def test_audit_queries_are_random_and_marked() -> None:
    learner = _learner("variable_threshold", 0.2, 0.5, seed=1)
    audited, scores = [], []
    for sample in open_source("synth:SEA:n=3000", seed=1):
        decision = learner.process(sample)
        scores.append(decision.score)
        if decision.queried and decision.purpose == "audit":
            query = learner.query_for(sample, decision)
            assert query.purpose == "audit"
            assert query.propensity == pytest.approx(0.1)
            audited.append(decision.score)
    # Audit picks ignore the score: their mean score is the stream's, not the top.
    mean_all = sum(scores) / len(scores)
    assert abs(sum(audited) / len(audited) - mean_all) < 0.1
    assert learner.evaluation.audit.count == 0  # no labels yet


def test_audit_must_be_a_share() -> None:
    with pytest.raises(ConfigError, match="audit"):
        _learner("random", 0.1, 1.5)


def test_running_mean_window_and_weights() -> None:
    mean = RunningMean(window=3)
    for value, weight in [(1.0, 1.0), (0.0, 3.0), (1.0, 1.0), (1.0, 1.0)]:
        mean.add(value, weight)
    assert mean.mean == pytest.approx(3 / 6)
    assert mean.window_mean == pytest.approx(2 / 5)
    assert mean.count == 4


def test_evaluation_routes_by_purpose() -> None:
    ev = LabelEvaluation(window=10)
    ev.observe("learn", True, 0.5)
    ev.observe("learn", False, 0.25)
    ev.observe("learn", False, None)
    ev.observe("audit", False, 0.02)
    assert ev.queried.mean == pytest.approx(1 / 3)
    assert ev.ipw.mean == pytest.approx(2 / (2 + 4))
    assert ev.audit.mean == 0.0
    assert ev.summary()["ipw_labels"] == 2


def test_replay_reports_the_estimates() -> None:
    result = run(ReplayConfig(source="synth:SEA:n=3000", model="logreg", audit=0.2, seed=1))
    est = result.estimates
    assert est["audit_labels"] and est["queried_labels"]
    assert est["audit_labels"] + est["queried_labels"] == result.stats["applied"]
    assert result.summary()["audit"] == 0.2
    with pytest.raises(ConfigError, match="window"):
        run(ReplayConfig(source="synth:SEA:n=100", audit=0.2, window=10))


def test_cli_replay_audit_json() -> None:
    out = CliRunner().invoke(
        app,
        ["replay", "synth:SEA:n=2000", "--model", "logreg", "--audit", "0.2", "--json"],
    )
    assert out.exit_code == 0, out.output
    entry = json.loads(out.stdout)["runs"][0]
    assert entry["estimates"]["audit_labels"] > 0
    assert 0.0 <= entry["estimates"]["audit_accuracy"] <= 1.0


def test_cli_replay_audit_table() -> None:
    out = CliRunner().invoke(
        app, ["replay", "synth:SEA:n=1000", "--model", "logreg", "--audit", "0.2", "--quiet"]
    )
    assert out.exit_code == 0, out.output
    assert "queried only" in out.stdout and "audit" in out.stdout


@pytest.mark.slow
def test_audit_estimate_is_unbiased_and_queried_accuracy_is_not() -> None:
    """The issue's acceptance run: 50,000 samples, true prequential accuracy known."""
    result = run(
        ReplayConfig(
            source="synth:SEA:n=50000",
            model="logreg",
            strategy="entropy",
            budget="selective_sampling",
            rate=0.1,
            audit=0.2,
            seed=1,
        )
    )
    est = result.estimates
    true, audit, queried = result.accuracy, est["audit_accuracy"], est["queried_accuracy"]
    ipw = est["ipw_accuracy"]
    assert isinstance(audit, float) and isinstance(queried, float) and isinstance(ipw, float)
    assert result.samples == 50_000 and est["audit_labels"] > 900
    assert abs(audit - true) < 0.03, (true, audit)
    # The strategy's own labels are the hard cases: accuracy on them is biased low.
    assert true - queried > 0.05, (true, queried)
    # Weighting them by their query probability removes most of that bias.
    assert abs(ipw - true) < (true - queried) / 2, (true, ipw, queried)
