"""Ordinary, messy data: missing values, booleans, compressed, tab-separated and Parquet files.

Missing values are absent features (river's convention), booleans are numbers; the same
rows replay cleanly and, sent to the service, are decided rather than dead-lettered.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from _helpers import default_budget_bound
from prometheus_client import CollectorRegistry

from streamal.core.checkpoint import Checkpointer
from streamal.exceptions import DecodeError
from streamal.offline.replay import ReplayConfig, build_learner, run
from streamal.offline.streams import open_source
from streamal.service.handlers import Topics
from streamal.service.loop import LoopPolicy, Service
from streamal.service.metrics import Metrics
from streamal.transports import MemoryBroker, MemorySink, MemorySource

#: 200 rows: every fifth has an empty `size` cell, every seventh an empty `colour`.
HEADER = "size,colour,flag,label"


def _rows(n: int = 200) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        rows.append(
            {
                "size": None if i % 5 == 0 else float(i % 10),
                "colour": None if i % 7 == 0 else ("red" if i % 2 else "blue"),
                "flag": i % 3 == 0,
                "label": "big" if i % 10 >= 5 else "small",
            }
        )
    return rows


def _csv(rows: list[dict[str, Any]], sep: str = ",") -> str:
    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "FALSE"
        return str(value)

    lines = [HEADER.replace(",", sep)]
    lines += [sep.join(cell(row[k]) for k in HEADER.split(",")) for row in rows]
    return "\n".join(lines) + "\n"


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(
        json.dumps(
            {"id": str(i), "x": {k: row[k] for k in ("size", "colour", "flag")}, "y": row["label"]}
        )
        + "\n"
        for i, row in enumerate(rows)
    )


def _expected_x(row: dict[str, Any]) -> dict[str, Any]:
    x = {k: row[k] for k in ("size", "colour", "flag") if row[k] is not None}
    x["flag"] = float(x["flag"])
    return x


def _check(spec: str, rows: list[dict[str, Any]]) -> None:
    samples = list(open_source(spec))
    assert len(samples) == len(rows)
    for sample, row in zip(samples, rows, strict=True):
        assert sample.x == _expected_x(row) and sample.y == row["label"]
    assert "size" not in samples[0].x and "colour" not in samples[7].x
    result = run(ReplayConfig(source=spec, model="logreg", rate=0.2, seed=1))
    assert result.samples == len(rows)
    assert 0 < result.labels_used <= default_budget_bound(0.2, len(rows))
    assert result.accuracy > 0.8  # size (missing in a fifth of the rows) decides the label


def test_csv_with_empty_cells_and_booleans(tmp_path: Path) -> None:
    rows = _rows()
    path = tmp_path / "messy.csv"
    path.write_text(_csv(rows))
    _check(str(path), rows)


def test_jsonl_with_nulls_and_booleans(tmp_path: Path) -> None:
    rows = _rows()
    path = tmp_path / "messy.jsonl"
    path.write_text(_jsonl(rows))
    assert '"size": null' in path.read_text() and '"flag": true' in path.read_text()
    _check(str(path), rows)


@pytest.mark.parametrize("name", ["messy.csv.gz", "messy.tsv", "messy.tsv.gz", "messy.jsonl.gz"])
def test_compressed_and_tab_separated_files(tmp_path: Path, name: str) -> None:
    rows = _rows()
    text = _jsonl(rows) if ".jsonl" in name else _csv(rows, "\t" if ".tsv" in name else ",")
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    _check(str(path), rows)
    assert open_source(str(path)).length == len(rows)


def test_parquet_file(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow", reason="the parquet extra is not installed")
    import pyarrow.parquet as pq

    rows = _rows()
    # A float column with NaN for missing, as pandas writes it, besides real nulls.
    table = pa.Table.from_pylist(rows)
    size = pa.array([float("nan") if r["size"] is None else r["size"] for r in rows])
    table = table.set_column(0, "size", size)
    path = tmp_path / "messy.parquet"
    pq.write_table(table, path)
    _check(str(path), rows)
    assert open_source(str(path)).length == len(rows)
    first = next(iter(open_source(str(path), target="flag")))
    assert first.y is True and first.x == {"label": "small"}


def test_parquet_errors_name_the_row_and_field(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow", reason="the parquet extra is not installed")
    import pyarrow.parquet as pq

    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0], "l": ["x", None]}), path)
    with pytest.raises(DecodeError, match="row 2, field 'l': missing target"):
        list(open_source(str(path)))
    pq.write_table(pa.table({"a": [[1.0], [2.0]], "l": ["x", "y"]}), path)
    with pytest.raises(DecodeError, match="row 1, field 'a': a list is not a number"):
        list(open_source(str(path)))


def test_csv_time_cells_may_not_be_empty(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,t,l\n1,10,x\n2,,y\n")
    with pytest.raises(DecodeError, match="row 3, field 't': missing time value"):
        list(open_source(str(path), time="t"))


def test_the_same_samples_through_the_service_are_decided(tmp_path: Path) -> None:
    rows = _rows()
    broker = MemoryBroker()
    topics = Topics()
    for i, row in enumerate(rows):
        x = {k: row[k] for k in ("size", "colour", "flag")}
        broker.produce(topics.samples, json.dumps({"id": str(i), "x": x}).encode())
    registry = CollectorRegistry()
    service = Service(
        build_learner("gnb", "entropy", "variable_threshold", 0.2, seed=1),
        MemorySource(broker),
        MemorySink(broker),
        Checkpointer(tmp_path),
        topics,
        LoopPolicy(commit_every=50, commit_interval=1e9, health_interval=1.0, broker_timeout=10.0),
        Metrics(registry),
        "h",
    )
    assert service.run(count=len(rows)) == len(rows)
    assert broker.values(topics.dead_letters) == []
    assert registry.get_sample_value("streamal_samples_total") == len(rows)
    queries = [json.loads(v) for v in broker.values(topics.queries)]  # type: ignore[arg-type]
    assert queries and all(isinstance(q["x"].get("flag"), float) for q in queries)
    assert all(None not in q["x"].values() for q in queries)
    service.close()


def test_produce_reads_unlabelled_gzipped_jsonl_with_nulls(tmp_path: Path) -> None:
    from streamal.cli.companions_cmd import open_samples

    path = tmp_path / "live.jsonl.gz"
    lines = [
        json.dumps({"id": str(i), "x": {"a": None if i % 2 else 1.0, "b": True}}) for i in range(4)
    ]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    samples = list(open_samples(str(path)))
    assert [s.x for s in samples] == [{"a": 1.0, "b": 1.0}, {"b": 1.0}] * 2
    assert all(s.y is None for s in samples)
