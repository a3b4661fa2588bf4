"""Scale-out deployment: the Compose override, the Kubernetes manifests, the group dashboard.

No Docker engine or cluster here: these checks parse the files and hold them against the
settings model (every ``STREAMAL_*`` variable must load into :class:`Settings`) and the
metrics the code registers (see docs/scaling.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from streamal.service.config import Settings, load_settings
from streamal.service.group import GroupMetrics
from streamal.service.metrics import Metrics

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
KUBE = DEPLOY / "kubernetes"
GROUP_DASHBOARD = DEPLOY / "grafana" / "dashboards" / "streamal-group.json"


class _ComposeLoader(yaml.SafeLoader):
    """YAML as Compose reads it: ``!reset`` drops a value, ``!override`` replaces it."""


def _reset(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.SequenceNode):
        return ("!reset", loader.construct_sequence(node))
    return ("!reset", None)


def _override(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.SequenceNode):
        return ("!override", loader.construct_sequence(node))
    return ("!override", loader.construct_mapping(node))  # type: ignore[arg-type]


_ComposeLoader.add_constructor("!reset", _reset)
_ComposeLoader.add_constructor("!override", _override)


def _merge(base: Any, override: Any) -> Any:
    """Compose's merge of an override file: mappings merge, sequences append, tags win."""
    if isinstance(override, tuple) and override[0] == "!reset":
        return None
    if isinstance(override, tuple) and override[0] == "!override":
        return override[1]
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            merged = _merge(base.get(key), value)
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        return out
    if isinstance(base, list) and isinstance(override, list):
        return base + [v for v in override if v not in base]
    return override


@pytest.fixture(scope="module")
def scaled() -> dict[str, Any]:
    """docker-compose.yml with docker-compose.scale.yml applied."""
    base = yaml.load((DEPLOY / "docker-compose.yml").read_text(), _ComposeLoader)
    override = yaml.load((DEPLOY / "docker-compose.scale.yml").read_text(), _ComposeLoader)
    merged: dict[str, Any] = _merge(base, override)
    return merged


def _env(service: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in service.get("environment", {}).items()}


