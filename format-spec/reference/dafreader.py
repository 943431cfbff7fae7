"""dafreader: a reader of dafstore / daf array files, written from format-spec/SPEC.md alone.

Dependencies: numpy and PyYAML, nothing else (no dafstore bindings, no scipy).

    import dafreader
    a = dafreader.read_array("/dev/shm/cells", "cells/umis", verify=False)
    if a.kind == "dense":
        a.array              # numpy array: a read-only np.memmap, zero-copy ([D3], [D4])
    else:
        a.data, a.indices, a.indptr, a.shape, a.layout   # CSR ("rows") or CSC ("columns")

Every refusal is a `FormatError` whose `.error_class` is one of `ERROR_CLASSES` (the classes of
the conformance vectors in format-spec/vectors/, the same as the Rust engine's
`InspectError::class()`) and whose `.rule` is the SPEC tag it enforces.

What it does, by SPEC rule:

- names [N1]-[N6] and [N8] are checked before any file is touched; the array's directory is
  reached component by component with `O_NOFOLLOW | O_DIRECTORY` relative to the previous one, so
  no symbolic link is followed anywhere on the path ([N7]) and a directory holding `.dafstore`
  (another container) is refused ([C4]); files are opened relative to that directory with
  `O_NOFOLLOW | O_NONBLOCK` and must be regular files (a FIFO is refused, never waited on) ([N9]);
- the metadata file is parsed strictly [Y1]-[Y9]: at most 64 KiB, UTF-8, a document of the YAML
  subset of SPEC 5.1.1 (checked as SPEC says a reader on a general YAML library conforms: the
  text, then PyYAML's node tree, never PyYAML's own YAML 1.1 resolvers; `parse_subset`) whose
  root is a block mapping; duplicate keys, anchors, aliases, tags, directives, flow mappings and
  every plain scalar that YAML 1.1 and 1.2 read differently are refused; sizes are decimal
  integers from 0 to 2^64 - 1; unknown keys are ignored; major version 1 only; checks in the
  order of SPEC section 11;
- file lengths are checked before mapping [D3] [S3]; empty files are not mapped [D4];
- sparse invariants [S4] [S5] are validated once, bool bytes are checked [T2];
- with `verify=True`, each file's CRC-32C is computed (pure Python: about 10 MB/s) and
  compared with the recorded `crc32c` [K1];
- the consistent-snapshot protocol [R2]: open the `.yaml` (O_NOFOLLOW) and keep it open, fstat
  it, open and size-check every data file, lstat the `.yaml` path again, and start over if it
  changed (also before reporting a missing or wrong-sized data file); at most `MAX_ATTEMPTS`
  attempts, then the class `busy`. In a container, an absent `.yaml` is looked at once more
  under the shared lock stripe of the name, which a publishing writer holds exclusively ([W3]
  steps 2-4). The maps stay valid after the files are replaced or removed;
- `read_container_version` checks `.dafstore/container.yaml` ([C2]);
- `daf_own_file` tells daf's own files (`__daf__.yaml`, 0-d items, `.csv`) from arrays ([A1]).

Legacy `<name>.sparse` files (SPEC 5.5, a MAY) are not read.

Reference counting without bindings ([R4], [P7]): a file of an array may be deleted once nobody
holds the array. A Python process takes part by running under `dafctl hold`, which takes the
references, prints `held NAME...`, runs the command, and releases them when it exits:

    dafctl hold /dev/shm/cells cells/umis cells/genes -- python3 analysis.py

or, from inside the script, by re-executing itself under `dafctl hold` (see `run_held`):

    import dafreader
    dafreader.run_held("/dev/shm/cells", ["cells/umis"])   # returns once held
    umis = dafreader.read_array("/dev/shm/cells", "cells/umis")

While held, an array is not removed (a remove waits for the last holder), so the script can open
it at any time. Maps stay valid even after a removal: Linux keeps a mapped file's inode alive.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import stat
import struct
import sys
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np
import yaml

__all__ = [
    "ERROR_CLASSES",
    "DTYPES",
    "INDEX_DTYPES",
    "FormatError",
    "DenseArray",
    "SparseArray",
    "Table",
    "read_array",
    "read_container_version",
    "parse_metadata",
    "check_name",
    "crc32c",
    "hold_command",
    "run_held",
    "reference_key",
    "session_references",
]

SUPPORTED_MAJOR = 1
MAX_YAML_BYTES = 64 * 1024
U64_MAX = 2**64 - 1

ERROR_CLASSES = (
    "invalid_name",  # [N1]-[N6]
    "missing",  # [R1] no <name>.yaml
    "unsupported_version",  # [Y2] major version other than 1
    "unknown_dtype",  # [T1]
    "shape_overflow",  # [D2] a byte size that does not fit in 64 bits
    "invalid_metadata",  # [Y1]-[Y5], [D1], [S1], [S2], [T3], [K1] value types
    "missing_file",  # [D3]/[S3]/[N7] data file absent, not a regular file, or outside
    "size_mismatch",  # [D3]/[S3]
    "sparse_invariant",  # [S4]/[S5]
    "invalid_bool",  # [T2]
    "checksum_mismatch",  # [K1]
    "mixed_kinds",  # [B1] files of another kind beside a table
    "invalid_arrow",  # [B4]-[B6], [B8] the .arrow file breaks the IPC profile
    "compressed_arrow",  # [B5] compressed buffers
    "table_mismatch",  # [B7] the IPC schema or row count disagrees with the YAML
    "busy",  # [R2] replaced on every one of MAX_ATTEMPTS attempts
)

# SPEC section 4: numpy spelling -> little-endian numpy dtype of the stored bytes.
DTYPES = {
    "bool": np.dtype("u1"),  # viewed as np.bool_ once every byte is checked to be 0 or 1
    "int8": np.dtype("i1"),
    "int16": np.dtype("<i2"),
    "int32": np.dtype("<i4"),
    "int64": np.dtype("<i8"),
    "uint8": np.dtype("u1"),
    "uint16": np.dtype("<u2"),
    "uint32": np.dtype("<u4"),
    "uint64": np.dtype("<u8"),
    "float16": np.dtype("<f2"),
    "float32": np.dtype("<f4"),
    "float64": np.dtype("<f8"),
}
INDEX_DTYPES = ("int32", "int64", "uint32", "uint64")  # [T3]
_INDEX_MAX = {"int32": 2**31 - 1, "int64": 2**63 - 1, "uint32": 2**32 - 1, "uint64": 2**64 - 1}
_FILE_SUFFIXES = ("array", "yaml", "data", "indices", "indptr", "sparse", "arrow")  # [N6]


class FormatError(Exception):
    """Array files that SPEC.md says to refuse. `error_class` is one of `ERROR_CLASSES`."""

    def __init__(self, error_class: str, message: str, rule: str, path: Optional[str] = None):
        assert error_class in ERROR_CLASSES, error_class
        where = f"{path}: " if path else ""
        super().__init__(f"{where}{message} (SPEC [{rule}])")
        self.error_class = error_class
        self.rule = rule
        self.path = path


# ---------------------------------------------------------------------------------------------
# CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF.

_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data, crc: int = 0) -> int:
    """CRC-32C of `data` (bytes-like), continuing from `crc` (the CRC of the bytes before)."""
    table = _CRC_TABLE
    crc ^= 0xFFFFFFFF
    for b in memoryview(data).cast("B"):
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# ---------------------------------------------------------------------------------------------
# Names [N1]-[N6].


def is_forbidden_char(c: str) -> bool:
    """Whether `c` may not appear in a name ([N8]): C0 controls, DEL, C1 controls, U+061C,
    U+200E, U+200F, U+2028-U+202E, U+2066-U+2069."""
    o = ord(c)
    return (
        o <= 0x1F
        or 0x7F <= o <= 0x9F
        or o in (0x061C, 0x200E, 0x200F)
        or 0x2028 <= o <= 0x202E
        or 0x2066 <= o <= 0x2069
    )


def check_name(name: Union[str, bytes]) -> list[str]:
    """Validates an array name; returns its components."""

    def fail(why, rule):
        raise FormatError("invalid_name", f"invalid array name {name!r}: {why}", rule)

    if isinstance(name, (bytes, bytearray)):
        try:
            name = bytes(name).decode("utf-8")
        except UnicodeDecodeError:
            fail("not UTF-8", "N1")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        fail("not UTF-8", "N1")
    if name == "":
        fail("empty", "N2")
    if "\0" in name or "\\" in name:
        fail("contains NUL or a backslash", "N4")
    bad = [c for c in name if is_forbidden_char(c)]
    if bad:
        fail(f"contains the control or bidi character U+{ord(bad[0]):04X}", "N8")
    parts = name.split("/")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "":
            fail("empty component (leading, trailing or doubled '/')", "N2")
        if part.startswith("."):
            fail(f"component {part!r} is '.', '..' or starts with '.' (reserved)", "N3")
        limit = 247 if last else 255
        if len(part.encode("utf-8")) > limit:
            fail(f"component longer than {limit} bytes", "N5")
        if not last and any(part.endswith("." + s) for s in _FILE_SUFFIXES):
            fail(f"directory component {part!r} ends in an array file suffix", "N6")
    return parts


# ---------------------------------------------------------------------------------------------
# Metadata [Y1]-[Y5], [D1], [D2], [S1], [S2], [T1], [T3], [K1].

# The YAML subset of SPEC 5.1.1 ([Y6]-[Y9]), checked the way SPEC says a reader built on a general
# YAML library conforms: characters and marker lines on the text, then PyYAML's node tree
# (composed, never constructed with PyYAML's own YAML 1.1 resolvers) walked node by node.

MAX_DEPTH = 16  # [Y8]
_FORBIDDEN_CHAR = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]")
_PLAIN_INT = re.compile(r"-?(0|[1-9][0-9]*)")
_PLAIN_FLOAT = re.compile(r"-?(0|[1-9][0-9]*)\.[0-9]+")
_PLAIN_STR = re.compile(r"[A-Za-z_][A-Za-z0-9_.+/-]*")
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}
_DQ_ESCAPE = re.compile(r'\\(u[0-9A-Fa-f]{4}|[\\"nt])')
_FLOAT = object()  # a decimal fraction: its value is never needed


class _SubsetError(Exception):
    pass


def _check_lines(text: str) -> None:
    """[Y6]: allowed characters, no directive, `---` only first and `...` only last."""
    m = _FORBIDDEN_CHAR.search(text)
    if m:
        line = text.count("\n", 0, m.start()) + 1
        raise _SubsetError(f"line {line}: character U+{ord(m.group()):04X} is not allowed")
    started = ended = False
    for no, raw in enumerate(text.split("\n"), 1):
        line = raw.rstrip(" ")
        body = line.lstrip(" ")
        if not body or body.startswith("#"):
            continue
        if line.startswith("%"):
            raise _SubsetError(f"line {no}: a directive")
        if ended:
            raise _SubsetError(f"line {no}: content after `...`")
        if line.startswith("---"):
            if line != "---" or started:
                raise _SubsetError(f"line {no}: `---` only alone on the first line of content")
            started = True
            continue
        if line.startswith("..."):
            if line != "...":
                raise _SubsetError(f"line {no}: `...` must be alone on its line")
            ended = True
            continue
        started = True


class _Composer(yaml.SafeLoader):
    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _SubsetError(f"line {event.start_mark.line + 1}: an anchor or alias")
        if getattr(event, "tag", None) is not None:
            raise _SubsetError(f"line {event.start_mark.line + 1}: a tag")
        return super().compose_node(parent, index)


def _scalar(node, text: str, *, key: bool = False):
    """The value of a scalar node of the subset ([Y7])."""
    line = node.start_mark.line + 1
    if node.start_mark.line != node.end_mark.line:
        raise _SubsetError(f"line {line}: a scalar spanning lines")
    if node.style in ("'", '"'):
        if node.style == '"':
            raw = text[node.start_mark.index + 1 : node.end_mark.index - 1]
            rest = _DQ_ESCAPE.sub("", raw)
            if "\\" in rest:
                raise _SubsetError(f"line {line}: an escape outside \\\\ \\\" \\n \\t \\uXXXX")
            if any(0xD800 <= ord(c) <= 0xDFFF for c in node.value):
                raise _SubsetError(f"line {line}: a surrogate escape")
        return node.value
    if node.style is not None:
        raise _SubsetError(f"line {line}: a block scalar")
    v = node.value
    if not key:
        if v == "" and node.start_mark.index == node.end_mark.index:
            return None  # `key:` with nothing after it
        if v in ("true", "false"):
            return v == "true"
        if v == "null":
            return None
        if _PLAIN_INT.fullmatch(v):
            return int(v, 10)
        if _PLAIN_FLOAT.fullmatch(v):
            return _FLOAT
    if _PLAIN_STR.fullmatch(v) and v.lower() not in _RESERVED:
        return v
    raise _SubsetError(f"line {line}: plain scalar {v!r} is outside the subset (quote it)")


def _line_prefix(text: str, mark) -> str:
    return text[mark.index - mark.column : mark.index]


def _check_line_end(text: str, mark) -> None:
    """After a value written on its line (a flow sequence, a quoted scalar), only spaces and a
    comment that a space separates from it ([Y7]); PyYAML also takes `]#c` as a comment."""
    end = text.find("\n", mark.index)
    rest = text[mark.index : len(text) if end < 0 else end]
    if not re.fullmatch(r"( +(#.*)?)?", rest):
        raise _SubsetError(f"line {mark.line + 1}: unexpected {rest!r} after a value")


def _walk(node, text: str, depth: int):
    line = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node, text)
    if depth > MAX_DEPTH:
        raise _SubsetError(f"line {line}: more than {MAX_DEPTH} nested collections")
    if isinstance(node, yaml.SequenceNode):
        items = []
        for item in node.value:
            if node.flow_style and not isinstance(item, yaml.ScalarNode):
                raise _SubsetError(f"line {line}: a collection inside a flow sequence")
            if node.flow_style and item.start_mark.line != node.start_mark.line:
                raise _SubsetError(f"line {line}: a flow sequence spanning lines")
            if not node.flow_style and (
                isinstance(item, yaml.ScalarNode) or item.flow_style
            ) and not re.fullmatch(r"( *- +)* *- +", _line_prefix(text, item.start_mark)):
                if not (isinstance(item, yaml.ScalarNode) and item.value == ""
                        and item.style is None):
                    raise _SubsetError(f"line {item.start_mark.line + 1}: an item value must "
                                       "be on the line of its `-`")
            if not node.flow_style and isinstance(item, yaml.ScalarNode) and item.style:
                _check_line_end(text, item.end_mark)
            items.append(_walk(item, text, depth + 1))
        if node.flow_style and node.end_mark.line != node.start_mark.line:
            raise _SubsetError(f"line {line}: a flow sequence spanning lines")
        if node.flow_style and re.search(r",\s*\]$", text[node.start_mark.index:node.end_mark.index]):
            raise _SubsetError(f"line {line}: a trailing comma")
        if node.flow_style:
            _check_line_end(text, node.end_mark)
        return items
    if node.flow_style and node.value:
        raise _SubsetError(f"line {line}: a flow mapping (only {{}} is in the subset)")
    out = {}
    for key_node, value_node in node.value:
        kline = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode):
            raise _SubsetError(f"line {kline}: a key that is not a string")
        if not re.fullmatch(r"( *- +)* *", _line_prefix(text, key_node.start_mark)):
            raise _SubsetError(f"line {kline}: a key must start its line (or follow `- `)")
        if text[key_node.end_mark.index : key_node.end_mark.index + 1] != ":":
            raise _SubsetError(f"line {kline}: `:` must follow the key immediately")
        key = _scalar(key_node, text, key=True)
        if key in out:
            raise _SubsetError(f"line {kline}: duplicate key {key!r}")
        empty = (isinstance(value_node, yaml.ScalarNode) and value_node.style is None
                 and value_node.value == "")
        if not empty and (isinstance(value_node, yaml.ScalarNode) or value_node.flow_style):
            if value_node.start_mark.line != key_node.start_mark.line:
                raise _SubsetError(f"line {kline}: a value must be on the line of its key")
        if isinstance(value_node, yaml.ScalarNode) and value_node.style:
            _check_line_end(text, value_node.end_mark)
        out[key] = _walk(value_node, text, depth + 1)
    return out


def parse_subset(text: str):
    """Parses a document of the YAML subset of SPEC 5.1.1; raises _SubsetError outside it."""
    _check_lines(text)
    loader = _Composer(text)
    try:
        root = loader.get_single_node()
    finally:
        loader.dispose()
    if root is None:
        raise _SubsetError("the document is empty: the root must be a mapping")
    if not isinstance(root, yaml.MappingNode) or root.flow_style:
        raise _SubsetError("the root must be a block mapping")
    if root.start_mark.column != 0:
        raise _SubsetError("the root mapping must start in column 1")
    return _walk(root, text, 1)


@dataclass
class Metadata:
    """A parsed, validated metadata file."""

    kind: str  # "dense", "sparse" or "table"
    version: tuple[int, int]
    shape: tuple[int, ...]
    dtype: Optional[str]  # dense: dtype; sparse: data_dtype; table: None
    indices_dtype: Optional[str] = None
    indptr_dtype: Optional[str] = None
    nnz: Optional[int] = None
    layout: Optional[str] = None
    crc32c: dict = field(default_factory=dict)
    rows: Optional[int] = None  # table: [B2]
    columns: Optional[list] = None
    types: Optional[list] = None
    nbytes: Optional[int] = None

    def files(self) -> list[tuple[str, str, int]]:
        """(suffix, dtype, element count) of each data file, in SPEC order (a table's `.arrow`
        file: dtype "uint8", its `bytes`)."""
        if self.kind == "table":
            return [("arrow", "uint8", self.nbytes)]
        if self.kind == "dense":
            return [("array", self.dtype, math.prod(self.shape))]
        major = self.shape[0] if self.layout == "rows" else self.shape[1]
        return [
            ("data", self.dtype, self.nnz),
            ("indices", self.indices_dtype, self.nnz),
            ("indptr", self.indptr_dtype, major + 1),
        ]


def _is_size(v) -> bool:
    return type(v) is int and 0 <= v <= U64_MAX  # not bool (a subclass of int), not negative


def parse_metadata(data: bytes, path: str = "<metadata>") -> Metadata:
    """Parses and validates the bytes of a `<name>.yaml` file."""

    def bad(why, rule="Y1"):
        return FormatError("invalid_metadata", f"invalid metadata: {why}", rule, path)

    if len(data) > MAX_YAML_BYTES:
        raise bad(f"more than {MAX_YAML_BYTES} bytes", "Y4")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise bad(f"not UTF-8: {e}") from None
    try:
        doc = parse_subset(text)
    except (_SubsetError, yaml.YAMLError, RecursionError) as e:
        raise bad(" ".join(str(e).split()) + " (SPEC 5.1.1)", "Y6") from None

    # The check order of SPEC 5.6: version, kind, key types, dtype spellings, index dtypes,
    # byte sizes.
    version = doc.get("version")
    if "version" not in doc:
        raise bad("missing key `version`", "Y2")
    if not (isinstance(version, list) and len(version) == 2 and all(map(_is_size, version))):
        raise bad(
            f"version must be [major, minor], two integers from 0 to 2^64 - 1; found {version!r}",
            "Y2",
        )
    if version[0] != SUPPORTED_MAJOR:
        raise FormatError(
            "unsupported_version",
            f"format version {version[0]}.{version[1]}; this reader reads major version "
            f"{SUPPORTED_MAJOR}",
            "Y2",
            path,
        )

    has_dense, has_sparse = "dtype" in doc, "data_dtype" in doc
    is_table = "kind" in doc
    if is_table:  # [B1]: `kind` is `table`, and a table has neither dtype nor data_dtype
        if doc["kind"] != "table":
            raise bad(f"kind is {doc['kind']!r}; the only kind is table", "B1")
        if has_dense or has_sparse:
            raise bad("kind: table with `dtype` or `data_dtype`", "B1")
    elif has_dense == has_sparse:
        raise bad("needs exactly one of `dtype` (dense) and `data_dtype` (sparse), or "
                  "`kind: table`", "Y5")

    crc = doc.get("crc32c", {})
    if not isinstance(crc, dict):
        raise bad(f"crc32c must be a mapping of file suffix to CRC-32C, found {crc!r}", "K1")
    for suffix, value in crc.items():
        if not _is_size(value) or value > 0xFFFFFFFF:
            raise bad(f"crc32c {suffix!r}: {value!r} is not an integer below 2^32", "K1")

    def string_of(key, rule):
        if key not in doc:
            raise bad(f"missing key `{key}`", rule)
        value = doc[key]
        if not isinstance(value, str):
            raise bad(f"{key} must be a string, found {value!r}", rule)
        return value

    def shape_of(rule):
        if "shape" not in doc:
            raise bad("missing key `shape`", rule)
        shape = doc["shape"]
        if not isinstance(shape, list):
            raise bad(f"shape must be a sequence, found {shape!r}", rule)
        for s in shape:
            if not _is_size(s):
                raise bad(f"every dimension must be an integer from 0 to 2^64 - 1, found {s!r}",
                          rule)
        return tuple(shape)

    def spelling(key, value):
        if value not in DTYPES:
            raise FormatError(
                "unknown_dtype",
                f"{key}: unknown dtype {value!r}; valid dtypes are {', '.join(DTYPES)}",
                "T1",
                path,
            )
        return value

    def fits(count, dtype):
        if count * DTYPES[dtype].itemsize > U64_MAX:
            raise FormatError(
                "shape_overflow",
                f"{count} elements of {dtype} do not fit in a 64-bit byte size",
                "D2",
                path,
            )

    if is_table:
        return _table_metadata(doc, tuple(version), crc, bad, path)

    if has_dense:
        dtype = string_of("dtype", "D1")
        shape = shape_of("D1")
        spelling("dtype", dtype)
        fits(math.prod(shape), dtype)  # exact arithmetic: an empty product is 1, a 0 makes 0
        own = {k: v for k, v in crc.items() if k == "array"}  # [K1]: other suffixes ignored
        return Metadata("dense", tuple(version), shape, dtype, crc32c=own)

    data_dtype = string_of("data_dtype", "S1")
    indices_dtype = string_of("indices_dtype", "S1")
    indptr_dtype = string_of("indptr_dtype", "S1")
    shape = shape_of("S1")
    if len(shape) != 2:
        raise bad(f"a sparse shape is [rows, columns], found {list(shape)}", "S1")
    if "nnz" not in doc:
        raise bad("missing key `nnz`", "S1")
    nnz = doc["nnz"]
    if not _is_size(nnz):
        raise bad(f"nnz must be an integer from 0 to 2^64 - 1, found {nnz!r}", "S1")
    layout = doc.get("layout", "rows")
    if layout not in ("rows", "columns"):
        raise bad(f"layout is {layout!r}, must be rows or columns", "S2")
    spelling("data_dtype", data_dtype)
    spelling("indices_dtype", indices_dtype)
    spelling("indptr_dtype", indptr_dtype)
    for key, value in (("indices_dtype", indices_dtype), ("indptr_dtype", indptr_dtype)):
        if value not in INDEX_DTYPES:
            raise bad(f"{key} is {value}; index dtypes are {', '.join(INDEX_DTYPES)}", "T3")
    own = {k: v for k, v in crc.items() if k in ("data", "indices", "indptr")}
    meta = Metadata(
        "sparse",
        tuple(version),
        shape,
        data_dtype,
        indices_dtype,
        indptr_dtype,
        nnz,
        layout,
        own,
    )
    for _, dtype, count in meta.files():
        fits(count, dtype)
    return meta


def _table_metadata(doc: dict, version, crc: dict, bad, path: str) -> Metadata:
    """[B2] key types (rows, columns, types, their lengths, bytes), then [G1] spellings."""
    for key in TABLE_KEYS:
        if key not in doc:
            raise bad(f"missing key `{key}`", "B2")
    rows = doc["rows"]
    if not _is_size(rows):
        raise bad(f"rows must be an integer from 0 to 2^64 - 1, found {rows!r}", "B2")
    for key in ("columns", "types"):
        value = doc[key]
        if not (isinstance(value, list) and all(isinstance(s, str) for s in value)):
            raise bad(f"{key} must be a sequence of strings, found {value!r}", "B2")
    columns, types = doc["columns"], doc["types"]
    if len(columns) != len(types):
        raise bad(f"{len(columns)} columns but {len(types)} types", "B2")
    nbytes = doc["bytes"]
    if not _is_size(nbytes):
        raise bad(f"bytes must be an integer from 0 to 2^64 - 1, found {nbytes!r}", "B2")
    for i, t in enumerate(types):
        try:
            parse_type(t)
        except _GrammarError as e:
            raise FormatError("unknown_dtype", f"types[{i}] {t!r} is not an Arrow type of the "
                              f"grammar: {e}", "G1", path) from None
    own = {k: v for k, v in crc.items() if k == "arrow"}
    return Metadata("table", version, (rows,), None, crc32c=own, rows=rows, columns=columns,
                    types=types, nbytes=nbytes)


def read_container_version(root) -> tuple[int, int]:
    """[C2]: the `[major, minor]` of `root/.dafstore/container.yaml`. Classes: `missing` (no
    such file: not a container), `missing_file` (not a regular file, or a symbolic link),
    `invalid_metadata` (outside the YAML subset, `format` not `dafstore`, bad `version`, in
    that order), `unsupported_version` (major version other than 1)."""
    path = os.path.join(os.fspath(root), ".dafstore", "container.yaml")
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        raise FormatError("missing", "no container version file: not a container", "C2",
                          path) from None
    except OSError as e:
        what = "is a symbolic link" if e.errno == errno.ELOOP else f"cannot open: {e.strerror}"
        raise FormatError("missing_file", what, "C2", path) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FormatError("missing_file", "not a regular file", "C2", path)
        data = os.pread(fd, MAX_YAML_BYTES + 1, 0)
    finally:
        os.close(fd)

    def bad(why):
        return FormatError("invalid_metadata", f"invalid container version file: {why}", "C2",
                           path)

    if len(data) > MAX_YAML_BYTES:
        raise bad(f"more than {MAX_YAML_BYTES} bytes")
    try:
        doc = parse_subset(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise bad(f"not UTF-8: {e}") from None
    except (_SubsetError, yaml.YAMLError, RecursionError) as e:
        raise bad(" ".join(str(e).split()) + " (SPEC 5.1.1)") from None
    if doc.get("format") != "dafstore":
        raise bad(f"format is {doc.get('format')!r}, expected 'dafstore'")
    version = doc.get("version")
    if not (isinstance(version, list) and len(version) == 2 and all(map(_is_size, version))):
        raise bad(f"version must be [major, minor], found {version!r}")
    if version[0] != 1:
        raise FormatError("unsupported_version",
                          f"container version {version[0]}.{version[1]}; this reader reads 1",
                          "C2", path)
    return (version[0], version[1])


# ---------------------------------------------------------------------------------------------
# daf's own files [A1].

_ITEM_INDICATORS = set("-?:,[]{}#&*!|>'\"%@`")
_ARRAY_FILE_SUFFIXES = ("array", "data", "sparse", "indices", "indptr", "arrow")


def _is_subset_scalar(line: str) -> bool:
    """Whether the whole of `line` is one scalar of [Y7] (quoted strings included)."""
    try:
        loader = _Composer(line)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
        if not isinstance(node, yaml.ScalarNode) or node.end_mark.index != len(line):
            return False
        _scalar(node, line)
    except (yaml.YAMLError, _SubsetError, RecursionError):
        return False
    return True


def _is_daf_item(text: str) -> bool:
    """[A1] 3: [Y6] holds and exactly one line besides ignored lines and the optional `---`
    first and `...` last; in column 1; a scalar of [Y7] or a plain text line."""
    try:
        _check_lines(text)
    except _SubsetError:
        return False
    lines = []
    for raw in text.split("\n"):
        line = raw.rstrip(" ")
        body = line.lstrip(" ")
        if body and not body.startswith("#"):
            lines.append(line)
    if lines and lines[0] == "---":
        lines = lines[1:]
    if lines and lines[-1] == "...":
        lines = lines[:-1]
    if len(lines) != 1 or lines[0].startswith(" "):
        return False
    line = lines[0]
    if _is_subset_scalar(line):
        return True
    return (line[0] not in _ITEM_INDICATORS and ": " not in line and " #" not in line
            and not line.endswith(":"))


def daf_own_file(root, rel: str) -> Optional[str]:
    """[A1]: whether the file `rel` (relative to the container `root`, suffix included) is one
    of daf's own files: "csv", "marker" (`__daf__.yaml`), "item" (a 0-d item holding one
    scalar), or None (not daf's own: an array's metadata, valid or not). A `.yaml` with an array
    file beside it is never daf's own. Files are opened as array files are ([N7], [N9])."""
    if rel.endswith(".csv"):
        return "csv"
    if not rel.endswith(".yaml"):
        return None
    try:
        parts = check_name(rel[: -len(".yaml")])
    except FormatError:
        return None
    root = os.fspath(root)
    path = os.path.join(root, rel)
    try:
        dir_fd = _open_dir(root, parts[:-1], path)
    except FormatError:
        return None
    leaf = parts[-1]
    try:
        for suffix in _ARRAY_FILE_SUFFIXES:
            try:
                os.stat(f"{leaf}.{suffix}", dir_fd=dir_fd, follow_symlinks=False)
                return None  # an array file beside it: an array's metadata
            except FileNotFoundError:
                continue
            except OSError:
                return None
        try:
            fd, _ = _open_file(dir_fd, f"{leaf}.yaml", path)
        except FormatError:
            return None
        try:
            data = os.pread(fd, MAX_YAML_BYTES + 1, 0)
        finally:
            os.close(fd)
    finally:
        os.close(dir_fd)
    if len(data) > MAX_YAML_BYTES:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if leaf == "__daf__":
        try:
            doc = parse_subset(text)
        except (_SubsetError, yaml.YAMLError, RecursionError):
            return None
        marker = "version" in doc and not {"dtype", "data_dtype", "kind"} & set(doc)
        return "marker" if marker else None
    return "item" if _is_daf_item(text) else None


