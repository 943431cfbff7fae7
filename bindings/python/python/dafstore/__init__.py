"""dafstore: memory-mapped dense and sparse arrays shared by the processes of one host.

A :class:`Container` is a directory of arrays (daf's layout) with a SQLite catalog that makes
publishing atomic and counts references across processes: an array's files are deleted only when
no live process holds them, and a crashed process leaks nothing.

:func:`create` makes a container and :func:`open` opens one (``read_only=True``: changes nothing;
``gc=False``: no maintenance at open). A container is a read-only mapping of name to array.

    >>> import numpy as np, dafstore
    >>> c = dafstore.create("/dev/shm/example")                 # doctest: +SKIP
    >>> c.write("x", np.arange(6.0).reshape(2, 3))              # doctest: +SKIP
    >>> x = c.open("x")          # a read-only numpy array that is the map itself  # doctest: +SKIP
    >>> len(c), list(c), c["x"].shape                           # doctest: +SKIP
    (1, ['x'], (2, 3))
    >>> r = dafstore.open("/dev/shm/example", read_only=True)   # doctest: +SKIP

A container can be a cache: ``c.set_capacity("8G")`` bounds its bytes, entries written with
``lifecycle="cached"`` (and those ``open_or_load`` makes) stay after their last release and are
evicted, least recently released first, when a write needs their room.

Errors are the classes of :mod:`dafstore._errors`, all under :class:`DafstoreError`.
"""

from __future__ import annotations

from ._errors import *  # noqa: F401,F403
from ._errors import __all__ as _errors_all
from ._errors import HoldingSession, Occupant
from ._container import (
    create,
    open,
    DTYPES,
    ArrayInfo,
    ArrayWriter,
    Batch,
    Container,
    FileInfo,
    DafFile,
    FsckReport,
    GcFailure,
    GcReport,
    HeldArray,
    Holder,
    Hold,
    Loader,
    ImportedArray,
    Problem,
    Removal,
    SparseArrays,
    Limits,
    Usage,
    Evicted,
    LIFECYCLES,
    cache_stats,
)
from ._native import ENGINE_VERSION as __version__

# ``open`` is in ``__all__`` as gzip's and tarfile's are: ``from dafstore import *`` shadows the
# builtin, so import the module instead.
__all__ = [
    "create",
    "open",
    "Container",
    "ArrayWriter",
    "Batch",
    "Hold",
    "ArrayInfo",
    "FileInfo",
    "Holder",
    "HeldArray",
    "Loader",
    "Removal",
    "GcReport",
    "GcFailure",
    "DafFile",
    "FsckReport",
    "Problem",
    "ImportedArray",
    "SparseArrays",
    "Limits",
    "Usage",
    "Evicted",
    "Occupant",
    "HoldingSession",
    "DTYPES",
    "LIFECYCLES",
    "cache_stats",
    *_errors_all,
]
