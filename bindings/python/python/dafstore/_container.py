"""The pythonic layer over ``dafstore._native``: containers, numpy / scipy / pyarrow views.

Every view returned here is zero-copy: its memory is the engine's map of the array's file, owned
by a ``dafstore._native.MappedView`` object that numpy (``array.base``), scipy (through its numpy
arrays) and pyarrow (``pa.foreign_buffer(..., base=view)``) keep alive. The map and the reference
on the array are released when the last of those is garbage-collected.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    ClassVar,
    Iterator,
    Optional,
    Sequence,
    TypeVar,
    Union,
)

import numpy as np

from . import _errors
from . import _native

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow
    import scipy.sparse

__all__ = [
    "create",
    "open",
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
    "Limits",
    "Usage",
    "Evicted",
    "DTYPES",
    "LIFECYCLES",
    "cache_stats",
]

#: The dtypes dafstore stores (numpy spellings).
DTYPES: tuple[str, ...] = tuple(_native.dtypes())

_MODES = ("r", "r+", "c")

#: What happens to an entry after its last release: ``"persistent"`` (kept until removed),
#: ``"scratch"`` (removed), ``"cached"`` (kept, but evicted when a write needs its room under the
#: container's capacity).
LIFECYCLES: tuple[str, ...] = ("persistent", "scratch", "cached")


def _lifecycle(lifecycle: Optional[str], scratch: bool) -> Optional[str]:
    """The lifecycle a write or load passes to the engine: ``lifecycle``'s name checked, or
    ``"scratch"`` for ``scratch=True`` (the older spelling); None for neither (the engine's
    default)."""
    if lifecycle is not None:
        if not isinstance(lifecycle, str) or lifecycle not in LIFECYCLES:
            raise ValueError(
                f"lifecycle {lifecycle!r}: use 'persistent' (kept until removed), 'scratch' "
                "(removed after its last release) or 'cached' (kept after its last release, "
                "evicted when room is needed)"
            )
        if scratch and lifecycle != "scratch":
            raise ValueError(
                f"scratch=True and lifecycle={lifecycle!r} disagree: give one of them "
                "(scratch=True is lifecycle='scratch')"
            )
        return lifecycle
    return "scratch" if scratch else None


_UNITS = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([KMGTPE]?)(?:I?B)?\s*", re.IGNORECASE)
# The most bytes a container records (the catalog's integers are signed 64-bit).
_SIZE_MAX = 2**63 - 1


def _size(size: Any, what: str) -> Optional[int]:
    """A size in bytes: None, a non-negative int, or a string such as ``"400G"``, ``"1.5GiB"``,
    ``"512M"``, ``"64k"`` or ``"100"`` (units K, M, G, T, P, E are powers of 1024, with or
    without ``i``/``B``: ``G``, ``GB`` and ``GiB`` all mean 2**30; a fraction rounds down to a
    whole byte)."""
    if size is None:
        return None
    if isinstance(size, bool):
        raise ValueError(f"{what} {size!r}: give bytes (an int), a string such as '400G', or None")
    if isinstance(size, (int, np.integer)):
        n = int(size)
    elif isinstance(size, str):
        m = _SIZE.fullmatch(size)
        if m is None:
            raise ValueError(
                f"{what} {size!r}: not a size; give bytes (an int), a string such as '400G', "
                "'1.5GiB', '512M' or '64K' (powers of 1024), or None"
            )
        from fractions import Fraction

        n = int(Fraction(m.group(1)) * 1024 ** _UNITS[m.group(2).upper()])
    else:
        raise ValueError(
            f"{what} {size!r}: give bytes (an int), a string such as '400G', or None; "
            f"not a {type(size).__name__}"
        )
    if n < 0:
        raise ValueError(f"{what} {size!r}: a size cannot be negative")
    if n > _SIZE_MAX:
        raise ValueError(
            f"{what} {size!r}: more than 2**63 - 1 bytes (8 EiB), the most a container records"
        )
    return n


def cache_stats() -> tuple[int, int]:
    """``(live_maps, maps_created)`` of this process's map cache (for leak checks)."""
    return _native.cache_stats()


def _storable(dtype: Any) -> np.dtype:
    """The little-endian numpy dtype dafstore stores for ``dtype``, or UnsupportedDtypeError."""
    try:
        dt = np.dtype(dtype)
    except TypeError as e:
        raise _errors.UnsupportedDtypeError(
            f"dtype {dtype!r} is not a numpy dtype; valid dtypes are {', '.join(DTYPES)}"
        ) from e
    if dt.kind not in "biuf" or dt.name not in DTYPES or dt.fields is not None:
        raise _errors.UnsupportedDtypeError(
            f"dtype {dt!s} is not stored by dafstore; valid dtypes are {', '.join(DTYPES)} "
            "(see format-spec/SPEC.md [T1]); convert it first (e.g. a.astype('float64'))"
        )
    return np.dtype(dt.name).newbyteorder("<") if dt.itemsize > 1 else np.dtype(dt.name)


# Arrays of at most this many bytes are packed into one bytes object by `write_many`.
_PACKED_MAX = 1 << 16


