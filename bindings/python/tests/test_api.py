"""The Python API round trip: every dtype and shape written from numpy reads back equal to numpy's
values, through numpy, scipy.sparse and pyarrow; the open modes, the create block, replacement,
references, removal, scratch arrays and the inspection calls behave as documented."""

from __future__ import annotations

import collections.abc
import gc
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp

import dafstore

ALL_DTYPES = [
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64",
]


def sample(dtype: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape)) if shape else 1
    if dtype == "bool":
        flat = rng.integers(0, 2, n).astype(bool)
    elif dtype.startswith(("int", "uint")):
        info = np.iinfo(dtype)
        flat = rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True)
    else:
        flat = (rng.standard_normal(n) * 1000).astype(dtype)
    return flat.reshape(shape)


def test_dtypes_are_the_engines() -> None:
    assert list(dafstore.DTYPES) == ALL_DTYPES


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (7,), (3, 5), (2, 3, 4), (4, 0, 2)])
def test_dense_round_trip_equals_numpy(container: dafstore.Container, dtype: str, shape) -> None:
    want = sample(dtype, shape)
    container.write("a", want)
    got = container.open("a")
    assert got.dtype == np.dtype(dtype)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert not got.flags.writeable


def test_non_contiguous_big_endian_and_fortran_inputs_are_stored_as_numpy_sees_them(
    container: dafstore.Container,
) -> None:
    base = np.arange(60, dtype=np.float64).reshape(6, 10)
    cases = {
        "strided": base[::2, ::3],
        "fortran": np.asfortranarray(base),
        "big": base.astype(">f8"),
        "transposed": base.T,
        "list": [[1, 2], [3, 4]],
    }
    for name, a in cases.items():
        container.write(name, a)
        np.testing.assert_array_equal(container.open(name), np.asarray(a))
    assert container.open("big").dtype == np.dtype("<f8")


def test_create_block_fills_the_map_and_publishes_on_success(
    container: dafstore.Container,
) -> None:
    with container.create("x", (100, 3), "int32") as a:
        assert a.flags.writeable and a.dtype == np.int32 and a.shape == (100, 3)
        assert not a.any()  # zero-filled
        assert "x" not in container  # nothing visible before the block ends
        a[:] = np.arange(300, dtype=np.int32).reshape(100, 3)
    np.testing.assert_array_equal(container.open("x"), np.arange(300).reshape(100, 3))
    # After the block the array stays valid memory, read-only, a private copy of the file.
    assert not a.flags.writeable
    assert a[99, 2] == 299
    maps = open("/proc/self/maps").read()
    start = f"{a.__array_interface__['data'][0]:x}-"
    line = next(line for line in maps.splitlines() if line.startswith(start))
    assert line.split()[1].endswith("p"), line  # MAP_PRIVATE: stray writes cannot reach the file
    assert container.fsck(deep=True).clean


DERIVED_VIEW = textwrap.dedent(
    """
    import sys
    import numpy as np
    import dafstore

    c = dafstore.open(sys.argv[1])
    with c.create("x", (1 << 20,), "int64") as a:
        tail = a[1:]  # a writable view of the map, kept after the block
        a[:] = 7
    assert tail.flags.writeable and not a.flags.writeable
    tail[:] = -1  # after publishing: stays in this process
    assert a[1] == -1 and a[0] == 7  # the block's memory is still the same (now private) pages
    assert (c.open("x") == 7).all()  # the published array is untouched
    with c.create("y", (1000,), "int64") as b:
        keep = b[:]
        b[:] = 5
        c.open("x")  # anything else may happen meanwhile
    keep[0] = 0
    assert c.fsck(deep=True).clean  # checksums are those of the published bytes
    line = next(l for l in open("/proc/self/maps") if l.startswith(f"{a.ctypes.data:x}-"))
    print("ok", line.split()[1])
    """
)


def _without_capabilities() -> list[str]:
    """A command prefix that drops every capability (CAP_SYS_ADMIN, CAP_CHECKPOINT_RESTORE...),
    so a test run as root sees what an ordinary user's process sees."""
    if os.geteuid() == 0 and shutil.which("setpriv"):
        return ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"]
    return []


