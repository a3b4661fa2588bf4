"""The live loop: consume samples and labels, decide, query, learn, checkpoint.

One loop polls the samples and labels topics together in bounded batches and hands each
message to the same :class:`~streamal.core.learner.ActiveLearner` that replay uses. The
checkpoint (:meth:`Service.checkpoint`) runs in this order: **flush** the sink, **save a
snapshot** (learner, offsets, and the *outbox* of queries decided since the last one),
**publish the outbox**, **commit** the offsets; every ``commit_every`` messages or
``commit_interval`` seconds, on revoke and on a graceful stop, never after a failure.
A query is published only once the decision behind it is durable, so a crash can never
leave a query out for a decision it undoes. ``docs/service.md`` explains the promise.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from streamal.core.checkpoint import Checkpointer, Snapshot
from streamal.core.protocol import Learner
from streamal.exceptions import CheckpointError, TransportError
from streamal.messages import Limits
from streamal.service.handlers import MessageHandler, Topics
from streamal.service.health import BrokerWatch
from streamal.service.metrics import Metrics
from streamal.service.offsets import Offsets
from streamal.service.policy import LoopPolicy
from streamal.transports.base import Envelope, Sink, Source, TopicPartition

__all__ = ["LoopPolicy", "Service", "Topics", "tune_gc"]

log = logging.getLogger("streamal.service")

#: Seconds without a samples partition before the loop says it is waiting, and between
#: two such notes.
WAIT_NOTE_AFTER, WAIT_NOTE_EVERY = 10.0, 30.0
#: Allocations between two collections of the young generation (Python's default: 700).
GC_YOUNG_THRESHOLD = 10_000
_gc_tuned = False


def tune_gc() -> None:
    """Keep the garbage collector off the per-message path (once per process).

    Every object alive when the loop starts (imported libraries, the model, the restored
    state) is frozen (:func:`gc.freeze`): the collector never scans it again. And the
    young generation is collected every 10,000 allocations instead of 700, so that full
    collections no longer stall polls (measured in ``docs/benchmarks.md``, "Figures
    behind design choices"). Objects are still freed by reference counting as usual.
    """
    global _gc_tuned
    if _gc_tuned:
        return
    _gc_tuned = True
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


class Service:
    """Runs an active learner on a stream: the live driver of the core.

    Parameters
    ----------
    learner
        The :class:`~streamal.core.learner.ActiveLearner` to start with when no snapshot exists.
    source, sink
        Transports (:mod:`streamal.transports`).
    checkpointer
        Where snapshots go.
    topics, policy
        Topic names and loop timings.
    metrics
        Metrics to update; a private registry is used when omitted.
    config_hash
        Hash of the learner settings; a snapshot with another hash is refused.
    clock
        Monotonic clock (seconds), injectable for tests.
    limits
        Bounds on each message (:class:`~streamal.messages.Limits`; defaults if omitted).
    warm_start
        Run on the learner once it is restored (or new), before the first decision:
        learns the warm-start data unless the learner did already
        (:mod:`streamal.service.warm`).

    Examples
    --------
    >>> from streamal.core.spec import LearnerSpec, build_learner
    >>> from streamal.transports import MemoryBroker, MemorySink, MemorySource
    >>> import tempfile
    >>> broker = MemoryBroker()
    >>> for i in range(5):
    ...     _ = broker.produce("streamal.samples", b'{"id": "%d", "x": {"a": %d}}' % (i, i))
    >>> service = Service(
    ...     build_learner(LearnerSpec("logreg", "entropy", "full", 1.0, seed=1)),
    ...     MemorySource(broker), MemorySink(broker), Checkpointer(tempfile.mkdtemp()),
    ... )
    >>> service.run(count=5)
    5
    >>> len(broker.records("streamal.queries")), broker.committed["streamal"]
    (5, {('streamal.samples', 0): 5})
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
    ) -> None:
        self.source = source
        self.sink = sink
        self.checkpointer = checkpointer
        #: The topic names and loop timings in force (the defaults when not given).
        self.topics = topics = Topics() if topics is None else topics
        self.policy = policy = LoopPolicy() if policy is None else policy
        self.metrics = Metrics(CollectorRegistry()) if metrics is None else metrics
        self.handler = MessageHandler(
            learner, sink, topics, self.metrics, policy.dead_letter_max_bytes, limits
        )
        self.config_hash = config_hash
        self.clock = clock
        self.warm_start = warm_start
        self.offsets = Offsets()
        self.restored = False
        self.last_beat = clock()
        self.watch = BrokerWatch(
            source, policy.broker_timeout, policy.health_interval, clock, self.metrics.broker
        )
        self._subscribed = False
        self._stopping = False
        self._running = False
        self._failed = False
        self._callback_error: BaseException | None = None
        self._since_commit = 0
        self._last_commit = clock()
        #: Partitions assigned to this member (kept from the rebalance callbacks, so that
        #: the HTTP thread never touches the consumer).
        self._assigned: set[TopicPartition] = set()
        self._subscribed_at: float | None = None
        self._next_wait_note = 0.0

    @property
    def learner(self) -> Learner:
        """The learner (replaced by the snapshot's on restore)."""
        return self.handler.learner

    # -- lifecycle -----------------------------------------------------------------
    def health(self) -> tuple[bool, str]:
        """Liveness: ``False`` after a failure or when a loop turn takes too long."""
        if self._failed:
            return False, "the loop failed"
        stalled = self.clock() - self.last_beat
        if self._running and stalled > self.policy.stall_timeout:
            return False, f"no loop turn for {stalled:.0f} s"
        return True, "ok"

    def readiness(self) -> tuple[bool, str]:
        """Readiness: snapshot restored, broker reachable, a samples partition assigned."""
        if not self.restored:
            return False, "restoring the snapshot"
        if not self.watch.reachable:
            return False, "broker unreachable"
        if self._failed:
            return False, "the loop failed"
        if self._subscribed and not self._samples_assigned():
            return False, f"no partition of {self.topics.samples} assigned yet"
        return True, "ok"

    def _samples_assigned(self) -> bool:
        samples = self.topics.samples
        return any(topic == samples for topic, _ in list(self._assigned))

    def _note_waiting(self) -> None:
        """Say so, every 30 s, while no samples partition is assigned (after 10 s)."""
        since = self._subscribed_at
        if since is None or self._samples_assigned():
            return
        now = self.clock()
        if now - since >= WAIT_NOTE_AFTER and now >= self._next_wait_note:
            self._next_wait_note = now + WAIT_NOTE_EVERY
            log.warning(
                "no partition of %s assigned after %.0f s: waiting for the group to form "
                "or the topic to be created (does it exist? are there more members than "
                "partitions?)",
                self.topics.samples,
                now - since,
            )

    def restore(self) -> Snapshot | None:
        """Load the newest snapshot, if any, and re-publish its outbox (once per service)."""
        if self.restored:
            return None
        snap = self.checkpointer.load()
        if snap is not None:
            if self.config_hash and snap.config_hash and snap.config_hash != self.config_hash:
                raise CheckpointError(
                    f"the snapshots in {self.checkpointer.directory} were written with other "
                    f"learner settings (config hash {snap.config_hash}, now {self.config_hash}); "
                    "restore the old model/strategy/budget/rate/seed/ttl/topic settings, or "
                    "point the checkpoint directory at an empty folder to start a new model"
                )
            # (Snapshots written before the window learner kept its queries' samples
            # hold the open window's samples in extra["window"] too; not needed now.)
            self.handler.learner = snap.learner
            self.offsets = Offsets(snap.offsets, snap.topic_ids)
            for topic, key, value in snap.outbox:
                self.sink.send(topic, value, key)
            log.info(
                "restored snapshot %d: %d samples seen, %d pending, %d queries re-published",
                snap.sequence,
                self.learner.stats.seen,
                len(self.learner.pending),
                len(snap.outbox),
            )
        else:
            log.info("no snapshot in %s: starting a new model", self.checkpointer.directory)
        if self.warm_start is not None:
            self.warm_start(self.learner)
        self.restored = True
        self.metrics.observe_learner(self.learner)
        return snap

    def run(self, count: int | None = None, timeout: float | None = None) -> int:
        """Process messages until :meth:`stop`, ``count`` messages, or ``timeout`` seconds.

        Returns the number of messages processed. A graceful end checkpoints; an
        exception (or ``stop(fail=True)``) leaves the last checkpoint as it was.
        """
        self.restore()
        if self.policy.tune_gc:
            tune_gc()
        if not self._subscribed:
            self.source.subscribe([self.topics.samples, self.topics.labels], self)
            self._subscribed = True
            self._subscribed_at = self.clock()
        started, processed = self.clock(), 0
        self._running = True
        try:
            while not self._stopping and (count is None or processed < count):
                self.last_beat = self.clock()
                limit = self.policy.max_batch
                if count is not None:
                    limit = min(limit, count - processed)
                batch = self.watch.poll(self.source, limit, self.policy.poll_timeout)
                self._raise_callback_error()
                if batch:
                    self._process(batch)
                    processed += len(batch)
                # Before the checkpoint: records polled earlier must not undo what a
                # failed flush says about the broker (a second flush would wait again).
                self.watch.observe(bool(batch))
                self._maybe_checkpoint()
                if not batch:
                    self._note_waiting()
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

    def stop(self, fail: bool = False) -> None:
        """Ask :meth:`run` to return after the current batch (safe from signal handlers).

        With ``fail=True`` the run ends without the final checkpoint.
        """
        self._stopping = True
        if fail:
            self._failed = True

    def close(self) -> None:
        """Close the transports (after :meth:`run`).

        With the broker known to be unreachable, the producer is closed without waiting
        for its messages: they could not be delivered, and the work behind them is redone
        from the last snapshot on restart. (kafka-python's producer then raises its
        flush timeout at once, which ``streamal serve`` logs.)
        """
        try:
            self.source.close()
        finally:
            try:
                self.sink.close(self.policy.flush_timeout if self.watch.reachable else 0.0)
            finally:
                self.checkpointer.close()  # the directory's lock

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _process(self, batch: list[Envelope]) -> None:
        t0 = time.perf_counter()
        handle, positions = self.handler.handle, self.offsets.positions
        for env in batch:
            key = (env.topic, env.partition)
            if env.offset < positions.get(key, 0):
                self._went_back(key, positions[key], env.offset)
            handle(env)
            positions[key] = env.offset + 1
        self._since_commit += len(batch)
        self.metrics.batch(time.perf_counter() - t0, self.learner)

    def _went_back(self, tp: TopicPartition, expected: int, offset: int) -> None:
        """A partition delivered an offset below its stored position: the client restarted
        it (its topic was re-created, and no re-assignment showed :meth:`on_assigned` the
        new id). Counted as a reset.

        The positions now point into the new log, so the old topic id is forgotten (or
        replaced by the new one where the metadata already has it): a later assignment
        that shows the new id must not restart the topic again, reading it twice.
        """
        log.warning(
            "partition %s-%d restarted at offset %d (expected %d): the topic was re-created",
            tp[0],
            tp[1],
            offset,
            expected,
        )
        self.metrics.offset_reset(self._kind(tp[0]))
        self.offsets.adopt(self.source, tp[0])

    def _kind(self, topic: str) -> str:
        """The metrics' name of an input topic: ``sample`` or ``label``."""
        return {self.topics.samples: "sample", self.topics.labels: "label"}.get(topic, topic)

    # -- checkpoints ---------------------------------------------------------------
    def _maybe_checkpoint(self) -> None:
        # While the broker is known to be down a checkpoint's flush would only wait
        # flush_timeout and fail; the watch's probe (or records) says when it is back.
        if not self._since_commit or not self.watch.reachable:
            return
        policy = self.policy
        if (
            self._since_commit >= policy.commit_every
            or self.clock() - self._last_commit >= policy.commit_interval
        ):
            self.checkpoint(wait_commit=False)

    def checkpoint(self, wait_commit: bool = True) -> bool:
        """Flush, save a snapshot, publish the outbox, commit; ``False`` if the flush timed out.

        Periodic checkpoints do not wait for the offset commit (``wait_commit=False``):
        the snapshot already holds the offsets, so a commit that fails or is lost only
        matters to another member taking the partitions over, and the commits before a
        revoke or a stop wait.

        A flush that times out abandons this checkpoint (it is retried later); a
        snapshot that cannot be written raises :class:`~streamal.exceptions.CheckpointError`.
        With nothing processed since the last checkpoint, only the flush is done.
        """
        t0 = time.perf_counter()
        if not self.sink.flush(self.policy.flush_timeout):
            log.warning(
                "checkpoint skipped: messages still in flight after %.0f s",
                self.policy.flush_timeout,
            )
            self.metrics.checkpoint_failed()
            self.watch.failed("a flush timed out")
            return False
        if not self._since_commit and not self.handler.outbox:
            return True
        outbox = self.handler.outbox
        snapshot = Snapshot(
            self.learner,
            dict(self.offsets.positions),
            list(outbox),
            dict(self.offsets.topic_ids),
            self.config_hash,
        )
        try:
            self.checkpointer.save(snapshot)
        except CheckpointError:
            self.metrics.checkpoint_failed()
            raise
        for topic, key, value in outbox:
            self.sink.send(topic, value, key)
        outbox.clear()
        self._since_commit, self._last_commit = 0, self.clock()
        try:
            self.source.commit(self.offsets.positions, wait=wait_commit)
        except TransportError as err:  # the snapshot's offsets win on restart anyway
            self.watch.failed(f"{err} (the snapshot holds the offsets)")
        self.metrics.checkpoint(time.perf_counter() - t0)
        return True

    # -- rebalance listener (called inside source.poll) ----------------------------
    def on_revoked(self, partitions: list[TopicPartition]) -> None:
        """Checkpoint before the partitions go (errors are raised after the poll)."""
        self._assigned.difference_update(partitions)
        try:
            if not self._failed:
                self.checkpoint()
        except BaseException as err:  # the client swallows callback errors
            self._callback_error = err

    def on_assigned(self, partitions: list[TopicPartition]) -> None:
        """Seek to the snapshot's offsets; start re-created topics from the beginning."""
        self._assigned.update(partitions)
        try:
            for topic, _ in self.offsets.assign(self.source, partitions):
                self.metrics.offset_reset(self._kind(topic))
        except BaseException as err:
            self._callback_error = err

    def _raise_callback_error(self) -> None:
        err, self._callback_error = self._callback_error, None
        if err is not None:
            raise err
