"""``streamal topics create`` through the real CLI in a subprocess, against tansu.

The topics come from the same settings as ``streamal serve`` (here ``STREAMAL_*``
variables); a second run changes nothing and says so; a topic that exists with other
settings is reported (exit 1); usage and settings errors exit 2, an unreachable broker 3.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.kafka

ROLES = ("SAMPLES", "QUERIES", "LABELS", "DEAD_LETTERS")


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamal", "topics", "create", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def names(kafka_broker: Any) -> Iterator[dict[str, str]]:
    """Unique topic names for every role (deleted after the test)."""
    made = {role: kafka_broker.unique(role.lower()) for role in (*ROLES, "STATE")}
    yield made
    kafka_broker.delete_topics(*made.values())


def _env(broker: Any, names: dict[str, str], **more: Any) -> dict[str, str]:
    topics = {f"TOPICS__{role}": names[role] for role in ROLES}
    return broker.env(GROUP__STATE_TOPIC=names["STATE"], **topics, **more)


def _describe(broker: Any, names: list[str]) -> dict[str, tuple[int, str]]:
    """Partitions and cleanup.policy of each topic."""
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    admin = KafkaAdminClient(**broker.client)
    try:
        parts = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(names)}
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n) for n in names], config_filter="all"
        )["topic"]
    finally:
        admin.close()
    policy = {n: (configs[n].get("cleanup.policy") or {}).get("value", "delete") for n in names}
    return {n: (parts[n], policy[n]) for n in names}


def test_creates_the_group_topics_from_the_settings_once(
    kafka_broker: Any, names: dict[str, str]
) -> None:
    env = _env(kafka_broker, names, GROUP__ENABLED="true")
    first = _cli(env, "--partitions", "6")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert len(lines) == 5 and all(line.startswith("created") for line in lines), lines
    described = _describe(kafka_broker, list(names.values()))
    assert described[names["SAMPLES"]] == (6, "delete")
    assert described[names["STATE"]] == (1, "compact")
    for role in ("QUERIES", "LABELS", "DEAD_LETTERS"):
        assert described[names[role]] == (1, "delete")

    # Idempotent: the same run again finds everything as asked for.
    again = _cli(env, "--partitions", "6", "--replication", "1")
    assert again.returncode == 0, again.stderr
    assert [line.split()[0] for line in again.stdout.splitlines()] == ["exists"] * 5

    # Other settings than asked for: reported, nothing changed, exit 1.
    other = _cli(env, "--partitions", "4")
    assert other.returncode == 1
    assert f"MISMATCH {names['SAMPLES']}: 6 partitions, not 4" in other.stderr
    assert "nothing was changed" in other.stderr
    assert _describe(kafka_broker, [names["SAMPLES"]])[names["SAMPLES"]] == (6, "delete")


def test_an_existing_state_topic_that_is_not_compacted_is_a_mismatch(
    kafka_broker: Any, names: dict[str, str]
) -> None:
    kafka_broker.create_topics(names["STATE"])  # cleanup.policy=delete (the default)
    env = _env(kafka_broker, names)
    result = _cli(env, "--state")  # single mode, asking for the state topic anyway
    assert result.returncode == 1
    assert f"MISMATCH {names['STATE']}: cleanup.policy=delete, not compact" in result.stderr
    created = [line.split()[1] for line in result.stdout.splitlines()]
    assert sorted(created) == sorted(names[role] for role in ROLES)
    # Single mode: one samples partition, no state topic unless asked for.
    names_no_state = {**names, "STATE": kafka_broker.unique("unused")}
    plain = _cli(_env(kafka_broker, names_no_state))
    assert plain.returncode == 0, plain.stderr
    assert len(plain.stdout.splitlines()) == 4
    assert _describe(kafka_broker, [names["SAMPLES"]])[names["SAMPLES"]] == (1, "delete")


def test_usage_settings_and_broker_errors(kafka_broker: Any, names: dict[str, str]) -> None:
    env = _env(kafka_broker, names, GROUP__ENABLED="true")
    missing = _cli(env)
    assert missing.returncode == 2
    assert "give the samples topic's partitions with --partitions N" in missing.stderr
    bad = _cli(env, "--partitions", "2", "--set", "nope.x=1")
    assert bad.returncode == 2 and "error:" in bad.stderr
    twice = _cli({**env, "STREAMAL_TOPICS__LABELS": names["SAMPLES"]}, "--partitions", "2")
    assert twice.returncode == 2 and "named for two roles" in twice.stderr
    zero = _cli(env, "--partitions", "0")
    assert zero.returncode == 2
    away = _cli(
        {**env, "STREAMAL_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1"}, "-p", "2", "--wait", "0.5"
    )
    assert away.returncode == 3 and "cannot connect" in away.stderr
    helped = subprocess.run(
        [sys.executable, "-m", "streamal", "topics", "create", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert helped.returncode == 0 and "Exit codes" in helped.stdout
    # None of the failed runs created anything.
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(**kafka_broker.client)
    try:
        assert not set(names.values()) & set(admin.list_topics())
    finally:
        admin.close()
