"""Type stubs of the ``dafstore`` package (the implementation is ``dafstore/_container.py``)."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from os import PathLike
from typing import Any, Callable, Iterator, Literal, Optional, Protocol, Sequence, Union, overload

from typing_extensions import deprecated

import numpy as np
import numpy.typing as npt
import pyarrow
import scipy.sparse
from typing_extensions import deprecated

from ._errors import (
    ArrayNotFoundError as ArrayNotFoundError,
    CapacityError as CapacityError,
    CatalogError as CatalogError,
    ContainerClosedError as ContainerClosedError,
    ContainerExistsError as ContainerExistsError,
    CorruptArrayError as CorruptArrayError,
    DafstoreError as DafstoreError,
    DafstoreFileNotFoundError as DafstoreFileNotFoundError,
    DafstoreOSError as DafstoreOSError,
    DafstorePermissionError as DafstorePermissionError,
    DtypeMismatchError as DtypeMismatchError,
    InteropError as InteropError,
    InvalidArrayError as InvalidArrayError,
    InvalidNameError as InvalidNameError,
    KindMismatchError as KindMismatchError,
    NameConflictError as NameConflictError,
    NoSpaceError as NoSpaceError,
    NotAContainerError as NotAContainerError,
    LoadTimeoutError as LoadTimeoutError,
    NotHeldError as NotHeldError,
    HoldingSession as HoldingSession,
    Occupant as Occupant,
    ReadOnlyError as ReadOnlyError,
    UnsupportedDtypeError as UnsupportedDtypeError,
    UnsupportedFileSystemError as UnsupportedFileSystemError,
    UnsupportedVersionError as UnsupportedVersionError,
)

__version__: str

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
    "DafstoreError",
    "ArrayNotFoundError",
    "NotAContainerError",
    "DafstoreFileNotFoundError",
    "ContainerExistsError",
    "NameConflictError",
    "InvalidNameError",
    "InvalidArrayError",
    "UnsupportedDtypeError",
    "KindMismatchError",
    "DtypeMismatchError",
    "ReadOnlyError",
    "DafstorePermissionError",
    "LoadTimeoutError",
    "NotHeldError",
    "ContainerClosedError",
    "NoSpaceError",
    "CapacityError",
    "CorruptArrayError",
    "UnsupportedVersionError",
    "UnsupportedFileSystemError",
    "CatalogError",
    "InteropError",
    "DafstoreOSError",
]

_Path = Union[str, PathLike[str]]
_Shape = Union[int, Sequence[int]]
#: What happens to an entry after its last release.
_Lifecycle = Literal["persistent", "scratch", "cached"]
#: A size in bytes: an int, or a string such as "400G", "1.5GiB", "512M" (powers of 1024).
_Size = Union[int, str]

#: The dtypes dafstore stores (numpy spellings).
DTYPES: tuple[str, ...]
#: The lifecycles: "persistent", "scratch", "cached".
LIFECYCLES: tuple[str, ...]

def create(
    path: _Path, *, capacity: Optional[_Size] = None, min_free: Optional[_Size] = None
) -> Container:
    """Creates a new container in ``path`` (made if missing) and opens it read-write, with a
    capacity and a free space floor if given. ContainerExistsError if it already is one."""

def open(path: _Path, *, read_only: bool = False, gc: bool = True) -> Container:
    """Opens the container in ``path``: read-write (rolling interrupted publishes forward and
    reaping dead holders, unless ``gc=False``), or ``read_only=True`` (changes nothing, takes no
    references). NotAContainerError if there is none."""

def cache_stats() -> tuple[int, int]:
    """``(live_maps, maps_created)`` of this process's map cache (for leak checks)."""

# The report classes: the engine's report types, with exactly the keys it serializes
# (``dafctl --json`` prints the same).

@dataclass(frozen=True)
class FileInfo:
    suffix: str
    size: int
    crc32c: Optional[int]

@dataclass(frozen=True)
class ArrayInfo:
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
    state: str
    generation: int
    bytes: int
    files: tuple[FileInfo, ...]
    checksum_stale: bool
    lifecycle: str
    scratch: bool
    released_at: Optional[int]
    ever_held: bool
    staging: Optional[str]
    holders: int
    local_refs: int

@dataclass(frozen=True)
class HeldArray:
    name: str
    since_ms: int
    count: int

@dataclass(frozen=True)
class Loader:
    session: str
    pid: int
    name: str

@dataclass(frozen=True)
class Holder:
    session: str
    pid: Optional[int]
    alive: bool
    this_process: bool
    started_at_ms: Optional[int]
    arrays: tuple[HeldArray, ...]
    loading: tuple[str, ...]

