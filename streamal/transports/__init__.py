"""Transports: the only I/O edge. Sources deliver envelopes, sinks send them.

:mod:`streamal.transports.memory` holds in-memory doubles for tests;
:mod:`streamal.transports.kafka` the Kafka implementation (imported on demand, so that
the memory transports work without kafka-python).
"""

from streamal.transports.base import Envelope, RebalanceListener, Sink, Source, TopicPartition
from streamal.transports.memory import MemoryBroker, MemorySink, MemorySource

__all__ = [
    "Envelope",
    "MemoryBroker",
    "MemorySink",
    "MemorySource",
    "RebalanceListener",
    "Sink",
    "Source",
    "TopicPartition",
]
