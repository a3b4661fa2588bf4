"""A crafted snapshot never runs code, with or without a key (issue 14, item 2).

Each test plants a file that would create a marker file when unpickled with ``pickle``
and checks that streamal refuses it and the marker never appears.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pickle
import sqlite3
import stat
import struct
from pathlib import Path
from typing import Any

import pytest

from streamal.core.checkpoint import MAGIC, Checkpointer, Snapshot
from streamal.core.pending import PendingEntry, SQLitePendingStore
from streamal.core.safepickle import RestrictedUnpickler
from streamal.exceptions import CheckpointError
from streamal.offline.replay import build_learner


class Evil:
    """Unpickling this calls ``open(marker, "w")``: the file appears if code runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def evil_payload(marker: Path) -> bytes:
    return pickle.dumps(Snapshot(learner=Evil(marker)), protocol=pickle.HIGHEST_PROTOCOL)


def plant_v1(folder: Path, payload: bytes, sequence: int = 99) -> Path:
    """A format-1 file: anyone can compute its unkeyed SHA-256."""
    header = struct.pack(">8sHQ32s", MAGIC, 1, len(payload), hashlib.sha256(payload).digest())
    path = folder / f"snapshot-{sequence:012d}.ckpt"
    path.write_bytes(header + payload)
    return path


def plant_v2(folder: Path, payload: bytes, key: bytes | None, sequence: int = 99) -> Path:
    meta = json.dumps({"streamal": "0.0.0", "river": "0.0.0", "python": "3.0"}).encode()
    if key is None:
        digest = hashlib.sha256(meta + payload).digest()
    else:
        digest = hmac.new(key, meta + payload, hashlib.sha256).digest()
    header = struct.pack(">8sHBHQ32s", MAGIC, 2, 1 if key else 0, len(meta), len(payload), digest)
    path = folder / f"snapshot-{sequence:012d}.ckpt"
    path.write_bytes(header + meta + payload)
    return path


@pytest.fixture
def state(tmp_path: Path) -> tuple[Path, Path]:
    """A checkpoint folder with one genuine snapshot, and where the marker would go."""
    folder = tmp_path / "ckpt"
    Checkpointer(folder).save(Snapshot(build_learner("logreg", "entropy", "full", 1.0, 1)))
    return folder, tmp_path / "marker"


def test_planted_format_1_snapshot_never_runs(state: tuple[Path, Path]) -> None:
    folder, marker = state
    plant_v1(folder, evil_payload(marker))
    with pytest.raises(CheckpointError, match="not on the allow-list"):
        Checkpointer(folder).load()
    assert not marker.exists()


def test_planted_unkeyed_snapshot_never_runs(state: tuple[Path, Path]) -> None:
    folder, marker = state
    plant_v2(folder, evil_payload(marker), key=None)
    with pytest.raises(CheckpointError, match="not on the allow-list"):
        Checkpointer(folder).load()
    assert not marker.exists()


