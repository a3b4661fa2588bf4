"""Does ``drift_aware`` fire on abrupt drift, and does it pay afterwards?

Abrupt drifts at arrival 10,000 of 14,000 (``synth:Agrawal`` function 0 → 4,
``synth:SEA`` variant 0 → 3, with 10 % and with no label noise), logistic regression,
Gaussian naive Bayes and a Hoeffding tree, entropy scores, rate 0.1, no label delay,
seeds 1-5. For each run: the delay from the drift to the first detection (the start
of the boost), detections before the drift (false alarms), and the prequential
accuracy and labels over the 2,000 arrivals after the drift, for the inner manager
(``variable_threshold``) alone, for ``drift_aware`` as it was (ADWIN, boost 500
arrivals, payback 2,000) and as it is now (Page-Hinkley, boost 1,000, payback 4,000).

Usage::

    python benchmarks/drift_response.py [--json out.json] [--seeds 1 2 3 4 5] [--delay 0]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from streamal import ActiveLearner
from streamal.budgets import DriftAware, VariableThreshold
from streamal.core.models import build_model
from streamal.core.registry import make_strategy
from streamal.offline.oracle import SimulatedOracle
from streamal.offline.replay import replay
from streamal.offline.streams import open_source

DRIFT_AT, N, AFTER = 10_000, 14_000, 2_000
STREAMS = {
    "agrawal": f"synth:Agrawal:n={N},drift_at={DRIFT_AT}",
    "sea": f"synth:SEA:n={N},drift_at={DRIFT_AT}",
    "sea_clean": f"synth:SEA:n={N},drift_at={DRIFT_AT},noise=0.0",
}
MODELS = ("logreg", "gnb", "hoeffding")


def _manager(kind: str, rate: float, seed: int) -> Any:
    if kind == "inner":
        return VariableThreshold(rate=rate)
    if kind == "adwin_old":
        return DriftAware(
            "variable_threshold",
            rate=rate,
            boost_length=500,
            payback=2000,
            detector="adwin",
            seed=seed,
        )
    return DriftAware("variable_threshold", rate=rate, seed=seed)


def one(stream: str, model: str, kind: str, seed: int, rate: float, delay: str) -> dict[str, Any]:
    """One replay; accuracy and labels over the 2,000 arrivals after the drift."""
    learner = ActiveLearner(
        build_model(model, seed=seed),
        make_strategy("entropy", seed=seed),
        _manager(kind, rate, seed),
    )
    hits: list[bool] = []
    labels: list[int] = []
    original = learner.process

    def spy(sample: Any) -> Any:
        decision = original(sample)
        hits.append(decision.prediction == sample.y)
        labels.append(int(decision.queried))
        return decision

    learner.process = spy  # type: ignore[method-assign]
    replay(
        open_source(STREAMS[stream], seed=seed), learner, SimulatedOracle(delay, seed=seed), step=N
    )
    window = slice(DRIFT_AT, DRIFT_AT + AFTER)
    out: dict[str, Any] = {
        "accuracy_after": sum(hits[window]) / AFTER,
        "labels_after": sum(labels[window]),
        "labels": sum(labels),
    }
    budget = learner.budget
    if isinstance(budget, DriftAware):
        detections = list(budget.detections)
        late = [d - DRIFT_AT for d in detections if d > DRIFT_AT]
        out["delay"] = late[0] if late else None
        out["false_alarms"] = sum(d <= DRIFT_AT for d in detections)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--delay", default="0")
    args = parser.parse_args()
    rows = []
    for stream in STREAMS:
        for model in MODELS:
            for seed in args.seeds:
                row: dict[str, Any] = {"stream": stream, "model": model, "seed": seed}
                for kind in ("inner", "adwin_old", "drift_aware"):
                    row[kind] = one(stream, model, kind, seed, args.rate, args.delay)
                rows.append(row)
                print(json.dumps(row), flush=True)
    print()
    print(
        "| stream | model | delay to boost (median, max; missed) | false alarms | "
        "acc after: inner | old | new | new − inner | labels after: inner / new |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    gains = []
    for stream in STREAMS:
        for model in MODELS:
            sel = [r for r in rows if r["stream"] == stream and r["model"] == model]
            delays = [r["drift_aware"]["delay"] for r in sel]
            found = [d for d in delays if d is not None and d <= AFTER]
            acc = {
                k: statistics.mean(r[k]["accuracy_after"] for r in sel)
                for k in ("inner", "adwin_old", "drift_aware")
            }
            lab = {
                k: statistics.mean(r[k]["labels_after"] for r in sel)
                for k in ("inner", "drift_aware")
            }
            gain = acc["drift_aware"] - acc["inner"]
            gains.append(gain)
            fa = sum(r["drift_aware"]["false_alarms"] for r in sel)
            print(
                f"| {stream} | {model} | "
                f"{statistics.median(found) if found else '-'}, {max(found) if found else '-'}; "
                f"{len(delays) - len(found)} | {fa} | {acc['inner']:.4f} | "
                f"{acc['adwin_old']:.4f} | {acc['drift_aware']:.4f} | {100 * gain:+.2f} | "
                f"{lab['inner']:.0f} / {lab['drift_aware']:.0f} |"
            )
    print(
        f"\nmean gain over the inner manager: {100 * statistics.mean(gains):+.2f} points; "
        f"ahead on {sum(g > 0 for g in gains)}/{len(gains)} stream x model rows"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
