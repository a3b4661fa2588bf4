"""``streamal label --web``: the labelling page apart from the service, on the real broker."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from _helpers import wait_until

from streamal.messages import Label, Query, decode_label, encode

pytestmark = pytest.mark.kafka


def test_the_page_reads_the_topics_and_writes_labels(
    kafka_broker: Any, kafka_topics: Any, tmp_path: Path
) -> None:
    queries, labels = kafka_topics("queries", "labels")
    kafka_broker.send(
        queries,
        [
            encode(
                Query(
                    sample_id=f"q{i}",
                    x={"a": i},
                    score=0.5,
                    strategy="Entropy",
                    model_version=1,
                    classes=["spam", "ham"],
                    meta={"subject": f"mail {i}"},
                )
            )
            for i in range(3)
        ],
    )
    kafka_broker.send(labels, [encode(Label(sample_id="q1", y="ham"))])
    env = kafka_broker.env(
        TOPICS__QUERIES=queries, TOPICS__LABELS=labels, LEARNER__CLASSES='["spam", "ham"]'
    )
    log = tmp_path / "label.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from streamal.cli.app import main; main()",
                "label",
                "--web",
                "--port",
                "0",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    try:
        port = int(
            wait_until(
                lambda: (re.findall(r"http://[0-9.]+:(\d+)/label", log.read_text()) or [None])[0],
                30,
                "the page's port",
            )
        )
        url = f"http://127.0.0.1:{port}"

        def open_ids() -> list[str]:
            with urllib.request.urlopen(url + "/label/data", timeout=5) as r:
                return [q["sample_id"] for q in json.loads(r.read())["queries"]]

        wait_until(lambda: open_ids() == ["q0", "q2"], 30, "the unanswered queries")
        with urllib.request.urlopen(url + "/label", timeout=5) as r:
            assert b"/label/data" in r.read()
        body = json.dumps([{"sample_id": "q2", "y": "spam"}, {"sample_id": "q0", "y": "eggs"}])
        request = urllib.request.Request(url + "/labels", data=body.encode(), method="POST")
        with urllib.request.urlopen(request, timeout=10) as r:
            answer = json.loads(r.read())
        assert [x["accepted"] for x in answer["results"]] == [True, False]
        assert open_ids() == ["q0"]
        sent = [decode_label(r.value) for r in kafka_broker.read(labels)]
        assert [(x.sample_id, x.y) for x in sent] == [("q1", "ham"), ("q2", "spam")]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
