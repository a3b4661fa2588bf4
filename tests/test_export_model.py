"""streamal export-model: a checkpoint's trained model, loaded and used in plain river."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from streamal.core.checkpoint import Checkpointer, Snapshot
from streamal.core.learner import ActiveLearner
from streamal.core.models import build_model
from streamal.core.pending import SQLitePendingStore
from streamal.core.registry import make_budget, make_strategy
from streamal.offline.oracle import SimulatedOracle
from streamal.offline.replay import replay
from streamal.offline.streams import open_source

# Loads the exported model in a fresh interpreter with river alone, predicts, and says
# whether anything of streamal was imported.
PLAIN_RIVER = """
import json, pickle, sys
with open(sys.argv[1], "rb") as fh:  # a file this test exported itself
    model = pickle.load(fh)
rows = json.loads(sys.argv[2])
print(json.dumps({
    "predictions": [model.predict_one(x) for x in rows],
    "streamal_imported": any(m.split(".")[0] == "streamal" for m in sys.modules),
}))
"""


def _trained(
    tmp_path: Path, model: str, pending: SQLitePendingStore | None = None
) -> ActiveLearner:
    learner = ActiveLearner(
        build_model(model, seed=5),
        make_strategy("entropy", seed=5),
        make_budget("variable_threshold", rate=0.2, seed=5),
        pending=pending,
    )
    replay(open_source("synth:SEA:n=2000", seed=5), learner, SimulatedOracle("20", seed=5))
    return learner


def _streamal(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamal", *args], capture_output=True, text=True, timeout=120
    )


def _rows() -> list[dict[str, float]]:
    return [sample.x for sample in open_source("synth:SEA:n=50", seed=11)]


def test_exported_tree_model_predicts_in_plain_river(tmp_path: Path) -> None:
    learner = _trained(tmp_path, "hoeffding")
    Checkpointer(tmp_path / "state").save(Snapshot(learner=learner))
    out = _streamal("export-model", str(tmp_path / "state"), str(tmp_path / "model.pkl"))
    assert out.returncode == 0, out.stderr
    assert "loading needs river;" in out.stderr
    info = json.loads((tmp_path / "model.pkl.json").read_text())
    data = (tmp_path / "model.pkl").read_bytes()
    assert info["sha256"] == hashlib.sha256(data).hexdigest() and info["bytes"] == len(data)
    assert info["needs"] == ["river"] and info["model_version"] == learner.model_version > 0
    rows = _rows()
    plain = subprocess.run(
        [sys.executable, "-c", PLAIN_RIVER, str(tmp_path / "model.pkl"), json.dumps(rows)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(plain.stdout)
    assert result["streamal_imported"] is False
    assert result["predictions"] == [learner.model.predict_one(x) for x in rows]


def test_scaled_models_say_they_need_streamal(tmp_path: Path) -> None:
    learner = _trained(tmp_path, "logreg")
    Checkpointer(tmp_path / "state").save(Snapshot(learner=learner))
    out = _streamal("export-model", str(tmp_path / "state"), str(tmp_path / "m.pkl"))
    assert out.returncode == 0, out.stderr
    info = json.loads((tmp_path / "m.pkl.json").read_text())
    assert info["needs"] == ["river", "streamal"]
    rows = _rows()
    plain = subprocess.run(
        [sys.executable, "-c", PLAIN_RIVER, str(tmp_path / "m.pkl"), json.dumps(rows)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(plain.stdout)["predictions"] == [learner.model.predict_one(x) for x in rows]


def test_export_leaves_the_services_pending_database_alone(tmp_path: Path) -> None:
    from streamal.core.export import export_model

    database = tmp_path / "state" / "pending.sqlite"
    database.parent.mkdir()
    store = SQLitePendingStore(str(database))
    learner = _trained(tmp_path, "hoeffding", pending=store)
    Checkpointer(tmp_path / "state").save(Snapshot(learner=learner))
    waiting = sorted(entry.sample_id for entry in store)
    assert waiting  # labels delayed by 20 arrivals: the last queries still wait
    # The live service moves on: one more query waits, after the snapshot.
    from streamal.core.pending import PendingEntry

    store.put(PendingEntry("late", {"a": 1.0}, queried_at=1.0, expires_at=9e9))
    export_model(tmp_path / "state", tmp_path / "model.pkl")
    assert sorted(entry.sample_id for entry in store) == sorted([*waiting, "late"])
    store.close()


def test_export_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    out = _streamal("export-model", str(tmp_path / "empty"), str(tmp_path / "m.pkl"))
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "holds no snapshot" in out.stderr
    bad = tmp_path / "snapshot-000000000001.ckpt"
    bad.write_bytes(b"STRMLSNP garbage")
    out = _streamal("export-model", str(bad), str(tmp_path / "m.pkl"))
    assert out.returncode == 2 and "corrupt" in out.stderr and not (tmp_path / "m.pkl").exists()
