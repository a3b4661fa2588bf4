"""Scale-out (group) mode: many instances over one partitioned stream, one model's labels.

Active learning spends labels on a small share ``b`` of the samples, so the two halves
of the work scale differently:

- **Scoring is partitioned.** The instances of one ``kafka.group_id`` share the samples
  topic's partitions (Kafka's consumer group). Each samples partition has its own
  *decider*: an :class:`~streamal.core.learner.ActiveLearner` that shares the instance's
  model and strategy but keeps its own budget manager (seeded ``seed + partition``),
  pending queries, counters and stream clock. The cumulative promise (at most ``b`` of
  the samples) then holds per partition, and so for their sum. A new partition's budget
  manager is *paced* for the ``P`` partitions of the samples topic
  (:meth:`~streamal.budgets.base.BudgetManager.pace`: its window guard over
  ``ceil(W / P)`` of its own samples with ``floor(floor(b·W) / P)`` labels, the initial
  allowance split), so that a stream spread evenly over the partitions keeps one
  manager's window promise as a whole (docs/scaling.md).
- **Learning is replicated.** A query carries its sample's features. Every instance reads
  *all* partitions of the queries and labels topics with a reader outside the group
  (:class:`~streamal.transports.base.Reader`, positions kept in the instance's own
  snapshot), keeps the open queries, and learns every label whose query it knows, once
  (a label that comes before its query waits in a bounded buffer). All instances thus
  learn the same labels; ``model_version`` (labels learned) says how far each has got.
- **Decision state moves with the partition.** At each checkpoint, for every partition
  that changed, a :class:`~streamal.core.partition.PartitionState` (budget manager,
  pending ids, counters, the next samples offset, and the queries decided since the last
  record) goes to the compacted state topic keyed by the partition, and is flushed
  **before** those queries are published and before the group offsets are committed: a
  query is out only once the decision behind it is durable (the single-instance
  checkpoint order, per partition). On assignment, the new owner reads the state topic to
  its end, restores each partition's decider, seeks the partition to the state's offset
  and publishes the record's queries again (same ids: the replicas and the oracle see
  duplicates they ignore).
- **Refused labels and queries go to dead letters once.** Every instance reads every
  label and query, so every instance counts a label it refuses (unreadable, unknown
  class, wrong type), but only the owner of samples partition
  :data:`DEAD_LETTER_PARTITION` writes the dead letter (of a refused query too). That
  partition's state record carries the queries and labels positions its writer had read
  (:attr:`~streamal.core.partition.PartitionState.read`): the next owner writes the
  refused messages after them, including the ones it read (and kept, bounded) before it
  owned the partition. So a refused message is dead-lettered exactly once across the
  group through rebalances; after a crash, the dead letters since the crashed owner's
  last record are written again (as a single instance redoes its work since its last
  snapshot).
- **State records are checked before they are used.** A record on the state topic
  that is not one (a wrong key, a tombstone, a bad frame, checksum or signature) is
  refused as it is read, before anything in it is unpickled, and logged; one that
  passes the frame check but cannot be restored (its pickle, its fields) is refused
  when its partition is taken, and the partition's previous record is used instead.
  A refused record changes nothing (``streamal_state_records_refused_total``).
- **Ownership epochs fence out zombies.** Each record carries the writer's ownership
  epoch (:attr:`~streamal.core.partition.PartitionState.epoch`): an instance that takes
  a partition writes one more than the highest epoch among the partition's records, and
  claims it with a record at its first checkpoint. The next owner ranks the records by
  epoch, then offset: a record written late by an owner that lost the partition without
  noticing (a paused process, a network partition) cannot roll the partition back.

A (re)started instance restores its own snapshot, then reads the queries and labels it
missed up to their end before it joins the group (``group.catch_up_timeout`` bounds it);
``/readyz`` says "catching up" meanwhile. ``docs/service.md`` ("Group mode") lists the
settings; ``docs/scaling.md`` when and how to scale.

Examples
--------
Two instances on one in-memory broker share a samples topic of two partitions:

>>> import tempfile
>>> from streamal.core.spec import LearnerSpec, build_learner
>>> from streamal.transports import MemoryBroker, MemoryReader, MemorySink, MemorySource
>>> broker = MemoryBroker()
>>> for name, n in (("streamal.samples", 2), ("streamal.queries", 1), ("streamal.labels", 1),
...                 ("streamal.state", 1)):
...     broker.create_topic(name, partitions=n)
>>> for i in range(8):
...     value = b'{"id": "%d", "x": {"a": %d}}' % (i, i)
...     _ = broker.produce("streamal.samples", value, key=b"%d" % i)
>>> def instance(name):
...     spec = LearnerSpec("logreg", "entropy", "full", 1.0, seed=1)
...     return GroupService(
...         build_learner(spec), MemorySource(broker, share=True), MemorySink(broker),
...         Checkpointer(tempfile.mkdtemp()), reader=MemoryReader(broker),
...         state_reader=MemoryReader(broker), new_decider=lambda p: build_learner(spec),
...         instance_id=name,
...     )
>>> a, b = instance("a"), instance("b")
>>> a.run(timeout=0.0)  # alone: decides the 8 samples of both partitions
8
>>> _ = b.run(timeout=0.0), a.run(timeout=0.0)  # b joins: a gives partition 1 to b
>>> sorted(a.deciders), sorted(b.deciders)
([0], [1])
>>> a.deciders[0].stats.seen + b.deciders[1].stats.seen  # b resumed from a's state
8
>>> len({q.key for q in broker.records("streamal.queries")})  # each query id once or more
8
"""

