#!/usr/bin/env python3
"""Generates the conformance vectors of the dafstore array-file format (format-spec/SPEC.md).

Each vector is a directory holding array files (the vector directory is the container root, a
"daf directory" without `.dafstore/`) and an `expected.json` saying what a reader must return for
one array name, or which error class it must raise. The schema is in README.md next to this file.

Everything is written explicitly: data bytes with `struct` in little-endian order, YAML text by
hand (PyYAML `dump` style where the vector is valid), CRC-32C by the table below. numpy is not
needed here; Python 3.11 alone runs it.

Usage:
    python3 generate.py            # (re)writes every vector directory and the README index
    python3 generate.py --check    # exit 1 if the committed vectors are not what it writes
    python3 generate.py --out DIR  # writes the vectors into DIR instead (README untouched)

The generator owns every sub-directory of format-spec/vectors/: it deletes them and writes them
again, so a vector is changed here, never by hand. Any future format change adds vectors here
before code (SPEC section 10).
"""

from __future__ import annotations

import argparse
import filecmp
import json
import math
import os
import re
import shutil
import struct
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

# --------------------------------------------------------------------------------------------
# CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF.

_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283

# --------------------------------------------------------------------------------------------
# dtypes (SPEC section 4): struct format (little-endian) and item size.

FORMATS = {
    "bool": "B",
    "int8": "b",
    "int16": "h",
    "int32": "i",
    "int64": "q",
    "uint8": "B",
    "uint16": "H",
    "uint32": "I",
    "uint64": "Q",
    "float16": "e",
    "float32": "f",
    "float64": "d",
}
ITEMSIZE = {d: struct.calcsize("<" + f) for d, f in FORMATS.items()}
FLOATS = {"float16", "float32", "float64"}

NAN, INF = math.nan, math.inf


def pack(dtype: str, values: list) -> bytes:
    """The little-endian bytes of `values` as `dtype` (bools as bytes 0/1)."""
    if dtype == "bool":
        return bytes(1 if v else 0 for v in values)
    return struct.pack("<%d%s" % (len(values), FORMATS[dtype]), *values)


def unpack(dtype: str, data: bytes) -> list:
    """The values stored in `data` (floats exactly as stored, e.g. float32(0.1))."""
    n = len(data) // ITEMSIZE[dtype]
    if dtype == "bool":
        return [b == 1 for b in data]
    return list(struct.unpack("<%d%s" % (n, FORMATS[dtype]), data))


# --------------------------------------------------------------------------------------------
# JSON values. NaN and infinities are strings. Every finite float is checked to be read back
# exactly by serde_json's default (not `float_roundtrip`) parser, which the Rust runner uses: it
# computes `significand as f64` then one multiplication or division by a power of ten. The Rust
# runner compares float64 bit for bit, and a float16/float32 element (exact in float64) as equal
# when the JSON value, as parsed, is within one float64 ulp of it and rounds to it; a value that
# parser would read otherwise is refused here.

_POW10 = [float("1e%d" % k) for k in range(309)]


def _serde_json_default_parse(text: str) -> float:
    m = re.fullmatch(r"(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?", text)
    assert m, text
    neg, whole, frac, exp = m.groups()
    frac = frac or ""
    digits = whole + frac
    significand = int(digits)
    if significand >= 2**64:
        raise ValueError(f"{text}: more digits than serde_json keeps")
    exponent = int(exp or 0) - len(frac)
    f = float(significand)
    while True:
        if abs(exponent) < len(_POW10):
            f = f * _POW10[abs(exponent)] if exponent >= 0 else f / _POW10[abs(exponent)]
            break
        if f == 0.0:
            break
        f /= 1e308
        exponent += 308
    return -f if neg else f


def json_value(v, dtype="float64"):
    if isinstance(v, bool) or isinstance(v, int):
        return v
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        text = repr(v)
        back = _serde_json_default_parse(text)
        fmt = "<" + FORMATS[dtype]
        exact = struct.pack("<d", back) == struct.pack("<d", v)
        if dtype != "float64" and not exact:  # within one float64 ulp, same float16/32 value
            bits = struct.unpack("<2q", struct.pack("<2d", back, v))
            exact = abs(bits[0] - bits[1]) <= 1 and struct.pack(fmt, back) == struct.pack(fmt, v)
        if not exact:
            raise ValueError(
                f"{text} would not be read exactly by serde_json; choose another value"
            )
        return v
    raise TypeError(v)


# --------------------------------------------------------------------------------------------
# YAML text, PyYAML `dump` style: keys sorted, block sequences, nested mappings indented by two.


def yaml_dump(mapping: dict) -> str:
    out = []
    for key in sorted(mapping):
        value = mapping[key]
        if isinstance(value, dict):
            out.append(f"{key}:\n")
            out.extend(f"  {k}: {v}\n" for k, v in sorted(value.items()))
        elif isinstance(value, (list, tuple)):
            if value:
                out.append(f"{key}:\n")
                out.extend(f"- {v}\n" for v in value)
            else:
                out.append(f"{key}: []\n")
        else:
            out.append(f"{key}: {value}\n")
    return "".join(out)


# --------------------------------------------------------------------------------------------
# Vectors.

VECTORS: dict[str, "Vector"] = {}


class Vector:
    def __init__(self, vid: str, description: str, rules: list[str], *, name="x", verify=False):
        assert vid not in VECTORS, vid
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", vid), vid
        self.id = vid
        self.description = description
        self.rules = list(rules)
        self.name = name
        self.name_hex = None
        self.check = None  # "container": judge .dafstore/container.yaml ([C2]), not an array;
        # "daf_file": judge whether the file `name` is one of daf's own files ([A1])
        self.verify = verify
        self.files: dict[str, bytes] = {}
        self.symlinks: dict[str, str] = {}
        self.result: dict = {}
        VECTORS[vid] = self

    def ok(self, fields: dict) -> "Vector":
        self.result = {"expect": "ok", **fields}
        return self

    def error(self, error_class: str, ok_fields: dict | None = None) -> "Vector":
        """Expects `error_class`; with `ok_fields`, success with those fields also conforms."""
        assert error_class in ERROR_CLASSES, error_class
        self.result = {"expect": "error", "error_class": error_class}
        if ok_fields is not None:
            self.result["ok_allowed"] = True
            self.result.update(ok_fields)
        return self

    def expected_json(self) -> dict:
        out = {"description": self.description}
        if self.check is not None:
            out["check"] = self.check
        if self.name_hex is not None:
            out["name_hex"] = self.name_hex
        else:
            out["name"] = self.name
        out["verify"] = self.verify
        out["rules"] = self.rules
        out.update(self.result)
        return out


ERROR_CLASSES = [
    "invalid_name",
    "missing",
    "unsupported_version",
    "unknown_dtype",
    "shape_overflow",
    "invalid_metadata",
    "missing_file",
    "size_mismatch",
    "sparse_invariant",
    "invalid_bool",
    "checksum_mismatch",
    "mixed_kinds",
    "invalid_arrow",
    "compressed_arrow",
    "table_mismatch",
    "busy",
]


def crc_fields(files: dict[str, bytes], recorded: dict[str, int], verify: bool) -> dict:
    out = {"crc32c": recorded}
    if verify:
        out["computed_crc32c"] = {s: crc32c(b) for s, b in files.items()}
    return out


def dense_files(name, dtype, shape, values, *, version=(1, 1), crc=True, extra=""):
    """Files of a valid dense array; returns (files by path, data bytes, recorded checksums)."""
    data = pack(dtype, values)
    keys = {"dtype": dtype, "shape": list(shape), "version": list(version)}
    recorded = {}
    if crc is True:
        recorded = {"array": crc32c(data)}
    elif crc is not False:
        recorded = {"array": crc}
    if recorded:
        keys["crc32c"] = recorded
    return (
        {f"{name}.yaml": (yaml_dump(keys) + extra).encode(), f"{name}.array": data},
        data,
        recorded,
    )


def dense_ok_fields(dtype, shape, data, recorded, verify, version=(1, 1)):
    return {
        "kind": "dense",
        "version": list(version),
        "dtype": dtype,
        "shape": list(shape),
        "values": [json_value(v, dtype) for v in unpack(dtype, data)],
        **crc_fields({"array": data}, recorded, verify),
    }


def dense(
    vid,
    description,
    rules,
    dtype,
    shape,
    values,
    *,
    name="x",
    verify=False,
    version=(1, 1),
    crc=True,
    extra="",
) -> Vector:
    """A valid dense array, expected to read back as written."""
    v = Vector(vid, description, rules, name=name, verify=verify)
    files, data, recorded = dense_files(
        name, dtype, shape, values, version=version, crc=crc, extra=extra
    )
    v.files.update(files)
    return v.ok(dense_ok_fields(dtype, shape, data, recorded, verify, version))


def sparse_files(
    name,
    data_dtype,
    indices_dtype,
    indptr_dtype,
    shape,
    data,
    indices,
    indptr,
    *,
    layout="rows",
    nnz=None,
    version=(1, 1),
    crc=True,
    extra="",
    layout_key=True,
):
    files = {
        "data": pack(data_dtype, data),
        "indices": pack(indices_dtype, indices),
        "indptr": pack(indptr_dtype, indptr),
    }
    keys = {
        "data_dtype": data_dtype,
        "indices_dtype": indices_dtype,
        "indptr_dtype": indptr_dtype,
        "nnz": len(data) if nnz is None else nnz,
        "shape": list(shape),
        "version": list(version),
    }
    if layout_key:
        keys["layout"] = layout
    recorded = {}
    if crc is True:
        recorded = {s: crc32c(b) for s, b in files.items()}
    elif crc is not False:
        recorded = crc
    if recorded:
        keys["crc32c"] = recorded
    out = {f"{name}.yaml": (yaml_dump(keys) + extra).encode()}
    out.update({f"{name}.{s}": b for s, b in files.items()})
    return out, files, recorded


def sparse(
    vid,
    description,
    rules,
    data_dtype,
    indices_dtype,
    indptr_dtype,
    shape,
    data,
    indices,
    indptr,
    *,
    layout="rows",
    name="x",
    verify=False,
    version=(1, 1),
    crc=True,
    extra="",
    layout_key=True,
) -> Vector:
    """A valid sparse array, expected to read back as written."""
    v = Vector(vid, description, rules, name=name, verify=verify)
    files, raw, recorded = sparse_files(
        name,
        data_dtype,
        indices_dtype,
        indptr_dtype,
        shape,
        data,
        indices,
        indptr,
        layout=layout,
        version=version,
        crc=crc,
        extra=extra,
        layout_key=layout_key,
    )
    v.files.update(files)
    return v.ok(
        {
            "kind": "sparse",
            "version": list(version),
            "data_dtype": data_dtype,
            "indices_dtype": indices_dtype,
            "indptr_dtype": indptr_dtype,
            "shape": list(shape),
            "nnz": len(data),
            "layout": layout,
            "data": [json_value(x, data_dtype) for x in unpack(data_dtype, raw["data"])],
            "indices": unpack(indices_dtype, raw["indices"]),
            "indptr": unpack(indptr_dtype, raw["indptr"]),
            **crc_fields(raw, recorded, verify),
        }
    )


def bad(
    vid,
    description,
    rules,
    error_class,
    files: dict[str, bytes],
    *,
    name="x",
    verify=False,
    symlinks=None,
    ok_fields=None,
) -> Vector:
    """An array that must be refused with `error_class`."""
    v = Vector(vid, description, rules, name=name, verify=verify)
    v.files.update(files)
    v.symlinks.update(symlinks or {})
    return v.error(error_class, ok_fields)


def bad_yaml(
    vid, description, rules, error_class, text, *, data=b"\x01\x02\x03", suffix="array", name="x"
) -> Vector:
    """Metadata text that must be refused (`x.array` holds 3 bytes, an int8 [3] array)."""
    if isinstance(text, str):
        text = text.encode()
    return bad(
        vid,
        description,
        rules,
        error_class,
        {f"{name}.yaml": text, f"{name}.{suffix}": data},
        name=name,
    )


# A valid int8 [3] array's YAML, for metadata variations: 3 bytes in x.array.
INT8_3 = "dtype: int8\nshape:\n- 3\nversion:\n- 1\n- 1\n"


def int8_3_ok(version=(1, 1)):
    return dense_ok_fields("int8", [3], b"\x01\x02\x03", {}, False, version)


# Sparse CSR 3 x 4 (row 1 empty), used by many sparse vectors:
#   [[0, 1.5, 0, -2], [0, 0, 0, 0], [4.25, 0, 0, 0]]
CSR = dict(data=[1.5, -2.0, 4.25], indices=[1, 3, 0], indptr=[0, 2, 2, 3])


def csr_files(**kw):
    args = dict(data=CSR["data"], indices=CSR["indices"], indptr=CSR["indptr"])
    args.update({k: kw.pop(k) for k in list(kw) if k in args})
    files, _, _ = sparse_files(
        "x",
        kw.pop("data_dtype", "float64"),
        kw.pop("indices_dtype", "int32"),
        kw.pop("indptr_dtype", "int64"),
        kw.pop("shape", [3, 4]),
        args["data"],
        args["indices"],
        args["indptr"],
        **kw,
    )
    return files


def sparse_yaml(**over) -> str:
    keys = {
        "data_dtype": "float64",
        "indices_dtype": "int32",
        "indptr_dtype": "int64",
        "layout": "rows",
        "nnz": 3,
        "shape": [3, 4],
        "version": [1, 1],
    }
    keys.update(over)
    return yaml_dump({k: v for k, v in keys.items() if v is not None})


def sparse_bad_yaml(vid, description, rules, error_class, text):
    files = csr_files(crc=False)
    files["x.yaml"] = text.encode()
    return bad(vid, description, rules, error_class, files)


# ============================================================================================
# 1. Every dtype, dense 1-d [T1] [D1] [D3]

