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
from streamal.river_compat import ActiveClassifier

__version__ = "0.1.0"

__all__ = [
    "ActiveClassifier",
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
