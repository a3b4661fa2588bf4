"""Wire messages: what travels on the samples, queries and labels topics.

Messages carry no transport details (topic, partition, offset and headers live in an
envelope at the edge). Each carries a ``schema_version`` so that readers can refuse
what they do not understand.

Examples
--------
>>> s = Sample(id="42", x={"age": 31, "city": "Oslo"}, y="yes")
>>> decode_sample(encode(s)) == s
True
>>> decode_label(b'{"sample_id": "42", "y": 1}').y
1
"""

from __future__ import annotations

import json
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)
from pydantic_core import to_json

from streamal.exceptions import DecodeError

__all__ = [
    "SCHEMA_VERSION",
    "ClassLabel",
    "Features",
    "Label",
    "MAX_MESSAGE_BYTES",
    "MAX_QUERY_META_BYTES",
    "Query",
    "Sample",
    "bound_meta",
    "decode",
    "decode_label",
    "decode_query",
    "decode_sample",
    "encode",
    "json_schemas",
]

#: Version of the wire format written by this release; readers refuse newer versions.
SCHEMA_VERSION = 1
#: Messages above this size are refused as oversized (1 MiB: far above any feature
#: vector a per-sample model handles, and Kafka's default max message size).
MAX_MESSAGE_BYTES = 1_048_576
#: A query carries at most this much of its sample's ``meta`` (16 KiB of JSON: a URL, a
#: text snippet or a few ids for the annotator, while a stream of queries stays light;
#: the service's ``learner.query_meta_bytes`` setting changes it). See :func:`bound_meta`.
MAX_QUERY_META_BYTES = 16_384

Feature = StrictFloat | StrictInt | StrictStr
Features = dict[str, Feature]
ClassLabel = StrictBool | StrictInt | StrictStr


def _check_version(v: int) -> int:
    if v > SCHEMA_VERSION or v < 1:
        raise ValueError(
            f"schema_version {v} is not supported (this release reads 1..{SCHEMA_VERSION})"
        )
    return v


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = SCHEMA_VERSION

    _v = field_validator("schema_version")(_check_version)


class Sample(_Message):
    """An item to score.

    Parameters
    ----------
    id
        Unique sample id; labels refer to it.
    x
        Flat mapping of feature names to numbers or strings.
    ts
        Event time in seconds (Unix epoch or any monotone clock), if known.
    y
        The true label; only recorded streams used for replay carry it.
    meta
        Free-form metadata passed through untouched.
    """

    id: StrictStr
    x: Features
    ts: StrictFloat | StrictInt | None = None
    y: ClassLabel | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    # Features and times must be finite (checked by pydantic-core as it parses).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Query(_Message):
    """A label request on the oracle queue.

    ``purpose`` is ``"learn"`` for samples chosen by the strategy, ``"audit"`` for the
    uniformly random slice used for unbiased accuracy estimates.
    ``propensity`` is the probability with which this sample was queried, when the
    budget manager knows it. ``meta`` is the sample's ``meta`` for the annotator (cut
    by :func:`bound_meta`), and ``classes`` the labels an annotator may choose from
    (the configured classes, else those the model knows so far).
    """

    sample_id: StrictStr
    x: Features
    proba: dict[str, float] = Field(default_factory=dict)
    prediction: ClassLabel | None = None
    score: float
    strategy: str
    model_version: int
    ts: float | None = None
    expires_at: float | None = None
    purpose: Literal["learn", "audit"] = "learn"
    propensity: float | None = None
    meta: dict[str, Any] | None = None
    classes: list[ClassLabel] | None = None


class Label(_Message):
    """An oracle's answer to a query.

    ``x`` is set only on an *unsolicited* label: the features of a sample that was
    never queried (a chargeback, a complaint), learned when the service allows it
    (``learner.unsolicited``) and never charged to the budget.
    """

    sample_id: StrictStr
    y: ClassLabel
    ts: StrictFloat | StrictInt | None = None
    annotator: str | None = None
    x: Features | None = None


