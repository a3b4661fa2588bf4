"""Smoke runs of the warm-start, drift-response and selection benchmarks, so that they
cannot rot."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import drift_response  # noqa: E402
import selection  # noqa: E402
import warm_start  # noqa: E402
from _helpers import default_budget_bound  # noqa: E402


def test_warm_start_benchmark_runs_each_variant() -> None:
    outs = {
        variant: warm_start.one("synth:SEA:n=3000", "logreg", 50, variant, 0.1, 1, 500)
        for variant in warm_start.VARIANTS
    }
    assert outs["warm"]["labels"] == outs["cold"]["labels"] + 50
    # the seed counts inside the budget (the default's stated promise after 500 arrivals)
    assert outs["charged"]["labels"] <= default_budget_bound(0.1, 500)
    assert all(0.0 <= o["accuracy"] <= 1.0 for o in outs.values())


def test_drift_response_benchmark_reports_the_delay() -> None:
    out = drift_response.one("agrawal", "logreg", "drift_aware", 1, 0.1, "0")
    assert out["delay"] is not None and 0 < out["delay"] <= 1000
    assert out["false_alarms"] == 0 and out["labels_after"] > 0


def test_selection_peer_at_equal_labels_spends_the_defaults_labels() -> None:
    rows = [
        {
            "stream": "iris",
            "order": order,
            "limit": None,
            "model": "gnb",
            "strategy": strategy,
            "budget": budget,
            "rate": 0.2,
            "delay": 0,
        }
        for order in (0, 1)
        for strategy, budget in (
            (selection.DEFAULT_STRATEGY, selection.DEFAULT_BUDGET),
            ("sk_uncertainty", "sk_biqf_eq"),
        )
    ]
    for order in (0, 1):
        ours, peer = selection.task(("iris", order, None, rows[2 * order : 2 * order + 2]))
        assert peer["cap"] == ours["labels"] > 0
        assert ours["labels"] - max(1, 0.01 * ours["labels"]) <= peer["labels"] <= ours["labels"]


def test_selection_reports_an_extra_directory_apart(tmp_path: Path) -> None:
    from sklearn.datasets import load_iris

    data = load_iris()
    lines = ["a,b,c,d,target"] + [
        ",".join(map(str, [*x, y])) for x, y in zip(data.data, data.target, strict=True)
    ]
    (tmp_path / "ext").mkdir()
    (tmp_path / "ext" / "flowers.csv").write_text("\n".join(lines) + "\n")
    argv = ["--part", "first2000", "--models", "gnb", "--rates", "0.1", "--delays", "0"]
    argv += ["--streams", "ext:flowers", "--peers", "matched", "--extra-dir", str(tmp_path / "ext")]
    argv += ["--cache", str(tmp_path / "c.jsonl"), "--out", str(tmp_path / "out")]
    try:
        assert selection.main(argv) == 0
    finally:
        selection.EXTERNAL.clear()
    assert not (tmp_path / "out" / "selection.md").exists()  # the suite stays apart
    report = (tmp_path / "out" / "external.md").read_text()
    assert "skactiveml VU+BIQF @ equal labels" in report and "| external |" in report


def test_selection_report_of_streams_where_full_and_random_are_level() -> None:
    # Every gap undefined (full labels no better than random): the headline says nan
    # instead of failing (it once raised KeyError: 'gap' on such a partial report).
    def row(strategy: str, budget: str, accuracy: float) -> dict[str, object]:
        return {
            "stream": "iris", "order": 0, "limit": 2000, "model": "gnb", "strategy": strategy,
            "budget": budget, "rate": 0.1, "delay": 0, "accuracy": accuracy, "macro_f1": accuracy,
            "kappa": 0.5, "labels": 15, "samples": 150,
        }  # fmt: skip

    rows = [
        row("full", "full", 0.9),
        row("random", "random", 0.9),
        row(selection.DEFAULT_STRATEGY, selection.DEFAULT_BUDGET, 0.91),
    ]
    default = f"{selection.DEFAULT_STRATEGY}/{selection.DEFAULT_BUDGET}"
    summary = selection.report(rows, default)
    (group,) = summary.values()
    assert group["configs"][default]["gap"] != group["configs"][default]["gap"]  # nan
    assert "| nan |" in "\n".join(selection._headline(summary, default))


def test_hindsight_ceiling_runs_apart_from_the_reports(tmp_path: Path) -> None:
    import hindsight

    b = selection.DEFAULT_BUDGET
    argv = ["--part", "first2000", "--models", "gnb", "--rates", "0.05", "--delays", "0"]
    pairs = f"{selection.DEFAULT_STRATEGY}/{b};{hindsight.NAME}/{b};{hindsight.NAME}/sk_biqf_eq"
    argv += ["--streams", "breast_cancer", "--no-peers", "--pairs", pairs]
    argv += ["--cache", str(tmp_path / "c.jsonl"), "--out", str(tmp_path / "out")]
    assert selection.main(argv) == 0
    runs = list(selection.ResultCache(tmp_path / "c.jsonl", selection.KEY).rows.values())
    ours = {r["order"]: r for r in runs if r["strategy"] == selection.DEFAULT_STRATEGY}
    peeked, free = (
        {r["order"]: r for r in runs if (r["strategy"], r["budget"]) == (hindsight.NAME, budget)}
        for budget in (b, "sk_biqf_eq")
    )
    assert sorted(peeked) == sorted(free) == sorted(ours) == [0, 1, 2]
    # The same manager buys about as many labels; which ones differs (it reads the truth).
    assert all(abs(r["labels"] - ours[o]["labels"]) <= 2 for o, r in peeked.items())
    assert any(r["accuracy"] != ours[o]["accuracy"] for o, r in peeked.items())
    # Unguarded, it is held to the default's count, as the equal-labels peer is.
    for o, r in free.items():
        assert r["cap"] == ours[o]["labels"] and selection.matched_enough(r["labels"], r["cap"])
    assert hindsight.NAME not in (tmp_path / "out" / "selection.md").read_text()
    out = tmp_path / "hindsight.md"
    assert hindsight.main(["--cache", str(tmp_path / "c.jsonl"), "--out", str(out)]) == 0
    table = out.read_text()
    assert "| first 2000 / gnb | suite (12) | 1 |" in table and "| hindsight |" in table


def test_hindsight_scores_the_models_mistakes_first() -> None:
    import hindsight

    s = hindsight.HindsightError()
    s.truth = "b"
    wrong_but_sure = s.score({}, {"a": 0.99, "b": 0.01})
    right_but_unsure = s.score({}, {"a": 0.49, "b": 0.51})
    assert wrong_but_sure > 0.5 > right_but_unsure > 0.0


def test_hindsight_learner_scores_with_each_arrivals_own_label() -> None:
    import hindsight

    from streamal.messages import Label

    learner = hindsight.peek(
        selection.build_learner("gnb", selection.DEFAULT_STRATEGY, selection.DEFAULT_BUDGET, 0.2, 1)
    )
    wrong = right = 0
    for sample in selection.load("iris", 0, None):
        d = learner.process(sample)
        if d.queried:
            learner.learn(Label(sample_id=sample.id, y=sample.y))
        if d.prediction is not None and d.score != 0.5:  # 0.5: a sure mistake, or a tie
            assert (d.score > 0.5) == (d.prediction != sample.y)
            wrong += d.prediction != sample.y
            right += d.prediction == sample.y
    assert wrong > 0 and right > 0
