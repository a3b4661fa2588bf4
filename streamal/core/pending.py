"""Pending stores: queried samples waiting for their label.

A store is keyed by sample id, bounded in size, and expires entries whose deadline
(``expires_at``) has passed. Entries come out in query order, so expiry is a scan from
the oldest entry. Two implementations share one interface:
:class:`MemoryPendingStore` (a dict in insertion order) and :class:`SQLitePendingStore`
(a table in an SQLite file, for pending sets that outgrow memory or must outlive the
process between snapshots).
"""

from __future__ import annotations

import heapq
import math
import os
import pickle
import sqlite3
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from streamal.core.safepickle import loads as safe_loads
from streamal.messages import Purpose

__all__ = ["MemoryPendingStore", "PendingEntry", "PendingStore", "SQLitePendingStore"]

_INF = math.inf


@dataclass(slots=True)
class PendingEntry:
    """A queried sample awaiting its label."""

    sample_id: str
    x: dict[str, Any]
    queried_at: float
    expires_at: float
    score: float = 0.0
    prediction: Any = None
    model_version: int = 0
    purpose: Purpose = "learn"
    propensity: float | None = None


class PendingStore(Protocol):
    """What the learner needs from a pending store."""

    max_size: int

    def put(self, entry: PendingEntry) -> PendingEntry | None:
        """Store ``entry``; return the oldest entry if it had to be evicted to make room."""
        ...

    def pop(self, sample_id: str) -> PendingEntry | None:
        """Remove and return the entry for ``sample_id`` (``None`` if absent)."""
        ...

    def expire(self, now: float) -> list[PendingEntry]:
        """Remove and return the entries whose deadline is at or before ``now``."""
        ...

    def next_deadline(self) -> float | None:
        """The deadline of the oldest entry (``None`` when empty)."""
        ...

    def __contains__(self, sample_id: object) -> bool: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[PendingEntry]: ...


def _live(entries: dict[str, PendingEntry], entry: PendingEntry) -> bool:
    """Whether ``entry`` is still in the store (not popped, expired, evicted or replaced)."""
    return entries.get(entry.sample_id) is entry


