#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/ (committed; small).

Seeds are valid and near-valid inputs: the conformance vectors' files (format-spec/vectors), the
interop fixtures written by numpy, scipy and pyarrow (tests/fixtures/interop), real catalogs of a
container made with dafctl, and a few hand-made variants. Run from anywhere:

    .venv/bin/python fuzz/make-corpus.py        # needs numpy, scipy, pyarrow, and cargo (dafctl)

Environment: CORPUS_DIR writes elsewhere than fuzz/corpus; DAFCTL names a built dafctl to use
instead of `cargo run -p dafctl`.

It only adds files (named by their SHA-1), so it never removes what fuzzing added to a corpus; the
catalogs it writes are the same bytes on every run. To grow a corpus, fuzz it
(`cargo fuzz run <target> corpus/<target>`) and minimise it with `cargo fuzz cmin <target>`.
"""

import hashlib
import io
import json
import os
import random
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
REPO = FUZZ.parent
VECTORS = REPO / "format-spec" / "vectors"
FIXTURES = REPO / "tests" / "fixtures" / "interop"
CORPUS = Path(os.environ.get("CORPUS_DIR", FUZZ / "corpus"))


def add(target: str, data: bytes) -> None:
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def u16(n: int) -> bytes:
    return struct.pack("<H", min(n, 0xFFFF))


def vectors():
    for v in sorted(VECTORS.iterdir()):
        exp = v / "expected.json"
        if exp.is_file():
            yield v, json.loads(exp.read_text())


# --- yaml and container_version -------------------------------------------------------------

CONTAINER_YAML = b"format: dafstore\nversion:\n- 1\n- 0\n"


def yaml_seeds():
    for v, _ in vectors():
        for f in sorted(v.rglob("*.yaml")):
            if f.is_file() and not f.is_symlink():
                add("yaml", f.read_bytes())
    add("yaml", b"version: [1, 1]\ndtype: float64\nshape: [2, 3]\ncrc32c: {array: 1}\n")
    add("yaml", b"a: &a [1, 1]\nb: &b [*a, *a]\nversion: *a\ndtype: int8\nshape: [1]\n")


def container_version_seeds():
    for text in [
        CONTAINER_YAML,
        b"format: dafstore\nversion: [1, 7]\n",
        b"format: dafstore\nversion: [2, 0]\n",
        b"format: dafstore\nversion: [1]\n",
        b"format: dafstore\nversion: [1, -1]\n",
        b"format: dafstore\nversion: '1.0'\n",
        b"format: daf\nversion: [1, 0]\n",
        b"version: [1, 0]\n",
        b"format: dafstore\nformat: dafstore\nversion: [1, 0]\n",
        b"{format: dafstore, version: [1, 0], extra: {a: 1}}\n",
        b"- format: dafstore\n",
        b"",
        b"\xff\xfe",
        b"format: !!binary ZGFm\nversion: [1, 0]\n",
    ]:
        add("container_version", text)


# --- names ------------------------------------------------------------------------------------


def names_seeds():
    for _, e in vectors():
        if "name_hex" in e:
            add("names", bytes.fromhex(e["name_hex"]))
        elif "name" in e:
            add("names", e["name"].encode())
    for n in ["x", "a/b/c", "a/b.array", "cells/umis", ".dafstore", "a/./b", "x" * 300, "\u00e9/\u03b2"]:
        add("names", n.encode())


# --- sparse_validate ----------------------------------------------------------------------------

INDEX = {"int32": (0, "<i"), "int64": (1, "<q"), "uint32": (2, "<I"), "uint64": (3, "<Q")}


def sparse_input(idx_dt, ptr_dt, columns, rows, cols, nnz, data_len, indices, indptr, flags=0):
    ic, ifmt = INDEX[idx_dt]
    pc, pfmt = INDEX[ptr_dt]
    ib = b"".join(struct.pack(ifmt, i) for i in indices)
    pb = b"".join(struct.pack(pfmt, p) for p in indptr)
    head = bytes([ic, pc, int(columns), flags])
    return head + struct.pack("<IIII", rows, cols, nnz, data_len) + u16(len(ib)) + ib + pb


def sparse_seeds():
    for idx in INDEX:
        for ptr in INDEX:
            add("sparse_validate", sparse_input(idx, ptr, False, 3, 4, 3, 3, [1, 3, 0], [0, 2, 2, 3]))
    add("sparse_validate", sparse_input("int32", "int64", True, 4, 3, 3, 3, [1, 3, 0], [0, 2, 2, 3]))
    add("sparse_validate", sparse_input("int32", "int64", False, 0, 0, 0, 0, [], [0]))
    add("sparse_validate", sparse_input("int32", "int64", False, 2, 0, 0, 0, [], [0, 0, 0]))
    add("sparse_validate", sparse_input("int32", "int64", False, 2, 3, 2, 2, [0, 3], [0, 1, 2]))
    add("sparse_validate", sparse_input("int32", "int64", False, 2, 3, 2, 2, [0, -1], [0, 1, 2]))
    add("sparse_validate", sparse_input("int64", "int64", False, 2, 3, 2, 2, [0, 1], [0, 2, 1]))
    add("sparse_validate", sparse_input("int64", "int32", False, 2, 3, 2, 2, [0, 1], [1, 1, 2]))
    add("sparse_validate", sparse_input("uint32", "uint64", False, 2, 3, 2, 1, [0, 1], [0, 1, 2]))
    # minor dimension at the int32 limit (flags scale cols by 2^31)
    add("sparse_validate", sparse_input("int32", "int64", False, 1, 1, 1, 1, [5], [0, 1], flags=0b10))
    add("sparse_validate", sparse_input("uint32", "int64", False, 1, 2, 1, 1, [5], [0, 1], flags=0b10))
    # nnz = 2^31 does not fit an int32 indptr (flags scale nnz and the data length by 2^31)
    add("sparse_validate", sparse_input("int32", "int32", False, 1, 1, 1, 1, [0], [0, 1], flags=0b1100))


# --- array_files --------------------------------------------------------------------------------


def array_files_input(yaml, array, indices, indptr, flags=0):
    return bytes([flags]) + u16(len(yaml)) + yaml + u16(len(array)) + u16(len(indices)) + u16(len(indptr)) + array + indices + indptr


def array_files_seeds():
    for v, e in vectors():
        if e.get("name") != "x" or not (v / "x.yaml").is_file() or (v / "x.yaml").is_symlink():
            continue
        rd = lambda s: (v / f"x.{s}").read_bytes() if (v / f"x.{s}").is_file() else b""
        array = rd("array") or rd("data")
        add("array_files", array_files_input(rd("yaml"), array, rd("indices"), rd("indptr")))
    # the file kinds of the flags byte on a valid dense and a valid sparse array
    dense = VECTORS / "dense-2d"
    sparse = VECTORS / "sparse-rows"
    for flags in [0b0100, 0b1000, 0b1100]:
        add("array_files", array_files_input((dense / "x.yaml").read_bytes(), (dense / "x.array").read_bytes(), b"", b"", flags))
        s = lambda n: (sparse / f"x.{n}").read_bytes()
        add("array_files", array_files_input(s("yaml"), s("data"), s("indices"), s("indptr"), flags | 2))


# --- imports ----------------------------------------------------------------------------------


def fixed_zip(data: bytes) -> bytes:
    """The same archive with every entry dated 1980-01-01, so a seed has the same bytes every run."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = info.compress_type
            dst.writestr(fixed, src.read(info))
    return out.getvalue()