def test_views_kept_from_a_create_block_never_write_to_the_published_file(
    container: dafstore.Container, workdir: Path
) -> None:
    script = workdir / "derived.py"
    script.write_text(DERIVED_VIEW)
    r = subprocess.run(
        [*_without_capabilities(), sys.executable, str(script), container.path],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)  # -11 was a SIGSEGV
    # A private (copy-on-write) mapping of the file: writes cannot reach it.
    assert r.stdout.split() == ["ok", "rw-p"], r.stdout


def test_create_block_discards_on_exception(container: dafstore.Container) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with container.create("x", (10,), "float64") as a:
            a[:] = 1.0
            raise RuntimeError("boom")
    assert "x" not in container
    assert container.ls() == []
    assert a[3] == 1.0 and not a.flags.writeable  # still valid memory, now read-only
    staged = [p for p in Path(container.path, ".dafstore", "staging").rglob("*") if p.is_file()]
    assert staged == []  # the staging file was removed
    assert container.fsck().clean


def test_writer_without_with(container: dafstore.Container) -> None:
    w = container.create("x", (4,), np.float32)
    w.array[:] = [1, 2, 3, 4]
    assert w.pending
    w.publish()
    assert not w.pending
    np.testing.assert_array_equal(container.open("x"), [1, 2, 3, 4])
    with pytest.raises(dafstore.DafstoreError, match="already published"):
        w.publish()
    w2 = container.create("y", (4,), "int8")
    w2.discard()
    assert "y" not in container
    w3 = container.create("z", 3, "uint8")  # an int shape
    del w3
    gc.collect()
    assert "z" not in container


def test_zero_size_create(container: dafstore.Container) -> None:
    with container.create("e", (0, 4), "float64") as a:
        assert a.shape == (0, 4)
    assert container.open("e").shape == (0, 4)


def test_replace_keeps_old_views_on_old_bytes(container: dafstore.Container) -> None:
    container.write("x", np.zeros(1000))
    old = container.open("x")
    container.write("x", np.ones(1000))
    new = container.open("x")
    assert old.sum() == 0 and new.sum() == 1000
    assert container.info("x").generation == 2


def test_mode_r_plus_writes_in_place_and_c_stays_private(container: dafstore.Container) -> None:
    container.write("x", np.arange(10.0))
    r = container.open("x")
    w = container.open("x", "r+")
    assert w.flags.writeable
    w[0] = 42.0
    assert r[0] == 42.0  # the same shared pages
    assert container.info("x").checksum_stale
    cow = container.open("x", mode="c")
    cow[1] = -1.0
    assert r[1] == 1.0 and cow[1] == -1.0
    del w, cow
    gc.collect()
    # The last in-place user gone: checksums recomputed, fsck --deep agrees with the new bytes.
    assert not container.info("x").checksum_stale
    assert container.fsck(deep=True).clean
    assert container.open("x")[0] == 42.0


def test_open_with_dtype_checks_it(container: dafstore.Container) -> None:
    container.write("x", np.arange(3, dtype=np.int16))
    assert container.open("x", dtype="int16").dtype == np.int16
    assert container.open("x", "r+", dtype=np.int16).dtype == np.int16
    with pytest.raises(dafstore.DtypeMismatchError, match="holds int16, not float64"):
        container.open("x", dtype="float64")
    with pytest.raises(dafstore.DtypeMismatchError):
        container.open("x", "c", dtype="int32")


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("index", [np.int32, np.int64])
@pytest.mark.parametrize("dtype", ["float64", "float32", "int8", "uint64", "bool"])
def test_sparse_round_trip(container: dafstore.Container, fmt, index, dtype) -> None:
    dense = sample(dtype, (30, 20), seed=3)
    mask = np.random.default_rng(4).random((30, 20)) < 0.2
    dense = np.where(mask, dense, np.zeros((), dtype))
    m = sp.csr_matrix(dense) if fmt == "csr" else sp.csc_matrix(dense)
    m.indices = m.indices.astype(index)
    m.indptr = m.indptr.astype(index)
    container.write_sparse("m", m)
    got = container.open_sparse("m")
    assert got.format == fmt and isinstance(got, sp.spmatrix)
    assert got.dtype == np.dtype(dtype) and got.shape == (30, 20)
    assert got.indices.dtype == index and got.indptr.dtype == index  # not downcast: no copy
    np.testing.assert_array_equal(got.toarray(), dense)
    info = container.info("m")
    assert info.kind == "sparse" and info.nnz == m.nnz
    assert info.layout == ("rows" if fmt == "csr" else "columns")


