"""The Label Studio bridge's bookkeeping with a stand-in client (no server needed).

The end-to-end test against a real Label Studio is ``test_labelling_label_studio.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streamal.exceptions import ConfigError
from streamal.labelling.label_studio import BridgeState, LabelStudioBridge
from streamal.labelling.label_studio_api import choices_result
from streamal.messages import Query, decode_label
from streamal.transports import MemoryBroker, MemorySink


class FakeStudio:
    """Records the calls the bridge makes, like Label Studio would answer them."""

    def __init__(self) -> None:
        self.made: dict[int, dict[str, Any]] = {}  # tasks by id
        self.predictions: list[tuple[int, Any, float]] = []
        self.configs: list[str] = []

    def create_task(self, project: int, data: dict[str, Any]) -> int:
        task = len(self.made) + 1
        self.made[task] = {"id": task, "data": data, "annotations": []}
        return task

    def create_prediction(self, task: int, result: Any, score: float, version: str) -> None:
        self.predictions.append((task, result, score))

    def set_label_config(self, project: int, config: str) -> None:
        self.configs.append(config)

    def tasks(self, project: int) -> list[dict[str, Any]]:
        return list(self.made.values())


def _query(i: int, prediction: Any = None) -> Query:
    proba = {} if prediction is None else {"True": 0.8, "False": 0.2}
    return Query(
        sample_id=f"q{i}",
        x={"a": i},
        proba=proba,
        prediction=prediction,
        score=0.5,
        strategy="Entropy",
        model_version=3,
        classes=[True, False],
    )


def _bridge(tmp_path: Path, studio: Any, broker: MemoryBroker) -> LabelStudioBridge:
    state = BridgeState(tmp_path / "bridge.sqlite")
    return LabelStudioBridge(studio, 1, state, MemorySink(broker), "labels")


def test_a_query_is_one_task_even_across_restarts(tmp_path: Path) -> None:
    studio, broker = FakeStudio(), MemoryBroker()
    bridge = _bridge(tmp_path, studio, broker)
    assert bridge.add_query(_query(0)) == bridge.add_query(_query(0)) == 1
    bridge.add_query(_query(1, prediction=True))
    bridge.state.close()
    again = _bridge(tmp_path, studio, broker)
    assert again.add_query(_query(1, prediction=True)) == 2 and len(studio.made) == 2
    assert studio.predictions == [(2, choices_result(True), 0.8)]
    assert len(studio.configs) == 1  # written once per state file
    assert '<Choice value="True"/>' in studio.configs[0]


def test_webhook_retries_publish_once_and_an_update_publishes_again(tmp_path: Path) -> None:
    studio, broker = FakeStudio(), MemoryBroker()
    bridge = _bridge(tmp_path, studio, broker)
    task = bridge.add_query(_query(0))
    annotation = {"id": 9, "task": task, "completed_by": 4, "result": choices_result(False)}
    payload = json.dumps(
        {"action": "ANNOTATION_CREATED", "annotation": annotation, "task": {"id": task}}
    ).encode()
    assert [bridge.webhook(payload) for _ in range(3)] == [200, 200, 200]
    (label,) = [decode_label(v or b"") for v in broker.values("labels")]
    assert (label.sample_id, label.y, label.annotator) == ("q0", False, "label-studio:4")
    updated = {**annotation, "result": choices_result(True)}
    studio.made[task]["annotations"] = [updated]
    assert bridge.poll() == 1 and bridge.poll() == 0
    assert [decode_label(v or b"").y for v in broker.values("labels")] == [False, True]
    assert bridge.webhook(b"not json") == 400
    assert bridge.webhook(b'{"action": "PROJECT_UPDATED"}') == 200


def test_no_classes_anywhere_is_a_config_error(tmp_path: Path) -> None:
    bridge = _bridge(tmp_path, FakeStudio(), MemoryBroker())
    query = _query(0).model_copy(update={"classes": None})
    with pytest.raises(ConfigError, match="learner.classes"):
        bridge.add_query(query)
