"""Decision state of one samples partition, as it travels between instances (group mode).

In scale-out (group) mode each samples partition has its own decider: an
:class:`~streamal.core.learner.ActiveLearner` that shares the instance's model and
strategy but keeps its **own** budget manager, pending queries (without their
features), counters and stream clock. When a partition moves to another instance, that
state moves with it as a :class:`PartitionState` record on a compacted topic keyed by
the partition number.

:func:`decision_state` takes what moves out of a decider, :func:`restore_decisions`
puts it into a fresh one; :func:`encode_state` and :func:`decode_state` turn a
:class:`PartitionState` into bytes and back. The bytes are framed like a snapshot file:
an 8-byte magic ``b"STRMLPST"``, a ``uint16`` format version, a ``uint8`` flag (1:
signed), a 32-byte digest (HMAC-SHA256 under the checkpoint key when one is set, else
SHA-256) and the pickle. Everything is checked **before** anything is unpickled, and the
unpickling builds only allow-listed classes (:mod:`streamal.core.safepickle`): a record
planted on the topic cannot run code, and with a key it is refused outright.

Examples
--------
>>> from streamal import ActiveLearner, Sample, budgets, models, strategies
>>> def decider(seed):
...     return ActiveLearner(models.build_model("logreg"), strategies.Entropy(),
...                          budgets.RandomBudget(rate=0.5, seed=seed))
>>> first = decider(1)
>>> _ = [first.process(Sample(id=str(i), x={"a": 1.0})) for i in range(10)]
>>> record = encode_state(PartitionState(3, 10, decision_state(first)), key=b"k")
>>> state = decode_state(record, key=b"k")
>>> second = restore_decisions(decider(99), state.decider)
>>> state.partition, state.offset, second.stats.seen, second.budget.spent == first.budget.spent
(3, 10, 10, True)
>>> sorted(e.sample_id for e in second.pending) == sorted(e.sample_id for e in first.pending)
True
>>> decode_state(record, key=b"other")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
streamal.exceptions.CheckpointError: partition state record has a bad signature: ...
"""

from __future__ import annotations

import hashlib
import hmac
import io
import pickle
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from streamal.core.learner import ActiveLearner
from streamal.core.pending import MemoryPendingStore, PendingEntry
from streamal.core.safepickle import RestrictedUnpickler
from streamal.exceptions import CheckpointError

__all__ = [
    "STATE_MAGIC",
    "PartitionState",
    "decision_state",
    "check_state",
    "decode_state",
    "encode_state",
    "restore_decisions",
]

#: Identifies a partition state record.
STATE_MAGIC = b"STRMLPST"
_VERSION = 1
_HEADER = struct.Struct(">8sHB32s")
_SIGNED = 1
#: The decider's attributes that move with the partition (the rest is the instance's
#: model and strategy, or comes from the settings).
_MOVED = ("budget", "stats", "_now", "_next_deadline", "_audit_plan")


@dataclass
class PartitionState:
    """Where one samples partition stands: what the next owner resumes from.

    Parameters
    ----------
    partition
        The samples partition.
    offset
        The next samples offset to decide (every sample before it is decided).
    decider
        :func:`decision_state` of the partition's decider.
    outbox
        Queries decided since the previous record, as ``(topic, key, value)``: the
        next owner publishes them again (a query is published only once the decision
        behind it is durable; duplicates carry the same id).
    config_hash
        Hash of the learner settings; an owner with other settings refuses the record.
    instance
        The instance that wrote the record.
    written_at
        Wall-clock time of the record.
    read
        For the partition that carries the duty to dead-letter refused labels and
        queries (group mode: samples partition 0), the next offset of each
        ``(topic, partition)`` of the queries and labels topics the writer had read:
        every refused message before it was dead-lettered by the writer, so the next
        owner writes only the ones after. Records written before this field existed
        restore as ``{}``.
    epoch
        The ownership epoch of the writer: each instance that takes the partition writes
        one more than the highest epoch among the partition's records it read. The next
        owner restores from the record of the highest epoch (then the highest offset), so
        a record written late by an owner that had lost the partition without noticing
        (a paused or partitioned *zombie*), or an old record written again, cannot roll
        the partition back. Records written before this field existed restore as ``0``.
    """

    partition: int
    offset: int
    decider: dict[str, Any]
    outbox: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    config_hash: str = ""
    instance: str = ""
    written_at: float = field(default_factory=time.time)
    read: dict[tuple[str, int], int] = field(default_factory=dict)
    epoch: int = 0

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Records written before a field existed restore it with its default.
        self.__dict__.update({"read": {}, "epoch": 0, **state})


def decision_state(learner: ActiveLearner) -> dict[str, Any]:
    """What moves with a partition: budget manager, counters, clock, pending queries.

    Pending queries keep everything but their features (the model's replicas learn
    from the features in the query message), so the record stays small.
    """
    state = {name: getattr(learner, name) for name in _MOVED}
    pending = learner.pending
    state["pending"] = [
        (
            e.sample_id,
            e.queried_at,
            e.expires_at,
            e.score,
            e.prediction,
            e.model_version,
            e.purpose,
            e.propensity,
        )
        for e in pending
    ]
    state["max_pending"] = pending.max_size
    return state


