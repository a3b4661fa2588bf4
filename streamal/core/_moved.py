"""Old module paths of classes that snapshots pickle.

Pickles name each class by module and qualified name. The package layout changed once
(``streamal.learner`` became ``streamal.core.learner``, ``streamal.window`` became
``streamal.window.learner``, ...); :data:`MOVED` is the one place that maps the old
module paths to the new ones; :class:`streamal.core.safepickle.RestrictedUnpickler`
follows it, so that snapshots and SQLite pending stores written before the move still
load.

Examples
--------
>>> import pickle
>>> from streamal.core.learner import LabelOutcome
>>> new = pickle.dumps(LabelOutcome.EXPIRED, protocol=0)  # text opcodes: names as lines
>>> from streamal.core.safepickle import loads
>>> loads(new.replace(b"streamal.core.learner", b"streamal.learner"))
<LabelOutcome.EXPIRED: 'expired'>
"""

from __future__ import annotations

__all__ = ["MOVED"]

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
