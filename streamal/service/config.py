"""Settings of the service: defaults < TOML file < ``STREAMAL_*`` environment < CLI flags.

Sections mirror the parts of the service: ``kafka`` (connection, security, group),
``topics``, ``learner`` (what the model is: it shapes the snapshot), ``checkpoint`` and
``service`` (loop timings and the HTTP port). Environment variables name the section and
the key, separated by ``__``: ``STREAMAL_KAFKA__BOOTSTRAP_SERVERS=broker:9092``,
``STREAMAL_LEARNER__RATE=0.05``. Passwords are :class:`~pydantic.SecretStr` and print
as ``**********``.

Examples
--------
>>> settings = load_settings(overrides={"learner": {"rate": 0.05}})
>>> settings.learner.rate, settings.topics.samples
(0.05, 'streamal.samples')
>>> secret = load_settings(overrides={"kafka": {"sasl_password": "hunter2"}})
>>> secret.masked()["kafka"]["sasl_password"], secret.kafka.sasl_password.get_secret_value()
('**********', 'hunter2')
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from streamal.defaults import (
    DEFAULT_BUDGET,
    DEFAULT_MODEL,
    DEFAULT_RATE,
    DEFAULT_SEED,
    DEFAULT_STRATEGY,
)
from streamal.exceptions import ConfigError
from streamal.messages import MAX_QUERY_META_BYTES

__all__ = [
    "CheckpointSettings",
    "KafkaSettings",
    "LabellingSettings",
    "LearnerSettings",
    "RuntimeSettings",
    "Settings",
    "TopicSettings",
    "load_settings",
]

_TOML_FILE: ContextVar[Path | None] = ContextVar("streamal_toml_file", default=None)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaSettings(_Section):
    """Connection to the brokers; security settings are passed to kafka-python as they are."""

    bootstrap_servers: str = "localhost:9092"
    group_id: str = "streamal"
    client_id: str = "streamal"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = Field(default=None, description="PLAIN, SCRAM-SHA-256/512, ...")
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_password: SecretStr | None = None
    ssl_check_hostname: bool = True
    # A restarted service joins its group in about half the session timeout; 10 s is
    # Kafka's lower default bound and keeps restarts quick.
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 1_000
    # A batch plus a checkpoint must fit; 5 minutes is Kafka's default.
    max_poll_interval_ms: int = 300_000
    request_timeout_ms: int = 30_000
    # How long a send may block for metadata when the broker is away.
    max_block_ms: int = 10_000
    # How long the broker may hold a fetch that finds no data. The service reads two
    # topics, and kafka-python keeps one fetch in flight per broker: while the samples
    # partition is busy and the labels partition idle, a fetch for labels alone is held
    # this long and the next samples fetch waits behind it (Kafka's 500 ms default cut
    # the throughput by up to 3x on a local broker; 100 ms still stalled polls). 25 ms
    # also bounds the decision latency of a sample that arrives while the consumer is
    # idle, at the price of 40 empty fetches a second then.
    fetch_max_wait_ms: int = 25
    consumer: dict[str, Any] = Field(default_factory=dict, description="extra KafkaConsumer args")
    producer: dict[str, Any] = Field(default_factory=dict, description="extra KafkaProducer args")


class TopicSettings(_Section):
    """Topic names; leave ``predictions`` unset to publish no predictions."""

    samples: str = "streamal.samples"
    labels: str = "streamal.labels"
    queries: str = "streamal.queries"
    dead_letters: str = "streamal.dead-letters"
    predictions: str | None = None


class LearnerSettings(_Section):
    """The active learner (see ``streamal replay --help`` for the component names)."""

    model: str = DEFAULT_MODEL
    strategy: str = DEFAULT_STRATEGY
    budget: str = DEFAULT_BUDGET
    rate: float = DEFAULT_RATE
    seed: int = DEFAULT_SEED
    ttl: float | None = Field(
        default=None, description="query lifetime, stream seconds or arrivals"
    )
    pending: Literal["memory", "sqlite"] = "memory"
    max_pending: int = 100_000
    window_selector: str | None = Field(
        default=None, description="window (batch) mode: topk, coreset, diverse, batchbald"
    )
    window_size: int = 100
    window_seconds: float | None = None
    audit: float = Field(
        default=0.0, ge=0.0, le=1.0, description="share of the budget for the audit slice"
    )
    classes: list[StrictBool | StrictInt | StrictStr] | None = Field(
        default=None,
        description="the labels the stream may carry: offered to annotators; a label "
        "outside them is a dead letter (unset: the classes the model knows so far)",
    )
    query_meta_bytes: int = Field(
        default=MAX_QUERY_META_BYTES, ge=0, description="a query carries this much of meta"
    )
    unsolicited: bool = Field(
        default=False,
        description="learn labels that carry x for samples never queried (not charged "
        "to the budget)",
    )


class CheckpointSettings(_Section):
    """Where snapshots go and how often."""

    dir: Path = Path("streamal-state")
    keep: int = 3
    every: int = Field(default=50_000, description="messages between checkpoints")
    interval: float = Field(default=1.0, description="seconds between checkpoints")


class RuntimeSettings(_Section):
    """Loop timings (seconds) and the HTTP endpoint (``http_port=0`` picks a free port)."""

    http_host: str = "0.0.0.0"
    http_port: int | None = 9108
    max_batch: int = 500
    poll_timeout: float = 0.5
    broker_timeout: float = 60.0
    health_interval: float = 5.0
    flush_timeout: float = 10.0
    stall_timeout: float = 120.0
    tune_gc: bool = Field(
        default=True,
        description="freeze start-up objects out of the garbage collector's reach and "
        "collect the young generation less often (false: Python's defaults)",
    )
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one JSON object per line"
    )


class LabellingSettings(_Section):
    """Labels from people on the HTTP port: ``POST /labels`` and the ``/label`` page."""

    enabled: bool = Field(
        default=True, description="serve POST /labels and the /label page on the HTTP port"
    )
    token: SecretStr | None = Field(
        default=None, description="bearer token that POST /labels and the page's data need"
    )
    # 1 MiB: a list of a few thousand labels, and Kafka's default message size.
    max_request_bytes: int = Field(default=1_048_576, ge=1, description="largest POST body")
    max_labels: int = Field(default=1000, ge=1, description="most labels in one POST")


class Settings(BaseSettings):
    """All settings of ``streamal serve`` (frozen once loaded)."""

    model_config = SettingsConfigDict(
        env_prefix="STREAMAL_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    learner: LearnerSettings = LearnerSettings()
    checkpoint: CheckpointSettings = CheckpointSettings()
    service: RuntimeSettings = RuntimeSettings()
    labelling: LabellingSettings = LabellingSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources = [init_settings, env_settings]
        toml = _TOML_FILE.get()
        if toml is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)

    def masked(self) -> dict[str, Any]:
        """The settings as plain data, secrets replaced by ``**********``."""
        data: dict[str, Any] = json.loads(self.model_dump_json())
        return data

    def learner_identity(self) -> dict[str, Any]:
        """What a snapshot depends on: the learner settings and the input topics."""
        return {
            # audit=0 is left out so that older snapshots keep their hash.
            "learner": self.learner.model_dump(
                mode="json",
                # What annotators are offered and which labels are taken can change
                # without a new model (the model's own classes stay what it learned).
                exclude={"max_pending", "classes", "query_meta_bytes", "unsolicited"}
                | ({"audit"} if not self.learner.audit else set()),
            ),
            "topics": {"samples": self.topics.samples, "labels": self.topics.labels},
        }


@contextmanager
def _toml(path: Path | None) -> Iterator[None]:
    token = _TOML_FILE.set(path)
    try:
        yield
    finally:
        _TOML_FILE.reset(token)


def load_settings(
    config_file: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Settings from defaults, ``config_file`` (TOML), the environment and ``overrides``.

    Raises
    ------
    ConfigError
        If the file is missing or a value is invalid, naming the setting.
    """
    path = None if config_file is None else Path(config_file)
    if path is not None and not path.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        with _toml(path):
            return Settings(**dict(overrides or {}))
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"bad setting {where!r}: {first['msg']}") from None
    except ValueError as err:  # e.g. a malformed TOML file or environment value
        raise ConfigError(f"cannot read the settings: {err}") from None
