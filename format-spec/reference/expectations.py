"""Checks a dafreader result against an expectation in the format of the conformance vectors'
`expected.json` (format-spec/vectors/README.md). Shared by test_conformance.py (vectors) and
test_roundtrip.py (arrays written by the Rust engine, described by fixtures.json)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

import dafreader

INTS = {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}
FLOATS = {"float16", "float32", "float64"}
SPECIAL = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def same_value(dtype: str, got, want) -> bool:
    """Exact comparison of one element with its JSON value: floats by value and sign (so -0.0 is
    not 0.0), NaN by isnan, ints as Python ints, bools as bools."""
    if dtype == "bool":
        return type(want) is bool and isinstance(got, (bool, np.bool_)) and bool(got) == want
    if dtype in INTS:
        return type(want) is int and int(got) == want
    assert dtype in FLOATS, dtype
    g = float(got)  # exact: float16/32/64 widen to a Python float without rounding
    if isinstance(want, str):
        if want == "nan":
            return math.isnan(g)
        return g == SPECIAL[want]
    if type(want) not in (int, float):
        return False
    return g == want and math.copysign(1.0, g) == math.copysign(1.0, float(want))


def compare_values(what: str, dtype: str, got: np.ndarray, want: list) -> None:
    flat = np.asarray(got).reshape(-1)
    assert flat.size == len(want), f"{what}: {flat.size} elements, expected {len(want)}"
    for i, (g, w) in enumerate(zip(flat, want, strict=True)):
        assert same_value(dtype, g, w), f"{what}[{i}]: got {g!r} ({dtype}), expected {w!r}"


def json_column(arr) -> list:
    """The JSON values of a pyarrow column, as README "Tables" defines them."""
    import pyarrow as pa

    t, T = arr.type, pa.types
    if T.is_dictionary(t):
        values = json_column(arr.dictionary)
        return [None if i is None else values[i] for i in arr.indices.to_pylist()]
    if T.is_null(t):
        return [None] * len(arr)
    if T.is_temporal(t):
        return arr.view(pa.int32() if t.bit_width == 32 else pa.int64()).to_pylist()
    if T.is_floating(t):
        return [None if v is None else float(v) for v in arr.to_pylist()]
    if T.is_decimal(t):
        return [None if v is None else str(v) for v in arr.to_pylist()]
    if (T.is_binary(t) or T.is_large_binary(t) or T.is_binary_view(t)
            or T.is_fixed_size_binary(t)):
        return [None if v is None else v.hex() for v in arr.to_pylist()]
    if T.is_list(t) or T.is_large_list(t) or T.is_fixed_size_list(t):
        return [json_column(arr[i].values) if arr[i].is_valid else None for i in range(len(arr))]
    if T.is_struct(t):
        kids = [json_column(c) for c in arr.flatten()]
        return [{t.field(j).name: kids[j][i] for j in range(t.num_fields)} if arr[i].is_valid
                else None for i in range(len(arr))]
    return arr.to_pylist()


def same_json(got, want) -> bool:
    """Exact equality of JSON values; floats by value and sign, "nan"/"inf"/"-inf" strings."""
    if isinstance(got, float):
        if isinstance(want, str):
            return math.isnan(got) if want == "nan" else got == SPECIAL.get(want)
        return (type(want) in (int, float) and got == want
                and math.copysign(1.0, got) == math.copysign(1.0, float(want)))
    if isinstance(got, list):
        return (isinstance(want, list) and len(got) == len(want)
                and all(same_json(g, w) for g, w in zip(got, want)))
    if isinstance(got, dict):
        return (isinstance(want, dict) and list(got) == list(want)
                and all(same_json(got[k], want[k]) for k in got))
    return type(got) is type(want) and got == want


def buffers_of(arr):
    """Every buffer of a pyarrow array, its dictionary's and children's included."""
    import pyarrow as pa

    out = [b for b in arr.buffers() if b is not None]
    if pa.types.is_dictionary(arr.type):
        out += buffers_of(arr.dictionary)
    return out


def compare_table(exp: dict, got) -> None:
    for key in ("rows", "columns", "types", "bytes", "batches"):
        assert getattr(got, key) == exp[key], f"{key} {getattr(got, key)!r}, expected {exp[key]!r}"
    t = got.table
    assert t.num_rows == exp["rows"] and t.column_names == exp["columns"]
    assert [len(c) for c in t.to_batches()] == [n for n in exp["batches"]] or t.num_rows == 0
    lo, hi = got.map.address, got.map.address + got.map.size
    for i, name in enumerate(exp["columns"]):
        col = t.column(i)
        values = [v for chunk in col.chunks for v in json_column(chunk)]
        assert same_json(values, exp["values"][name]), (
            f"column {name!r}: {values!r}, expected {exp['values'][name]!r}")
        for chunk in col.chunks:  # zero-copy: every buffer is a slice of the file's map
            for b in buffers_of(chunk):
                if b.size == 0:
                    continue  # an empty buffer has no bytes to share
                assert lo <= b.address and b.address + b.size <= hi, (
                    f"column {name!r}: a buffer outside the map (copied)")


def compare_ok(exp: dict, got) -> None:
    assert got.kind == exp["kind"], f"kind {got.kind}, expected {exp['kind']}"
    assert list(got.version) == exp["version"], f"version {got.version}, expected {exp['version']}"
    if got.kind == "table":
        compare_table(exp, got)
        assert got.crc32c == exp["crc32c"], f"recorded crc32c {got.crc32c}, expected {exp['crc32c']}"
        if "computed_crc32c" in exp:
            assert got.computed_crc32c == exp["computed_crc32c"]
        return
    assert list(got.shape) == exp["shape"], f"shape {got.shape}, expected {exp['shape']}"
    if got.kind == "dense":
        assert got.dtype == exp["dtype"], f"dtype {got.dtype}, expected {exp['dtype']}"
        if got.array.size:
            assert isinstance(got.array, np.memmap) or isinstance(got.array.base, np.memmap), (
                "a non-empty dense array must be mapped"
            )
        assert got.array.dtype == (np.bool_ if got.dtype == "bool" else dafreader.DTYPES[got.dtype])
        if got.array.size or math.prod(exp["shape"]) == 0:
            assert got.array.shape == tuple(exp["shape"]) or got.array.shape == (0,)
        compare_values("values", got.dtype, got.array, exp["values"])
    else:
        for key in ("data_dtype", "indices_dtype", "indptr_dtype", "nnz", "layout"):
            assert getattr(got, key) == exp[key], (
                f"{key} {getattr(got, key)!r}, expected {exp[key]!r}"
            )
        compare_values("data", got.data_dtype, got.data, exp["data"])
        compare_values("indices", got.indices_dtype, got.indices, exp["indices"])
        compare_values("indptr", got.indptr_dtype, got.indptr, exp["indptr"])
    assert got.crc32c == exp["crc32c"], f"recorded crc32c {got.crc32c}, expected {exp['crc32c']}"
    if "computed_crc32c" in exp:
        assert got.computed_crc32c == exp["computed_crc32c"], (
            f"computed crc32c {got.computed_crc32c}, expected {exp['computed_crc32c']}"
        )


def name_of(exp: dict):
    """The array name: `name`, or `name_hex` (bytes that need not be UTF-8)."""
    return bytes.fromhex(exp["name_hex"]) if "name_hex" in exp else exp["name"]


def check(exp: dict, root: Path) -> str:
    """Reads the array of `exp` under `root` and checks the result; returns "ok" or the error
    class raised (when expected). Raises AssertionError on any difference."""
    if exp.get("check") == "daf_file":
        got = dafreader.daf_own_file(root, exp["name"])
        assert got == exp["daf_file"], f"{exp['name']}: daf_own_file {got!r}, expected {exp['daf_file']!r}"
        return "ok"
    try:
        if exp.get("check") == "container":
            version = dafreader.read_container_version(root)
        else:
            got = dafreader.read_array(root, name_of(exp), verify=exp["verify"])
    except dafreader.FormatError as e:
        assert exp["expect"] == "error", f"expected ok, got {e.error_class}: {e}"
        assert e.error_class == exp["error_class"], (
            f"expected {exp['error_class']}, got {e.error_class}: {e}"
        )
        return e.error_class
    assert exp["expect"] == "ok" or exp.get("ok_allowed"), (
        f"expected error {exp.get('error_class')}, got ok"
    )
    if exp.get("check") == "container":
        assert list(version) == exp["container_version"], (
            f"container version {version}, expected {exp['container_version']}"
        )
        return "ok"
    compare_ok(exp, got)
    return "ok"
