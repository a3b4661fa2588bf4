"""Bad input to ``streamal replay`` and the examples: one line and exit 2 (item 8)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamal.cli.app import app

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _one_line_error(args: list[str], needle: str) -> None:
    result = runner.invoke(app, ["replay", *args])
    assert result.exit_code == 2, (result.exit_code, result.output[-2000:])
    assert "Traceback" not in result.output
    assert result.output.startswith("error: ") and needle in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"a,b,y\n1,2,yes\n\xff\xfe\x80,\x01,no\n", "not UTF-8 text"),
        ("a,b,y\n1,2,yes\n3,4,no\n".encode("utf-16"), "not UTF-8 text"),
        (b"a,b,y\n1,2,yes\n" + "3,4,né\n".encode("latin-1"), "not UTF-8 text"),
        (b"a,b,y\n1,2,yes\n3,\x00,no\n", "row 3"),
        (b"a,b,y\n" + b"z" * 5_000_000 + b",1,yes\n", "not readable as CSV"),
    ],
    ids=["binary", "utf16", "mixed", "nul", "huge-line"],
)
def test_unreadable_csv(tmp_path: Path, content: bytes, needle: str) -> None:
    # Found 8: each of these was a traceback.
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    _one_line_error([str(path), "--target", "y"], needle)


def test_huge_jsonl_line(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"id": "1", "x": {"a": "' + b"z" * 5_000_000 + b'"}, "y": 1}\n')
    _one_line_error([str(path)], "exceeds the limit")


@pytest.mark.parametrize("spec", ["synth:Agrawal:n=-5", "synth:Agrawal:n=abc", "synth:SEA:seed=x"])
def test_bad_synthetic_parameters(spec: str) -> None:
    _one_line_error([spec], "must be a whole number")


def test_model_factory_that_needs_arguments() -> None:
    args = ["synth:Agrawal:n=50", "--model", "river.ensemble:BaggingClassifier"]
    _one_line_error(args, "without arguments")


def test_river_model_given_string_labels(tmp_path: Path) -> None:
    rng = random.Random(0)
    rows = [f"{rng.random()},{rng.choice(['yes', 'no', 'maybe'])}" for _ in range(200)]
    path = tmp_path / "labels.csv"
    path.write_text("a,y\n" + "\n".join(rows) + "\n")
    args = [str(path), "--target", "y", "--model", "river.linear_model:Perceptron"]
    _one_line_error(args + ["--rate", "0.5"], "could not learn label")


def test_example_without_the_sklearn_extra(tmp_path: Path) -> None:
    # A sitecustomize that hides scikit-learn, as on an install without the extra.
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['sklearn'] = None\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{EXAMPLES}"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "walkthrough_1_tiny_pool.py"), "--fast"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "this example needs sklearn" in result.stderr
