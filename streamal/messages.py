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
import math
from collections.abc import Mapping
from dataclasses import dataclass
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

from streamal.exceptions import DecodeError, MessageRejected

__all__ = [
    "SCHEMA_VERSION",
    "check_label",
    "check_sample",
    "ClassLabel",
    "Features",
    "Label",
    "Limits",
    "MAX_MESSAGE_BYTES",
    "Purpose",
    "MAX_QUERY_META_BYTES",
    "Query",
    "Sample",
    "bound_meta",
    "offered_classes",
    "decode",
    "decode_label",
    "decode_query",
    "decode_sample",
    "encode",
    "json_schemas",
    "query_bytes",
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

#: The decoder's text for JSON nested deeper than its parser follows (200 levels).
NESTED_TOO_DEEPLY = "nested too deeply (lists and objects more than 200 levels deep)"

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

    schema_version: StrictInt = SCHEMA_VERSION

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


#: Why a query was asked: chosen by the strategy, or drawn for the audit slice.
Purpose = Literal["learn", "audit"]


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
    purpose: Purpose = "learn"
    propensity: float | None = None
    meta: dict[str, Any] | None = None
    classes: list[ClassLabel] | None = None


def query_bytes(
    sample: Sample,
    proba: Mapping[Any, float],
    prediction: Any,
    score: float,
    strategy: str,
    model_version: int,
    expires_at: float | None,
    purpose: Purpose,
    propensity: float | None,
    *,
    meta: dict[str, Any] | None = None,
    classes: list[Any] | None = None,
) -> bytes:
    """The bytes :func:`encode` gives for this :class:`Query`, without building the model.

    The service's per-query path (a third of the time of validating a ``Query``): the
    sample was validated when it was decoded and the rest comes from the learner. It
    follows the fields of :class:`Query` (the tests check that both agree).

    Examples
    --------
    >>> s = Sample(id="1", x={"a": 1.0}, ts=5.0)
    >>> fast = query_bytes(s, {True: 0.8}, True, 0.4, "Entropy", 3, None, "learn", None)
    >>> fast == encode(Query(sample_id="1", x={"a": 1.0}, proba={"True": 0.8},
    ...                      prediction=True, score=0.4, strategy="Entropy",
    ...                      model_version=3, ts=5.0))
    True
    """
    fields: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "sample_id": sample.id,
        "x": sample.x,
        "proba": {str(k): float(v) for k, v in proba.items()},
    }
    if prediction is not None:
        fields["prediction"] = prediction
    fields["score"] = float(score)
    fields["strategy"] = strategy
    fields["model_version"] = model_version
    if sample.ts is not None:
        fields["ts"] = float(sample.ts)
    if expires_at is not None:
        fields["expires_at"] = float(expires_at)
    fields["purpose"] = purpose
    if propensity is not None:
        fields["propensity"] = float(propensity)
    if meta:
        fields["meta"] = meta
    if classes is not None:
        fields["classes"] = classes
    return to_json(fields)


def offered_classes(proba: Mapping[Any, float], classes: list[Any] | None) -> list[Any] | None:
    """The classes a query offers: ``classes``, else the model's (wire-typed) classes.

    Examples
    --------
    >>> offered_classes({True: 0.7, False: 0.3}, None), offered_classes({}, ["a", "b"])
    ([True, False], ['a', 'b'])
    """
    if classes is None:
        classes = [c for c in proba if type(c) in (bool, int, str)]
    return classes or None


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

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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
            if "recursion limit" in first["msg"]:
                raise DecodeError(NESTED_TOO_DEEPLY) from None
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


@dataclass(frozen=True)
class Limits:
    """Bounds on one decoded message; a message beyond them is a dead letter.

    The defaults are far above what a per-sample model needs, and low enough that one
    message cannot blow up memory, a snapshot, the stream clock or a model's arithmetic.

    Parameters
    ----------
    max_id_length
        Characters in a sample id (and a label's ``sample_id`` and ``annotator``).
        Pending ids are kept in every snapshot.
    max_features
        Features in one sample.
    max_abs_feature
        Largest magnitude of a numeric feature (beyond it, running variances overflow).
    max_meta_bytes
        Size of a sample's ``meta`` as compact JSON.
    max_depth
        Nesting of lists and objects inside ``meta`` (1: a flat object).
    max_abs_ts
        Largest magnitude of a ``ts`` (``1e13`` lets epoch seconds and epoch
        milliseconds through and refuses absurd clocks that would expire every query).

    Examples
    --------
    >>> check_sample(Sample(id="a", x={"f": 1e200}), Limits())
    Traceback (most recent call last):
    ...
    streamal.exceptions.MessageRejected: feature 'f' = 1e+200 is beyond +-1e+100
    """

    max_id_length: int = 512
    max_features: int = 10_000
    max_abs_feature: float = 1e100
    max_meta_bytes: int = 65_536
    max_depth: int = 32
    max_abs_ts: float = 1e13


