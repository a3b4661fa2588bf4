"""Snapshots: atomic writes, retention, and refusing corrupt or incompatible files."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from streamal.core.checkpoint import FORMAT_VERSION, MAGIC, Checkpointer, Snapshot
from streamal.exceptions import CheckpointError
from streamal.messages import Label, Sample
from streamal.offline.replay import build_learner


def _learner(seed: int = 0):
    return build_learner("logreg", "entropy", "variable_threshold", 0.3, seed=seed)


def test_round_trip_restores_learner_state_and_decisions(tmp_path: Path) -> None:
    learner = _learner()
    for i in range(200):
        d = learner.process(Sample(id=str(i), x={"a": float(i % 7), "b": float(i % 3)}))
        if d.queried and i % 2:
            learner.learn(Label(sample_id=str(i), y=i % 7 > 3))
    ckpt = Checkpointer(tmp_path)
    ckpt.save(Snapshot(learner, {("s", 0): 200}, [("q", b"k", b"v")], {"s": "id"}, "abc"))
    restored = ckpt.load()
    assert restored is not None
    assert restored.offsets == {("s", 0): 200}
    assert restored.outbox == [("q", b"k", b"v")]
    assert restored.topic_ids == {"s": "id"} and restored.config_hash == "abc"
    twin = restored.learner
    assert twin.stats == learner.stats and len(twin.pending) == len(learner.pending)
    # The restored learner continues exactly like the original.
    for i in range(200, 400):
        s = Sample(id=str(i), x={"a": float(i % 7), "b": float(i % 3)})
        a, b = learner.process(s), twin.process(s)
        assert (a.queried, a.score, a.prediction) == (b.queried, b.score, b.prediction)


def test_keeps_only_the_last_n(tmp_path: Path) -> None:
    ckpt = Checkpointer(tmp_path, keep=3)
    for n in range(7):
        ckpt.save(Snapshot({"n": n}))
    assert [p.name for p in ckpt.paths()] == [f"snapshot-{n:012d}.ckpt" for n in (5, 6, 7)]
    loaded = ckpt.load()
    assert loaded is not None and loaded.learner == {"n": 6} and loaded.sequence == 7
    # A new checkpointer on the same folder continues the numbering.
    assert Checkpointer(tmp_path, keep=3).save(Snapshot({})).name == "snapshot-000000000008.ckpt"


def test_empty_directory_loads_nothing_and_the_writer_removes_stale_temp_files(
    tmp_path: Path,
) -> None:
    # A temp file may be a running service's save in flight: reading leaves it alone
    # (the CI failure where a test's reader deleted it, and the service's save failed).
    stale = tmp_path / ".snapshot-000000000001.ckpt.tmp"
    stale.write_bytes(b"half")
    ckpt = Checkpointer(tmp_path)
    assert ckpt.load() is None and Checkpointer(tmp_path).paths() == []
    assert stale.exists()
    ckpt.save(Snapshot({}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snapshot-000000000001.ckpt"]


def test_a_reader_whose_newest_file_was_pruned_meanwhile_reads_the_new_newest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Next to a running service: between the listing and the read, its saves replaced the
    # newest file (keep=1 here). That is not a corrupt snapshot.
    writer = Checkpointer(tmp_path, keep=1)
    first = writer.save(Snapshot({}))
    reader = Checkpointer(tmp_path)
    listed = reader.paths()
    writer.save(Snapshot({}, offsets={("s", 0): 7}))
    assert not first.exists()
    calls = iter([listed])
    monkeypatch.setattr(reader, "paths", lambda: next(calls, None) or Checkpointer.paths(reader))
    snap = reader.load()
    assert snap is not None and snap.offsets == {("s", 0): 7}


def _flip_byte(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: _flip_byte(p, -1), "checksum mismatch"),
        (lambda p: p.write_bytes(p.read_bytes()[:-10]), "payload bytes, expected"),
        (lambda p: p.write_bytes(p.read_bytes()[:20]), "truncated header"),
        (lambda p: _flip_byte(p, 0), "not a streamal snapshot"),
    ],
)
def test_corrupt_newest_snapshot_is_refused_with_a_way_out(
    tmp_path: Path, damage, message: str
) -> None:
    ckpt = Checkpointer(tmp_path)
    ckpt.save(Snapshot({"n": 1}))
    newest = ckpt.save(Snapshot({"n": 2}))
    damage(newest)
    with pytest.raises(CheckpointError) as err:
        ckpt.load()
    text = str(err.value)
    assert message in text
    assert f"move {newest.name}" in text and "snapshot-000000000001.ckpt" in text
    # Following the advice works.
    newest.rename(tmp_path.parent / "quarantined.ckpt")
    assert ckpt.load().learner == {"n": 1}  # type: ignore[union-attr]


def test_incompatible_format_version_is_refused(tmp_path: Path) -> None:
    path = Checkpointer(tmp_path).save(Snapshot({"n": 1}))
    data = bytearray(path.read_bytes())
    struct.pack_into(">H", data, len(MAGIC), FORMAT_VERSION + 1)
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="format version 3, this release reads versions 1 a"):
        Checkpointer(tmp_path).load()


def test_unrestorable_payload_is_refused(tmp_path: Path) -> None:
    import hashlib
    import pickle

    payload = pickle.dumps({"not": "a snapshot"})
    header = struct.pack(">8sHQ32s", MAGIC, 1, len(payload), hashlib.sha256(payload).digest())
    (tmp_path / "snapshot-000000000001.ckpt").write_bytes(header + payload)
    with pytest.raises(CheckpointError, match="holds a dict"):
        Checkpointer(tmp_path).load()


def test_failed_write_leaves_previous_snapshots_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt = Checkpointer(tmp_path)
    ckpt.save(Snapshot({"n": 1}))

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(CheckpointError, match="free disk space"):
        ckpt.save(Snapshot({"n": 2}))
    monkeypatch.undo()
    assert [p.name for p in ckpt.paths()] == ["snapshot-000000000001.ckpt"]
    assert not list(tmp_path.glob(".*.tmp"))
    assert ckpt.load().learner == {"n": 1}  # type: ignore[union-attr]


def test_unpicklable_learner_is_a_checkpoint_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="cannot serialize"):
        Checkpointer(tmp_path).save(Snapshot(lambda: None))
    assert Checkpointer(tmp_path).paths() == []


def test_keep_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keep must be at least 1"):
        Checkpointer(tmp_path, keep=0)
