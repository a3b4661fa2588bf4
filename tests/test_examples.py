"""Smoke tests of the walkthrough scripts: each runs with --fast and its numbers are sane.

Each script writes ``summary.json`` (the numbers it printed) and its plot into ``--out``;
the checks below hold for any seed, and each also checks that the printed table shows
the summary's numbers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(script: str, out: Path, *args: str, stdin: str | None = None) -> tuple[str, Any]:
    """Run ``examples/SCRIPT --fast --out OUT``; return its stdout and summary."""
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--fast", "--out", str(out), *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=600,
        cwd=out,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    return proc.stdout, summary


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000, path


def shown(stdout: str, value: float) -> bool:
    return f"{value:.3f}" in stdout


def test_walkthrough_1_tiny_pool(tmp_path: Path) -> None:
    stdout, s = run("walkthrough_1_tiny_pool.py", tmp_path)
    assert_png(tmp_path / "walkthrough_1.png")
    runs = s["runs"]
    # one initial model for all: the same 5 labels, the same forest seed
    assert len({r["history"][0] for r in runs.values()}) == 1
    assert len(runs["pool uncertainty"]["history"]) == 6
    stream = runs["stream uncertainty"]
    assert len(stream["history"]) - 1 == len(stream["queried_at"]) <= 5
    assert stream["queried_at"] == sorted(stream["queried_at"])
    assert all(1 <= t <= 95 for t in stream["queried_at"])
    for name, acc in s["mean_final_accuracy"].items():
        assert 0.6 <= acc <= 1.0, name
        assert shown(stdout, acc), name
    assert s["mean_labels"]["pool uncertainty"] == 10
    assert 5 <= s["mean_labels"]["stream uncertainty"] <= 10


def test_walkthrough_2_warm_start(tmp_path: Path) -> None:
    stdout, s = run("walkthrough_2_warm_start.py", tmp_path)
    assert_png(tmp_path / "walkthrough_2.png")
    history = s["history"]
    # the adapter warm-started on the 90 labels is the plain scikit-learn model
    assert len({h[0] for h in history.values()}) == 1
    assert all(len(h) == 21 for name, h in history.items() if name.startswith("pool"))
    assert all(len(h) <= 21 for h in history.values())
    for name, queries in s["mean_queries"].items():
        assert queries <= 20, name
    for name, acc in s["mean_final_accuracy"].items():
        assert 0.6 <= acc <= 1.0, name
        assert shown(stdout, acc), name


@pytest.mark.slow
def test_walkthrough_3_batches(tmp_path: Path) -> None:
    stdout, s = run("walkthrough_3_batches.py", tmp_path)
    assert_png(tmp_path / "walkthrough_3.png")
    pool = int(s["samples"] * 0.8)
    for name, row in s["table"].items():
        curve = s["curves"][name]
        labels = [n for n, _ in curve]
        assert labels == sorted(labels) and labels[0] == 2, name
        assert all(0.0 <= f1 <= 1.0 for _, f1 in curve), name
        if name.startswith("pool"):  # until the pool is exhausted, 4 at a time
            assert labels[-1] == pool and all(b - a == 4 for a, b in pairwise(labels[:-1]))
        else:  # 4 of every window of 16
            assert labels[-1] <= 2 + pool // 4 and all(b - a == 4 for a, b in pairwise(labels))
        assert shown(stdout, row["final_f1"]), name
    assert s["table"]["pool margin"]["final_f1"] > 0.7
    for name, f1 in s["mean_f1_at_stream_end"].items():
        assert 0.5 <= f1 <= 1.0 and shown(stdout, f1), name


@pytest.mark.slow
def test_walkthrough_4_batch_bald(tmp_path: Path) -> None:
    stdout, s = run("walkthrough_4_batch_bald.py", tmp_path)
    assert_png(tmp_path / "walkthrough_4.png")
    assert_png(tmp_path / "walkthrough_4_accuracy.png")
    # the figure's exact gains pick the batch that streamal's selector picked
    assert sorted(s["greedy_order"]) == s["picked"] and len(set(s["picked"])) == 4
    assert "same set: True" in stdout
    for name, history in s["history"].items():
        assert len(history) == 5 and all(0.0 <= a <= 1.0 for a in history), name
        assert shown(stdout, history[-1]), name
    assert max(h[-1] for h in s["history"].values()) > 0.7


def test_walkthrough_5_strategy_tour(tmp_path: Path) -> None:
    stdout, s = run("walkthrough_5_strategy_tour.py", tmp_path)
    assert_png(tmp_path / "walkthrough_5.png")
    n = s["samples"]
    runs = {(r["model"], r["strategy"]): r for r in s["runs"]}
    assert len(runs) == 14
    for (model, name), r in runs.items():
        if name == "full":
            assert r["labels"] == n
        else:  # the budget is a promise
            assert 0 < r["labels"] <= s["rate"] * n, (model, name)
        assert 0.5 <= r["accuracy"] <= 1.0, (model, name)
        assert shown(stdout, r["accuracy"]), (model, name)
    for model in ("arf", "logreg"):
        assert runs[model, "full"]["accuracy"] > runs[model, "random"]["accuracy"]


@pytest.mark.kafka
@pytest.mark.slow
def test_walkthrough_6_human_in_the_loop(tmp_path: Path, kafka_broker: Any) -> None:
    answers = "banana\napple\n" * 20  # a person typing; more answers than queries
    stdout, s = run(
        "walkthrough_6_human_in_the_loop.py",
        tmp_path,
        "--bootstrap-servers",
        kafka_broker.bootstrap,
        stdin=answers,
    )
    assert_png(tmp_path / "walkthrough_6.png")
    assert s["answers"] == "piped stdin"
    after = s["after"]
    assert after["samples decided"] == s["samples"] == s["predictions"]
    # every typed answer reached the service and was learned
    assert 1 <= s["labels_sent"] == after["labels applied"] == after["model version"]
    assert after["queries issued"] >= s["labels_sent"]
    assert after["queries issued"] <= 0.25 * s["samples"]
    assert f"{s['labels_sent']} labels sent" in stdout
    # the annotator showed each query and read the typed label
    shown_queries = (tmp_path / "annotator.txt").read_text().count("· model v")
    assert shown_queries == s["labels_sent"]