def _check_meta(meta: dict[str, Any], limits: Limits) -> None:
    # An explicit stack: a deep structure cannot exhaust the interpreter's.
    stack: list[tuple[Any, int]] = [(meta, 1)]
    max_depth = limits.max_depth
    while stack:
        value, depth = stack.pop()
        if depth > max_depth:
            raise MessageRejected("too_deep", f"meta nested deeper than {max_depth} levels")
        children = value.values() if isinstance(value, dict) else value
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
            elif isinstance(child, float) and not math.isfinite(child):
                raise MessageRejected("non_finite", f"meta holds the number {child}")
    size = len(json.dumps(meta, separators=(",", ":")))
    if size > limits.max_meta_bytes:
        raise MessageRejected(
            "limit_exceeded", f"meta of {size} bytes (limit {limits.max_meta_bytes})"
        )


def _check_ts(ts: float | None, limits: Limits) -> None:
    if ts is not None and not -limits.max_abs_ts <= ts <= limits.max_abs_ts:
        raise MessageRejected("out_of_range", f"ts {ts:g} is beyond +-{limits.max_abs_ts:g}")


def check_sample(sample: Sample, limits: Limits) -> None:
    """Raise :class:`~streamal.exceptions.MessageRejected` if ``sample`` breaks ``limits``.

    Features of other types than numbers and strings (a later schema's missing values,
    for instance) are left to the model.
    """
    if len(sample.id) > limits.max_id_length:
        raise MessageRejected(
            "limit_exceeded",
            f"id of {len(sample.id)} characters (limit {limits.max_id_length})",
        )
    x = sample.x
    if len(x) > limits.max_features:
        raise MessageRejected("limit_exceeded", f"{len(x)} features (limit {limits.max_features})")
    top = limits.max_abs_feature
    low = -top
    values: Any = x.values()  # checked by class below (faster than isinstance)
    for v in values:  # the per-sample path: names are looked up only on failure
        kind = v.__class__
        if (kind is float or kind is int) and (v > top or v < low):
            _out_of_range(x, low, top)
    ts = sample.ts
    if ts is not None and not -limits.max_abs_ts <= ts <= limits.max_abs_ts:
        _check_ts(ts, limits)
    if sample.meta:
        _check_meta(sample.meta, limits)


def _out_of_range(x: dict[str, Any], low: float, top: float) -> None:
    for name, v in x.items():
        if isinstance(v, float | int) and not isinstance(v, bool) and not low <= v <= top:
            shown = f"{v:g}" if isinstance(v, float) else f"an integer of {len(str(v))} digits"
            raise MessageRejected("out_of_range", f"feature {name!r} = {shown} is beyond +-{top:g}")


def check_label(label: Label, limits: Limits) -> None:
    """Raise :class:`~streamal.exceptions.MessageRejected` if ``label`` breaks ``limits``."""
    for name, text in (("sample_id", label.sample_id), ("annotator", label.annotator or "")):
        if len(text) > limits.max_id_length:
            raise MessageRejected(
                "limit_exceeded",
                f"{name} of {len(text)} characters (limit {limits.max_id_length})",
            )
    _check_ts(label.ts, limits)


def json_schemas() -> dict[str, Any]:
    """The JSON Schemas of the three wire messages, keyed by message name."""
    messages: dict[str, type[BaseModel]] = {"Sample": _WireSample, "Query": Query, "Label": Label}
    return {name: m.model_json_schema() for name, m in messages.items()}


def dumps_schemas() -> str:
    """The JSON Schemas as pretty-printed JSON text."""
    return json.dumps(json_schemas(), indent=2)