dense(
    "dtype-bool",
    "bool elements are bytes 0 and 1",
    ["T1", "T2"],
    "bool",
    [4],
    [False, True, True, False],
)
dense("dtype-int8", "int8, two's complement", ["T1"], "int8", [5], [-128, -1, 0, 1, 127])
dense("dtype-int16", "int16, little-endian", ["T1"], "int16", [4], [-32768, -1, 256, 32767])
dense(
    "dtype-int32",
    "int32, little-endian",
    ["T1"],
    "int32",
    [4],
    [-2147483648, -1, 65536, 2147483647],
)
dense(
    "dtype-int64",
    "int64, little-endian, extremes",
    ["T1"],
    "int64",
    [4],
    [-(2**63), -1, 2**32, 2**63 - 1],
)
dense("dtype-uint8", "uint8", ["T1"], "uint8", [3], [0, 128, 255])
dense("dtype-uint16", "uint16, little-endian", ["T1"], "uint16", [3], [0, 256, 65535])
dense("dtype-uint32", "uint32, little-endian", ["T1"], "uint32", [3], [0, 65536, 2**32 - 1])
dense(
    "dtype-uint64",
    "uint64, little-endian, up to 2^64-1",
    ["T1"],
    "uint64",
    [3],
    [0, 2**32, 2**64 - 1],
)
dense(
    "dtype-float16",
    "IEEE binary16: signed zero, max, smallest normal and subnormal, inf, NaN",
    ["T1"],
    "float16",
    [10],
    [0.0, -0.0, 1.0, -2.5, 65504.0, 2.0**-14, 2.0**-24, INF, -INF, NAN],
)
dense(
    "dtype-float32",
    "IEEE binary32: 0.1 as stored, max, smallest normal and subnormal, inf, NaN",
    ["T1"],
    "float32",
    [10],
    [0.0, -0.0, 0.1, -1.25, 3.4028234663852886e38, 2.0**-126, 2.0**-149, INF, -INF, NAN],
)
dense(
    "dtype-float64",
    "IEEE binary64: max, smallest normal and subnormal, inf, NaN",
    ["T1"],
    "float64",
    [11],
    [
        0.0,
        -0.0,
        0.1,
        -1.5,
        1.7976931348623157e308,
        2.2250738585072014e-308,
        5e-324,
        1e100,
        INF,
        -INF,
        NAN,
    ],
)

# 2. Shapes [D1] [D2] [D3] [D4]

dense("dense-0d", "0-d array: shape [] holds one element", ["D2", "D3"], "float64", [], [-2.5])
dense(
    "dense-2d",
    "2-d, row-major (C order)",
    ["D1", "D3"],
    "float64",
    [2, 3],
    [0.5, 1.0, 1.5, 2.0, 2.5, 3.0],
)
dense(
    "dense-3d",
    "3-d, row-major",
    ["D1", "D3"],
    "int16",
    [2, 3, 2],
    [i * 257 - 1000 for i in range(12)],
)
dense(
    "dense-6d",
    "6-d with unit dimensions, row-major",
    ["D1", "D3"],
    "uint8",
    [1, 2, 1, 3, 1, 2],
    list(range(12)),
)
dense(
    "dense-zero-size-1d",
    "shape [0]: empty .array file, not mapped",
    ["D2", "D4"],
    "float32",
    [0],
    [],
)
dense("dense-zero-size-2d", "shape [3, 0]: empty file", ["D2", "D4"], "int64", [3, 0], [])
dense("dense-zero-size-3d", "shape [2, 0, 4] bool: empty file", ["D2", "D4"], "bool", [2, 0, 4], [])
dense(
    "dense-zero-size-huge-dims-first",
    "shape [0, 2^32, 2^32]: zero elements, zero bytes: the byte size fits, so valid",
    ["D2", "D4"],
    "int8",
    [0, 2**32, 2**32],
    [],
)
dense(
    "dense-zero-size-huge-dims-last",
    "shape [2^32, 2^32, 0]: zero elements, zero bytes: valid whatever the order of the factors",
    ["D2", "D4"],
    "int8",
    [2**32, 2**32, 0],
    [],
)

# 3. daf 1.0 files, exactly as daf (PyYAML dump) writes them [Y2] [Y5]

v = Vector(
    "daf10-dense-float32", "daf 1.0 dense 2-d float32, byte for byte as daf writes it", ["Y2", "Y5"]
)
_data = pack("float32", [1.0, -0.5, 2.25, 0.0, 1024.0, -3.0])
v.files = {"x.yaml": b"dtype: float32\nshape:\n- 2\n- 3\nversion:\n- 1\n- 0\n", "x.array": _data}
v.ok(dense_ok_fields("float32", [2, 3], _data, {}, False, (1, 0)))

v = Vector("daf10-dense-int64-1d", "daf 1.0 dense 1-d int64", ["Y2"])
_data = pack("int64", [7, -7, 2**40])
v.files = {"x.yaml": b"dtype: int64\nshape:\n- 3\nversion:\n- 1\n- 0\n", "x.array": _data}
v.ok(dense_ok_fields("int64", [3], _data, {}, False, (1, 0)))

sparse(
    "daf10-sparse",
    "daf 1.0 sparse (compressed rows, no layout key), as daf writes it",
    ["Y2", "Y5", "S2"],
    "float32",
    "int32",
    "int32",
    [3, 4],
    CSR["data"],
    CSR["indices"],
    CSR["indptr"],
    version=(1, 0),
    crc=False,
    layout_key=False,
)
assert VECTORS["daf10-sparse"].files["x.yaml"] == (
    b"data_dtype: float32\nindices_dtype: int32\nindptr_dtype: int32\nnnz: 3\nshape:\n- 3\n- 4\n"
    b"version:\n- 1\n- 0\n"
)

# 4. Unknown keys and minor versions [Y2] [Y3], YAML styles [Y1]

dense(
    "yaml-unknown-keys",
    "1.x file with unknown optional keys of every shape: ignored",
    ["Y3", "Y7", "Y8"],
    "int32",
    [2],
    [1, -1],
    version=(1, 7),
    extra="future_key:\n  nested:\n  - 1\n  - 2\n  list_of_maps:\n  - a: 1\n    b: [x, 'y z']\n"
    "  - - 3\n    - 4\n  empty_map: {}\n  empty_list: []\n  also_none: null\n  none:\n"
    "histogram: [0, 1, 2]\nnote: 'not a size: -1.5'\nratio: -1.5\nbig: 123456789012345678901234567890\n"
    "path: a/b.c+d-e_f\nquoted: \"caf\\u00e9 \\\"q\\\" \\\\ \\t\"\nzz_flag: true\n",
)
sparse(
    "yaml-unknown-keys-sparse",
    "sparse 1.x with unknown keys, including a future checksum "
    "kind and an unknown suffix in crc32c",
    ["Y3"],
    "float64",
    "int32",
    "int64",
    [3, 4],
    CSR["data"],
    CSR["indices"],
    CSR["indptr"],
    version=(1, 2),
    extra="crc64nvme:\n  data: 12\nowner: somebody\n",
)
# The unknown suffix in crc32c ([K1]): ignored, so not among the recorded checksums expected.
_y = VECTORS["yaml-unknown-keys-sparse"].files
_y["x.yaml"] = _y["x.yaml"].replace(b"  indices:", b"  future_file: 7\n  indices:", 1)
assert b"future_file: 7" in _y["x.yaml"]
VECTORS["yaml-unknown-keys-sparse"].rules.append("K1")
dense(
    "version-1-99",
    "any minor version of major 1 is read",
    ["Y2"],
    "uint8",
    [2],
    [1, 2],
    version=(1, 99),
)

v = Vector(
    "yaml-flow-style",
    "flow sequences (PyYAML before 5.1 wrote them), indented block sequence, quoted key and dtype",
    ["Y1", "Y8"],
)
v.files = {
    "x.yaml": b"'dtype': \"int16\"\nshape: [2, 1]\nversion:\n  - 1\n  - 1\n",
    "x.array": pack("int16", [-2, 2]),
}
v.ok(dense_ok_fields("int16", [2, 1], pack("int16", [-2, 2]), {}, False))

v = Vector(
    "yaml-comments-markers", "document markers and comments are YAML, not data", ["Y1", "Y6"]
)
v.files = {
    "x.yaml": b"---\n# written by hand\ndtype: int8  # one byte\nshape:\n- 3\n"
    b"version:\n- 1\n- 1\n...\n",
    "x.array": b"\x01\x02\x03",
}
v.ok(int8_3_ok())

v = Vector("dtype-quoted", "a quoted dtype is the same string", ["T1"])
v.files = {
    "x.yaml": b"dtype: 'int8'\nshape:\n- 3\nversion:\n- 1\n- 1\n",
    "x.array": b"\x01\x02\x03",
}
v.ok(int8_3_ok())

# 5. Sparse arrays [S1]-[S6]

sparse(
    "sparse-rows",
    "CSR with an empty row",
    ["S1", "S2", "S4"],
    "float64",
    "int32",
    "int64",
    [3, 4],
    CSR["data"],
    CSR["indices"],
    CSR["indptr"],
)
sparse(
    "sparse-columns",
    "CSC: indptr has columns + 1 entries, indices are rows",
    ["S2", "S3", "S4"],
    "float32",
    "int64",
    "int32",
    [3, 4],
    [1.0, 2.0, 3.0],
    [0, 2, 1],
    [0, 2, 2, 3, 3],
    layout="columns",
)
sparse(
    "sparse-rows-no-layout-1-1",
    "version 1.1 without layout: rows",
    ["S2"],
    "int16",
    "int32",
    "int32",
    [2, 2],
    [5, -5],
    [1, 0],
    [0, 1, 2],
    layout_key=False,
)
sparse(
    "sparse-rows-nnz0",
    "nnz = 0: empty data and indices files, not mapped",
    ["S3", "S4", "D4"],
    "int16",
    "int32",
    "int32",
    [2, 3],
    [],
    [],
    [0, 0, 0],
)
sparse(
    "sparse-columns-nnz0",
    "CSC with nnz = 0",
    ["S3", "S4", "D4"],
    "uint8",
    "int32",
    "int64",
    [3, 2],
    [],
    [],
    [0, 0, 0],
    layout="columns",
)
sparse(
    "sparse-rows-zero-rows",
    "shape [0, 5]: indptr is [0]",
    ["S3", "S4"],
    "float64",
    "int32",
    "int64",
    [0, 5],
    [],
    [],
    [0],
)
sparse(
    "sparse-rows-zero-columns",
    "shape [4, 0]: every row empty",
    ["S3", "S4"],
    "float64",
    "int32",
    "int64",
    [4, 0],
    [],
    [],
    [0, 0, 0, 0, 0],
)
sparse(
    "sparse-columns-zero-both",
    "shape [0, 0] columns",
    ["S3", "S4"],
    "int8",
    "uint32",
    "uint64",
    [0, 0],
    [],
    [],
    [0],
    layout="columns",
)
sparse(
    "sparse-unsigned-index-dtypes",
    "uint32 indices, uint64 indptr",
    ["T3"],
    "int8",
    "uint32",
    "uint64",
    [2, 3],
    [-1, 1, 127],
    [2, 0, 1],
    [0, 1, 3],
)
sparse(
    "sparse-int64-indices-uint32-indptr",
    "int64 indices, uint32 indptr",
    ["T3"],
    "uint16",
    "int64",
    "uint32",
    [3, 2],
    [1, 65535],
    [1, 0],
    [0, 0, 1, 2],
)
sparse(
    "sparse-data-bool",
    "bool data",
    ["T2"],
    "bool",
    "int32",
    "int32",
    [2, 2],
    [True, False],
    [0, 1],
    [0, 1, 2],
)
sparse(
    "sparse-data-float16",
    "float16 data with inf and NaN",
    ["T1"],
    "float16",
    "int32",
    "int32",
    [1, 4],
    [0.5, INF, NAN, -0.0],
    [0, 1, 2, 3],
    [0, 4],
)
sparse(
    "sparse-data-uint64",
    "uint64 data",
    ["T1"],
    "uint64",
    "int64",
    "int64",
    [2, 1],
    [2**64 - 1, 1],
    [0, 0],
    [0, 1, 2],
    layout="rows",
)
sparse(
    "sparse-unsorted-duplicate-indices",
    "indices unsorted and repeated within a row: valid "
    "(SHOULD be canonical; readers MUST NOT rely on it)",
    ["S4"],
    "float64",
    "int32",
    "int64",
    [2, 3],
    [1.0, 2.0, 3.0, 4.0],
    [2, 0, 2, 1],
    [0, 3, 4],
)
sparse(
    "sparse-index-dtype-at-limit",
    "minor = 2^31: minor - 1 is int32's max, so int32 indices are enough",
    ["S5"],
    "float32",
    "int32",
    "int32",
    [1, 2**31],
    [1.0],
    [2**31 - 1],
    [0, 1],
)

# 6. Checksums [K1]

dense(
    "crc-dense-verify",
    "recorded CRC-32C matches; verified",
    ["K1"],
    "float64",
    [3],
    [1.0, 2.0, 3.0],
    verify=True,
)
dense(
    "crc-zero-size-verify",
    "the CRC-32C of an empty file is 0",
    ["K1", "D4"],
    "int32",
    [0],
    [],
    verify=True,
)
dense(
    "crc-absent-verify",
    "daf 1.0 file without crc32c, verify asked: nothing to compare",
    ["K1"],
    "int16",
    [2],
    [3, 4],
    version=(1, 0),
    crc=False,
    verify=True,
)
dense(
    "crc-dense-mismatch-no-verify",
    "wrong recorded CRC-32C is not checked unless verify is asked",
    ["K1"],
    "float64",
    [3],
    [1.0, 2.0, 3.0],
    crc=0x12345678,
)
sparse(
    "crc-sparse-verify",
    "sparse: three recorded checksums match",
    ["K1"],
    "float64",
    "int32",
    "int64",
    [3, 4],
    CSR["data"],
    CSR["indices"],
    CSR["indptr"],
    verify=True,
)
_f, _raw, _ = sparse_files(
    "x", "float64", "int32", "int64", [3, 4], CSR["data"], CSR["indices"], CSR["indptr"], crc=False
)
sparse(
    "crc-sparse-partial-verify",
    "only some files have a recorded checksum: those are verified",
    ["K1"],
    "float64",
    "int32",
    "int64",
    [3, 4],
    CSR["data"],
    CSR["indices"],
    CSR["indptr"],
    crc={"indptr": crc32c(_raw["indptr"])},
    verify=True,
)
_files, _data, _ = dense_files("x", "float64", [3], [1.0, 2.0, 3.0], crc=0x12345678)
bad(
    "crc-dense-mismatch-verify",
    "recorded CRC-32C differs from the bytes; verify asked",
    ["K1"],
    "checksum_mismatch",
    _files,
    verify=True,
)
_f, _raw, _ = sparse_files(
    "x", "float64", "int32", "int64", [3, 4], CSR["data"], CSR["indices"], CSR["indptr"], crc=False
)
_rec = {s: crc32c(b) for s, b in _raw.items()}
_rec["indices"] ^= 1
bad(
    "crc-sparse-mismatch-indices-verify",
    "sparse: the indices checksum is wrong; verify asked",
    ["K1"],
    "checksum_mismatch",
    sparse_files(
        "x",
        "float64",
        "int32",
        "int64",
        [3, 4],
        CSR["data"],
        CSR["indices"],
        CSR["indptr"],
        crc=_rec,
    )[0],
    verify=True,
)
bad_yaml(
    "crc-value-too-large",
    "a CRC-32C is 32 bits",
    ["K1"],
    "invalid_metadata",
    "crc32c:\n  array: 4294967296\n" + INT8_3,
)
bad_yaml(
    "crc-not-a-mapping",
    "crc32c must map suffixes to integers",
    ["K1"],
    "invalid_metadata",
    "crc32c: 12345\n" + INT8_3,
)
bad_yaml(
    "crc-value-quoted",
    "a quoted checksum is a string, not an integer",
    ["K1"],
    "invalid_metadata",
    "crc32c:\n  array: '1234'\n" + INT8_3,
)

