"""Quickstart: active learning on a stream with the Python API, labels arriving late.

Run: ``python examples/quickstart.py`` (a few seconds). It builds an ActiveLearner,
streams river's Phishing dataset through it, answers each query 50 samples later (as an
annotator queue would), and compares the result with random sampling at the same budget
through the replay driver.
"""

from __future__ import annotations

from collections import deque

from streamal import ActiveLearner, Label, budgets, strategies
from streamal.core.models import build_model
from streamal.offline.replay import ReplayConfig, compare
from streamal.offline.streams import open_source

RATE, DELAY = 0.1, 50


def hand_loop() -> None:
    learner = ActiveLearner(
        build_model("logreg", seed=1),
        strategies.Entropy(),
        budgets.VariableThreshold(rate=RATE),
        ttl=1000,  # queries unanswered for 1,000 samples expire
    )
    answers: deque[tuple[int, Label]] = deque()  # the annotators' queue: (due, label)
    correct = 0
    for i, sample in enumerate(open_source("river:Phishing")):
        while answers and answers[0][0] <= i:
            learner.learn(answers.popleft()[1])
        decision = learner.process(sample)  # predict, score, decide
        correct += decision.prediction == sample.y  # test-then-train accuracy
        if decision.queried:  # in production: publish learner.query_for(sample, decision)
            answers.append((i + DELAY, Label(sample_id=sample.id, y=sample.y)))
    stats = learner.stats
    print(
        f"hand loop: {stats.seen} samples, {stats.queried} labels bought "
        f"({stats.queried / stats.seen:.1%}), {stats.applied} applied, "
        f"accuracy {correct / stats.seen:.3f}, model version {learner.model_version}"
    )


def replay_comparison() -> None:
    config = ReplayConfig(
        source="river:Phishing", model="logreg", rate=RATE, delay=str(DELAY), seed=1
    )
    for result in compare(config, ["random", "full"]):
        print(
            f"replay {result.name:>6}: {result.strategy}/{result.budget}: "
            f"{result.labels_used} labels, accuracy {result.accuracy:.3f}"
        )


if __name__ == "__main__":
    hand_loop()
    replay_comparison()
