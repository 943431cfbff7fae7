"""The report classes are the engine's report types: their fields are exactly the keys the engine
serializes (the same keys `dafctl --json` prints; tests/tests/dafctl_cli.rs checks that side), and
the vocabulary is one: ls / info / holders, spec field names, the engine's format names."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import dafstore
from dafstore import _native


def fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_every_report_class_has_exactly_the_keys_the_engine_produces(
    container: dafstore.Container, workdir: Path
) -> None:
    native = container._c
    container.write("d", np.zeros((2, 3)))
    container.write_sparse("s", sp.eye(3, format="csr", dtype=np.float32))
    for name in ("d", "s"):
        info = native.info(name)
        assert set(info) == fields(dafstore.ArrayInfo), name
        assert info["files"] and all(set(f) == fields(dafstore.FileInfo) for f in info["files"])
    rows = native.info_all()
    assert len(rows) == 2 and all(set(r) == fields(dafstore.ArrayInfo) for r in rows)

    with container.hold("d"):
        holders = native.holders()
        assert holders and all(set(h) == fields(dafstore.Holder) for h in holders)
        held = [a for h in holders for a in h["arrays"]]
        assert held and all(set(a) == fields(dafstore.HeldArray) for a in held)
        deferred = native.remove("d")
        assert set(deferred) == fields(dafstore.Removal) and deferred["deferred"]
    removed = native.remove("s")
    assert set(removed) == fields(dafstore.Removal) and not removed["deferred"]

    lock = native.lock_load("loading", None)
    loads = native.loads()
    assert len(loads) == 1 and set(loads[0]) == fields(dafstore.Loader)
    lock.release()
    assert native.loads() == []

    assert set(native.limits()) == fields(dafstore.Limits)
    assert set(native.usage()) == fields(dafstore.Usage)
    container.write("cached", np.zeros(1), lifecycle="cached")
    native.set_capacity(0)
    with container.hold("cached"), pytest.raises(dafstore.CapacityError) as e:
        container.write("over", np.zeros(1))
    # Built with exactly the engine's keys (an Occupant refuses others: the error would be a
    # RuntimeError naming the fields).
    assert [(o.name, o.lifecycle, len(o.holders)) for o in e.value.largest] == [
        ("cached", "cached", 1)]
    (me,) = [h for h in container.holders() if h.this_process]
    assert e.value.largest[0].holders == (dafstore.HoldingSession(me.session, os.getpid()),)
    assert fields(dafstore.HoldingSession) == {"session", "pid"}
    session, pid = e.value.largest[0].holders[0]  # a tuple before: still unpacks
    assert (session, pid) == (me.session, os.getpid())
    evicted = native.evict()  # "cached" is released now: over the capacity, it goes
    assert evicted and all(set(d) == fields(dafstore.Evicted) for d in evicted)
    native.set_capacity(None)

    assert set(native.gc()) == fields(dafstore.GcReport)
    sample = _native._gc_report_sample()
    assert set(sample) == fields(dafstore.GcReport)
    assert set(sample["failed"][0]) == fields(dafstore.GcFailure)

    container.write("x", np.zeros(4))
    with open(container.path + "/x.array", "r+b") as f:  # damage it outside dafstore
        f.write(b"\x01")
    (Path(container.path) / "axis.csv").write_text("a\nb\n")  # one of daf's own files
    fsck = native.fsck(True, False)
    assert set(fsck) == fields(dafstore.FsckReport)
    assert fsck["problems"] and all(set(p) == fields(dafstore.Problem) for p in fsck["problems"])
    assert fsck["daf_files"] and all(set(f) == fields(dafstore.DafFile) for f in fsck["daf_files"])

    np.save(workdir / "in.npy", np.arange(3))
    report = native.import_file("i", str(workdir / "in.npy"))
    assert report["arrays"] and all(
        set(a) == fields(dafstore.ImportedArray) for a in report["arrays"]
    )


def test_reports_are_built_from_the_engines_dicts_and_refuse_other_keys() -> None:
    sample = _native._gc_report_sample()
    gc = dafstore.GcReport._from_engine(sample)
    assert gc.failed == (dafstore.GcFailure("x", "an error"),)
    name, error = gc.failed[0]  # a tuple before: still unpacks
    assert (name, error) == ("x", "an error")
    with pytest.raises(RuntimeError, match="not the class's fields"):
        dafstore.GcReport._from_engine({**sample, "new_field": 1})
    with pytest.raises(RuntimeError, match="not the class's fields"):
        dafstore.Removal._from_engine({"deferred": False})
    evicted = dafstore.Evicted._from_engine({"name": "x", "bytes": 8})
    assert evicted == dafstore.Evicted("x", 8)
    assert tuple(evicted) == ("x", 8)  # a tuple before: still unpacks
    with pytest.raises(RuntimeError, match="not the class's fields"):
        dafstore.Evicted._from_engine({"name": "x", "bytes": 8, "lifecycle": "cached"})


def test_info_names_fields_as_the_spec_does(container: dafstore.Container) -> None:
    container.write("d", np.zeros((2, 3), dtype=np.int16))
    container.write_sparse("s", sp.eye(3, format="csc", dtype=np.float32))
    d = container.info("d")
    assert (d.kind, d.dtype, d.shape, d.bytes) == ("dense", "int16", (2, 3), 12)
    assert d.data_dtype is d.indices_dtype is d.indptr_dtype is d.layout is d.nnz is None
    s = container.info("s")
    assert s.kind == "sparse" and s.dtype is None
    assert (s.data_dtype, s.layout, s.shape, s.nnz) == ("float32", "columns", (3, 3), 3)
    assert s.indices_dtype in ("int32", "int64") and s.indptr_dtype == s.indices_dtype
    assert s.files[0].suffix == "data" and s.bytes == sum(f.size for f in s.files)
    assert container.kind("s") == "sparse" and container.kind("d") == "dense"
    assert [i.name for i in container.info_all()] == container.ls() == ["d", "s"]
    with container.hold("d"):
        i = container.info("d")
        assert (i.holders, i.local_refs) == (1, 1)


def test_refs_is_deprecated_for_holders(container: dafstore.Container) -> None:
    container.write("a", np.zeros(2))
    with container.hold("a"):
        with pytest.warns(DeprecationWarning, match="holders"):
            old = container.refs()
        assert old == container.holders()
        assert [a.name for h in old for a in h.arrays] == ["a"]


@pytest.mark.parametrize(
    "source, format",
    [("npy", "npy"), ("npy", "NPY"), ("feather", "feather"), ("feather", "arrow"),
     ("feather", "ipc")],
)
def test_import_takes_the_engines_format_names(
    container: dafstore.Container, workdir: Path, source: str, format: str
) -> None:
    pa = pytest.importorskip("pyarrow")
    path = workdir / "data.bin"  # an extension that names no format: `format` decides
    if source == "npy":
        np.save(open(path, "wb"), np.arange(5.0))
    else:
        import pyarrow.feather as feather

        feather.write_feather(pa.table({"v": np.arange(5.0)}), str(path))
    (a,) = container.import_file("v", path, format=format)
    assert (a.name, a.kind, a.dtype, a.shape) == ("v", "dense", "float64", (5,))
    np.testing.assert_array_equal(container.open("v"), np.arange(5.0))


def test_an_unknown_format_gets_the_engines_message(
    container: dafstore.Container, workdir: Path
) -> None:
    np.save(workdir / "x.npy", np.zeros(2))
    # The engine's `Format` error, word for word as `dafctl --format csv` prints it.
    message = (
        'unknown format "csv"; the formats are npy, npz, feather and parquet '
        "(arrow and ipc also name feather, pq names parquet)"
    )
    with pytest.raises(dafstore.InteropError) as e:
        container.import_file("x", workdir / "x.npy", format="csv")
    assert str(e.value) == message
    container.write("y", np.zeros(2))
    with pytest.raises(dafstore.InteropError) as e:
        container.export("y", workdir / "y.bin", format="csv")
    assert str(e.value) == message
