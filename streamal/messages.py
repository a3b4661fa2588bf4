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

from streamal.exceptions import DecodeError

__all__ = [
    "SCHEMA_VERSION",
    "ClassLabel",
    "Features",
    "Label",
    "MAX_MESSAGE_BYTES",
    "Query",
    "Sample",
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

Feature = StrictFloat | StrictInt | StrictStr
Features = dict[str, Feature]
#: What a sample's ``x`` may hold on the wire: features, and also booleans (read as
#: 1.0/0.0) and ``null`` (a missing value: the key is dropped, river's convention).
WireFeatures = dict[str, StrictFloat | StrictInt | StrictStr | StrictBool | None]


def _clean_features(x: dict[str, Any]) -> dict[str, Any]:
    """Drop ``None`` values (missing) and turn booleans into 1.0/0.0; ``x`` itself if neither.

    Examples
    --------
    >>> _clean_features({"a": 1, "b": None, "c": True, "d": "x"})
    {'a': 1, 'c': 1.0, 'd': 'x'}
    """
    for value in x.values():
        if value is None or value is True or value is False:
            break
    else:
        return x
    return {k: float(v) if isinstance(v, bool) else v for k, v in x.items() if v is not None}
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
        Flat mapping of feature names to numbers or strings. On the wire (JSON read by
        :func:`decode_sample`), a ``null`` value is a missing feature and its key is
        dropped (river's convention: an absent key), and booleans become numbers
        (``true`` → 1.0, ``false`` → 0.0).
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


class _WireSample(Sample):
    # A Sample as JSON may carry it: null and boolean features allowed (its JSON Schema
    # is the one `streamal schema` prints for Sample, with Sample's description).
    __doc__ = Sample.__doc__

    model_config = ConfigDict(title="Sample")

    x: WireFeatures  # type: ignore[assignment]

    _x = field_validator("x")(_clean_features)


class Query(_Message):
    """A label request on the oracle queue.

    ``purpose`` is ``"learn"`` for samples chosen by the strategy, ``"audit"`` for the
    uniformly random slice used for unbiased accuracy estimates.
    ``propensity`` is the probability with which this sample was queried, when the
    budget manager knows it.
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


class Label(_Message):
    """An oracle's answer to a query."""

    sample_id: StrictStr
    y: ClassLabel
    ts: StrictFloat | StrictInt | None = None
    annotator: str | None = None


M = TypeVar("M", bound=_Message)


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
_validate_wire_sample = _WireSample.__pydantic_validator__.validate_json
_sample_from_fields = Sample.__pydantic_validator__.validate_python


def decode_sample(data: bytes | str) -> Sample:
    """Decode a :class:`Sample`. NaN is not valid JSON, so ``NaN`` features are refused.

    ``null`` features are dropped and booleans read as numbers (see :class:`Sample`).

    Examples
    --------
    >>> decode_sample(b'{"id": "1", "x": {"a": null, "b": true, "c": 2}}').x
    {'b': 1.0, 'c': 2}
    """
    if len(data) <= MAX_MESSAGE_BYTES:  # the per-message path: the validator alone
        try:
            sample: Sample = _validate_sample(data)
            return sample
        except ValidationError:
            pass
        # Not a plain sample: one with null or boolean features (cleaned by the wire
        # model, then a Sample), or a bad message.
        try:
            sample = _sample_from_fields(_validate_wire_sample(data).__dict__)
            return sample
        except ValidationError:
            pass
    wire = decode(data, _WireSample)  # raises the DecodeError that says what is wrong
    return Sample(**wire.__dict__)


def decode_query(data: bytes | str) -> Query:
    """Decode a :class:`Query`."""
    return decode(data, Query)


def decode_label(data: bytes | str) -> Label:
    """Decode a :class:`Label`."""
    return decode(data, Label)


def json_schemas() -> dict[str, Any]:
    """The JSON Schemas of the three wire messages, keyed by message name."""
    messages: dict[str, type[BaseModel]] = {"Sample": _WireSample, "Query": Query, "Label": Label}
    return {name: m.model_json_schema() for name, m in messages.items()}


def dumps_schemas() -> str:
    """The JSON Schemas as pretty-printed JSON text."""
    return json.dumps(json_schemas(), indent=2)
