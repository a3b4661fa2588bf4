"""Durable snapshots of a learner and the stream positions it has consumed.

A :class:`Snapshot` holds everything a restart needs: the learner (model, strategy,
budget manager and pending store, pickled together so that they stay consistent), the
next offset to consume per topic and partition, the queries decided since the previous
snapshot that may not have been published yet (the *outbox*), and a hash of the
learner's configuration.

:class:`Checkpointer` writes each snapshot to its own file atomically: a temporary file
in the same directory, ``fsync``, ``os.replace`` onto the final name, then ``fsync`` of
the directory. A crash at any point leaves either the old set of snapshots or the old
set plus the new one, never a half-written file under a snapshot name. Only the last
``keep`` snapshots are kept.

File layout: an 8-byte magic ``b"STRMLSNP"``, a big-endian ``uint16`` format version,
a ``uint64`` payload length and the SHA-256 of the payload, then the payload (a pickle).
A file with a wrong magic, a short payload or a checksum mismatch is *corrupt*; one
with another format version is *incompatible*. Both are refused with a
:class:`~streamal.exceptions.CheckpointError` that says what to do. Snapshots are
pickles: load only snapshots this service wrote (keep the directory private).

Examples
--------
>>> import tempfile
>>> folder = tempfile.mkdtemp()
>>> ckpt = Checkpointer(folder, keep=2)
>>> for n in range(3):
...     _ = ckpt.save(Snapshot(learner={"n": n}, offsets={("samples", 0): 10 * n}))
>>> [p.name for p in ckpt.paths()]
['snapshot-000000000002.ckpt', 'snapshot-000000000003.ckpt']
>>> latest = ckpt.load()
>>> latest.learner, latest.offsets, latest.sequence
({'n': 2}, {('samples', 0): 20}, 3)
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamal.core._moved import MovedUnpickler
from streamal.exceptions import CheckpointError

if TYPE_CHECKING:
    from streamal.core.protocol import Learner

__all__ = ["FORMAT_VERSION", "MAGIC", "Checkpointer", "Snapshot"]

#: Identifies a streamal snapshot file.
MAGIC = b"STRMLSNP"
#: Version of the snapshot layout and payload written by this release.
FORMAT_VERSION = 1
_HEADER = struct.Struct(">8sHQ32s")
_PREFIX = "snapshot-"
_SUFFIX = ".ckpt"

TopicPartition = tuple[str, int]


@dataclass
class Snapshot:
    """What a restart resumes from.

    Parameters
    ----------
    learner
        The learner (model, strategy, budget manager, pending store, and in window mode
        the open window), pickled as one.
    offsets
        Next offset to consume, per ``(topic, partition)``.
    outbox
        Messages decided before this snapshot that may not be published yet, as
        ``(topic, key, value)``; a restart publishes them again (same ids).
    topic_ids
        Broker-side id of each topic when known, to notice a topic that was re-created
        (its old offsets then mean nothing).
    config_hash
        Hash of the settings that shaped the learner; a restart refuses a mismatch.
    extra
        Free-form JSON-like data (counters, versions).
    """

    learner: Learner
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    outbox: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    topic_ids: dict[str, str] = field(default_factory=dict)
    config_hash: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    #: Sequence number of the file it was read from or written to (0 before saving).
    sequence: int = 0


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Checkpointer:
    """Writes and reads :class:`Snapshot` files in ``directory``, keeping the last ``keep``.

    Parameters
    ----------
    directory
        Where snapshots live; created if missing. One service per directory.
    keep
        How many snapshots to keep (at least 1). Keeping a few lets an operator move a
        damaged newest file away and resume from the one before.
    """

    def __init__(self, directory: str | os.PathLike[str], keep: int = 3) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.directory = Path(directory)
        self.keep = keep
        self.directory.mkdir(parents=True, exist_ok=True)
        for stale in self.directory.glob(f".{_PREFIX}*.tmp"):
            stale.unlink(missing_ok=True)  # left by a crash during a save

    # -- listing -------------------------------------------------------------------
    def paths(self) -> list[Path]:
        """Snapshot files, oldest first."""
        found = []
        for path in self.directory.glob(f"{_PREFIX}*{_SUFFIX}"):
            digits = path.name[len(_PREFIX) : -len(_SUFFIX)]
            if digits.isdigit():
                found.append((int(digits), path))
        return [p for _, p in sorted(found)]

    def _next_sequence(self) -> int:
        paths = self.paths()
        return int(paths[-1].name[len(_PREFIX) : -len(_SUFFIX)]) + 1 if paths else 1

    # -- writing -------------------------------------------------------------------
    def save(self, snapshot: Snapshot) -> Path:
        """Write ``snapshot`` atomically as the newest file; prune old ones; return its path.

        Raises
        ------
        CheckpointError
            If the file cannot be written (disk full, permissions); nothing is replaced.
        """
        sequence = self._next_sequence()
        final = self.directory / f"{_PREFIX}{sequence:012d}{_SUFFIX}"
        tmp = self.directory / f".{final.name}.tmp"
        snapshot.sequence = sequence
        try:
            payload = pickle.dumps(snapshot, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as err:
            raise CheckpointError(f"cannot serialize the snapshot: {err}") from err
        header = _HEADER.pack(MAGIC, FORMAT_VERSION, len(payload), hashlib.sha256(payload).digest())
        try:
            with open(tmp, "wb") as fh:
                fh.write(header)
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
            _fsync_dir(self.directory)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise CheckpointError(
                f"cannot write snapshot {final}: {err}; free disk space or fix the "
                f"permissions of {self.directory}"
            ) from err
        for old in self.paths()[: -self.keep]:
            old.unlink(missing_ok=True)
        return final

    # -- reading -------------------------------------------------------------------
    def load(self) -> Snapshot | None:
        """The newest snapshot, or ``None`` if the directory holds none.

        Raises
        ------
        CheckpointError
            If the newest snapshot is corrupt or incompatible. The message names the
            file and what to do; an older snapshot is never used silently, because
            resuming from it is a decision for the operator.
        """
        paths = self.paths()
        if not paths:
            return None
        newest = paths[-1]
        try:
            return self.read(newest)
        except CheckpointError as err:
            if len(paths) > 1:
                hint = (
                    f"move {newest.name} out of {self.directory} to resume from the "
                    f"previous snapshot {paths[-2].name}, or"
                )
            else:
                hint = "restore it from a backup, or"
            raise CheckpointError(
                f"{err}. To recover: {hint} point the checkpoint directory at an empty "
                "folder to start a fresh model"
            ) from None

    @staticmethod
    def read(
        path: str | os.PathLike[str], unpickler: type[pickle.Unpickler] = MovedUnpickler
    ) -> Snapshot:
        """Read and verify one snapshot file.

        ``unpickler`` restores the payload (a subclass may map classes to inert stand-ins,
        as ``streamal export-model`` does for the SQLite pending store).
        """
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as err:
            raise CheckpointError(f"cannot read snapshot {path}: {err}") from err
        if len(data) < _HEADER.size:
            raise CheckpointError(f"snapshot {path} is corrupt: truncated header")
        magic, version, length, digest = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise CheckpointError(f"{path} is not a streamal snapshot (bad magic)")
        if version != FORMAT_VERSION:
            raise CheckpointError(
                f"snapshot {path} has format version {version}, this release reads "
                f"version {FORMAT_VERSION}; run the streamal release that wrote it"
            )
        payload = data[_HEADER.size :]
        if len(payload) != length:
            raise CheckpointError(
                f"snapshot {path} is corrupt: {len(payload)} payload bytes, expected {length}"
            )
        if hashlib.sha256(payload).digest() != digest:
            raise CheckpointError(f"snapshot {path} is corrupt: checksum mismatch")
        try:
            snapshot = unpickler(io.BytesIO(payload)).load()  # old paths followed (_moved.py)
        except Exception as err:  # unpickling runs arbitrary class code
            raise CheckpointError(
                f"snapshot {path} cannot be restored by this release ({type(err).__name__}: "
                f"{err}); run the streamal release that wrote it"
            ) from err
        if not isinstance(snapshot, Snapshot):
            raise CheckpointError(f"snapshot {path} holds a {type(snapshot).__name__}")
        return snapshot
