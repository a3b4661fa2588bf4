"""Hostile messages for the fuzz tests: what an attacker or a careless upstream sends.

:func:`hostile_stream` yields ``(kind, topic, value)`` deterministically from a seed,
mixing valid samples and labels (so that the learner has pending queries to attack)
with malformed, oversized, deep, absurd and mistyped ones. Loaded by file path from
``test_fuzz_service.py`` and ``test_integration_hardening.py`` (tests are not a package).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

SAMPLES, LABELS = "samples", "labels"


@dataclass
class Context:
    """What the generator remembers: ids it sent, to aim labels and repeats at them."""

    rng: random.Random
    ids: list[str] = field(default_factory=list)
    counter: int = 0

    def new_id(self) -> str:
        self.counter += 1
        sid = f"s{self.counter}"
        self.ids.append(sid)
        if len(self.ids) > 5000:
            del self.ids[:1000]
        return sid

    def old_id(self) -> str:
        return self.rng.choice(self.ids) if self.ids else "nobody"

    def x(self) -> dict[str, Any]:
        r = self.rng
        return {"a": r.uniform(-3, 3), "b": r.randint(0, 5), "c": r.choice(["u", "v", "w"])}


def _j(value: Any) -> bytes:
    return json.dumps(value).encode()


def _nested(depth: int, open_: bytes = b'{"k":', close: bytes = b"}") -> bytes:
    return open_ * depth + b"1" + close * depth


def _valid_sample(c: Context) -> bytes:
    return _j({"id": c.new_id(), "x": c.x(), "ts": float(c.counter)})


def _valid_label(c: Context) -> bytes:
    return _j({"sample_id": c.old_id(), "y": c.rng.random() < 0.5})


Maker = Callable[[Context], bytes | None]

#: (kind, topic, maker, weight): valid traffic is weighted up so that queries stay open.
KINDS: list[tuple[str, str, Maker, int]] = [
    ("valid_sample", SAMPLES, _valid_sample, 30),
    ("valid_label", LABELS, _valid_label, 20),
    ("unknown_label", LABELS, lambda c: _j({"sample_id": f"ghost{c.counter}", "y": True}), 2),
    ("tombstone", SAMPLES, lambda c: None, 1),
    ("empty_label", LABELS, lambda c: b"", 1),
    ("garbage_bytes", SAMPLES, lambda c: c.rng.randbytes(c.rng.randint(1, 300)), 2),
    ("garbage_label", LABELS, lambda c: c.rng.randbytes(c.rng.randint(1, 300)), 2),
    ("truncated_json", SAMPLES, lambda c: _valid_sample(c)[: c.rng.randint(1, 20)], 2),
    (
        "deep_meta",
        SAMPLES,
        lambda c: (
            b'{"id": "d", "x": {}, "meta": ' + _nested(c.rng.choice([33, 199, 201, 3000])) + b"}"
        ),
        2,
    ),
    ("deep_message", SAMPLES, lambda c: _nested(c.rng.randint(100, 20_000), b"[", b"]"), 1),
    (
        "deep_annotator",
        LABELS,
        lambda c: b'{"sample_id": "x", "y": 1, "annotator": ' + _nested(1500, b"[", b"]") + b"}",
        1,
    ),
    (
        "huge_int",
        SAMPLES,
        lambda c: _j({"id": c.new_id(), "x": {"a": 10 ** c.rng.randint(101, 600)}}),
        2,
    ),
    ("huge_float", SAMPLES, lambda c: _j({"id": c.new_id(), "x": {"a": -1.5e250}}), 1),
    ("nan_feature", SAMPLES, lambda c: b'{"id": "n", "x": {"a": NaN}}', 1),
    ("inf_meta", SAMPLES, lambda c: b'{"id": "n", "x": {}, "meta": {"v": [Infinity]}}', 1),
    ("nan_label_ts", LABELS, lambda c: b'{"sample_id": "x", "y": 1, "ts": NaN}', 1),
    ("missing_x", SAMPLES, lambda c: _j({"id": c.new_id()}), 1),
    ("wrong_types", SAMPLES, lambda c: _j({"id": 5, "x": [1, 2]}), 1),
    ("extra_field", SAMPLES, lambda c: _j({"id": c.new_id(), "x": {}, "evil": 1}), 1),
    ("schema_string", SAMPLES, lambda c: _j({"id": c.new_id(), "x": {}, "schema_version": "1"}), 1),
    ("schema_future", LABELS, lambda c: _j({"sample_id": "x", "y": 1, "schema_version": 99}), 1),
    ("long_id", SAMPLES, lambda c: _j({"id": "i" * c.rng.randint(513, 50_000), "x": {}}), 1),
    ("long_label_id", LABELS, lambda c: _j({"sample_id": "l" * 20_000, "y": True}), 1),
    (
        "many_features",
        SAMPLES,
        lambda c: _j({"id": c.new_id(), "x": {f"f{i}": i for i in range(65)}}),
        1,
    ),
    ("big_meta", SAMPLES, lambda c: _j({"id": c.new_id(), "x": {}, "meta": {"m": "z" * 5000}}), 1),
    (
        "absurd_ts",
        SAMPLES,
        lambda c: _j({"id": c.new_id(), "x": c.x(), "ts": c.rng.choice([1e300, -1e300, 1e14])}),
        2,
    ),
    ("absurd_label_ts", LABELS, lambda c: _j({"sample_id": c.old_id(), "y": True, "ts": 1e300}), 1),
    ("string_label", LABELS, lambda c: _j({"sample_id": c.old_id(), "y": "yes"}), 2),
    ("int_label", LABELS, lambda c: _j({"sample_id": c.old_id(), "y": 2}), 1),
    (
        "repeated_id",
        SAMPLES,
        lambda c: _j({"id": c.old_id(), "x": c.x(), "ts": float(c.counter)}),
        3,
    ),
    ("lone_surrogate", SAMPLES, lambda c: b'{"id": "\\ud800", "x": {}}', 1),
    ("not_an_object", LABELS, lambda c: c.rng.choice([b"[]", b"1", b'"s"', b"null", b"true"]), 1),
    ("utf16", SAMPLES, lambda c: json.dumps({"id": "u", "x": {}}).encode("utf-16"), 1),
    ("null_feature", SAMPLES, lambda c: _j({"id": c.new_id(), "x": {"a": None}}), 1),
    ("bool_feature", SAMPLES, lambda c: _j({"id": c.new_id(), "x": {"a": True}}), 1),
    ("odd_keys", SAMPLES, lambda c: _j({"id": c.new_id(), "x": {"": 1.0, "\u0000": "\u202e"}}), 1),
    (
        "oversized",
        SAMPLES,
        lambda c: b'{"id": "o", "x": {}, "meta": "' + b"z" * 1_100_000 + b'"}',
        0,
    ),
]


def hostile_stream(
    n: int, seed: int = 0, oversized_every: int = 2500
) -> Iterator[tuple[str, str, bytes | None]]:
    """``n`` messages ``(kind, topic, value)``, the same for the same seed."""
    ctx = Context(random.Random(seed))
    weighted = [(k, t, m) for k, t, m, w in KINDS for _ in range(w)]
    oversized = next((k, t, m) for k, t, m, _ in KINDS if k == "oversized")
    for i in range(n):
        kind, topic, make = (
            oversized if oversized_every and i % oversized_every == 1 else ctx.rng.choice(weighted)
        )
        yield kind, topic, make(ctx)


def kind_names() -> list[str]:
    """Every kind the stream can hold."""
    return [k for k, *_ in KINDS]
