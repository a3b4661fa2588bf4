"""Pending stores: same behaviour in memory and in SQLite; bounded; expiry; pickling."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streamal.core.pending import MemoryPendingStore, PendingEntry, SQLitePendingStore


def entry(i: int, ttl: float = 10.0) -> PendingEntry:
    return PendingEntry(
        str(i),
        {"f": float(i), "c": "x"},
        queried_at=float(i),
        expires_at=float(i) + ttl,
        score=0.5,
        prediction="a",
    )


def stores(tmp_path: Path) -> dict[str, Callable[[int], Any]]:
    return {
        "memory": lambda n: MemoryPendingStore(max_size=n),
        "sqlite": lambda n: SQLitePendingStore(str(tmp_path / "p.sqlite"), max_size=n),
        "sqlite-mem": lambda n: SQLitePendingStore(":memory:", max_size=n),
    }


@pytest.fixture(params=["memory", "sqlite", "sqlite-mem"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[int], Any]:
    return stores(tmp_path)[request.param]


def test_put_pop_contains_len(make: Callable[[int], Any]) -> None:
    store = make(10)
    for i in range(3):
        assert store.put(entry(i)) is None
    assert len(store) == 3 and "1" in store and "9" not in store
    got = store.pop("1")
    assert got.x == {"f": 1.0, "c": "x"} and got.prediction == "a"
    assert store.pop("1") is None and len(store) == 2


def test_bounded_size_evicts_oldest(make: Callable[[int], Any]) -> None:
    store = make(3)
    evicted = [store.put(entry(i)) for i in range(5)]
    assert [e.sample_id for e in evicted if e is not None] == ["0", "1"]
    assert len(store) == 3 and [e.sample_id for e in store] == ["2", "3", "4"]


def test_expiry_in_deadline_order_and_mixed_ttls(make: Callable[[int], Any]) -> None:
    store = make(100)
    store.put(entry(0, ttl=100.0))
    store.put(entry(1, ttl=1.0))
    store.put(entry(2, ttl=1.0))
    assert store.next_deadline() == 2.0
    assert [e.sample_id for e in store.expire(2.5)] == ["1"]
    assert [e.sample_id for e in store.expire(3.0)] == ["2"]
    assert len(store) == 1 and store.expire(50.0) == []


def test_reput_replaces(make: Callable[[int], Any]) -> None:
    store = make(10)
    store.put(entry(1))
    store.put(entry(1, ttl=99.0))
    assert len(store) == 1 and store.pop("1").expires_at == 100.0


def test_pickle_round_trip_keeps_entries(make: Callable[[int], Any]) -> None:
    store = make(10)
    for i in range(4):
        store.put(entry(i))
    copy = pickle.loads(pickle.dumps(store))
    assert [e.sample_id for e in copy] == ["0", "1", "2", "3"]
    assert copy.pop("2").x["f"] == 2.0


def test_sqlite_survives_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "p.sqlite")
    store = SQLitePendingStore(path)
    store.put(entry(7))
    store.close()
    again = SQLitePendingStore(path)
    assert len(again) == 1 and again.pop("7") is not None


def test_memory_store_pickled_with_a_plain_dict_still_evicts_oldest() -> None:
    store = MemoryPendingStore(max_size=2)
    store.put(entry(0))
    store.put(entry(1))
    state = dict(store.__dict__, _entries=dict(store._entries))
    old = MemoryPendingStore.__new__(MemoryPendingStore)
    old.__setstate__(state)
    evicted = old.put(entry(2))
    assert evicted is not None and evicted.sample_id == "0"
    assert [e.sample_id for e in old] == ["1", "2"]
