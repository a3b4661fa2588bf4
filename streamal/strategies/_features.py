"""Numeric feature vectors for the strategies that measure distances (density, PAL, core-set).

Features are numbers (``bool`` counts as 0/1); strings and other values are ignored.
Distances are taken after standardizing each feature with running means and variances,
so that a feature in dollars does not drown one in years.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["FeatureScaler", "RingBuffer"]

_ScalerState = tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray]


class FeatureScaler:
    """Maps feature dicts to numeric vectors and standardizes them (Welford's method).

    A feature gets a column the first time :meth:`learn` sees it; vectors of earlier
    arrivals are padded with zeros when columns are added.

    Examples
    --------
    >>> s = FeatureScaler()
    >>> for v in (1.0, 3.0):
    ...     s.learn({"a": v, "city": "Oslo"})
    >>> s.vector({"a": 3.0, "b": 5.0}).tolist()
    [3.0]
    >>> s.scale(s.vector({"a": 3.0})).tolist()
    [1.0]
    """

    __slots__ = ("_index", "_n", "_mean", "_m2")

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._n = np.zeros(0)
        self._mean = np.zeros(0)
        self._m2 = np.zeros(0)

    @property
    def dim(self) -> int:
        """Number of columns."""
        return len(self._index)

    def learn(self, x: dict[str, Any]) -> None:
        """Update the running statistics with ``x`` (adds columns for new features)."""
        index = self._index
        for key, value in x.items():
            if not isinstance(value, int | float) or not math.isfinite(value):
                continue
            col = index.get(key)
            if col is None:
                col = index[key] = len(index)
                self._n = np.append(self._n, 0.0)
                self._mean = np.append(self._mean, 0.0)
                self._m2 = np.append(self._m2, 0.0)
            n = self._n[col] + 1.0
            delta = value - self._mean[col]
            self._mean[col] += delta / n
            self._m2[col] += delta * (value - self._mean[col])
            self._n[col] = n

    def covers(self, x: dict[str, Any]) -> bool:
        """Whether every feature of ``x`` already has a column (or is not numeric)."""
        index = self._index
        return all(k in index or not isinstance(v, int | float) for k, v in x.items())

    def vector(self, x: dict[str, Any]) -> np.ndarray:
        """The raw numeric vector of ``x`` over the known columns (unknown features dropped)."""
        out = np.zeros(len(self._index))
        index = self._index
        for key, value in x.items():
            col = index.get(key)
            if col is not None and isinstance(value, int | float) and math.isfinite(value):
                out[col] = value
        return out

    def scale(self, vectors: np.ndarray) -> np.ndarray:
        """Standardize raw vectors (rows); columns without spread yet are only centred."""
        d = vectors.shape[-1]
        n = np.maximum(self._n[:d], 1.0)
        std = np.sqrt(self._m2[:d] / n)
        inv = np.divide(1.0, std, out=np.ones(d), where=std > 0.0)
        out: np.ndarray = (vectors - self._mean[:d]) * inv
        return out

    def __getstate__(self) -> _ScalerState:
        return (self._index, self._n, self._mean, self._m2)

    def __setstate__(self, state: _ScalerState) -> None:
        self._index, self._n, self._mean, self._m2 = state


class RingBuffer:
    """The last ``capacity`` raw vectors with one float and one int tag each.

    Rows are stored in a fixed array (oldest overwritten first); columns grow when the
    feature space does.

    Examples
    --------
    >>> b = RingBuffer(2)
    >>> for i in range(3):
    ...     b.append(np.array([float(i)]), value=i / 10, tag=i)
    >>> b.rows().tolist(), b.tags().tolist()
    ([[2.0], [1.0]], [2, 1])
    """

    __slots__ = ("capacity", "_x", "_value", "_tag", "_size", "_head")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._x = np.zeros((capacity, 0))
        self._value = np.zeros(capacity)
        self._tag = np.zeros(capacity, dtype=np.int64)
        self._size = 0
        self._head = 0

    def __len__(self) -> int:
        return self._size

    def append(self, vector: np.ndarray, value: float = 0.0, tag: int = 0) -> None:
        """Add a row, overwriting the oldest when full."""
        d = vector.shape[0]
        if d > self._x.shape[1]:
            self._x = np.pad(self._x, ((0, 0), (0, d - self._x.shape[1])))
        row = self._head
        self._x[row, :d] = vector
        self._x[row, d:] = 0.0
        self._value[row] = value
        self._tag[row] = tag
        self._head = (row + 1) % self.capacity
        self._size = min(self._size + 1, self.capacity)

    def rows(self, dim: int | None = None) -> np.ndarray:
        """The stored vectors (in storage order), padded or cut to ``dim`` columns."""
        x = self._x[: self._size]
        if dim is None or dim == x.shape[1]:
            return x
        if dim < x.shape[1]:
            return x[:, :dim]
        return np.pad(x, ((0, 0), (0, dim - x.shape[1])))

    def values(self) -> np.ndarray:
        """The float tags of the stored rows (a view: writable)."""
        return self._value[: self._size]

    def tags(self) -> np.ndarray:
        """The int tags of the stored rows."""
        return self._tag[: self._size]

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.capacity, self._x, self._value, self._tag, self._size, self._head)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.capacity, self._x, self._value, self._tag, self._size, self._head = state
