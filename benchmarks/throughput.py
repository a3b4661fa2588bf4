"""Speed and memory: the active-learning machinery against the bare river loop.

Three parts, each a ratio measured in one run (the loops alternate, round after round,
on the same in-memory data, so that load from other processes hits both alike):

``core``     samples/s of ``ActiveLearner.process`` + ``learn`` against a bare loop of the
             same model's ``predict_proba_one`` + ``learn_one`` (Elec2, or SEA without it):

             * *every sample*: the learner with the default strategy (entropy) and the
               ``full`` budget queries and learns every arrival; the bare loop predicts
               and learns every arrival. Same model updates: the ratio is the cost of
               the machinery (score, decide, pending store, label bookkeeping).
             * *default, same updates*: the default configuration (entropy, variable
               threshold, rate 0.1) learns the ~10 % it queries; the bare loop predicts
               every arrival and learns the very same samples.
             * *default vs learning everything*: the default configuration against the
               bare loop that learns every arrival (what a user labelling everything pays).
             * *floor* and *records, every sample*: references for the first ratio.
               The floor loop does the least a pluggable learner does (the model,
               ``score``, ``decide``, a dict of pending features); the records loop
               adds the records the API keeps (a ``Decision`` per arrival, a
               ``PendingEntry`` in a ``MemoryPendingStore`` per query). Neither has
               expiry, duplicate handling, counters or accuracy estimates.

             Labels are built before the timed loops (the bare loop reads ``y`` from the
             sample too); building a ``Label`` is reported on its own.
``service``  end-to-end samples/s through a real broker (tansu) against a bare
             kafka-python consume + ``json.loads`` + predict loop on the same topic, and
             latency from a sample's append to its decision (see ``throughput_service.py``).
``memory``   resident memory and time per sample every 50,000 samples of a
             1,000,000-sample replay (logistic regression, default strategy and budget,
             labels after 0-2,000 samples, queries expire after 1,000): growth of both after
             warm-up, and the largest pending store.

Usage::

    python benchmarks/throughput.py [core] [service] [memory] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ELEC, machine, materialize  # noqa: E402

from streamal.core.learner import Decision  # noqa: E402
from streamal.core.models import build_model  # noqa: E402
from streamal.core.pending import MemoryPendingStore, PendingEntry  # noqa: E402
from streamal.core.registry import make_budget, make_strategy  # noqa: E402
from streamal.defaults import DEFAULT_BUDGET, DEFAULT_STRATEGY  # noqa: E402
from streamal.messages import Label, Sample  # noqa: E402
from streamal.offline.replay import build_learner  # noqa: E402

SEED = 1


def core_data(n: int) -> tuple[str, list[Sample]]:
    """The first ``n`` samples of Elec2 (or of SEA when the file is absent)."""
    if ELEC.is_file():
        return "Elec2", materialize(str(ELEC), SEED, n)
    return "SEA", materialize(f"synth:SEA:n={n}", SEED, n)


def _bare(model_spec: str, data: list[Sample], learn: set[str] | None) -> Callable[[], float]:
    def loop() -> float:
        model = build_model(model_spec, SEED)
        predict, learn_one = model.predict_proba_one, model.learn_one
        start = time.perf_counter()
        for s in data:
            predict(s.x)
            if learn is None or s.id in learn:
                learn_one(s.x, s.y)
        return time.perf_counter() - start

    return loop


def _active(
    model_spec: str, budget: str, rate: float, data: list[Sample], labels: list[Label]
) -> Callable[[], float]:
    def loop() -> float:
        learner = build_learner(model_spec, DEFAULT_STRATEGY, budget, rate, SEED)
        process, learn = learner.process, learner.learn
        start = time.perf_counter()
        for sample, label in zip(data, labels, strict=True):
            if process(sample).queried:
                learn(label)
        return time.perf_counter() - start

    return loop


def _floor(
    model_spec: str, data: list[Sample], labels: list[Label], records: bool
) -> Callable[[], float]:
    """The least any pluggable learner does per sample, as a reference for ``al_full``.

    The model's two calls, the strategy's ``score``, the manager's ``decide`` (the
    ``full`` budget, guards included) and a dict of pending features. With ``records``,
    also the two records the API keeps: a :class:`~streamal.core.learner.Decision` per
    arrival (built as the learner builds it) and a
    :class:`~streamal.core.pending.PendingEntry` in a
    :class:`~streamal.core.pending.MemoryPendingStore` per query. Neither loop has TTL,
    duplicate or eviction handling, counters or accuracy estimates.
    """

    def loop() -> float:
        model = build_model(model_spec, SEED)
        predict, learn_one = model.predict_proba_one, model.learn_one
        score = make_strategy(DEFAULT_STRATEGY, seed=SEED).score
        decide = make_budget("full", rate=1.0, seed=SEED).decide
        pending: dict[str, dict[str, Any]] = {}
        store = MemoryPendingStore()
        new, inf = tuple.__new__, float("inf")
        start = time.perf_counter()
        if not records:
            for sample, label in zip(data, labels, strict=True):
                x = sample.x
                if decide(score(x, predict(x), model)):
                    pending[sample.id] = x
                    learn_one(pending.pop(label.sample_id), label.y)
            return time.perf_counter() - start
        for seen, (sample, label) in enumerate(zip(data, labels, strict=True)):
            x, sid = sample.x, sample.id
            proba = predict(x)
            s = score(x, proba, model)
            if decide(s):
                store.put(PendingEntry(sid, x, seen, inf, s, None, seen, "learn", 1.0))
            new(Decision, (sid, proba, None, s, True, "query", seen, 1.0, None, "learn"))
            learn_one(store.pop(label.sample_id).x, label.y)  # type: ignore[union-attr]
        return time.perf_counter() - start

    return loop


def queried_ids(model_spec: str, data: list[Sample], labels: list[Label]) -> set[str]:
    """Ids the default configuration queries on ``data`` (it is deterministic)."""
    learner = build_learner(model_spec, DEFAULT_STRATEGY, DEFAULT_BUDGET, 0.1, SEED)
    out = set()
    for sample, label in zip(data, labels, strict=True):
        if learner.process(sample).queried:
            learner.learn(label)
            out.add(sample.id)
    return out


def interleaved(loops: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Run every loop once per round, in turn; seconds per loop and round."""
    times: dict[str, list[float]] = {k: [] for k in loops}
    for _ in range(rounds):
        for name, loop in loops.items():
            times[name].append(loop())
    return times


