#!/usr/bin/env python3
"""What pyarrow and polars copy when they read an uncompressed Arrow IPC file from /dev/shm, per
column type and layout (issue 17: it decides the layout dafstore stores tables in).

    bench/.venv/bin/python bench/tables_layout.py            # ~200 MiB per file, 58 cases, 3 rounds (~18 min on 2 cores)
    bench/.venv/bin/python bench/tables_layout.py --quick    # ~32 MiB per file, 24 cases (~5-6 min)
    options: --size-mib N  --rounds N  --only CASE[,CASE..]  --dir DIR  --no-lifetime  --out-prefix P

The venv is bench/run.sh's (`bench/.venv`: numpy, pyarrow, polars; pandas is not needed here);
make it with `python3 -m venv bench/.venv && bench/.venv/bin/pip install numpy pyarrow polars`.

For every case (one column of one Arrow type, ~SIZE bytes, ~12 % nulls unless the case says
otherwise; written by pyarrow, or by polars where the case says so; one record batch, or 64) the
driver writes DIR/CASE.arrow (uncompressed IPC file), then runs each reader in a FRESH interpreter
(`tables_layout.py --worker READER PATH`), ROUNDS rounds, the readers' order rotated each round
(interleaved). A worker imports numpy, pyarrow and polars, takes its baseline, reads, and reports
the growth of RssAnon (/proc/self/status), of the Anonymous total of /proc/self/smaps_rollup, of
Pss, the Pss of the file's own mappings, pyarrow's pool allocation, the read time, polars' chunk
count and dtype, and the lowest alignment of the table's buffers. The tables report medians; the
ratio is anon growth / file size (≈ 0 shared, ≈ 1 copied once, > 1 copied and converted).

Readers:
  pa_mmap        pa.ipc.open_file(pa.memory_map(path)).read_all()
  pa_foreign     mmap.mmap + pa.foreign_buffer(addr, size, base=holder) + ipc.open_file(buf).read_all()
                 (how dafstore's Python API will wrap the engine's map)
  pl_arrow       pa_mmap, then pl.from_arrow(table, rechunk=False)   (polars 2.1's default)
  pl_arrow_re    pa_mmap, then pl.from_arrow(table, rechunk=True)
  pl_foreign     pa_foreign, then pl.from_arrow(table, rechunk=False) (what c.open_polars will do)
  pl_read_ipc    pl.read_ipc(path)                                    (the peer: polars 2 copies)

Afterwards the lifetime checks (each in a fresh interpreter): does a polars frame built over a
foreign buffer keep the base object alive after the pyarrow table is deleted, are its values still
right, and what happens when the map is closed underneath it.

Writes bench/results/tables_layout.json (machine, every round of every worker, medians, lifetime),
bench/results/tables_layout.csv (one row per case and reader, medians) and
bench/results/tables_layout.md (the tables, also printed). Scratch: DIR
(/dev/shm/dafstore-bench-tables), removed at the end.

`normalize_for_sharing(table)` (below) applies the layout decided from these numbers
(bench/README.md, "Tables: what pyarrow and polars copy").
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import cpu_model, mapping_mem, smaps_rollup, status_bytes, utc_now  # noqa: E402

ROOT = Path(os.path.abspath(__file__)).parent.parent
MIB = 1 << 20
READERS = ("pa_mmap", "pa_foreign", "pl_arrow", "pl_arrow_re", "pl_foreign", "pl_read_ipc")
MANY_BATCHES = 64

# ---------------------------------------------------------------------------------------------
# the layout decision, as a function the Python API calls before writing


def normalize_for_sharing(table):
    """Return `table` with the column types polars (2.1) maps without copying, as decided from this
    script's numbers (bench/README.md, "Tables: what pyarrow and polars copy"). pyarrow maps every
    type as stored, so the casts only matter for polars; all of them are lossless.

    - string / large_string -> string_view, binary / large_binary -> binary_view (also inside
      list, large_list, fixed_size_list and struct): polars' String/Binary are view arrays; it
      converts offset-based strings on every open (0.73-0.90 x the file, per process) and maps
      view arrays as they are (0.01). The file grows (16 bytes per value + the data, against 4 or
      8 + the data), shared once instead of converted in every process.
    - list -> large_list (recursively): polars' List has int64 offsets; list<..> copies its offsets.
    - time32[s|ms] and time64[us] -> time64[ns]: polars' Time is nanoseconds; other units convert.
    - dictionary: the dictionary's values are normalized like any column (string -> string_view,
      what polars writes itself); the indices are kept as given (polars copies a dictionary column
      whatever the index type: it re-maps the indices into its own categories, 4 bytes a row).
    - everything else is kept: bool, integers, floats, float16, decimal128 (mapped if its buffer is
      16-aligned in the file, which the engine's 64-byte alignment gives), date32/64, timestamp
      (any unit, any tz), duration, fixed_size_binary (polars copies it into Binary: a
      binary_view would cost 16 bytes a value, kept as given), decimal256 (polars refuses it).
    Field names, nullability and metadata (polars' Categorical/Enum markers) are kept. Chunks are
    kept as given: the writer stores one record batch per chunk (see the README for why few large
    batches are better; rechunking is the caller's choice, it copies).
    """
    import pyarrow as pa

    def norm(t):
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return pa.string_view()
        if pa.types.is_binary(t) or pa.types.is_large_binary(t):
            return pa.binary_view()
        if pa.types.is_time32(t) or (pa.types.is_time64(t) and t.unit != "ns"):
            return pa.time64("ns")
        if pa.types.is_dictionary(t):
            return pa.dictionary(t.index_type, norm(t.value_type), t.ordered)
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            return pa.large_list(t.value_field.with_type(norm(t.value_type)))
        if pa.types.is_fixed_size_list(t):
            return pa.list_(t.value_field.with_type(norm(t.value_type)), t.list_size)
        if pa.types.is_struct(t):
            return pa.struct([t.field(i).with_type(norm(t.field(i).type)) for i in range(t.num_fields)])
        return t

    target = pa.schema([f.with_type(norm(f.type)) for f in table.schema], metadata=table.schema.metadata)
    if target.equals(table.schema, check_metadata=True):
        return table
    return table.cast(target)


# ---------------------------------------------------------------------------------------------
# measuring a process


def mem():
    """RssAnon (/proc/self/status), Anonymous, Pss and Rss (smaps_rollup) of this process, in bytes."""
    r = smaps_rollup("self")
    return {"rss_anon": status_bytes("self", "RssAnon"), "anon": r.get("Anonymous", 0), "pss": r.get("Pss", 0),
            "rss": r.get("Rss", 0)}


def buffers_alignment(table):
    """The lowest power-of-two alignment (capped at 64) of any buffer address of the table."""
    low = 64

    def walk(arr):
        nonlocal low
        for b in arr.buffers():
            if b is not None and b.size > 0:
                a = b.address
                low = min(low, (a & -a) if a else 64)
        if str(arr.type).startswith("dictionary<"):
            walk(arr.dictionary)

    for col in table.columns:
        for chunk in col.chunks:
            walk(chunk)
    return min(low, 64)


class Holder:
    """Stands for the engine's holder object: owns the map; its finalizer says when it goes."""

    def __init__(self, mm):
        self.mm = mm


def open_foreign(path, pa, np):
    import mmap

    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    view = np.frombuffer(mm, dtype=np.uint8)
    addr = view.ctypes.data
    del view  # no buffer export left: like a raw address handed over by the engine
    holder = Holder(mm)
    buf = pa.foreign_buffer(addr, len(mm), base=holder)
    return buf, holder


def worker(reader, path):
    import numpy as np
    import pyarrow as pa
    import pyarrow.ipc  # noqa: F401
    import polars as pl

    gc.collect()
    m0, pa0 = mem(), pa.total_allocated_bytes()
    out, keep = {}, []
    t0 = time.perf_counter_ns()
    try:
        if reader in ("pa_mmap", "pl_arrow", "pl_arrow_re"):
            t = pa.ipc.open_file(pa.memory_map(path)).read_all()
        elif reader in ("pa_foreign", "pl_foreign"):
            buf, holder = open_foreign(path, pa, np)
            t = pa.ipc.open_file(buf).read_all()
            keep += [buf, holder]
        else:
            t = None
        if t is not None:
            keep.append(t)
            out["arrow_type"] = str(t.schema.field("c").type)
            out["batches"] = t.column("c").num_chunks
            out["align"] = buffers_alignment(t)
        if reader.startswith("pl_"):
            if reader == "pl_read_ipc":
                df = pl.read_ipc(path)
            else:
                df = pl.from_arrow(t, rechunk=(reader == "pl_arrow_re"))
            keep.append(df)
            out["polars_dtype"] = str(df.schema["c"])
            out["n_chunks"] = df.n_chunks()
        out["seconds"] = (time.perf_counter_ns() - t0) / 1e9
    except BaseException as e:  # noqa: BLE001  (polars raises pyo3's PanicException, a BaseException)
        out["error"] = f"{type(e).__name__}: {e}"[:300]
    gc.collect()
    m1 = mem()
    out.update({k + "_growth": m1[k] - m0[k] for k in m0})
    out["file_pss"] = mapping_mem("self", path)["map_pss"]
    out["pa_pool_growth"] = pa.total_allocated_bytes() - pa0
    print(json.dumps(out))


# ---------------------------------------------------------------------------------------------
# lifetime checks (fresh interpreters)

LIFETIME_FILE_ROWS = 1_000_000


def lifetime_worker(mode, path):
    """Modes: keep (frame alone keeps holder alive, values right, holder freed after the frame),
    close_raw (base's mmap closed underneath: the process is expected to die),
    close_exported (pa.py_buffer(mm) holds a buffer export: close refused),
    memory_map_close (pa.memory_map's file closed while the frame lives)."""
    import mmap
    import weakref

    import numpy as np
    import pyarrow as pa
    import pyarrow.ipc  # noqa: F401
    import polars as pl

    expect = pl.read_ipc(path)  # a private copy to compare with
    out = {"mode": mode}
    if mode in ("keep", "close_raw"):
        buf, holder = open_foreign(path, pa, np)
        freed = []
        weakref.finalize(holder, freed.append, True)
        mm = holder.mm
        t = pa.ipc.open_file(buf).read_all()
        df = pl.from_arrow(t, rechunk=False)
        del t, buf, holder
        gc.collect()
        out["holder_alive_with_frame_only"] = not freed
        if mode == "close_raw":
            mm.close()  # succeeds: nothing holds a buffer export of mm
            out["closed"] = True
            print(json.dumps(out), flush=True)
            out["equal_after_close"] = bool(df.equals(expect))  # touches unmapped memory
            print(json.dumps(out), flush=True)
            return
        del mm
        gc.collect()
        out["equal_after_del_table"] = bool(df.equals(expect))
        s = df["i"].sum()
        out["sum_ok"] = bool(s == expect["i"].sum())
        col = df["i"]  # a (zero-copy) Series taken from the frame, then the frame dropped
        del df
        gc.collect()
        out["holder_alive_with_series_only"] = not freed
        out["series_equal"] = bool(col.equals(expect["i"]))
        del col
        gc.collect()
        out["holder_freed_after_frame"] = bool(freed)
    elif mode == "close_exported":
        with open(path, "rb") as f:
            mm = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
        buf = pa.py_buffer(mm)
        out["zero_copy"] = buf.address == np.frombuffer(mm, np.uint8).ctypes.data
        df = pl.from_arrow(pa.ipc.open_file(buf).read_all(), rechunk=False)
        del buf
        gc.collect()
        try:
            mm.close()
            out["close_while_frame"] = "closed"
        except BufferError as e:
            out["close_while_frame"] = f"BufferError: {e}"
        out["equal"] = bool(df.equals(expect))
        del df
        gc.collect()
        try:
            mm.close()
            out["close_after_frame"] = "closed"
        except BufferError as e:
            out["close_after_frame"] = f"BufferError: {e}"
    elif mode == "memory_map_close":
        src = pa.memory_map(path)
        df = pl.from_arrow(pa.ipc.open_file(src).read_all(), rechunk=False)
        src.close()
        del src
        gc.collect()
        out["equal_after_source_close"] = bool(df.equals(expect))
    print(json.dumps(out), flush=True)


# ---------------------------------------------------------------------------------------------
# the cases: one column of one type, ~size bytes of buffers


class Gen:
    def __init__(self, size, seed=1):
        import numpy as np

        self.np = np
        self.size = size
        self.rng = np.random.default_rng(seed)

    def bytes_(self, n):
        return self.np.frombuffer(self.rng.bytes(n), dtype=self.np.uint8)

    def validity(self, n):
        a, b, c = (self.bytes_((n + 7) // 8) for _ in range(3))
        return ~(a & b & c)  # a bit is 0 (null) with probability 1/8

    def prim(self, typ, width, nulls=True, values=None):
        import pyarrow as pa

        n = self.size // width
        data = values(n) if values else self.bytes_(n * width)
        v = pa.py_buffer(self.validity(n)) if nulls else None
        return pa.Array.from_buffers(typ, n, [v, pa.py_buffer(data)])

    def boolean(self):
        import pyarrow as pa

        n = self.size * 4  # data + validity = size
        return pa.Array.from_buffers(pa.bool_(), n, [pa.py_buffer(self.validity(n)),
                                                     pa.py_buffer(self.bytes_(n // 8))])

    def strings(self, typ, letters=True, mean=14, n=None):
        import pyarrow as pa

        np = self.np
        n = n or self.size // (mean + 4)
        lengths = self.rng.integers(0, 2 * mean + 1, n, dtype=np.int64)
        off = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=off[1:])
        data = self.bytes_(int(off[-1]))
        if letters:
            data = data % 26 + 97
        base = pa.large_string() if letters else pa.large_binary()
        arr = pa.Array.from_buffers(base, n, [pa.py_buffer(self.validity(n)), pa.py_buffer(off),
                                              pa.py_buffer(data)])
        return arr if arr.type == typ else arr.cast(typ)

    def dictionary(self, index_type, value_type, k=1000, n=None):
        import pyarrow as pa

        np = self.np
        width = pa.array([], index_type).type.bit_width // 8
        n = n or self.size // width
        values = pa.array([f"category_{i:06d}" for i in range(k)], value_type)
        idx = self.rng.integers(0, k, n).astype(index_type.to_pandas_dtype())
        indices = pa.Array.from_buffers(index_type, n, [pa.py_buffer(self.validity(n)),
                                                        pa.py_buffer(idx)])
        return pa.DictionaryArray.from_arrays(indices, values)

    def lists(self, large, mean=4):
        import pyarrow as pa

        np = self.np
        n = self.size // (mean * 8 + (8 if large else 4))
        lengths = self.rng.integers(0, 2 * mean + 1, n, dtype=np.int64)
        off = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=off[1:])
        m = int(off[-1])
        child = pa.Array.from_buffers(pa.int64(), m, [None, pa.py_buffer(self.bytes_(m * 8))])
        typ = pa.large_list(pa.int64()) if large else pa.list_(pa.int64())
        if not large:
            off = off.astype(np.int32)
        return pa.Array.from_buffers(typ, n, [pa.py_buffer(self.validity(n)), pa.py_buffer(off)],
                                     children=[child])

    def fixed_list(self, k=16):
        import pyarrow as pa

        n = self.size // (4 * k)
        child = pa.Array.from_buffers(pa.float32(), n * k, [None, pa.py_buffer(self.bytes_(n * k * 4))])
        return pa.Array.from_buffers(pa.list_(pa.float32(), k), n,
                                     [pa.py_buffer(self.validity(n))], children=[child])

    def struct(self):
        import pyarrow as pa

        n = self.size // 16
        a = pa.Array.from_buffers(pa.int64(), n, [pa.py_buffer(self.validity(n)),
                                                  pa.py_buffer(self.bytes_(n * 8))])
        b = pa.Array.from_buffers(pa.float64(), n, [None, pa.py_buffer(self.bytes_(n * 8))])
        typ = pa.struct([pa.field("a", pa.int64()), pa.field("b", pa.float64())])
        return pa.StructArray.from_buffers(typ, n, [pa.py_buffer(self.validity(n))], children=[a, b])

    def temporal(self, typ, width, f):
        np = self.np
        return self.prim(typ, width, values=lambda n: f(np.arange(n, dtype=np.int64)).astype(
            np.int64 if width == 8 else np.int32).view(np.uint8))


def cases(quick):
    """(name, what, builder(gen) -> ("pa", array) | ("pl", polars frame), batches)."""
    import numpy as np
    import pyarrow as pa

    def P(f):
        return lambda g: ("pa", f(g))

    def decimal(g, typ=pa.decimal128(38, 4), words=2):
        def vals(n):
            v = np.arange(n, dtype=np.int64) * 37 - n
            out = np.empty((n, words), dtype=np.int64)
            out[:, 0] = v
            out[:, 1:] = (v >> 63)[:, None]
            return out.view(np.uint8).ravel()
        return g.prim(typ, 8 * words, values=vals)

    def polars_frame(g, kind):
        import polars as pl

        if kind == "string_view":
            return pl.from_arrow(pa.table({"c": g.strings(pa.large_string())}))
        if kind == "categorical":
            return pl.from_arrow(pa.table({"c": g.dictionary(pa.uint32(), pa.large_string())})) \
                .with_columns(pl.col("c").cast(pl.String).cast(pl.Categorical))
        if kind.startswith("enum"):
            k = 200 if kind == "enum_u8" else 1000
            cats = [f"category_{i:06d}" for i in range(k)]
            d = g.dictionary(pa.uint32(), pa.large_string(), k=k)
            return pl.from_arrow(pa.table({"c": d})).with_columns(
                pl.col("c").cast(pl.String).cast(pl.Enum(cats)))
        raise ValueError(kind)

    def decimal_a16(g):
        # pyarrow aligns IPC buffers to 8 bytes, so a decimal128 buffer lands at 8 mod 16 or 0 mod
        # 16 by chance; polars needs 16 (Rust's i128). A leading bool column of 128k+64 rows (no
        # validity) moves the next buffers by 8 mod 16: write_case tries both and keeps the aligned one.
        n = (g.size // 16) // 128 * 128 + 64
        g.size = n * 16
        dec = decimal(g)
        pad = pa.Array.from_buffers(pa.bool_(), n, [None, pa.py_buffer(g.bytes_(n // 8))])
        return ("pa_tables", [pa.table({"c": dec}), pa.table({"pad": pad, "c": dec})])

    def mixed(g, variant):
        # the seed's frame: f64, i64, timestamp with tz, a string and a categorical column, ~60 B
        # a row; in the layout df.to_arrow() gives (large_string), normalized, and as polars writes
        import polars as pl

        n = g.size // 60
        t = pa.table({
            "f": pa.Array.from_buffers(pa.float64(), n, [None, pa.py_buffer(g.bytes_(n * 8))]),
            "i": pa.Array.from_buffers(pa.int64(), n, [pa.py_buffer(g.validity(n)), pa.py_buffer(g.bytes_(n * 8))]),
            "t": pa.array(np.arange(n, dtype=np.int64) * 1000 + 1_600_000_000_000_000, pa.timestamp("us", tz="UTC")),
            "s": g.strings(pa.large_string(), n=n),
            "c": g.dictionary(pa.uint32(), pa.large_string(), k=50, n=n)})
        if variant == "to_arrow":
            return ("pa_table", t)
        if variant == "normalized":
            return ("pa_table", normalize_for_sharing(t))
        return ("pl", pl.from_arrow(t))

    one = [
        ("bool", "bool", P(lambda g: g.boolean())),
        ("int8", "int8", P(lambda g: g.prim(pa.int8(), 1))),
        ("int16", "int16", P(lambda g: g.prim(pa.int16(), 2))),
        ("int32", "int32", P(lambda g: g.prim(pa.int32(), 4))),
        ("int64", "int64", P(lambda g: g.prim(pa.int64(), 8))),
        ("int64_nonull", "int64, no validity bitmap", P(lambda g: g.prim(pa.int64(), 8, nulls=False))),
        ("uint8", "uint8", P(lambda g: g.prim(pa.uint8(), 1))),
        ("uint16", "uint16", P(lambda g: g.prim(pa.uint16(), 2))),
        ("uint32", "uint32", P(lambda g: g.prim(pa.uint32(), 4))),
        ("uint64", "uint64", P(lambda g: g.prim(pa.uint64(), 8))),
        ("float16", "halffloat", P(lambda g: g.prim(pa.float16(), 2))),
        ("float32", "float", P(lambda g: g.prim(pa.float32(), 4))),
        ("float64", "double", P(lambda g: g.prim(pa.float64(), 8))),
        ("decimal128", "decimal128(38, 4)", P(decimal)),
        ("decimal128_a16", "decimal128(38, 4), buffer 16-aligned in the file (as the engine's 64-byte"
         " alignment gives)", decimal_a16),
        ("decimal256", "decimal256(40, 4)", P(lambda g: decimal(g, pa.decimal256(40, 4), 4))),
        ("date32", "date32[day]", P(lambda g: g.temporal(pa.date32(), 4, lambda a: a % 40000))),
        ("date64", "date64[ms]", P(lambda g: g.temporal(pa.date64(), 8, lambda a: (a % 40000) * 86400000))),
        ("time32", "time32[ms]", P(lambda g: g.temporal(pa.time32("ms"), 4, lambda a: a % 86400000))),
        ("time64", "time64[us]", P(lambda g: g.temporal(pa.time64("us"), 8, lambda a: a % 86400000000))),
        ("time64_ns", "time64[ns]", P(lambda g: g.temporal(pa.time64("ns"), 8, lambda a: a % 86400000000 * 1000))),
        ("timestamp", "timestamp[us]", P(lambda g: g.temporal(pa.timestamp("us"), 8, lambda a: a * 1000 + 1.6e15))),
        ("timestamp_tz", "timestamp[ns, tz=UTC]",
         P(lambda g: g.temporal(pa.timestamp("ns", tz="UTC"), 8, lambda a: a * 1000003 + 1.6e18))),
        ("duration", "duration[us]", P(lambda g: g.temporal(pa.duration("us"), 8, lambda a: a * 7))),
        ("string", "string", P(lambda g: g.strings(pa.string()))),
        ("large_string", "large_string", P(lambda g: g.strings(pa.large_string()))),
        ("string_view", "string_view (pyarrow cast)", P(lambda g: g.strings(pa.string_view()))),
        ("pl_string", "polars String as pl.write_ipc writes it (string_view)",
         lambda g: ("pl", polars_frame(g, "string_view"))),
        ("binary", "binary", P(lambda g: g.strings(pa.binary(), letters=False))),
        ("large_binary", "large_binary", P(lambda g: g.strings(pa.large_binary(), letters=False))),
        ("binary_view", "binary_view (pyarrow cast)", P(lambda g: g.strings(pa.binary_view(), letters=False))),
        ("fixed_size_binary", "fixed_size_binary[16]",
         P(lambda g: g.prim(pa.binary(16), 16))),
        ("dict_int8", "dictionary<values=string, indices=int8> (100 values)",
         P(lambda g: g.dictionary(pa.int8(), pa.string(), k=100))),
        ("dict_int16", "dictionary<values=string, indices=int16>", P(lambda g: g.dictionary(pa.int16(), pa.string()))),
        ("dict_int32", "dictionary<values=string, indices=int32> (pyarrow's dictionary_encode)",
         P(lambda g: g.dictionary(pa.int32(), pa.string()))),
        ("dict_int64", "dictionary<values=string, indices=int64>", P(lambda g: g.dictionary(pa.int64(), pa.string()))),
        ("dict_uint32_large", "dictionary<values=large_string, indices=uint32>",
         P(lambda g: g.dictionary(pa.uint32(), pa.large_string()))),
        ("pl_categorical", "polars Categorical as written by polars",
         lambda g: ("pl", polars_frame(g, "categorical"))),
        ("pl_enum_u8", "polars Enum (200 categories) as written by polars",
         lambda g: ("pl", polars_frame(g, "enum_u8"))),
        ("pl_enum_u16", "polars Enum (1000 categories) as written by polars",
         lambda g: ("pl", polars_frame(g, "enum_u16"))),
        ("list", "list<item: int64>", P(lambda g: g.lists(False))),
        ("large_list", "large_list<item: int64>", P(lambda g: g.lists(True))),
        ("fixed_size_list", "fixed_size_list<item: float>[16]", P(lambda g: g.fixed_list())),
        ("struct", "struct<a: int64, b: double>", P(lambda g: g.struct())),
        ("mixed_to_arrow", "f64, i64, timestamp[us, tz=UTC], large_string, dictionary<large_string, uint32>"
         " (the layout polars' df.to_arrow() gives); type shown: the dictionary column", lambda g: mixed(g, "to_arrow")),
        ("mixed_normalized", "the same after normalize_for_sharing()", lambda g: mixed(g, "normalized")),
        ("mixed_polars", "the same written by polars' write_ipc", lambda g: mixed(g, "polars")),
    ]
    many_names = ("bool", "int64", "float64", "timestamp_tz", "string", "large_string", "string_view",
                  "dict_uint32_large", "pl_categorical", "large_list", "struct")
    if quick:
        many_names = ("float64", "large_string", "string_view", "pl_categorical")
    if quick:  # one or two per family (process start-up, ~0.7 s per worker, dominates at 32 MiB)
        keep = ("bool", "int64", "float64", "decimal128_a16", "time64", "timestamp_tz", "string",
                "large_string", "string_view", "pl_string", "fixed_size_binary", "dict_int32",
                "pl_categorical", "pl_enum_u8", "list", "large_list", "struct", "mixed_to_arrow",
                "mixed_normalized", "mixed_polars")
        one = [c for c in one if c[0] in keep]
    out = [(name, what, b, 1) for name, what, b in one]
    out += [(name + f"_x{MANY_BATCHES}", what + f", {MANY_BATCHES} record batches", b, MANY_BATCHES)
            for name, what, b in one if name in many_names]
    return out


def write_case(path, builder, batches, size):
    import pyarrow as pa
    import pyarrow.ipc  # noqa: F401

    g = Gen(size)
    kind, obj = builder(g)
    if kind == "pa_table":
        with pa.ipc.new_file(path, obj.schema) as w:
            for b in obj.to_batches(max_chunksize=-(-obj.num_rows // batches)):
                w.write_batch(b)
        rows, table = obj.num_rows, None
    elif kind == "pa_tables":
        for table in obj:
            with pa.ipc.new_file(path, table.schema) as w:
                w.write_table(table)
            t = pa.ipc.open_file(pa.memory_map(path)).read_all()
            if t.column("c").chunk(0).buffers()[1].address % 16 == 0:
                break
        rows = table.num_rows
    elif kind == "pl":
        rows = obj.height
        obj.write_ipc(path, compression="uncompressed",
                      record_batch_size=-(-rows // batches) if batches > 1 else rows)
        table = None
    else:
        view = pa.types.is_string_view(obj.type) or pa.types.is_binary_view(obj.type)
        if view and batches > 1:
            # pyarrow's IPC writer writes every variadic data buffer a sliced view array
            # references, whole, in every batch (64 batches -> 64 copies of the data): slice the
            # large type and cast each slice, as a writer producing batches would
            target = obj.type
            obj = obj.cast(pa.large_string() if pa.types.is_string_view(target) else pa.large_binary())
        table = pa.table({"c": obj})
        with pa.ipc.new_file(path, table.schema if not (view and batches > 1)
                             else pa.schema([pa.field("c", target)])) as w:
            for b in table.to_batches(max_chunksize=-(-table.num_rows // batches)):
                if view and batches > 1:
                    b = pa.record_batch([pa.concat_arrays([b.column(0)]).cast(target)], names=["c"])
                w.write_batch(b)
        rows = table.num_rows
    t = pa.ipc.open_file(pa.memory_map(path)).read_all()
    info = {"rows": rows, "file_bytes": os.path.getsize(path), "column_bytes": t.get_total_buffer_size(),
            "stored_type": str(t.schema.field("c").type), "stored_batches": t.column("c").num_chunks,
            "other_columns": [f.name for f in t.schema if f.name != "c"]}
    del t, table, obj
    return info


# ---------------------------------------------------------------------------------------------
# the driver


def run_worker(args):
    p = subprocess.run([sys.executable, os.path.abspath(__file__)] + args, capture_output=True, text=True)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    res = json.loads(lines[-1]) if lines else {}
    res["returncode"] = p.returncode
    if p.returncode != 0:
        res["stderr"] = p.stderr[-400:]
    return res


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def machine(load_start, loads):
    import numpy
    import polars
    import pyarrow

    return {"date": utc_now(), "cpus": os.cpu_count(), "cpu": cpu_model(), "kernel": platform.release(),
            "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
            "python": platform.python_version(),
            "versions": {"numpy": numpy.__version__, "pyarrow": pyarrow.__version__,
                         "polars": polars.__version__},
            "loadavg_at_start": load_start, "loadavg_at_end": os.getloadavg(),
            "loadavg_1min_during": {"min": min(loads), "median": statistics.median(loads),
                                    "max": max(loads)}}


def fmt_ratio(x):
    return "" if x is None else f"{x:.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--size-mib", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default="")
    ap.add_argument("--dir", default="/dev/shm/dafstore-bench-tables")
    ap.add_argument("--no-lifetime", action="store_true")
    ap.add_argument("--out-prefix", default=str(ROOT / "bench" / "results" / "tables_layout"))
    ap.add_argument("--worker", nargs=2, metavar=("READER", "PATH"))
    ap.add_argument("--lifetime-worker", nargs=2, metavar=("MODE", "PATH"))
    a = ap.parse_args()
    if a.worker:
        return worker(*a.worker)
    if a.lifetime_worker:
        return lifetime_worker(*a.lifetime_worker)

    size = (a.size_mib or (32 if a.quick else 200)) * MIB
    d = Path(a.dir)
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    load_start, loads, started = os.getloadavg(), [], time.time()
    all_cases = cases(a.quick)
    if a.only:
        want = set(a.only.split(","))
        all_cases = [c for c in all_cases if c[0] in want]
    results = []
    try:
        for i, (name, what, builder, batches) in enumerate(all_cases):
            path = str(d / f"{name}.arrow")
            info = write_case(path, builder, batches, size)
            runs = {r: [] for r in READERS}
            for rnd in range(a.rounds):
                order = READERS[rnd % len(READERS):] + READERS[:rnd % len(READERS)]
                for r in order:
                    if r == "pl_arrow_re" and batches == 1:
                        continue  # one chunk: rechunk=True has nothing to do (checked: same numbers)
                    loads.append(os.getloadavg()[0])
                    runs[r].append(run_worker(["--worker", r, path]))
            os.unlink(path)
            row = {"case": name, "what": what, "batches_written": batches, **info, "readers": {}}
            for r, rs in runs.items():
                ok = [x for x in rs if "error" not in x and x["returncode"] == 0]
                m = {k: med([x.get(k) for x in ok]) for k in
                     ("rss_anon_growth", "anon_growth", "pss_growth", "file_pss", "pa_pool_growth", "seconds")}
                m["ratio"] = m["rss_anon_growth"] / info["file_bytes"] if ok else None
                m["smaps_ratio"] = m["anon_growth"] / info["file_bytes"] if ok else None
                m["rounds_ok"] = len(ok)
                for k in ("polars_dtype", "n_chunks", "arrow_type", "batches", "align"):
                    if ok and k in ok[0]:
                        m[k] = ok[0][k]
                errs = [x.get("error") or x.get("stderr") for x in rs if x not in ok]
                if errs:
                    m["errors"] = errs[:1]
                m["rounds"] = rs
                row["readers"][r] = m
            results.append(row)
            rd = row["readers"]
            print(f"[{i + 1}/{len(all_cases)}] {name:24s} {info['file_bytes'] / MIB:7.1f} MiB  "
                  + "  ".join(f"{r}={fmt_ratio(rd[r]['ratio']) or ('ERR' if rd[r]['rounds'] else '-')}"
                             for r in READERS)
                  + f"  ({time.time() - started:.0f} s)", file=sys.stderr, flush=True)
        lifetime = []
        if not a.no_lifetime:
            import pyarrow as pa
            import pyarrow.ipc  # noqa: F401

            path = str(d / "lifetime.arrow")
            n = LIFETIME_FILE_ROWS
            t = pa.table({"i": pa.array(range(n), pa.int64()),
                          "s": pa.array([f"row {k}" for k in range(n)], pa.large_string()),
                          "c": pa.array([f"c{k % 10}" for k in range(n)]).dictionary_encode()
                          .cast(pa.dictionary(pa.uint32(), pa.large_string()))})
            with pa.ipc.new_file(path, t.schema) as w:
                w.write_table(t)
            for mode in ("keep", "close_exported", "memory_map_close", "close_raw"):
                lifetime.append(run_worker(["--lifetime-worker", mode, path]))
                print(f"lifetime {mode}: {lifetime[-1]}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)

    meta = machine(load_start, loads or [load_start[0]])
    meta.update({"size_target_bytes": size, "rounds": a.rounds, "quick": a.quick,
                 "seconds_total": round(time.time() - started, 1), "command": " ".join(sys.argv)})
    out = Path(a.out_prefix)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"machine": meta, "cases": results,
                                                    "lifetime": lifetime}, indent=1) + "\n")
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case", "stored_type", "batches", "rows", "file_bytes", "column_bytes", "reader",
                    "rss_anon_growth", "ratio_rss_anon_to_file", "smaps_anonymous_growth",
                    "ratio_smaps_anon_to_file", "pss_growth", "file_pss", "pa_pool_growth", "seconds",
                    "polars_dtype", "polars_chunks", "min_buffer_alignment", "error"])
        for row in results:
            for r, m in row["readers"].items():
                w.writerow([row["case"], row["stored_type"], row["stored_batches"], row["rows"],
                            row["file_bytes"], row["column_bytes"], r, m["rss_anon_growth"],
                            m["ratio"] and round(m["ratio"], 4), m["anon_growth"],
                            m["smaps_ratio"] and round(m["smaps_ratio"], 4), m["pss_growth"],
                            m["file_pss"], m["pa_pool_growth"], m["seconds"], m.get("polars_dtype"),
                            json.dumps(m.get("n_chunks")), m.get("align"),
                            (m.get("errors") or [""])[0]])
    md = render(meta, results, lifetime)
    out.with_suffix(".md").write_text(md)
    print(md)


def render(meta, results, lifetime):
    v = meta["versions"]
    L = [f"**Machine:** {meta['date']}; {meta['cpus']} CPUs ({meta['cpu']}), "
         f"{meta['memory_bytes'] / (1 << 30):.1f} GiB RAM, Linux {meta['kernel']}; pyarrow {v['pyarrow']}, "
         f"polars {v['polars']}, numpy {v['numpy']}; files on /dev/shm, ~{meta['size_target_bytes'] // MIB} MiB "
         f"each, {meta['rounds']} interleaved rounds, medians; 1-minute load {meta['loadavg_at_start'][0]:.1f} "
         f"at start, {meta['loadavg_1min_during']['min']:.1f}–{meta['loadavg_1min_during']['max']:.1f} during; "
         f"{meta['seconds_total']:.0f} s in all.", "",
         "Anonymous memory growth (RssAnon) of a fresh process ÷ the file's size, per reader; "
         "≈ 0 = mapped, ≈ 1 = copied. `ERR` = the reader refused the file (see the JSON).", "",
         "| case | stored type | MiB | pa mmap | pa foreign | pl.from_arrow (rechunk=False) | "
         "pl.from_arrow (rechunk=True) | pl.from_arrow over foreign | pl.read_ipc | polars dtype | "
         "polars chunks (rechunk=False) | open ms: pa mmap / pl foreign / read_ipc |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in results:
        rd = row["readers"]

        def c(r):
            if not rd[r]["rounds"]:
                return "(same)"
            return fmt_ratio(rd[r]["ratio"]) if rd[r]["ratio"] is not None else "ERR"

        def ms(r):
            s = rd[r]["seconds"]
            return "–" if s is None else f"{s * 1e3:.1f}"

        L.append(f"| {row['case']} | {row['stored_type'].replace('|', '/')} ({row['stored_batches']} "
                 f"batch{'es' if row['stored_batches'] != 1 else ''}) | {row['file_bytes'] / MIB:.0f} | "
                 + " | ".join(c(r) for r in ("pa_mmap", "pa_foreign", "pl_arrow", "pl_arrow_re",
                                              "pl_foreign", "pl_read_ipc"))
                 + f" | {rd['pl_foreign'].get('polars_dtype', '')[:40]} | {rd['pl_foreign'].get('n_chunks', '')} | "
                 f"{ms('pa_mmap')} / {ms('pl_foreign')} / {ms('pl_read_ipc')} |")
    if lifetime:
        L += ["", "Lifetime checks (fresh interpreters):", ""]
        for x in lifetime:
            L.append(f"- `{x.get('mode', '?')}`: " + ", ".join(
                f"{k}={x[k]}" for k in x if k not in ("mode", "stderr")))
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()
