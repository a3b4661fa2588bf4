"""streamal: stream-based online active learning, as a library and a Kafka service."""

from streamal import budgets, strategies
from streamal.core import models
from streamal.core.learner import ActiveLearner, Decision, LabelOutcome
from streamal.core.pending import MemoryPendingStore, PendingEntry, SQLitePendingStore
from streamal.core.protocol import Learner
from streamal.core.river_compat import ActiveClassifier
from streamal.core.spec import LearnerSpec, WindowSpec, build_learner
from streamal.exceptions import (
    CheckpointError,
    ConfigError,
    DecodeError,
    InputError,
    StreamalError,
    TransportError,
)
from streamal.messages import Label, Query, Sample

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
    "Learner",
    "LearnerSpec",
    "MemoryPendingStore",
    "PendingEntry",
    "Query",
    "SQLitePendingStore",
    "Sample",
    "StreamalError",
    "TransportError",
    "WindowSpec",
    "__version__",
    "budgets",
    "build_learner",
    "models",
    "strategies",
]
