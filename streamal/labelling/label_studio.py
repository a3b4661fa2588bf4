"""The Label Studio bridge: queries become tasks, annotations come back as labels.

:class:`LabelStudioBridge` turns each query into a Label Studio task (the data: the
sample id, an ``item`` text made of ``meta`` and the features, and both as they are)
with the model's prediction as a pre-annotation carrying its score, and publishes each
annotation as a label on the labels topic. Annotations arrive by webhook
(``ANNOTATION_CREATED``/``ANNOTATION_UPDATED``, :meth:`LabelStudioBridge.webhook`) or
by polling the project (:meth:`LabelStudioBridge.poll`); both may be on, since
publishing is idempotent.

Durable state lives in a small SQLite file (:class:`BridgeState`, no pickle): which
query became which task (with the classes it offered), and which annotation versions
were published. So a restarted bridge creates no task twice, and a retried webhook or a
poll that sees an annotation again publishes nothing. A label is published *before* its
annotation is marked, so a crash in between publishes it again on restart, and the
learner counts the copy as a duplicate.

An **updated annotation** whose choice changed is published as a new label for the
same sample. The learner already learned the first answer and online models cannot
unlearn, so the service counts the update as a duplicate: the model keeps the first
answer, and the labels topic keeps both (the later one wins for any retraining from
the topic). ``docs/labelling.md`` says the same.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streamal.exceptions import ConfigError, TransportError
from streamal.labelling.label_studio_api import (
    FROM_NAME,
    LabelStudioClient,
    choice_name,
    choices_result,
    label_config,
)
from streamal.messages import Label, Query, encode
from streamal.transports.base import Sink

__all__ = ["BridgeState", "LabelStudioBridge", "item_text"]

log = logging.getLogger("streamal.bridge")

#: Seconds to wait for the broker to take a published label.
FLUSH_TIMEOUT = 10.0
#: Most characters of the ``item`` text shown in a task (the rest is in ``meta``/``x``).
MAX_ITEM_CHARS = 4000


def item_text(query: Query) -> str:
    """What an annotator reads in Label Studio: ``meta`` then the features, one per line.

    Examples
    --------
    >>> q = Query(sample_id="1", x={"amount": 12.5}, meta={"subject": "Hi"}, score=1.0,
    ...           strategy="Entropy", model_version=0)
    >>> print(item_text(q))
    subject: Hi
    <BLANKLINE>
    amount: 12.5
    """
    meta = [f"{k}: {v}" for k, v in (query.meta or {}).items()]
    features = [f"{k}: {v}" for k, v in query.x.items()]
    text = "\n".join(meta + ([""] if meta else []) + features)
    return text[:MAX_ITEM_CHARS]


class BridgeState:
    """The bridge's durable memory in SQLite: tasks made and annotations published.

    Examples
    --------
    >>> state = BridgeState(":memory:")
    >>> state.add_task("s1", 7, ["spam", "ham"]); state.task_of("s1"), state.sample_of(7)
    (7, ('s1', ['spam', 'ham']))
    >>> state.publish_once(3, "v1"), state.publish_once(3, "v1")
    (True, False)
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS tasks (sample_id TEXT PRIMARY KEY, "
                "task_id INTEGER UNIQUE NOT NULL, classes TEXT NOT NULL)"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS published (annotation_id INTEGER NOT NULL, "
                "version TEXT NOT NULL, PRIMARY KEY (annotation_id, version))"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )

    def task_of(self, sample_id: str) -> int | None:
        with self._lock:
            row = self._db.execute(
                "SELECT task_id FROM tasks WHERE sample_id = ?", (sample_id,)
            ).fetchone()
        return None if row is None else int(row[0])

    def sample_of(self, task_id: int) -> tuple[str, list[Any]] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT sample_id, classes FROM tasks WHERE task_id = ?", (task_id,)
            ).fetchone()
        return None if row is None else (str(row[0]), json.loads(row[1]))

    def add_task(self, sample_id: str, task_id: int, classes: Sequence[Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO tasks VALUES (?, ?, ?)",
                (sample_id, task_id, json.dumps(list(classes))),
            )

    def publish_once(self, annotation_id: int, version: str) -> bool:
        """Mark an annotation version published; ``False`` if it was already."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO published VALUES (?, ?)", (annotation_id, version)
            )
        return cursor.rowcount == 1

    def published(self, annotation_id: int, version: str) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM published WHERE annotation_id = ? AND version = ?",
                (annotation_id, version),
            ).fetchone()
        return row is not None

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, value))

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM tasks").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


class LabelStudioBridge:
    """Moves queries into a Label Studio project and its annotations onto the labels topic.

    Parameters
    ----------
    client
        The Label Studio API client.
    project
        The project's id.
    state
        Durable state (:class:`BridgeState`).
    sink, labels_topic
        Where labels go.
    classes
        The classes to offer (``learner.classes``); ``None``: the first query's.
    configure
        Set the project's labelling config to :func:`label_config` of the classes (once
        per state file); ``False`` leaves a config you wrote yourself (it must have a
        ``Choices`` named ``label`` on a ``Text`` named ``item``).
    """

    def __init__(
        self,
        client: LabelStudioClient,
        project: int,
        state: BridgeState,
        sink: Sink,
        labels_topic: str,
        classes: Sequence[Any] | None = None,
        configure: bool = True,
    ) -> None:
        self.client = client
        self.project = project
        self.state = state
        self.sink = sink
        self.labels_topic = labels_topic
        self.classes = None if classes is None else list(classes)
        self.configure = configure
        self.published = 0
        self._lock = threading.Lock()

    # -- queries -> tasks ----------------------------------------------------------
    def add_query(self, query: Query) -> int:
        """The task for ``query``, created (with its pre-annotation) unless it exists."""
        known = self.state.task_of(query.sample_id)
        if known is not None:
            return known
        classes = self.classes or query.classes
        if not classes:
            raise ConfigError(
                "the classes are unknown: set learner.classes (or --classes) so that "
                "Label Studio can offer them"
            )
        self._configure(classes)
        data = {
            "sample_id": query.sample_id,
            "item": item_text(query),
            "meta": query.meta or {},
            "x": query.x,
            "model_version": query.model_version,
        }
        task = self.client.create_task(self.project, data)
        if query.prediction is not None and any(
            choice_name(c) == choice_name(query.prediction) for c in classes
        ):
            score = query.proba.get(str(query.prediction), 0.0)
            version = f"streamal-v{query.model_version}"
            self.client.create_prediction(task, choices_result(query.prediction), score, version)
        self.state.add_task(query.sample_id, task, classes)
        return task

    def _configure(self, classes: Sequence[Any]) -> None:
        if not self.configure:
            return
        key = f"config:{self.project}"
        wanted = label_config(classes)
        if self.state.get(key) != wanted:
            self.client.set_label_config(self.project, wanted)
            self.state.put(key, wanted)

    # -- annotations -> labels -----------------------------------------------------
    def on_annotation(self, annotation: dict[str, Any], task_id: int | None = None) -> bool:
        """Publish ``annotation`` as a label unless done before; ``True`` if published."""
        task_id = task_id if task_id is not None else annotation.get("task")
        if not isinstance(task_id, int) or annotation.get("was_cancelled"):
            return False
        known = self.state.sample_of(task_id)
        if known is None:
            return False  # a task this bridge did not make
        sample_id, classes = known
        choice = _choice(annotation.get("result") or [])
        if choice is None:
            return False
        typed = [c for c in classes if choice_name(c) == choice]
        if not typed:
            log.warning("annotation %s: %r is not a class of the query", annotation["id"], choice)
            return False
        version = hashlib.sha256(choice.encode()).hexdigest()[:16]
        with self._lock:
            if self.state.published(int(annotation["id"]), version):
                return False
            who = annotation.get("completed_by")
            if isinstance(who, dict):
                who = who.get("email") or who.get("id")
            label = Label(sample_id=sample_id, y=typed[0], annotator=f"label-studio:{who}")
            self.sink.send(self.labels_topic, encode(label), sample_id.encode())
            if not self.sink.flush(FLUSH_TIMEOUT):
                raise TransportError(f"label for {sample_id!r} not delivered in time")
            self.state.publish_once(int(annotation["id"]), version)
            self.published += 1
        return True

    def webhook(self, body: bytes) -> int:
        """Handle one webhook delivery; the HTTP status to answer."""
        try:
            payload = json.loads(body)
        except ValueError:
            return 400
        if not isinstance(payload, dict):
            return 400
        if payload.get("action") not in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED"):
            return 200  # other actions are not ours; say so politely
        annotation, task = payload.get("annotation"), payload.get("task")
        if not isinstance(annotation, dict):
            return 400
        task_id = task.get("id") if isinstance(task, dict) else None
        try:
            self.on_annotation(annotation, task_id if isinstance(task_id, int) else None)
        except TransportError:
            return 503  # polling picks it up later
        return 200

    def poll(self) -> int:
        """Publish every annotation of the project not published yet; return how many."""
        count = 0
        for task in self.client.tasks(self.project):
            for annotation in task.get("annotations") or []:
                count += self.on_annotation(annotation, int(task["id"]))
        return count


def _choice(result: list[dict[str, Any]]) -> str | None:
    for item in result:
        if item.get("from_name") == FROM_NAME and item.get("type") == "choices":
            chosen = (item.get("value") or {}).get("choices") or []
            if chosen:
                return str(chosen[0])
    return None
