"""A learner with the drift-aware budget survives a snapshot (found by issue 17's tests).

river's Page-Hinkley detector keeps its drift test as a bound method, which pickles
through ``builtins.getattr``; the restricted unpickler refused it, so a service with
``budget = "drift_aware"`` could not restart from its snapshot.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from streamal.core.checkpoint import Checkpointer, Snapshot
from streamal.core.spec import LearnerSpec, build_active_learner
from streamal.messages import Label, Sample


@pytest.mark.parametrize("budget", ["drift_aware", "drift_aware:detector=adwin"])
def test_drift_aware_learner_restores_and_decides_alike(budget: str, tmp_path: Path) -> None:
    learner = build_active_learner(LearnerSpec("logreg", "margin", budget, 0.2, seed=1))
    samples = [Sample(id=str(i), x={"a": float(i % 5), "b": (i % 3) / 3}) for i in range(600)]
    for s in samples[:300]:
        if learner.process(s).queried:
            learner.apply(Label(sample_id=s.id, y=s.x["a"] > 2))
    checkpointer = Checkpointer(tmp_path)
    checkpointer.save(Snapshot(learner))
    restored = checkpointer.load()
    assert restored is not None
    again = restored.learner
    for s in samples[300:]:
        first, second = learner.process(s), again.process(s)
        assert first.queried == second.queried
        if first.queried:
            label = Label(sample_id=s.id, y=s.x["a"] > 2)
            assert learner.apply(label) == again.apply(label)
    assert again.budget.spent == learner.budget.spent
    assert again.budget.drifts == learner.budget.drifts
