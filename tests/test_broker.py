"""The local tansu broker: start, readiness, port races, kill/restart, no orphans."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from streamal.dev import broker as broker_mod
from streamal.dev.broker import LocalBroker, find_tansu
from streamal.exceptions import ConfigError, TransportError

pytestmark = pytest.mark.kafka


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie awaiting its reaper counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_dead(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_start_answers_as_itself_and_stop_ends_the_process(tmp_path: Path) -> None:
    from kafka import KafkaAdminClient

    broker = LocalBroker(cluster_id="streamal-test-own", log_path=tmp_path / "b.log").start()
    try:
        host, port = broker.bootstrap.split(":")
        assert host == "127.0.0.1" and int(port) > 0
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, bootstrap_timeout_ms=5000)
        assert admin.describe_cluster()["cluster_id"] == "streamal-test-own"
        admin.close()
        pid = broker.pid
        assert pid is not None and broker.running
    finally:
        broker.stop()
    assert not broker.running and broker.pid is None
    assert _wait_dead(pid)
    broker.stop()  # idempotent


def test_a_foreign_listener_on_the_port_is_not_mistaken_for_the_broker() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        broker = LocalBroker(port=port)
        with pytest.raises(TransportError, match="did not start"):
            broker.start(timeout=0.5)
        assert not broker.running


def test_a_port_taken_between_probe_and_bind_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = iter([taken])
        real = broker_mod.free_port
        monkeypatch.setattr(broker_mod, "free_port", lambda host: next(ports, None) or real(host))
        with LocalBroker() as broker:
            assert broker.running
            assert broker.bootstrap != f"127.0.0.1:{taken}"


def test_kill_and_restart_keep_the_port_and_lose_the_data(own_kafka_broker: Any) -> None:
    from kafka import KafkaProducer

    kb = own_kafka_broker
    kb.create_topics("t")
    assert kb.send("t", [b"a", b"b"]) == 2
    before, pid = kb.bootstrap, kb.broker.pid
    producer = KafkaProducer(bootstrap_servers=kb.bootstrap, **kb.producer_settings)
    try:
        kb.kill()
        assert _wait_dead(pid)
        kb.restart()
        assert kb.bootstrap == before and kb.broker.pid != pid
        assert kb.read("t") == []  # memory storage: the restart is an empty cluster
        kb.create_topics("t")
        # A non-idempotent producer made before the crash keeps working after it.
        deadline = time.monotonic() + 15
        while True:
            try:
                producer.send("t", b"after").get(timeout=5)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
        assert [r.value for r in kb.read("t", count=1)] == [b"after"]
    finally:
        producer.close(timeout=2)


def test_tansu_bin_overrides_the_wheel_and_gets_its_exec_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "tansu"
    shutil.copyfile(find_tansu(), copy)
    copy.chmod(0o644)
    monkeypatch.setenv("TANSU_BIN", str(copy))
    assert find_tansu() == copy
    assert os.access(copy, os.X_OK)
    with LocalBroker() as broker:
        assert broker.running
    monkeypatch.setenv("TANSU_BIN", str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="TANSU_BIN"):
        find_tansu()


def test_missing_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> None:
        raise ModuleNotFoundError(name)

    monkeypatch.delenv("TANSU_BIN", raising=False)
    monkeypatch.setattr(broker_mod.importlib.resources, "files", missing)
    with pytest.raises(ConfigError, match=r"streamal\[broker\]"):
        LocalBroker().start()


@pytest.mark.parametrize("ending", ["exit", "sigkill"])
def test_no_orphan_broker_when_the_parent_forgets_or_dies(ending: str) -> None:
    script = (
        "import os, sys\n"
        "from streamal.dev.broker import LocalBroker\n"
        "b = LocalBroker().start()\n"
        "print(b.pid, flush=True)\n"
        "if sys.argv[1] == 'sigkill':\n"
        "    os.kill(os.getpid(), 9)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, ending], capture_output=True, text=True, timeout=30
    )
    pid = int(proc.stdout.split()[0])
    assert _wait_dead(pid), f"tansu {pid} outlived its parent ({ending})"
