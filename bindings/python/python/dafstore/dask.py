"""dafstore as the shared-memory layer of Dask's process workers on one host (issue 19).

Needs ``dask[array,dataframe]`` and ``distributed`` (``pip install "dafstore[dask]"``). Nothing
here schedules anything: the functions build ordinary Dask collections and tasks whose work, in
each worker process, is to open the container (once per process and path, see
:func:`container`) and map what they need. Every worker on a host then shares the same pages,
and a worker that dies leaks nothing: its references die with its session (reaped by the next
read-write open, ``gc()`` or release that meets them).

- :func:`from_container`: a dense array as a ``dask.array.Array`` whose chunks are numpy views of
  the one map; a sparse array as a ``dask.array.Array`` of scipy CSR (CSC) row (column) blocks
  over slices of the mapped ``data``/``indices`` (only the block's ``indptr`` is copied and
  rebased); a table as a ``dask.dataframe.DataFrame`` partitioned by row ranges.
- :func:`share`: publishes an object once as a scratch entry, held by the returned
  :class:`SharedHandle` in this process; ``handle.get()`` in a task maps it (zero-copy).
- :func:`to_container`: writes a Dask array into one dafstore array in parallel: the array is
  staged once, every chunk task fills its part in place through the writer's token, and it is
  published when all are done (nothing is published, and the staging is removed, if any fails).
- :func:`share_file`: a handle on a file on shared storage (``.npy``, ``.npz``, Feather/Arrow
  IPC, Parquet) whose ``get()`` loads it into the calling host's container the first time a task
  there needs it, by exactly one process of that host (``open_or_load``), then maps it: across
  nodes, each host pays for the file once.
- :class:`DafstorePlugin` / :func:`register`: a worker plugin that opens the container when a
  worker starts (so the process has a session), makes it the worker's node-local container for
  :func:`share_file` handles, and closes it when the worker stops.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import threading
import uuid
import weakref
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

import numpy as np

from . import _container, _errors
from ._container import Container, Hold

if TYPE_CHECKING:  # pragma: no cover
    import dask.array
    import dask.dataframe
    import distributed

__all__ = [
    "container",
    "default_path",
    "from_container",
    "to_container",
    "share",
    "share_file",
    "SharedHandle",
    "FileHandle",
    "DafstorePlugin",
    "register",
    "node_path",
]

_Path = Union[str, "os.PathLike[str]"]
_Chunks = Union[str, int, Sequence[Any]]

# --------------------------------------------------------------------------------------------
# One container handle per process and path

_lock = threading.Lock()
_containers: dict[str, Container] = {}
_containers_pid = os.getpid()


def _key(path: _Path) -> str:
    return os.path.realpath(os.fspath(path))


def container(path: _Path, *, create: bool = False) -> Container:
    """This process's read-write handle on the container in ``path``, opened at the first call
    and cached (one per process and path). The cache is keyed by the process id as well: a
    process forked from one that had opened the container opens its own (so what it maps is held
    under its own session). ``create=True``: make the container if there is none."""
    global _containers_pid
    key = _key(path)
    with _lock:
        if _containers_pid != os.getpid():
            # Forked: the inherited handles are the parent's; forget them, open our own.
            _containers.clear()
            _containers_pid = os.getpid()
        c = _containers.get(key)
        if c is None or c.closed:
            c = _open_or_create(key) if create else _container.open(key)
            _containers[key] = c
        return c


def _open_or_create(path: str) -> Container:
    try:
        return _container.open(path)
    except _errors.NotAContainerError:
        pass
    try:
        return _container.create(path)
    except _errors.ContainerExistsError:  # another process made it meanwhile
        return _container.open(path)


def _close(path: _Path) -> None:
    with _lock:
        c = _containers.pop(_key(path), None) if _containers_pid == os.getpid() else None
    if c is not None:
        c.close()


# The container a worker's plugin opened: this process's node-local container.
_node_path: Optional[str] = None


def node_path() -> str:
    """This process's node-local container: the path a :class:`DafstorePlugin` opened in this
    worker, else :func:`default_path`."""
    return _node_path if _node_path is not None else default_path()


def default_path() -> str:
    """The per-user container :func:`share` uses by default: ``/dev/shm/dafstore-dask-<uid>``
    (the system's temporary directory if there is no writable /dev/shm)."""
    root = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
    return os.path.join(root, f"dafstore-dask-{os.getuid()}")


# --------------------------------------------------------------------------------------------
# from_container


def _check_generation(c: Container, name: str, generation: int) -> None:
    # Checked after the open: if the name was published again since the graph was built, the
    # task fails rather than mixing generations (a publish between the open and this check makes
    # it fail too, although the view is of the right generation: a spurious error, never a
    # silent mix).
    now = c.info(name).generation
    if now != generation:
        raise _errors.DafstoreError(
            f"{c.path}: {name!r} was published again (generation {now}) since the Dask "
            f"collection was built over generation {generation}; build it again"
        )


def _dense_block(path: str, name: str, generation: int, index: tuple[slice, ...]) -> np.ndarray:
    c = container(path)
    a = c.open(name)
    _check_generation(c, name, generation)
    return a[index]  # a view: its base keeps the map and the reference while the chunk lives


def _sparse_block(path: str, name: str, generation: int, start: int, stop: int) -> Any:
    import scipy.sparse as sp

    c = container(path)
    parts = c.open_sparse_arrays(name)
    _check_generation(c, name, generation)
    data, indices, indptr = parts.data, parts.indices, parts.indptr
    lo, hi = int(indptr[start]), int(indptr[stop])
    index_dtype = indices.dtype if indices.dtype == indptr.dtype and indices.dtype.kind == "i" else np.int64
    block_indptr = np.subtract(indptr[start:stop + 1], lo, dtype=index_dtype)  # the one copy
    block_indices = indices[lo:hi]
    if block_indices.dtype != index_dtype:
        block_indices = block_indices.astype(index_dtype)
    n = stop - start
    if parts.layout == "rows":
        m = sp.csr_matrix((n, parts.shape[1]), dtype=data.dtype)
    else:
        m = sp.csc_matrix((parts.shape[0], n), dtype=data.dtype)
    # Assigned after construction: scipy's constructor would cast (copy) the index arrays.
    m.data = data[lo:hi]
    m.indices = block_indices
    m.indptr = block_indptr
    return m


def _table_part(bounds: tuple[int, int], path: str, name: str, generation: int, arrow: bool) -> Any:
    import pandas as pd

    start, n = bounds
    c = container(path)
    t = c.open_table(name)
    _check_generation(c, name, generation)
    part = t.slice(start, n)
    if arrow:
        import pyarrow as pa

        # pandas' Arrow-backed columns lack kernels for the view types (take of string_view
        # fails): those columns are cast to large_string / large_binary (a copy of them only);
        # the other columns keep the mapped buffers.
        def plain(f: Any) -> Any:
            if pa.types.is_string_view(f.type):
                return f.with_type(pa.large_string())
            if pa.types.is_binary_view(f.type):
                return f.with_type(pa.large_binary())
            return f

        target = pa.schema([plain(f) for f in part.schema], metadata=part.schema.metadata)
        if not target.equals(part.schema):
            part = part.cast(target)
        df = part.to_pandas(types_mapper=pd.ArrowDtype)
    else:
        df = part.to_pandas()
    df.index = pd.RangeIndex(start, start + n)
    return df


def _lengths(chunks: _Chunks, total: int, bytes_per_item: float) -> tuple[int, ...]:
    """Block lengths along one axis: an int (length of each block), a sequence of lengths, or
    ``"auto"`` (blocks of about dask's ``array.chunk-size`` bytes)."""
    import dask
    from dask.utils import parse_bytes

    if chunks == "auto":
        limit = parse_bytes(dask.config.get("array.chunk-size"))
        chunks = max(1, int(limit // max(bytes_per_item, 1.0)))
    if isinstance(chunks, (int, np.integer)):
        step = int(chunks)
        if step <= 0:
            raise ValueError(f"chunks={chunks!r}: must be positive")
        out = tuple(min(step, total - s) for s in range(0, total, step))
        return out or (0,)
    out = tuple(int(n) for n in chunks)
    if sum(out) != total or any(n < 0 for n in out):
        raise ValueError(f"chunks {out!r} do not add up to {total}")
    return out


def _token_name(kind: str, path: str, name: str, generation: int) -> str:
    from dask.base import tokenize

    return f"dafstore-{kind}-{tokenize(path, name, generation)}"


def from_container(
    path: _Path, name: str, chunks: _Chunks = "auto", *, arrow: bool = False
) -> Union[dask.array.Array, dask.dataframe.DataFrame]:
    """A Dask collection over entry ``name`` of the container in ``path``; its tasks open the
    container in the worker process (one handle per process, :func:`container`) and map the
    entry, so every worker on the host reads the same pages. The graph's keys are deterministic:
    a token of the container's path, the name and the entry's generation (a task fails if the
    name was published again since).

    - dense array: a ``dask.array.Array`` whose chunks are read-only numpy views of the map
      (no copy; each chunk holds a reference while it lives). ``chunks``: what
      ``dask.array.normalize_chunks`` takes (``"auto"``, an int, a tuple per axis, ...).
    - sparse array: a ``dask.array.Array`` of ``scipy.sparse.csr_matrix`` row blocks (CSC:
      ``csc_matrix`` column blocks), whose ``data`` and ``indices`` are slices of the maps; only
      the block's ``indptr`` (rebased to 0) is a copy. ``chunks``: rows (columns) per block, an
      int or a sequence of lengths, or ``"auto"``. ``compute()`` concatenates the blocks; Dask's
      reductions (``.sum()``) fail on scipy blocks (scipy's ``sum`` takes no ``keepdims``):
      reduce with ``map_blocks`` or over ``to_delayed()``.
    - table: a ``dask.dataframe.DataFrame`` with one partition per row range and the row number
      as its index. ``chunks``: rows per partition (int or lengths) or ``"auto"``. Each partition
      is ``pyarrow.Table.to_pandas`` of a slice of the mapped table: pandas copies the columns
      into its own blocks (strings become Python objects, or pyarrow strings under dask's
      ``dataframe.convert-string``). ``arrow=True``: pyarrow-backed columns
      (``pandas.ArrowDtype``) that keep the mapped buffers, except string and binary view
      columns, cast to ``large_string`` / ``large_binary`` (pandas has no kernels for the view
      types)."""
    import dask.array as da

    key = _key(path)
    c = container(key)
    info = c.info(name)
    if info.kind == "dense":
        dtype = np.dtype(info.dtype)
        shape = tuple(info.shape)
        norm = da.core.normalize_chunks(chunks, shape, dtype=dtype)
        out = _token_name("dense", key, name, info.generation)
        starts = [np.cumsum((0,) + c_[:-1]) if c_ else np.zeros(0, int) for c_ in norm]
        dsk: dict[Any, Any] = {}
        for idx in itertools.product(*(range(len(c_)) for c_ in norm)):
            index = tuple(
                slice(int(starts[d][i]), int(starts[d][i]) + norm[d][i]) for d, i in enumerate(idx)
            )
            dsk[(out,) + idx] = (_dense_block, key, name, info.generation, index)
        return da.Array(dsk, out, norm, dtype=dtype)
    if info.kind == "sparse":
        import scipy.sparse as sp

        rows, cols = (int(d) for d in info.shape)
        by_rows = info.layout == "rows"
        along, across = (rows, cols) if by_rows else (cols, rows)
        item = np.dtype(info.data_dtype).itemsize + np.dtype(info.indices_dtype).itemsize
        per = (int(info.nnz or 0) * item) / max(along, 1) + np.dtype(info.indptr_dtype).itemsize
        lengths = _lengths(chunks, along, per)
        out = _token_name("sparse", key, name, info.generation)
        dsk = {}
        s = 0
        for i, n in enumerate(lengths):
            k = (out, i, 0) if by_rows else (out, 0, i)
            dsk[k] = (_sparse_block, key, name, info.generation, s, s + n)
            s += n
        dtype = np.dtype(info.data_dtype)
        norm = (lengths, (across,)) if by_rows else ((across,), lengths)
        meta = (sp.csr_matrix if by_rows else sp.csc_matrix)((0, 0), dtype=dtype)
        return da.Array(dsk, out, norm, dtype=dtype, meta=meta)
    if info.kind == "table":
        import dask.dataframe as dd

        rows = int(info.rows or 0)
        lengths = _lengths(chunks, rows, info.bytes / max(rows, 1))
        bounds, s = [], 0
        for n in lengths:
            bounds.append((s, n))
            s += n
        meta = _table_part((0, 0), key, name, info.generation, arrow)
        divisions = (
            tuple(b[0] for b in bounds) + (rows - 1,) if rows else (None, None)
        )
        return dd.from_map(
            _table_part, bounds, args=(key, name, info.generation, arrow), meta=meta,
            divisions=divisions, label="dafstore-table", enforce_metadata=False,
        )  # the key is dask's token of the function and its arguments: path, name, generation
    raise _errors.KindMismatchError(f"{name!r} is a {info.kind} entry, which Dask cannot read")


# --------------------------------------------------------------------------------------------
# share


def _release_at_gc(hold: Hold, pid: int) -> None:
    # Only in the process that took the hold (a forked child inherits the finalizer too). At
    # garbage collection (or interpreter exit) there is no caller to tell: an error (such as a
    # container deleted meanwhile) is dropped; the session's end releases the reference anyway.
    if os.getpid() == pid:
        try:
            hold.release()
        except _errors.DafstoreError:
            pass


class SharedHandle:
    """An object published once in a container (:func:`share`), passed to tasks by value: it
    pickles as ``(path, name, kind)``. ``get()`` maps the entry in the calling process.

    The handle :func:`share` returns owns a reference (a hold) on the entry in the process that
    made it; ``close()``, the end of its ``with`` block or its garbage collection releases it.
    Copies (pickled to workers) own nothing: dropping them releases nothing. The entry is a
    scratch entry: deleted at the last release by any process, so it lives while the owner's
    hold or any task's view of it lives."""

    __slots__ = ("path", "name", "kind", "_finalizer", "__weakref__")

    def __init__(self, path: str, name: str, kind: str, hold: Optional[Hold] = None) -> None:
        self.path = path
        self.name = name
        self.kind = kind
        self._finalizer = (
            weakref.finalize(self, _release_at_gc, hold, os.getpid()) if hold is not None else None
        )

    def get(self) -> Any:
        """The shared value, mapped in this process (zero-copy): a read-only numpy array, a
        scipy.sparse matrix over the maps, or a pyarrow Table. It holds a reference on the entry
        while it lives."""
        return container(self.path)[self.name]

    @property
    def owner(self) -> bool:
        """Whether this is the handle holding the entry (not a copy)."""
        return self._finalizer is not None and self._finalizer.alive

    def close(self) -> None:
        """Releases the owner's hold (nothing for a copy). Idempotent."""
        detached = self._finalizer.detach() if self._finalizer is not None else None
        if detached is not None:
            _, _, (hold, pid), _ = detached
            if os.getpid() == pid:
                hold.release()

    def __enter__(self) -> "SharedHandle":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close()

    def __reduce__(self) -> Any:
        return (SharedHandle, (self.path, self.name, self.kind))

    def __repr__(self) -> str:
        role = "owner" if self.owner else "copy"
        return f"<dafstore.dask.SharedHandle {self.path}:{self.name} {self.kind} ({role})>"


def share(obj: Any, path: Optional[_Path] = None) -> SharedHandle:
    """Publishes ``obj`` once in the container ``path`` (default: :func:`default_path`, created
    if missing) under a new unique name, as a scratch entry held by the returned handle, and
    returns the handle to pass to tasks. ``obj``: a numpy array (or anything ``numpy.asarray``
    takes), a scipy.sparse matrix (stored as CSR, or CSC if it is one), a polars, pyarrow or
    pandas frame (a table).

        >>> with share(x) as h:                                 # doctest: +SKIP
        ...     client.map(lambda h, i: h.get()[i].sum(), [h] * 8, range(8))
    """
    key = _key(path if path is not None else default_path())
    c = container(key, create=True)
    module = type(obj).__module__.split(".")[0]
    if module == "scipy" and getattr(obj, "format", None) not in ("csr", "csc"):
        obj = obj.tocsr()
    name = f"dask-share/{uuid.uuid4().hex}"
    c._write_any(name, obj, scratch=True)
    # Not yet held, so a scratch entry is not deleted before this hold (it has never been held).
    hold = c.hold(name)
    return SharedHandle(key, name, c.kind(name), hold)


# --------------------------------------------------------------------------------------------
# to_container


def _fill_block(block: np.ndarray, path: str, token: str, block_info: Any = None) -> np.ndarray:
    # In the worker: the block's place in the whole array, written through the staged file.
    where = tuple(slice(a, b) for a, b in block_info[0]["array-location"])
    target = container(path).open_staged(token)
    target[where] = block
    del target
    return np.ones((1,) * block.ndim, dtype=bool)


def to_container(
    x: "dask.array.Array",
    path: _Path,
    name: str,
    *,
    lifecycle: Optional[str] = None,
    create: bool = True,
    **compute_kwargs: Any,
) -> None:
    """Computes Dask array ``x`` into dense array ``name`` of the container in ``path`` (created
    if missing with ``create``), in parallel and without a gather: the array is staged once here
    (its space reserved, under the container's capacity), each chunk's task writes its part in
    place through the staged file (every worker must see ``path``: one host, or a shared local
    file system), and the array is published atomically once every task is done. If any task
    fails, nothing is published, the staging is removed, and the task's exception is raised.
    ``lifecycle``: as for ``Container.write``. ``compute_kwargs`` go to ``dask.compute`` (for
    example ``scheduler=``; the default scheduler otherwise, a ``distributed.Client``'s if one
    is active).

        >>> to_container(da.random.random((10_000, 1_000)), "/dev/shm/out", "x")  # doctest: +SKIP
    """
    import dask

    key = _key(path)
    c = container(key, create=create)
    dtype = np.dtype(x.dtype)
    writer = c.create(name, tuple(int(d) for d in x.shape), dtype, lifecycle=lifecycle)
    try:
        if x.size:
            done = x.map_blocks(
                _fill_block,
                key,
                writer.token,
                dtype=bool,
                chunks=tuple((1,) * len(c) for c in x.chunks),
                meta=np.empty((0,) * x.ndim, dtype=bool),
            )
            (flags,) = dask.compute(done, **compute_kwargs)
            if not bool(np.all(flags)):  # pragma: no cover - every task returns True or raises
                raise _errors.DafstoreError(f"to_container {name!r}: a chunk was not written")
    except BaseException:
        writer.discard()
        raise
    writer.publish()


# --------------------------------------------------------------------------------------------
# Files on shared storage, loaded once per host


def _file_identity(path: str) -> str:
    import hashlib

    st = os.stat(path)
    ident = f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}".encode()
    return hashlib.sha256(ident).hexdigest()[:32]


class FileHandle:
    """A file on shared storage, passed to tasks by value (it pickles as its path, entry name
    and options). ``get()`` maps it from this host's container (:func:`node_path`), loading it
    there first if no process of the host has: exactly one process per host reads the file
    (``open_or_load``), the others wait and map what it published. The entry is ``cached``: it
    stays while it fits under the container's capacity and is evicted, least recently released
    first, when room is needed (then the next ``get()`` loads it again)."""

    __slots__ = ("file", "name", "table", "format", "column")

    def __init__(
        self,
        file: str,
        name: str,
        table: bool = False,
        format: Optional[str] = None,
        column: Optional[str] = None,
    ) -> None:
        self.file = file
        self.name = name
        self.table = table
        self.format = format
        self.column = column

    def get(self, path: Optional[_Path] = None) -> Any:
        """The file's contents mapped in this process (a read-only numpy array, a scipy.sparse
        matrix or a pyarrow Table), from the container ``path`` (default :func:`node_path`)."""
        c = container(path if path is not None else node_path(), create=True)

        def load() -> None:
            c.import_file(
                self.name, self.file, format=self.format, column=self.column, table=self.table
            )

        return c.open_or_load(self.name, load)

    def __reduce__(self) -> Any:
        return (FileHandle, (self.file, self.name, self.table, self.format, self.column))

    def __repr__(self) -> str:
        return f"<dafstore.dask.FileHandle {self.file} as {self.name}>"


def share_file(
    file: _Path,
    *,
    table: bool = False,
    format: Optional[str] = None,
    column: Optional[str] = None,
) -> FileHandle:
    """A :class:`FileHandle` on ``file`` (``.npy``, ``.npz`` holding one array or a scipy.sparse
    matrix, Feather/Arrow IPC, Parquet; ``table``, ``format``, ``column``: as for
    ``Container.import_file``). Its entry name is derived from the file's path, size, change
    time and inode, so a file rewritten in place is loaded again, never confused with its old
    contents. Nothing is read here.

        >>> h = share_file("/shared/day1.parquet", table=True)            # doctest: +SKIP
        >>> client.map(lambda h, i: h.get().num_rows, [h] * 8, range(8))  # doctest: +SKIP
    """
    real = os.path.realpath(os.fspath(file))
    return FileHandle(real, f"dask-file/{_file_identity(real)}", table, format, column)


# --------------------------------------------------------------------------------------------
# Worker plugin

try:
    from distributed import WorkerPlugin as _WorkerPlugin
except ImportError:  # pragma: no cover - without distributed the plugin is a plain class
    _WorkerPlugin = object  # type: ignore[misc,assignment]


class DafstorePlugin(_WorkerPlugin):  # type: ignore[misc,valid-type]
    """A ``distributed.WorkerPlugin`` that opens the container in ``path`` when a worker starts
    (the read-write open reaps the sessions of dead processes, and the worker gets its own
    session) and closes this process's handle when the worker stops. ``create=True``: make the
    container if there is none (for a node-local path such as one in /dev/shm)."""

    def __init__(self, path: _Path, *, create: bool = False) -> None:
        self.path = _key(path)
        self.create = create
        self.name = f"dafstore:{self.path}"  # one plugin per path; registering again replaces it

    def setup(self, worker: Any) -> None:
        global _node_path
        container(self.path, create=self.create)
        _node_path = self.path

    def teardown(self, worker: Any) -> None:
        global _node_path
        if _node_path == self.path:
            _node_path = None
        _close(self.path)


def register(client: "distributed.Client", path: _Path, *, create: bool = False) -> None:
    """Registers :class:`DafstorePlugin` for ``path`` on every worker of ``client`` (and the ones
    that join later)."""
    client.register_plugin(DafstorePlugin(path, create=create))