def test_sparse_arrays_and_empty_and_mixed_index_dtypes(container: dafstore.Container) -> None:
    container.write_sparse("empty", sp.csr_matrix((0, 5), dtype=np.float32))
    e = container.open_sparse("empty", array=True)
    assert isinstance(e, sp.csr_array) and e.shape == (0, 5) and e.nnz == 0
    m = sp.random(10, 10, density=0.3, format="csr", random_state=1)
    container.write_sparse("m", sp.csr_array(m))
    parts = container.open_sparse_arrays("m")
    assert parts.layout == "rows" and parts.shape == (10, 10)
    np.testing.assert_array_equal(parts.indptr, m.indptr)
    with pytest.raises(TypeError, match="CSR or CSC"):
        container.write_sparse("coo", m.tocoo())
    with pytest.raises(TypeError, match="CSR or CSC"):
        container.write_sparse("dense", m.toarray())


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_arrow_and_polars_views_equal_numpy(container: dafstore.Container, dtype: str) -> None:
    import polars as pl

    want = sample(dtype, (6, 4), seed=5)
    container.write("x", want)
    t = container.open_arrow("x")
    assert isinstance(t, pa.FixedSizeListArray) and len(t) == 6
    flat = t.flatten()
    np.testing.assert_array_equal(flat.to_numpy(zero_copy_only=False), want.reshape(-1))
    s = pl.from_arrow(t)
    assert s.len() == 6
    container.write("v", want[:, 0].copy())
    v = container.open_arrow("v")
    np.testing.assert_array_equal(pl.from_arrow(v).to_numpy(), want[:, 0])
    container.write("s", want[0, 0])  # 0-d: an array of length 1
    assert len(container.open_arrow("s")) == 1


def test_remove_is_deferred_while_referenced(container: dafstore.Container) -> None:
    container.write("x", np.arange(5.0))
    a = container.open("x")
    r = container.remove("x")
    assert r == dafstore.Removal(deferred=True, holders=1)
    assert "x" not in container.ls()
    assert a[4] == 4.0  # still readable
    del a
    gc.collect()
    assert not any(p.name == "x" for p in container.fsck().problems)
    assert container.remove.__doc__
    container.write("y", np.arange(5.0))
    assert container.remove("y") == dafstore.Removal(deferred=False, holders=0)


def test_scratch_array_vanishes_after_its_last_release(container: dafstore.Container) -> None:
    container.write("tmp", np.arange(5.0), scratch=True)
    assert container.info("tmp").scratch
    a = container.open("tmp")
    b = container.open("tmp")
    del a
    gc.collect()
    assert "tmp" in container
    del b
    gc.collect()
    assert "tmp" not in container
    with container.create("tmp2", (3,), "int8", scratch=True) as w:
        w[:] = 1
    with container.hold("tmp2"):
        assert container.local_refs("tmp2") == 1
    assert "tmp2" not in container
    m = sp.random(5, 5, density=0.5, format="csr", random_state=0)
    container.write_sparse("tmp3", m, scratch=True)
    container.open_sparse("tmp3")  # held by the matrix while it lives, then released
    gc.collect()
    assert "tmp3" not in container
    container.write("later", np.zeros(2))
    container.set_scratch("later")
    assert container.info("later").scratch


def test_hold_retain_release_and_holders(container: dafstore.Container) -> None:
    container.write("a", np.zeros(3))
    container.write("b", np.zeros(3))
    with container.hold("a", "b") as h:
        assert h.held and h.names == ("a", "b")
        me = [x for x in container.holders() if x.this_process]
        assert len(me) == 1 and me[0].alive
        assert sorted(a.name for a in me[0].arrays) == ["a", "b"]
        assert container.remove("a").deferred
    assert not h.held
    assert "a" not in container
    container.retain("b")
    container.retain("b")
    assert container.local_refs("b") == 2
    container.release("b")
    container.release("b")
    assert container.local_refs("b") == 0


