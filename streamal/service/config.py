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
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
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
from streamal.redact import redact, redact_options

if TYPE_CHECKING:
    from streamal.core.spec import LearnerSpec
from streamal.messages import MAX_QUERY_META_BYTES

__all__ = [
    "CheckpointSettings",
    "GroupSettings",
    "KafkaSettings",
    "LabellingSettings",
    "LearnerSettings",
    "LimitSettings",
    "RuntimeSettings",
    "Settings",
    "TopicSettings",
    "load_settings",
]

_TOML_FILE: ContextVar[Path | None] = ContextVar("streamal_toml_file", default=None)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: kafka-python arguments that typed settings (or the service itself) already set.
_TYPED_KAFKA_KEYS = {
    **{
        name: f"kafka.{name}"
        for name in (
            "bootstrap_servers",
            "group_id",
            "client_id",
            "security_protocol",
            "sasl_mechanism",
            "ssl_cafile",
            "ssl_certfile",
            "ssl_keyfile",
            "ssl_password",
            "ssl_check_hostname",
            "session_timeout_ms",
            "heartbeat_interval_ms",
            "max_poll_interval_ms",
            "request_timeout_ms",
            "max_block_ms",
            "fetch_max_wait_ms",
        )
    },
    "sasl_plain_username": "kafka.sasl_username",
    "sasl_plain_password": "kafka.sasl_password",
    "bootstrap_timeout_ms": "service.broker_timeout",
    "enable_auto_commit": "(none: the service commits offsets after each checkpoint)",
}


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

    @model_validator(mode="after")
    def _no_shadowed_settings(self) -> KafkaSettings:
        for section in ("consumer", "producer"):
            for key in getattr(self, section):
                typed = _TYPED_KAFKA_KEYS.get(key)
                if typed is not None:
                    raise ValueError(
                        f"kafka.{section}.{key} duplicates the setting {typed}; set that instead"
                    )
        return self


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
        description="the labels the stream may carry; other labels become dead letters",
    )
    warm_start: str | None = Field(
        default=None,
        description="labelled JSONL/CSV file learned once before the first decision",
    )
    warm_start_topic: str | None = Field(
        default=None,
        description="Kafka topic of labelled samples, read once from its beginning to its "
        "end at start-up and learned before the first decision",
    )
    warm_start_first: int | None = Field(
        default=None, ge=0, description="learn only the first N warm-start samples"
    )
    warm_start_charge: bool = Field(
        default=False, description="charge the warm-start labels to the label budget"
    )
    query_meta_bytes: int = Field(
        default=MAX_QUERY_META_BYTES, ge=0, description="a query carries this much of meta"
    )
    unsolicited: bool = Field(
        default=False,
        description="learn labels that carry x for samples never queried (not charged "
        "to the budget)",
    )

    def to_spec(self, pending_file: str | None = None) -> LearnerSpec:
        """The :class:`~streamal.core.spec.LearnerSpec` of these settings.

        ``pending_file`` is where the SQLite pending store lives (``pending="sqlite"``).
        """
        from streamal.core.spec import LearnerSpec, WindowSpec  # settings load without river

        window = None
        if self.window_selector is not None:
            window = WindowSpec(self.window_selector, self.window_size, self.window_seconds)
        return LearnerSpec(
            model=self.model,
            strategy=self.strategy,
            budget=self.budget,
            rate=self.rate,
            seed=self.seed,
            ttl=self.ttl,
            audit=self.audit,
            pending_file=pending_file if self.pending == "sqlite" else None,
            max_pending=self.max_pending,
            window=window,
        )


_WARM_START = ("warm_start", "warm_start_topic", "warm_start_first", "warm_start_charge")


class LimitSettings(_Section):
    """Bounds on each message; one beyond them is a dead letter (see docs/security.md)."""

    max_id_length: int = Field(default=512, ge=1, description="characters in an id")
    max_features: int = Field(default=10_000, ge=1, description="features in one sample")
    max_abs_feature: float = Field(
        default=1e100, gt=0, description="largest magnitude of a numeric feature"
    )
    max_meta_bytes: int = Field(default=65_536, ge=2, description="size of meta as JSON")
    max_depth: int = Field(default=32, ge=1, description="nesting of lists/objects in meta")
    max_abs_ts: float = Field(default=1e13, gt=0, description="largest magnitude of a ts")


class CheckpointSettings(_Section):
    """Where snapshots go and how often."""

    dir: Path = Path("streamal-state")
    keep: int = 3
    every: int = Field(default=50_000, description="messages between checkpoints")
    interval: float = Field(default=1.0, description="seconds between checkpoints")
    key: SecretStr | None = Field(
        default=None,
        description="sign snapshots with HMAC-SHA256 under this key and refuse unsigned ones",
    )


class RuntimeSettings(_Section):
    """Loop timings (seconds) and the HTTP endpoint (``http_port=0`` picks a free port)."""

    http_host: str = "0.0.0.0"
    http_port: int | None = 9108
    http_timeout: float = Field(
        default=5.0, gt=0, description="seconds a silent HTTP connection is kept"
    )
    http_max_connections: int = Field(
        default=16, ge=1, description="HTTP connections served at once; more are closed"
    )
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


class GroupSettings(_Section):
    """Scale-out (group) mode: several instances share the samples partitions.

    Off by default (one instance serves the whole stream). When on, every instance of
    one ``kafka.group_id`` decides for the samples partitions it owns, with a budget
    manager per partition whose state moves through ``state_topic``; every instance
    reads all queries and labels and learns every label (docs/service.md, "Group mode").
    """

    enabled: bool = Field(
        default=False, description="scale-out mode: instances share the samples partitions"
    )
    instance_id: str | None = Field(
        default=None, description="this instance's name in logs and metrics (the hostname)"
    )
    state_topic: str = Field(
        default="streamal.state",
        description="compacted topic of each samples partition's budget state, keyed by partition",
    )
    catch_up_timeout: float = Field(
        default=60.0,
        ge=0.0,
        description="seconds a (re)started instance may spend reading the queries and "
        "labels it missed before it decides",
    )


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
    limits: LimitSettings = LimitSettings()
    labelling: LabellingSettings = LabellingSettings()
    group: GroupSettings = GroupSettings()

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
        """The settings as plain data, secrets replaced by ``**********``.

        Besides the typed secrets, secret-looking keys of ``kafka.consumer`` and
        ``kafka.producer`` and the password of a ``user:password@`` bootstrap address
        are masked.
        """
        data: dict[str, Any] = json.loads(self.model_dump_json())
        kafka = data["kafka"]
        kafka["bootstrap_servers"] = redact(kafka["bootstrap_servers"])
        for name in ("consumer", "producer"):
            kafka[name] = redact_options(kafka[name])
        return data

    def learner_identity(self) -> dict[str, Any]:
        """What a snapshot depends on: the learner settings and the input topics."""
        # audit=0 is left out so that older snapshots keep their hash. The warm start is
        # data learned once (the snapshot records it), and the classes offered and taken,
        # the query meta size and unsolicited labels are the handler's label policy:
        # none of them is the learner's shape.
        unset = {"audit"} if not self.learner.audit else set()
        return {
            "learner": self.learner.model_dump(
                mode="json",
                exclude={
                    "max_pending",
                    "classes",
                    "query_meta_bytes",
                    "unsolicited",
                    *_WARM_START,
                }
                | unset,
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
        msg = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"bad setting {where!r}: {msg}") from None
    except ValueError as err:  # e.g. a malformed TOML file or environment value
        raise ConfigError(f"cannot read the settings: {err}") from None