def import_seeds():
    for sub, target in [("npy", "import_npy"), ("npz", "import_npz"), ("feather", "import_feather")]:
        for f in sorted((FIXTURES / sub).iterdir()):
            add(target, f.read_bytes())
    import numpy as np
    import scipy.sparse as sp
    import pyarrow as pa
    import pyarrow.feather as feather

    # .npy: a truncated body, a header claiming a huge shape, a v2 header, object dtype
    b = io.BytesIO()
    np.save(b, np.arange(12, dtype="<i4").reshape(3, 4))
    whole = b.getvalue()
    add("import_npy", whole[:-5])
    hdr = b"{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"
    hdr = hdr + b" " * (117 - len(hdr)) + b"\n"
    add("import_npy", b"\x93NUMPY\x01\x00" + u16(len(hdr)) + hdr + b"\x00" * 16)
    b = io.BytesIO()
    np.save(b, np.array([1.5, 2.5], dtype=">f4"), allow_pickle=False)
    add("import_npy", b.getvalue())
    # .npz: plain with two keys, compressed; scipy csr with int64 indptr; a bad entry name
    b = io.BytesIO()
    np.savez_compressed(b, a=np.arange(3, dtype="u2"), b=np.ones((2, 2), dtype="?"))
    add("import_npz", fixed_zip(b.getvalue()))
    m = sp.csr_matrix(np.array([[1.0, 0, 2.0], [0, 0, 3.0]], dtype="f4"))
    m.indptr = m.indptr.astype(np.int64)
    b = io.BytesIO()
    sp.save_npz(b, m, compressed=False)
    add("import_npz", fixed_zip(b.getvalue()))
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        z.writestr("../x.npy", whole)
    add("import_npz", fixed_zip(b.getvalue()))
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        z.writestr("x.txt", b"not an array")
    add("import_npz", fixed_zip(b.getvalue()))
    # Feather: a nullable int column, a bool column, a float16 column, two batches
    for table in [
        pa.table({"v": pa.array([1, None, 3], type=pa.int8())}),
        pa.table({"v": pa.array([True, False, True])}),
        pa.table({"v": pa.array(np.array([1, 2], dtype="f2"))}),
        pa.concat_tables([pa.table({"v": pa.array([1, 2], pa.uint32())})] * 2),
    ]:
        b = io.BytesIO()
        feather.write_feather(table, b, compression="uncompressed")
        add("import_feather", b.getvalue())


