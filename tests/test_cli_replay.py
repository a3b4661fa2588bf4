"""The replay, datasets and schema commands, run as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REQUIRED = {
    "source",
    "samples",
    "labels_used",
    "label_rate",
    "accuracy",
    "strategy",
    "budget",
    "rate",
    "seed",
}


def streamal(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamal", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_replay_json_has_every_key_for_every_run(tmp_path: Path) -> None:
    out = streamal(
        "replay",
        "synth:SEA:n=3000",
        "--model",
        "hat",
        "--compare",
        "random,full,margin/random",
        "--json",
        "--report",
        str(tmp_path / "rep"),
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert REQUIRED <= set(data) and data["samples"] == 3000 and data["rate"] == 0.1
    assert [r["name"] for r in data["runs"]] == ["main", "random", "full", "margin/random"]
    for entry in data["runs"]:
        assert REQUIRED <= set(entry)
        assert entry["samples"] == 3000 and entry["seed"] == 42
    assert data["runs"][2]["label_rate"] == 1.0 and data["label_rate"] <= 0.1
    report = tmp_path / "rep"
    assert json.loads((report / "summary.json").read_text())["runs"][0]["name"] == "main"
    lines = (report / "curve.csv").read_text().splitlines()
    assert lines[0].startswith("run,strategy,budget,samples,labels_used,accuracy")
    assert len(lines) == 1 + 4 * 6  # 4 runs × 6 points of 500 samples
    assert (report / "accuracy_vs_labels.png").read_bytes()[:4] == b"\x89PNG"


def test_replay_table_output() -> None:
    out = streamal("replay", "river:Phishing", "--model", "logreg", "--compare", "random")
    assert out.returncode == 0, out.stderr
    assert "river:Phishing" in out.stdout and "random" in out.stdout


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        ("a,b,y\n1,2,x\n3,nan,y\n", [], "row 3, field 'b'"),
        ("a,b,y\n1,2,x\n3,4,\n", [], "row 3, field 'y': missing target"),
        ("a,b,y\n1,2,x\nfoo,4,y\n", [], "row 3, field 'a': expected a number"),
        ("", [], "is empty"),
        ("a,b,y\n1,2,x\n", ["--target", "nope"], "unknown target column 'nope'"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    tmp_path: Path, text: str, args: list[str], message: str
) -> None:
    path = tmp_path / "in.csv"
    path.write_text(text)
    out = streamal("replay", str(path), *args)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_bad_jsonl_and_bad_specs_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "1", "x": {"a": 1}, "y": 1}\n{"id": "2", "x": {"a": [1]}, "y": 1}\n')
    for args, message in [
        ([str(path)], "row 2, field 'x.a'"),
        (["river:Phishing", "--strategy", "nope"], "unknown strategy 'nope'"),
        (["river:Phishing", "--budget", "variable_threshold:oops=1"], "no parameter 'oops'"),
        (["river:Phishing", "--delay", "soon"], "bad delay"),
        (["river:ImageSegments", "--model", "logreg"], "third class"),
    ]:
        out = streamal("replay", *args)
        assert out.returncode == 2 and message in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr


def test_datasets_list_and_export_round_trip(tmp_path: Path) -> None:
    listing = streamal("datasets")
    assert listing.returncode == 0 and "river:Phishing" in listing.stdout
    assert "synth:Agrawal" in listing.stdout
    target = tmp_path / "sea.jsonl"
    out = streamal("datasets", "--export", "synth:SEA:n=300", "--out", str(target))
    assert out.returncode == 0, out.stderr
    assert len(target.read_text().splitlines()) == 300
    again = streamal("replay", str(target), "--model", "hat", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["samples"] == 300


def test_schema_command() -> None:
    out = streamal("schema")
    assert out.returncode == 0 and set(json.loads(out.stdout)) == {"Sample", "Query", "Label"}
    one = streamal("schema", "Label")
    assert json.loads(one.stdout)["title"] == "Label"
    assert streamal("schema", "Nope").returncode == 2


def test_selector_without_window_is_an_error() -> None:
    out = streamal("replay", "river:Phishing", "--selector", "coreset", "--quiet")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: --selector chooses in window mode only; give --window N as well"
    ]


def test_window_mode_names_the_selector_and_unpredicted_arrivals_apart() -> None:
    args = ["replay", "river:Phishing", "--model", "gnb", "--strategy", "entropy"]
    args += ["--window", "100"]
    args += ["--selector", "coreset"]
    out = streamal(*args, "--quiet")
    assert out.returncode == 0, out.stderr
    assert "entropy / coreset (window 100)" in out.stdout
    assert "variable_threshold" not in out.stdout
    data = json.loads(streamal(*args, "--json").stdout)
    # Gaussian naive Bayes predicts nothing before its first label, which in window mode
    # comes when the first window closes: those 100 arrivals are not counted as wrong.
    assert data["selector"] == "coreset" and data["window"] == 100
    assert data["unpredicted"] == 100 and data["runs"][0]["unpredicted"] == 100