@dataclass(frozen=True)
class Removal:
    deferred: bool
    holders: int

@dataclass(frozen=True)
class GcFailure:
    name: str
    error: str
    def __iter__(self) -> Iterator[str]: ...

@dataclass(frozen=True)
class GcReport:
    recovered: int
    failed: tuple[GcFailure, ...]
    reaped_sessions: tuple[str, ...]
    deleted: tuple[str, ...]
    staging_removed: int
    deferred: tuple[str, ...]

@dataclass(frozen=True)
class Problem:
    kind: str
    path: str
    name: Optional[str]
    message: str
    fixed: bool

@dataclass(frozen=True)
class DafFile:
    path: str
    kind: str

@dataclass(frozen=True)
class FsckReport:
    arrays_checked: int
    problems: tuple[Problem, ...]
    exit_code: int
    daf_files: tuple[DafFile, ...]
    @property
    def clean(self) -> bool: ...

@dataclass(frozen=True)
class ImportedArray:
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
class Limits:
    capacity: Optional[int]
    min_free: Optional[int]

@dataclass(frozen=True)
class Usage:
    entries: int
    reserved: int
    evictable: int

@dataclass(frozen=True)
class Evicted:
    name: str
    bytes: int
    def __iter__(self) -> Iterator[Any]: ...

@dataclass(frozen=True)
class SparseArrays:
    layout: str
    shape: tuple[int, int]
    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray

class Batch:
    """Arrays to publish together, all or none (``Container.batch``, SPEC [W11])."""

    def write(self, name: str, array: npt.ArrayLike) -> None: ...
    def __len__(self) -> int: ...
    def publish(self) -> None: ...
    def discard(self) -> None: ...
    def __enter__(self) -> Batch: ...
    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None: ...

class ArrayWriter:
    """A dense array being created; ``with c.create(name, shape, dtype) as a:`` fills ``a`` (the
    map) and publishes on success, discards on an exception."""

    name: str
    def __init__(self, native: Any, name: str) -> None:
        """Internal: made by ``c.create(name, shape, dtype)``."""
    @property
    def array(self) -> np.ndarray: ...
    @property
    def pending(self) -> bool: ...
    @property
    def token(self) -> str:
        """Lets other processes fill this array in place: ``c.open_staged(token)``."""
    def publish(self) -> None: ...
    def discard(self) -> None: ...
    def __enter__(self) -> np.ndarray: ...
    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None: ...

class Hold:
    """References on arrays, released by ``release()`` or at the end of a ``with`` block."""

    names: tuple[str, ...]
    def __init__(self, native: Any, names: Sequence[str]) -> None:
        """Internal: made by ``Container.hold(*names)``."""
    @property
    def held(self) -> bool: ...
    def release(self) -> None: ...
    def __enter__(self) -> Hold: ...
    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None: ...

_SparseMatrix = Union[
    scipy.sparse.csr_matrix, scipy.sparse.csc_matrix, scipy.sparse.csr_array,
    scipy.sparse.csc_array,
]
#: What ``c[name]`` gives: a numpy array (dense) or a scipy.sparse matrix (sparse).
_ArrayValue = Union[np.ndarray, _SparseMatrix]

class _CreateContainer(Protocol):
    def __call__(self, path: _Path) -> Container: ...

class _CreateArray(Protocol):
    def __call__(
        self,
        name: str,
        shape: _Shape,
        dtype: npt.DTypeLike = "float64",
        *,
        scratch: bool = False,
        reserve: bool = True,
        lifecycle: Optional[_Lifecycle] = None,
    ) -> ArrayWriter: ...

class _OpenContainer(Protocol):
    def __call__(self, path: _Path, readonly: bool = False) -> Container: ...

class _OpenArray(Protocol):
    def __call__(
        self, name: str, mode: str = "r", *, dtype: Optional[npt.DTypeLike] = None
    ) -> np.ndarray: ...

class _Create:
    @overload
    @deprecated("Container.create(path) is deprecated; use dafstore.create(path)")
    def __get__(self, obj: None, owner: Any) -> _CreateContainer: ...
    @overload
    def __get__(self, obj: Container, owner: Any) -> _CreateArray: ...

class _Open:
    @overload
    @deprecated("Container.open(path, readonly=...) is deprecated; use dafstore.open(path, read_only=...)")
    def __get__(self, obj: None, owner: Any) -> _OpenContainer: ...
    @overload
    def __get__(self, obj: Container, owner: Any) -> _OpenArray: ...

