"""What the service writes besides queries: dead letters and predictions.

A poison message (one that cannot be decoded) goes to the dead-letter topic.

A dead letter carries the original bytes (cut to ``max_bytes`` so that a real broker
accepts it; the header ``streamal.truncated_from`` then gives the original size), the
original key, and headers saying why and where it came from:

=========================== ====================================================
``streamal.reason``         a short code, one of :data:`REASONS`
``streamal.error``          the decoder's message (field and problem)
``streamal.source``         ``topic/partition/offset`` of the original message
=========================== ====================================================

Examples
--------
>>> from streamal.messages import decode_sample
>>> from streamal.exceptions import DecodeError
>>> def reason(data):
...     try:
...         decode_sample(data)
...     except DecodeError as err:
...         return classify(data, err)
>>> reason(b'{"id": 1'), reason(b'{"id": "1", "x": {"a": NaN}}'), reason(b'{"x": {}}')
('invalid_json', 'non_finite', 'invalid_schema')
"""

from __future__ import annotations

import json
import math
from typing import Any

from streamal.exceptions import DecodeError
from streamal.learner import Decision
from streamal.messages import MAX_MESSAGE_BYTES
from streamal.transports.base import Envelope, Header

__all__ = ["REASONS", "classify", "dead_letter", "prediction_message"]

#: Dead-letter reason codes.
REASONS = (
    "empty",  # no value (a tombstone)
    "oversized",  # above the wire size limit
    "invalid_json",  # not JSON at all
    "non_finite",  # NaN or infinity where a number must be finite
    "invalid_schema",  # JSON, but not a valid message (missing field, wrong type, version)
    "label_unknown",  # a label for a sample that was never queried (or long forgotten)
    "label_expired",  # a label that came after its query's deadline
    "label_class",  # a label outside the configured classes (learner.classes)
)


class _NonFinite(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonFinite(name)


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_non_finite(v) for v in value)
    return False


def classify(value: bytes | None, err: DecodeError | None = None) -> str:
    """The reason code for a message that failed to decode (runs only for failures)."""
    if value is None or value == b"":
        return "empty"
    if len(value) > MAX_MESSAGE_BYTES:
        return "oversized"
    try:
        parsed = json.loads(value, parse_constant=_reject_constant)
    except _NonFinite:
        return "non_finite"
    except ValueError:  # includes UnicodeDecodeError
        return "invalid_json"
    return "non_finite" if _has_non_finite(parsed) else "invalid_schema"


def dead_letter(
    env: Envelope, reason: str, error: str, max_bytes: int
) -> tuple[bytes, list[Header]]:
    """The value and headers of the dead letter for ``env``."""
    value = env.value or b""
    headers: list[Header] = [
        ("streamal.reason", reason.encode()),
        ("streamal.error", error[:1000].encode()),
        ("streamal.source", f"{env.topic}/{env.partition}/{env.offset}".encode()),
    ]
    if len(value) > max_bytes:
        headers.append(("streamal.truncated_from", str(len(value)).encode()))
        value = value[:max_bytes]
    return value, headers


def prediction_message(decision: Decision) -> bytes:
    """The JSON published on the predictions topic for one decided sample.

    Examples
    --------
    >>> d = Decision("7", {True: 0.8, False: 0.2}, True, 0.72, False, "score", 3)
    >>> prediction_message(d)
    b'{"sample_id":"7","prediction":true,"proba":{"True":0.8,"False":0.2},"score":0.72,"queried":false,"model_version":3}'
    """
    return json.dumps(
        {
            "sample_id": decision.sample_id,
            "prediction": decision.prediction,
            "proba": {str(k): float(v) for k, v in decision.proba.items()},
            "score": decision.score,
            "queried": decision.queried,
            "model_version": decision.model_version,
        },
        separators=(",", ":"),
    ).encode()
