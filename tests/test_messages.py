"""Wire messages: round trips, clear errors naming the field, schemas."""

from __future__ import annotations

import json

import pytest

from streamal.exceptions import DecodeError
from streamal.messages import (
    MAX_MESSAGE_BYTES,
    Label,
    Query,
    Sample,
    decode_label,
    decode_query,
    decode_sample,
    encode,
    json_schemas,
)


@pytest.mark.parametrize(
    "message",
    [
        Sample(id="a", x={"n": 1.5, "i": 3, "cat": "red"}, ts=12.5, y="spam", meta={"k": [1]}),
        Sample(id="b", x={}, y=7),
        Sample(id="c", x={"f": 0.0}, y=True),
        Query(
            sample_id="a",
            x={"n": 1.0},
            proba={"x": 0.5},
            score=0.9,
            strategy="entropy",
            model_version=3,
            ts=1.0,
            expires_at=5.0,
            purpose="audit",
            propensity=0.1,
        ),
        Label(sample_id="a", y="ham", ts=3.0, annotator="ann"),
    ],
)
def test_round_trip(message: Sample | Query | Label) -> None:
    decoder = {Sample: decode_sample, Query: decode_query, Label: decode_label}[type(message)]
    assert decoder(encode(message)) == message


@pytest.mark.parametrize(
    ("raw", "field", "needle"),
    [
        (b'{"id": "1", "x": {"a": NaN}}', "x.a", "finite"),
        (b'{"id": "1", "x": {"a": Infinity}}', "x.a", "finite"),
        (b'{"id": "1", "x": {}, "ts": -Infinity}', "ts", "finite"),
        (b'{"id": 1, "x": {}}', "id", "string"),
        (b'{"id": "1", "x": {"a": [1, 2]}}', "x.a", "number"),
        (b'{"id": "1", "x": {}, "surprise": 1}', "surprise", "Extra"),
        (b'{"id": "1", "x": {}, "schema_version": 99}', "schema_version", "not supported"),
        (b'{"x": {}}', "id", "required"),
        (b'{"id": "1", "x": {}, "y": 1.5}', "y", ""),
    ],
)
def test_decode_errors_name_the_field(raw: bytes, field: str, needle: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_sample(raw)
    assert info.value.field == field
    assert needle in str(info.value)


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b"", b'{"id": "1"'])
def test_decode_errors_for_non_objects(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_sample(raw)


def test_oversized_message_is_refused() -> None:
    raw = json.dumps({"id": "1", "x": {"t": "a" * MAX_MESSAGE_BYTES}}).encode()
    with pytest.raises(DecodeError, match="exceeds"):
        decode_sample(raw)


def test_label_without_y_names_y() -> None:
    with pytest.raises(DecodeError) as info:
        decode_label(b'{"sample_id": "1"}')
    assert info.value.field == "y"


def test_json_schemas_cover_the_three_messages() -> None:
    schemas = json_schemas()
    assert set(schemas) == {"Sample", "Query", "Label"}
    assert "schema_version" in schemas["Sample"]["properties"]
    assert set(schemas["Label"]["required"]) == {"sample_id", "y"}


def test_null_features_are_missing_and_booleans_are_numbers() -> None:
    sample = decode_sample(b'{"id": "1", "x": {"a": null, "b": true, "c": false, "d": 2}}')
    assert type(sample) is Sample
    assert sample.x == {"b": 1.0, "c": 0.0, "d": 2}
    assert decode_sample(encode(sample)) == sample
    # A plain sample keeps its own dict (the fast path), and nulls elsewhere stay refused.
    assert decode_sample(b'{"id": "1", "x": {}, "ts": null}').ts is None
    with pytest.raises(DecodeError, match="field 'x.a'"):
        decode_sample(b'{"id": "1", "x": {"a": [null]}}')
    with pytest.raises(DecodeError, match="field 'x.a'"):
        decode_sample(b'{"id": "1", "x": {"a": NaN, "b": null}}')
    x_schema = json_schemas()["Sample"]["properties"]["x"]["additionalProperties"]["anyOf"]
    assert {"type": "null"} in x_schema and {"type": "boolean"} in x_schema
