"""dafstore: memory-mapped dense and sparse arrays shared by the processes of one host.

A :class:`Container` is a directory of arrays (daf's layout) with a SQLite catalog that makes
publishing atomic and counts references across processes: an array's files are deleted only when
no live process holds them, and a crashed process leaks nothing.

    >>> import numpy as np, dafstore
    >>> c = dafstore.Container.create("/dev/shm/example")      # doctest: +SKIP
    >>> c.write("x", np.arange(6.0).reshape(2, 3))              # doctest: +SKIP
    >>> x = c.open("x")          # a read-only numpy array that is the map itself  # doctest: +SKIP

Errors are the classes of :mod:`dafstore._errors`, all under :class:`DafstoreError`.
"""

from __future__ import annotations

from ._errors import *  # noqa: F401,F403
from ._errors import __all__ as _errors_all
from ._container import (
    DTYPES,
    ArrayInfo,
    ArrayWriter,
    Container,
    FileInfo,
    FsckReport,
    GcFailure,
    GcReport,
    HeldArray,
    Holder,
    Hold,
    ImportedArray,
    Problem,
    Removal,
    SparseArrays,
    cache_stats,
)
from ._native import ENGINE_VERSION as __version__

__all__ = [
    "Container",
    "ArrayWriter",
    "Hold",
    "ArrayInfo",
    "FileInfo",
    "Holder",
    "HeldArray",
    "Removal",
    "GcReport",
    "GcFailure",
    "FsckReport",
    "Problem",
    "ImportedArray",
    "SparseArrays",
    "DTYPES",
    "cache_stats",
    *_errors_all,
]
