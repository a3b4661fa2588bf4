"""Settings, the factory, the HTTP endpoints and the ``serve``/``config`` commands."""

from __future__ import annotations

import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from streamal.cli.app import app
from streamal.exceptions import ConfigError
from streamal.service.config import load_settings
from streamal.service.factory import (
    build_learner,
    build_service,
    config_hash,
    kafka_client_options,
    loop_policy,
)
from streamal.service.http import HttpServer
from streamal.transports import MemoryBroker, MemorySink, MemorySource

runner = CliRunner()


def test_precedence_defaults_toml_env_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = tmp_path / "streamal.toml"
    toml.write_text(
        '[kafka]\nbootstrap_servers = "from-file:9092"\ngroup_id = "file"\n'
        "[learner]\nrate = 0.2\nseed = 3\n"
    )
    monkeypatch.setenv("STREAMAL_LEARNER__SEED", "9")
    monkeypatch.setenv("STREAMAL_KAFKA__GROUP_ID", "env")
    settings = load_settings(toml, {"kafka": {"group_id": "flag"}})
    assert settings.kafka.bootstrap_servers == "from-file:9092"  # file over default
    assert settings.learner.rate == 0.2 and settings.learner.seed == 9  # env over file
    assert settings.kafka.group_id == "flag"  # flags over env
    assert settings.topics.samples == "streamal.samples"  # defaults stay


def test_bad_settings_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="learner.rate"):
        load_settings(overrides={"learner": {"rate": "lots"}})
    with pytest.raises(ConfigError, match="kafka.nope"):
        load_settings(overrides={"kafka": {"nope": 1}})
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[kafka\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(broken)


def test_secrets_are_masked_but_passed_to_kafka() -> None:
    settings = load_settings(
        overrides={
            "kafka": {
                "bootstrap_servers": "a:1,b:2",
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_username": "svc",
                "sasl_password": "s3cret",
                "ssl_cafile": "/ca.pem",
            }
        }
    )
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.masked())
    options = kafka_client_options(settings.kafka)
    assert options["sasl_plain_password"] == "s3cret"
    assert options["sasl_plain_username"] == "svc" and options["ssl_cafile"] == "/ca.pem"
    assert options["bootstrap_servers"] == ["a:1", "b:2"]
    assert options["security_protocol"] == "SASL_SSL"
    assert "ssl_password" not in options


def test_config_hash_follows_the_learner_not_the_plumbing() -> None:
    base = load_settings()
    assert config_hash(base) == config_hash(load_settings(overrides={"service": {"http_port": 1}}))
    assert config_hash(base) != config_hash(load_settings(overrides={"learner": {"rate": 0.3}}))
    assert config_hash(base) != config_hash(load_settings(overrides={"topics": {"samples": "x"}}))


def test_factory_builds_the_replay_learner_and_the_loop_policy(tmp_path: Path) -> None:
    settings = load_settings(
        overrides={
            "learner": {"model": "logreg", "pending": "sqlite", "max_pending": 7},
            "checkpoint": {"dir": str(tmp_path), "every": 10, "interval": 2.5},
        }
    )
    learner = build_learner(settings)
    assert type(learner.pending).__name__ == "SQLitePendingStore"
    assert learner.pending.max_size == 7 and (tmp_path / "pending.sqlite").exists()
    policy = loop_policy(settings)
    assert (policy.commit_every, policy.commit_interval) == (10, 2.5)
    window = build_learner(load_settings(overrides={"learner": {"window_selector": "topk"}}))
    assert type(window).__name__ == "WindowLearner"


def test_window_mode_publishes_the_queries_of_each_window(tmp_path: Path) -> None:
    settings = load_settings(
        overrides={
            "learner": {"model": "logreg", "window_selector": "topk", "window_size": 10},
            "checkpoint": {"dir": str(tmp_path)},
        }
    )
    broker, registry = MemoryBroker(), CollectorRegistry()
    for i in range(40):
        broker.produce("streamal.samples", b'{"id": "s%d", "x": {"a": %d}}' % (i, i % 5))
    service = build_service(settings, registry, MemorySource(broker), MemorySink(broker))
    service.run(count=40)
    assert len(broker.records("streamal.queries")) == 4  # rate 0.1 of four windows of 10
    assert registry.get_sample_value("streamal_budget_realized_ratio") == 0.1
    assert registry.get_sample_value("streamal_pending_queries") == 4


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_http_endpoints(tmp_path: Path) -> None:
    settings = load_settings(overrides={"checkpoint": {"dir": str(tmp_path)}})
    broker, registry = MemoryBroker(), CollectorRegistry()
    service = build_service(settings, registry, MemorySource(broker), MemorySink(broker))
    server = HttpServer(registry, service.health, service.readiness, port=0)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert _get(base + "/healthz") == (200, "ok\n")
        assert _get(base + "/readyz") == (503, "restoring the snapshot\n")
        service.restore()
        assert _get(base + "/readyz") == (200, "ok\n")
        status, text = _get(base + "/metrics")
        assert status == 200 and "streamal_build_info{" in text
        assert f'config_hash="{config_hash(settings)}"' in text
        assert "streamal_budget_target_ratio 0.1" in text
        assert _get(base + "/nope")[0] == 404
    finally:
        server.stop()


def test_config_command_prints_toml_with_secrets_masked(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["config", "--set", "learner.rate=0.05", "--set", "kafka.sasl_password=s3cret"]
        + ["--bootstrap-servers", "k:9092", "--checkpoint-dir", str(tmp_path), "--http-port", "0"],
    )
    assert result.exit_code == 0, result.output
    data = tomllib.loads(result.output)
    assert data["learner"]["rate"] == 0.05 and data["kafka"]["bootstrap_servers"] == "k:9092"
    assert data["kafka"]["sasl_password"] == "**********" and "s3cret" not in result.output
    assert data["checkpoint"]["dir"] == str(tmp_path) and data["service"]["http_port"] == 0
    # What config prints can be read back as a settings file.
    saved = tmp_path / "saved.toml"
    saved.write_text(result.output.replace('sasl_password = "**********"\n', ""))
    assert load_settings(saved).learner.rate == 0.05


def test_serve_exits_2_on_bad_settings_and_3_without_a_broker(tmp_path: Path) -> None:
    bad = runner.invoke(
        app, ["serve", "--set", "learner.rate=7", "--checkpoint-dir", str(tmp_path)]
    )
    assert bad.exit_code == 2 and "rate must be in (0, 1]" in bad.output
    malformed = runner.invoke(app, ["serve", "--set", "rate=0.1"])
    assert malformed.exit_code == 2 and "SECTION.KEY=VALUE" in malformed.output
    nobody = runner.invoke(
        app,
        ["serve", "--bootstrap-servers", "127.0.0.1:9", "--checkpoint-dir", str(tmp_path)]
        + ["--set", "service.broker_timeout=1", "--http-port", "0"],
    )
    assert nobody.exit_code == 3 and "cannot connect to 127.0.0.1:9" in nobody.output