def open_table_seeds():
    # `[schema: u8][rows: u16 LE]` + an uncompressed Arrow IPC file of that schema (the target's
    # SCHEMAS), one and two batches, and an LZ4-compressed one.
    import pyarrow as pa
    import pyarrow.ipc as ipc

    tables = [
        pa.table({"v": pa.array([1, None, 3], pa.int64())}),
        pa.table({"s": pa.array(["a", None, "ccc"]),
                  "d": pa.array(["x", "y", "x"]).dictionary_encode()}),
        pa.table({"l": pa.array([[1, 2], None, []], pa.list_(pa.int32())),
                  "st": pa.array([{"a": 1, "b": "p"}, None, {"a": 3, "b": None}],
                                 pa.struct([("a", pa.int32()), ("b", pa.string())]))}),
        pa.table({"t": pa.array([0, 1, 2], pa.timestamp("us", tz="UTC")),
                  "sv": pa.array(["short", "a string longer than twelve", ""], pa.string_view()),
                  "f": pa.array([b"abc", b"def", None], pa.binary(3))}),
    ]
    for i, table in enumerate(tables):
        for batches, compression in [(1, None), (2, None), (1, "lz4")]:
            t = pa.concat_tables([table] * batches)
            b = io.BytesIO()
            opts = ipc.IpcWriteOptions(compression=compression)
            with ipc.new_file(b, t.schema, options=opts) as w:
                for _ in range(batches):
                    w.write_table(table)
            add("open_table", bytes([i]) + u16(t.num_rows) + b.getvalue())


# --- catalogs -----------------------------------------------------------------------------------


def dafctl() -> list:
    exe = os.environ.get("DAFCTL")
    if exe:
        return [exe]
    return ["cargo", "run", "-q", "--manifest-path", str(REPO / "Cargo.toml"), "-p", "dafctl", "--"]


def catalog_seeds():
    """A container holding what the catalog targets' template holds (dense f64 `x` [2, 3], sparse
    f32 `m` [2, 3] int32/int64 rows, dense u8 `g/y` [3]), so a seed's rows match its files; then
    variants of its catalog with each state, holders, and a schema from the future."""
    import numpy as np
    import scipy.sparse as sp

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        c = tmp / "c"
        run = lambda *a: subprocess.run(dafctl() + [str(x) for x in a], check=True, stdout=subprocess.DEVNULL)
        run("init", c)
        np.save(tmp / "x.npy", np.arange(1, 7, dtype="<f8").reshape(2, 3))
        np.save(tmp / "y.npy", np.array([1, 2, 3], dtype="u1"))
        m = sp.csr_matrix(np.array([[1.0, 0, 0], [0, 0, 2.0]], dtype="f4"))
        m.indices = m.indices.astype(np.int32)
        m.indptr = m.indptr.astype(np.int64)
        sp.save_npz(tmp / "m.npz", m, compressed=False)
        run("import", c, "x", tmp / "x.npy")
        run("import", c, "m", tmp / "m.npz")
        run("import", c, "g/y", tmp / "y.npy")
        db = c / ".dafstore" / "catalog.sqlite"

        def variant(sql):
            p = tmp / "v.sqlite"
            shutil.copy(db, p)
            con = sqlite3.connect(p)
            con.execute("PRAGMA journal_mode=DELETE")
            # Same bytes on every run: no clock values, no session of the dafctl that wrote it.
            con.executescript("UPDATE arrays SET created_at = 0, updated_at = 0; DELETE FROM sessions;")
            con.executescript(sql)
            con.commit()
            # Small pages: a small file whose bytes are mostly records, not free space.
            con.execute("PRAGMA page_size = 512")
            con.execute("VACUUM")
            con.close()
            add("catalog", p.read_bytes())

        sid = "0123456789abcdef0123456789abcdef"
        variant("")
        variant("UPDATE arrays SET state='publishing', staging='%s/0' WHERE name='x'" % sid)
        variant("UPDATE arrays SET state='deleting' WHERE name='m'; "
                "INSERT INTO sessions VALUES('%s', 1, 0)" % sid)
        variant("UPDATE arrays SET state='removing' WHERE name='g/y'")
        variant("UPDATE arrays SET checksum_stale=1; INSERT INTO inplace_writers VALUES('%s', 'x', 1)" % sid)
        variant("UPDATE arrays SET scratch=1, ever_held=1")
        variant("PRAGMA user_version=2")
        variant("DELETE FROM array_files WHERE name='x'")


def catalog_rows_seeds():
    # Structured input (arbitrary): any bytes are rows; random seeds of a few sizes.
    rng = random.Random(8)
    for n in [16, 48, 96, 160, 256, 384, 512, 768, 1024, 2048]:
        for _ in range(3):
            add("catalog_rows", bytes(rng.randrange(256) for _ in range(n)))


def main() -> int:
    yaml_seeds()
    container_version_seeds()
    names_seeds()
    sparse_seeds()
    array_files_seeds()
    import_seeds()
    open_table_seeds()
    catalog_seeds()
    catalog_rows_seeds()
    total = 0
    for d in sorted(CORPUS.iterdir()):
        files = list(d.iterdir())
        size = sum(f.stat().st_size for f in files)
        total += size
        print(f"{d.name}: {len(files)} files, {size} bytes")
    print(f"total {total} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