# ---------------------------------------------------------------------------------------------
# Arrays.


@dataclass
class DenseArray:
    """A dense array. `array` is a read-only np.memmap (an empty ndarray for zero-size arrays).

    numpy cannot represent a zero-size shape whose non-zero dimensions multiply past its index
    range (e.g. [2^32, 2^32, 0]); such an array is valid ([D2]) and `array` then has shape (0,),
    while `shape` always holds the shape of the file."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    array: np.ndarray
    version: tuple[int, int]
    crc32c: dict  # recorded, by suffix
    computed_crc32c: Optional[dict] = None  # with verify=True
    kind: str = "dense"


@dataclass
class SparseArray:
    """A sparse array as CSR (layout "rows") or CSC ("columns") triplets of read-only arrays."""

    name: str
    data_dtype: str
    indices_dtype: str
    indptr_dtype: str
    shape: tuple[int, int]
    nnz: int
    layout: str
    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    version: tuple[int, int]
    crc32c: dict
    computed_crc32c: Optional[dict] = None
    kind: str = "sparse"

    def to_dense(self) -> np.ndarray:
        """A dense copy (sums duplicate entries, as scipy does)."""
        out = np.zeros(self.shape, dtype=self.data.dtype)
        for major in range(len(self.indptr) - 1):
            for k in range(int(self.indptr[major]), int(self.indptr[major + 1])):
                minor = int(self.indices[k])
                out[(major, minor) if self.layout == "rows" else (minor, major)] += self.data[k]
        return out


_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
MAX_ATTEMPTS = 100  # [R2]: then the class is `busy`
# For tests of [R2]: called as hook(attempt) after the data files are opened, before the re-stat.
_after_open_hook = None
# For tests of [R2]: called when <name>.yaml is absent in a container, before the reader takes
# the shared stripe lock to look again.
_absent_hook = None


def _open_file(dir_fd: int, filename: str, path: str, absent=("missing_file", "D3")):
    """Opens an array file without following a symbolic link; it must be a regular file ([N7]).
    `absent` is the (error class, rule) when the file does not exist."""
    try:
        fd = os.open(filename, _OPEN_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        raise FormatError(absent[0], "no such file", absent[1], path) from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise FormatError("missing_file", "is a symbolic link", "N7", path) from None
        raise FormatError("missing_file", f"cannot open: {e.strerror}", "D3", path) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise FormatError("missing_file", f"is a {_kind(st.st_mode)}, not a regular file", "N9", path)
    return fd, st


def _kind(mode: int) -> str:
    for test, what in (
        (stat.S_ISDIR, "directory"),
        (stat.S_ISFIFO, "FIFO (named pipe)"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISLNK, "symbolic link"),
    ):
        if test(mode):
            return what
    return "special file"


def _open_dir(root: str, parts: list[str], yaml_path: str) -> int:
    """Opens the directory of the array's files: each component relative to the previous one,
    never through a link ([N7]), never into a directory holding `.dafstore` ([C4])."""
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        raise FormatError("missing", "no such container", "R1", yaml_path) from None
    path = root
    for part in parts:
        path = os.path.join(path, part)
        try:
            sub = os.open(part, _DIR_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            os.close(fd)
            raise FormatError(
                "missing", "no metadata file: the array does not exist", "R1", yaml_path
            ) from None
        except OSError as e:
            try:
                st = os.stat(part, dir_fd=fd, follow_symlinks=False)
                what = _kind(st.st_mode)
            except OSError:
                what = e.strerror
            os.close(fd)
            rule = "N7" if what == "symbolic link" else "N9"
            raise FormatError("missing_file", f"directory component is a {what}", rule, path) from None
        os.close(fd)
        fd = sub
        try:
            os.stat(".dafstore", dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        os.close(fd)
        raise FormatError(
            "missing_file", "holds another container (.dafstore); containers never nest", "C4", path
        )
    return fd


def _map(fd: int, dtype: np.dtype, count: int, shape) -> np.ndarray:
    if count == 0:  # [D4]: never map an empty file
        try:
            return np.empty(shape, dtype=dtype)
        except ValueError:
            return np.empty((0,), dtype=dtype)
    with os.fdopen(os.dup(fd), "rb") as f:
        return np.memmap(f, dtype=dtype, mode="r", shape=shape)


def _file_crc(fd: int, chunk: int = 1 << 20) -> int:
    crc, offset = 0, 0
    while True:
        block = os.pread(fd, chunk, offset)
        if not block:
            return crc
        crc = crc32c(block, crc)
        offset += len(block)


def read_array(root, name: Union[str, bytes], verify: bool = False):
    """Reads array `name` of the container (or daf directory) `root`.

    Returns a `DenseArray` or `SparseArray`; raises `FormatError` for anything SPEC.md refuses.
    With `verify`, every data file's CRC-32C is computed and compared with the recorded one."""
    parts = check_name(name)
    name = "/".join(parts)
    root = os.fspath(root)
    dir_path = os.path.join(root, *parts[:-1])
    dir_fd = _open_dir(root, parts[:-1], os.path.join(dir_path, parts[-1] + ".yaml"))
    try:
        for _ in range(MAX_ATTEMPTS):
            try:
                result = _read_once(dir_fd, dir_path, parts[-1], name, verify)
            except FormatError as e:
                # [R2]: in a container, an absent <name>.yaml may be a publish between [W3]
                # steps 2 and 4: look once more under the shared stripe lock, which the writer
                # holds exclusively for steps 1-6.
                lock = _stripe_lock_path(root, name)
                if (e.error_class, e.rule) != ("missing", "R1") or lock is None:
                    raise
                if _absent_hook is not None:
                    _absent_hook()
                with _shared_flock(lock):
                    result = _read_once(dir_fd, dir_path, parts[-1], name, verify)
            if result is not None:
                return result
        raise FormatError(
            "busy",
            f"replaced by a writer on each of {MAX_ATTEMPTS} attempts to read it; try again later",
            "R2",
            os.path.join(dir_path, parts[-1] + ".yaml"),
        )
    finally:
        os.close(dir_fd)


