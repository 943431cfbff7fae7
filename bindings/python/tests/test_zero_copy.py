"""Views are the map itself: the numpy array's data pointer is the address of the engine's map, two
opens share it, pyarrow, polars and scipy views point into it too; the view's base owns the map
and the reference, which are released exactly when the last view is garbage-collected."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pyarrow as pa
import polars as pl
import scipy.sparse as sp

import dafstore
from dafstore import _native


def data_pointer(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def test_numpy_array_is_the_map(container: dafstore.Container) -> None:
    container.write("x", np.arange(1 << 16, dtype=np.float64))
    a = container.open("x")
    b = container.open("x")
    assert data_pointer(a) == container._map_address("x") == data_pointer(b)
    assert data_pointer(a) % 4096 == 0  # a map starts on a page
    assert isinstance(a.base, _native.MappedView) and a.base.name == "x"
    assert not a.flags.owndata and not a.flags.writeable
    v = a[10:20]  # a view of the view: same memory, same owner
    assert data_pointer(v) == data_pointer(a) + 80 and (v.base is a.base or v.base is a)


def test_arrow_and_polars_share_the_map(container: dafstore.Container) -> None:
    container.write("x", np.arange(1000, dtype=np.int64))
    address = container._map_address("x")
    t = container.open_arrow("x")
    assert t.buffers()[1].address == address
    s = pl.from_arrow(t)
    assert s.to_arrow().buffers()[1].address == address
    assert data_pointer(s.to_numpy()) == address
    assert s.sum() == 999 * 1000 // 2
    container.write("m", np.arange(12.0).reshape(3, 4))
    nested = container.open_arrow("m")
    assert nested.flatten().buffers()[1].address == container._map_address("m")


def test_scipy_matrix_is_over_the_maps(container: dafstore.Container) -> None:
    m = sp.random(200, 100, density=0.05, format="csr", random_state=0)
    container.write_sparse("m", m)
    got = container.open_sparse("m")
    for part in (got.data, got.indices, got.indptr):
        assert isinstance(part.base, _native.MappedView)
        assert data_pointer(part) == part.base.address
        assert not part.flags.writeable
    again = container.open_sparse("m")
    assert data_pointer(again.data) == data_pointer(got.data)  # one map per file per process


def test_the_map_and_reference_live_exactly_as_long_as_a_view(
    container: dafstore.Container,
) -> None:
    container.write("x", np.arange(100.0))
    gc.collect()
    live_before = dafstore.cache_stats()[0]
    a = container.open("x")
    owner = weakref.ref(a.base)
    assert container.local_refs("x") == 1
    assert dafstore.cache_stats()[0] == live_before + 1
    container.close()  # the handle goes; the array keeps its own
    c2 = dafstore.open(container.path)
    assert c2.local_refs("x") == 1
    assert a[99] == 99.0
    del a
    gc.collect()
    assert owner() is None
    assert c2.local_refs("x") == 0
    assert dafstore.cache_stats()[0] == live_before


def test_arrow_buffer_keeps_the_map_alive_alone(container: dafstore.Container) -> None:
    container.write("x", np.arange(50.0))
    t = container.open_arrow("x")
    gc.collect()
    assert container.local_refs("x") == 1
    assert container.remove("x").deferred  # held by the Arrow array only
    assert t.to_pylist()[49] == 49.0
    del t
    gc.collect()
    assert container.local_refs("x") == 0
    assert "x" not in container


def test_polars_frame_keeps_the_map_alive(container: dafstore.Container) -> None:
    container.write("x", np.arange(10.0))
    df = pl.DataFrame({"x": pl.from_arrow(container.open_arrow("x"))})
    gc.collect()
    assert container.local_refs("x") == 1
    del df
    gc.collect()
    assert container.local_refs("x") == 0


def test_in_place_view_writes_the_shared_pages(container: dafstore.Container) -> None:
    container.write("x", np.zeros(1024))
    r = container.open("x")
    w = container.open("x", "r+")
    w[:] = 3.0  # a writable MAP_SHARED map of the same file: the same page-cache pages
    assert r.sum() == 3.0 * 1024
    c = container.open("x", "c")
    assert data_pointer(c) != data_pointer(r)  # copy-on-write is a private map


def test_arrow_array_is_typed_and_sized_as_the_map(container: dafstore.Container) -> None:
    container.write("x", np.arange(8, dtype=np.int32))
    t = container.open_arrow("x")
    assert isinstance(t, pa.Int32Array) and t.null_count == 0
    data = t.buffers()[1]
    assert data.size == 32 and data.address == container._map_address("x")
    assert t.to_pylist() == list(range(8))
