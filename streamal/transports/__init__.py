"""Transports: the only I/O edge. Sources deliver envelopes, sinks send them.

:mod:`streamal.transports.memory` holds in-memory doubles for tests;
:mod:`streamal.transports.kafka` the Kafka implementation (imported on demand, so that
the memory transports work without kafka-python).
"""

from streamal.transports.base import (
    Envelope,
    Reader,
    RebalanceListener,
    Sink,
    Source,
    TopicPartition,
)
from streamal.transports.memory import MemoryBroker, MemoryReader, MemorySink, MemorySource

__all__ = [
    "Envelope",
    "MemoryBroker",
    "MemoryReader",
    "MemorySink",
    "MemorySource",
    "Reader",
    "RebalanceListener",
    "Sink",
    "Source",
    "TopicPartition",
]
