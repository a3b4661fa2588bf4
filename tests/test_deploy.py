"""deploy/: the Compose file and Dockerfile agree with the code (no Docker engine here).

These checks parse the files and hold them against the settings model and the CLI; they
do not build or run the containers (see docs/deploy.md).
"""

from __future__ import annotations

import base64
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from streamal.cli.app import app
from streamal.service.config import Settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return data


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "write environment as a mapping"
    return {str(k): str(v) for k, v in env.items()}


def test_the_stack_has_kafka_kraft_the_service_an_annotator_and_monitoring(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert {"kafka", "streamal", "oracle", "prometheus", "grafana"} <= set(services)
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = _env(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "ZOOKEEPER" not in " ".join(env)
    # KRaft wants a base64url-encoded 16-byte UUID as the cluster id.
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_every_streamal_variable_is_a_real_setting(compose: dict[str, Any]) -> None:
    names = {k for s in compose["services"].values() for k in _env(s) if k.startswith("STREAMAL_")}
    names |= set(re.findall(r"ENV (STREAMAL_\w+)=", (DEPLOY / "Dockerfile").read_text()))
    assert names
    for name in names:
        section, _, key = name.removeprefix("STREAMAL_").lower().partition("__")
        field = Settings.model_fields.get(section)
        assert field is not None, f"{name}: no settings section {section!r}"
        assert key in field.annotation.model_fields, f"{name}: no setting {section}.{key}"  # type: ignore[union-attr]


def _specs(env: dict[str, str], argv: list[str], monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The topics ``streamal topics create`` (``argv``) makes with exactly ``env``."""
    import os

    from streamal.cli.topics_cmd import topic_specs
    from streamal.service.config import load_settings

    for name in [n for n in os.environ if n.startswith("STREAMAL_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    partitions = int(argv[argv.index("--partitions") + 1]) if "--partitions" in argv else None
    return topic_specs(load_settings(), partitions, None, None)


def test_the_topics_job_creates_every_configured_topic(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    services = compose["services"]
    topics = services["topics"]
    # The service's own image and command, with the service's topic settings.
    assert topics["image"] == services["streamal"]["image"]
    assert topics["command"][:2] == ["topics", "create"]
    created = {spec.name for spec in _specs(_env(topics), topics["command"], monkeypatch)}
    configured = {
        v
        for s in services.values()
        for k, v in _env(s).items()
        if k.startswith("STREAMAL_TOPICS__")
    }
    assert configured and configured <= created
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
    depends = services["streamal"]["depends_on"]["topics"]["condition"]
    assert depends == "service_completed_successfully"


def test_container_commands_are_real_commands_and_options(compose: dict[str, Any]) -> None:
    runner = CliRunner()
    commands = {
        name: s["command"]
        for name, s in compose["services"].items()
        if s.get("image") == "streamal:latest"
    }
    assert {"streamal", "oracle", "topics"} <= set(commands)
    for name, command in commands.items():
        argv = command if isinstance(command, list) else shlex.split(command)
        assert_real_command(runner, name, argv)
    # The oracle must know the labels of the very stream the producer sends.
    assert commands["oracle"][1] == commands["producer"][1]


def assert_real_command(runner: CliRunner, name: str, argv: list[str]) -> None:
    """``streamal <argv>`` names a real command (or subcommand) and real options."""
    path = argv[:1]
    helped = runner.invoke(app, [*path, "--help"], terminal_width=200)
    assert helped.exit_code == 0, f"{name}: `streamal {argv[0]}` does not exist"
    if "Commands" in helped.output and len(argv) > 1 and not argv[1].startswith("-"):
        path = argv[:2]  # a command group: `streamal topics create`
        helped = runner.invoke(app, [*path, "--help"], terminal_width=200)
        assert helped.exit_code == 0, f"{name}: `streamal {' '.join(path)}` does not exist"
    for option in (a for a in argv[len(path) :] if a.startswith("--")):
        assert option in helped.output, f"{name}: `streamal {' '.join(path)}` has no {option}"


def test_prometheus_scrapes_the_service_port_and_grafana_reads_prometheus(
    compose: dict[str, Any],
) -> None:
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prom["scrape_configs"]}
    # Every replica of the Compose service, found through Docker's DNS (one or N).
    (dns,) = jobs["streamal"]["dns_sd_configs"]
    port = _env(compose["services"]["streamal"])["STREAMAL_SERVICE__HTTP_PORT"]
    assert dns["names"] == ["streamal"] and dns["type"] == "A"
    assert str(dns["port"]) == port
    assert f"EXPOSE {port}" in (DEPLOY / "Dockerfile").read_text()
    mounts = compose["services"]["prometheus"]["volumes"]
    assert any(m.startswith("./prometheus/prometheus.yml:") for m in mounts)
    source = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
    datasource = yaml.safe_load(source.read_text())["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"


def test_dockerfile_is_multi_stage_slim_and_non_root() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(stages) == 2 and all("slim" in s for s in stages)
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert re.search(r"^HEALTHCHECK .*?\"streamal\.service\.healthcheck\"\]", text, re.M | re.S)
    root = DEPLOY.parent
    for copied in re.findall(r"^COPY (?!--)(.+) \S+$", text, re.M):
        for path in copied.split():
            assert (root / path).exists(), f"Dockerfile copies missing {path}"


def test_the_health_check_probes_serve_only(compose: dict[str, Any]) -> None:
    from streamal.service.healthcheck import http_port

    entrypoint = re.findall(r'^ENTRYPOINT \["(\S+)"\]', (DEPLOY / "Dockerfile").read_text(), re.M)
    assert entrypoint == ["streamal"]
    ports = {}
    for name, service in compose["services"].items():
        if service.get("image") != "streamal:latest":
            continue
        args = ["/usr/local/bin/python", "/usr/local/bin/streamal", *service["command"]]
        ports[name] = http_port(args, {k: str(v) for k, v in _env(service).items()})
    # The producer, the oracle and the topics job serve no HTTP: an HTTP probe would mark
    # them unhealthy.
    assert ports == {"streamal": 9108, "producer": None, "oracle": None, "topics": None}


def test_the_health_check_asks_healthz_of_serve() -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from streamal.service.healthcheck import main

    status = {"code": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(status["code"] if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = str(server.server_address[1])
        serve = ["streamal", "serve"]
        assert main(serve, {"STREAMAL_SERVICE__HTTP_PORT": port}) == 0
        status["code"] = 503
        assert main(serve, {"STREAMAL_SERVICE__HTTP_PORT": port}) == 1
        assert main(["streamal", "oracle", "synth:SEA"], {}) == 0
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert main(serve, {"STREAMAL_SERVICE__HTTP_PORT": port}) == 1  # nobody listens
