"""Export the trained river model of a checkpoint, for use in a plain river program.

``streamal export-model CHECKPOINT_DIR OUT`` reads the newest snapshot of a service (or
the snapshot file given), verifies its checksum, takes the learner's model and writes it
to ``OUT`` as a pickle of that river model alone: no strategy, budget manager, pending
queries or offsets. A JSON file ``OUT.json`` beside it says what it holds:

* ``sha256``: the checksum of ``OUT``, to verify before loading it;
* ``model``: the model's class and its river ``repr``; ``model_version``: labels learned;
* ``needs``: the top-level packages the pickle refers to (``river``, and ``streamal``
  for the models of the ``logreg``, ``softmax``, ``ovr`` and ``gnb`` specs, which put
  streamal's :class:`~streamal.core.models.MixedScaler` in front of the river model); the
  tree models (``arf``, the default, ``hoeffding``, ``hat``, ``bagging``, ``srp``) load
  with river alone;
* the versions of Python, river and streamal that wrote it, and the snapshot it came from.

Load it with ``pickle.load`` in a program that has those packages (river's models are
Python objects, and pickling is how river itself persists them). **A pickle runs code
when it is loaded: load only files that you exported yourself or otherwise trust**, and
check the ``sha256`` when the file travelled. Use the same river version if you can.

Reading the snapshot never touches the service's state: the SQLite pending store it may
hold is restored as an inert stand-in, so its database file is not opened.

Examples
--------
>>> import pickle, tempfile
>>> from pathlib import Path
>>> from streamal.core.checkpoint import Checkpointer, Snapshot
>>> from streamal.offline.replay import build_learner
>>> learner = build_learner("hoeffding", "entropy", "full", 1.0, seed=0)
>>> for i in range(50):
...     learner.model.learn_one({"a": float(i)}, i >= 25)
>>> folder = Path(tempfile.mkdtemp())
>>> _ = Checkpointer(folder / "state").save(Snapshot(learner=learner))
>>> info = export_model(folder / "state", folder / "model.pkl")
>>> info["needs"], info["model"]["class"]
(['river'], 'river.tree.hoeffding_tree_classifier.HoeffdingTreeClassifier')
>>> with open(folder / "model.pkl", "rb") as fh:  # a file we exported ourselves
...     model = pickle.load(fh)
>>> model.predict_one({"a": 40.0})
True
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import platform
import sys
from pathlib import Path
from typing import Any

from streamal.core.checkpoint import Checkpointer, Snapshot
from streamal.core.safepickle import RestrictedUnpickler
from streamal.exceptions import CheckpointError

__all__ = ["export_model", "newest_snapshot"]


class _InertStore:
    """Stands in for a pickled SQLite pending store: keeps its state, opens nothing."""

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _SafeUnpickler(RestrictedUnpickler):
    """Restores a snapshot without reopening (and rewriting) the pending store's database."""

    def find_class(self, module: str, name: str) -> Any:
        if name == "SQLitePendingStore" and module.startswith("streamal"):
            return _InertStore
        return super().find_class(module, name)


class _Recorder(pickle.Pickler):
    """A pickler that notes the modules of every object and class it writes."""

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=pickle.DEFAULT_PROTOCOL)
        self.modules: set[str] = set()

    def persistent_id(self, obj: Any) -> None:
        module = obj.__module__ if isinstance(obj, type) else type(obj).__module__
        if isinstance(module, str):
            self.modules.add(module.partition(".")[0])
        return None


def newest_snapshot(source: str | os.PathLike[str]) -> Path:
    """The snapshot file to export: ``source`` itself, or the newest in that directory."""
    path = Path(source)
    if path.is_file():
        return path
    if not path.is_dir():
        raise CheckpointError(f"no checkpoint directory or snapshot file {path}")
    found = []
    for candidate in path.glob("snapshot-*.ckpt"):
        digits = candidate.name[len("snapshot-") : -len(".ckpt")]
        if digits.isdigit():
            found.append((int(digits), candidate))
    if not found:
        raise CheckpointError(f"{path} holds no snapshot (snapshot-*.ckpt)")
    return max(found)[1]


def export_model(source: str | os.PathLike[str], out: str | os.PathLike[str]) -> dict[str, Any]:
    """Write the model of ``source``'s newest snapshot to ``out``; return what ``OUT.json`` says.

    Raises
    ------
    CheckpointError
        If there is no snapshot, it is corrupt or incompatible, or it holds no model.
    """
    path = newest_snapshot(source)
    snapshot: Snapshot = Checkpointer.read(path, unpickler=_SafeUnpickler)
    learner = snapshot.learner
    model = getattr(learner, "model", None)
    if model is None or not hasattr(model, "predict_proba_one"):
        raise CheckpointError(f"snapshot {path} holds no river model to export")
    buffer = io.BytesIO()
    recorder = _Recorder(buffer)
    recorder.dump(model)
    payload = buffer.getvalue()
    import river

    from streamal import __version__

    kind = type(model)
    info: dict[str, Any] = {
        "format": f"pickle protocol {pickle.DEFAULT_PROTOCOL} of a river model",
        "sha256": hashlib.sha256(payload).hexdigest(),
        "bytes": len(payload),
        "model": {"class": f"{kind.__module__}.{kind.__qualname__}", "repr": repr(model)},
        "model_version": getattr(learner, "model_version", None),
        "needs": sorted(
            m for m in recorder.modules if m not in sys.stdlib_module_names and m != "builtins"
        ),
        "written_by": {
            "python": platform.python_version(),
            "river": river.__version__,
            "streamal": __version__,
        },
        "snapshot": {"path": str(path), "sequence": snapshot.sequence},
    }
    target = Path(out)
    _write_atomic(target, payload)
    _write_atomic(
        target.with_name(target.name + ".json"), (json.dumps(info, indent=2) + "\n").encode()
    )
    return info


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"cannot write {path}: {err}") from err