class Container(Mapping[str, _ArrayValue]):
    """A dafstore container (``dafstore.create(path)``, ``dafstore.open(path)``), and a read-only
    mapping of name to array: ``c[name]`` is ``c.open(name)`` (dense) or ``c.open_sparse(name)``
    (sparse). ``c.create(name, shape, dtype)`` / ``c.open(name, mode)`` create and open arrays;
    on the class, ``Container.create(path)`` / ``Container.open(path)`` are deprecated."""

    create: _Create
    open: _Open
    def __init__(self, native: Any) -> None:
        """Internal: use ``dafstore.create(path)`` or ``dafstore.open(path)``."""
    @property
    def path(self) -> str: ...
    @property
    def read_only(self) -> bool: ...
    @property
    @deprecated("Container.readonly is deprecated; use Container.read_only")
    def readonly(self) -> bool: ...
    @property
    def closed(self) -> bool: ...
    def close(self) -> None: ...
    def __enter__(self) -> Container: ...
    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None: ...
    def __contains__(self, name: object) -> bool: ...
    def __iter__(self) -> Iterator[str]: ...
    def __len__(self) -> int: ...
    def __getitem__(self, name: str) -> _ArrayValue: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...
    def __bool__(self) -> bool: ...
    def write(
        self,
        name: str,
        array: npt.ArrayLike,
        *,
        scratch: bool = False,
        reserve: bool = True,
        lifecycle: Optional[_Lifecycle] = None,
    ) -> None: ...
    def write_many(
        self,
        arrays: Mapping[str, npt.ArrayLike] | Iterable[tuple[str, npt.ArrayLike]],
        *,
        lifecycle: Optional[_Lifecycle] = None,
    ) -> None: ...
    def batch(self, *, lifecycle: Optional[_Lifecycle] = None) -> Batch: ...
    def write_sparse(
        self,
        name: str,
        matrix: Any,
        *,
        scratch: bool = False,
        lifecycle: Optional[_Lifecycle] = None,
    ) -> None: ...
    def open_sparse(self, name: str, *, array: bool = False) -> _SparseMatrix: ...
    def open_sparse_arrays(self, name: str) -> SparseArrays: ...
    def open_arrow(self, name: str) -> pyarrow.Array: ...
    def write_table(
        self,
        name: str,
        obj: Any,
        *,
        scratch: bool = False,
        lifecycle: Optional[_Lifecycle] = None,
    ) -> None: ...
    def open_table(self, name: str) -> pyarrow.Table: ...
    def open_polars(self, name: str) -> Any: ...
    def kind(self, name: str) -> str: ...
    def open_staged(self, token: str) -> np.ndarray:
        """Another writer's array being created (``ArrayWriter.token``), writable in place."""
    def open_or_load(
        self,
        name: str,
        loader: Callable[[], Any],
        *,
        timeout: Optional[float] = None,
        scratch: bool = False,
        lifecycle: Optional[_Lifecycle] = None,
    ) -> Any: ...
    def loads(self) -> list[Loader]: ...
    def remove(self, name: str) -> Removal: ...
    def set_scratch(self, name: str, on: bool = True) -> None: ...
    def set_lifecycle(self, name: str, lifecycle: _Lifecycle) -> None: ...
    def limits(self) -> Limits: ...
    def set_capacity(self, size: Optional[_Size]) -> None: ...
    def set_min_free(self, size: Optional[_Size]) -> None: ...
    def usage(self) -> Usage: ...
    def evict(self) -> list[Evicted]: ...
    def wait_for_room(self, seconds: Optional[float]) -> None: ...
    def hold(self, *names: str) -> Hold: ...
    def retain(self, name: str) -> None: ...
    def release(self, name: str) -> None: ...
    def local_refs(self, name: str) -> int: ...
    def ls(self) -> list[str]: ...
    def info(self, name: str) -> ArrayInfo: ...
    def info_all(self) -> list[ArrayInfo]: ...
    def holders(self) -> list[Holder]: ...
    @deprecated("use holders()")
    def refs(self) -> list[Holder]: ...
    def gc(self) -> GcReport: ...
    def fsck(self, *, deep: bool = False, repair: bool = False) -> FsckReport: ...
    def import_file(
        self,
        name: str,
        path: _Path,
        *,
        format: Optional[str] = None,
        column: Optional[str] = None,
        fill: Optional[float] = None,
        table: bool = False,
    ) -> list[ImportedArray]: ...
    def export(self, name: str, path: _Path, *, format: Optional[str] = None) -> None: ...
    def _map_address(self, name: str) -> int: ...
