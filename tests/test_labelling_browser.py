"""The labelling page in a real headless browser (Debian's chromium and chromedriver).

``streamal serve`` runs against the real broker; a person's clicks and keys on
``/label`` label five queries (and skip one), and the service applies exactly those
five labels. ``.ci/run`` installs chromium and chromium-driver when they are missing.
Set ``STREAMAL_SCREENSHOT=path.png`` to save the page as the docs show it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _helpers import labelling_serve_env, wait_until

from streamal.messages import Sample, decode_label, encode

pytestmark = [pytest.mark.kafka, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

ITEMS = [
    ("Refund request for order 1182: parcel arrived damaged", 129.0, "NO", 14),
    ("Win a free cruise!!! Click before midnight", 0.0, "??", 3),
    ("Invoice 2024-311 attached, due in 30 days", 2450.0, "DE", 10),
    ("Your account is locked, confirm your password here", 0.0, "??", 2),
    ("Team lunch moved to Thursday", 0.0, "NO", 11),
    ("Cheap watches, 90% off, limited stock", 19.9, "??", 4),
    ("Delivery slot confirmed for Friday 8-10", 0.0, "SE", 16),
]


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
        pytest.fail(
            "chromium and chromium-driver are needed: apt-get install chromium chromium-driver"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1180,760",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def test_a_person_labels_five_queries_with_clicks_and_keys(
    kafka_broker: Any, kafka_topics: Any, serve_process: Any, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    samples, labels, queries, dead = kafka_topics("samples", "labels", "queries", "dead")
    topics = {
        "TOPICS__SAMPLES": samples,
        "TOPICS__LABELS": labels,
        "TOPICS__QUERIES": queries,
        "TOPICS__DEAD_LETTERS": dead,
    }
    serve = serve_process(labelling_serve_env(kafka_broker, topics))
    kafka_broker.send(
        samples,
        [
            encode(
                Sample(
                    id=f"m{i}",
                    x={"amount": amount, "country": country, "hour": hour},
                    meta={"subject": text, "link": f"https://mail.example/{1000 + i}"},
                )
            )
            for i, (text, amount, country, hour) in enumerate(ITEMS)
        ],
    )

    def open_queries() -> list[str]:
        code, body = serve.get("/label/data")
        return [q["sample_id"] for q in json.loads(body)["queries"]] if code == 200 else []

    wait_until(lambda: len(open_queries()) == len(ITEMS), 60, "the queries on the page")
    browser.get(serve.url + "/label")

    def heading() -> str:
        found = browser.find_elements(By.CSS_SELECTOR, "#query h2")
        return str(found[0].text) if found else ""

    def shows(sample_id: str) -> bool:
        return heading().startswith(f"sample {sample_id}")

    wait_until(lambda: shows("m0"), 20, "the first query on the page")
    assert "Refund request" in browser.find_element(By.ID, "query").text
    body = browser.find_element(By.TAG_NAME, "body")

    def click(name: str) -> None:
        (button,) = [
            b for b in browser.find_elements(By.CSS_SELECTOR, "button.cls") if b.text.endswith(name)
        ]
        button.click()

    given: list[tuple[str, str]] = []
    steps: list[tuple[str, Callable[[], None], str | None]] = [
        ("m0", lambda: click("ham"), "ham"),
        ("m1", lambda: body.send_keys("1"), "spam"),
        ("m2", lambda: body.send_keys("2"), "ham"),
        ("m3", lambda: body.send_keys("s"), None),  # skipped: stays open
        ("m4", lambda: click("ham"), "ham"),
        ("m5", lambda: body.send_keys("1"), "spam"),
    ]
    for sample_id, act, y in steps:
        wait_until(lambda sid=sample_id: shows(sid), 20, f"query {sample_id} on the page")
        act()
        if y is not None:
            given.append((sample_id, y))
            wait_until(
                lambda sid=sample_id: (
                    f"labelled {sid}" in browser.find_element(By.ID, "status").text
                ),
                20,
                f"the label of {sample_id} accepted",
            )
    wait_until(lambda: shows("m6"), 20, "the last query")
    assert len(given) == 5
    wait_until(
        lambda: serve.metric("streamal_labels_total", outcome="applied") == 5,
        30,
        "the service to apply five labels",
    )
    sent = [decode_label(r.value) for r in kafka_broker.read(labels)]
    assert sorted((label.sample_id, label.y) for label in sent) == sorted(given)
    assert all(label.annotator == "web" for label in sent)
    wait_until(lambda: sorted(open_queries()) == ["m3", "m6"], 20, "the labelled queries to close")
    assert "labelled today 5" in browser.find_element(By.TAG_NAME, "header").text
    assert serve.metric("streamal_dead_letters_total", reason="unknown_class") == 0
    # A query decided after the labels shows up live, with the model's guess.
    kafka_broker.send(
        samples,
        [
            encode(
                Sample(
                    id="m7",
                    x={"amount": 9.9, "country": "??", "hour": 3},
                    meta={
                        "subject": "Claim your prize now, reply with your bank details",
                        "link": "https://mail.example/1007",
                    },
                )
            )
        ],
    )
    wait_until(lambda: "m7" in open_queries(), 30, "the new query")
    body.send_keys("s")
    wait_until(lambda: shows("m7"), 20, "the new query on the page")
    assert "confidence" in browser.find_element(By.ID, "query").text
    shot = os.environ.get("STREAMAL_SCREENSHOT")
    if shot:
        browser.save_screenshot(shot)
    assert serve.stop() == 0