M = TypeVar("M", bound=_Message)


def bound_meta(meta: dict[str, Any], max_bytes: int = MAX_QUERY_META_BYTES) -> dict[str, Any]:
    """``meta`` if its JSON fits in ``max_bytes``, else the entries that fit, in order.

    A cut ``meta`` says so: ``"_truncated"`` holds the number of entries left out.

    Examples
    --------
    >>> bound_meta({"url": "https://example.org/1.png"})
    {'url': 'https://example.org/1.png'}
    >>> bound_meta({"url": "https://example.org/1.png", "text": "x" * 100}, max_bytes=64)
    {'url': 'https://example.org/1.png', '_truncated': 1}
    """
    if not meta:
        return meta
    size = len(to_json(meta))
    if size <= max_bytes:
        return meta
    kept: dict[str, Any] = {}
    budget = max_bytes - len(b'{"_truncated":000000}')
    for key, value in meta.items():
        item = len(to_json({key: value}))  # its JSON plus braces (a comma's room)
        if item <= budget:
            kept[key] = value
            budget -= item
    kept["_truncated"] = len(meta) - len(kept)
    return kept


def encode(message: BaseModel) -> bytes:
    """Encode a message as compact UTF-8 JSON."""
    return message.model_dump_json(exclude_none=True).encode()


def _field_of(err: ValidationError) -> str | None:
    first = err.errors()[0]
    loc = [str(p) for p in first["loc"]]
    # Union members add the type name to the location (x.age.float): drop those.
    loc = [p for p in loc if p not in {"float", "int", "str", "bool"}]
    return ".".join(loc) or None


def decode(data: bytes | str, kind: type[M], *, max_bytes: int = MAX_MESSAGE_BYTES) -> M:
    """Decode JSON into ``kind``; raise :class:`DecodeError` naming the field at fault.

    Examples
    --------
    >>> decode(b'{"id": "1", "x": {"a": "NaN"}}', Sample).x
    {'a': 'NaN'}
    >>> decode(b'{"id": "1", "x": {"a": [1]}}', Sample)
    Traceback (most recent call last):
    ...
    streamal.exceptions.DecodeError: field 'x.a': Input should be a valid number
    """
    if len(data) > max_bytes:
        raise DecodeError(f"message of {len(data)} bytes exceeds the limit of {max_bytes}")
    try:
        # The model's validator itself: model_validate_json adds a Python call around it.
        message: M = kind.__pydantic_validator__.validate_json(data)
        return message
    except ValidationError as err:
        first = err.errors()[0]
        msg = first["msg"].removeprefix("Value error, ")
        if first["type"] == "json_invalid":
            raise DecodeError(f"not valid JSON ({first['msg']})") from None
        if first["type"] == "model_type":
            raise DecodeError(f"expected a JSON object for a {kind.__name__}") from None
        raise DecodeError(msg, field=_field_of(err)) from None


_validate_sample = Sample.__pydantic_validator__.validate_json


def decode_sample(data: bytes | str) -> Sample:
    """Decode a :class:`Sample`. NaN is not valid JSON, so ``NaN`` features are refused."""
    if len(data) <= MAX_MESSAGE_BYTES:  # the per-message path: the validator alone
        try:
            sample: Sample = _validate_sample(data)
            return sample
        except ValidationError:
            pass
    return decode(data, Sample)  # raises the DecodeError that says what is wrong


def decode_query(data: bytes | str) -> Query:
    """Decode a :class:`Query`."""
    return decode(data, Query)


def decode_label(data: bytes | str) -> Label:
    """Decode a :class:`Label`."""
    return decode(data, Label)


def json_schemas() -> dict[str, Any]:
    """The JSON Schemas of the three wire messages, keyed by message name."""
    return {m.__name__: m.model_json_schema() for m in (Sample, Query, Label)}


def dumps_schemas() -> str:
    """The JSON Schemas as pretty-printed JSON text."""
    return json.dumps(json_schemas(), indent=2)