def test_info_ls_contains_iter_kind(container: dafstore.Container) -> None:
    container.write("d/x", np.arange(4, dtype=np.uint16).reshape(2, 2))
    container.write_sparse("d/m", sp.eye(3, format="csc"))
    assert container.ls() == ["d/m", "d/x"] == list(container)
    assert "d/x" in container and "nope" not in container and "../bad" not in container
    assert container.kind("d/m") == "sparse" and container.kind("d/x") == "dense"
    i = container.info("d/x")
    assert (i.kind, i.dtype, i.shape, i.state) == ("dense", "uint16", (2, 2), "live")
    assert i.files[0].suffix == "array" and i.files[0].size == 8 and i.files[0].crc32c is not None


def test_gc_and_fsck_reports(container: dafstore.Container) -> None:
    container.write("x", np.zeros(10))
    assert container.gc().deleted == ()
    r = container.fsck(deep=True)
    assert r.clean and r.exit_code == 0 and r.arrays_checked == 1
    with open(container.path + "/x.array", "r+b") as f:  # damage the bytes outside dafstore
        f.write(b"\x01")
    r = container.fsck(deep=True)
    assert not r.clean and r.exit_code == 4
    assert [p.kind for p in r.problems] == ["checksum_mismatch"]


def test_pickled_container_reopens_by_path(container: dafstore.Container) -> None:
    c2 = pickle.loads(pickle.dumps(container))
    assert c2.path == container.path and not c2.read_only
    ro = dafstore.open(container.path, read_only=True)
    assert pickle.loads(pickle.dumps(ro)).read_only


def test_readonly_container_reads(container: dafstore.Container) -> None:
    container.write("x", np.arange(3.0))
    ro = dafstore.open(container.path, read_only=True)
    np.testing.assert_array_equal(ro.open("x"), [0, 1, 2])
    assert ro.local_refs("x") == 0  # read-only handles take no references


def test_context_manager_closes_but_arrays_keep_working(workdir) -> None:
    with dafstore.create(workdir / "c") as c:
        c.write("x", np.arange(3.0))
        a = c.open("x")
    assert c.closed
    assert a.sum() == 3.0
    with pytest.raises(dafstore.ContainerClosedError):
        c.ls()


def test_import_export_round_trip(container: dafstore.Container, workdir) -> None:
    want = np.arange(12, dtype=np.int32).reshape(3, 4)
    np.save(workdir / "in.npy", want)
    imported = container.import_file("x", workdir / "in.npy")
    assert imported[0].name == "x" and imported[0].shape == (3, 4)
    container.export("x", workdir / "out.npy")
    np.testing.assert_array_equal(np.load(workdir / "out.npy"), want)
    m = sp.random(6, 5, density=0.4, format="csr", random_state=2)
    container.write_sparse("m", m)
    container.export("m", workdir / "m.npz")
    assert (sp.load_npz(workdir / "m.npz") != m).nnz == 0



# --------------------------------------------------------------------------------------------
# Entry points: dafstore.create / dafstore.open, and the deprecated class-level forms