# 7. Invalid dense files [D2] [D3] [T2]

_files, _, _ = dense_files("x", "int32", [4], [1, 2, 3, 4], crc=False)
bad(
    "dense-size-short",
    ".array one element short",
    ["D3"],
    "size_mismatch",
    {**_files, "x.array": _files["x.array"][:12]},
)
bad(
    "dense-size-long",
    ".array one element too long",
    ["D3"],
    "size_mismatch",
    {**_files, "x.array": _files["x.array"] + pack("int32", [5])},
)
_files, _, _ = dense_files("x", "float64", [2], [1.0, 2.0], crc=False)
bad(
    "dense-size-partial-element",
    ".array 15 bytes for two float64",
    ["D3"],
    "size_mismatch",
    {**_files, "x.array": _files["x.array"][:15]},
)
_files, _, _ = dense_files("x", "float64", [], [1.0], crc=False)
bad(
    "dense-0d-empty-file",
    "0-d needs one element, the file is empty",
    ["D2", "D3"],
    "size_mismatch",
    {**_files, "x.array": b""},
)
_files, _, _ = dense_files("x", "float64", [0], [], crc=False)
bad(
    "dense-zero-size-nonempty-file",
    "shape [0] but the file has a byte",
    ["D3", "D4"],
    "size_mismatch",
    {**_files, "x.array": b"\x00"},
)
bad_yaml(
    "dense-huge-shape-size-mismatch",
    "shape [2^62] int8 fits in 64 bits: a size mismatch",
    ["D2", "D3"],
    "size_mismatch",
    "dtype: int8\nshape:\n- 4611686018427387904\nversion:\n- 1\n- 1\n",
)
bad_yaml(
    "dense-shape-2-63-size-mismatch",
    "shape [2^63] int8: 2^63 bytes fit in a 64-bit unsigned "
    "integer, so not an overflow: a size mismatch",
    ["D2", "D3"],
    "size_mismatch",
    "dtype: int8\nshape:\n- 9223372036854775808\nversion:\n- 1\n- 1\n",
)
bad_yaml(
    "dense-shape-overflow-product",
    "product 2^32 * 2^32 does not fit in 64 bits",
    ["D2"],
    "shape_overflow",
    "dtype: int8\nshape:\n- 4294967296\n- 4294967296\nversion:\n- 1\n- 1\n",
)
bad_yaml(
    "dense-shape-overflow-bytes",
    "2^61 float64 elements: the product fits, the byte size (2^64) does not",
    ["D2"],
    "shape_overflow",
    "dtype: float64\nshape:\n- 2305843009213693952\nversion:\n- 1\n- 1\n",
)
bad_yaml(
    "dense-shape-overflow-max",
    "shape [2^64-1, 2]",
    ["D2"],
    "shape_overflow",
    "dtype: uint8\nshape:\n- 18446744073709551615\n- 2\nversion:\n- 1\n- 1\n",
)
bad(
    "dense-bool-byte-2",
    "bool byte 2 is invalid",
    ["T2"],
    "invalid_bool",
    {
        "x.yaml": dense_files("x", "bool", [3], [0, 0, 0], crc=False)[0]["x.yaml"],
        "x.array": b"\x01\x02\x00",
    },
)
bad(
    "dense-bool-byte-ff",
    "bool byte 0xff is invalid",
    ["T2"],
    "invalid_bool",
    {
        "x.yaml": dense_files("x", "bool", [2, 2], [0] * 4, crc=False)[0]["x.yaml"],
        "x.array": b"\x00\x01\x01\xff",
    },
)

# 8. Invalid sparse arrays [S1]-[S6] [T3]

bad(
    "sparse-indptr-decreasing",
    "indptr [0, 2, 1, 3] decreases",
    ["S4", "S6"],
    "sparse_invariant",
    csr_files(indptr=[0, 2, 1, 3]),
)
bad(
    "sparse-indptr-first-nonzero",
    "indptr[0] must be 0",
    ["S4", "S6"],
    "sparse_invariant",
    csr_files(indptr=[1, 2, 2, 3]),
)
bad(
    "sparse-indptr-end-not-nnz",
    "indptr[rows] = 2 but nnz = 3 (files hold 3 entries)",
    ["S4", "S6"],
    "sparse_invariant",
    csr_files(indptr=[0, 1, 2, 2]),
)
bad(
    "sparse-indptr-negative",
    "int64 indptr with a negative entry",
    ["S4", "S6"],
    "sparse_invariant",
    csr_files(indptr=[0, -1, 2, 3]),
)
bad(
    "sparse-index-out-of-range",
    "index 4 in a 4-column CSR",
    ["S4", "S6"],
    "sparse_invariant",
    csr_files(indices=[1, 4, 0]),
)
bad(
    "sparse-index-negative",
    "int32 index -1",
    ["S4", "S6"],
    "sparse_invariant",
    csr_files(indices=[1, -1, 0]),
)
bad(
    "sparse-index-uint64-max",
    "uint64 index 2^64-1",
    ["S4", "S6"],
    "sparse_invariant",
    csr_files(indices_dtype="uint64", indices=[1, 2**64 - 1, 0]),
)
bad(
    "sparse-columns-index-out-of-range",
    "CSC 2 x 4: index 3 is a valid column but not a row",
    ["S2", "S4", "S6"],
    "sparse_invariant",
    sparse_files(
        "x",
        "float64",
        "int32",
        "int64",
        [2, 4],
        [1.0, 2.0],
        [0, 3],
        [0, 1, 1, 2, 2],
        layout="columns",
        crc=False,
    )[0],
)
bad(
    "sparse-index-dtype-too-small",
    "minor = 2^31 + 1: minor - 1 does not fit int32 indices",
    ["S5"],
    "sparse_invariant",
    sparse_files("x", "float32", "int32", "int32", [1, 2**31 + 1], [], [], [0, 0], crc=False)[0],
)
bad(
    "sparse-nnz-more-than-files",
    "nnz: 4 but the files hold 3 entries",
    ["S3"],
    "size_mismatch",
    csr_files(nnz=4, crc=False),
)
_f = csr_files(crc=False)
bad(
    "sparse-data-size-mismatch",
    ".data one element short",
    ["S3"],
    "size_mismatch",
    {**_f, "x.data": _f["x.data"][:16]},
)
bad(
    "sparse-indices-size-mismatch",
    ".indices one byte long",
    ["S3"],
    "size_mismatch",
    {**_f, "x.indices": _f["x.indices"] + b"\x00"},
)
bad(
    "sparse-indptr-size-mismatch",
    "layout: columns on a 3 x 4 matrix written as rows: indptr needs 5 entries, has 4",
    ["S2", "S3"],
    "size_mismatch",
    {**_f, "x.yaml": sparse_yaml(layout="columns").encode()},
)
bad(
    "sparse-missing-data-file",
    "x.data absent",
    ["S3"],
    "missing_file",
    {k: b for k, b in _f.items() if k != "x.data"},
)
bad(
    "sparse-missing-indptr-file",
    "x.indptr absent",
    ["S3"],
    "missing_file",
    {k: b for k, b in _f.items() if k != "x.indptr"},
)
_legacy = {("x.sparse" if k == "x.data" else k): b for k, b in _f.items()}
_legacy_ok = {k: v for k, v in VECTORS["sparse-rows"].result.items() if k != "expect"}
_legacy_ok["crc32c"] = {}
bad(
    "sparse-legacy-sparse-file",
    "early pre-release name x.sparse instead of x.data: readers MAY "
    "accept it (SPEC 5.5), or report the missing x.data",
    ["S3"],
    "missing_file",
    _legacy,
    ok_fields=_legacy_ok,
)
bad(
    "sparse-data-bool-byte-2",
    "sparse bool data with byte 2",
    ["T2"],
    "invalid_bool",
    {
        **sparse_files(
            "x", "bool", "int32", "int32", [2, 2], [True, True], [0, 1], [0, 1, 2], crc=False
        )[0],
        "x.data": b"\x01\x02",
    },
)
bad(
    "sparse-indptr-size-overflow",
    "shape [2^64-1, 1] rows: indptr needs 2^64 entries",
    ["S3", "D2"],
    "shape_overflow",
    {"x.yaml": sparse_yaml(shape=[2**64 - 1, 1], nnz=0).encode()},
)
bad(
    "sparse-nnz-size-overflow",
    "nnz 2^61 float64: the data file would be 2^64 bytes",
    ["S3", "D2"],
    "shape_overflow",
    {"x.yaml": sparse_yaml(nnz=2**61, shape=[1, 1]).encode()},
)
sparse_bad_yaml(
    "sparse-layout-invalid",
    "layout: diagonal",
    ["S2"],
    "invalid_metadata",
    sparse_yaml(layout="diagonal"),
)
sparse_bad_yaml(
    "sparse-layout-capitalized",
    "layout: Rows (case matters)",
    ["S2"],
    "invalid_metadata",
    sparse_yaml(layout="Rows"),
)
sparse_bad_yaml(
    "sparse-shape-1d",
    "sparse shape must have exactly two sizes",
    ["S1"],
    "invalid_metadata",
    sparse_yaml(shape=[12]),
)
sparse_bad_yaml(
    "sparse-shape-3d",
    "sparse shape with three sizes",
    ["S1"],
    "invalid_metadata",
    sparse_yaml(shape=[3, 4, 1]),
)
sparse_bad_yaml(
    "sparse-missing-nnz", "nnz is required", ["S1"], "invalid_metadata", sparse_yaml(nnz=None)
)
sparse_bad_yaml(
    "sparse-missing-indices-dtype",
    "indices_dtype is required",
    ["S1"],
    "invalid_metadata",
    sparse_yaml(indices_dtype=None),
)
sparse_bad_yaml(
    "sparse-missing-indptr-dtype",
    "indptr_dtype is required",
    ["S1"],
    "invalid_metadata",
    sparse_yaml(indptr_dtype=None),
)
sparse_bad_yaml(
    "sparse-indices-dtype-float32",
    "float32 is a dtype but not an index dtype",
    ["T3"],
    "invalid_metadata",
    sparse_yaml(indices_dtype="float32"),
)
sparse_bad_yaml(
    "sparse-indptr-dtype-int16",
    "int16 is not an index dtype",
    ["T3"],
    "invalid_metadata",
    sparse_yaml(indptr_dtype="int16"),
)
sparse_bad_yaml(
    "sparse-indices-dtype-unknown",
    "indices_dtype: int",
    ["T1", "T3"],
    "unknown_dtype",
    sparse_yaml(indices_dtype="int"),
)
sparse_bad_yaml(
    "sparse-data-dtype-unknown",
    "data_dtype: float",
    ["T1"],
    "unknown_dtype",
    sparse_yaml(data_dtype="float"),
)
sparse_bad_yaml(
    "sparse-nnz-float",
    "nnz: 3.0 is a float, not a size",
    ["Y1", "S1"],
    "invalid_metadata",
    sparse_yaml(nnz="3.0"),
)
sparse_bad_yaml(
    "sparse-nnz-quoted",
    'nnz: "3" is a string, not a size',
    ["Y1", "S1"],
    "invalid_metadata",
    sparse_yaml(nnz='"3"'),
)
sparse_bad_yaml(
    "sparse-nnz-negative", "nnz: -3", ["Y1", "S1"], "invalid_metadata", sparse_yaml(nnz=-3)
)

# 9. Metadata [Y1] [Y2] [Y4] [Y5] [D1] [T1]

