"""The Label Studio bridge against a real Label Studio server and the real broker.

A Label Studio server from the ``label-studio`` package (SQLite, no internet: version
check, analytics and Sentry off) is started on a free loopback port for the module and
stopped by its PID (its process group). It is installed in a venv of its own
(``.ci/run`` makes ``.venv-labelstudio`` and sets ``STREAMAL_LABEL_STUDIO``), because
its pins hold numpy below 2.3; without it the test is skipped, never in ``.ci/run``.
Queries become tasks visible through its API (with the model's prediction as a
pre-annotation), annotations made through its API come back by webhook
and by polling, and the service applies them; a retried webhook, an updated annotation
and a restarted bridge are each handled once.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from _helpers import labelling_serve_env, wait_until

from streamal.labelling.label_studio_api import LabelStudioClient, choices_result
from streamal.messages import Sample, decode_label, encode

pytestmark = [pytest.mark.kafka, pytest.mark.labelstudio, pytest.mark.slow]

#: Polls every 0.2 s.
_wait = partial(wait_until, interval=0.2)

TOKEN = "streamal-test-token-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudioClient]:
    exe = os.environ.get("STREAMAL_LABEL_STUDIO") or shutil.which("label-studio")
    if exe is None:
        pytest.skip(
            "Label Studio is not installed: .ci/run installs it in .venv-labelstudio and "
            "sets STREAMAL_LABEL_STUDIO (its pins would hold numpy below 2.3 here)"
        )
    if not os.access(exe, os.X_OK):
        pytest.fail(f"STREAMAL_LABEL_STUDIO={exe} is not an executable")
    data = tmp_path_factory.mktemp("label-studio")
    port = _free_port()
    env = {
        **os.environ,
        "LABEL_STUDIO_BASE_DATA_DIR": str(data),
        "DJANGO_DB": "sqlite",
        "LATEST_VERSION_CHECK": "false",  # no call to pypi.org
        "COLLECT_ANALYTICS": "false",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
        # Webhooks to the bridge on 127.0.0.1 are refused by Label Studio's SSRF guard.
        "SSRF_PROTECTION_ENABLED": "false",
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
    }
    env.pop("HOST", None)
    log = (data / "server.log").open("w")
    proc = subprocess.Popen(
        [
            exe,
            "start",
            "--no-browser",
            "--internal-host",
            "127.0.0.1",
            "--port",
            str(port),
            "--username",
            "annotator@example.org",
            "--password",
            "not-a-secret-0",
            "--user-token",
            TOKEN,
            "--enable-legacy-api-token",
            "--data-dir",
            str(data),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    client = LabelStudioClient(f"http://127.0.0.1:{port}", TOKEN, timeout=20)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError((data / "server.log").read_text()[-3000:])
        try:
            client.call("GET", "/api/projects/")
            return True
        except Exception:
            return False

    try:
        _wait(up, 300, "Label Studio to start")
        yield client
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and its children
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()


_BRIDGES: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _no_leftover_bridges() -> Iterator[None]:
    yield
    while _BRIDGES:
        proc = _BRIDGES.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


class Bridge:
    def __init__(self, env: dict[str, str], args: list[str], log: Path) -> None:
        code = "from streamal.cli.app import main; main()"
        self.log = log
        with log.open("a") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", code, "bridge", "label-studio", *args],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=out,
            )

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise


def test_queries_become_tasks_and_annotations_become_applied_labels(
    label_studio: LabelStudioClient,
    kafka_broker: Any,
    kafka_topics: Any,
    serve_process: Any,
    tmp_path: Path,
) -> None:
    client = label_studio
    project = int(client.call("POST", "/api/projects/", {"title": "streamal"})["id"])
    samples, labels, queries, dead = kafka_topics("samples", "labels", "queries", "dead")
    topics = {
        "TOPICS__SAMPLES": samples,
        "TOPICS__LABELS": labels,
        "TOPICS__QUERIES": queries,
        "TOPICS__DEAD_LETTERS": dead,
    }
    serve = serve_process(labelling_serve_env(kafka_broker, topics))

    def send(*ids: int) -> None:
        kafka_broker.send(
            samples,
            [
                encode(
                    Sample(
                        id=f"t{i}",
                        x={"amount": float(10 * i), "night": i % 2},
                        meta={"subject": f"message {i}"},
                    )
                )
                for i in ids
            ],
        )

    hook_port = _free_port()
    env = {
        **kafka_broker.env(LEARNER__CLASSES='["spam", "ham"]', **topics),
        "LABEL_STUDIO_TOKEN": TOKEN,
    }
    args = [
        "--url",
        client.url,
        "--project",
        str(project),
        "--state",
        str(tmp_path / "b.sqlite"),
        "--listen",
        f"127.0.0.1:{hook_port}",
        "--poll",
        "1",
        "--group",
        kafka_broker.unique("bridge"),
    ]
    bridge = Bridge(env, args, tmp_path / "bridge.log")

    def tasks() -> dict[str, dict[str, Any]]:
        return {t["data"]["sample_id"]: t for t in client.tasks(project)}

    send(0, 1, 2)
    try:
        found = _wait(lambda: (lambda t: t if len(t) == 3 else None)(tasks()), 90, "three tasks")
    except AssertionError:
        raise AssertionError(bridge.log.read_text()[-3000:]) from None
    assert found["t1"]["data"]["item"].startswith("subject: message 1")
    assert '<Choice value="spam"/>' in client.project(project)["label_config"]

    # Annotations by webhook: the service applies them.
    made = client.create_annotation(found["t0"]["id"], choices_result("ham"))
    client.create_annotation(found["t1"]["id"], choices_result("spam"))
    _wait(
        lambda: serve.metric("streamal_labels_total", outcome="applied") == 2,
        60,
        "two labels applied",
    )
    sent = [decode_label(r.value) for r in kafka_broker.read(labels)]
    assert sorted((x.sample_id, x.y) for x in sent) == [("t0", "ham"), ("t1", "spam")]

    # A retried webhook publishes nothing new.
    payload = {"action": "ANNOTATION_CREATED", "annotation": made, "task": {"id": made["task"]}}
    for _ in range(2):
        request = urllib.request.Request(
            f"http://127.0.0.1:{hook_port}/webhook",
            data=json.dumps(payload).encode(),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
    # An updated annotation is a new label; the learner keeps the first (a duplicate).
    client.update_annotation(made["id"], choices_result("spam"))
    _wait(
        lambda: serve.metric("streamal_labels_total", outcome="duplicate") == 1,
        60,
        "the update counted as a duplicate",
    )
    assert len(kafka_broker.read(labels)) == 3
    assert serve.metric("streamal_labels_total", outcome="applied") == 2

    # A restarted bridge makes no task twice; new queries carry the model's guess.
    assert bridge.stop() == 0
    bridge = Bridge(env, args, tmp_path / "bridge.log")
    send(3)
    found = _wait(lambda: (lambda t: t if len(t) == 4 else None)(tasks()), 90, "the fourth task")
    time.sleep(2)  # time for a wrong second copy of an old task to show up
    assert sorted(tasks()) == ["t0", "t1", "t2", "t3"]
    (prediction,) = client.call("GET", f"/api/predictions/?task={found['t3']['id']}")
    assert prediction["result"][0]["value"]["choices"][0] in ("spam", "ham")
    assert 0.0 < prediction["score"] <= 1.0
    # Polling finds an annotation made while no webhook could reach the bridge.
    assert bridge.stop() == 0
    client.create_annotation(found["t3"]["id"], choices_result("ham"))
    bridge = Bridge(env, args, tmp_path / "bridge.log")
    _wait(
        lambda: serve.metric("streamal_labels_total", outcome="applied") == 3,
        60,
        "the polled label applied",
    )
    assert bridge.stop() == 0
    assert serve.metric("streamal_dead_letters_total", reason="unknown_class") == 0
    assert serve.stop() == 0
