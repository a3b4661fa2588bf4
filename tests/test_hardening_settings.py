"""Secrets are masked everywhere; a shadowed Kafka option is a one-line error (item 5)."""

from __future__ import annotations

import logging
from pathlib import Path

from typer.testing import CliRunner

from streamal.cli.app import app
from streamal.redact import RedactingFilter

runner = CliRunner()


def test_config_masks_secrets_in_client_options_and_bootstrap(tmp_path: Path) -> None:
    # Found 5: secrets in kafka.consumer/producer and the bootstrap address were printed.
    result = runner.invoke(
        app,
        ["config", "--checkpoint-dir", str(tmp_path)]
        + ["--bootstrap-servers", "SASL_SSL://alice:hunter2@broker:9093"]
        + ["--set", 'kafka.consumer={"sasl_kerberos_password": "c0nsumer", "fetch_min_bytes": 1}']
        + ["--set", 'kafka.producer={"sasl_oauth_token": "pr0ducer"}'],
    )
    assert result.exit_code == 0, result.output
    for secret in ("hunter2", "c0nsumer", "pr0ducer"):
        assert secret not in result.output
    assert "alice:**********@broker:9093" in result.output
    assert "fetch_min_bytes" in result.output


def test_shadowed_kafka_option_is_a_one_line_error(tmp_path: Path) -> None:
    # Found 5: a kafka.consumer key that a typed setting also sets crashed serve.
    result = runner.invoke(
        app,
        ["serve", "--checkpoint-dir", str(tmp_path), "--http-port", "0"]
        + ["--set", 'kafka.consumer={"group_id": "other"}'],
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "kafka.consumer.group_id duplicates the setting kafka.group_id" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_password_in_bootstrap_never_reaches_errors_or_logs(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["serve", "--bootstrap-servers", "bob:pa55word@127.0.0.1:9"]
        + ["--checkpoint-dir", str(tmp_path), "--http-port", "0"]
        + ["--set", "service.broker_timeout=1"],
    )
    assert result.exit_code in (2, 3), result.output
    assert "pa55word" not in result.output


def test_log_filter_masks_addresses() -> None:
    record = logging.LogRecord(
        "streamal", logging.INFO, "", 0, "connecting to %s", ("u:secret@host:9092",), None
    )
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "connecting to u:**********@host:9092"