bad_yaml(
    "yaml-syntax-error",
    "unclosed flow sequence",
    ["Y1"],
    "invalid_metadata",
    "dtype: [int8\nshape:\n- 3\nversion:\n- 1\n- 1\n",
)
bad_yaml(
    "yaml-root-sequence", "root is a sequence", ["Y1"], "invalid_metadata", "- dtype\n- int8\n"
)
bad_yaml("yaml-root-scalar", "root is a scalar", ["Y1"], "invalid_metadata", "int8\n")
bad_yaml("yaml-empty", "empty metadata file (no mapping)", ["Y1"], "invalid_metadata", "")
bad_yaml(
    "yaml-two-documents",
    "two YAML documents",
    ["Y1"],
    "invalid_metadata",
    "---\n" + INT8_3 + "---\n" + INT8_3,
)
bad_yaml(
    "yaml-not-utf8",
    "a byte that is not UTF-8 (in an unknown key's value)",
    ["Y1"],
    "invalid_metadata",
    INT8_3.encode() + b"note: caf\xe9\n",
)
bad_yaml(
    "yaml-duplicate-key",
    "dtype twice (same value)",
    ["Y1"],
    "invalid_metadata",
    "dtype: int8\n" + INT8_3,
)
bad_yaml(
    "yaml-duplicate-key-nested",
    "crc32c.array twice",
    ["Y1"],
    "invalid_metadata",
    "crc32c:\n  array: 1\n  array: 1\n" + INT8_3,
)
bad_yaml(
    "yaml-duplicate-unknown-key",
    "an unknown key twice: duplicates are refused even where the key is ignored",
    ["Y1", "Y3"],
    "invalid_metadata",
    INT8_3 + "note: a\nnote: b\n",
)
bad_yaml(
    "yaml-both-dtype-and-data-dtype",
    "dense keys plus data_dtype",
    ["Y5"],
    "invalid_metadata",
    "data_dtype: int8\n" + INT8_3,
)
sparse_bad_yaml(
    "yaml-both-data-dtype-and-dtype",
    "sparse keys plus dtype",
    ["Y5"],
    "invalid_metadata",
    sparse_yaml(dtype="float64"),
)
bad_yaml(
    "yaml-neither-dtype",
    "neither dtype nor data_dtype",
    ["Y5"],
    "invalid_metadata",
    "shape:\n- 3\nversion:\n- 1\n- 1\n",
)
bad_yaml(
    "dense-missing-shape",
    "shape is required",
    ["D1"],
    "invalid_metadata",
    "dtype: int8\nversion:\n- 1\n- 1\n",
)
bad_yaml(
    "dense-shape-float",
    "shape: [3.0]",
    ["Y1", "D1"],
    "invalid_metadata",
    "dtype: int8\nshape:\n- 3.0\nversion:\n- 1\n- 1\n",
)
bad_yaml(
    "dense-shape-quoted",
    'shape: ["3"]',
    ["Y1", "D1"],
    "invalid_metadata",
    'dtype: int8\nshape:\n- "3"\nversion:\n- 1\n- 1\n',
)
bad_yaml(
    "dense-shape-negative",
    "shape: [-3]",
    ["Y1", "D1"],
    "invalid_metadata",
    "dtype: int8\nshape:\n- -3\nversion:\n- 1\n- 1\n",
)
bad_yaml(
    "dense-shape-bool",
    "shape: [true]",
    ["Y1", "D1"],
    "invalid_metadata",
    "dtype: int8\nshape:\n- true\nversion:\n- 1\n- 1\n",
)
bad_yaml(
    "dense-shape-scalar",
    "shape: 3 (not a sequence)",
    ["D1"],
    "invalid_metadata",
    "dtype: int8\nshape: 3\nversion:\n- 1\n- 1\n",
)
bad_yaml(
    "dense-shape-null",
    "shape: (null)",
    ["D1"],
    "invalid_metadata",
    "dtype: int8\nshape:\nversion:\n- 1\n- 1\n",
)
bad_yaml(
    "dense-dtype-sequence",
    "dtype: [int8] (not a string)",
    ["D1"],
    "invalid_metadata",
    "dtype:\n- int8\nshape:\n- 3\nversion:\n- 1\n- 1\n",
)
bad_yaml(
    "version-missing",
    "version is required",
    ["Y2"],
    "invalid_metadata",
    "dtype: int8\nshape:\n- 3\n",
)
bad_yaml(
    "version-too-short",
    "version: [1]",
    ["Y2"],
    "invalid_metadata",
    "dtype: int8\nshape:\n- 3\nversion:\n- 1\n",
)
bad_yaml(
    "version-too-long",
    "version: [1, 1, 0]",
    ["Y2"],
    "invalid_metadata",
    "dtype: int8\nshape:\n- 3\nversion:\n- 1\n- 1\n- 0\n",
)
bad_yaml(
    "version-float",
    "version: 1.1 (a float, not a sequence)",
    ["Y2"],
    "invalid_metadata",
    "dtype: int8\nshape:\n- 3\nversion: 1.1\n",
)
bad_yaml(
    "version-float-elements",
    "version: [1.0, 1.0]",
    ["Y2"],
    "invalid_metadata",
    "dtype: int8\nshape:\n- 3\nversion:\n- 1.0\n- 1.0\n",
)
bad_yaml(
    "version-quoted-elements",
    "version: ['1', '1']",
    ["Y2"],
    "invalid_metadata",
    "dtype: int8\nshape:\n- 3\nversion:\n- '1'\n- '1'\n",
)
bad_yaml(
    "version-negative-minor",
    "version: [1, -1]",
    ["Y2"],
    "invalid_metadata",
    "dtype: int8\nshape:\n- 3\nversion:\n- 1\n- -1\n",
)
bad_yaml(
    "version-2-0",
    "a future major version",
    ["Y2"],
    "unsupported_version",
    "dtype: int8\nshape:\n- 3\nversion:\n- 2\n- 0\n",
)
bad_yaml(
    "version-0-9",
    "major version 0",
    ["Y2"],
    "unsupported_version",
    "dtype: int8\nshape:\n- 3\nversion:\n- 0\n- 9\n",
)
bad_yaml(
    "version-2-0-unknown-dtype",
    "a 2.0 file is refused for its version, not for a dtype 1.x does not know",
    ["Y2"],
    "unsupported_version",
    "dtype: complex128\nshape:\n- 3\nversion:\n- 2\n- 0\n",
)
bad_yaml(
    "version-2-0-changed-keys",
    "a 2.0 file may change the meaning and type of every key "
    "but version: it is refused for its version",
    ["Y2", "Y3"],
    "unsupported_version",
    "dtype:\n  kind: complex\n  bits: 128\nshape: '3x1'\nversion:\n- 2\n- 0\n",
)
for _spelling, _vid in [
    ("float", "float"),
    ("f8", "f8"),
    ("'<f8'", "lt-f8"),
    ("Float64", "capital-float64"),
    ("int", "int"),
    ("complex64", "complex64"),
    ("float128", "float128"),
    ("'int8 '", "trailing-space"),
]:
    bad_yaml(
        f"dtype-unknown-{_vid}",
        f"dtype {_spelling} is not a spelling of SPEC section 4",
        ["T1"],
        "unknown_dtype",
        f"dtype: {_spelling}\nshape:\n- 3\nversion:\n- 1\n- 1\n",
    )

# [Y4] [Y7] aliases and tags are outside the subset: refused, never expanded or executed.
_bomb = "lol0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
for _i in range(1, 10):
    _bomb += f"lol{_i}: &a{_i} [" + ", ".join([f"*a{_i - 1}"] * 10) + "]\n"
bad_yaml(
    "yaml-alias-bomb",
    "10^10 elements by aliases in unknown keys: refused, never expanded",
    ["Y4", "Y7"],
    "invalid_metadata",
    _bomb + INT8_3,
)
bad_yaml(
    "yaml-alias-in-shape",
    "an alias used for a size: refused (no anchors or aliases in the subset)",
    ["Y4", "Y7"],
    "invalid_metadata",
    "dtype: int8\nn: &n 3\nshape:\n- *n\nversion:\n- 1\n- 1\n",
)
bad_yaml(
    "yaml-python-tag",
    "a language-specific tag in an unknown key: refused, never executed",
    ["Y4", "Y7"],
    "invalid_metadata",
    INT8_3 + "hook: !!python/object/apply:os.system ['echo executed']\n",
)

# 10. Files [R1] [N7]

bad(
    "files-missing-yaml",
    "x.array without x.yaml: the array does not exist",
    ["R1"],
    "missing",
    {"x.array": b"\x01\x02\x03"},
)
bad("files-nothing", "no file at all", ["R1"], "missing", {"README": b"no array here\n"})
bad(
    "files-missing-array",
    "x.yaml without x.array",
    ["D3"],
    "missing_file",
    {"x.yaml": INT8_3.encode()},
)
bad(
    "files-array-symlink",
    "x.array is a symbolic link (to a file in the container)",
    ["N7"],
    "missing_file",
    {"x.yaml": INT8_3.encode(), "bytes.bin": b"\x01\x02\x03"},
    symlinks={"x.array": "bytes.bin"},
)
bad(
    "files-array-directory",
    "x.array is a directory",
    ["N7"],
    "missing_file",
    {"x.yaml": INT8_3.encode(), "x.array/README": b"a directory, not a file\n"},
)
bad(
    "files-yaml-directory",
    "x.yaml is a directory",
    ["N7"],
    "missing_file",
    {"x.yaml/README": b"a directory, not a file\n", "x.array": b"\x01\x02\x03"},
)
bad(
    "files-yaml-symlink",
    "x.yaml is a symbolic link inside the container",
    ["N7"],
    "missing_file",
    {"meta.txt": INT8_3.encode(), "x.array": b"\x01\x02\x03"},
    symlinks={"x.yaml": "meta.txt"},
)
bad(
    "files-yaml-symlink-outside",
    "x.yaml is a symbolic link to another vector's file, outside the container",
    ["N7"],
    "missing_file",
    {"x.array": VECTORS["dtype-int32"].files["x.array"]},
    symlinks={"x.yaml": "../dtype-int32/x.yaml"},
)
bad(
    "name-dir-symlink-outside",
    "directory component d is a symbolic link to another vector, outside the container",
    ["N7"],
    "missing_file",
    {},
    name="d/x",
    symlinks={"d": "../dtype-int32"},
)
bad(
    "name-dir-symlink-inside",
    "directory component d is a symbolic link to real/, inside the container: never followed",
    ["N7"],
    "missing_file",
    {
        "real/x.yaml": INT8_3.encode(),
        "real/x.array": b"\x04\x05\x06",
    },
    name="d/x",
    symlinks={"d": "real"},
)
bad(
    "name-dir-nested-container",
    "directory d holds .dafstore: another container inside this one, never read as this one's",
    ["C4"],
    "missing_file",
    {
        "d/.dafstore/container.yaml": b"format: dafstore\nversion:\n- 1\n- 0\n",
        "d/x.yaml": INT8_3.encode(),
        "d/x.array": b"\x01\x02\x03",
    },
    name="d/x",
)

# 11. Names [N1]-[N6]

dense(
    "name-nested",
    "array a/b/c: files a/b/c.yaml and a/b/c.array",
    ["N2", "N7"],
    "int32",
    [2],
    [7, 8],
    name="a/b/c",
)
dense("name-unicode", "UTF-8 names", ["N1"], "int8", [1], [1], name="données/β")
dense(
    "name-suffix-lookalikes",
    "directories named array and yaml.d, last component ending in .yaml: all valid",
    ["N6"],
    "int8",
    [1],
    [2],
    name="array/yaml.d/b.yaml",
)
dense(
    "name-last-247-bytes",
    "a last component of 247 bytes is valid",
    ["N5"],
    "int8",
    [1],
    [3],
    name="n" * 247,
)
dense(
    "name-dir-255-bytes",
    "a directory component of 255 bytes is valid",
    ["N5"],
    "int8",
    [1],
    [4],
    name="d" * 255 + "/x",
)
dense(
    "name-last-247-bytes-utf8",
    "123 two-byte characters + 1 byte = 247 bytes: valid",
    ["N5"],
    "int8",
    [1],
    [5],
    name="é" * 123 + "x",
)
_x = dense_files("x", "int8", [3], [1, 2, 3], crc=False)[0]


def bad_name(vid, description, rules, name, files=None, symlinks=None):
    return bad(vid, description, rules, "invalid_name", files or {}, name=name, symlinks=symlinks)


bad_name(
    "name-hidden-dir",
    "component .hidden is reserved, even though its files exist",
    ["N3", "C1"],
    ".hidden/x",
    {".hidden/x.yaml": _x["x.yaml"], ".hidden/x.array": _x["x.array"]},
)
bad_name(
    "name-hidden-last",
    "last component .x",
    ["N3"],
    "a/.x",
    {"a/.x.yaml": _x["x.yaml"], "a/.x.array": _x["x.array"]},
)
bad_name(
    "name-reserved-dafstore",
    "the reserved directory .dafstore",
    ["N3", "C1"],
    ".dafstore/x",
    {".dafstore/x.yaml": _x["x.yaml"], ".dafstore/x.array": _x["x.array"]},
)
bad_name("name-dot", "component .", ["N3"], "./x", _x)
bad_name(
    "name-dotdot",
    "component ..",
    ["N3"],
    "a/../x",
    {**_x, "a/y.yaml": _x["x.yaml"], "a/y.array": _x["x.array"]},
)
bad_name(
    "name-dotdot-escape", "a name reaching outside the container", ["N3", "N7"], "../dtype-int32/x"
)
bad_name("name-empty", "empty name", ["N2"], "")
bad_name("name-leading-slash", "leading /", ["N2"], "/x", _x)
bad_name("name-trailing-slash", "trailing /", ["N2"], "x/", _x)
bad_name(
    "name-double-slash",
    "doubled /",
    ["N2"],
    "a//x",
    {"a/x.yaml": _x["x.yaml"], "a/x.array": _x["x.array"]},
)
bad_name("name-nul", "NUL in a name", ["N4"], "x\0y")
# [N8]: characters that fake rows or reorder text where a name is printed. No files: vectors
# never hold file names with control characters.
for _vid, _what, _name in [
    ("name-c0-newline", "a newline (U+000A, C0)", "a\nb"),
    ("name-c0-escape", "an ESC sequence (U+001B, C0)", "a\x1b[2Jb"),
    ("name-c0-tab", "a tab (U+0009, C0)", "a\tb"),
    ("name-c0-soh", "U+0001 (C0)", "a\x01b"),
    ("name-del", "DEL (U+007F)", "a\x7fb"),
    ("name-c1-nel", "NEL (U+0085, C1)", "a\x85b"),
    ("name-c1-csi", "CSI (U+009B, C1)", "a\x9bb"),
    ("name-bidi-alm", "ARABIC LETTER MARK (U+061C)", "a\u061cb"),
    ("name-bidi-rlm", "RIGHT-TO-LEFT MARK (U+200F)", "a\u200fb"),
    ("name-line-separator", "LINE SEPARATOR (U+2028)", "a\u2028b"),
    ("name-paragraph-separator", "PARAGRAPH SEPARATOR (U+2029)", "a\u2029b"),
    ("name-bidi-lre", "LEFT-TO-RIGHT EMBEDDING (U+202A)", "a\u202ab"),
    ("name-bidi-rlo", "RIGHT-TO-LEFT OVERRIDE (U+202E)", "txt\u202eyaml.x"),
    ("name-bidi-lri", "LEFT-TO-RIGHT ISOLATE (U+2066)", "a\u2066b"),
    ("name-bidi-pdi", "POP DIRECTIONAL ISOLATE (U+2069)", "a\u2069b"),
    ("name-dir-control", "a newline in a directory component", "d\n/x"),
]:
    bad_name(_vid, f"{_what} in a name", ["N8"], _name)
bad_name("name-backslash", "backslash in a name", ["N4"], "a\\x")
bad_name("name-last-248-bytes", "a last component of 248 bytes", ["N5"], "n" * 248)
bad_name(
    "name-last-248-bytes-utf8",
    "124 two-byte characters = 248 bytes (124 characters)",
    ["N5"],
    "é" * 124,
)
bad_name("name-dir-256-bytes", "a directory component of 256 bytes", ["N5"], "d" * 256 + "/x")
bad_name(
    "name-dir-ends-yaml",
    "directory a.yaml would collide with array a's metadata file, even though its files exist",
    ["N6"],
    "a.yaml/x",
    {"a.yaml/x.yaml": _x["x.yaml"], "a.yaml/x.array": _x["x.array"]},
)
for _sfx in ["array", "data", "indices", "indptr"]:
    bad_name(
        f"name-dir-ends-{_sfx}", f"directory component ending in .{_sfx}", ["N6"], f"a.{_sfx}/x"
    )
v = bad_name("name-not-utf8", "a name that is not UTF-8 (given as bytes)", ["N1"], None)
v.name_hex = b"x\xff".hex()


# 12. The YAML subset of metadata files [Y6]-[Y9]: what every reader accepts and refuses, chosen
# so that PyYAML (YAML 1.1) and YAML 1.2 parsers agree on every accepted document.


def subset_bad(vid, description, rules, text, data=b"\x01\x02\x03"):
    """Metadata outside the subset: invalid_metadata, whatever a general YAML library makes of it."""
    return bad_yaml(vid, description, rules, "invalid_metadata", text, data=data)


