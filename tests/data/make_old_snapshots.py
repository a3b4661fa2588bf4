"""Writes the snapshot fixtures of ``tests/test_old_snapshots.py`` with an older streamal.

Run it once with the code of the release whose snapshots must keep loading (the
package layout before ``streamal/core``), from a checkout of that release::

    PYTHONPATH=/path/to/old/checkout python tests/data/make_old_snapshots.py tests/data

It writes a snapshot of an :class:`ActiveLearner`, one of a window learner (as the
service saves them, with the open window's samples in ``extra``), an SQLite pending
store, and ``old_snapshots.json``: the decisions the old code made on the arrivals
after each snapshot, which the new code must repeat.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path


def _samples(start: int, stop: int) -> list[object]:
    from streamal.messages import Sample

    rng = random.Random(start)
    return [
        Sample(
            id=str(i), x={"a": rng.gauss(0, 1), "b": rng.gauss(0, 1), "c": "xy"[i % 2]}, ts=float(i)
        )
        for i in range(start, stop)
    ]


def main(folder: str) -> None:
    """Write the fixtures into ``folder``."""
    from streamal.checkpoint import Checkpointer, Snapshot
    from streamal.learner import ActiveLearner
    from streamal.models import build_model
    from streamal.pending import SQLitePendingStore
    from streamal.registry import make_budget, make_strategy

    from streamal.messages import Label
    from streamal.window import WindowLearner

    out = Path(folder)
    expected: dict[str, list[list[object]]] = {}

    def learner(strategy: str, budget: str) -> ActiveLearner:
        return ActiveLearner(
            build_model("logreg", seed=7),
            make_strategy(strategy, seed=7),
            make_budget(budget, rate=0.3, seed=7),
            ttl=40.0,
            audit=0.0,
            seed=7,
        )

    def feed(lrn: object, samples: list[object]) -> list[list[object]]:
        rows = []
        for s in samples:
            d = lrn.process(s)  # type: ignore[attr-defined]
            taken = lrn.take_queries() if hasattr(lrn, "take_queries") else []
            for q in ([d] if d.queried else []) + taken:
                if int(q.sample_id) % 3:
                    lrn.apply(Label(sample_id=q.sample_id, y=int(q.sample_id) % 2 == 0))
            rows.append(
                [d.sample_id, d.queried, d.reason, round(d.score, 12), [q.sample_id for q in taken]]
            )
        return rows

    def save(lrn: object, name: str, offset: int, extra: dict[str, object]) -> None:
        blob = Checkpointer(out / f"tmp-{name}", keep=1)
        path = blob.save(Snapshot(lrn, {("streamal.samples", 0): offset}, [], {}, "abc", extra))
        path.rename(out / f"old-{name}.ckpt")
        (out / f"tmp-{name}").rmdir()

    # Without an audit slice: the new code must decide exactly as the old one did.
    active = ActiveLearner(
        build_model("logreg", seed=7),
        make_strategy("density", seed=7),
        make_budget("capped:inner=variable_threshold,max_pending=50", rate=0.3, seed=7),
        ttl=40.0,
        audit=0.0,
        seed=7,
    )
    feed(active, _samples(0, 200))
    save(active, "active", 200, {})
    expected["active"] = feed(active, _samples(200, 300))

    # With an audit slice: its audits are planned differently now (an audit plan instead
    # of draws that waited for the guards), so only loading and the promise are checked.
    audited = ActiveLearner(
        build_model("logreg", seed=7),
        make_strategy("entropy", seed=7),
        make_budget("variable_threshold", rate=0.3, seed=7),
        ttl=40.0,
        audit=0.2,
        seed=7,
    )
    feed(audited, _samples(0, 200))
    save(audited, "audited", 200, {})

    window = WindowLearner(learner("margin", "random"), "coreset", window=7, seed=7)
    feed(window, _samples(0, 103))  # the open window holds 5 arrivals
    samples = [item[0] for item in window._buffer]
    save(window, "window", 103, {"window": samples})
    expected["window"] = feed(window, _samples(103, 200))

    store = SQLitePendingStore(str(out / "old-pending.sqlite"), max_size=100)
    sql = learner("entropy", "full")
    sql.pending = store
    feed(sql, _samples(0, 10))
    expected["pending"] = [[e.sample_id, e.purpose, e.expires_at] for e in store]
    store.close()
    (out / "old_snapshots.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data")
