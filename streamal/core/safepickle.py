"""Unpickling that cannot run foreign code: every class is checked against an allow-list.

``pickle.loads`` calls whatever callable a pickle names, so a crafted snapshot could run
any code the moment it is read. Everything streamal unpickles (checkpoint snapshots and
the SQLite pending store) goes through :func:`loads` instead, whose unpickler resolves
only:

- the few built-in and standard-library names that river models and streamal's state
  use (``dict``, ``collections.deque``, ``random.Random``, ``functools.partial``...),
- the numpy functions that rebuild arrays, dtypes and random generators,
- **classes** (not functions, apart from a listed few) from ``river``, ``sklearn``,
  ``scipy.sparse`` and streamal's own state modules.

A name with a dunder part (``__globals__``, ``__init__``...) is refused, so attribute
chains cannot reach beyond what is listed. A refused name raises
:class:`pickle.UnpicklingError` naming it. Pickles are still only as trustworthy as the
classes they may build: keep the checkpoint directory private, and set a key
(``checkpoint.key``) so that a snapshot nobody signed is refused before it is unpickled.

Examples
--------
>>> import pickle
>>> from collections import deque
>>> loads(pickle.dumps({"a": deque([1, 2])}))
{'a': deque([1, 2])}
>>> import os
>>> loads(pickle.dumps(os.getcwd))
Traceback (most recent call last):
...
_pickle.UnpicklingError: a pickle may not use posix.getcwd (not on the allow-list)
"""

from __future__ import annotations

import io
import pickle
from typing import Any

from streamal.core._moved import MOVED

__all__ = ["ALLOWED", "ALLOWED_FUNCTIONS", "CLASS_PREFIXES", "RestrictedUnpickler", "loads"]

#: Exact (module, name) pairs allowed whatever they are.
ALLOWED: frozenset[tuple[str, str]] = frozenset(
    [("builtins", n) for n in ("bool", "bytearray", "bytes", "complex", "dict", "float")]
    + [("builtins", n) for n in ("frozenset", "int", "list", "object", "range", "set")]
    + [("builtins", n) for n in ("slice", "str", "tuple")]
    + [("collections", n) for n in ("Counter", "OrderedDict", "defaultdict", "deque")]
    + [
        ("copy", "deepcopy"),
        ("copyreg", "_reconstructor"),
        ("datetime", "datetime"),
        ("datetime", "timedelta"),
        ("functools", "partial"),
        ("random", "Random"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
    ]
    + [
        (f"numpy.{core}.{module}", name)
        for core in ("core", "_core")
        for module, name in (
            ("multiarray", "_reconstruct"),
            ("multiarray", "scalar"),
            ("numeric", "_frombuffer"),
        )
    ]
    + [
        ("numpy.random._pickle", n)
        for n in ("__bit_generator_ctor", "__generator_ctor", "__randomstate_ctor")
    ]
    + [("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence")]
)

#: Module prefixes whose classes may be built (functions only if in ALLOWED_FUNCTIONS).
CLASS_PREFIXES: tuple[str, ...] = (
    "river.",
    "sklearn.",
    "scipy.sparse.",
    "numpy.random.",
    "streamal.",
)

#: streamal modules that hold no model state: nothing from them is ever unpickled.
DENIED_PREFIXES: tuple[str, ...] = (
    "streamal.cli",
    "streamal.dev",
    "streamal.service",
    "streamal.transports",
    "streamal.companions",
)

#: Functions from the class prefixes that models pickle (factories of their defaultdicts,
#: the nearest-neighbour search's distance function).
ALLOWED_FUNCTIONS: frozenset[tuple[str, str]] = frozenset(
    [
        ("river.naive_bayes.gaussian", "GaussianNB._make_gaussian"),
        ("river._river_rust.vectordict", "euclidean_distance_tuple"),
    ]
)


def _allowed_prefix(module: str) -> bool:
    # A dunder module (``streamal.__main__``) would run code just by being imported.
    return (
        module.startswith(CLASS_PREFIXES)
        and not module.startswith(DENIED_PREFIXES)
        and not any(part.startswith("__") for part in module.split("."))
    )


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose :meth:`find_class` resolves only allow-listed names."""

    def find_class(self, module: str, name: str) -> Any:
        """Resolve ``module.name`` if the allow-list permits it, else raise.

        A module path from before the package layout of ``streamal/core`` is first
        mapped to its new path (:data:`streamal.core._moved.MOVED`).
        """
        module = MOVED.get(module, module)
        if (module, name) in ALLOWED:
            return super().find_class(module, name)
        if _allowed_prefix(module) and not any(part.startswith("__") for part in name.split(".")):
            found = super().find_class(module, name)
            if isinstance(found, type) or (module, name) in ALLOWED_FUNCTIONS:
                return found
        raise pickle.UnpicklingError(
            f"a pickle may not use {module}.{name} (not on the allow-list)"
        )


def loads(data: bytes) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(io.BytesIO(data)).load()
