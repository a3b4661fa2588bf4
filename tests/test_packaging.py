"""Packaging: typed marker shipped, license file, version, project URLs."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tomllib
from pathlib import Path

import streamal

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_py_typed_marker_ships_with_the_package() -> None:
    assert (ROOT / "streamal" / "py.typed").is_file()
    package_data = PYPROJECT["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data["streamal"]


def test_license_file_matches_the_declared_license() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert PYPROJECT["project"]["license"] == {"text": "BSD-3-Clause"}
    assert text.startswith("BSD 3-Clause License")
    assert "the streamal developers" in text.splitlines()[2]
    assert "Neither the name of the copyright holder" in text


def test_version_option_prints_the_package_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "streamal", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout == f"streamal {streamal.__version__}\n"
    assert streamal.__version__ == PYPROJECT["project"]["version"]
    assert importlib.metadata.version("streamal") == streamal.__version__


def test_project_urls_and_extras() -> None:
    urls = PYPROJECT["project"]["urls"]
    assert {"Homepage", "Documentation", "Source", "Issues"} <= set(urls)
    assert all(url.startswith("https://") for url in urls.values())
    extras = PYPROJECT["project"]["optional-dependencies"]
    # The test extra installs every optional reader, so CI runs their tests.
    assert any(dep.startswith("pyarrow") for dep in extras["parquet"])
    assert any(dep.startswith("pyarrow") for dep in extras["test"])
