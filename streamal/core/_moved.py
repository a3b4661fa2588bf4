"""Old module paths of classes that snapshots pickle, and an unpickler that follows them.

Pickles name each class by module and qualified name. The package layout changed once
(``streamal.learner`` became ``streamal.core.learner``, ``streamal.window`` became
``streamal.window.learner``, ...); :data:`MOVED` is the one place that maps the old
module paths to the new ones, so that snapshots and SQLite pending stores written
before the move still load.

Examples
--------
>>> import pickle
>>> from streamal.core.learner import LabelOutcome
>>> new = pickle.dumps(LabelOutcome.EXPIRED, protocol=0)  # text opcodes: names as lines
>>> loads(new.replace(b"streamal.core.learner", b"streamal.learner"))
<LabelOutcome.EXPIRED: 'expired'>
"""

from __future__ import annotations

import io
import pickle
from typing import Any

__all__ = ["MOVED", "MovedUnpickler", "loads"]

#: Module path before the layout of ``streamal/core`` -> module path now.
MOVED: dict[str, str] = {
    "streamal.learner": "streamal.core.learner",
    "streamal.pending": "streamal.core.pending",
    "streamal.models": "streamal.core.models",
    "streamal.registry": "streamal.core.registry",
    "streamal.evaluation": "streamal.core.evaluation",
    "streamal.checkpoint": "streamal.core.checkpoint",
    "streamal.sklearn": "streamal.core.sklearn",
    "streamal.window": "streamal.window.learner",
    "streamal.replay": "streamal.offline.replay",
    "streamal.report": "streamal.offline.report",
    "streamal.sources": "streamal.offline.streams",
    "streamal.oracle": "streamal.offline.oracle",
    "streamal.companions": "streamal.companions.loops",
    "streamal.annotators": "streamal.companions.annotators",
    "streamal.broker": "streamal.dev.broker",
}


class MovedUnpickler(pickle.Unpickler):
    """An unpickler that reads classes from their new modules (see :data:`MOVED`)."""

    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(MOVED.get(module, module), name)


def loads(data: bytes) -> Any:
    """:func:`pickle.loads`, with the old module paths of :data:`MOVED` followed."""
    return MovedUnpickler(io.BytesIO(data)).load()