from __future__ import annotations

import logging
import math
import socket
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, cast

from prometheus_client import Counter, Gauge

from streamal.core.checkpoint import Checkpointer, Snapshot
from streamal.core.learner import ActiveLearner, LabelOutcome, LearnerStats
from streamal.core.partition import (
    PartitionState,
    check_state,
    decision_state,
    decode_state,
    encode_state,
    restore_decisions,
)
from streamal.core.pending import PendingEntry
from streamal.core.protocol import Learner
from streamal.exceptions import (
    CheckpointError,
    ConfigError,
    DecodeError,
    MessageRejected,
    TransportError,
)
from streamal.messages import (
    Label,
    Limits,
    Query,
    Sample,
    check_label,
    check_sample,
    decode_label,
    decode_query,
)
from streamal.service.handlers import MessageHandler, Topics
from streamal.service.loop import LoopPolicy, Service, tune_gc
from streamal.service.metrics import Metrics
from streamal.service.outputs import classify
from streamal.transports.base import Envelope, Reader, Sink, Source, TopicPartition

__all__ = ["GroupMetrics", "GroupService", "default_instance_id"]

log = logging.getLogger("streamal.service")

#: Labels kept while their query has not been read yet (the oldest go first).
MAX_EARLY_LABELS = 10_000
#: Learned labels remembered to settle queries of a partition restored later.
MAX_LEARNED = 100_000
#: Seconds between two looks for new partitions of the queries and labels topics.
REASSIGN_EVERY = 10.0
#: The samples partition whose owner writes the dead letters of refused labels: one
#: fixed partition, so that exactly one instance has the duty at any time, and it moves
#: with that partition's state (refused labels are rare: the extra work is small).
DEAD_LETTER_PARTITION = 0
#: Refused labels and queries kept by an instance without that partition, for when it
#: takes it over (the previous owner may not have read them yet); the oldest go first.
MAX_REFUSED = 10_000
#: State records kept per samples partition (the newest is used): when the newest
#: cannot be restored, the one before it is (a planted or garbled record cannot stop
#: the partition; its previous owner's last good state is used, as after a crash).
#: Records are checked as they are read only up to their frame (unpickling every record
#: of a long state topic would slow every assignment), so without ``checkpoint.key``
#: more than 3 framed but bad records in a row push the good one out: the partition
#: then starts afresh. With the key no outsider's record is kept. Each kept record holds
#: a partition's pending ids, so a few only. The kept records are ranked by ownership
#: epoch when the partition is taken; one that fails to restore is forgotten.
KEEP_STATES = 4
_INF = math.inf
#: Where a message was read: topic, partition, offset.
Position = tuple[str, int, int]
#: A refused message kept for later: envelope, reason, error, kind, its query's position.
_Refusal = tuple[Envelope, str, str, str, Position | None]


def default_instance_id() -> str:
    """The hostname (a pod's name on Kubernetes)."""
    return socket.gethostname() or "streamal"


class GroupMetrics:
    """Metrics of group mode (contract with the dashboard: docs/service.md, "Group mode")."""

    def __init__(self, metrics: Metrics) -> None:
        registry = metrics.registry
        self.samples = Counter(
            "streamal_partition_samples_total",
            "Samples decided for a samples partition by this instance.",
            ["partition"],
            registry=registry,
        )
        self.queries = Counter(
            "streamal_partition_queries_total",
            "Queries paid for a samples partition by this instance.",
            ["partition"],
            registry=registry,
        )
        self.assigned = Gauge(
            "streamal_partitions_assigned",
            "Samples partitions this instance owns now.",
            registry=registry,
        )
        self.catch_up = Gauge(
            "streamal_catch_up_seconds",
            "Time the last catch-up on queries and labels took.",
            registry=registry,
        )
        self.state_refused = Counter(
            "streamal_state_records_refused_total",
            "Records on the state topic refused (not a state record, bad frame or content).",
            registry=registry,
        )
        self._children: dict[int, tuple[Any, Any]] = {}

    def partition(self, p: int) -> tuple[Any, Any]:
        """The (samples, queries) counters of partition ``p``."""
        found = self._children.get(p)
        if found is None:
            found = self._children[p] = (self.samples.labels(str(p)), self.queries.labels(str(p)))
        return found