class MemoryPendingStore:
    """In-memory pending store, bounded to ``max_size`` entries (oldest evicted first).

    Entries live in a dict, and in a deque in query order so that evicting the oldest
    costs ``O(1)`` (entries that left the store are skipped there, and the deque is
    rebuilt when they outnumber the live ones). Deadlines are kept in a heap, so expiry
    and :meth:`next_deadline` cost ``O(log n)`` per entry whatever the mix of TTLs,
    with stale items skipped the same way.

    Examples
    --------
    >>> store = MemoryPendingStore(max_size=2)
    >>> store.put(PendingEntry("a", {}, queried_at=0.0, expires_at=10.0))
    >>> store.put(PendingEntry("b", {}, queried_at=1.0, expires_at=11.0))
    >>> store.put(PendingEntry("c", {}, queried_at=2.0, expires_at=12.0)).sample_id
    'a'
    >>> [e.sample_id for e in store.expire(11.0)]
    ['b']
    >>> store.pop("c").sample_id, len(store)
    ('c', 0)
    """

    def __init__(self, max_size: int = 100_000) -> None:
        self.max_size = max_size
        self._entries: dict[str, PendingEntry] = {}
        # Query order, oldest first; an item is stale once its entry left the store.
        self._order: deque[PendingEntry] = deque()
        # (deadline, sequence, entry), stale the same way.
        self._heap: list[tuple[float, int, PendingEntry]] = []
        self._seq = 0

    def put(self, entry: PendingEntry) -> PendingEntry | None:
        entries, order = self._entries, self._order
        sample_id = entry.sample_id
        if sample_id in entries:
            del entries[sample_id]
        evicted = None
        if len(entries) >= self.max_size:
            while True:
                oldest = order.popleft()
                if _live(entries, oldest):
                    del entries[oldest.sample_id]
                    evicted = oldest
                    break
        entries[sample_id] = entry
        order.append(entry)
        if len(order) > 2 * len(entries) + 64:
            self._order = deque(entries.values())  # a dict keeps insertion (query) order
        if entry.expires_at != _INF:
            seq = self._seq = self._seq + 1
            heapq.heappush(self._heap, (entry.expires_at, seq, entry))
            if len(self._heap) > 2 * len(entries) + 64:
                self._rebuild()
        return evicted

    def __getstate__(self) -> dict[str, Any]:
        # Live items only: the order is the dict's, and stale heap items are dropped.
        state = self.__dict__.copy()
        del state["_order"]
        entries = self._entries
        state["_heap"] = [item for item in self._heap if _live(entries, item[2])]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Snapshots carry no order deque (see __getstate__); some earlier versions kept
        # a heap of ids checked against a dict of live sequence numbers.
        entries = state["_entries"] = dict(state["_entries"])
        state["_order"] = deque(entries.values())
        live = state.pop("_live", None)
        if live is not None:
            state["_heap"] = [
                (deadline, seq, entries[sid])
                for deadline, seq, sid in state["_heap"]
                if live.get(sid) == seq
            ]
            heapq.heapify(state["_heap"])
        self.__dict__.update(state)

    def _rebuild(self) -> None:
        entries = self._entries
        self._heap = [item for item in self._heap if _live(entries, item[2])]
        heapq.heapify(self._heap)

    def pop(self, sample_id: str) -> PendingEntry | None:
        return self._entries.pop(sample_id, None)

    def expire(self, now: float) -> list[PendingEntry]:
        heap, entries = self._heap, self._entries
        out = []
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)[2]
            if _live(entries, entry):
                del entries[entry.sample_id]
                out.append(entry)
        return out

    def next_deadline(self) -> float | None:
        """The earliest deadline in the store (``None`` when none can expire)."""
        heap, entries = self._heap, self._entries
        while heap and not _live(entries, heap[0][2]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def __contains__(self, sample_id: object) -> bool:
        return sample_id in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[PendingEntry]:
        return iter(list(self._entries.values()))

    def __repr__(self) -> str:
        return f"MemoryPendingStore(max_size={self.max_size}, pending={len(self)})"


class SQLitePendingStore:
    """Pending store in an SQLite file, bounded to ``max_size`` entries.

    Pickling a store captures its entries; unpickling writes them back into the file at
    ``path`` (replacing its content), so a snapshot restores the pending set exactly.
    Entries are read back with :mod:`streamal.core.safepickle` (a planted row cannot run
    code), and the file is owner-only (``0600``).

    Parameters
    ----------
    path
        Database file, or ``":memory:"``.
    max_size
        Maximum number of pending entries; the oldest is evicted to make room.

    Examples
    --------
    >>> store = SQLitePendingStore(":memory:", max_size=10)
    >>> store.put(PendingEntry("a", {"f": 1.0}, queried_at=0.0, expires_at=5.0))
    >>> "a" in store, len(store)
    (True, 1)
    >>> store.pop("a").x
    {'f': 1.0}
    """

    def __init__(self, path: str = ":memory:", max_size: int = 100_000) -> None:
        self.path = path
        self.max_size = max_size
        self._open()

    def _open(self) -> None:
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        if self.path != ":memory:":
            # Owner-only; SQLite gives its journal files the database file's mode.
            os.chmod(self.path, 0o600)
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS pending (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
            " sample_id TEXT UNIQUE NOT NULL, expires_at REAL NOT NULL, entry BLOB NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS pending_expiry ON pending (expires_at)")
        self._count = self._db.execute("SELECT COUNT(*) FROM pending").fetchone()[0]

    def put(self, entry: PendingEntry) -> PendingEntry | None:
        self.pop(entry.sample_id)
        evicted = None
        if self._count >= self.max_size:
            row = self._db.execute("SELECT seq, entry FROM pending ORDER BY seq LIMIT 1").fetchone()
            self._db.execute("DELETE FROM pending WHERE seq = ?", (row[0],))
            self._count -= 1
            evicted = safe_loads(row[1])
        self._db.execute(
            "INSERT INTO pending (sample_id, expires_at, entry) VALUES (?, ?, ?)",
            (entry.sample_id, entry.expires_at, pickle.dumps(entry)),
        )
        self._count += 1
        return evicted

    def pop(self, sample_id: str) -> PendingEntry | None:
        row = self._db.execute(
            "DELETE FROM pending WHERE sample_id = ? RETURNING entry", (sample_id,)
        ).fetchone()
        if row is None:
            return None
        self._count -= 1
        entry: PendingEntry = safe_loads(row[0])
        return entry

    def expire(self, now: float) -> list[PendingEntry]:
        rows = self._db.execute(
            "DELETE FROM pending WHERE expires_at <= ? RETURNING seq, entry", (now,)
        ).fetchall()
        self._count -= len(rows)
        return [safe_loads(blob) for _, blob in sorted(rows)]

    def next_deadline(self) -> float | None:
        """The earliest deadline in the store (``None`` when empty)."""
        row = self._db.execute("SELECT MIN(expires_at) FROM pending").fetchone()
        return None if row[0] is None else float(row[0])

    def __contains__(self, sample_id: object) -> bool:
        row = self._db.execute("SELECT 1 FROM pending WHERE sample_id = ?", (sample_id,))
        return row.fetchone() is not None

    def __len__(self) -> int:
        return int(self._count)

    def __iter__(self) -> Iterator[PendingEntry]:
        rows = self._db.execute("SELECT entry FROM pending ORDER BY seq").fetchall()
        return iter([safe_loads(r[0]) for r in rows])

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "max_size": self.max_size, "entries": list(self)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self.max_size = state["max_size"]
        self._open()
        self._db.execute("DELETE FROM pending")
        self._count = 0
        for entry in state["entries"]:
            self.put(entry)

    def __repr__(self) -> str:
        return f"SQLitePendingStore({self.path!r}, max_size={self.max_size}, pending={len(self)})"
