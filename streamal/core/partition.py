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
    labels
        For the partition that carries the duty to dead-letter refused labels (group
        mode: samples partition 0), the next offset of each labels partition the writer
        had read: every refused label before it was dead-lettered by the writer, so the
        next owner writes only the ones after. Records written before this field
        existed restore as ``{}``.
    """

    partition: int
    offset: int
    decider: dict[str, Any]
    outbox: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    config_hash: str = ""
    instance: str = ""
    written_at: float = field(default_factory=time.time)
    labels: dict[int, int] = field(default_factory=dict)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Records written before a field existed restore it with its default.
        self.__dict__.update({"labels": {}, **state})


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
    """Put ``state`` (from :func:`decision_state`) into ``learner``; return it."""
    for name in _MOVED:
        setattr(learner, name, state[name])
    pending = MemoryPendingStore(int(state.get("max_pending", learner.pending.max_size)))
    for sample_id, queried_at, expires_at, *rest in state["pending"]:
        pending.put(PendingEntry(sample_id, {}, queried_at, expires_at, *rest))
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


def decode_state(data: bytes, key: bytes | None = None) -> PartitionState:
    """The :class:`PartitionState` in ``data``, verified before it is unpickled.

    Raises
    ------
    CheckpointError
        If the record is not one, is corrupt, is unsigned while ``key`` is set (or
        signed while it is not), has a bad signature, or names a class off the
        allow-list.
    """
    if len(data) < _HEADER.size:
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
    try:
        state = RestrictedUnpickler(io.BytesIO(payload)).load()
    except Exception as err:
        raise CheckpointError(
            f"partition state record cannot be restored ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(state, PartitionState):
        raise CheckpointError(f"partition state record holds a {type(state).__name__}")
    return state
