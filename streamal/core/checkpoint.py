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

File layout (format 2): an 8-byte magic ``b"STRMLSNP"``, a big-endian ``uint16`` format
version, a ``uint8`` flag (1: signed with a key), a ``uint16`` length of the *versions*
block, a ``uint64`` payload length and a 32-byte digest, then the versions block (JSON:
the streamal, river and Python versions that wrote the file), then the payload (a
pickle). The digest covers the versions block and the payload: their SHA-256, or their
HMAC-SHA256 under ``key`` when one is set. Format 1 files (no flag, no versions, an
unkeyed SHA-256) are still read when no key is set.

A file with a wrong magic, a short payload or a checksum mismatch is *corrupt*; one
with another format version is *incompatible*; with a key set, an unsigned file or one
signed with another key is *refused*. All are refused with a
:class:`~streamal.exceptions.CheckpointError` that says what to do, **before anything
is unpickled**. The payload is unpickled with :mod:`streamal.core.safepickle`, which builds
only allow-listed classes, so a planted file cannot run code even without a key.
Files are written owner-only (``0600``) in a directory created ``0700``.

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

import fcntl
import hashlib
import hmac
import io
import json
import logging
import os
import pickle
import platform
import struct
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamal.core.safepickle import RestrictedUnpickler
from streamal.exceptions import CheckpointError

if TYPE_CHECKING:
    from streamal.core.protocol import Learner

__all__ = ["FORMAT_VERSION", "MAGIC", "Checkpointer", "Snapshot", "versions"]

log = logging.getLogger("streamal.core.checkpoint")

#: Identifies a streamal snapshot file.
MAGIC = b"STRMLSNP"
#: Version of the snapshot layout and payload written by this release.
FORMAT_VERSION = 2
_HEADER_V1 = struct.Struct(">8sHQ32s")
_HEADER = struct.Struct(">8sHBHQ32s")
_SIGNED = 1
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


@cache
def versions() -> dict[str, str]:
    """The streamal, river and Python versions recorded in each snapshot's header."""
    from importlib.metadata import PackageNotFoundError, version

    from streamal import __version__

    try:
        river = version("river")
    except PackageNotFoundError:  # pragma: no cover - river is a dependency
        river = "unknown"
    return {"streamal": __version__, "river": river, "python": platform.python_version()}


def _describe(found: dict[str, str]) -> str:
    return ", ".join(f"{k} {found.get(k, '?')}" for k in ("streamal", "river", "python"))


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
    key
        Secret for HMAC-SHA256 signatures: snapshots are signed with it, and a file not
        signed with it is refused before it is unpickled. ``None`` writes an unkeyed
        SHA-256 (corruption is still caught; the allow-list still applies).
    lock
        Take an exclusive lock on ``directory/.lock`` (``flock``) for the life of this
        process, so that a second service on the same directory is refused with a
        :class:`~streamal.exceptions.CheckpointError` instead of writing the same
        files. ``streamal serve`` always locks.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        keep: int = 3,
        key: bytes | None = None,
        lock: bool = False,
    ) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        if key is not None and not key:
            raise ValueError("the snapshot key must not be empty")
        self.directory = Path(directory)
        self.keep = keep
        self.key = key
        if not self.directory.is_dir():
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        elif self.directory.stat().st_mode & 0o022:
            log.warning(
                "checkpoint directory %s is writable by other users: anyone who can write "
                "there can plant a snapshot; make it private (chmod 700) and set "
                "checkpoint.key",
                self.directory,
            )
        self._lock_fd: int | None = None
        self._swept = False
        if lock:
            self._lock()

    # -- the lock ------------------------------------------------------------------
    def _lock(self) -> None:
        path = self.directory / ".lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise CheckpointError(
                f"checkpoint directory {self.directory} is in use by another streamal "
                f"process (pid {holder}); stop it first, or give this instance its own "
                "checkpoint directory (and its own kafka.group_id)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def close(self) -> None:
        """Release the directory's lock, if this checkpointer holds it."""
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock

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
        if not self._swept:
            # Only the writer clears the temp files a crash during a save left: one made
            # to read (e.g. next to a running service) must not delete its file in flight.
            for stale in self.directory.glob(f".{_PREFIX}*.tmp"):
                stale.unlink(missing_ok=True)
            self._swept = True
        sequence = self._next_sequence()
        final = self.directory / f"{_PREFIX}{sequence:012d}{_SUFFIX}"
        tmp = self.directory / f".{final.name}.tmp"
        snapshot.sequence = sequence
        try:
            payload = pickle.dumps(snapshot, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as err:
            raise CheckpointError(f"cannot serialize the snapshot: {err}") from err
        meta = json.dumps(versions(), sort_keys=True).encode()
        flags = _SIGNED if self.key is not None else 0
        digest = _digest(self.key, meta, payload)
        header = _HEADER.pack(MAGIC, FORMAT_VERSION, flags, len(meta), len(payload), digest)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with open(fd, "wb") as fh:
                fh.write(header)
                fh.write(meta)
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
            return self.read(newest, self.key)
        except CheckpointError as err:
            if not newest.exists() and self.paths()[-1:] != [newest]:
                # Pruned by a running service's saves since the listing: read its newest.
                return self.load()
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
        path: str | os.PathLike[str],
        key: bytes | None = None,
        unpickler: type[pickle.Unpickler] = RestrictedUnpickler,
    ) -> Snapshot:
        """Read and verify one snapshot file (its signature too when ``key`` is set).

        Everything is checked before the payload is unpickled, and the unpickling
        itself builds only allow-listed classes (:mod:`streamal.core.safepickle`), with
        the old module paths of :mod:`streamal.core._moved` followed. ``unpickler`` may
        be a subclass that maps classes to inert stand-ins, as ``streamal export-model``
        does for the SQLite pending store.
        """
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as err:
            raise CheckpointError(f"cannot read snapshot {path}: {err}") from err
        meta, payload = _verified(path, data, key)
        try:
            found = json.loads(meta) if meta else {}
        except ValueError:
            found = {}
        try:
            snapshot = unpickler(io.BytesIO(payload)).load()
        except Exception as err:
            raise CheckpointError(
                f"snapshot {path} cannot be restored by this release ({type(err).__name__}: "
                f"{err}); it was written by {_describe(found) if found else 'an older release'}"
                f" and this is {_describe(versions())}: run the versions that wrote it"
            ) from err
        if not isinstance(snapshot, Snapshot):
            raise CheckpointError(f"snapshot {path} holds a {type(snapshot).__name__}")
        if found and found != versions():
            log.warning(
                "snapshot %s was written by %s; this is %s",
                path.name,
                _describe(found),
                _describe(versions()),
            )
        return snapshot