subset_bad(
    "yaml-shape-octal",
    "shape: [010] (8 in YAML 1.1, 10 in YAML 1.2): a leading zero is outside the subset",
    ["Y7"],
    "dtype: int8\nshape: [010]\nversion:\n- 1\n- 1\n",
    data=bytes(range(8)),
)
subset_bad(
    "yaml-shape-plus-sign",
    "shape: [+3]: a sign other than - is outside the subset",
    ["Y7"],
    "dtype: int8\nshape:\n- +3\nversion:\n- 1\n- 1\n",
)
subset_bad(
    "yaml-shape-underscore",
    "shape: [1_0] (10 in YAML 1.1, a string in YAML 1.2)",
    ["Y7"],
    "dtype: int8\nshape:\n- 1_0\nversion:\n- 1\n- 1\n",
    data=bytes(range(10)),
)
subset_bad(
    "yaml-shape-hex",
    "shape: [0x3]: hexadecimal is outside the subset",
    ["Y7"],
    "dtype: int8\nshape:\n- 0x3\nversion:\n- 1\n- 1\n",
)
subset_bad(
    "yaml-dtype-exponent",
    "dtype: 1e3 (a string in YAML 1.1, a float in YAML 1.2): outside the subset",
    ["Y7"],
    "dtype: 1e3\nshape:\n- 3\nversion:\n- 1\n- 1\n",
)
subset_bad(
    "yaml-dtype-yes",
    "dtype: yes (a boolean in YAML 1.1, a string in YAML 1.2)",
    ["Y7"],
    "dtype: yes\nshape:\n- 3\nversion:\n- 1\n- 1\n",
)
subset_bad(
    "yaml-unknown-value-on",
    "on in an ignored key: outside the subset even where the value is ignored",
    ["Y7"],
    INT8_3 + "switch: on\n",
)
subset_bad(
    "yaml-unknown-value-tilde",
    "~ (null in every schema) is outside the subset: null is spelled null",
    ["Y7"],
    INT8_3 + "nothing: ~\n",
)
subset_bad(
    "yaml-merge-key",
    "a merge key << (dtype in YAML 1.1, a key named << in YAML 1.2)",
    ["Y7"],
    "<<:\n  dtype: int8\nshape:\n- 3\nversion:\n- 1\n- 1\n",
)
subset_bad(
    "yaml-anchor",
    "an anchor on an ignored value",
    ["Y7"],
    INT8_3 + "note: &n x\n",
)
subset_bad(
    "yaml-tag-standard",
    "a standard tag (!!str) on the dtype",
    ["Y7"],
    "dtype: !!str int8\nshape:\n- 3\nversion:\n- 1\n- 1\n",
)
subset_bad(
    "yaml-tag-local",
    "a local tag (!x) on an ignored value",
    ["Y7"],
    INT8_3 + "note: !x y\n",
)
subset_bad(
    "yaml-key-integer",
    "a root key that is an integer",
    ["Y7"],
    INT8_3 + "1: one\n",
)
subset_bad(
    "yaml-key-true",
    "a root key that is a boolean",
    ["Y7"],
    INT8_3 + "true: yes\n",
)
subset_bad(
    "yaml-key-complex",
    "a complex key (? [a, b])",
    ["Y7"],
    INT8_3 + "? [a, b]\n: c\n",
)
subset_bad(
    "yaml-key-space-before-colon",
    "a key followed by a space before its colon",
    ["Y7"],
    "dtype : int8\nshape:\n- 3\nversion:\n- 1\n- 1\n",
)
subset_bad(
    "yaml-duplicate-key-quoted",
    "dtype and 'dtype' are the same key",
    ["Y9"],
    "'dtype': int8\n" + INT8_3,
)
for _vid, _char, _what in [
    ("yaml-bom", "\ufeff", "a leading byte order mark"),
    ("yaml-nel", "\u0085", "U+0085 (a line break in YAML 1.1, not in 1.2) in an ignored value"),
    ("yaml-line-separator", "\u2028", "U+2028 (a line break in YAML 1.1) in an ignored value"),
    ("yaml-paragraph-separator", "\u2029", "U+2029 (a line break in YAML 1.1) in an ignored value"),
    ("yaml-tab", "\t", "a tab after a colon"),
]:
    _text = _char + INT8_3 if _vid == "yaml-bom" else INT8_3 + f"note:{_char}'a{_char}b'\n"
    subset_bad(_vid, _what, ["Y6"], _text)
subset_bad(
    "yaml-crlf",
    "carriage return + line feed line ends",
    ["Y6"],
    INT8_3.replace("\n", "\r\n"),
)
subset_bad(
    "yaml-directive",
    "a %YAML directive",
    ["Y6"],
    "%YAML 1.1\n---\n" + INT8_3,
)
subset_bad(
    "yaml-directive-tag",
    "a %TAG directive",
    ["Y6"],
    "%TAG !e! tag:example.com,2000:\n---\n" + INT8_3,
)
subset_bad(
    "yaml-marker-with-content",
    "--- followed by content on its line",
    ["Y6"],
    "--- dtype: int8\nshape:\n- 3\nversion:\n- 1\n- 1\n",
)
subset_bad(
    "yaml-content-after-end-marker",
    "content after the document end marker ...",
    ["Y6"],
    INT8_3 + "...\nnote: x\n",
)
subset_bad(
    "yaml-flow-mapping-root",
    "the root as a flow mapping",
    ["Y8"],
    "{version: [1, 1], dtype: int8, shape: [3]}\n",
)
subset_bad(
    "yaml-flow-mapping-nested",
    "a non-empty flow mapping (only {} is in the subset)",
    ["Y8"],
    INT8_3 + "note: {a: 1}\n",
)
subset_bad(
    "yaml-flow-sequence-nested",
    "a collection inside a flow sequence",
    ["Y8"],
    INT8_3 + "note: [[1, 2]]\n",
)
subset_bad(
    "yaml-flow-sequence-multiline",
    "a flow sequence spanning two lines",
    ["Y8"],
    "dtype: int8\nshape: [3,\n  ]\nversion:\n- 1\n- 1\n",
)
subset_bad(
    "yaml-flow-sequence-trailing-comma",
    "a trailing comma in a flow sequence",
    ["Y8"],
    "dtype: int8\nshape: [3,]\nversion:\n- 1\n- 1\n",
)
subset_bad(
    "yaml-block-scalar",
    "a literal block scalar (|) in an ignored key",
    ["Y7"],
    INT8_3 + "note: |\n  text\n",
)
subset_bad(
    "yaml-plain-multiline",
    "a plain scalar continued on the next line",
    ["Y7"],
    INT8_3 + "note: two\n  lines\n",
)
subset_bad(
    "yaml-value-next-line",
    "a scalar value on the line after its key",
    ["Y7"],
    "dtype:\n  int8\nshape:\n- 3\nversion:\n- 1\n- 1\n",
)
subset_bad(
    "yaml-comment-without-space",
    "a comment after a flow sequence without a space before # (PyYAML takes it as a comment)",
    ["Y7"],
    "dtype: int8\nshape: [3]#c\nversion:\n- 1\n- 1\n",
)
subset_bad(
    "yaml-plain-with-space",
    "a plain scalar with a space (quote it)",
    ["Y7"],
    INT8_3 + "owner: some body\n",
)
subset_bad(
    "yaml-escape-outside-subset",
    "a double-quoted escape outside the subset (\\x41)",
    ["Y7"],
    INT8_3 + 'note: "\\x41"\n',
)
subset_bad(
    "yaml-root-indented",
    "the root mapping indented",
    ["Y8"],
    "".join("  " + line + "\n" for line in INT8_3.splitlines()),
)
_deep = "".join("  " * i + f"k{i}:\n" for i in range(16)) + "  " * 16 + "leaf: 1\n"
subset_bad("yaml-nesting-17", "17 nested mappings (more than 16)", ["Y8"], INT8_3 + _deep)
_deep16 = "".join("  " * i + f"k{i}:\n" for i in range(15)) + "  " * 15 + "leaf: 1\n"
dense(
    "yaml-nesting-16",
    "16 nested mappings, the root included: in the subset",
    ["Y8"],
    "int8",
    [3],
    [1, 2, 3],
    crc=False,
    extra=_deep16,
)
v = Vector(
    "yaml-daf-pyyaml-flow",
    "a daf file as PyYAML before 5.1 wrote it (flow sequences)",
    ["Y8"],
)
v.files = {
    "x.yaml": b"dtype: float32\nshape: [2, 2]\nversion: [1, 0]\n",
    "x.array": pack("float32", [1.0, 2.0, 3.0, 4.0]),
}
v.ok(dense_ok_fields("float32", [2, 2], pack("float32", [1.0, 2.0, 3.0, 4.0]), {}, False, (1, 0)))

# Sizes are integers from 0 to 2^64 - 1 ([Y7], [D2]): 2^64 is not a size, whatever the other
# dimensions are.
bad_yaml(
    "dense-shape-2-64",
    "shape [2^64]: not a size (more than 64 bits)",
    ["D2", "Y7"],
    "invalid_metadata",
    f"dtype: int8\nshape:\n- {2**64}\nversion:\n- 1\n- 1\n",
)
bad_yaml(
    "dense-zero-size-dim-2-64",
    "shape [0, 2^64]: zero elements, but 2^64 is not a size",
    ["D2", "Y7"],
    "invalid_metadata",
    f"dtype: int8\nshape:\n- 0\n- {2**64}\nversion:\n- 1\n- 1\n",
    data=b"",
)
sparse_bad_yaml(
    "sparse-nnz-2-64", "nnz: 2^64 is not a size", ["Y7"], "invalid_metadata",
    sparse_yaml(nnz=2**64),
)
bad_yaml(
    "version-2-64",
    "version: [2^64, 0]: not a version",
    ["Y7"],
    "invalid_metadata",
    f"dtype: int8\nshape:\n- 3\nversion:\n- {2**64}\n- 0\n",
)

# Checksums of suffixes that are not this array's data files ([K1]): ignored, but typed.
v = dense(
    "crc-dense-data-suffix-verify",
    "a dense array's crc32c with a data: entry (a sparse suffix): ignored, array verified",
    ["K1"],
    "int8",
    [3],
    [1, 2, 3],
    verify=True,
)
v.files["x.yaml"] = v.files["x.yaml"].replace(b"crc32c:\n", b"crc32c:\n  data: 12345\n", 1)
assert b"data: 12345" in v.files["x.yaml"]
bad_yaml(
    "crc-unknown-suffix-bad-value",
    "an unknown suffix whose value is not a 32-bit integer: refused like any crc32c entry",
    ["K1"],
    "invalid_metadata",
    "crc32c:\n  future_file: -1\n" + INT8_3,
)

# [N6]: .sparse, the legacy data file name readers MAY open (SPEC 5.5), is reserved too.
bad_name("name-dir-ends-sparse", "directory component ending in .sparse", ["N6"], "a.sparse/x")

# Check order (SPEC 11, [E2]): vectors with two defects, refused for the one checked first.
bad_yaml(
    "order-yaml-before-version",
    "a 2.0 file outside the YAML subset: the document is checked before the version",
    ["E2"],
    "invalid_metadata",
    "{version: [2, 0], dtype: int8, shape: [3]}\n",
)
bad_yaml(
    "order-key-types-before-dtype",
    "dtype float (unknown) and shape [-1]: key types are checked before dtype spellings",
    ["E2"],
    "invalid_metadata",
    "dtype: float\nshape:\n- -1\nversion:\n- 1\n- 1\n",
)
sparse_bad_yaml(
    "order-dtype-before-index-dtype",
    "data_dtype float (unknown) and indices_dtype float32 (not an index dtype): spellings first",
    ["E2"],
    "unknown_dtype",
    sparse_yaml(data_dtype="float", indices_dtype="float32"),
)
sparse_bad_yaml(
    "order-index-dtype-before-overflow",
    "indices_dtype float32 and nnz 2^62 (an overflow): index dtypes before byte sizes",
    ["E2"],
    "invalid_metadata",
    sparse_yaml(indices_dtype="float32", nnz=2**62),
)
bad(
    "order-metadata-before-files",
    "unknown dtype and no .array file: the metadata is checked before the data files",
    ["E2"],
    "unknown_dtype",
    {"x.yaml": b"dtype: float\nshape:\n- 3\nversion:\n- 1\n- 1\n"},
)
_f = csr_files(crc=False)
_f["x.data"] = _f["x.data"][:-1]
del _f["x.indices"]
bad(
    "order-files-in-order",
    "x.data one byte short and x.indices absent: data, indices, indptr, each checked in turn",
    ["E2"],
    "size_mismatch",
    _f,
)
_f = csr_files()
_crc = crc32c(_f["x.data"])
_f["x.yaml"] = _f["x.yaml"].replace(b"  data: %d\n" % _crc, b"  data: %d\n" % (_crc ^ 1), 1)
assert b"  data: %d\n" % (_crc ^ 1) in _f["x.yaml"]
_f["x.indptr"] = _f["x.indptr"][:-8]
bad(
    "order-sizes-before-checksums",
    "wrong x.data checksum (verify) and x.indptr short: every size is checked before any checksum",
    ["E2"],
    "size_mismatch",
    _f,
    verify=True,
)
_files, _data, _ = dense_files("x", "bool", [3], [1, 0, 1], crc=7)
_files["x.array"] = b"\x01\x02\x01"
bad(
    "order-checksum-before-content",
    "bool byte 2 and a wrong checksum (verify): checksums before content checks",
    ["E2"],
    "checksum_mismatch",
    _files,
    verify=True,
)
_f = csr_files(data_dtype="bool", data=[True, False, True], indptr=[0, 2, 1, 3], crc=False)
_f["x.data"] = b"\x01\x02\x01"
bad(
    "order-invariants-before-bool",
    "bool data byte 2 and a decreasing indptr: sparse invariants before bool bytes",
    ["E2"],
    "sparse_invariant",
    _f,
)

# [C2] the container version file: vectors with "check": "container".


def container(vid, description, text, result, *, symlink=None, rules=("C2",)):
    v = Vector(vid, description, list(rules), name="")
    v.check = "container"
    if text is not None:
        v.files[".dafstore/container.yaml"] = text.encode() if isinstance(text, str) else text
    else:
        v.files[".dafstore/README"] = b"no container.yaml\n"
    if symlink:
        v.symlinks[".dafstore/container.yaml"] = symlink
        v.files[".dafstore/real.yaml"] = b"format: dafstore\nversion:\n- 1\n- 0\n"
    if isinstance(result, tuple):
        v.result = {"expect": "ok", "container_version": list(result)}
    else:
        v.error(result)
    return v