def _stripe_lock_path(root: str, name: str) -> Optional[str]:
    """The lock stripe of `name` ([W6]) when `root` is a container that has it, else None."""
    path = os.path.join(root, ".dafstore", "locks", f"{crc32c(name.encode()) % 64:02d}.lock")
    return path if os.path.isfile(path) else None


class _shared_flock:
    """A shared flock(2) on `path` for the duration of a `with` block."""

    def __init__(self, path: str):
        self.path = path

    def __enter__(self):
        import fcntl

        self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        fcntl.flock(self.fd, fcntl.LOCK_SH)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)  # releases the lock


def _read_once(dir_fd, dir_path, last, name, verify):
    """One attempt of the [R2] protocol; None when the array was replaced meanwhile."""
    yaml_name = last + ".yaml"
    yaml_path = os.path.join(dir_path, yaml_name)
    # Step 1: open the metadata file and keep it open; an absent one means no array ([R1]).
    yfd, st_a = _open_file(dir_fd, yaml_name, yaml_path, absent=("missing", "R1"))
    fds = []
    try:
        data = os.pread(yfd, MAX_YAML_BYTES + 1, 0)
        meta = parse_metadata(data, yaml_path)

        def replaced() -> bool:  # step 3: the path still names the file we opened?
            try:
                st_b = os.stat(yaml_name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                return True
            return (st_b.st_dev, st_b.st_ino) != (st_a.st_dev, st_a.st_ino)

        if meta.kind == "table":  # [B1]: a name has files of one kind
            for suffix in _OTHER_KIND_SUFFIXES:
                try:
                    os.stat(f"{last}.{suffix}", dir_fd=dir_fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if replaced():
                    return None
                raise FormatError("mixed_kinds", f"{last}.{suffix} beside a table: a name has "
                                  "the files of one kind", "B1",
                                  os.path.join(dir_path, f"{last}.{suffix}"))
        files = []
        for suffix, dtype, count in meta.files():
            path = os.path.join(dir_path, f"{last}.{suffix}")
            try:
                fd, st = _open_file(dir_fd, f"{last}.{suffix}", path)
            except FormatError:
                if replaced():
                    return None
                raise
            fds.append(fd)
            expected = count * DTYPES[dtype].itemsize
            if st.st_size != expected:
                if replaced():
                    return None
                raise FormatError(
                    "size_mismatch",
                    f"file is {st.st_size} bytes, the metadata promises {expected}",
                    {"sparse": "S3", "dense": "D3", "table": "B3"}[meta.kind],
                    path,
                )
            files.append((suffix, dtype, count, fd, path))
        if _after_open_hook is not None:
            _after_open_hook()
        if replaced():
            return None

        if meta.kind == "table":
            fd, path = files[0][3], files[0][4]
            computed = None
            if verify:
                computed = {"arrow": _file_crc(fd)}
                recorded = meta.crc32c.get("arrow")
                if recorded is not None and recorded != computed["arrow"]:
                    raise FormatError("checksum_mismatch", f"CRC-32C is {computed['arrow']:08x}, "
                                      f"the metadata records {recorded:08x}: the file is corrupt",
                                      "K1", path)
            table, lengths, whole = _read_table(fd, path, meta)
            return Table(name, meta.rows, meta.columns, meta.types, meta.nbytes, lengths, table,
                         meta.version, meta.crc32c, computed, whole)
        arrays = {}
        for suffix, dtype, count, fd, _ in files:
            shape = meta.shape if meta.kind == "dense" else (count,)
            arrays[suffix] = _map(fd, DTYPES[dtype], count, shape)
        computed = None
        if verify:
            computed = {}
            for suffix, _, _, fd, path in files:
                computed[suffix] = _file_crc(fd)
                recorded = meta.crc32c.get(suffix)
                if recorded is not None and recorded != computed[suffix]:
                    raise FormatError(
                        "checksum_mismatch",
                        f"CRC-32C is {computed[suffix]:08x}, the metadata records {recorded:08x}: "
                        "the file is corrupt",
                        "K1",
                        path,
                    )
    finally:
        for fd in fds:
            os.close(fd)
        os.close(yfd)

    if meta.kind == "dense":
        array = (
            _checked_bool(arrays["array"], os.path.join(dir_path, last + ".array"))
            if meta.dtype == "bool"
            else arrays["array"]
        )
        return DenseArray(name, meta.dtype, meta.shape, array, meta.version, meta.crc32c, computed)
    _check_sparse(meta, arrays["indices"], arrays["indptr"], yaml_path)
    data = arrays["data"]
    if meta.dtype == "bool":
        data = _checked_bool(data, os.path.join(dir_path, last + ".data"))
    return SparseArray(
        name,
        meta.dtype,
        meta.indices_dtype,
        meta.indptr_dtype,
        meta.shape,
        meta.nnz,
        meta.layout,
        data,
        arrays["indices"],
        arrays["indptr"],
        meta.version,
        meta.crc32c,
        computed,
    )


def _checked_bool(raw: np.ndarray, path: str) -> np.ndarray:
    """[T2]: every byte 0 or 1, then viewed as np.bool_ (still zero-copy)."""
    if raw.size:
        bad = np.flatnonzero(raw.reshape(-1) > 1)
        if bad.size:
            at = int(bad[0])
            byte = int(raw.reshape(-1)[at])
            raise FormatError(
                "invalid_bool", f"bool element {at} is byte {byte}, must be 0 or 1", "T2", path
            )
    return raw.view(np.bool_)


def _check_sparse(meta: Metadata, indices: np.ndarray, indptr: np.ndarray, path: str) -> None:
    """[S4] and [S5], once, in O(nnz), so later indexing cannot go out of bounds ([S6])."""

    def fail(why, rule="S4"):
        raise FormatError("sparse_invariant", why, rule, path)

    rows, columns = meta.shape
    minor = columns if meta.layout == "rows" else rows
    if meta.nnz > _INDEX_MAX[meta.indptr_dtype]:
        fail(f"nnz {meta.nnz} does not fit {meta.indptr_dtype}", "S5")
    if minor > 0 and minor - 1 > _INDEX_MAX[meta.indices_dtype]:
        fail(f"minor dimension {minor} - 1 does not fit {meta.indices_dtype}", "S5")
    if int(indptr[0]) != 0:
        fail(f"indptr[0] is {int(indptr[0])}, must be 0")
    decreasing = np.flatnonzero(indptr[1:] < indptr[:-1])
    if decreasing.size:
        i = int(decreasing[0]) + 1
        fail(f"indptr decreases at {i}: {int(indptr[i - 1])} then {int(indptr[i])}")
    if int(indptr[-1]) != meta.nnz:
        fail(f"indptr ends at {int(indptr[-1])}, nnz is {meta.nnz}")
    if indices.size:
        if minor == 0:
            fail("an index in a matrix whose minor dimension is 0")
        # minor - 1 fits the index dtype ([S5] above), so the comparison is exact.
        out = indices > np.array(minor - 1, dtype=indices.dtype)
        if indices.dtype.kind == "i":
            out |= indices < 0
        bad = np.flatnonzero(out)
        if bad.size:
            k = int(bad[0])
            fail(f"indices[{k}] = {int(indices[k])} is not in [0, {minor})")


# ---------------------------------------------------------------------------------------------
# Tables [B1]-[B8], [G1]: `<name>.arrow`, an Arrow IPC file, checked here by its own walk of the
# file's flatbuffers (frame, footer, every message, every buffer), then opened with pyarrow's
# own memory map and validated in full. pyarrow is imported only when a table is read.

TABLE_KEYS = ("rows", "columns", "types", "bytes")
_OTHER_KIND_SUFFIXES = ("array", "data", "indices", "indptr", "sparse")  # [B1]
_MAGIC = b"ARROW1"
_V5 = 4  # MetadataVersion.V5
_TIME_UNITS = ("s", "ms", "us", "ns")

# [G1]: the type grammar, as a regular language checked by a small recursive-descent parser.
_INT_TYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
_ATOMS = ("null", "bool", *_INT_TYPES, "halffloat", "float", "double", "date32[day]",
          "date64[ms]", "time32[s]", "time32[ms]", "time64[us]", "time64[ns]", "string",
          "large_string", "string_view", "binary", "large_binary", "binary_view",
          *(f"timestamp[{u}]" for u in _TIME_UNITS), *(f"duration[{u}]" for u in _TIME_UNITS))
_NUMBER = re.compile(r"0|[1-9][0-9]*")


class _GrammarError(Exception):
    pass


def parse_type(text: str) -> None:
    """Raises _GrammarError unless `text` is a form of the type grammar of SPEC [G1]."""
    pos = _parse_type(text, 0, top=True)
    if pos != len(text):
        raise _GrammarError(f"unexpected {text[pos:]!r}")


def _expect(text, pos, lit):
    if not text.startswith(lit, pos):
        raise _GrammarError(f"expected {lit!r} at {pos}")
    return pos + len(lit)


def _number(text, pos, lo, hi, signed=False):
    start = pos
    if signed and text.startswith("-", pos):
        pos += 1
    m = _NUMBER.match(text, pos)
    if not m:
        raise _GrammarError(f"expected a number at {pos}")
    value = int(text[start:m.end()])
    if not lo <= value <= hi:
        raise _GrammarError(f"{value} not in [{lo}, {hi}]")
    return m.end()


def _field(text, pos, stop):
    """NAME ": " TYPE [" not null"]; NAME is any text up to the first ": " (names cannot be
    parsed back unambiguously; the grammar only needs to recognise a well-formed rendering)."""
    colon = text.find(": ", pos)
    if colon < 0:
        raise _GrammarError("expected NAME: TYPE")
    pos = _parse_type(text, colon + 2)
    if text.startswith(" not null", pos):
        pos += len(" not null")
    if not text.startswith(stop, pos) and not text.startswith(", ", pos):
        raise _GrammarError(f"expected {stop!r} or ', ' at {pos}")
    return pos


def _parse_type(text, pos, top=False):
    for kw in ("list<", "large_list<", "fixed_size_list<"):
        if text.startswith(kw, pos):
            pos = _field(text, pos + len(kw), ">")
            pos = _expect(text, pos, ">")
            if kw == "fixed_size_list<":
                pos = _expect(text, pos, "[")
                pos = _number(text, pos, 0, 2**31 - 1)
                pos = _expect(text, pos, "]")
            return pos
    if text.startswith("struct<", pos):
        pos += len("struct<")
        if text.startswith(">", pos):
            return pos + 1
        while True:
            pos = _field(text, pos, ">")
            if text.startswith(">", pos):
                return pos + 1
            pos = _expect(text, pos, ", ")
    if text.startswith("dictionary<values=", pos):
        pos = _parse_type(text, pos + len("dictionary<values="))
        pos = _expect(text, pos, ", indices=")
        for i in sorted(_INT_TYPES, key=len, reverse=True):
            if text.startswith(i, pos):
                pos += len(i)
                break
        else:
            raise _GrammarError("indices must be an integer type")
        pos = _expect(text, pos, ", ordered=")
        if text[pos:pos + 1] not in ("0", "1"):
            raise _GrammarError("ordered must be 0 or 1")
        return _expect(text, pos + 1, ">")
    for kw, pmax in (("decimal128(", 38), ("decimal256(", 76)):
        if text.startswith(kw, pos):
            pos = _number(text, pos + len(kw), 1, pmax)
            pos = _expect(text, pos, ", ")
            pos = _number(text, pos, -2**31, 2**31 - 1, signed=True)
            return _expect(text, pos, ")")
    if text.startswith("fixed_size_binary[", pos):
        pos = _number(text, pos + len("fixed_size_binary["), 0, 2**31 - 1)
        return _expect(text, pos, "]")
    for u in _TIME_UNITS:
        kw = f"timestamp[{u}, tz="
        if text.startswith(kw, pos):
            # The time zone runs to the closing bracket that ends this type.
            end = text.find("]", pos + len(kw))
            if end < 0 or end == pos + len(kw):
                raise _GrammarError("empty or unterminated time zone")
            tz = text[pos + len(kw):end]
            if not re.fullmatch(r"[A-Za-z0-9_+\-/:]+", tz):
                raise _GrammarError(f"time zone {tz!r}")
            return end + 1
    # Atoms: the longest one that matches and is not followed by an identifier character.
    for atom in sorted(_ATOMS, key=len, reverse=True):
        if text.startswith(atom, pos):
            end = pos + len(atom)
            if end < len(text) and (text[end].isalnum() or text[end] == "_"):
                continue
            return end
    raise _GrammarError(f"no type at {pos}")


def render_type(t) -> Optional[str]:
    """The [G1] rendering of a pyarrow DataType, by its own rules (not `str(t)`); None for a
    type outside the grammar."""
    import pyarrow as pa

    T = pa.types
    simple = [
        (T.is_null, "null"), (T.is_boolean, "bool"), (T.is_int8, "int8"), (T.is_int16, "int16"),
        (T.is_int32, "int32"), (T.is_int64, "int64"), (T.is_uint8, "uint8"),
        (T.is_uint16, "uint16"), (T.is_uint32, "uint32"), (T.is_uint64, "uint64"),
        (T.is_float16, "halffloat"), (T.is_float32, "float"), (T.is_float64, "double"),
        (T.is_date32, "date32[day]"), (T.is_date64, "date64[ms]"), (T.is_string, "string"),
        (T.is_large_string, "large_string"), (T.is_string_view, "string_view"),
        (T.is_binary, "binary"), (T.is_large_binary, "large_binary"),
        (T.is_binary_view, "binary_view"),
    ]
    if isinstance(t, pa.ExtensionType):
        return None
    for test, text in simple:
        if test(t):
            return text
    if T.is_time32(t) or T.is_time64(t):
        return f"time{t.bit_width}[{t.unit}]"
    if T.is_timestamp(t):
        return f"timestamp[{t.unit}]" if t.tz is None else f"timestamp[{t.unit}, tz={t.tz}]"
    if T.is_duration(t):
        return f"duration[{t.unit}]"
    if T.is_decimal128(t) or T.is_decimal256(t):
        return f"decimal{t.bit_width}({t.precision}, {t.scale})"
    if T.is_fixed_size_binary(t):
        return f"fixed_size_binary[{t.byte_width}]"

    def field(f):
        inner = render_type(f.type)
        if inner is None:
            return None
        return f"{f.name}: {inner}" + ("" if f.nullable else " not null")

    if T.is_list(t) or T.is_large_list(t) or T.is_fixed_size_list(t):
        inner = field(t.value_field)
        if inner is None:
            return None
        if T.is_fixed_size_list(t):
            return f"fixed_size_list<{inner}>[{t.list_size}]"
        return f"{'large_list' if T.is_large_list(t) else 'list'}<{inner}>"
    if T.is_struct(t):
        fields = [field(t.field(i)) for i in range(t.num_fields)]
        if any(f is None for f in fields):
            return None
        return "struct<" + ", ".join(fields) + ">"
    if T.is_dictionary(t):
        values, indices = render_type(t.value_type), render_type(t.index_type)
        if values is None or indices not in _INT_TYPES:
            return None
        return f"dictionary<values={values}, indices={indices}, ordered={int(t.ordered)}>"
    return None  # map, union, interval, list_view, run-end encoded, decimal32/64, ...


class _Fb:
    """A flatbuffer table of `buf` at `pos`, every read bounds-checked (a bad offset raises
    _ArrowError, never reads outside `buf`)."""

    def __init__(self, buf, pos):
        self.buf, self.pos = buf, pos
        vt = pos - self._i32(pos)
        self.vt = vt
        self.vt_size = self._u16(vt)
        if self.vt_size < 4 or vt + self.vt_size > len(buf):
            raise _ArrowError("a flatbuffer vtable outside the metadata")

    def _get(self, fmt, p):
        if p < 0 or p + struct.calcsize(fmt) > len(self.buf):
            raise _ArrowError("a flatbuffer offset outside the metadata")
        return struct.unpack_from(fmt, self.buf, p)[0]

    def _i32(self, p):
        return self._get("<i", p)

    def _u16(self, p):
        return self._get("<H", p)

    def _field(self, i):
        if 4 + 2 * i >= self.vt_size:
            return None
        off = self._u16(self.vt + 4 + 2 * i)
        return self.pos + off if off else None

    def scalar(self, i, fmt, default=0):
        p = self._field(i)
        return default if p is None else self._get(fmt, p)

    def table(self, i):
        p = self._field(i)
        return None if p is None else _Fb(self.buf, p + self._get("<I", p))

    def vector(self, i, elem_size):
        """(position of the first element, length), or None when absent."""
        p = self._field(i)
        if p is None:
            return None
        v = p + self._get("<I", p)
        n = self._get("<I", v)
        if v + 4 + n * elem_size > len(self.buf):
            raise _ArrowError("a flatbuffer vector outside the metadata")
        return v + 4, n

    def tables(self, i):
        vec = self.vector(i, 4)
        if vec is None:
            return []
        start, n = vec
        return [_Fb(self.buf, start + 4 * k + self._get("<I", start + 4 * k)) for k in range(n)]


class _ArrowError(Exception):
    def __init__(self, message, error_class="invalid_arrow", rule="B4"):
        super().__init__(message)
        self.error_class, self.rule = error_class, rule


def _fb_root(buf: bytes) -> _Fb:
    if len(buf) < 4:
        raise _ArrowError("flatbuffer too short")
    return _Fb(buf, struct.unpack_from("<I", buf, 0)[0])


def _dictionary_ids(fields: list) -> list[int]:
    """The dictionary ids of Schema fields (Field: dictionary = 4, children = 5), depth first."""
    out = []
    for f in fields:
        enc = f.table(4)
        if enc is not None:
            out.append(enc.scalar(0, "<q"))
        out.extend(_dictionary_ids(f.tables(5)))
    return out


def _check_arrow_structure(mem: memoryview) -> tuple[list[int], int]:
    """[B4]-[B6] on the bytes of the file: the frame, the footer, each block and message, every
    buffer, the dictionaries. Returns the record batches' lengths and the number of fields.
    Raises _ArrowError."""
    size = len(mem)
    if size < 8 + 4 + 6 or bytes(mem[:8]) != _MAGIC + b"\0\0" or bytes(mem[-6:]) != _MAGIC:
        raise _ArrowError("not an Arrow IPC file: no ARROW1 magic at both ends (truncated?)")
    footer_len = struct.unpack_from("<i", mem, size - 10)[0]
    if footer_len <= 0 or footer_len > size - 18:
        raise _ArrowError(f"footer length {footer_len} outside the file")
    footer = _fb_root(bytes(mem[size - 10 - footer_len:size - 10]))
    if footer.scalar(0, "<h") != _V5:
        raise _ArrowError("footer metadata version is not V5")
    schema = footer.table(1)
    if schema is None:
        raise _ArrowError("the footer has no schema")
    if schema.scalar(0, "<h") != 0:
        raise _ArrowError("the schema is big-endian (little-endian required)")
    fields = schema.tables(1)
    dict_ids = _dictionary_ids(fields)
    body_end = size - 10 - footer_len

    def blocks(i):
        vec = footer.vector(i, 24)
        if vec is None:
            return []
        start, n = vec
        return [struct.unpack_from("<qi4xq", footer.buf, start + 24 * k) for k in range(n)]

    def message(block, want, what):
        offset, meta_len, body_len = block
        rule = "B5"
        if offset < 8 or meta_len < 8 or body_len < 0 or offset + meta_len + body_len > body_end:
            raise _ArrowError(f"{what}: block outside the file", rule=rule)
        if offset % 8 or meta_len % 8 or body_len % 8:
            raise _ArrowError(f"{what}: block not aligned to 8 bytes", rule=rule)
        cont, flen = struct.unpack_from("<Ii", mem, offset)
        if cont != 0xFFFFFFFF or flen < 0 or 8 + flen > meta_len:
            raise _ArrowError(f"{what}: no message at the block's offset", rule=rule)
        msg = _fb_root(bytes(mem[offset + 8:offset + 8 + flen]))
        if msg.scalar(0, "<h") != _V5:
            raise _ArrowError(f"{what}: message metadata version is not V5", rule="B4")
        if msg.scalar(1, "<B") != want:
            raise _ArrowError(f"{what}: not a {'record' if want == 3 else 'dictionary'} batch",
                              rule=rule)
        if msg.scalar(3, "<q") != body_len:
            raise _ArrowError(f"{what}: body length differs from its block's", rule=rule)
        header = msg.table(2)
        if header is None:
            raise _ArrowError(f"{what}: message without header", rule=rule)
        return header, body_len

    def batch(rb, body_len, what):
        if rb is None:
            raise _ArrowError(f"{what}: no record batch", rule="B5")
        if rb.table(3) is not None:
            raise _ArrowError(f"{what}: compressed buffers (body compression); only "
                              "uncompressed files can be mapped", "compressed_arrow", "B5")
        vec = rb.vector(2, 16) or (0, 0)
        for k in range(vec[1]):
            off, length = struct.unpack_from("<qq", rb.buf, vec[0] + 16 * k)
            if off < 0 or length < 0 or off + length > body_len:
                raise _ArrowError(f"{what}: buffer {k} ({off}, {length}) outside its body "
                                  f"of {body_len} bytes", rule="B5")
            if off % 8:
                raise _ArrowError(f"{what}: buffer {k} at offset {off}, not a multiple of 8",
                                  rule="B5")
        return rb.scalar(0, "<q")

    seen = set()
    for k, block in enumerate(blocks(2)):
        what = f"dictionary batch {k}"
        header, body_len = message(block, 2, what)
        batch(header.table(1), body_len, what)
        did = header.scalar(0, "<q")
        if header.scalar(2, "<B"):
            raise _ArrowError(f"{what}: a delta dictionary (one dictionary per id)", rule="B6")
        if did in seen:
            raise _ArrowError(f"{what}: a second dictionary for id {did} (a replacement)",
                              rule="B6")
        if did not in dict_ids:
            raise _ArrowError(f"{what}: id {did} is no dictionary of the schema", rule="B6")
        seen.add(did)
    lengths = []
    for k, block in enumerate(blocks(3)):
        what = f"record batch {k}"
        header, body_len = message(block, 3, what)
        n = batch(header, body_len, what)
        if n < 0:
            raise _ArrowError(f"{what}: negative length", rule="B5")
        lengths.append(n)
    missing = [d for d in dict_ids if d not in seen]
    if lengths and missing:
        raise _ArrowError(f"no dictionary batch for id {missing[0]}", rule="B6")
    return lengths, len(fields)


@dataclass
class Table:
    """A table: `table` is a pyarrow.Table whose buffers lie in pyarrow's memory map of the
    `.arrow` file (zero-copy); `batches` are the record batches' lengths."""

    name: str
    rows: int
    columns: list
    types: list
    bytes: int
    batches: list
    table: object
    version: tuple[int, int]
    crc32c: dict
    computed_crc32c: Optional[dict] = None
    map: object = None  # the pyarrow.Buffer of the whole mapped file
    kind: str = "table"


def _read_table(fd: int, path: str, meta: "Metadata"):
    """[B4]-[B8] on the open `.arrow` file (its size already checked, [B3])."""
    import pyarrow as pa
    import pyarrow.ipc  # noqa: F401

    def fail(e: _ArrowError):
        raise FormatError(e.error_class, str(e), e.rule, path) from None

    if meta.nbytes < 18:  # [D4]: an empty file is never mapped; no IPC file is this small
        fail(_ArrowError("not an Arrow IPC file: shorter than its magic and footer"))
    # pyarrow's own memory map, of the inode opened (and size-checked) in [R2] step 2.
    source = pa.memory_map(f"/proc/self/fd/{fd}")
    whole = source.read_buffer()
    try:
        lengths, nfields = _check_arrow_structure(memoryview(whole))
    except (_ArrowError, struct.error) as e:
        fail(e if isinstance(e, _ArrowError) else _ArrowError(str(e)))
    try:
        reader = pa.ipc.open_file(whole)
        schema = reader.schema
    except pa.ArrowException as e:
        fail(_ArrowError(f"pyarrow cannot open it: {e}"))
    # [B7]: names, order and rendered types, then the row count.
    names = [f.name for f in schema]
    if names != meta.columns:
        raise FormatError("table_mismatch", f"the file's columns are {names}, the metadata's "
                          f"{meta.columns}", "B7", path)
    rendered = [render_type(f.type) for f in schema]
    for f, got, want in zip(schema, rendered, meta.types):
        if got != want:
            shown = got or f"a type outside the grammar ({f.type})"
            raise FormatError("table_mismatch", f"column {f.name!r} is {shown} in the file, "
                              f"{want} in the metadata", "B7", path)
    if sum(lengths) != meta.rows:
        raise FormatError("table_mismatch", f"the record batches hold {sum(lengths)} rows, the "
                          f"metadata says {meta.rows}", "B7", path)
    # [B8]: the data, validated in full (offsets, indices, UTF-8, views, child lengths).
    try:
        batches = [reader.get_batch(i) for i in range(reader.num_record_batches)]
        for b in batches:
            b.validate(full=True)
        table = pa.Table.from_batches(batches, schema)
    except pa.ArrowException as e:
        fail(_ArrowError(f"invalid data: {e}", rule="B8"))
    return table, lengths, whole


# ---------------------------------------------------------------------------------------------
# Reference counting through `dafctl hold` ([R4], [P7]).

_HELD_ENV = "DAFREADER_HELD"


def hold_command(container, names, argv, dafctl: str = "dafctl") -> list[str]:
    """The command line that runs `argv` while `dafctl hold` holds `names` in `container`."""
    return [dafctl, "hold", os.fspath(container), *names, "--", *argv]


def run_held(container, names, dafctl: Optional[str] = None) -> None:
    """Makes sure this Python process runs under `dafctl hold CONTAINER NAMES...`.

    The first call re-executes the script (`sys.executable` with `sys.argv`) under `dafctl hold`,
    so it does not return, and whatever ran before it runs again: call it first. In the
    re-executed process (marked by the environment variable DAFREADER_HELD) it returns at once,
    with the references held until the process exits. For scripts run as `python3 script.py`,
    not `python3 -c`."""
    key = json.dumps([os.path.realpath(container), *names])
    if os.environ.get(_HELD_ENV) == key:
        return
    dafctl = dafctl or shutil.which("dafctl") or "dafctl"
    os.environ[_HELD_ENV] = key
    sys.stdout.flush()
    sys.stderr.flush()
    argv = hold_command(container, names, [sys.executable, *sys.argv], dafctl)
    os.execvp(argv[0], argv)


def reference_key(name: Union[str, bytes]) -> int:
    """The key of a name in session files' reference records ([P3]): FNV-1a 64 of its bytes
    (as [L1]), or 1 where that is 0."""
    data = name.encode("utf-8") if isinstance(name, str) else bytes(name)
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) % 2**64
    return h or 1


def session_references(root) -> dict:
    """The reference records of every session file of a container ([P3]): session id -> list of
    (key, since ms), keys not 0. Whether a session is alive is a lock ([P1]): a reader that acts
    on records checks it (``fcntl.flock(fd, LOCK_EX | LOCK_NB)`` succeeding means dead)."""
    out = {}
    sessions = os.path.join(os.fspath(root), ".dafstore", "sessions")
    for leaf in sorted(os.listdir(sessions)):
        sid = leaf[: -len(".lock")] if leaf.endswith(".lock") else None
        if not sid or len(sid) != 32 or any(c not in "0123456789abcdef" for c in sid):
            continue
        with open(os.path.join(sessions, leaf), "rb") as f:
            data = f.read()
        recs = []
        for at in range(0, len(data) - len(data) % 16, 16):
            key = int.from_bytes(data[at : at + 8], "little")
            since = int.from_bytes(data[at + 8 : at + 16], "little", signed=True)
            if key:
                recs.append((key, since))
        out[sid] = recs
    return out
