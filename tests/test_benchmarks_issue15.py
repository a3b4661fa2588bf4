"""Smoke runs of the warm-start and drift-response benchmarks, so that they cannot rot."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import drift_response  # noqa: E402
import warm_start  # noqa: E402


def test_warm_start_benchmark_runs_each_variant() -> None:
    outs = {
        variant: warm_start.one("synth:SEA:n=3000", "logreg", 50, variant, 0.1, 1, 500)
        for variant in warm_start.VARIANTS
    }
    assert outs["warm"]["labels"] == outs["cold"]["labels"] + 50
    assert outs["charged"]["labels"] <= 0.1 * 500  # the seed counts inside the budget
    assert all(0.0 <= o["accuracy"] <= 1.0 for o in outs.values())


def test_drift_response_benchmark_reports_the_delay() -> None:
    out = drift_response.one("agrawal", "logreg", "drift_aware", 1, 0.1, "0")
    assert out["delay"] is not None and 0 < out["delay"] <= 1000
    assert out["false_alarms"] == 0 and out["labels_after"] > 0