container("container-1-0", "container.yaml as the engine writes it", "format: dafstore\nversion:\n- 1\n- 0\n", (1, 0))
container(
    "container-1-7-unknown-keys",
    "a later minor version with unknown keys: read",
    "created_by: someone\nformat: dafstore\nversion: [1, 7]\nzz:\n  a: [1]\n",
    (1, 7),
)
container("container-2-0", "a future major version", "format: dafstore\nversion:\n- 2\n- 0\n", "unsupported_version")
container("container-format-other", "format is not dafstore", "format: zarr\nversion:\n- 1\n- 0\n", "invalid_metadata")
container("container-format-missing", "no format key", "version:\n- 1\n- 0\n", "invalid_metadata")
container("container-version-missing", "no version key", "format: dafstore\n", "invalid_metadata")
container("container-version-quoted", "version elements quoted", "format: dafstore\nversion: ['1', '0']\n", "invalid_metadata")
container(
    "container-format-before-version",
    "format zarr and version 2.0: the format is checked first",
    "format: zarr\nversion: [2, 0]\n",
    "invalid_metadata",
    rules=("C2", "E2"),
)
container(
    "container-outside-subset",
    "a flow mapping (outside the YAML subset)",
    "{format: dafstore, version: [1, 0]}\n",
    "invalid_metadata",
    rules=("C2", "Y8"),
)
container("container-missing", ".dafstore/ without container.yaml", None, "missing")
container(
    "container-symlink",
    "container.yaml is a symbolic link",
    None,
    "missing_file",
    symlink="real.yaml",
)


# [A1] daf's own files: vectors with "check": "daf_file". `name` is the file to judge, relative to
# the vector directory; `daf_file` is what it is ("marker", "item", "csv") or null (not daf's own:
# an array's metadata, valid or not, judged as before).

DAF_MARKER = "version:\n- 1\n- 0\n"  # PyYAML dump of {version: [1, 0]}, as daf's FilesWriter writes it
DAF_DENSE = "dtype: float32\nshape:\n- 3\nversion:\n- 1\n- 0\n"


def daf_file(vid, description, file, files, result):
    v = Vector(vid, description, ["A1"], name=file)
    v.check = "daf_file"
    v.files = {k: (t.encode() if isinstance(t, str) else t) for k, t in files.items()}
    v.result = {"expect": "ok", "daf_file": result}
    return v


_age = pack("float32", [1.0, 2.5, 3.0])
daf_file(
    "daf-file-marker",
    "__daf__.yaml, daf's format marker, beside a daf array",
    "__daf__.yaml",
    {"__daf__.yaml": DAF_MARKER, "cell;age.yaml": DAF_DENSE, "cell;age.array": _age},
    "marker",
)
daf_file(
    "daf-file-marker-beside-array",
    "__daf__.yaml with __daf__.array beside it: an array's metadata (broken), not daf's marker",
    "__daf__.yaml",
    {"__daf__.yaml": DAF_MARKER, "__daf__.array": _age},
    None,
)
daf_file(
    "daf-file-item-timestamp",
    "created.yaml: PyYAML dump of a datetime (a plain scalar with a space, then ...)",
    "created.yaml",
    {"__daf__.yaml": DAF_MARKER, "created.yaml": "2026-12-02 07:11:41.123456\n...\n"},
    "item",
)
daf_file(
    "daf-file-item-string",
    "organism.yaml: PyYAML dump of a string",
    "organism.yaml",
    {"organism.yaml": "human\n...\n"},
    "item",
)
daf_file(
    "daf-file-item-integer",
    "cells_count.yaml: PyYAML dump of a negative integer, with a --- start marker",
    "cells_count.yaml",
    {"cells_count.yaml": "---\n-5\n...\n"},
    "item",
)
daf_file(
    "daf-file-item-quoted",
    "version_tag.yaml: PyYAML dump of the string '123' (quoted, no end marker)",
    "version_tag.yaml",
    {"version_tag.yaml": "'123'\n"},
    "item",
)
daf_file(
    "daf-file-item-beside-array",
    "a scalar x.yaml with x.array beside it: an array's broken metadata, not a daf item",
    "x.yaml",
    {"x.yaml": "5\n...\n", "x.array": _age},
    None,
)
daf_file(
    "daf-file-broken-metadata-alone",
    "metadata with a syntax error and no data file: not daf's (still reported)",
    "x.yaml",
    {"x.yaml": "dtype: float32\nshape: [3\n"},
    None,
)
daf_file(
    "daf-file-mapping-item",
    "a mapping without dtype and no data file: a daf item or damaged metadata, not daf's own",
    "params.yaml",
    {"params.yaml": "a: 1\n"},
    None,
)
daf_file(
    "daf-file-sequence-item",
    "a sequence (PyYAML dump of a list): not recognised as daf's own",
    "sizes.yaml",
    {"sizes.yaml": "- 1\n- 2\n"},
    None,
)
daf_file(
    "daf-file-item-multiline",
    "a string PyYAML folded over two lines: not recognised as daf's own",
    "note.yaml",
    {"note.yaml": "'a long string a long string a long string a long string a long string a long\n  string'\n"},
    None,
)
daf_file(
    "daf-file-csv-axis",
    "cell;.csv: daf's axis entries",
    "cell;.csv",
    {"__daf__.yaml": DAF_MARKER, "cell;.csv": "cell\nC1\nC2\nC3\n"},
    "csv",
)


# ============================================================================================
# Tables (SPEC 5.6, [B1]-[B8], [G1]): `<name>.yaml` + `<name>.arrow`, an Arrow IPC file.
#
# The `.arrow` files are written by pyarrow (the one vector dependency beyond the standard
# library, pinned: the bytes are pyarrow's) and, for invalid vectors, patched at the offsets a
# small flatbuffer walker below finds. The types in the YAML are pyarrow's `str(type)`, which
# SPEC [G1] follows; the reference reader renders them with its own function, so the two cross-check.

PYARROW_VERSION = "26.0.1"


def _pa():
    try:
        import pyarrow as pa
        import pyarrow.ipc  # noqa: F401
    except ImportError:
        sys.exit("generate.py: the table vectors need pyarrow " + PYARROW_VERSION)
    if pa.__version__ != PYARROW_VERSION:
        sys.exit(
            f"generate.py: the table vectors are written by pyarrow {PYARROW_VERSION} (their bytes "
            f"are pyarrow's); found {pa.__version__}: install that version, or regenerate and "
            "review every table vector, then change PYARROW_VERSION"
        )
    return pa


pa = _pa()


def _u32(b, p):
    return struct.unpack_from("<I", b, p)[0]


class _Table:
    """A flatbuffer table at `pos` of `buf` (enough to find the fields the patches change)."""

    def __init__(self, buf, pos):
        self.buf, self.pos = buf, pos

    def field(self, i):
        vt = self.pos - struct.unpack_from("<i", self.buf, self.pos)[0]
        size = struct.unpack_from("<H", self.buf, vt)[0]
        if 4 + 2 * i >= size:
            return None
        off = struct.unpack_from("<H", self.buf, vt + 4 + 2 * i)[0]
        return self.pos + off if off else None

    def table(self, i):
        p = self.field(i)
        return _Table(self.buf, p + _u32(self.buf, p))

    def vector(self, i):
        """(position of the first element, length)."""
        p = self.field(i)
        v = p + _u32(self.buf, p)
        return v + 4, _u32(self.buf, v)


def _footer(b):
    n = struct.unpack_from("<i", b, len(b) - 10)[0]
    start = len(b) - 10 - n
    return _Table(b, start + _u32(b, start))


def _blocks(b, which):
    """[(position of the Block struct, offset, metaDataLength, bodyLength)]: `which` is
    "dictionaries" or "batches"."""
    pos, n = _footer(b).vector(2 if which == "dictionaries" else 3)
    out = []
    for k in range(n):
        p = pos + 24 * k
        off, meta, body = struct.unpack_from("<qi4xq", b, p)
        out.append((p, off, meta, body))
    return out


def _batch(b, block):
    """The RecordBatch table of the message at `block` (a record batch or a dictionary batch's
    data), and the file position of its body."""
    _, off, meta, _ = block
    message = _Table(b, off + 8 + _u32(b, off + 8))
    header = message.table(2)
    if struct.unpack_from("<B", b, message.field(1))[0] == 2:  # DictionaryBatch: its `data`
        header = header.table(1)
    return header, off + meta


def _buffers(b, block):
    """[(position of the Buffer struct, offset, length)] of the batch at `block`."""
    rb, _ = _batch(b, block)
    pos, n = rb.vector(2)
    return [(pos + 16 * k, *struct.unpack_from("<qq", b, pos + 16 * k)) for k in range(n)]


def arrow_file(table_or_batches, schema=None, *, options=None) -> bytes:
    """An Arrow IPC file written by pyarrow: a Table (its chunks as batches) or a list of
    RecordBatches (with `schema`)."""
    sink = pa.BufferOutputStream()
    if isinstance(table_or_batches, pa.Table):
        schema = table_or_batches.schema
        batches = table_or_batches.to_batches()
    else:
        batches = table_or_batches
    with pa.ipc.new_file(sink, schema, options=options) as w:
        for batch in batches:
            w.write_batch(batch)
    return sink.getvalue().to_pybytes()