def _digest(key: bytes | None, meta: bytes, payload: bytes) -> bytes:
    if key is None:
        plain = hashlib.sha256(meta)
        plain.update(payload)
        return plain.digest()
    keyed = hmac.new(key, meta, hashlib.sha256)
    keyed.update(payload)
    return keyed.digest()


def _verified(path: Path, data: bytes, key: bytes | None) -> tuple[bytes, bytes]:
    """The versions block and the payload of a snapshot file, once its digest holds."""
    if len(data) < _HEADER_V1.size:
        raise CheckpointError(f"snapshot {path} is corrupt: truncated header")
    magic, version = struct.unpack_from(">8sH", data)
    if magic != MAGIC:
        raise CheckpointError(f"{path} is not a streamal snapshot (bad magic)")
    if version == 1:
        _, _, length, digest = _HEADER_V1.unpack_from(data)
        flags, meta, start = 0, b"", _HEADER_V1.size
    elif version == FORMAT_VERSION:
        _, _, flags, meta_length, length, digest = _HEADER.unpack_from(data)
        start = _HEADER.size + meta_length
        meta = data[_HEADER.size : start]
        if len(meta) != meta_length:
            raise CheckpointError(f"snapshot {path} is corrupt: truncated header")
    else:
        raise CheckpointError(
            f"snapshot {path} has format version {version}, this release reads "
            f"versions 1 and {FORMAT_VERSION}; run the streamal release that wrote it"
        )
    payload = data[start:]
    if len(payload) != length:
        raise CheckpointError(
            f"snapshot {path} is corrupt: {len(payload)} payload bytes, expected {length}"
        )
    signed = bool(flags & _SIGNED)
    if key is not None and not signed:
        raise CheckpointError(
            f"snapshot {path} is not signed, but checkpoint.key is set: it was not written "
            "by this service (or was written before the key was set); it is not loaded"
        )
    if key is None and signed:
        raise CheckpointError(
            f"snapshot {path} is signed with a key: set checkpoint.key to the key it was "
            "written with"
        )
    if not hmac.compare_digest(_digest(key, meta, payload), digest):
        if signed:
            raise CheckpointError(
                f"snapshot {path} has a bad signature: it was altered, planted, or signed "
                "with another checkpoint.key; it is not loaded"
            )
        raise CheckpointError(f"snapshot {path} is corrupt: checksum mismatch")
    return meta, payload
