"""streamal: stream-based online active learning, as a library and a Kafka service."""

from streamal import budgets, models, strategies
from streamal.exceptions import (
    CheckpointError,
    ConfigError,
    DecodeError,
    InputError,
    StreamalError,
    TransportError,
)
from streamal.learner import ActiveLearner, Decision, LabelOutcome
from streamal.messages import Label, Query, Sample
from streamal.pending import MemoryPendingStore, PendingEntry, SQLitePendingStore

__version__ = "0.1.0"

__all__ = [
    "ActiveLearner",
    "CheckpointError",
    "ConfigError",
    "Decision",
    "DecodeError",
    "InputError",
    "Label",
    "LabelOutcome",
    "MemoryPendingStore",
    "PendingEntry",
    "Query",
    "SQLitePendingStore",
    "Sample",
    "StreamalError",
    "TransportError",
    "__version__",
    "budgets",
    "models",
    "strategies",
]
