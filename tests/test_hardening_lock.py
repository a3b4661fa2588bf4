"""A second instance on the same checkpoint directory is refused (issue 14, item 6)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamal.core.checkpoint import Checkpointer, Snapshot
from streamal.exceptions import CheckpointError


def test_second_locked_checkpointer_is_refused(tmp_path: Path) -> None:
    first = Checkpointer(tmp_path, lock=True)
    first.save(Snapshot({"n": 1}))
    with pytest.raises(CheckpointError, match="in use by another streamal process"):
        Checkpointer(tmp_path, lock=True)
    # The first one's snapshots and temp files are untouched by the refused one.
    assert [p.name for p in first.paths()] == ["snapshot-000000000001.ckpt"]
    first.close()
    second = Checkpointer(tmp_path, lock=True)
    assert second.load() is not None
    second.close()


def test_second_serve_on_the_same_directory_exits_2(tmp_path: Path) -> None:
    # Found 6: two instances with one checkpoint directory were accepted silently.
    args = [sys.executable, "-m", "streamal", "serve", "--checkpoint-dir", str(tmp_path)]
    args += ["--bootstrap-servers", "127.0.0.1:9", "--http-port", "0"]
    args += ["--set", "service.broker_timeout=20"]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / ".lock").exists() or not (tmp_path / ".lock").read_text():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first serve never took the lock"
            time.sleep(0.1)
        second = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert second.returncode == 2, second.stderr
        assert "in use by another streamal process" in second.stderr
        assert f"pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.terminate()
        first.communicate(timeout=60)