@pytest.mark.parametrize("planted_key", [None, b"guess"])
def test_with_a_key_planted_snapshots_are_refused_before_unpickling(
    tmp_path: Path, planted_key: bytes | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, marker = tmp_path / "ckpt", tmp_path / "marker"
    key = b"the real key"
    Checkpointer(folder, key=key).save(Snapshot({"n": 1}))
    assert Checkpointer(folder, key=key).load().learner == {"n": 1}  # type: ignore[union-attr]
    plant_v2(folder, evil_payload(marker), key=planted_key)
    plant_v1(folder, evil_payload(marker), sequence=98)

    def no_unpickling(self: Any) -> Any:
        raise AssertionError("unpickled before the signature was checked")

    monkeypatch.setattr(RestrictedUnpickler, "load", no_unpickling)
    match = "not signed" if planted_key is None else "bad signature"
    with pytest.raises(CheckpointError, match=match):
        Checkpointer(folder, key=key).load()
    (folder / "snapshot-000000000099.ckpt").unlink()
    with pytest.raises(CheckpointError, match="not signed"):
        Checkpointer(folder, key=key).load()
    assert not marker.exists()


def test_signed_snapshots_need_the_key(tmp_path: Path) -> None:
    Checkpointer(tmp_path, key=b"k1").save(Snapshot({"n": 1}))
    with pytest.raises(CheckpointError, match="set checkpoint.key"):
        Checkpointer(tmp_path).load()
    with pytest.raises(CheckpointError, match="bad signature"):
        Checkpointer(tmp_path, key=b"k2").load()


def test_planted_pending_row_never_runs(tmp_path: Path) -> None:
    path = tmp_path / "pending.sqlite"
    store = SQLitePendingStore(str(path))
    store.put(PendingEntry("a", {"f": 1.0}, 0.0, 5.0))
    store.close()
    marker = tmp_path / "marker"
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO pending (sample_id, expires_at, entry) VALUES (?, ?, ?)",
        ("evil", 1.0, pickle.dumps(Evil(marker))),
    )
    db.commit()
    db.close()
    store = SQLitePendingStore(str(path))
    with pytest.raises(pickle.UnpicklingError, match="not on the allow-list"):
        list(store)
    with pytest.raises(pickle.UnpicklingError, match="not on the allow-list"):
        store.pop("evil")
    assert not marker.exists()
    assert store.pop("a") is not None
    store.close()


def test_files_are_owner_only(tmp_path: Path) -> None:
    folder = tmp_path / "new"
    path = Checkpointer(folder).save(Snapshot({"n": 1}))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    store = SQLitePendingStore(str(folder / "pending.sqlite"))
    store.put(PendingEntry("a", {"f": 1.0}, 0.0, 5.0))
    assert stat.S_IMODE(os.stat(folder / "pending.sqlite").st_mode) == 0o600
    store.close()


def test_versions_are_recorded_and_named_on_mismatch(tmp_path: Path) -> None:
    path = Checkpointer(tmp_path).save(Snapshot({"n": 1}))
    data = path.read_bytes()
    assert b'"river"' in data[:200] and b'"python"' in data[:200]
    # A snapshot of a class this release does not have, written by other versions.
    payload = pickle.dumps(Snapshot({"n": 1}))
    payload = payload.replace(b"streamal.core.checkpoint", b"streamal.gonemod")
    plant_v2(tmp_path, payload, key=None)
    with pytest.raises(CheckpointError) as err:
        Checkpointer(tmp_path).load()
    text = str(err.value)
    assert "written by streamal 0.0.0, river 0.0.0, python 3.0" in text
    assert "run the versions that wrote it" in text


def test_service_refuses_planted_snapshot(state: tuple[Path, Path]) -> None:
    from prometheus_client import CollectorRegistry

    from streamal.service.config import load_settings
    from streamal.service.factory import build_service
    from streamal.transports import MemoryBroker, MemorySink, MemorySource

    folder, marker = state
    plant_v1(folder, evil_payload(marker))
    broker = MemoryBroker()
    settings = load_settings(overrides={"checkpoint": {"dir": str(folder)}})
    service = build_service(settings, CollectorRegistry(), MemorySource(broker), MemorySink(broker))
    with pytest.raises(CheckpointError):
        service.restore()
    assert not marker.exists()


def test_key_setting_signs_and_is_masked(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry

    from streamal.service.config import load_settings
    from streamal.service.factory import build_service
    from streamal.transports import MemoryBroker, MemorySink, MemorySource

    settings = load_settings(overrides={"checkpoint": {"dir": str(tmp_path), "key": "s3cret"}})
    assert settings.masked()["checkpoint"]["key"] == "**********"
    broker = MemoryBroker()
    broker.produce("streamal.samples", b'{"id": "a", "x": {"f": 1}}')
    service = build_service(settings, CollectorRegistry(), MemorySource(broker), MemorySink(broker))
    service.run(count=1)
    with pytest.raises(CheckpointError, match="set checkpoint.key"):
        Checkpointer(tmp_path).load()
    assert Checkpointer(tmp_path, key=b"s3cret").load() is not None