def _load(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a process sees with exactly ``env`` as its ``STREAMAL_*`` environment."""
    import os

    for name in [n for n in os.environ if n.startswith("STREAMAL_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def test_merge_follows_compose_rules() -> None:
    base = {"a": [1], "b": {"c": 1, "d": [2]}, "e": 1}
    override = {"a": [3], "b": {"d": ("!reset", [])}, "e": ("!override", {"f": 1})}
    assert _merge(base, override) == {"a": [1, 3], "b": {"c": 1}, "e": {"f": 1}}


def test_compose_scale_runs_replicas_in_group_mode(
    scaled: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    streamal = scaled["services"]["streamal"]
    replicas = streamal["deploy"]["replicas"]
    assert replicas >= 2
    settings = _load(_env(streamal), monkeypatch)
    assert settings.group.enabled
    # One host port cannot serve N replicas; one named volume must not be shared.
    assert "ports" not in streamal
    assert "volumes" not in streamal
    assert str(settings.checkpoint.dir) == "/var/lib/streamal"
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r'^VOLUME \["/var/lib/streamal"\]', dockerfile, re.M)
    # The final checkpoint writes every owned partition's state too: more than the 30 s
    # of the single-instance stack.
    grace = re.fullmatch(r"(\d+)s", streamal["stop_grace_period"])
    assert grace is not None and int(grace.group(1)) >= 60


def _specs(settings: Settings, argv: list[str]) -> dict[str, Any]:
    """The topics ``streamal topics create`` (``argv``) makes with ``settings``, by name."""
    from streamal.cli.topics_cmd import topic_specs

    assert argv[:2] == ["topics", "create"], argv
    partitions = int(argv[argv.index("--partitions") + 1]) if "--partitions" in argv else None
    replication = int(argv[argv.index("--replication") + 1]) if "--replication" in argv else None
    return {s.name: s for s in topic_specs(settings, partitions, replication, None)}


def test_compose_scale_creates_enough_partitions_and_a_compacted_state_topic(
    scaled: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    services = scaled["services"]
    streamal, topics = services["streamal"], services["topics"]
    # The topics job reads the replicas' settings (the same topics, group mode).
    settings = _load(_env(topics), monkeypatch)
    assert settings.topics == _load(_env(streamal), monkeypatch).topics
    specs = _specs(settings, topics["command"])
    samples = specs[settings.topics.samples]
    assert samples.partitions >= streamal["deploy"]["replicas"]
    state = specs[settings.group.state_topic]
    assert state.configs == {"cleanup.policy": "compact"}
    configured = {v for s in services.values() for k, v in _env(s).items() if "TOPICS__" in k}
    assert configured <= set(specs)
    assert topics["image"] == streamal["image"]


def test_prometheus_discovers_every_replica(scaled: dict[str, Any]) -> None:
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in prom["scrape_configs"] if j["job_name"] == "streamal"]
    assert "static_configs" not in job
    (dns,) = job["dns_sd_configs"]
    assert dns["names"] == ["streamal"] and "streamal" in scaled["services"]
    assert str(dns["port"]) == _env(scaled["services"]["streamal"])["STREAMAL_SERVICE__HTTP_PORT"]


# -- Kubernetes -------------------------------------------------------------------------


def _documents() -> Iterator[dict[str, Any]]:
    for path in sorted(KUBE.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                yield doc


@pytest.fixture(scope="module")
def kube() -> dict[str, dict[str, Any]]:
    """The manifests by kind (one of each)."""
    by_kind: dict[str, dict[str, Any]] = {}
    for doc in _documents():
        assert doc["kind"] not in by_kind, f"two {doc['kind']}s"
        by_kind[doc["kind"]] = doc
    return by_kind


def _container(kube: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (container,) = kube["StatefulSet"]["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _pod_env(kube: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The ``STREAMAL_*`` environment of a pod, secrets and field refs given dummy values."""
    env = dict(kube["ConfigMap"]["data"])
    for var in _container(kube)["env"]:
        value = var.get("value")
        if value is None:
            ref = var["valueFrom"]
            value = "streamal-1" if "fieldRef" in ref else f"secret-{var['name'].lower()}"
        env[var["name"]] = str(value)
    return env


def test_kustomization_lists_every_manifest_but_the_operator_one() -> None:
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    files = {p.name for p in KUBE.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files - {"servicemonitor.yaml"}
    for doc in _documents():
        assert doc["apiVersion"] and doc["kind"]
        if doc["kind"] != "Kustomization":
            assert doc["metadata"]["name"]


def test_every_pod_variable_is_a_real_setting_and_group_mode_is_on(
    kube: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _pod_env(kube)
    assert all(name.startswith("STREAMAL_") for name in env)
    settings = _load(env, monkeypatch)  # extra="forbid": an unknown name fails here
    assert settings.group.enabled
    assert settings.group.instance_id == "streamal-1"
    assert settings.checkpoint.key is not None
    assert settings.kafka.sasl_password is not None
    assert settings.learner.pending == "memory" and settings.learner.window_selector is None


def test_secrets_come_from_a_secret_not_the_configmap(kube: dict[str, dict[str, Any]]) -> None:
    data = kube["ConfigMap"]["data"]
    assert not any(k.endswith(("PASSWORD", "__KEY", "USERNAME", "TOKEN")) for k in data)
    refs = {
        v["name"]: v["valueFrom"]
        for v in _container(kube)["env"]
        if "secretKeyRef" in v.get("valueFrom", {})
    }
    assert {
        "STREAMAL_CHECKPOINT__KEY",
        "STREAMAL_KAFKA__SASL_USERNAME",
        "STREAMAL_KAFKA__SASL_PASSWORD",
    } <= set(refs)
    # Snapshots are always signed: the key is not optional.
    assert not refs["STREAMAL_CHECKPOINT__KEY"]["secretKeyRef"].get("optional", False)
    assert "Secret" not in kube, "ship no secret values"


def test_statefulset_gives_each_pod_its_own_checkpoint_volume(
    kube: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    sts = kube["StatefulSet"]
    spec = sts["spec"]
    assert spec["replicas"] >= 2
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    mounts = {m["name"]: m["mountPath"] for m in _container(kube)["volumeMounts"]}
    settings = _load(_pod_env(kube), monkeypatch)
    assert mounts[claim["metadata"]["name"]] == str(settings.checkpoint.dir)
    # No volume of the pod spec is a shared claim.
    for volume in spec["template"]["spec"].get("volumes", []):
        assert "persistentVolumeClaim" not in volume
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()


def test_headless_service_and_disruption_budget_select_the_pods(
    kube: dict[str, dict[str, Any]],
) -> None:
    sts, service, pdb = kube["StatefulSet"], kube["Service"], kube["PodDisruptionBudget"]
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["clusterIP"] == "None"
    assert sts["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "metrics"


def test_probes_resources_security_and_grace(
    kube: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    pod = kube["StatefulSet"]["spec"]["template"]
    container = _container(kube)
    settings = _load(_pod_env(kube), monkeypatch)
    (port,) = container["ports"]
    assert port["name"] == "metrics" and port["containerPort"] == settings.service.http_port
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] == "/healthz"
    resources = container["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"]
    security = pod["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] != 0
    assert security["fsGroup"] == security["runAsUser"]
    assert f"USER {security['runAsUser']}" in (DEPLOY / "Dockerfile").read_text()
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    # The final checkpoint (flush, every partition's state, snapshot, commit) must fit.
    grace = pod["spec"]["terminationGracePeriodSeconds"]
    assert grace >= 60 and grace > settings.service.flush_timeout
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == settings.service.http_port
    assert container["args"] == ["serve"]


def test_service_monitor_scrapes_the_metrics_port(kube: dict[str, dict[str, Any]]) -> None:
    monitor = kube["ServiceMonitor"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        kube["Service"]["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"


def test_topics_job_creates_partitioned_samples_and_compacted_state(
    kube: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_deploy import assert_real_command
    from typer.testing import CliRunner

    job = kube["Job"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    # The replicas' image, settings (the ConfigMap) and Kafka credentials.
    assert container["image"] == _container(kube)["image"]
    assert container["envFrom"][0]["configMapRef"]["name"] == kube["ConfigMap"]["metadata"]["name"]
    pod_secrets = {v["name"]: v.get("valueFrom") for v in _container(kube)["env"]}
    for var in container.get("env", []):
        assert var["name"].startswith("STREAMAL_KAFKA__"), var["name"]
        assert pod_secrets[var["name"]] == var["valueFrom"], var["name"]
    argv = container["args"]
    assert_real_command(CliRunner(), "topics job", argv)
    settings = _load(dict(kube["ConfigMap"]["data"]), monkeypatch)
    specs = _specs(settings, argv)
    samples = specs[settings.topics.samples]
    assert samples.partitions >= kube["StatefulSet"]["spec"]["replicas"]
    assert specs[settings.group.state_topic].configs == {"cleanup.policy": "compact"}
    assert all(spec.replication == 3 for spec in specs.values())
    for name in ("samples", "labels", "queries", "dead_letters"):
        assert getattr(settings.topics, name) in specs
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]


# -- Grafana ----------------------------------------------------------------------------


def registered_names() -> set[str]:
    """Series names the service exports (single-instance and group mode metrics)."""
    registry = CollectorRegistry()
    GroupMetrics(Metrics(registry))
    names: set[str] = set()
    for family in registry.collect():
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_sum", "_count"),
            "info": ("_info",),
        }.get(family.type, ())
        names.add(family.name)
        names.update(family.name + s for s in suffixes)
    return names


def _exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_group_dashboard_uses_only_registered_metrics() -> None:
    dashboard = json.loads(GROUP_DASHBOARD.read_text())
    exprs = _exprs(dashboard)
    assert exprs
    used = {n for e in exprs for n in re.findall(r"\bstreamal_[a-z0-9_]+", e)}
    assert used <= registered_names(), used - registered_names()
    # What the dashboard is for: sums over instances and partitions of the group metrics.
    assert {
        "streamal_partition_samples_total",
        "streamal_partition_queries_total",
        "streamal_partitions_assigned",
        "streamal_model_version",
        "streamal_catch_up_seconds",
        "streamal_pending_queries",
        "streamal_budget_target_ratio",
    } <= used
    for expr in exprs:
        assert expr.count("(") == expr.count(")"), expr
    assert (
        dashboard["uid"]
        != json.loads((GROUP_DASHBOARD.parent / "streamal.json").read_text())["uid"]
    )


def test_registered_names_fail_on_a_wrong_name() -> None:
    names = registered_names()
    assert "streamal_partition_samples_total" in names
    assert "streamal_partitions_samples_total" not in names
    assert "streamal_batch_duration_seconds_bucket" in names