def core(n: int, rounds: int, models: tuple[str, ...]) -> dict[str, Any]:
    """The three core ratios per model (median over rounds of the per-round ratio)."""
    stream, data = core_data(n)
    labels = [Label(sample_id=s.id, y=s.y) for s in data]
    start = time.perf_counter()
    for s in data:
        Label(sample_id=s.id, y=s.y)
    label_us = 1e6 * (time.perf_counter() - start) / len(data)
    out: dict[str, Any] = {
        "stream": stream,
        "samples": len(data),
        "rounds": rounds,
        "label_us": label_us,
        "models": {},
    }
    for spec in models:
        sub = data if spec != "arf" else data[: max(1, len(data) // 5)]
        sub_labels = labels[: len(sub)]
        chosen = queried_ids(spec, sub, sub_labels)
        loops = {
            "bare_all": _bare(spec, sub, None),
            "al_full": _active(spec, "full", 1.0, sub, sub_labels),
            "floor_full": _floor(spec, sub, sub_labels, records=False),
            "records_full": _floor(spec, sub, sub_labels, records=True),
            "bare_same": _bare(spec, sub, chosen),
            "al_default": _active(spec, DEFAULT_BUDGET, 0.1, sub, sub_labels),
        }
        t = interleaved(loops, rounds)

        def ratio(bare: str, al: str, t: dict[str, list[float]] = t) -> float:
            return statistics.median(b / a for b, a in zip(t[bare], t[al], strict=True))

        out["models"][spec] = {
            "samples": len(sub),
            "queried": len(chosen),
            "us": {k: 1e6 * statistics.median(v) / len(sub) for k, v in t.items()},
            "ratio_every_sample": ratio("bare_all", "al_full"),
            "ratio_floor_every_sample": ratio("bare_all", "floor_full"),
            "ratio_records_every_sample": ratio("bare_all", "records_full"),
            "ratio_default_same_updates": ratio("bare_same", "al_default"),
            "ratio_default_vs_learn_all": ratio("bare_all", "al_default"),
        }
        print(f"core {spec}: {json.dumps(out['models'][spec])}", file=sys.stderr)
    return out


def rss_bytes() -> int:
    """Resident set size of this process (Linux ``/proc/self/statm``)."""
    import os

    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def memory(n: int, every: int = 50_000, warmup: int = 200_000) -> dict[str, Any]:
    """RSS along a long replay; growth after ``warmup`` samples, largest pending store."""
    import gc

    from streamal.offline.oracle import SimulatedOracle
    from streamal.offline.replay import iter_replay
    from streamal.offline.streams import open_source

    learner = build_learner("logreg", DEFAULT_STRATEGY, DEFAULT_BUDGET, 0.1, SEED, ttl=1000)
    oracle = SimulatedOracle("uniform:0:2000", seed=SEED)
    source = open_source(f"synth:Agrawal:n={n}", seed=SEED)
    points, max_pending = [], 0
    start = chunk_start = time.perf_counter()
    for progress in iter_replay(source, learner, oracle, step=every // 10):
        max_pending = max(max_pending, len(learner.pending))
        if progress.samples % every == 0:
            chunk_us = 1e6 * (time.perf_counter() - chunk_start) / every
            gc.collect()
            points.append(
                {
                    "samples": progress.samples,
                    "rss_mib": rss_bytes() / 2**20,
                    "pending": len(learner.pending),
                    "oracle_queue": len(oracle),
                    "us_per_sample": chunk_us,
                }
            )
            chunk_start = time.perf_counter()
    after = [p for p in points if p["samples"] >= min(warmup, n)]
    base = after[0]["rss_mib"]
    later = [p["rss_mib"] for p in after]
    return {
        "samples": n,
        "seconds": time.perf_counter() - start,
        "warmup": warmup,
        "rss_at_warmup_mib": base,
        "rss_max_after_warmup_mib": max(later),
        "growth_after_warmup": max(later) / base - 1.0,
        # time per sample must stay flat too (no structure that slows as it fills)
        "slowdown_after_warmup": max(p["us_per_sample"] for p in after) / after[0]["us_per_sample"]
        - 1.0,
        "max_pending": max_pending,
        "stats": {
            "queried": learner.stats.queried,
            "applied": learner.stats.applied,
            "expired": learner.stats.expired,
        },
        "points": points,
    }


def plot_memory(result: dict[str, Any], path: Path) -> None:
    """Resident memory and pending queries along the replay."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = result["points"]
    xs = [p["samples"] for p in pts]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot(xs, [p["rss_mib"] for p in pts], marker="o", ms=3, label="resident memory (MiB)")
    ax.axvline(result["warmup"], color="grey", ls=":", lw=1, label="end of warm-up")
    ax.set_xlabel("samples replayed")
    ax.set_ylabel("MiB")
    ax.set_ylim(0, max(p["rss_mib"] for p in pts) * 1.2)
    twin = ax.twinx()
    twin.plot(xs, [p["pending"] for p in pts], color="C1", lw=1, label="pending queries")
    twin.set_ylabel("pending queries")
    twin.set_ylim(0, max(1, max(p["pending"] for p in pts)) * 2)
    handles = [h for a in (ax, twin) for h in a.get_legend_handles_labels()[0]]
    ax.legend(handles, [str(h.get_label()) for h in handles], loc="lower left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", help="core, service, memory (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--n", type=int, help="core samples (default 20,000)")
    parser.add_argument("--rounds", type=int, help="alternating rounds (default 7)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--plot", type=Path, help="write the memory plot (PNG) here")
    args = parser.parse_args(argv)
    args.parts = args.parts or ["core", "service", "memory"]
    unknown = set(args.parts) - {"core", "service", "memory"}
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose core, service, memory")
    quick = args.quick
    results: dict[str, Any] = {"machine": machine()}
    if "core" in args.parts:
        models = ("logreg",) if quick else ("logreg", "hoeffding", "arf")
        results["core"] = core(
            args.n or (500 if quick else 20_000), args.rounds or (2 if quick else 7), models
        )
    if "service" in args.parts:
        from throughput_service import service

        results["service"] = service(
            n=300 if quick else 40_000,
            rounds=1 if quick else 5,
            latency_n=200 if quick else 5000,
            latency_rate=500.0 if quick else 1000.0,
        )
        # The service tuned this process's garbage collector (streamal.service.loop.tune_gc):
        # give the parts after it Python's defaults back.
        import gc

        gc.unfreeze()
        gc.set_threshold(700, 10, 10)
    if "memory" in args.parts:
        n = 10_000 if quick else 1_000_000
        results["memory"] = memory(n, every=n // 20, warmup=n // 5)
        if args.plot:
            plot_memory(results["memory"], args.plot)
    results["machine"]["load_after"] = machine()["load"]
    text = json.dumps(results, indent=1)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