def test_module_level_create_makes_a_read_write_container(workdir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the current entry points warn about nothing
        c = dafstore.create(workdir / "c")
        assert isinstance(c, dafstore.Container) and not c.read_only
        c.write("x", np.arange(3.0))
        np.testing.assert_array_equal(c.open("x"), [0, 1, 2])
        assert c.path == os.path.realpath(workdir / "c")
        with pytest.raises(dafstore.ContainerExistsError):
            dafstore.create(str(workdir / "c"))  # a str as well as a PathLike


def test_module_level_open_is_read_write_by_default(container: dafstore.Container) -> None:
    container.write("x", np.arange(3.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = dafstore.open(container.path)
        assert isinstance(c, dafstore.Container) and not c.read_only
        c.write("y", np.ones(2))
        w = c.open("x", "r+")
        w[0] = 5.0
        assert c.local_refs("x") == 1  # read-write handles take references
        del w
        assert container.open("x")[0] == 5.0


def test_module_level_open_read_only(container: dafstore.Container) -> None:
    container.write("x", np.arange(3.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ro = dafstore.open(container.path, read_only=True)
        assert ro.read_only and "read_only=True" in repr(ro)
        np.testing.assert_array_equal(ro.open("x"), [0, 1, 2])
        with pytest.raises(dafstore.ReadOnlyError):
            ro.write("y", np.ones(2))
        with pytest.raises(dafstore.ReadOnlyError):
            ro.open("x", "r+")
        assert pickle.loads(pickle.dumps(ro)).read_only
    with pytest.raises(TypeError):
        dafstore.open(container.path, True)  # type: ignore[misc]  # keywords only


DIES_HOLDING = textwrap.dedent(
    """
    import os, sys
    import dafstore

    c = dafstore.open(sys.argv[1])
    c.retain("x")
    os._exit(0)  # dies holding "x": its session stays registered until something reaps it
    """
)


def test_module_level_open_gc_keyword(container: dafstore.Container, workdir: Path) -> None:
    container.write("x", np.zeros(3))
    script = workdir / "dies_holding.py"
    script.write_text(DIES_HOLDING)
    subprocess.run([sys.executable, str(script), container.path], check=True, timeout=60)

    def dead(c: dafstore.Container) -> list[dafstore.Holder]:
        return [h for h in c.holders() if not h.alive]

    # gc=False: the open does no maintenance, so the dead holder is still there.
    c = dafstore.open(container.path, gc=False)
    assert not c.read_only
    assert [[a.name for a in h.arrays] for h in dead(c)] == [["x"]]
    # A read-only open changes nothing either, whatever gc says.
    assert len(dead(dafstore.open(container.path, read_only=True, gc=True))) == 1
    # gc=True (the default) reaps it.
    assert dead(dafstore.open(container.path, gc=True)) == []


def test_class_level_create_is_deprecated_but_works(workdir: Path) -> None:
    with pytest.warns(DeprecationWarning, match=r"use dafstore\.create\(path\)") as w:
        c = dafstore.Container.create(workdir / "c")
    assert len(w) == 1 and w[0].filename == __file__  # points at the caller
    assert isinstance(c, dafstore.Container) and not c.read_only
    c.write("x", np.arange(3.0))
    assert c.ls() == ["x"]


def test_class_level_open_is_deprecated_but_works(container: dafstore.Container) -> None:
    container.write("x", np.arange(3.0))
    with pytest.warns(DeprecationWarning, match=r"use dafstore\.open\(path, read_only=") as w:
        c = dafstore.Container.open(container.path)
    assert len(w) == 1 and w[0].filename == __file__
    assert not c.read_only and c.ls() == ["x"]
    with pytest.warns(DeprecationWarning, match=r"dafstore\.open") as w:
        ro = dafstore.Container.open(container.path, readonly=True)
    assert w[0].filename == __file__
    assert ro.read_only
    with pytest.warns(DeprecationWarning):
        assert dafstore.Container.open(container.path, True).read_only  # positional, as before
    np.testing.assert_array_equal(ro.open("x"), [0, 1, 2])


def test_readonly_property_is_deprecated_but_works(container: dafstore.Container) -> None:
    ro = dafstore.open(container.path, read_only=True)
    with pytest.warns(DeprecationWarning, match="use Container.read_only") as w:
        assert ro.readonly is True
    assert w[0].filename == __file__
    with pytest.warns(DeprecationWarning):
        assert container.readonly is False


def test_instance_create_and_open_are_the_array_methods(container: dafstore.Container) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with container.create("x", (2, 2), "int8") as a:
            a[:] = 3
        assert (container.open("x") == 3).all()
        assert container.create.__self__ is container  # bound methods, documented as such
        assert container.open.__self__ is container
        assert "Creates dense array" in (container.create.__doc__ or "")
        assert "Opens dense array" in (container.open.__doc__ or "")
        assert "Creates dense array" in (vars(dafstore.Container)["create"].__doc__ or "")


def test_pickling_reopens_without_warnings(container: dafstore.Container) -> None:
    container.write("x", np.arange(3.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for c in (container, dafstore.open(container.path, read_only=True)):
            back = pickle.loads(pickle.dumps(c))
            assert back.path == c.path and back.read_only == c.read_only
            np.testing.assert_array_equal(back["x"], [0, 1, 2])
    # A pickle made by an earlier version names the same function with the same arguments.
    old = pickle.loads(pickle.dumps((dafstore._container._reopen, (container.path, True))))
    assert old[0](*old[1]).read_only


# --------------------------------------------------------------------------------------------
# The read-only Mapping of name -> array


def test_container_is_a_read_only_mapping(container: dafstore.Container) -> None:
    assert isinstance(container, collections.abc.Mapping)
    assert not isinstance(container, collections.abc.MutableMapping)
    assert len(container) == 0 and list(container) == [] and dict(container) == {}
    assert container  # a handle stays true when empty (it is not a collection to test for)

    x = np.arange(6.0).reshape(2, 3)
    rows = sp.random(5, 4, density=0.5, format="csr", random_state=1)
    cols = sp.random(3, 6, density=0.5, format="csc", random_state=2)
    container.write("d/x", x)
    container.write_sparse("d/rows", rows)
    container.write_sparse("cols", cols)
    assert len(container) == 3
    assert list(container) == list(container.keys()) == container.ls() == [
        "cols", "d/rows", "d/x"
    ]
    assert "d/x" in container.keys() and "nope" not in container.keys()

    dense = container["d/x"]  # as c.open(name): read-only, the shared map itself
    assert isinstance(dense, np.ndarray) and not dense.flags.writeable
    np.testing.assert_array_equal(dense, x)
    assert dense.__array_interface__["data"][0] == container._map_address("d/x")
    assert container.local_refs("d/x") == 1
    del dense
    gc.collect()
    assert container.local_refs("d/x") == 0

    m = container["d/rows"]  # as c.open_sparse(name)
    assert type(m) is sp.csr_matrix and (m != rows).nnz == 0
    assert not m.data.flags.writeable
    assert type(container["cols"]) is sp.csc_matrix and (container["cols"] != cols).nnz == 0

    items = dict(container.items())
    assert set(items) == {"cols", "d/rows", "d/x"}
    np.testing.assert_array_equal(items["d/x"], x)
    assert (items["d/rows"] != rows).nnz == 0
    values = list(container.values())
    assert len(values) == 3 and isinstance(values[2], np.ndarray)
    np.testing.assert_array_equal(container.get("d/x"), x)


def test_mapping_missing_keys(container: dafstore.Container) -> None:
    container.write("x", np.zeros(2))
    with pytest.raises(KeyError):
        container["nope"]
    with pytest.raises(dafstore.ArrayNotFoundError, match='no array named "nope"') as e:
        container["nope"]
    assert isinstance(e.value, FileNotFoundError)
    container.remove("x")
    with pytest.raises(KeyError):
        container["x"]
    # A name that cannot be an array's, or a key that is not a name: not in it, so a KeyError
    # (an ArrayNotFoundError saying why), as `in` and get() agree.
    for bad in ["../x", "", ".hidden", 3, None, b"x"]:
        with pytest.raises(dafstore.ArrayNotFoundError):
            container[bad]  # type: ignore[index]
        assert bad not in container
        assert container.get(bad) is None  # type: ignore[arg-type]
    with pytest.raises(dafstore.ArrayNotFoundError, match="names are strings"):
        container[3]  # type: ignore[index]
    assert container.get("nope", 7) == 7


def test_mapping_has_no_item_assignment_and_stays_a_handle(
    container: dafstore.Container,
) -> None:
    container.write("x", np.zeros(2))
    with pytest.raises(TypeError):
        container["y"] = np.zeros(2)  # type: ignore[index]
    with pytest.raises(TypeError):
        del container["x"]  # type: ignore[attr-defined]
    assert "x" in container and "y" not in container
    # Hashable and equal only to itself: no array is opened to compare two handles.
    other = dafstore.open(container.path)
    assert container == container and container != other and other.ls() == ["x"]
    assert {container: 1}[container] == 1 and hash(container) != hash(other)
    assert container.local_refs("x") == 0


def test_mapping_after_close(container: dafstore.Container) -> None:
    container.write("x", np.zeros(2))
    container.close()
    for call in (lambda: len(container), lambda: container["x"], lambda: list(container)):
        with pytest.raises(dafstore.ContainerClosedError):
            call()
