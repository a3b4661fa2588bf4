"""Alert rules, dashboard provisioning and docs stay wired to the metrics that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from streamal.service.metrics import Metrics

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def test_prometheus_loads_the_alert_rules() -> None:
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert prom["rule_files"] == ["/etc/prometheus/alerts.yml"]
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    mounts = compose["services"]["prometheus"]["volumes"]
    assert "./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts


def test_every_alert_is_complete_and_documented() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"]]
    names = {r["alert"] for r in alerts}
    assert {
        "StreamalQueryRateOffTarget",
        "StreamalPendingBacklogGrowing",
        "StreamalNoLabels",
        "StreamalConsumerLagGrowing",
        "StreamalCheckpointsFailing",
    } <= names
    docs = (ROOT / "docs" / "operations.md").read_text()
    for rule in alerts:
        assert rule["expr"].strip() and rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        assert f"**{rule['alert']}**" in docs, rule["alert"]
        assert rule["expr"].count("(") == rule["expr"].count(")")


def test_grafana_provisions_the_dashboard() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert "./grafana/dashboards:/etc/grafana/dashboards:ro" in mounts
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "streamal.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/etc/grafana/dashboards"
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "streamal.json").read_text())
    assert dashboard["uid"] == "streamal"
    titles = {p["title"] for p in dashboard["panels"]}
    assert {"Consumer lag by partition", "Accuracy estimates", "Pending queries"} <= titles
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "prometheus"
            assert target["expr"].count("(") == target["expr"].count(")")


def test_every_metric_is_documented() -> None:
    registry = CollectorRegistry()
    Metrics(registry)
    docs = (ROOT / "docs" / "operations.md").read_text()
    documented = set(re.findall(r"`([a-z_]+)(?:\{[a-z_,]+\})?`", docs))
    for family in registry.collect():
        short = family.name.removeprefix("streamal_")
        assert documented & {short, f"{short}_total", f"{short}_info"}, family.name