class _Count:
    """Something with a length (what the metrics read of a pending store)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n


class _Refused:
    def __init__(self, refused: int) -> None:
        self.refused = refused


class _GroupView:
    """The learner as the metrics see it: decisions of the owned partitions, labels of
    the replica."""

    def __init__(self, replica: ActiveLearner, deciders: list[ActiveLearner]) -> None:
        stats = LearnerStats()
        for d in deciders:
            s = d.stats
            stats.seen += s.seen
            stats.queried += s.queried
            stats.expired += s.expired
            stats.evicted += s.evicted
            stats.expired_queries += s.expired_queries
        r = replica.stats
        stats.applied, stats.duplicate, stats.unknown = r.applied, r.duplicate, r.unknown
        stats.warm_start = r.warm_start
        self.stats = stats
        self.pending = _Count(sum(len(d.pending) for d in deciders))
        self.target_rate = replica.target_rate
        self.threshold = deciders[0].threshold if deciders else None
        self.model_version = replica.model_version
        self.budget = _Refused(sum(d.budget.refused for d in deciders))
        self.audit = replica.audit
        self.audit_refused = sum(d.audit_refused for d in deciders)
        self.evaluation = replica.evaluation


class GroupService(Service):
    """The live loop of one instance in scale-out (group) mode.

    Parameters
    ----------
    learner
        The instance's replica: an :class:`~streamal.core.learner.ActiveLearner` whose
        model learns every label (replaced by the snapshot's on restore). Window mode
        is not available in group mode.
    source
        The group consumer of the samples topic.
    sink, checkpointer, topics, policy, metrics, config_hash, clock, limits, warm_start
        As for :class:`~streamal.service.loop.Service`.
    reader
        Reads all partitions of the queries and labels topics (no group).
    state_reader
        Reads the state topic (no group).
    new_decider
        Builds the decider of a samples partition (its budget manager seeded from the
        partition); its model and strategy are replaced by the replica's.
    state_topic
        The compacted topic of partition states.
    instance_id
        This instance's name (logs, state records).
    catch_up_timeout
        Seconds the start-up catch-up may take before the instance decides anyway.
    key
        Signs the state records (the checkpoint key); unsigned records are then refused.
    """

    def __init__(
        self,
        learner: Learner,
        source: Source,
        sink: Sink,
        checkpointer: Checkpointer,
        topics: Topics | None = None,
        policy: LoopPolicy | None = None,
        metrics: Metrics | None = None,
        config_hash: str = "",
        clock: Callable[[], float] = time.monotonic,
        limits: Limits | None = None,
        warm_start: Callable[[Learner], int] | None = None,
        *,
        reader: Reader,
        state_reader: Reader,
        new_decider: Callable[[int], Learner],
        state_topic: str = "streamal.state",
        instance_id: str = "streamal",
        catch_up_timeout: float = 60.0,
        key: bytes | None = None,
    ) -> None:
        if not isinstance(learner, ActiveLearner):
            raise ConfigError(
                "group mode needs one decision per arrival: window mode (learner."
                "window_selector) is not available with group.enabled"
            )
        super().__init__(
            learner,
            source,
            sink,
            checkpointer,
            topics,
            policy,
            metrics,
            config_hash,
            clock,
            limits,
            warm_start,
        )
        self.reader = reader
        self.state_reader = state_reader
        self.new_decider = new_decider
        self.state_topic = state_topic
        self.instance_id = instance_id
        self.catch_up_timeout = catch_up_timeout
        self.key = key
        self.limits = Limits() if limits is None else limits
        self.group_metrics = GroupMetrics(self.metrics)
        #: The message handler of each owned samples partition (its learner: the decider).
        self.handlers: dict[int, MessageHandler] = {}
        #: Next samples offset of each owned partition, once known.
        self.samples_positions: dict[int, int] = {}
        #: Owned partitions changed since their last state record.
        self.dirty: set[int] = set()
        #: The newest state records of each samples partition read from the state topic
        #: (newest last; at most KEEP_STATES, each of which passed the frame check).
        self.states: dict[int, list[bytes]] = {}
        #: The ownership epoch this instance writes for each owned samples partition.
        self._epochs: dict[int, int] = {}
        self.caught_up = False
        self._early: OrderedDict[str, tuple[Label, Envelope]] = OrderedDict()
        #: Refused labels and queries read without the dead-letter partition:
        #: (topic, partition, offset) -> (envelope, reason, error, kind).
        self._refused: OrderedDict[tuple[str, int, int], _Refusal] = OrderedDict()
        #: Where each open query was read: a label refused when it meets its query was
        #: refused by the previous owner only if that one had read both.
        self._query_at: OrderedDict[str, Position] = OrderedDict()
        #: Next offset per queries/labels partition from which this instance (as owner of
        #: the dead-letter partition) writes refused messages' dead letters.
        self._refused_from: dict[tuple[str, int], int] = {}
        self._learned: OrderedDict[str, Any] = OrderedDict()
        self._replica_changed = False
        self._next_reassign = 0.0
        self._state_assigned = False

    # -- what the loop reads ---------------------------------------------------------
    @property
    def replica(self) -> ActiveLearner:
        """The model that learns every label (the snapshot's after a restore)."""
        return cast(ActiveLearner, self.handler.learner)

    @property
    def deciders(self) -> dict[int, ActiveLearner]:
        """The decider of each owned samples partition."""
        return {p: cast(ActiveLearner, h.learner) for p, h in self.handlers.items()}

    def readiness(self) -> tuple[bool, str]:
        """Ready once restored and caught up, while the broker answers and the loop runs.

        Unlike a single instance, an instance without a samples partition is ready: a
        standby (more instances than partitions) or one waiting for a rebalance still
        learns every label, and a rolling update must not wait for the group to give it
        partitions.
        """
        if not self.restored:
            return False, "restoring the snapshot"
        if not self.caught_up:
            return False, "catching up on queries and labels"
        if not self.watch.reachable:
            return False, "broker unreachable"
        if self._failed:
            return False, "the loop failed"
        return True, "ok"

    def _samples_assigned(self) -> bool:
        return bool(self.handlers)

    def _observe(self) -> None:
        view = _GroupView(self.replica, list(self.deciders.values()))
        self.metrics.observe_learner(cast(Learner, view))
        self.group_metrics.assigned.set(len(self.handlers))

    def close(self) -> None:
        """Close the readers, then the transports (:meth:`Service.close`)."""
        try:
            for reader in (self.reader, self.state_reader):
                try:
                    reader.close()
                except TransportError as err:
                    log.warning("closing a reader: %s", err)
        finally:
            super().close()

    # -- the loop ------------------------------------------------------------------------
    def catch_up(self) -> float:
        """Read the queries and labels topics up to their end (bounded); return seconds."""
        started = self.clock()
        self._assign_reader()
        reader, timeout = self.reader, self.catch_up_timeout
        ends = reader.end_offsets()
        idle = False
        while not idle or any(reader.position(tp) < end for tp, end in ends.items()):
            if self.clock() - started > timeout:
                log.warning(
                    "catch-up on queries and labels not done after %.0f s "
                    "(group.catch_up_timeout): deciding with model version %d, "
                    "reading the rest while running",
                    timeout,
                    self.replica.model_version,
                )
                break
            batch = reader.poll(self.policy.max_batch, 0.1)
            idle = not batch
            self._process_side(batch)
        seconds = self.clock() - started
        self.caught_up = True
        self.group_metrics.catch_up.set(seconds)
        self._observe()
        log.info(
            "instance %s caught up in %.1f s: model version %d, %d open queries",
            self.instance_id,
            seconds,
            self.replica.model_version,
            len(self.replica.pending),
        )
        return seconds

    def _assign_reader(self) -> None:
        topics = self.topics
        parts = self.reader.assign([topics.queries, topics.labels])
        known = self.offsets.positions
        self.reader.seek({tp: known[tp] for tp in parts if tp in known})
        self._next_reassign = self.clock() + REASSIGN_EVERY

    def run(self, count: int | None = None, timeout: float | None = None) -> int:
        """Process samples (owned partitions), queries and labels (all partitions).

        As :meth:`Service.run`; before the first decision the instance restores its
        snapshot and catches up (:meth:`catch_up`). ``count`` counts every message.
        """
        self.restore()
        if not self.caught_up:
            self.catch_up()
        if self.policy.tune_gc:
            tune_gc()
        if not self._subscribed:
            self.source.subscribe([self.topics.samples], self)
            self._subscribed = True
            self._subscribed_at = self.clock()
        started, processed = self.clock(), 0
        wait = min(self.policy.poll_timeout, 0.1)
        self._running = True
        try:
            while not self._stopping and (count is None or processed < count):
                self.last_beat = self.clock()
                limit = self.policy.max_batch
                if count is not None:
                    limit = min(limit, count - processed)
                side = self.watch.poll(self.reader, limit, 0.0)
                if side:
                    self._process_side(side)
                    processed += len(side)
                    limit = max(1, limit - len(side)) if count is not None else limit
                batch: list[Envelope] = []
                if count is None or processed < count:
                    batch = self.watch.poll(self.source, limit, 0.0 if side else wait)
                self._raise_callback_error()
                if batch:
                    self._process(batch)
                    processed += len(batch)
                elif side:
                    self._observe()
                self.watch.observe(bool(batch or side))  # before: see Service.run
                self._maybe_checkpoint()
                if not batch:
                    self._note_waiting()
                if self.clock() >= self._next_reassign:
                    self._assign_reader()
                if timeout is not None and self.clock() - started >= timeout:
                    break
        except BaseException:
            self._failed = True
            raise
        finally:
            self._stopping = self._running = False
        if not self._failed and not self.checkpoint():
            raise TransportError(
                "could not flush messages to the broker on stop; the last checkpoint stands "
                "and the work since is redone on restart"
            )
        return processed

    def _process(self, batch: list[Envelope]) -> None:
        t0 = time.perf_counter()
        handlers, positions, dirty = self.handlers, self.samples_positions, self.dirty
        version = self.replica.model_version
        # Samples and queries per partition, counted into the metrics once per batch.
        counts: dict[int, list[int]] = {}
        for env in batch:
            p = env.partition
            handler = handlers.get(p)
            if handler is None:  # not (or no longer) ours
                continue
            decider = cast(ActiveLearner, handler.learner)
            decider.model_version = version
            before = len(handler.outbox)
            handler.handle(env)
            positions[p] = env.offset + 1
            dirty.add(p)
            seen = counts.get(p)
            if seen is None:
                seen = counts[p] = [0, 0]
            seen[0] += 1
            seen[1] += len(handler.outbox) - before
        partition_metrics = self.group_metrics.partition
        for p, (decided, queried) in counts.items():
            samples, queries = partition_metrics(p)
            samples.inc(decided)
            if queried:
                queries.inc(queried)
        self._since_commit += len(batch)
        self.metrics.batch_seconds.observe(time.perf_counter() - t0)
        self._observe()
        self.metrics.observe_lag()

    # -- queries and labels (every partition, every instance) ------------------------------
    def _process_side(self, batch: list[Envelope]) -> None:
        if not batch:
            return
        queries, labels = self.topics.queries, self.topics.labels
        positions = self.offsets.positions
        for env in batch:
            if env.topic == queries:
                self._on_query(env)
            elif env.topic == labels:
                self._on_label(env)
            positions[(env.topic, env.partition)] = env.offset + 1
        self._since_commit += len(batch)
        self._replica_changed = True

    def _on_query(self, env: Envelope) -> None:
        try:
            query = decode_query(env.value or b"")
            _check_query(query, self.limits)
        except DecodeError as err:
            self._refuse(env, classify(env.value, err), str(err), "query")
            return
        except MessageRejected as err:
            self._refuse(env, err.code, str(err), "query")
            return
        replica, sample_id = self.replica, query.sample_id
        if sample_id in replica.pending or replica.outcome_of(sample_id) is not None:
            return  # published again (after a restart or a move): known already
        replica.add_pending(
            PendingEntry(
                sample_id,
                dict(query.x),
                float(query.ts or 0.0),
                _INF,  # the owner of the partition expires queries; replicas learn late labels
                query.score,
                query.prediction,
                query.model_version,
                query.purpose,
                query.propensity,
            )
        )
        query_at = self._query_at
        query_at[sample_id] = (env.topic, env.partition, env.offset)
        if len(query_at) > MAX_LEARNED:
            query_at.popitem(last=False)
        early = self._early.pop(sample_id, None)
        if early is not None:
            self._learn(*early)

    def _on_label(self, env: Envelope) -> None:
        policy = self.handler.policy
        try:
            label = decode_label(env.value or b"")
            check_label(label, self.limits)
            refused = policy.refuse(label.y)
            if refused is not None:
                raise MessageRejected("unknown_class", refused)
        except DecodeError as err:
            self._refuse(env, classify(env.value, err), str(err), "label")
            return
        except MessageRejected as err:
            self._refuse(env, err.code, str(err), "label")
            return
        replica, sample_id = self.replica, label.sample_id
        if sample_id in replica.pending or replica.outcome_of(sample_id) is not None:
            self._learn(label, env)
        elif label.x is not None and policy.unsolicited:
            self._learn(label, env)
        else:  # its query has not been read yet (or it has none): wait, bounded
            early = self._early
            early[sample_id] = (label, env)
            if len(early) > MAX_EARLY_LABELS:
                early.popitem(last=False)
                self.metrics.label(LabelOutcome.UNKNOWN.value)

    def _refuse(
        self, env: Envelope, reason: str, error: str, kind: str, query: Position | None = None
    ) -> None:
        """A label or query refused: counted here; dead-lettered by the dead-letter
        partition's owner.

        ``query`` is where the label's query was read, when the refusal came from
        applying the label to it (an instance refuses such a label once it has read
        both). Without the dead-letter partition the message is kept (bounded) in case
        this instance takes the partition over from an owner that has not read it yet
        (:meth:`_take_refused`).
        """
        if kind == "label":
            self.metrics.label("rejected")
        log.debug("%s at %s/%d/%d refused: %s", kind, env.topic, env.partition, env.offset, error)
        handler = self.handlers.get(DEAD_LETTER_PARTITION)
        if handler is None:
            refused = self._refused
            refused[(env.topic, env.partition, env.offset)] = (env, reason, error, kind, query)
            if len(refused) > MAX_REFUSED:
                refused.popitem(last=False)
        elif not self._refused_before(env, query):
            handler.dead_letter(env, reason, error, kind)
            self.dirty.add(DEAD_LETTER_PARTITION)  # its record moves the read positions

    def _refused_before(self, env: Envelope, query: Position | None) -> bool:
        """Whether the previous owner of the dead-letter partition had read ``env`` (and
        its ``query``), and so wrote its dead letter."""
        read = self._refused_from
        if env.offset >= read.get((env.topic, env.partition), 0):
            return False
        return query is None or query[2] < read.get(query[:2], 0)

    def _learn(self, label: Label, env: Envelope) -> None:
        replica = self.replica
        try:
            if label.x is not None and self.handler.policy.unsolicited:
                outcome = replica.learn_unsolicited(label)
            else:
                outcome = replica.apply(label)
        except MessageRejected as err:
            self._refuse(env, err.code, str(err), "label", self._query_at.get(label.sample_id))
            return
        self.metrics.label(outcome.value, label.sample_id)
        if outcome is LabelOutcome.APPLIED:
            self._query_at.pop(label.sample_id, None)
            learned = self._learned
            learned[label.sample_id] = label.y
            if len(learned) > MAX_LEARNED:
                learned.popitem(last=False)
            for p, handler in self.handlers.items():
                if cast(ActiveLearner, handler.learner).settle(label.sample_id, label.y):
                    self.dirty.add(p)
                    break

    # -- checkpoints -------------------------------------------------------------------
    def checkpoint(self, wait_commit: bool = True) -> bool:
        """Flush; write each changed partition's state (flushed); save the instance's
        snapshot; publish the queries; commit. ``False`` if a flush timed out.

        The state record of a partition holds the queries decided since the last one, so
        that they are published (by this instance now, or by the next owner) only once
        the decisions behind them are durable.
        """
        t0 = time.perf_counter()
        sink, timeout = self.sink, self.policy.flush_timeout
        if not sink.flush(timeout):
            return self._flush_failed()
        handlers = self.handlers
        if not self._since_commit and not self.dirty:
            return True
        for p in sorted(self.dirty):
            handler = handlers.get(p)
            if handler is None or p not in self.samples_positions:
                continue
            state = PartitionState(
                p,
                self.samples_positions[p],
                decision_state(cast(ActiveLearner, handler.learner)),
                list(handler.outbox),
                self.config_hash,
                self.instance_id,
                epoch=self._epochs.get(p, 0),
            )
            if p == DEAD_LETTER_PARTITION:
                state.read = self._side_read()
            sink.send(self.state_topic, encode_state(state, self.key), str(p).encode())
            # One record per flush: each is its own batch, so even a broker that lists
            # a batch's first offset as the end (tansu) lists the state topic's end right.
            if not sink.flush(timeout):
                return self._flush_failed()
        if self._replica_changed:
            snapshot = Snapshot(
                self.replica,
                dict(self.offsets.positions),
                [],
                {},
                self.config_hash,
                {"instance": self.instance_id},
            )
            try:
                self.checkpointer.save(snapshot)
            except CheckpointError:
                self.metrics.checkpoint_failed()
                raise
            self._replica_changed = False
        for handler in handlers.values():
            for topic, key, value in handler.outbox:
                sink.send(topic, value, key)
            handler.outbox.clear()
        self.dirty.clear()
        self._since_commit, self._last_commit = 0, self.clock()
        samples = self.topics.samples
        offsets = {(samples, p): pos for p, pos in self.samples_positions.items() if p in handlers}
        try:
            self.source.commit(offsets, wait=wait_commit)
        except TransportError as err:  # the state records' offsets win anyway
            self.watch.failed(f"{err} (the state topic holds the offsets)")
        self.metrics.checkpoint(time.perf_counter() - t0)
        return True

    def _side_read(self) -> dict[tuple[str, int], int]:
        """Next offset of each queries and labels partition read (by the side reader)."""
        side = (self.topics.queries, self.topics.labels)
        return {tp: pos for tp, pos in self.offsets.positions.items() if tp[0] in side}

    def _flush_failed(self) -> bool:
        log.warning(
            "checkpoint skipped: messages still in flight after %.0f s", self.policy.flush_timeout
        )
        self.metrics.checkpoint_failed()
        self.watch.failed("a flush timed out")
        return False

    # -- rebalance listener ------------------------------------------------------------
    def on_revoked(self, partitions: list[TopicPartition]) -> None:
        """Write the partitions' state (checkpoint), then let their deciders go."""
        self._assigned.difference_update(partitions)
        try:
            if not self._failed:
                # The commit need not wait: the next owner starts from the state
                # record (flushed here) anyway.
                self.checkpoint(wait_commit=False)
        except BaseException as err:  # the client swallows callback errors
            self._callback_error = err
        samples = self.topics.samples
        for topic, p in partitions:
            if topic == samples:
                self.handlers.pop(p, None)
                self.samples_positions.pop(p, None)
                self._epochs.pop(p, None)
                self.dirty.discard(p)
        self.group_metrics.assigned.set(len(self.handlers))

    def on_assigned(self, partitions: list[TopicPartition]) -> None:
        """Restore each new partition's decider from the state topic and seek to it."""
        self._assigned.update(partitions)
        try:
            samples = self.topics.samples
            mine = [p for topic, p in partitions if topic == samples and p not in self.handlers]
            if mine:
                self._read_states()
            for p in mine:
                self._take(p)
            self.group_metrics.assigned.set(len(self.handlers))
        except BaseException as err:
            self._callback_error = err

    def _take(self, p: int) -> None:
        decider, state = self._restore(p)
        if state is not None:
            self.samples_positions[p] = state.offset
            self.dirty.add(p)  # the next checkpoint claims the partition with our epoch
            self.source.seek({(self.topics.samples, p): state.offset})
            for topic, key, value in state.outbox:
                self.sink.send(topic, value, key)
            for entry in list(decider.pending):  # answered while the partition moved
                y = self._learned.get(entry.sample_id, _MISSING)
                if y is not _MISSING:
                    decider.settle(entry.sample_id, y)
            log.info(
                "samples partition %d: resumed at offset %d from %s's state (%d seen, %d "
                "queried, %d pending, %d queries re-published)",
                p,
                state.offset,
                state.instance or "an instance",
                decider.stats.seen,
                decider.stats.queried,
                len(decider.pending),
                len(state.outbox),
            )
        else:
            # A fresh budget shares the whole stream's window promise with the other
            # partitions (BudgetManager.pace; docs/scaling.md, the promise table).
            parts = self._samples_partitions()
            decider.budget.pace(parts)
            log.info(
                "samples partition %d: no state yet, starting a budget for it (paced for "
                "%d partitions: at most %d labels in %d of its arrivals)",
                p,
                parts,
                decider.budget.paced[1],
                decider.budget.paced[0],
            )
        handler = MessageHandler(
            decider,
            self.sink,
            self.topics,
            self.metrics,
            self.policy.dead_letter_max_bytes,
            self.limits,
        )
        handler.policy = self.handler.policy
        self.handlers[p] = handler
        if p == DEAD_LETTER_PARTITION:
            self._take_refused({} if state is None else state.read)

    def _decider(self, p: int) -> ActiveLearner:
        """A new decider for partition ``p``, on the replica's model and strategy."""
        decider = cast(ActiveLearner, self.new_decider(p))
        decider.model, decider.strategy = self.replica.model, self.replica.strategy
        return decider

    def _restore(self, p: int) -> tuple[ActiveLearner, PartitionState | None]:
        """A decider for ``p`` restored from its best record that can be restored.

        The records are ranked by ownership epoch, then samples offset, then order on
        the topic (:attr:`~streamal.core.partition.PartitionState.epoch`): a record a
        zombie owner wrote after the partition had moved, or an old one written again,
        ranks below its successors'. A record that cannot be restored (its pickle, its
        fields, another partition's) is refused and logged, and the next one is tried;
        a record of other learner settings stops the instance (a misconfigured group,
        not a bad record). Records this instance takes ``p`` with are written with one
        more than the highest epoch read.
        """
        records = self.states.get(p, [])
        where = f"{self.state_topic} (samples partition {p})"
        decoded: list[tuple[int, int, int, PartitionState]] = []
        refused: list[int] = []
        for index, record in enumerate(records):
            try:
                state = decode_state(record, self.key)
                if state.partition != p:
                    raise CheckpointError(
                        f"partition state record of partition {state.partition} under key {p}"
                    )
            except CheckpointError as err:
                self._refuse_state(where, err)
                refused.append(index)
                continue
            decoded.append((state.epoch, state.offset, index, state))
        decoded.sort(key=lambda item: item[:3], reverse=True)
        self._epochs[p] = max((item[0] for item in decoded), default=0) + 1
        try:
            return self._restore_best(p, decoded, refused, where, len(records))
        finally:
            # A refused record is refused for good: forgotten, so that taking the
            # partition again neither decodes nor counts it again.
            if refused:
                gone = set(refused)
                self.states[p] = [r for i, r in enumerate(records) if i not in gone]

    def _restore_best(
        self,
        p: int,
        decoded: list[tuple[int, int, int, PartitionState]],
        refused: list[int],
        where: str,
        total: int,
    ) -> tuple[ActiveLearner, PartitionState | None]:
        """The decider of the best-ranked decoded record that restores (see :meth:`_restore`)."""
        for _epoch, _offset, index, state in decoded:
            if self.config_hash and state.config_hash and state.config_hash != self.config_hash:
                raise CheckpointError(
                    f"the state of samples partition {p} in {self.state_topic} was written with "
                    f"other learner settings (config hash {state.config_hash}, now "
                    f"{self.config_hash}): every instance of a group needs the same learner "
                    "settings"
                )
            try:
                decider = restore_decisions(self._decider(p), state.decider)
            except Exception as err:  # fields of the wrong type inside the decider state
                self._refuse_state(where, err)
                refused.append(index)
                continue
            return decider, state
        if total:
            log.error(
                "samples partition %d: none of its %d state record(s) could be restored; "
                "starting a budget for it from the group's committed offset",
                p,
                total,
            )
        return self._decider(p), None

    def _refuse_state(self, where: str, err: BaseException) -> None:
        self.group_metrics.state_refused.inc()
        log.warning("state record at %s refused: %s", where, err)

    def _take_refused(self, read: dict[tuple[str, int], int]) -> None:
        """Write the kept refused messages the previous owner had not read; forget the rest."""
        self._refused_from = dict(read)
        kept, self._refused = self._refused, OrderedDict()
        handler = self.handlers[DEAD_LETTER_PARTITION]
        for env, reason, error, kind, query in kept.values():
            if not self._refused_before(env, query):
                handler.dead_letter(env, reason, error, kind)
                self.dirty.add(DEAD_LETTER_PARTITION)

    def _samples_partitions(self) -> int:
        """Partitions of the samples topic (at least those assigned; 1 if unknown)."""
        try:
            count = self.state_reader.partition_count(self.topics.samples)
        except TransportError as err:
            log.warning("cannot read the samples topic's partition count: %s", err)
            count = 0
        return max(count, 1, *(p + 1 for p in self.handlers))

    def _read_states(self) -> None:
        """Read the state topic up to its end (bounded by ``catch_up_timeout``)."""
        reader = self.state_reader
        if not self._state_assigned:
            if not reader.assign([self.state_topic]):
                raise TransportError(
                    f"the state topic {self.state_topic} (group.state_topic) does not exist: "
                    "create it (one partition, cleanup.policy=compact, the replication of "
                    "your other topics) before starting instances in group mode"
                )
            self._state_assigned = True
        started = self.clock()
        ends = reader.end_offsets()
        while any(reader.position(tp) < end for tp, end in ends.items()):
            if self.clock() - started > max(self.catch_up_timeout, 1.0):
                raise TransportError(
                    f"could not read the state topic {self.state_topic} to its end in "
                    f"{self.catch_up_timeout:.0f} s; deciding without it could spend a "
                    "partition's budget twice"
                )
            for env in reader.poll(1000, 0.1):
                self._on_state(env)

    def _on_state(self, env: Envelope) -> None:
        """Keep a state record that passes the frame check; refuse anything else."""
        where = f"{env.topic}/{env.partition}/{env.offset}"
        key = env.key or b""
        if not (key.isdigit() and len(key) <= 9):
            self._refuse_state(where, ValueError(f"key {key[:40]!r} is not a partition number"))
            return
        if env.value is None:  # streamal never deletes a partition's state
            self._refuse_state(where, ValueError("a tombstone (streamal writes none)"))
            return
        try:
            check_state(env.value, self.key)
        except CheckpointError as err:
            self._refuse_state(where, err)
            return
        records = self.states.setdefault(int(key), [])
        records.append(env.value)
        del records[:-KEEP_STATES]


_MISSING = object()


def _check_query(query: Query, limits: Limits) -> None:
    """Raise :class:`~streamal.exceptions.MessageRejected` if a query's sample breaks
    ``limits`` or holds a number that is not finite (a query's schema allows NaN).

    Examples
    --------
    >>> from streamal.messages import decode_query
    >>> q = b'{"sample_id": "s", "x": {"a": NaN}, "score": 0, "strategy": "e", "model_version": 1}'
    >>> _check_query(decode_query(q), Limits())
    Traceback (most recent call last):
    ...
    streamal.exceptions.MessageRejected: the query holds a number that is not finite
    """
    sample = Sample.model_construct(id=query.sample_id, x=dict(query.x), ts=query.ts, meta={})
    check_sample(sample, limits)
    numbers = [v for v in query.x.values() if isinstance(v, float)]
    numbers += [query.score, *(query.proba or {}).values()]
    if query.ts is not None:
        numbers.append(query.ts)
    if not all(math.isfinite(v) for v in numbers):
        raise MessageRejected("non_finite", "the query holds a number that is not finite")
