"""dafstore's exports read by the real libraries: numpy reads our .npy (also memory-mapped, data
64-byte aligned), pyarrow and polars read our Feather/Arrow IPC files, scipy loads our .npz, all
with exactly the values dafstore wrote.

The files are written by the Rust binary `dafstore-export-fixtures` (tests/src/bin/), run once per
session; it also writes `expected.json`, the values each file must hold. Set
DAFSTORE_EXPORT_FIXTURES to a prebuilt binary to skip `cargo run`.

    pip install numpy scipy pyarrow polars pytest
    python -m pytest tests/python/test_interop_export.py
"""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.feather as feather
import pytest
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("dafstore-exports")
    binary = os.environ.get("DAFSTORE_EXPORT_FIXTURES")
    if binary:
        cmd = [binary, str(out)]
    else:
        cmd = ["cargo", "run", "--quiet", "-p", "dafstore-tests", "--bin",
               "dafstore-export-fixtures", "--", str(out)]
    subprocess.run(cmd, cwd=ROOT, check=True)
    expected = json.loads((out / "expected.json").read_text())
    return out, expected


def files(expected, prefix):
    names = sorted(k for k in expected if k.startswith(prefix))
    assert names, f"no {prefix} exports"
    return names


def reshape(values, shape):
    """Nested lists of `shape` from flat row-major values (what tolist() / to_pylist() give)."""
    if len(shape) <= 1:
        return values
    step = int(np.prod(shape[1:]))
    return [reshape(values[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def test_numpy_reads_our_npy(exported):
    out, expected = exported
    names = files(expected, "npy/")
    assert len(names) >= 27
    for name in names:
        e = expected[name]
        a = np.load(out / name)
        assert a.dtype == np.dtype(e["dtype"]), name
        assert list(a.shape) == e["shape"], name
        assert a.flags.c_contiguous, name
        assert a.ravel().tolist() == e["values"], name
        m = np.load(out / name, mmap_mode="r")
        if m.size:
            assert m.offset % 64 == 0, name
            assert np.array_equal(m, a), name


def test_pyarrow_reads_our_feather(exported):
    out, expected = exported
    names = files(expected, "feather/")
    for name in names:
        e = expected[name]
        table = feather.read_table(out / name)
        assert table.column_names == [e["column"]], name
        col = table.column(e["column"])
        assert col.null_count == 0, name
        shape = e["shape"] if e["shape"] else [1]
        assert col.to_pylist() == reshape(e["values"], shape), name
        value_type = col.type
        while pa.types.is_fixed_size_list(value_type):
            value_type = value_type.value_type
        assert value_type.to_pandas_dtype() == np.dtype(e["dtype"]), name
    with pa.memory_map(str(out / "feather/float64_1d.feather")) as source:
        reader = pa.ipc.open_file(source)
        assert reader.schema.field(0).type == pa.float64()


def test_polars_reads_our_feather(exported):
    out, expected = exported
    for name in files(expected, "feather/"):
        e = expected[name]
        df = pl.read_ipc(out / name)
        assert df.columns == [e["column"]], name
        shape = e["shape"] if e["shape"] else [1]
        assert df[e["column"]].to_list() == reshape(e["values"], shape), name
        assert df[e["column"]].null_count() == 0, name


def test_scipy_loads_our_npz(exported):
    out, expected = exported
    for name in files(expected, "npz/"):
        e = expected[name]
        m = sp.load_npz(out / name)
        assert m.format == e["format"], name
        assert list(m.shape) == e["shape"], name
        assert m.nnz == e["nnz"], name
        assert m.toarray().tolist() == e["dense"], name
        m.check_format(full_check=True)
