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


def compare_ok(exp: dict, got) -> None:
    assert got.kind == exp["kind"], f"kind {got.kind}, expected {exp['kind']}"
    assert list(got.version) == exp["version"], f"version {got.version}, expected {exp['version']}"
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
