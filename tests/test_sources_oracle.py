"""Replay sources and the simulated oracle."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamal.exceptions import ConfigError, DecodeError, InputError
from streamal.messages import encode
from streamal.offline.oracle import SimulatedOracle, parse_delay
from streamal.offline.streams import BUNDLED, SYNTHETIC, open_source


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_csv_target_defaults_to_last_column_and_types_are_inferred(tmp_path: Path) -> None:
    src = open_source(write(tmp_path, "a.csv", "n,c,t,label\n1.5,red,10,up\n2,blue,11,down\n"))
    rows = list(src)
    assert src.length == 2 and [r.y for r in rows] == ["up", "down"]
    assert rows[0].x == {"n": 1.5, "c": "red", "t": 10.0}
    other = list(open_source(str(tmp_path / "a.csv"), target="t", time="n"))
    assert other[0].y == 10 and other[0].ts == 1.5 and "n" not in other[0].x


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("a,b\n", "no samples"),
        ("a,b\n1,x\n2,\n", "row 3, field 'b': missing target"),
        ("a,b\n1,x\nnan,y\n", "row 3, field 'a': 'nan' is not a finite number"),
        ("a,b\n1,x\nabc,y\n", "row 3, field 'a': expected a number"),
        ("a,b\nabc,x\n1,y\n", "row 3, field 'a': expected text"),
        ("a,b\n1,x,3\n", "row 2: has 3 cells"),
    ],
)
def test_bad_csv_names_row_and_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        list(open_source(write(tmp_path, "bad.csv", text)))


def test_unknown_columns_and_files(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "a,b\n1,x\n")
    with pytest.raises(InputError, match="unknown target column 'zz'; the columns are: a, b"):
        open_source(path, target="zz")
    with pytest.raises(InputError, match="no such file"):
        open_source(str(tmp_path / "missing.csv"))
    with pytest.raises(InputError, match="cannot tell the format"):
        open_source(write(tmp_path, "a.txt", "x"))


def test_jsonl_source_and_its_errors(tmp_path: Path) -> None:
    from streamal.messages import Sample

    good = b"".join(encode(Sample(id=str(i), x={"a": i}, y=i % 2)) + b"\n" for i in range(3))
    (tmp_path / "s.jsonl").write_bytes(good)
    assert [s.y for s in open_source(str(tmp_path / "s.jsonl"))] == [0, 1, 0]
    cases = {
        '{"id": "1", "x": {"a": 1}}\n': "row 1, field 'y': missing label",
        (
            '{"id": "1", "x": {"a": 1}, "y": 1}\n{"id": "2", "x": {"a": "NaN"}, "y": 1, "q": 1}\n'
        ): "row 2, field 'q'",
        "\n\n": "is empty",
    }
    for text, message in cases.items():
        with pytest.raises(DecodeError, match=message):
            list(open_source(write(tmp_path, "b.jsonl", text)))


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_river_datasets(name: str) -> None:
    src = open_source(f"river:{name}")
    first = next(iter(src))
    assert src.length and first.y is not None and all(isinstance(k, str) for k in first.x)


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_synthetic_streams_are_seeded_and_sized(name: str) -> None:
    a = [s.x for s in open_source(f"synth:{name}:n=50", seed=1)]
    b = [s.x for s in open_source(f"synth:{name}:n=50", seed=1)]
    c = [s.x for s in open_source(f"synth:{name}:n=50", seed=2)]
    assert len(a) == 50 and a == b and a != c


def test_agrawal_drifts_at_the_given_position() -> None:
    src = list(open_source("synth:Agrawal:n=4000,drift_at=2000", seed=1))

    def positive_rate(rows: list) -> float:  # type: ignore[type-arg]
        return sum(r.y for r in rows) / len(rows)

    assert abs(positive_rate(src[:2000]) - positive_rate(src[2000:])) > 0.05


def test_bad_source_specs() -> None:
    with pytest.raises(InputError, match="downloaded"):
        open_source("river:CreditCard")
    with pytest.raises(InputError, match="no dataset"):
        open_source("river:Nope")
    with pytest.raises(InputError, match="bad parameters"):
        open_source("synth:SEA:wobble=1")


def test_delay_specs() -> None:
    assert str(parse_delay("0")) == "0" and str(parse_delay("30s")) == "30s"
    assert parse_delay("uniform:1:5").kind == "uniform"
    for bad in ("-1", "exp:", "uniform:5:1", "uniform:1s:5", "soon"):
        with pytest.raises(ConfigError):
            parse_delay(bad)


def test_oracle_delays_in_samples_and_seconds() -> None:
    o = SimulatedOracle("3")
    o.ask("a", 1, index=10)
    assert o.due(13) == [] and [lb.sample_id for lb in o.due(14)] == ["a"]
    s = SimulatedOracle("30s")
    s.ask("b", 1, index=0, ts=100.0)
    assert s.due(5, ts=129.0) == [] and len(s.due(6, ts=130.0)) == 1
    with pytest.raises(ConfigError, match="no ts"):
        s.ask("c", 1, index=1)


def test_oracle_distribution_is_seeded_and_noise_flips_labels() -> None:
    def run(seed: int) -> list[str]:
        o = SimulatedOracle("exp:20", noise=0.3, seed=seed)
        for i in range(200):
            o.ask(str(i), i % 3, index=i)
        return [f"{lb.sample_id}:{lb.y}" for lb in o.due(10_000)]

    assert run(1) == run(1) and run(1) != run(2)
    o = SimulatedOracle(0, noise=0.3, seed=1)
    for i in range(1000):
        o.ask(str(i), i % 2, index=i)
    wrong = sum(lb.y != int(lb.sample_id) % 2 for lb in o.due(10_000))
    assert wrong == o.flipped and 200 < wrong < 400