def restore_decisions(learner: ActiveLearner, state: dict[str, Any]) -> ActiveLearner:
    """Put ``state`` (from :func:`decision_state`) into ``learner``; return it.

    Each moved attribute must have the type the fresh ``learner`` has (a budget
    manager of the configured class, counters, numbers), and the pending queries must
    be well formed; otherwise :class:`~streamal.exceptions.CheckpointError` is raised
    and ``learner`` is left as it was.
    """
    for name in _MOVED:
        value, current = state[name], getattr(learner, name)
        if value is None or current is None:
            continue
        if isinstance(current, float) and type(value) in (int, float):
            continue
        if type(value) is not type(current):
            raise CheckpointError(
                f"partition state record is malformed: its {name.strip('_')} is a "
                f"{type(value).__name__}, this decider's is a {type(current).__name__}"
            )
    try:
        pending = MemoryPendingStore(int(state.get("max_pending", learner.pending.max_size)))
        for sample_id, queried_at, expires_at, *rest in state["pending"]:
            if not isinstance(sample_id, str):
                raise TypeError(f"pending id {sample_id!r} is not a string")
            if not all(type(t) in (int, float) for t in (queried_at, expires_at)):
                raise TypeError(f"pending {sample_id!r} has times that are not numbers")
            pending.put(PendingEntry(sample_id, {}, queried_at, expires_at, *rest))
    except (TypeError, ValueError) as err:
        raise CheckpointError(
            f"partition state record is malformed: its pending queries ({err})"
        ) from err
    for name in _MOVED:
        setattr(learner, name, state[name])
    learner.pending = pending
    return learner


def _digest(key: bytes | None, payload: bytes) -> bytes:
    if key is None:
        return hashlib.sha256(payload).digest()
    return hmac.new(key, payload, hashlib.sha256).digest()


def encode_state(state: PartitionState, key: bytes | None = None) -> bytes:
    """The record bytes of ``state`` (signed with ``key`` when given)."""
    try:
        payload = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as err:
        raise CheckpointError(
            f"cannot serialize the state of partition {state.partition}: {err}"
        ) from err
    flags = _SIGNED if key is not None else 0
    return _HEADER.pack(STATE_MAGIC, _VERSION, flags, _digest(key, payload)) + payload


def check_state(data: bytes, key: bytes | None = None) -> bytes:
    """Check the frame of a record (magic, version, signature or checksum); return its payload.

    Nothing is unpickled: a record that fails here is refused before any of its bytes
    are interpreted. With a ``key``, only records signed with it pass.

    Raises
    ------
    CheckpointError
        As :func:`decode_state`, for everything but the payload's content.

    Examples
    --------
    >>> check_state(b"planted")
    Traceback (most recent call last):
    ...
    streamal.exceptions.CheckpointError: partition state record is corrupt: truncated header
    """
    if not isinstance(data, bytes | bytearray) or len(data) < _HEADER.size:
        raise CheckpointError("partition state record is corrupt: truncated header")
    magic, version, flags, digest = _HEADER.unpack_from(data)
    if magic != STATE_MAGIC:
        raise CheckpointError("not a streamal partition state record (bad magic)")
    if version != _VERSION:
        raise CheckpointError(
            f"partition state record has format version {version}, this release reads "
            f"{_VERSION}; run the streamal release that wrote it"
        )
    payload = data[_HEADER.size :]
    signed = bool(flags & _SIGNED)
    if key is not None and not signed:
        raise CheckpointError(
            "partition state record is not signed, but checkpoint.key is set; it is not loaded"
        )
    if key is None and signed:
        raise CheckpointError(
            "partition state record is signed: set checkpoint.key to the key of the group"
        )
    if not hmac.compare_digest(_digest(key, payload), digest):
        if signed:
            raise CheckpointError(
                "partition state record has a bad signature: it was altered, planted, or "
                "signed with another checkpoint.key; it is not loaded"
            )
        raise CheckpointError("partition state record is corrupt: checksum mismatch")
    return payload


def decode_state(data: bytes, key: bytes | None = None) -> PartitionState:
    """The :class:`PartitionState` in ``data``, verified before it is unpickled.

    Raises
    ------
    CheckpointError
        If the record is not one, is corrupt, is unsigned while ``key`` is set (or
        signed while it is not), has a bad signature, or names a class off the
        allow-list.
    """
    payload = check_state(data, key)
    try:
        state = RestrictedUnpickler(io.BytesIO(payload)).load()
    except Exception as err:
        raise CheckpointError(
            f"partition state record cannot be restored ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(state, PartitionState):
        raise CheckpointError(f"partition state record holds a {type(state).__name__}")
    _check_fields(state)
    return state


def _check_fields(state: PartitionState) -> None:
    """Refuse a record whose fields have the wrong shape (before anything uses them)."""
    problem = ""
    d = state.__dict__
    if type(d.get("partition")) is not int or d["partition"] < 0:
        problem = "its partition is not a partition number"
    elif type(d.get("offset")) is not int or d["offset"] < 0:
        problem = "its offset is not an offset"
    elif not isinstance(d.get("decider"), dict) or not all(
        name in d["decider"] for name in (*_MOVED, "pending")
    ):
        problem = "its decider state is incomplete"
    elif not isinstance(d["decider"]["pending"], list) or not isinstance(d.get("outbox"), list):
        problem = "its pending queries or outbox are not lists"
    elif not all(
        isinstance(item, tuple)
        and len(item) == 3
        and isinstance(item[0], str)
        and isinstance(item[2], bytes)
        for item in d["outbox"]
    ):
        problem = "its outbox holds something other than (topic, key, value) messages"
    elif not isinstance(d.get("read"), dict) or not isinstance(d.get("config_hash"), str):
        problem = "its read positions or config hash have the wrong type"
    elif type(d.get("epoch")) is not int or d["epoch"] < 0:
        problem = "its ownership epoch is not a count"
    if problem:
        raise CheckpointError(f"partition state record is malformed: {problem}")
