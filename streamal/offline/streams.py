"""Recorded and built-in streams for replay, as iterators of labelled :class:`Sample`.

A source spec is one of:

* ``path/to/file.jsonl`` — one JSON :class:`~streamal.messages.Sample` per line, each
  with its true label ``y`` (also ``.jsonl.gz``);
* ``path/to/file.csv`` — a header row, then one sample per row; the target column is
  the last one unless ``target`` names another; an optional ``time`` column gives ``ts``
  (also ``.csv.gz``, and tab-separated ``.tsv`` and ``.tsv.gz``);
* ``path/to/file.parquet`` — one sample per row, columns as for CSV (needs the
  ``parquet`` extra, ``pip install 'streamal[parquet]'``, for pyarrow);
* ``river:NAME`` — a dataset bundled with river (``Phishing``, ``Bananas``,
  ``ImageSegments``); datasets river would download are refused (no network);
* ``synth:NAME[:k=v,...]`` — a synthetic, drifting stream built in (see
  :data:`SYNTHETIC`), e.g. ``synth:Agrawal:n=50000,drift_at=25000``.

Missing values follow river's convention: a missing feature is an absent key. An empty
CSV cell, a JSON ``null`` and a Parquet null (or NaN) leave the feature out of ``x``; the
target and the time column may not be missing. Booleans are numbers: JSON and Parquet
``true``/``false``, and CSV cells ``true``/``false`` (any case), read as 1.0/0.0.

Bad input raises :class:`~streamal.exceptions.DecodeError` (or its subclass
:class:`~streamal.exceptions.InputError`) naming the row — the line number in the file —
and the field.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from streamal.core.registry import parse_spec
from streamal.exceptions import DecodeError, InputError
from streamal.messages import Sample, decode_sample

__all__ = [
    "BUNDLED",
    "SYNTHETIC",
    "Source",
    "iter_csv",
    "iter_jsonl",
    "iter_parquet",
    "open_source",
]

#: river datasets that ship inside the river wheel (no download).
BUNDLED = ("Phishing", "Bananas", "ImageSegments")


@dataclass(frozen=True)
class Source:
    """An opened source: a name, its length when known, and a way to iterate it again."""

    spec: str
    length: int | None
    _open: Callable[[], Iterator[Sample]]

    def __iter__(self) -> Iterator[Sample]:
        return self._open()


def _sample(i: int, x: dict[str, Any], y: Any, ts: float | None = None) -> Sample:
    # Built-in streams are trusted: skip validation, it costs more than the model.
    return Sample.model_construct(id=str(i), x=x, y=y, ts=ts, meta={}, schema_version=1)


_BOOLEANS = {"true": 1.0, "false": 0.0}


def _number_or_text(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        boolean = _BOOLEANS.get(value.lower())
        return value if boolean is None else boolean


def _kind(path: Path) -> str:
    """The format of a file from its name: ``csv``, ``tsv``, ``jsonl``, ``parquet`` or ``""``."""
    name = path.name.lower().removesuffix(".gz")
    for kind, suffixes in (
        ("csv", (".csv",)),
        ("tsv", (".tsv", ".tab")),
        ("jsonl", (".jsonl", ".json", ".ndjson")),
        ("parquet", (".parquet", ".pq")),
    ):
        if name.endswith(suffixes):
            return kind
    return ""


def _open_binary(path: Path) -> IO[bytes]:
    """``path`` opened for reading bytes, decompressed when its name ends in ``.gz``."""
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def _parse_target(value: str) -> int | str:
    try:
        return int(value)
    except ValueError:
        return value


def _readable(reader: Iterator[list[str]], path: Path) -> Iterator[list[str]]:
    """The rows of ``reader``, with undecodable bytes and broken CSV as one-line errors."""
    line = 0
    while True:
        line += 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError as err:
            byte = err.object[err.start : err.start + 1].hex()
            raise InputError(
                f"{path} is not UTF-8 text (byte 0x{byte}); convert it "
                "first, e.g. iconv -f UTF-16 -t UTF-8 or iconv -f LATIN1 -t UTF-8"
            ) from None
        except csv.Error as err:  # NUL bytes, a cell beyond the csv module's size limit
            raise DecodeError(f"not readable as CSV: {err}", row=line) from None
        yield row


def iter_csv(
    path: Path, target: str | None = None, time: str | None = None, delimiter: str | None = None
) -> Iterator[Sample]:
    """Read a CSV file with a header row into labelled samples (see module docstring).

    ``delimiter`` defaults to a tab for ``.tsv`` files and a comma otherwise; ``.gz``
    files are decompressed as they are read.
    """
    if delimiter is None:
        delimiter = "\t" if _kind(path) == "tsv" else ","
    with io.TextIOWrapper(_open_binary(path), encoding="utf-8-sig", newline="") as fh:
        reader = _readable(csv.reader(fh, delimiter=delimiter), path)
        header = next(reader, None)
        if header is None:
            raise InputError(f"{path} is empty; expected a header row and samples")
        header = [h.strip() for h in header]
        tcol = header[-1] if target is None else target
        for wanted, what in ((tcol, "target"), (time, "time")):
            if wanted is not None and wanted not in header:
                raise InputError(
                    f"unknown {what} column {wanted!r}; the columns are: {', '.join(header)}"
                )
        t_idx = header.index(tcol)
        ts_idx = header.index(time) if time is not None else -1
        numeric: dict[int, bool] = {}
        rows = 0
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise DecodeError(
                    f"has {len(row)} cells but the header has {len(header)} columns", row=line
                )
            x: dict[str, Any] = {}
            ts: float | None = None
            for j, cell in enumerate(row):
                name = header[j]
                cell = cell.strip()
                if j == t_idx:
                    if not cell:
                        raise DecodeError("missing target value", field=name, row=line)
                    continue
                if not cell:
                    if j == ts_idx:
                        raise DecodeError("missing time value", field=name, row=line)
                    continue  # a missing feature: absent from x
                value = _number_or_text(cell)
                is_num = isinstance(value, float)
                if isinstance(value, float) and not math.isfinite(value):
                    raise DecodeError(f"{cell!r} is not a finite number", field=name, row=line)
                if numeric.setdefault(j, is_num) != is_num:
                    kind = "a number" if numeric[j] else "text"
                    raise DecodeError(
                        f"expected {kind} as in earlier rows, got {cell!r}", field=name, row=line
                    )
                if j == ts_idx:
                    if not is_num:
                        raise DecodeError("time must be a number of seconds", field=name, row=line)
                    ts = value  # type: ignore[assignment]
                else:
                    x[name] = value
            rows += 1
            yield _sample(line - 1, x, _parse_target(row[t_idx].strip()), ts)
        if rows == 0:
            raise InputError(f"{path} has a header but no samples")


def iter_jsonl(path: Path) -> Iterator[Sample]:
    """Read one JSON sample per line; every sample must carry its label ``y``."""
    rows = 0
    with _open_binary(path) as fh:
        for line, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                sample = decode_sample(raw)
            except DecodeError as err:
                raise err.at_row(line) from None
            if sample.y is None:
                raise DecodeError(
                    "missing label (replay needs every sample's y)", field="y", row=line
                )
            rows += 1
            yield sample
    if rows == 0:
        raise InputError(f"{path} is empty; expected one JSON sample per line")


def iter_parquet(
    path: Path, target: str | None = None, time: str | None = None
) -> Iterator[Sample]:
    """Read a Parquet file into labelled samples, as a CSV file (see module docstring).

    Numbers, strings and booleans (read as 1.0/0.0) are features; nulls and NaN are
    missing (absent from ``x``). Rows are read in batches, so the file need not fit in
    memory. Needs pyarrow (``pip install 'streamal[parquet]'``).
    """
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(f"reading {path} needs pyarrow: pip install 'streamal[parquet]'") from None
    try:
        parquet = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises its own ArrowInvalid for a bad file
        raise InputError(f"{path} is not a readable Parquet file: {err}") from None
    header = list(parquet.schema_arrow.names)
    tcol = header[-1] if target is None else target
    for wanted, what in ((tcol, "target"), (time, "time")):
        if wanted is not None and wanted not in header:
            raise InputError(
                f"unknown {what} column {wanted!r}; the columns are: {', '.join(header)}"
            )
    rows = 0
    for batch in parquet.iter_batches(batch_size=4096):
        for record in batch.to_pylist():
            rows += 1
            x: dict[str, Any] = {}
            ts: float | None = None
            for name, value in record.items():
                if name == tcol:
                    if value is None:
                        raise DecodeError("missing target value", field=name, row=rows)
                    continue
                if isinstance(value, bool):
                    value = float(value)
                elif isinstance(value, float) and math.isnan(value):
                    value = None
                if value is None:
                    if name == time:
                        raise DecodeError("missing time value", field=name, row=rows)
                    continue
                if isinstance(value, float) and not math.isfinite(value):
                    raise DecodeError(f"{value!r} is not a finite number", field=name, row=rows)
                if not isinstance(value, int | float | str):
                    raise DecodeError(
                        f"a {type(value).__name__} is not a number or a string",
                        field=name,
                        row=rows,
                    )
                if name == time:
                    if isinstance(value, str):
                        raise DecodeError("time must be a number of seconds", field=name, row=rows)
                    ts = float(value)
                else:
                    x[name] = value
            yield _sample(rows - 1, x, record[tcol], ts)
    if rows == 0:
        raise InputError(f"{path} has no rows")


def _bundled(name: str) -> Source:
    from river import datasets

    cls = getattr(datasets, name, None)
    if cls is None or not isinstance(cls, type):
        raise InputError(f"river has no dataset {name!r}; bundled ones: {', '.join(BUNDLED)}")
    if issubclass(cls, datasets.base.RemoteDataset):
        raise InputError(f"river:{name} must be downloaded; use one of {', '.join(BUNDLED)}")
    dataset = cls()

    def gen() -> Iterator[Sample]:
        for i, (x, y) in enumerate(dataset):
            yield _sample(i, {str(k): v for k, v in x.items()}, y)

    return Source(f"river:{name}", dataset.n_samples, gen)


class _Abrupt:
    """``first`` for ``drift_at`` samples, then ``second``: an abrupt concept drift.

    (river's ConceptDriftStream overflows ``math.exp`` for widths below position/177.)
    """

    def __init__(self, first: Any, second: Any, drift_at: int) -> None:
        self.first, self.second, self.drift_at = first, second, drift_at

    def take(self, n: int) -> Iterator[tuple[dict[Any, Any], Any]]:
        import itertools

        k = min(n, self.drift_at)
        return itertools.chain(self.first.take(k), self.second.take(n - k))


def _drift(first: Any, second: Any, drift_at: int, seed: int) -> Any:
    return _Abrupt(first, second, drift_at)


def _agrawal(seed: int, n: int, drift_at: int | None = None) -> Any:
    from river.datasets import synth

    return _drift(
        synth.Agrawal(classification_function=0, seed=seed),
        synth.Agrawal(classification_function=4, seed=seed + 1),
        n // 2 if drift_at is None else drift_at,
        seed,
    )


def _sea(seed: int, n: int, drift_at: int | None = None, noise: float = 0.1) -> Any:
    from river.datasets import synth

    return _drift(
        synth.SEA(variant=0, noise=noise, seed=seed),
        synth.SEA(variant=3, noise=noise, seed=seed + 1),
        n // 2 if drift_at is None else drift_at,
        seed,
    )


def _hyperplane(seed: int, n: int, mag_change: float = 0.001) -> Any:
    from river.datasets import synth

    return synth.Hyperplane(seed=seed, n_features=10, n_drift_features=5, mag_change=mag_change)


def _rbf(seed: int, n: int, n_classes: int = 3, change_speed: float = 0.001) -> Any:
    from river.datasets import synth

    return synth.RandomRBFDrift(
        seed_model=seed,
        seed_sample=seed + 1,
        n_classes=n_classes,
        n_centroids=20,
        change_speed=change_speed,
        n_drift_centroids=20,
    )


#: Built-in synthetic streams: name → (factory(seed, n, **params), description).
SYNTHETIC: dict[str, tuple[Callable[..., Any], str]] = {
    "Agrawal": (_agrawal, "Agrawal loans, abrupt drift function 0 → 4 at drift_at (default n/2)"),
    "SEA": (_sea, "SEA, 10% noise, abrupt drift variant 0 → 3 at drift_at (default n/2)"),
    "Hyperplane": (_hyperplane, "rotating hyperplane, 10 features, 5 drifting (gradual)"),
    "RandomRBFDrift": (_rbf, "random RBF, 3 classes, 20 moving centroids (gradual)"),
}


def _synthetic(spec: str, seed: int) -> Source:
    name, params = parse_spec(spec)
    if name not in SYNTHETIC:
        raise InputError(f"unknown synthetic stream {name!r}; choose one of {', '.join(SYNTHETIC)}")
    n = params.pop("n", 20_000)
    seed = params.pop("seed", seed)
    for key, value, low in (("n", n, 1), ("seed", seed, 0)):
        if type(value) is not int or value < low:
            raise InputError(
                f"synth:{name}: {key} must be a whole number of at least {low}, got {value!r}"
            )
    factory = SYNTHETIC[name][0]
    try:
        factory(seed, n, **params)
    except (TypeError, ValueError) as err:
        raise InputError(f"bad parameters for synth:{name}: {err}") from None

    def gen() -> Iterator[Sample]:
        for i, (x, y) in enumerate(factory(seed, n, **params).take(n)):
            yield _sample(i, {str(k): v for k, v in x.items()}, y)

    return Source(f"synth:{spec}", n, gen)


def _count_lines(path: Path) -> int:
    with _open_binary(path) as fh:
        return sum(1 for line in fh if line.strip())


def open_source(
    spec: str, *, target: str | None = None, time: str | None = None, seed: int = 42
) -> Source:
    """Open a source spec (see the module docstring) for replay.

    ``seed`` seeds synthetic streams that do not name their own ``seed`` parameter.

    Examples
    --------
    >>> src = open_source("synth:Agrawal:n=100")
    >>> src.length, sum(1 for _ in src)
    (100, 100)
    >>> next(iter(open_source("river:Phishing"))).y
    True
    """
    kind, sep, rest = spec.partition(":")
    if sep and kind == "river":
        return _bundled(rest)
    if sep and kind == "synth":
        return _synthetic(rest, seed)
    path = Path(spec)
    if not path.is_file():
        raise InputError(f"no such file {spec!r} (and not a river:NAME or synth:NAME stream)")
    kind = _kind(path)
    if kind in {"csv", "tsv"}:
        next(iter_csv(path, target, time), None)  # fail now on a bad header or first row
        n = max(0, _count_lines(path) - 1)
        return Source(str(path), n, lambda: iter_csv(path, target, time))
    if kind == "parquet":
        next(iter_parquet(path, target, time), None)
        import pyarrow.parquet as pq

        n = pq.ParquetFile(path).metadata.num_rows
        return Source(str(path), n, lambda: iter_parquet(path, target, time))
    if kind == "jsonl":
        if target is not None:
            raise InputError("--target applies to CSV files; JSONL samples carry their y")
        return Source(str(path), _count_lines(path), lambda: iter_jsonl(path))
    raise InputError(
        f"cannot tell the format of {spec!r}; use a .csv, .tsv, .jsonl (each maybe .gz) "
        "or .parquet file"
    )