def _contiguous(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``array`` as an aligned, C-contiguous array of ``dtype`` (copied only if it is not one)."""
    return np.require(array, dtype=dtype, requirements=["C", "A"])


def _shape(shape: Any) -> list[int]:
    dims = [shape] if isinstance(shape, (int, np.integer)) else list(shape)
    out = []
    for d in dims:
        if not isinstance(d, (int, np.integer)) or isinstance(d, bool):
            raise _errors.InvalidArrayError(f"shape {shape!r}: dimensions must be integers")
        if d < 0:
            raise _errors.InvalidArrayError(f"shape {shape!r}: dimensions must not be negative")
        out.append(int(d))
    return out


def _scipy_sparse() -> Any:
    try:
        import scipy.sparse as sp
    except ImportError as e:  # pragma: no cover - exercised only without scipy
        raise ImportError("open_sparse/write_sparse need scipy: pip install scipy") from e
    return sp


def _pyarrow() -> Any:
    try:
        import pyarrow as pa
    except ImportError as e:  # pragma: no cover - exercised only without pyarrow
        raise ImportError("open_arrow needs pyarrow: pip install pyarrow") from e
    return pa


def _as_arrow_stream(obj: Any) -> Any:
    """``obj`` as a pyarrow RecordBatchReader of the layout ``write_table`` stores.

    In-memory tables (polars or pandas DataFrame, pyarrow Table) become one record batch (their
    chunks combined once here, so no reader has to rechunk; a single-chunk table is not copied).
    Streams (pyarrow RecordBatchReader, or any other object with ``__arrow_c_stream__``) are
    passed batch by batch, normalized one batch at a time: a table larger than memory is never
    held whole."""
    pa = _pyarrow()
    module = type(obj).__module__.split(".")[0]
    if isinstance(obj, pa.Table):
        table = obj
    elif module == "pandas":
        table = pa.Table.from_pandas(obj, preserve_index=False)
    elif module == "polars" and type(obj).__name__ == "DataFrame":
        table = pa.table(obj)
    elif isinstance(obj, pa.RecordBatchReader) or hasattr(obj, "__arrow_c_stream__"):
        reader = obj if isinstance(obj, pa.RecordBatchReader) else pa.RecordBatchReader.from_stream(obj)
        target = shared_schema(reader.schema)
        if target.equals(reader.schema, check_metadata=True):
            return reader
        return pa.RecordBatchReader.from_batches(
            target, (b.cast(target) for b in reader))
    else:
        raise TypeError(
            f"write_table takes a polars or pandas DataFrame, a pyarrow Table or "
            f"RecordBatchReader, or an object with __arrow_c_stream__; got {type(obj).__name__}"
        )
    table = normalize_for_sharing(table).combine_chunks()
    return table.to_reader()


def shared_schema(schema: Any) -> Any:
    """``schema`` with the column types polars maps without copying (measured in
    bench/tables_layout.py): strings and binaries as views, ``time32``/``time64[us]`` as
    ``time64[ns]``, ``list`` as ``large_list``, also inside nested and dictionary types. Field and
    schema metadata (polars' Categorical/Enum markers) are kept."""
    pa = _pyarrow()

    def norm(t: Any) -> Any:
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return pa.string_view()
        if pa.types.is_binary(t) or pa.types.is_large_binary(t):
            return pa.binary_view()
        if pa.types.is_time32(t) or (pa.types.is_time64(t) and t.unit != "ns"):
            return pa.time64("ns")
        if pa.types.is_dictionary(t):
            return pa.dictionary(t.index_type, norm(t.value_type), t.ordered)
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            return pa.large_list(t.value_field.with_type(norm(t.value_type)))
        if pa.types.is_fixed_size_list(t):
            return pa.list_(t.value_field.with_type(norm(t.value_type)), t.list_size)
        if pa.types.is_struct(t):
            return pa.struct([t.field(i).with_type(norm(t.field(i).type)) for i in range(t.num_fields)])
        return t

    return pa.schema([f.with_type(norm(f.type)) for f in schema], metadata=schema.metadata)


def normalize_for_sharing(table: Any) -> Any:
    """``table`` cast to ``shared_schema(table.schema)``: lossless; a no-op when nothing
    changes."""
    target = shared_schema(table.schema)
    return table if target.equals(table.schema, check_metadata=True) else table.cast(target)


# --------------------------------------------------------------------------------------------
# Results


# The report classes are the engine's report types (engine/src: ArrayInfo, Holder, GcReport, ...),
# built generically from the dicts ``_native`` returns, which are those types serialized (the same
# keys ``dafctl --json`` prints). Their fields must be exactly the engine's keys: ``_from_engine``
# refuses anything else, and tests/test_reports.py checks every class against the engine.

_R = TypeVar("_R", bound="_Report")


def _frozen(value: Any, nested: Optional[type]) -> Any:
    """A JSON-like value from the engine with lists as tuples and objects as ``nested``."""
    if isinstance(value, list):
        return tuple(_frozen(v, nested) for v in value)
    if isinstance(value, dict) and nested is not None:
        return nested._from_engine(value)
    return value


class _Report:
    """Base of the report classes (frozen dataclasses)."""

    #: Fields holding engine objects (or lists of them), and the class of those objects.
    _nested: ClassVar[dict[str, type]] = {}

    @classmethod
    def _from_engine(cls: "type[_R]", d: dict[str, Any]) -> _R:
        """Builds the report from the engine's dict, whose keys must be exactly the fields."""
        fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        if set(d) != fields:
            raise RuntimeError(
                f"dafstore.{cls.__name__}: the engine's keys {sorted(d)} are not the class's "
                f"fields {sorted(fields)} (the package and its native module disagree)"
            )
        return cls(**{k: _frozen(v, cls._nested.get(k)) for k, v in d.items()})


@dataclass(frozen=True)
class FileInfo(_Report):
    """One data file of an array as the catalog records it (the engine's ``FileRecord``)."""

    suffix: str
    size: int
    crc32c: Optional[int]


@dataclass(frozen=True)
class ArrayInfo(_Report):
    """One array's description (``Container.info``, ``Container.info_all``; ``dafctl info``).

    The metadata fields are named as in the array's metadata file (format-spec/SPEC.md): a dense
    array has ``dtype``; a sparse one ``data_dtype``, ``indices_dtype``, ``indptr_dtype``,
    ``layout`` and ``nnz``; a table (``kind == "table"``) ``rows``, ``columns`` and ``types``
    (Arrow types as pyarrow prints them) and ``shape == (rows, len(columns))``; the other kinds'
    fields are None."""

    name: str
    kind: str
    dtype: Optional[str]
    data_dtype: Optional[str]
    indices_dtype: Optional[str]
    indptr_dtype: Optional[str]
    layout: Optional[str]
    shape: tuple[int, ...]
    nnz: Optional[int]
    rows: Optional[int]
    columns: Optional[tuple[str, ...]]
    types: Optional[tuple[str, ...]]
    #: ``live``; ``info_all`` also lists ``deleting``, ``publishing`` and ``removing`` rows.
    state: str
    #: Incremented by every publish of this name.
    generation: int
    #: Total bytes of the data files.
    bytes: int
    files: tuple[FileInfo, ...]
    #: Checksums are stale (in-place writers are or were active).
    checksum_stale: bool
    #: What happens after its last release: ``"persistent"`` (kept), ``"scratch"`` (removed) or
    #: ``"cached"`` (kept, evicted when a write needs its room).
    lifecycle: str
    #: Removed automatically after its last reference is released (``lifecycle == "scratch"``).
    scratch: bool
    #: When a process last released it, or when it was published (ms since the epoch; None in a
    #: catalog older than the cache's). Eviction takes the least recent first.
    released_at: Optional[int]
    #: Whether it has ever been referenced.
    ever_held: bool
    #: Staging location of an in-flight publish (None once published).
    staging: Optional[str]
    #: Live processes holding it.
    holders: int
    #: References this process holds on it.
    local_refs: int

    _nested: ClassVar[dict[str, type]] = {"files": FileInfo}


@dataclass(frozen=True)
class HeldArray(_Report):
    """An array a holder holds: since when (ms since the epoch) and how many references."""

    name: str
    since_ms: int
    count: int


@dataclass(frozen=True)
class Loader(_Report):
    """A load in progress (``Container.loads``): who holds the load lock of which name."""

    session: str
    pid: int
    name: str


@dataclass(frozen=True)
class Holder(_Report):
    """A process's session and what it holds (``Container.holders``)."""

    session: str
    pid: Optional[int]
    alive: bool
    this_process: bool
    started_at_ms: Optional[int]
    arrays: tuple[HeldArray, ...]
    loading: tuple[str, ...]

    _nested: ClassVar[dict[str, type]] = {"arrays": HeldArray}


@dataclass(frozen=True)
class Removal(_Report):
    """What ``Container.remove`` did: removed now, or deferred while ``holders`` hold it."""

    deferred: bool
    holders: int


@dataclass(frozen=True)
class GcFailure(_Report):
    """An interrupted publish or remove whose recovery failed during a gc. Unpacks as
    ``name, error`` (it was a tuple before)."""

    name: str
    error: str

    def __iter__(self) -> Iterator[str]:
        return iter((self.name, self.error))


@dataclass(frozen=True)
class GcReport(_Report):
    """What ``Container.gc`` did."""

    recovered: int
    failed: tuple[GcFailure, ...]
    reaped_sessions: tuple[str, ...]
    deleted: tuple[str, ...]
    staging_removed: int
    #: Removals still deferred because live processes hold the arrays.
    deferred: tuple[str, ...]

    _nested: ClassVar[dict[str, type]] = {"failed": GcFailure}


@dataclass(frozen=True)
class Problem(_Report):
    """One problem ``fsck`` found."""

    kind: str
    path: str
    name: Optional[str]
    message: str
    fixed: bool


@dataclass(frozen=True)
class DafFile(_Report):
    """One of daf's own files (SPEC [A1]): ``kind`` is "marker", "item" or "csv"; left alone."""

    path: str
    kind: str


@dataclass(frozen=True)
class FsckReport(_Report):
    """What ``Container.fsck`` found; ``exit_code`` follows fsck: 0 clean, 1 all fixed, 4 left.
    ``daf_files``: daf's own files found beside the arrays (not problems)."""

    arrays_checked: int
    problems: tuple[Problem, ...]
    exit_code: int
    daf_files: tuple[DafFile, ...]

    _nested: ClassVar[dict[str, type]] = {"problems": Problem, "daf_files": DafFile}

    @property
    def clean(self) -> bool:
        """No problem found."""
        return not self.problems


@dataclass(frozen=True)
class ImportedArray(_Report):
    """An array created by ``Container.import_file``; metadata fields as in ``ArrayInfo``."""

    name: str
    kind: str
    dtype: Optional[str]
    data_dtype: Optional[str]
    indices_dtype: Optional[str]
    indptr_dtype: Optional[str]
    layout: Optional[str]
    shape: tuple[int, ...]
    nnz: Optional[int]
    rows: Optional[int]
    columns: Optional[tuple[str, ...]]
    types: Optional[tuple[str, ...]]
    conversions: tuple[str, ...]


@dataclass(frozen=True)
class Limits(_Report):
    """A container's limits (``Container.limits``), in bytes; None: no limit."""

    #: Most bytes the entries' data files (and writes in flight) may take together.
    capacity: Optional[int]
    #: Free space to keep on the file system (best effort: other programs share it).
    min_free: Optional[int]


@dataclass(frozen=True)
class Usage(_Report):
    """A container's bytes (``Container.usage``)."""

    #: Data files of every entry (what the capacity counts, with ``reserved``).
    entries: int
    #: Reserved by writes in flight (their staged files).
    reserved: int
    #: Of ``entries``: cached entries nobody holds (what eviction can free).
    evictable: int


@dataclass(frozen=True)
class Evicted(_Report):
    """An entry ``Container.evict`` evicted, and its bytes (the engine's ``Evicted``). Unpacks as
    ``name, bytes`` (it was a tuple before)."""

    name: str
    bytes: int

    def __iter__(self) -> Iterator[Any]:
        return iter((self.name, self.bytes))


@dataclass(frozen=True)
class SparseArrays:
    """The three mapped components of a sparse array as numpy arrays (no scipy needed)."""

    layout: str
    shape: tuple[int, int]
    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray


# --------------------------------------------------------------------------------------------
# Context managers


class Batch:
    """Arrays to publish together, all or none (``Container.batch``, SPEC [W11]). ``write``
    collects them (a name given twice raises ``InvalidArrayError`` at once); the ``with`` block's
    normal end publishes them (``publish()`` without ``with``), an exception discards them."""

    __slots__ = ("_container", "_lifecycle", "_arrays")

    def __init__(self, container: "Container", lifecycle: Optional[str]) -> None:
        self._container = container
        self._lifecycle = lifecycle
        self._arrays: dict[str, Any] = {}

    def write(self, name: str, array: Any) -> None:
        """Adds dense array ``name`` to the batch (published when the batch is)."""
        if name in self._arrays:
            raise _errors.InvalidArrayError(
                f"array {name!r} is already in this batch; a batch publishes each name once: "
                "write it once, or publish the first batch before writing it again"
            )
        self._arrays[name] = array

    def __len__(self) -> int:
        return len(self._arrays)

    def publish(self) -> None:
        """Publishes every array of the batch, or none (an error publishes nothing)."""
        arrays, self._arrays = self._arrays, {}
        self._container.write_many(arrays, lifecycle=self._lifecycle)

    def discard(self) -> None:
        """Forgets the batch's arrays; nothing is published."""
        self._arrays = {}

    def __enter__(self) -> "Batch":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.publish()
        else:
            self.discard()


class ArrayWriter:
    """A dense array being created. ``with c.create(name, shape, dtype) as a:`` gives ``a``, a
    writable numpy array over the new file's map (zero-filled); the array is published atomically
    when the block ends normally and discarded if it raises. Without ``with``: fill ``.array``,
    then call ``publish()`` or ``discard()``.

    After the block ``a`` stays valid but read-only: it is then a private copy-on-write map of the
    published file, so nothing written through a leftover view can change the published array.
    """

    __slots__ = ("_native", "_array", "name")

    def __init__(self, native: Any, name: str) -> None:
        self._native = native
        self._array: np.ndarray = np.asarray(native.view())
        self.name = name

    @property
    def array(self) -> np.ndarray:
        """The writable array to fill."""
        return self._array

    @property
    def pending(self) -> bool:
        """Neither published nor discarded yet."""
        return bool(self._native.pending)

    @property
    def token(self) -> str:
        """A token with which other processes fill this array in place before it is published
        (``c.open_staged(token)`` gives them a writable numpy array over the same file): workers
        of a pool or of Dask write their parts of one output, then this writer publishes it, or
        discards it if any part failed. Valid while this writer is pending; fillers must be done
        before ``publish()`` (SPEC [W10])."""
        return str(self._native.token)

    def publish(self) -> None:
        """Syncs the data, records its checksum, and makes the array visible atomically."""
        try:
            self._native.publish()
        finally:
            self._array.flags.writeable = False

    def discard(self) -> None:
        """Throws the array away: nothing is published."""
        try:
            self._native.discard()
        finally:
            self._array.flags.writeable = False

    def __enter__(self) -> np.ndarray:
        return self._array

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.publish()
        else:
            self.discard()

    def __repr__(self) -> str:
        state = "pending" if self.pending else "done"
        return f"<dafstore.ArrayWriter {self.name!r} {state}>"


class Hold:
    """References on arrays (``c.hold(*names)``), taken when created and released by
    ``release()``, at the end of a ``with`` block, or when garbage-collected. While any live
    process holds an array, its files are not deleted (a ``remove`` is deferred)."""

    __slots__ = ("_refs", "names")

    def __init__(self, native: Any, names: Sequence[str]) -> None:
        self.names: tuple[str, ...] = tuple(names)
        self._refs: list[Any] = []
        try:
            for n in self.names:
                self._refs.append(native.hold(n))
        except BaseException:
            self.release()
            raise

    @property
    def held(self) -> bool:
        """Whether the references are still held."""
        return any(r.held for r in self._refs)

    def release(self) -> None:
        """Releases every reference (running deletions they were blocking). Idempotent."""
        first: Optional[BaseException] = None
        while self._refs:
            r = self._refs.pop()
            try:
                r.release()
            except BaseException as e:  # release the others, then report the first error
                first = first or e
        if first is not None:
            raise first

    def __enter__(self) -> "Hold":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<dafstore.Hold {list(self.names)!r} {'held' if self.held else 'released'}>"


# --------------------------------------------------------------------------------------------
# Container

def create(
    path: "str | os.PathLike[str]", *, capacity: Any = None, min_free: Any = None
) -> "Container":
    """Creates a new container in ``path`` (made if missing) and opens it read-write, with a
    ``capacity`` and a ``min_free`` if given (see ``Container.set_capacity``; sizes are bytes or
    strings such as ``"400G"``).

    Raises ContainerExistsError if ``path`` already is a container.

        >>> c = dafstore.create("/dev/shm/example")   # doctest: +SKIP
        >>> c = dafstore.create("/dev/shm/cache", capacity="8G")   # doctest: +SKIP
    """
    capacity = _size(capacity, "capacity")
    min_free = _size(min_free, "min_free")
    c = Container(_native.Container.create(os.fspath(path)))
    if capacity is not None:
        c._c.set_capacity(capacity)
    if min_free is not None:
        c._c.set_min_free(min_free)
    return c


# The module-level entry point is named like the builtin (as gzip.open, tarfile.open, zarr.open);
# nothing in this module uses the builtin ``open``.
def open(  # noqa: A001
    path: "str | os.PathLike[str]", *, read_only: bool = False, gc: bool = True
) -> "Container":
    """Opens the container in ``path``.

    Read-write by default: the open rolls interrupted publishes forward and reaps dead holders
    (the ``gc()`` a read-write open runs), unless ``gc=False`` (an open that does no maintenance,
    as ``fsck`` uses). ``read_only=True``: changes nothing and takes no references (works on
    read-only media and without write permission); ``gc`` does not apply then. Raises
    NotAContainerError if there is no container.

        >>> c = dafstore.open("/dev/shm/example")                   # doctest: +SKIP
        >>> r = dafstore.open("/dev/shm/example", read_only=True)   # doctest: +SKIP
    """
    return Container(_native.Container.open(os.fspath(path), read_only, gc))


def _deprecated_create(path: "str | os.PathLike[str]") -> "Container":
    """Deprecated: use ``dafstore.create(path)``."""
    warnings.warn(
        "dafstore.Container.create(path) is deprecated; use dafstore.create(path) "
        "(c.create(name, shape, dtype) on a container still creates an array)",
        DeprecationWarning,
        stacklevel=2,
    )
    return create(path)


def _deprecated_open(path: "str | os.PathLike[str]", readonly: bool = False) -> "Container":
    """Deprecated: use ``dafstore.open(path, read_only=...)``."""
    warnings.warn(
        "dafstore.Container.open(path, readonly=...) is deprecated; use "
        "dafstore.open(path, read_only=...) (c.open(name) on a container still opens an array)",
        DeprecationWarning,
        stacklevel=2,
    )
    return open(path, read_only=readonly)


class _ArrayMethod:
    """``c.create`` / ``c.open`` on a container are the array methods. The same names on the
    class, ``Container.create(path)`` / ``Container.open(path)``, are the container entry points
    of earlier versions, kept working with a DeprecationWarning: use ``dafstore.create(path)`` /
    ``dafstore.open(path)``."""

    def __init__(self, on_instance: Callable[..., Any], on_class: Callable[..., Any]) -> None:
        self._on_instance = on_instance
        self._on_class = on_class
        self.__doc__ = on_instance.__doc__

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self._on_class
        return self._on_instance.__get__(obj, objtype)


def _reopen(path: str, readonly: bool) -> "Container":
    # Unpickling (``Container.__reduce__``); the signature is that of older pickles too.
    return open(path, read_only=readonly)


# What ``c[name]`` gives: a numpy array (dense) or a scipy.sparse matrix (sparse).
_ArrayValue = Union[np.ndarray, "scipy.sparse.spmatrix"]


class Container(Mapping[str, _ArrayValue]):
    """A dafstore container: a directory of memory-mapped arrays with a SQLite catalog, shared by
    the processes of one host. ``dafstore.create(path)`` makes one, ``dafstore.open(path)``
    opens one. Handles pickle as their path (a worker process opens its own), and work as context
    managers (``close()`` at the end; arrays still open keep their maps).

    A container is a read-only mapping of name to array: ``len(c)``, ``name in c``, ``iter(c)``
    (sorted names), ``c[name]`` (``c.open(name)`` for a dense array, ``c.open_sparse(name)`` for
    a sparse one; ArrayNotFoundError, a KeyError, if there is none), ``keys()``, ``values()``,
    ``items()`` and ``get()`` (which open arrays lazily, one at a time). Writing and removing
    are methods (``write``, ``create``, ``write_sparse``, ``remove``), not item assignment."""

    __slots__ = ("_c", "__weakref__")

    def __init__(self, native: Any) -> None:
        if not isinstance(native, _native.Container):
            raise TypeError("use dafstore.create(path) or dafstore.open(path)")
        self._c = native

    # -- container-level ----------------------------------------------------------------

    @property
    def path(self) -> str:
        """The container directory (canonical)."""
        return str(self._c.root)

    @property
    def read_only(self) -> bool:
        """Whether this handle is read-only (``dafstore.open(path, read_only=True)``)."""
        return bool(self._c.readonly)

    @property
    def readonly(self) -> bool:
        """Deprecated: use ``read_only``."""
        warnings.warn(
            "Container.readonly is deprecated; use Container.read_only",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.read_only

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return bool(self._c.closed)

    def close(self) -> None:
        """Drops this handle. Arrays still open keep working (they hold the engine's handle)."""
        self._c.close()

    def __enter__(self) -> "Container":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close()

    def __reduce__(self) -> Any:
        return (_reopen, (self.path, self.read_only))

    def __repr__(self) -> str:
        ro = ", read_only=True" if self.read_only else ""
        closed = " (closed)" if self.closed else ""
        return f"dafstore.Container({self.path!r}{ro}){closed}"

    # -- the read-only mapping of name -> array --------------------------------------------

    def __contains__(self, name: object) -> bool:
        """Whether a live array is called ``name`` (reads the catalog; opens nothing)."""
        if not isinstance(name, str):
            return False
        try:
            self._c.info(name)
        except (_errors.ArrayNotFoundError, _errors.InvalidNameError):
            return False
        return True

    def __getitem__(self, name: str) -> _ArrayValue:
        """``c[name]``: the array opened by its kind, read-only: ``c.open(name)`` (a numpy array
        over the map) for a dense array, ``c.open_sparse(name)`` (a scipy.sparse matrix, which
        needs scipy) for a sparse one, ``c.open_table(name)`` (a pyarrow Table) for a table.
        ArrayNotFoundError (a KeyError and a FileNotFoundError)
        if there is no live array of that name, also for a name that cannot be one (as ``in``
        says False for it)."""
        if not isinstance(name, str):
            raise _errors.ArrayNotFoundError(
                f"{self.path}: no array named {name!r}; array names are strings"
            )
        try:
            kind = self._c.kind(name)
        except _errors.InvalidNameError as e:
            raise _errors.ArrayNotFoundError(f"{self.path}: no array named {name!r}: {e}") from e
        if kind == "sparse":
            return self.open_sparse(name)
        if kind == "table":
            return self.open_table(name)
        return self._open_array(name)

    def __len__(self) -> int:
        """The number of live arrays."""
        return len(self._c.ls())

    def __iter__(self) -> Iterator[str]:
        """The names of the live arrays, sorted (a snapshot: ``ls()``)."""
        return iter(self.ls())

    # Mapping would make two containers equal when their arrays are (opening every array to
    # compare them), make a container unhashable, and make an empty one false. A handle stays
    # what it was: equal only to itself, hashable, and true.
    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        return True

    # -- writing ------------------------------------------------------------------------

    def write(
        self,
        name: str,
        array: Any,
        *,
        scratch: bool = False,
        reserve: bool = True,
        lifecycle: Optional[str] = None,
    ) -> None:
        """Writes ``array`` (anything ``numpy.asarray`` takes) as dense array ``name`` and
        publishes it atomically, replacing any array of that name (readers of the old one keep
        their maps). ``lifecycle``: what happens after its last release, ``"persistent"`` (kept
        until removed; the default), ``"scratch"`` (removed; ``scratch=True`` says the same) or
        ``"cached"`` (kept, but evicted when a write needs its room under the capacity); inside
        an ``open_or_load`` loader of ``name`` the default is the load's lifecycle.
        The bytes are written to the new file in one pass, checksummed as they go (a full file
        system is a ``NoSpaceError`` here, never a crash); ``reserve`` is accepted for
        compatibility and has no effect. Over the container's capacity, evicts cached entries
        nobody holds or raises CapacityError."""
        lifecycle = _lifecycle(lifecycle, scratch)
        a = np.asarray(array)
        dt = _storable(a.dtype)
        a = _contiguous(a, dt)
        self._c.write_dense(name, a, dt.name, list(a.shape), False, reserve, lifecycle)

    def write_many(
        self,
        arrays: Mapping[str, Any] | Iterable[tuple[str, Any]],
        *,
        lifecycle: Optional[str] = None,
    ) -> None:
        """Writes many dense arrays as one batch (SPEC [W11]): ``arrays`` maps names to arrays
        (anything ``numpy.asarray`` takes), or is an iterable of ``(name, array)`` pairs. All of
        them are published, or none: a dafstore reader that can open one of them can open all,
        and an error (an invalid array, a name given twice, no space, the capacity) publishes
        nothing. Each replaces any array of its name, as ``write`` does. Much faster than one
        ``write`` per array for many small ones: one catalog transaction and one sync for the
        whole batch. ``lifecycle``: of every array, as for ``write``."""
        lifecycle = _lifecycle(lifecycle, False)
        items = arrays.items() if isinstance(arrays, Mapping) else arrays
        # Small arrays travel as one bytes object (their C-order bytes, packed): reading each
        # array's `__array_interface__` in the engine would cost more than copying 4 KiB.
        small: list[tuple[str, str, list[int], int]] = []
        chunks: list[bytes] = []
        large: list[tuple[str, np.ndarray, str, list[int]]] = []
        storable: dict[np.dtype, np.dtype] = {}
        for name, array in items:
            a = array if type(array) is np.ndarray else np.asarray(array)
            dt = storable.get(a.dtype)
            if dt is None:
                dt = storable[a.dtype] = _storable(a.dtype)
            if a.nbytes <= _PACKED_MAX:
                if a.dtype != dt:
                    a = a.astype(dt)
                small.append((name, dt.name, list(a.shape), a.nbytes))
                chunks.append(a.tobytes())
            else:
                a = _contiguous(a, dt)
                large.append((name, a, dt.name, list(a.shape)))
        self._c.write_many(small, b"".join(chunks), large, lifecycle)

    def batch(self, *, lifecycle: Optional[str] = None) -> "Batch":
        """A batch to fill with ``write`` and publish all or none (SPEC [W11]): ``with
        c.batch() as b: b.write(name, array)`` publishes every array when the block ends
        normally, and none if it raises (see ``write_many``). The arrays are read when the block
        ends: do not change them before."""
        _lifecycle(lifecycle, False)
        return Batch(self, lifecycle)

    def write_sparse(
        self, name: str, matrix: Any, *, scratch: bool = False, lifecycle: Optional[str] = None
    ) -> None:
        """Writes a ``scipy.sparse`` CSR or CSC matrix (or array) as sparse array ``name`` (layout
        ``rows`` or ``columns``), after validating it, and publishes it atomically.
        ``lifecycle`` / ``scratch``: as for ``write``."""
        lifecycle = _lifecycle(lifecycle, scratch)
        sp = _scipy_sparse()
        fmt = getattr(matrix, "format", None)
        if not sp.issparse(matrix) or fmt not in ("csr", "csc"):
            raise TypeError(
                f"write_sparse takes a scipy.sparse CSR or CSC matrix, not {type(matrix).__name__}"
                + (f" ({fmt})" if fmt else "")
                + "; convert it with .tocsr()"
            )
        layout = "rows" if fmt == "csr" else "columns"
        rows, cols = (int(d) for d in matrix.shape)
        indptr = np.asarray(matrix.indptr)
        nnz = int(indptr[-1]) if len(indptr) else 0
        data = np.asarray(matrix.data)[:nnz]
        indices = np.asarray(matrix.indices)[:nnz]
        dt = _storable(data.dtype)
        if indices.dtype == indptr.dtype and indices.dtype in (np.int32, np.int64):
            idx = np.dtype(indices.dtype.name).newbyteorder("<")
        else:
            idx = np.dtype("<i8")
        data = _contiguous(data, dt)
        indices = _contiguous(indices, idx)
        indptr = _contiguous(indptr, idx)
        self._c.write_sparse(
            name, layout, (rows, cols), data, dt.name, indices, indptr, idx.name, False, lifecycle
        )

    def _create_array(
        self,
        name: str,
        shape: Any,
        dtype: Any = "float64",
        *,
        scratch: bool = False,
        reserve: bool = True,
        lifecycle: Optional[str] = None,
    ) -> ArrayWriter:
        """Creates dense array ``name`` to fill in place: ``with c.create(name, shape, dtype) as
        a:`` gives a writable numpy array over the new file's map (zero-filled, space reserved
        now so running out of space is an error here, not a crash later); the array is published
        atomically when the block ends, discarded if it raises. ``lifecycle`` / ``scratch``: as
        for ``write`` (room under the capacity is made, or CapacityError raised, here)."""
        lifecycle = _lifecycle(lifecycle, scratch)
        dt = _storable(dtype)
        native = self._c.create_dense(name, dt.name, _shape(shape), False, reserve, lifecycle)
        return ArrayWriter(native, name)

    def open_staged(self, token: str) -> np.ndarray:
        """The array another writer is creating (``ArrayWriter.token``), as a writable numpy
        array over its staged file: what is written here is what that writer publishes. Raises
        ArrayNotFoundError-like ``DafstoreError`` if the writer published, discarded or died."""
        return np.asarray(self._c.open_staged(token))

    # -- reading ------------------------------------------------------------------------

    def _open_array(self, name: str, mode: str = "r", *, dtype: Any = None) -> np.ndarray:
        """Opens dense array ``name`` as a numpy array that is the map itself (no copy):
        ``mode="r"`` read-only (the process-wide shared map), ``"r+"`` in place (writes reach
        the file and every process that maps it; checksums are recomputed when the last in-place
        user is gone), ``"c"`` copy-on-write (writes stay in this process). The array's ``.base``
        owns the map and the reference; both are released when the array is garbage-collected.
        With ``dtype``, raises DtypeMismatchError unless the array holds that dtype."""
        if mode not in _MODES:
            raise ValueError(f"mode {mode!r}: use 'r' (read-only), 'r+' (in place) or 'c' (copy-on-write)")
        want = None if dtype is None else _storable(dtype).name
        return np.asarray(self._c.open_dense(name, mode, want))

    def open_sparse_arrays(self, name: str) -> SparseArrays:
        """The three mapped components of sparse array ``name`` as read-only numpy arrays (no
        copy, no scipy needed)."""
        layout, shape, _nnz, data, indices, indptr = self._c.open_sparse(name)
        return SparseArrays(
            layout, (int(shape[0]), int(shape[1])),
            np.asarray(data), np.asarray(indices), np.asarray(indptr),
        )

    def open_sparse(self, name: str, *, array: bool = False) -> "scipy.sparse.spmatrix":
        """Opens sparse array ``name`` as a ``scipy.sparse.csr_matrix`` (layout ``rows``) or
        ``csc_matrix`` (``columns``) over the mapped files: ``data``, ``indices`` and ``indptr``
        are read-only numpy views of the maps (no copy) whose bases keep them alive. With
        ``array=True``: ``csr_array`` / ``csc_array``.

        ``indices`` and ``indptr`` are zero-copy when they share a signed dtype (int32 or int64,
        as every array written from scipy does); otherwise both are converted to int64, which
        scipy requires (a copy of those two only)."""
        sp = _scipy_sparse()
        parts = self.open_sparse_arrays(name)
        data, indices, indptr = parts.data, parts.indices, parts.indptr
        if data.dtype == np.float16:
            raise _errors.UnsupportedDtypeError(
                f"array {name!r} holds float16, which scipy.sparse does not support; use "
                "open_sparse_arrays(name) for the raw components"
            )
        if indices.dtype != indptr.dtype or indices.dtype.kind != "i":
            indices = indices.astype(np.int64)
            indptr = indptr.astype(np.int64)
        if parts.layout == "rows":
            cls = sp.csr_array if array else sp.csr_matrix
        else:
            cls = sp.csc_array if array else sp.csc_matrix
        # Built empty, then given the mapped arrays: scipy's constructor would cast the index
        # arrays (to int32 when the values fit) and copy them.
        m = cls(parts.shape, dtype=data.dtype)
        m.data = data
        m.indices = indices
        m.indptr = indptr
        return m

    def open_arrow(self, name: str) -> "pyarrow.Array":
        """Opens dense array ``name`` as a pyarrow array over the map (no copy; the buffer's base
        keeps the map and the reference alive), so ``polars.from_arrow`` is zero-copy too. A 1-d
        array is a primitive array, a 0-d one an array of length 1, an n-d one nested
        ``FixedSizeListArray`` s (row-major). ``bool`` is the one copy: Arrow packs bools in bits."""
        pa = _pyarrow()
        view = self._c.open_dense(name, "r", None)
        shape = tuple(int(d) for d in view.shape)
        n = math.prod(shape)
        if view.dtype == "bool":
            values = pa.array(np.asarray(view).reshape(-1), type=pa.bool_())
        else:
            typ = pa.from_numpy_dtype(np.dtype(view.dtype))
            buf = pa.foreign_buffer(view.address, view.nbytes, base=view)
            values = pa.Array.from_buffers(typ, n, [None, buf])
        for dim in reversed(shape[1:]):
            values = pa.FixedSizeListArray.from_arrays(values, dim)
        return values

    def write_table(
        self, name: str, obj: Any, *, scratch: bool = False, lifecycle: Optional[str] = None
    ) -> None:
        """Publishes ``obj`` as table ``name`` (an Arrow IPC file, SPEC 5.6): a polars DataFrame, a
        pyarrow Table or RecordBatchReader, a pandas DataFrame, or anything with
        ``__arrow_c_stream__``. Columns are first given the layout polars maps without copying
        (``shared_schema``: view strings and binaries, ``time64[ns]``, ``large_list``; see
        bench/README.md "Tables").

        An in-memory table is written as one record batch (chunks combined once, here). A stream
        (RecordBatchReader or other C-stream producer) is written batch by batch as it is read,
        with the GIL released between batches, so a table larger than memory can be published;
        its dictionary columns must then use one dictionary in every batch (an Arrow IPC file
        holds one per column). Nothing is visible before the last batch is written and the file
        synced; on any error nothing is published. ``lifecycle`` / ``scratch``: as for
        ``write``."""
        lifecycle = _lifecycle(lifecycle, scratch)
        self._c.write_table_stream(name, _as_arrow_stream(obj), False, lifecycle)

    def open_table(self, name: str) -> "pyarrow.Table":
        """Opens table ``name`` as a pyarrow Table over the map (no copy: every buffer is a slice
        of this process's one map of ``<name>.arrow``, whose base keeps the map and the reference
        alive while any column is used)."""
        pa = _pyarrow()
        view = self._c.open_table_file(name)
        buf = pa.foreign_buffer(view.address, view.nbytes, base=view)
        return pa.ipc.open_file(buf).read_all()

    def open_polars(self, name: str) -> "polars.DataFrame":
        """Opens table ``name`` as a polars DataFrame over the map (``pl.from_arrow(...,
        rechunk=False)`` of ``open_table``): zero-copy for the layout ``write_table`` stores, except
        dictionary (Categorical/Enum) columns, which polars always converts (about 4 bytes a
        row); see bench/README.md "Tables"."""
        try:
            import polars as pl
        except ImportError as e:  # pragma: no cover - exercised only without polars
            raise ImportError("open_polars needs polars: pip install polars") from e
        return pl.from_arrow(self.open_table(name), rechunk=False)

    def _map_address(self, name: str) -> int:
        """Address of this process's shared map of dense array ``name`` (for zero-copy checks)."""
        return int(self._c.map_address(name))

    def kind(self, name: str) -> str:
        """``"dense"``, ``"sparse"`` or ``"table"``."""
        return str(self._c.kind(name))

    # -- references and removal ---------------------------------------------------------

    def open_or_load(
        self,
        name: str,
        loader: Callable[[], Any],
        *,
        timeout: Optional[float] = None,
        scratch: bool = False,
        lifecycle: Optional[str] = None,
    ) -> Any:
        """Opens ``name`` as ``c[name]`` does (a numpy array, a scipy.sparse matrix or a pyarrow
        Table, by its kind), or, if it is absent, builds it once for the whole host: exactly one
        caller, in any process, calls ``loader()`` and publishes what it returns, while every
        other caller waits (without the GIL) and then maps what was published (SPEC 9.6).

        ``loader()`` returns what ``write`` (anything ``numpy.asarray`` takes), ``write_sparse``
        (a scipy.sparse matrix or array) or ``write_table`` (a polars, pyarrow or pandas frame, or
        an Arrow stream) accept, or ``None`` after publishing ``name`` itself (for example by
        filling a ``with c.create(name, ...)`` block). If it raises, its caller gets the
        exception, nothing is published, and the next waiter runs its own loader. A loader that
        dies (SIGKILL) frees the lock with its process: a waiter takes over at once.
        ``timeout`` (seconds) bounds the wait for another process's load:
        ``LoadTimeoutError`` names that process.

        ``lifecycle``: what the loaded entry is after its last release: ``"cached"`` (None, the
        default: kept for the next user while it fits, evicted when a write needs its room under
        the capacity), ``"persistent"`` or ``"scratch"`` (``scratch=True`` says the same). A write of
        ``name`` in the loader that gives no lifecycle takes this one. The entry is held by this
        process from the moment it is published until it is opened here, so no eviction falls in
        between."""
        lifecycle = _lifecycle(lifecycle, scratch) or "cached"
        try:
            return self[name]
        except _errors.ArrayNotFoundError:
            pass

        def load() -> None:
            value = loader()
            if value is not None:
                self._write_any(name, value)

        # Opened and held by the engine; opened again here as ``c[name]`` does before the
        # engine's handle (and its reference) is let go.
        entry = self._c.open_or_load(name, load, timeout, lifecycle)
        try:
            return self[name]
        finally:
            entry.release()

    def loads(self) -> list[Loader]:
        """Every load in progress in the container (``open_or_load`` holding a load lock)."""
        return [Loader._from_engine(d) for d in self._c.loads()]

    def _write_any(
        self, name: str, value: Any, *, scratch: bool = False, lifecycle: Optional[str] = None
    ) -> None:
        """Publishes ``value`` by its type: a scipy.sparse matrix or array with ``write_sparse``,
        a frame or Arrow table/stream with ``write_table``, anything else with ``write``."""
        module = type(value).__module__.split(".")[0]
        if module == "scipy":
            self.write_sparse(name, value, scratch=scratch, lifecycle=lifecycle)
        elif module in ("polars", "pandas", "pyarrow") or (
            hasattr(value, "__arrow_c_stream__") and not isinstance(value, np.ndarray)
        ):
            pa = _pyarrow()
            if isinstance(value, pa.Array) or isinstance(value, pa.ChunkedArray):
                self.write(name, value.to_numpy(zero_copy_only=False), scratch=scratch,
                           lifecycle=lifecycle)
            else:
                self.write_table(name, value, scratch=scratch, lifecycle=lifecycle)
        else:
            self.write(name, value, scratch=scratch, lifecycle=lifecycle)

    def remove(self, name: str) -> Removal:
        """Removes array ``name``. While live processes hold it the removal is deferred: it is
        gone for new opens at once, and its files are deleted when the last holder releases it
        (or dies). Processes that map it keep reading the old bytes."""
        return Removal._from_engine(self._c.remove(name))

    def set_scratch(self, name: str, on: bool = True) -> None:
        """Marks ``name`` as a scratch array: deleted automatically once it has been held and its
        last reference is released (or its last holder dies). ``on=False``: persistent."""
        self._c.set_scratch(name, on)

    def set_lifecycle(self, name: str, lifecycle: str) -> None:
        """Sets what happens to live ``name`` after its last release: ``"persistent"`` (kept
        until removed), ``"scratch"`` (removed; at once if it was held before and nobody holds
        it now) or ``"cached"`` (kept, but evicted when a write needs its room)."""
        if lifecycle is None:
            raise ValueError("lifecycle None: give 'persistent', 'scratch' or 'cached'")
        self._c.set_lifecycle(name, _lifecycle(lifecycle, False))

    # -- the cache: limits, usage, eviction -------------------------------------------------

    def limits(self) -> Limits:
        """The container's limits: ``capacity`` and ``min_free`` in bytes (None: not set)."""
        return Limits._from_engine(self._c.limits())

    def set_capacity(self, size: Any) -> None:
        """Sets the capacity: the most bytes the data files of all entries (and the staged files
        of writes in flight) may take together; ``size`` is bytes, a string such as ``"400G"``,
        ``"1.5GiB"`` or ``"512M"`` (powers of 1024), or None to clear it. Before a write would go
        over it, cached entries nobody holds are evicted, least recently released first; if that
        cannot make room, the write raises CapacityError. Lowering it evicts nothing by itself:
        the next write evicts what it needs, ``evict()`` trims now. Recorded in the container,
        for every process."""
        self._c.set_capacity(_size(size, "capacity"))

    def set_min_free(self, size: Any) -> None:
        """Sets the free space to keep on the container's file system (a size as for
        ``set_capacity``, or None to clear it): a write that would leave less evicts like one
        over the capacity. Best effort: other programs share the file system."""
        self._c.set_min_free(_size(size, "min_free"))

    def usage(self) -> Usage:
        """The container's bytes: ``entries`` (data files), ``reserved`` (writes in flight),
        ``evictable`` (cached entries nobody holds)."""
        return Usage._from_engine(self._c.usage())

    def evict(self) -> list[Evicted]:
        """Evicts cached entries nobody holds, least recently released first, until the
        container is within its limits (or nothing evictable is left); returns what went."""
        return [Evicted._from_engine(d) for d in self._c.evict()]

    def wait_for_room(self, seconds: Optional[float]) -> None:
        """How long this process's writes to this container wait for room when the limits leave
        none (entries are released by their holders meanwhile) before raising CapacityError:
        ``seconds`` (``math.inf``: as long as it takes), or None (the default): they raise at
        once. The GIL is released while a write waits."""
        if seconds is not None and (
            isinstance(seconds, bool) or not isinstance(seconds, (int, float, np.number))
        ):
            raise ValueError(f"wait_for_room({seconds!r}): give seconds (a number), or None")
        try:
            secs = None if seconds is None else float(seconds)
        except OverflowError:  # an int too large for a float: as long as it takes
            secs = math.inf
        self._c.wait_for_room(secs)

    def hold(self, *names: str) -> Hold:
        """Takes a reference on each array: ``with c.hold("a", "b"):``. While held, the arrays'
        files are not deleted by any process."""
        return Hold(self._c, names)

    def retain(self, name: str) -> None:
        """Takes a reference by hand (match each with ``release``)."""
        self._c.retain(name)

    def release(self, name: str) -> None:
        """Releases a reference taken with ``retain`` (NotHeldError if none is held)."""
        self._c.release(name)

    def local_refs(self, name: str) -> int:
        """References this process holds on ``name`` (open arrays, holds and retains)."""
        return int(self._c.local_refs(name))

    # -- inspection and maintenance -----------------------------------------------------

    def ls(self) -> list[str]:
        """Names of the live arrays, sorted."""
        return list(self._c.ls())

    def info(self, name: str) -> ArrayInfo:
        """What the catalog records about live array ``name`` (ArrayNotFoundError if none)."""
        return ArrayInfo._from_engine(self._c.info(name))

    def info_all(self) -> list[ArrayInfo]:
        """Every array in the catalog, sorted by name, in any state: live, and also ``deleting``
        (removal deferred while held), ``publishing`` and ``removing`` (interrupted, rolled
        forward by the next gc). What ``dafctl ls --json`` prints."""
        return [ArrayInfo._from_engine(d) for d in self._c.info_all()]

    def holders(self) -> list[Holder]:
        """Every process registered in the catalog with the arrays it holds."""
        return [Holder._from_engine(h) for h in self._c.holders()]

    def refs(self) -> list[Holder]:
        """Deprecated: use ``holders()``."""
        warnings.warn(
            "Container.refs() is deprecated; use Container.holders()",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.holders()

    def gc(self) -> GcReport:
        """Garbage collection: rolls forward interrupted operations, reaps dead holders (their
        references and sessions), runs the deletions they were blocking. Runs at every read-write
        open too."""
        return GcReport._from_engine(self._c.gc())

    def fsck(self, *, deep: bool = False, repair: bool = False) -> FsckReport:
        """Checks the container (``deep``: every checksum too) and, with ``repair``, repairs what
        can be repaired without losing committed data."""
        return FsckReport._from_engine(self._c.fsck(deep, repair))

    def import_file(
        self,
        name: str,
        path: "str | os.PathLike[str]",
        *,
        format: Optional[str] = None,
        column: Optional[str] = None,
        fill: Optional[float] = None,
        table: bool = False,
    ) -> list[ImportedArray]:
        """Imports a ``.npy``, ``.npz`` (``scipy.sparse.save_npz`` or plain), Feather / Arrow IPC
        or Parquet file as array ``name``; ``format`` is ``npy``, ``npz``, ``feather`` or
        ``parquet`` (``arrow`` and ``ipc`` name feather too, ``pq`` parquet; default: from the
        extension), the names ``dafctl import --format`` takes. A Parquet file, or a Feather file
        of several columns, becomes a table (``open_table``, ``open_polars``); the dictionaries of
        a Parquet file's categorical columns are unified across its row groups. ``table=True``
        makes a table of a one-column Feather file too (any column type a table holds)."""
        report = self._c.import_file(name, os.fspath(path), format, column, fill, table)
        return [ImportedArray._from_engine(a) for a in report["arrays"]]

    def export(
        self, name: str, path: "str | os.PathLike[str]", *, format: Optional[str] = None
    ) -> None:
        """Exports array ``name``: dense as ``.npy``, Feather or Parquet (one column), sparse as a
        scipy ``.npz``, a table as Feather or Parquet (ZSTD, the Arrow schema embedded: pyarrow and
        polars read back the same types)."""
        self._c.export(name, os.fspath(path), format)

    create = _ArrayMethod(_create_array, _deprecated_create)
    open = _ArrayMethod(_open_array, _deprecated_open)