def yaml_str(s: str) -> str:
    """A string as a scalar of the subset ([Y7]): plain when it is a plain string, else single-
    quoted (PyYAML's choice), double-quoted with \\uXXXX escapes if it holds a forbidden
    character ([Y6])."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.+/-]*", s) and s.lower() not in (
        "y", "n", "yes", "no", "on", "off", "true", "false", "null"
    ):
        return s
    if not re.search("[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff]", s):
        return "'" + s.replace("'", "''") + "'"
    out = []
    for c in s:
        if c in '\\"':
            out.append("\\" + c)
        elif re.match("[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff]", c):
            out.append("\\u%04x" % ord(c))
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def table_yaml(columns, types, rows, nbytes, *, crc=None, version=(1, 2), extra=None) -> str:
    """The metadata of a table ([B2]), keys sorted as PyYAML dumps them."""
    keys = {
        "bytes": str(nbytes),
        "columns": [yaml_str(c) for c in columns],
        "kind": "table",
        "rows": str(rows),
        "types": [yaml_str(t) for t in types],
        "version": list(version),
    }
    if crc is not None:
        keys["crc32c"] = {"arrow": crc}
    keys.update(extra or {})
    keys = {k: v for k, v in keys.items() if v is not None}
    return yaml_dump(keys)


_TEMPORAL_STORAGE = {4: "int32", 8: "int64"}


def json_column(arr) -> list:
    """The JSON values of one column (README "Tables"): null as null; bool, integers, strings
    as themselves; floats as for arrays; decimals as their decimal string; dates, times,
    timestamps and durations as the stored integer; binary as lowercase hex; a dictionary's
    entries as their values; lists as arrays; structs as objects."""
    t = arr.type
    T = pa.types
    if T.is_dictionary(t):
        values = json_column(arr.dictionary)
        return [None if i is None else values[i] for i in arr.indices.to_pylist()]
    if T.is_null(t):
        return [None] * len(arr)
    if T.is_temporal(t):
        storage = pa.int32() if t.bit_width == 32 else pa.int64()
        return arr.view(storage).to_pylist()
    if T.is_floating(t):
        dtype = {16: "float16", 32: "float32", 64: "float64"}[t.bit_width]
        return [None if v is None else json_value(float(v), dtype) for v in arr.to_pylist()]
    if T.is_decimal(t):
        return [None if v is None else str(v) for v in arr.to_pylist()]
    if (T.is_binary(t) or T.is_large_binary(t) or T.is_binary_view(t)
            or T.is_fixed_size_binary(t)):
        return [None if v is None else v.hex() for v in arr.to_pylist()]
    if T.is_list(t) or T.is_large_list(t) or T.is_fixed_size_list(t):
        return [None if not arr[i].is_valid else json_column(arr[i].values)
                for i in range(len(arr))]
    if T.is_struct(t):
        children = [json_column(c) for c in arr.flatten()]
        return [
            None if not arr[i].is_valid
            else {t.field(j).name: children[j][i] for j in range(t.num_fields)}
            for i in range(len(arr))
        ]
    return arr.to_pylist()  # bool, integers, strings


def table_ok_fields(data: bytes, recorded, verify, version=(1, 2)) -> dict:
    reader = pa.ipc.open_file(pa.py_buffer(data))
    t = reader.read_all()
    return {
        "kind": "table",
        "version": list(version),
        "rows": t.num_rows,
        "columns": t.schema.names,
        "types": [str(f.type) for f in t.schema],
        "bytes": len(data),
        "batches": [reader.get_batch(i).num_rows for i in range(reader.num_record_batches)],
        "values": {f.name: json_column(t.column(i).combine_chunks() if t.column(i).num_chunks
                                       else pa.array([], f.type))
                   for i, f in enumerate(t.schema)},
        **crc_fields({"arrow": data}, recorded, verify),
    }


def table_files(name, data: bytes, *, crc=True, columns=None, types=None, rows=None,
                nbytes=None, version=(1, 2), extra=None):
    """The files of a table over the IPC file `data`; the YAML describes it unless told
    otherwise. Returns (files, recorded checksums)."""
    schema = pa.ipc.open_file(pa.py_buffer(data)).schema if data[:6] == b"ARROW1" else None
    if columns is None:
        columns = schema.names
    if types is None:
        types = [str(f.type) for f in schema]
    if rows is None:
        rows = pa.ipc.open_file(pa.py_buffer(data)).read_all().num_rows
    recorded = {}
    if crc is True:
        recorded = {"arrow": crc32c(data)}
    elif crc is not False:
        recorded = {"arrow": crc}
    text = table_yaml(columns, types, rows, len(data) if nbytes is None else nbytes,
                      crc=recorded.get("arrow"), version=version, extra=extra)
    return {f"{name}.yaml": text.encode(), f"{name}.arrow": data}, recorded


def table(vid, description, rules, data, *, name="t", verify=False, crc=True) -> Vector:
    """A valid table, expected to read back as written."""
    v = Vector(vid, description, rules, name=name, verify=verify)
    files, recorded = table_files(name, data, crc=crc)
    v.files.update(files)
    return v.ok(table_ok_fields(data, recorded, verify))


def bad_table(vid, description, rules, error_class, data, *, name="t", verify=False,
              extra_files=None, symlinks=None, drop_arrow=False, **yaml_kw) -> Vector:
    """A table that must be refused with `error_class`: `data` is the `.arrow` file; the YAML
    describes `describe` (default: `data`) with the overrides of `yaml_kw`."""
    describe = yaml_kw.pop("describe", data)
    yaml_kw.setdefault("nbytes", len(data))  # `bytes` is the file's size unless told otherwise
    files, _ = table_files(name, describe, crc=yaml_kw.pop("crc", False), **yaml_kw)
    files[f"{name}.arrow"] = data
    if drop_arrow:
        del files[f"{name}.arrow"]
    files.update(extra_files or {})
    return bad(vid, description, rules, error_class, files, name=name, verify=verify,
               symlinks=symlinks)


# The data of the valid vectors. Every type of the grammar ([G1]), nulls in most columns.

_N = None
PRIMITIVE = pa.table({
    "n": pa.nulls(3),
    "b": pa.array([True, _N, False]),
    "i8": pa.array([-128, _N, 127], pa.int8()),
    "i16": pa.array([-32768, 1, 32767], pa.int16()),
    "i32": pa.array([-2**31, _N, 2**31 - 1], pa.int32()),
    "i64": pa.array([-2**63, 0, 2**63 - 1], pa.int64()),
    "u8": pa.array([0, _N, 255], pa.uint8()),
    "u16": pa.array([0, 1, 65535], pa.uint16()),
    "u32": pa.array([0, _N, 2**32 - 1], pa.uint32()),
    "u64": pa.array([0, 1, 2**64 - 1], pa.uint64()),
    "f16": pa.array([struct.unpack("<e", struct.pack("<e", x))[0] for x in (-0.0, 65504.0)] + [_N],
                    pa.float16()),
    "f32": pa.array([0.10000000149011612, _N, -math.inf], pa.float32()),
    "f64": pa.array([0.1, math.nan, 5e-324], pa.float64()),
})
TEMPORAL = pa.table({
    "d32": pa.array([0, _N, 19000], pa.date32()),
    "d64": pa.array([0, 86400000, _N], pa.date64()),
    "t32s": pa.array([0, 3600, _N], pa.time32("s")),
    "t32ms": pa.array([0, _N, 86399999], pa.time32("ms")),
    "t64us": pa.array([_N, 1, 86399999999], pa.time64("us")),
    "t64ns": pa.array([0, 1, _N], pa.time64("ns")),
    "ts_s": pa.array([-1, 0, _N], pa.timestamp("s")),
    "ts_ms": pa.array([0, _N, 1700000000000], pa.timestamp("ms")),
    "ts_us_utc": pa.array([1700000000000000, _N, 0], pa.timestamp("us", tz="UTC")),
    "ts_ns_paris": pa.array([0, 1, _N], pa.timestamp("ns", tz="Europe/Paris")),
    "ts_ms_offset": pa.array([0, _N, 2], pa.timestamp("ms", tz="+01:00")),
    "dur_s": pa.array([-5, _N, 5], pa.duration("s")),
    "dur_ns": pa.array([0, 1, _N], pa.duration("ns")),
})
DECIMAL = pa.table({
    "dec128": pa.array([__import__("decimal").Decimal("-1.25"), _N,
                        __import__("decimal").Decimal("99999999.99")], pa.decimal128(10, 2)),
    "dec256": pa.array([__import__("decimal").Decimal("1.00001"), __import__("decimal").Decimal("0.00000"), _N],
                       pa.decimal256(40, 5)),
})
BINARY = pa.table({
    "s": pa.array(["a", _N, "h\u00e9 \u00fc"], pa.string()),
    "ls": pa.array(["", "long", _N], pa.large_string()),
    "sv": pa.array(["short", _N, "a string longer than twelve bytes"], pa.string_view()),
    "bin": pa.array([b"\x00\xff", _N, b""], pa.binary()),
    "lbin": pa.array([_N, b"x", b"yz"], pa.large_binary()),
    "bv": pa.array([b"\x01", b"a binary longer than twelve bytes", _N], pa.binary_view()),
    "fsb": pa.array([b"abcd", _N, b"\x00\x01\x02\x03"], pa.binary(4)),
})
DICTIONARY = pa.table({
    # polars 2.1 Categorical and Enum, as `to_arrow()` and `write_ipc(compat_level=oldest)` give
    # them; `write_ipc` (newest) gives the same with string_view values.
    "categorical": pa.array(["b", _N, "a"]).cast(pa.large_string()).dictionary_encode()
    .cast(pa.dictionary(pa.uint32(), pa.large_string())),
    "enum": pa.DictionaryArray.from_arrays(pa.array([0, 1, 0], pa.uint8()),
                                           pa.array(["x", "y"], pa.large_string()), ordered=True),
    "categorical_view": pa.DictionaryArray.from_arrays(
        pa.array([1, 1, _N], pa.uint32()), pa.array(["p", "q"], pa.string_view())),
    "pyarrow_encoded": pa.array(["u", "v", "u"]).dictionary_encode(),
    "int_values": pa.DictionaryArray.from_arrays(pa.array([0, _N, 1], pa.int8()),
                                                 pa.array([10, 20], pa.int64())),
})
NESTED = pa.table({
    "list": pa.array([[1, _N], _N, []], pa.list_(pa.int64())),
    "list_not_null": pa.array([[1], [2, 3], []],
                              pa.list_(pa.field("x", pa.int32(), nullable=False))),
    "large_list": pa.array([[0.5], _N, [1.5, 2.5]], pa.large_list(pa.float32())),
    "fixed_size_list": pa.array([[1, 2, 3], _N, [4, 5, _N]], pa.list_(pa.int8(), 3)),
    "struct": pa.array([{"a": 1, "b w": ["x"]}, _N, {"a": _N, "b w": _N}],
                       pa.struct([("a", pa.int32()), ("b w", pa.list_(pa.string()))])),
    "struct_not_null": pa.array([{"k": 1}, {"k": 2}, _N],
                                pa.struct([pa.field("k", pa.int16(), nullable=False)])),
    "list_of_dictionary": pa.ListArray.from_arrays(
        pa.array([0, 2, 2, 3], pa.int32()),
        pa.DictionaryArray.from_arrays(pa.array([0, 1, 0], pa.int16()), pa.array(["m", "n"]))),
    "large_list_of_strings": pa.array([["a"], [], _N], pa.large_list(pa.large_string())),
})
NAMES = pa.table({"b w": [1], "": [2], "'q'": [3], "\u00e9t\u00e9": [4], "tab\there": [5],
                  "true": [6], "3": [7]})

table("table-types-primitive", "null, bool, every integer and float width (float16 too), with nulls",
      ["B1", "B2", "G1"], arrow_file(PRIMITIVE))
table("table-types-temporal", "date32/64, time32/64, timestamps with and without time zone, durations",
      ["B2", "G1"], arrow_file(TEMPORAL))
table("table-types-decimal", "decimal128 and decimal256", ["G1"], arrow_file(DECIMAL))
table("table-types-binary", "string, large_string, string_view, binary, large_binary, binary_view, "
      "fixed_size_binary", ["G1"], arrow_file(BINARY))
table("table-types-dictionary", "dictionaries: polars Categorical and Enum (large_string and "
      "string_view values), pyarrow's dictionary_encode, integer values", ["B6", "G1"],
      arrow_file(DICTIONARY))
table("table-types-nested", "list, large_list, fixed_size_list, struct, not-null children, "
      "a dictionary inside a list", ["B6", "G1"], arrow_file(NESTED))
table("table-names-quoted", "column names that are not plain YAML strings: quoted in the YAML",
      ["B2", "Y7"], arrow_file(NAMES))

_MULTI = pa.table({
    "x": pa.array([1.0, 2.0, 3.0, 4.0, 5.0]),
    "c": pa.array(["a", "b", "a", _N, "c"]).dictionary_encode(),
    "s": pa.array(["p", "q", _N, "r", "s"], pa.large_string()),
})
_MULTI_BATCH = _MULTI.combine_chunks().to_batches()[0]
# Slices of one batch share its dictionary: one dictionary batch for the id ([B6]).
_MULTI_FILE = arrow_file([_MULTI_BATCH.slice(0, 2), _MULTI_BATCH.slice(2, 0),
                          _MULTI_BATCH.slice(2, 3)], _MULTI.schema)
table("table-batches-many", "three record batches (one of 0 rows) sharing one dictionary",
      ["B5", "B6", "B7"], _MULTI_FILE)
_ZERO = pa.table({"x": pa.array([], pa.float64()), "c": pa.array([], pa.string()).dictionary_encode()})
table("table-rows-zero", "one record batch of 0 rows", ["B7"], arrow_file(_ZERO))
table("table-batches-zero", "no record batch at all (and so no dictionary batch): 0 rows",
      ["B6", "B7"], arrow_file([], _ZERO.schema))
_SMALL = pa.table({"x": pa.array([1, 2, 3], pa.int64()), "s": pa.array(["a", _N, "c"])})
_SMALL_FILE = arrow_file(_SMALL)
table("table-crc-verify", "the recorded CRC-32C of the .arrow file matches; verified", ["K1", "B2"],
      _SMALL_FILE, verify=True)
table("table-crc-absent-verify", "no crc32c key: nothing to verify", ["K1"], _SMALL_FILE,
      verify=True, crc=False)
_v = Vector("table-crc-mismatch-no-verify", "a wrong CRC-32C is not checked without verify",
            ["K1"], name="t")
_files, _rec = table_files("t", _SMALL_FILE, crc=crc32c(_SMALL_FILE) ^ 1)
_v.files.update(_files)
_v.ok(table_ok_fields(_SMALL_FILE, _rec, False))
bad_table("table-crc-mismatch-verify", "the recorded CRC-32C differs from the .arrow file; verify",
          ["K1"], "checksum_mismatch", _SMALL_FILE, verify=True, crc=crc32c(_SMALL_FILE) ^ 1)
bad_table("table-crc-bad-value", "crc32c arrow: a string", ["K1"], "invalid_metadata",
          _SMALL_FILE, crc="'1'")
# A dense array with a stray .arrow beside it: dense rules are unchanged ([R1] leftovers).
_v = dense("table-dense-with-arrow-beside", "a dense array with an x.arrow beside it: read as "
           "dense (a leftover file, reported by fsck, not by readers)", ["B1"], "int8", [3], [1, 2, 3])
_v.files["x.arrow"] = _SMALL_FILE

# [B1], [B2]: the metadata.
bad_table("table-kind-with-dtype", "kind: table with a dtype key", ["B1", "Y5"],
          "invalid_metadata", _SMALL_FILE, extra={"dtype": "int64"})
bad_table("table-kind-with-data-dtype", "kind: table with a data_dtype key", ["B1", "Y5"],
          "invalid_metadata", _SMALL_FILE, extra={"data_dtype": "int64"})
bad_table("table-kind-unknown", "kind: frame (no dtype): not a kind of this version",
          ["B1", "Y5"], "invalid_metadata", _SMALL_FILE, extra={"kind": "frame"})
bad_table("table-kind-not-string", "kind: [table]", ["B1"], "invalid_metadata", _SMALL_FILE,
          extra={"kind": ["table"]})
bad_table("table-kind-dense-with-dtype", "kind: dense beside a dtype: only table is a kind",
          ["B1"], "invalid_metadata", _SMALL_FILE, extra={"kind": "dense", "dtype": "int64"})
bad_table("table-missing-rows", "no rows key", ["B2"], "invalid_metadata", _SMALL_FILE,
          extra={"rows": None})
bad_table("table-missing-columns", "no columns key", ["B2"], "invalid_metadata", _SMALL_FILE,
          extra={"columns": None})
bad_table("table-missing-types", "no types key", ["B2"], "invalid_metadata", _SMALL_FILE,
          extra={"types": None})
bad_table("table-missing-bytes", "no bytes key", ["B2"], "invalid_metadata", _SMALL_FILE,
          extra={"bytes": None})
bad_table("table-rows-negative", "rows: -1", ["B2", "Y1"], "invalid_metadata", _SMALL_FILE,
          extra={"rows": "-1"})
bad_table("table-bytes-quoted", "bytes: a quoted string", ["B2"], "invalid_metadata",
          _SMALL_FILE, extra={"bytes": f"'{len(_SMALL_FILE)}'"})
bad_table("table-columns-not-strings", "a column name that is an integer", ["B2"],
          "invalid_metadata", _SMALL_FILE, extra={"columns": ["x", "3"]})
bad_table("table-types-not-sequence", "types: a string", ["B2"], "invalid_metadata",
          _SMALL_FILE, extra={"types": "int64"})
bad_table("table-types-length", "two columns, one type", ["B2"], "invalid_metadata",
          _SMALL_FILE, extra={"types": ["int64"]})
bad_table("table-version-2-0", "a 2.0 table", ["Y2"], "unsupported_version", _SMALL_FILE,
          version=(2, 0))

# [G1]: types outside the grammar.
bad_table("table-type-numpy-spelling", "types: float64 (numpy's spelling, not Arrow's double)",
          ["G1"], "unknown_dtype", arrow_file(pa.table({"x": pa.array([1.5])})),
          types=["float64"])
bad_table("table-type-spacing", "timestamp[us,tz=UTC]: pyarrow writes a space after the comma",
          ["G1"], "unknown_dtype",
          arrow_file(pa.table({"t": pa.array([0], pa.timestamp("us", tz="UTC"))})),
          types=["timestamp[us,tz=UTC]"])
bad_table("table-type-map", "a map column (a type outside the grammar)", ["G1"], "unknown_dtype",
          arrow_file(pa.table({"m": pa.array([[("a", 1)]], pa.map_(pa.string(), pa.int32()))})))
bad_table("table-type-decimal-precision", "decimal128(39, 2): precision above 38", ["G1"],
          "unknown_dtype", arrow_file(pa.table({"x": pa.array([1], pa.int64())})),
          types=["decimal128(39, 2)"])

# [B3]: the .arrow file.
bad_table("table-missing-arrow", "t.yaml without t.arrow", ["B3"], "missing_file", _SMALL_FILE,
          drop_arrow=True)
bad_table("table-arrow-symlink", "t.arrow is a symbolic link", ["B3", "N7"], "missing_file",
          _SMALL_FILE, drop_arrow=True, extra_files={"bytes.bin": _SMALL_FILE},
          symlinks={"t.arrow": "bytes.bin"})
bad_table("table-bytes-mismatch", "bytes is one more than the file's length", ["B3"],
          "size_mismatch", _SMALL_FILE, nbytes=len(_SMALL_FILE) + 1)
bad_table("table-truncated-bytes", "the file lost its last 64 bytes, bytes is the original size",
          ["B3"], "size_mismatch", _SMALL_FILE[:-64], describe=_SMALL_FILE,
          nbytes=len(_SMALL_FILE))
bad_table("table-mixed-kinds-array", "t.array beside a table: a name has files of one kind",
          ["B1"], "mixed_kinds", _SMALL_FILE, extra_files={"t.array": b"\x01\x02\x03"})
bad_table("table-mixed-kinds-indptr", "t.indptr beside a table", ["B1"], "mixed_kinds",
          _SMALL_FILE, extra_files={"t.indptr": b"\x00" * 8})

# [B4]: the file frame.
bad_table("table-truncated", "the file lost its last 64 bytes and bytes says so: no footer",
          ["B4"], "invalid_arrow", _SMALL_FILE[:-64], describe=_SMALL_FILE,
          nbytes=len(_SMALL_FILE) - 64)
bad_table("table-magic-start", "ARROW2 at the start", ["B4"], "invalid_arrow",
          b"ARROW2" + _SMALL_FILE[6:], describe=_SMALL_FILE)
bad_table("table-magic-end", "the trailing magic is ARROW2", ["B4"], "invalid_arrow",
          _SMALL_FILE[:-6] + b"ARROW2", describe=_SMALL_FILE)
bad_table("table-empty-file", "an empty .arrow file, bytes: 0", ["B4"], "invalid_arrow", b"",
          describe=_SMALL_FILE, nbytes=0)
_stream = pa.BufferOutputStream()
with pa.ipc.new_stream(_stream, _SMALL.schema) as _w:
    _w.write_table(_SMALL)
bad_table("table-stream-format", "an Arrow IPC stream, not a file (no magic, no footer)", ["B4"],
          "invalid_arrow", _stream.getvalue().to_pybytes(), describe=_SMALL_FILE)
_V4 = arrow_file(_SMALL, options=pa.ipc.IpcWriteOptions(metadata_version=pa.ipc.MetadataVersion.V4))
bad_table("table-metadata-v4", "metadata version V4 (V5 required)", ["B4"], "invalid_arrow", _V4)
_footer_len = bytearray(_SMALL_FILE)
struct.pack_into("<i", _footer_len, len(_footer_len) - 10, len(_SMALL_FILE))
bad_table("table-footer-length", "the footer length points before the start of the file",
          ["B4"], "invalid_arrow", bytes(_footer_len), describe=_SMALL_FILE)

# [B5]: blocks, messages, compression, buffers.
for _codec in ("lz4", "zstd"):
    _c = arrow_file(_SMALL, options=pa.ipc.IpcWriteOptions(compression=_codec))
    bad_table(f"table-compressed-{_codec}", f"buffers compressed with {_codec.upper()} "
              "(a valid Arrow file that cannot be mapped)", ["B5"], "compressed_arrow", _c)


def _patched(data: bytes, edit) -> bytes:
    b = bytearray(data)
    edit(b)
    return bytes(b)


def _first_buffer(b, min_length=1, batch=0):
    """The first buffer of record batch `batch` with at least `min_length` bytes."""
    return next(x for x in _buffers(b, _blocks(b, "batches")[batch]) if x[2] >= min_length)


def _buffer_offset_out(b):
    p, _, _ = _first_buffer(b)
    struct.pack_into("<q", b, p, _blocks(b, "batches")[0][3])  # offset = bodyLength


def _buffer_length_out(b):
    p, off, _ = _first_buffer(b)
    struct.pack_into("<q", b, p + 8, _blocks(b, "batches")[0][3] - off + 8)


def _buffer_misaligned(b):
    body = _blocks(b, "batches")[0][3]
    p, off, length = next(x for x in _buffers(b, _blocks(b, "batches")[0])
                          if x[2] and x[1] + 4 + x[2] <= body)
    struct.pack_into("<q", b, p, off + 4)


def _block_out(b):
    p = _blocks(b, "batches")[0][0]
    struct.pack_into("<q", b, p, len(b) + 64)


def _offsets_out(b):
    # The string column `s` of _SMALL: buffers 0-1 are x's (validity, values), 2-4 are s's
    # (validity, offsets, data). Its last offset points past the data buffer.
    block = _blocks(b, "batches")[0]
    _, body_start = _batch(b, block)
    _, off, _ = _buffers(b, block)[3]
    struct.pack_into("<i", b, body_start + off + 4 * 3, 1 << 20)


def _replacement(b):
    # The second dictionary batch (a delta) made a replacement: isDelta (field 2) set to false.
    block = _blocks(b, "dictionaries")[1]
    off = block[1]
    message = _Table(b, off + 8 + _u32(b, off + 8))
    p = message.table(2).field(2)
    assert b[p] == 1
    b[p] = 0


def _length_negative(b):
    # The record batch's `length` (field 0 of its RecordBatch table; 3, so present) made -3.
    header, _ = _batch(b, _blocks(b, "batches")[0])
    struct.pack_into("<q", b, header.field(0), -3)


bad_table("table-buffer-offset-out-of-range", "a buffer starts at the end of its body",
          ["B5"], "invalid_arrow", _patched(_SMALL_FILE, _buffer_offset_out),
          describe=_SMALL_FILE)
bad_table("table-buffer-length-out-of-range", "a buffer ends 8 bytes past its body", ["B5"],
          "invalid_arrow", _patched(_SMALL_FILE, _buffer_length_out), describe=_SMALL_FILE)
bad_table("table-buffer-misaligned", "a buffer offset that is not a multiple of 8", ["B5"],
          "invalid_arrow", _patched(_SMALL_FILE, _buffer_misaligned), describe=_SMALL_FILE)
bad_table("table-batch-length-negative", "a record batch whose length is -3 (arrow-rs reads "
          "it as a huge row count)", ["B5"], "invalid_arrow",
          _patched(_SMALL_FILE, _length_negative), describe=_SMALL_FILE)
bad_table("table-block-out-of-range", "the footer's record batch block lies past the end of "
          "the file", ["B5"], "invalid_arrow", _patched(_SMALL_FILE, _block_out),
          describe=_SMALL_FILE)

# [B6]: dictionaries.
_D1 = pa.table({"c": pa.array(["a", "b"]).dictionary_encode()})
_D2 = pa.table({"c": pa.array(["a", "b", "c"]).dictionary_encode()})
_DELTA = arrow_file(_D1.to_batches() + _D2.to_batches(), _D1.schema,
                    options=pa.ipc.IpcWriteOptions(emit_dictionary_deltas=True))
bad_table("table-dictionary-delta", "a delta dictionary batch (pyarrow's emit_dictionary_deltas)",
          ["B6"], "invalid_arrow", _DELTA)
bad_table("table-dictionary-replacement", "two dictionary batches for one id, neither a delta",
          ["B6"], "invalid_arrow", _patched(_DELTA, _replacement), describe=_DELTA)

# [B7]: the YAML against the IPC schema and row count.
bad_table("table-mismatch-names", "a column name differs", ["B7"], "table_mismatch",
          _SMALL_FILE, columns=["x", "S"])
bad_table("table-mismatch-order", "the columns in another order", ["B7"], "table_mismatch",
          _SMALL_FILE, columns=["s", "x"], types=["string", "int64"])
bad_table("table-mismatch-count", "one column fewer in the YAML", ["B7"], "table_mismatch",
          _SMALL_FILE, columns=["x"], types=["int64"])
bad_table("table-mismatch-type", "int32 in the YAML, int64 in the file", ["B7"],
          "table_mismatch", _SMALL_FILE, types=["int32", "string"])
bad_table("table-mismatch-time-zone", "timestamp[us] in the YAML, timestamp[us, tz=UTC] in "
          "the file", ["B7"], "table_mismatch",
          arrow_file(pa.table({"t": pa.array([0], pa.timestamp("us", tz="UTC"))})),
          types=["timestamp[us]"])
bad_table("table-mismatch-nullability", "list<item: int32> in the YAML, a not-null child in "
          "the file", ["B7", "G1"], "table_mismatch",
          arrow_file(pa.table({"l": pa.array([[1]], pa.list_(pa.field("item", pa.int32(),
                                                                       nullable=False)))})),
          types=["list<item: int32>"])
bad_table("table-mismatch-rows", "rows: 4, the batches hold 3", ["B7"], "table_mismatch",
          _SMALL_FILE, rows=4)

# [B8]: the data.
bad_table("table-offsets-out-of-range", "a string offset past the end of its data buffer",
          ["B8"], "invalid_arrow", _patched(_SMALL_FILE, _offsets_out), describe=_SMALL_FILE)
_bad_index = pa.table({"c": pa.DictionaryArray.from_arrays(pa.array([0, 1], pa.int8()),
                                                           pa.array(["a", "b"]))})
_bad_index_file = bytearray(arrow_file(_bad_index))
_blk = _blocks(_bad_index_file, "batches")[0]
_, _body = _batch(_bad_index_file, _blk)
_, _off, _ = _buffers(_bad_index_file, _blk)[1]
_bad_index_file[_body + _off + 1] = 7  # index 7 into a dictionary of 2
bad_table("table-dictionary-index-out-of-range", "a dictionary index past the dictionary's end",
          ["B8"], "invalid_arrow", bytes(_bad_index_file), describe=arrow_file(_bad_index))

# [E2]: the check order of tables.
bad_table("order-table-size-before-content", "bytes wrong and bad magic: the size is checked "
          "first", ["E2"], "size_mismatch", b"ARROW2" + _SMALL_FILE[6:], describe=_SMALL_FILE,
          nbytes=len(_SMALL_FILE) + 8)
bad_table("order-table-mixed-kinds-before-arrow", "t.array beside and t.arrow missing: the other "
          "kind's files are checked first", ["E2"], "mixed_kinds", _SMALL_FILE, drop_arrow=True,
          extra_files={"t.array": b"\x01"})
bad_table("order-table-compression-before-mismatch", "compressed and a column name wrong: the "
          "messages are checked before the YAML agreement", ["E2"], "compressed_arrow",
          arrow_file(_SMALL, options=pa.ipc.IpcWriteOptions(compression="zstd")),
          columns=["x", "S"])
bad_table("order-table-mismatch-before-data", "a column name wrong and an offset out of range: "
          "the agreement is checked before the data", ["E2"], "table_mismatch",
          _patched(_SMALL_FILE, _offsets_out), describe=_SMALL_FILE, columns=["x", "S"])
bad_table("order-table-type-before-files", "an unknown type and no .arrow file: the metadata is "
          "checked first", ["E2"], "unknown_dtype", _SMALL_FILE, drop_arrow=True,
          types=["int64", "utf8"])
bad_name("name-dir-ends-arrow", "directory component ending in .arrow", ["N6"], "a.arrow/x")
daf_file(
    "daf-file-item-beside-arrow",
    "a scalar t.yaml with t.arrow beside it: a table's broken metadata, not a daf item",
    "t.yaml",
    {"t.yaml": "5\n...\n", "t.arrow": _SMALL_FILE},
    None,
)


# ============================================================================================
# Writing.


def expected_text(obj: dict) -> str:
    """expected.json: one top-level key per line, each value on one line."""
    lines = [f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in obj.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def write_vectors(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for entry in sorted(out.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
    for vid, v in sorted(VECTORS.items()):
        vdir = out / vid
        vdir.mkdir()
        for rel, data in sorted(v.files.items()):
            p = vdir / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        for rel, target in sorted(v.symlinks.items()):
            p = vdir / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, p)
        text = expected_text(v.expected_json())
        (vdir / "expected.json").write_text(text, encoding="utf-8")


README_BEGIN = "<!-- BEGIN GENERATED INDEX (generate.py) -->\n"
README_END = "<!-- END GENERATED INDEX -->\n"


def readme_index() -> str:
    rows = ["| vector | expect | rules | what |", "|---|---|---|---|"]
    for vid, v in sorted(VECTORS.items()):
        r = v.result
        expect = r["expect"] if r["expect"] == "ok" else r["error_class"]
        if v.check == "daf_file":
            expect = f"daf file: {r['daf_file']}" if r["daf_file"] else "not daf's"
        if r.get("ok_allowed"):
            expect += " (or ok)"
        flag = " (verify)" if v.verify else ""
        rows.append(
            f"| `{vid}` | {expect}{flag} | {', '.join(v.rules)} | "
            f"{v.description.replace('|', '/')} |"
        )
    by_rule: dict[str, list[str]] = {}
    for vid, v in sorted(VECTORS.items()):
        for r in v.rules:
            by_rule.setdefault(r, []).append(vid)
    key = lambda r: (r[0], int(r[1:]))  # noqa: E731
    rules = ["| rule | vectors |", "|---|---|"]
    rules += [
        f"| [{r}] | {', '.join(f'`{x}`' for x in by_rule[r])} |" for r in sorted(by_rule, key=key)
    ]
    return (
        README_BEGIN
        + f"{len(VECTORS)} vectors.\n\n"
        + "\n".join(rows)
        + "\n\nBy rule:\n\n"
        + "\n".join(rules)
        + "\n"
        + README_END
    )


def update_readme(path: Path, check: bool) -> bool:
    text = path.read_text(encoding="utf-8")
    start, end = text.index(README_BEGIN), text.index(README_END) + len(README_END)
    new = text[:start] + readme_index() + text[end:]
    if check:
        return new == text
    path.write_text(new, encoding="utf-8")
    return True


def same_tree(a: Path, b: Path) -> list[str]:
    """Differences between two vector trees (files, bytes, symlink targets)."""
    diffs = []

    def entries(root: Path) -> dict[str, tuple]:
        out = {}
        for dirpath, dirnames, filenames in os.walk(root):
            for n in dirnames + filenames:
                p = Path(dirpath) / n
                rel = str(p.relative_to(root))
                if p.is_symlink():
                    out[rel] = ("link", os.readlink(p))
                elif p.is_dir():
                    out[rel] = ("dir",)
                else:
                    out[rel] = ("file", p)
            dirnames[:] = [d for d in dirnames if not (Path(dirpath) / d).is_symlink()]
        return out

    def vector_entries(root: Path) -> dict[str, tuple]:  # not README.md, generate.py, caches
        return {
            k: v
            for k, v in entries(root).items()
            if "/" in k and not k.startswith("__pycache__")
        }

    ea, eb = vector_entries(a), vector_entries(b)
    for k in sorted(set(ea) | set(eb)):
        x, y = ea.get(k), eb.get(k)
        if x is None or y is None:
            diffs.append(f"{k}: only in {'generated' if y is None else 'committed'}")
        elif x[0] != y[0]:
            diffs.append(f"{k}: {x[0]} vs {y[0]}")
        elif x[0] == "link" and x[1] != y[1]:
            diffs.append(f"{k}: link {x[1]} vs {y[1]}")
        elif x[0] == "file" and not filecmp.cmp(x[1], y[1], shallow=False):
            diffs.append(f"{k}: contents differ")
    return diffs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--out", type=Path, help="write the vectors here instead of next to this script"
    )
    ap.add_argument(
        "--check",
        action="store_true",
        help="compare the committed vectors with a fresh generation; exit 1 on a difference",
    )
    args = ap.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            write_vectors(Path(tmp))
            diffs = same_tree(Path(tmp), HERE)
        if not update_readme(HERE / "README.md", check=True):
            diffs.append("README.md: generated index is stale")
        for d in diffs:
            print(d, file=sys.stderr)
        if diffs:
            print("vectors are stale: run python3 format-spec/vectors/generate.py", file=sys.stderr)
            return 1
        print(f"{len(VECTORS)} vectors up to date")
        return 0
    out = args.out or HERE
    write_vectors(out)
    if args.out is None:
        update_readme(HERE / "README.md", check=False)
    print(f"wrote {len(VECTORS)} vectors to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
