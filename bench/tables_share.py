#!/usr/bin/env python3
"""Sharing one table among 8 processes (issue 17): memory, open latency and publish time of a
dafstore table against the same data as an uncompressed Feather file read by polars and pyarrow.

    /work/main/.venv/bin/python bench/tables_share.py                # ~1 GiB table (8.5 min here, load 3-9)
    /work/main/.venv/bin/python bench/tables_share.py --quick        # ~64 MiB smoke run (2 min)
    options: --size-gib X  --workers N  --mem-rounds N  --open-rounds N  --publish-rounds N
             --phases publish,latency,memory (a subset)  --no-publish  --no-disk  --out-prefix P

It needs an interpreter with dafstore, polars (2.x), pyarrow and numpy (the repository's
`.venv` after `pip install ./bindings/python[test]`).

The data: one polars DataFrame of f64, i64 (~10 % nulls), Datetime(us), Datetime(us,
Europe/Paris), a String column of lengths 0-48 (~5 % nulls) and a Categorical of 1000 values; the
row count is chosen (from a 100k-row sample) so the Arrow file is ~SIZE. It is written once with
`c.write_table("t", df)` into a container on /dev/shm and once with
`df.write_ipc(path, compression="uncompressed")` to /dev/shm.

1. Memory (`--workers` spawned processes per reader, `--mem-rounds` rounds, readers' order rotated
   each round). Each worker imports numpy, pyarrow, polars and dafstore, warms polars' thread pool
   and pyarrow's IPC reader on a tiny table, and says it is ready; the parent then reads every
   worker's baseline from /proc/<pid>/status (RssAnon) and /proc/<pid>/smaps_rollup (Anonymous,
   Pss). The workers open the table one after the other (the parent waits for each), the parent
   measures all of them holding it ("after open"), then they scan every column fully one after
   the other, and the parent measures again ("after scan": the issue's figure). Totals are the sums
   of the workers' growths over their baselines, divided by the file's size; the Rss of each
   worker's map of the file after the scan checks that the scan touched every page.
   Readers: dafstore `c.open_polars`, dafstore `c.open_table` (pyarrow), dafstore `open_table` +
   `pl.from_arrow` without the Categorical column (that column's share), `pl.read_ipc(path)`,
   `pa.ipc.open_file(pa.memory_map(path)).read_all()`, and the latter + `pl.from_arrow(...,
   rechunk=False)`; `pl.read_ipc(..., memory_map=True)` only if polars still has that argument.
   Then one fresh process per column: `c.open_polars` of a one-column table of that column (each
   column is also written as its own table, and the string column once more as `binary_view`),
   scanned: which column polars copies, in bytes per row.
2. Open latency, in this (warm) process, `--open-rounds` rounds, order rotated: each reader's open
   + drop (3 times a round), and open + full scan + drop (once a round); dafstore on a container
   handle opened freshly each round (its open time is its own row); the engine's open alone
   (`_native` `open_table_file`) of the table and of each one-column table. Medians, and ratios as the
   median of the per-round ratios. The first open in a fresh process is the memory workers' (median
   of the workers).
3. Publish time, `--publish-rounds` rounds, order rotated, on /dev/shm and on the disk
   (target/bench-tables): `c.write_table(name, df)` vs `df.write_ipc(path,
   compression="uncompressed")` + fsync vs pyarrow `ipc.new_file` of `df.to_arrow(compat_level=
   newest)` (converted once, not timed) + fsync. The previous output is removed before each write,
   not timed. A breakdown row times the Python side of `write_table` alone (to Arrow, normalize,
   combine_chunks, IPC stream into memory).

Writes bench/results/tables_share.json (everything) and bench/results/tables_share.md (the tables,
also printed). Scratch: a directory under /dev/shm and target/bench-tables, removed at the end,
also on failure.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (  # noqa: E402
    cpu_model, fsync_path, mapping_mem, mem_available, smaps_rollup, status_bytes, utc_now,
)

ROOT = Path(os.path.abspath(__file__)).parent.parent
MIB = 1 << 20
GIB = 1 << 30
TABLE = "t"
CAT = "cat"
COL_PREFIX = "col_"
N_CATEGORIES = 1000
TZ = "Europe/Paris"

# readers: name -> (what, source)   source: "container" or "feather"
READERS = {
    "dafstore_polars": ("dafstore `c.open_polars(name)`", "container"),
    "dafstore_pyarrow": ("dafstore `c.open_table(name)` (pyarrow)", "container"),
    "dafstore_polars_nocat": ("dafstore `open_table` + `pl.from_arrow` without the Categorical", "container"),
    "pl_read_ipc": ("polars `pl.read_ipc(path)`", "feather"),
    "pa_mmap": ("pyarrow `ipc.open_file(pa.memory_map(path)).read_all()`", "feather"),
    "pa_mmap_polars": ("pyarrow mmap + `pl.from_arrow(rechunk=False)`", "feather"),
    "pl_read_ipc_mmap": ("polars `pl.read_ipc(path, memory_map=True)`", "feather"),
}
LATENCY_READERS = ("dafstore_polars", "dafstore_pyarrow", "pa_mmap", "pa_mmap_polars", "pl_read_ipc")
DAFSTORE_READERS = ("dafstore_polars", "dafstore_pyarrow")
PEERS = ("pl_read_ipc", "pa_mmap", "pa_mmap_polars")


# ---------------------------------------------------------------------------------------------
# measuring processes


def proc_mem(pid="self"):
    """RssAnon (status), Anonymous, Pss and Rss (smaps_rollup) of a process, in bytes."""
    r = smaps_rollup(pid)
    return {"rss_anon": status_bytes(pid, "RssAnon"),
            **{k.lower(): r[k] for k in ("Anonymous", "Pss", "Rss") if k in r}}


# ---------------------------------------------------------------------------------------------
# opening and scanning (used by the workers and by the latency phase)


def open_reader(reader, c, cpath, fpath):
    """Opens the table with `reader`; `c` is a dafstore container (or None: opened here)."""
    import polars as pl
    import pyarrow as pa
    import pyarrow.ipc  # noqa: F401

    if reader == "dafstore_polars":
        return c.open_polars(TABLE)
    if reader == "dafstore_pyarrow":
        return c.open_table(TABLE)
    if reader == "dafstore_polars_nocat":
        return pl.from_arrow(c.open_table(TABLE).drop_columns([CAT]), rechunk=False)
    if reader.startswith("dafstore_col:"):  # the one-column table of that column, through polars
        return c.open_polars(COL_PREFIX + reader.split(":", 1)[1])
    if reader.startswith("engine_col:"):  # the engine's open alone (map + decode + validation)
        return c._c.open_table_file(COL_PREFIX + reader.split(":", 1)[1])
    if reader == "dafstore_engine":
        return c._c.open_table_file(TABLE)
    if reader == "pl_read_ipc":
        return pl.read_ipc(fpath)
    if reader == "pl_read_ipc_mmap":
        return pl.read_ipc(fpath, memory_map=True)
    if reader == "pa_mmap":
        return pa.ipc.open_file(pa.memory_map(fpath)).read_all()
    if reader == "pa_mmap_polars":
        return pl.from_arrow(pa.ipc.open_file(pa.memory_map(fpath)).read_all(), rechunk=False)
    raise ValueError(reader)


def scan(obj):
    """Reads every byte of every column (polars: expressions over each column; pyarrow: pc.sum of
    the numeric columns and a reduction over every buffer of the others) and returns a small
    checksum: the sum of the i64 column (equal across readers) and a tuple of the rest."""
    import numpy as np
    import polars as pl
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(obj, pl.DataFrame):
        exprs = []
        for name, dt in obj.schema.items():
            col = pl.col(name)
            if dt in (pl.Float64, pl.Int64):
                exprs.append(col.sum().cast(pl.Float64).alias(name))
            elif isinstance(dt, pl.Datetime):
                exprs.append(col.to_physical().sum().cast(pl.Float64).alias(name))
            elif dt == pl.String:
                # reads every byte of every value; allocates only the boolean result (n/8 bytes)
                exprs.append(col.str.contains("zq#", literal=True).sum().cast(pl.Float64).alias(name))
            elif dt == pl.Binary:
                exprs.append(col.bin.contains(b"zq#").sum().cast(pl.Float64).alias(name))
            elif isinstance(dt, (pl.Categorical, pl.Enum)):
                # the physical codes, summed and maxed in place (no widening copy)
                exprs.append(col.to_physical().sum().cast(pl.Float64).alias(name + "_codes"))
                exprs.append(col.to_physical().max().cast(pl.Float64).alias(name + "_max"))
            else:
                exprs.append(col.len().cast(pl.Float64).alias(name))
        row = obj.select(exprs).row(0, named=True)
        return {"i64": row.get("i64"), "all": round(sum(v or 0 for v in row.values()), 3)}

    def touch(buf):
        if buf is None or buf.size == 0:
            return 0
        a = np.frombuffer(buf, dtype=np.uint8)
        n8 = len(a) // 8 * 8
        x = int(np.bitwise_xor.reduce(a[:n8].view(np.uint64))) if n8 else 0
        return x ^ int(np.bitwise_xor.reduce(a[n8:])) if n8 < len(a) else x

    total, i64 = 0.0, None
    for name in obj.column_names:
        for ch in obj.column(name).chunks:
            t = ch.type
            if pa.types.is_floating(t) or pa.types.is_integer(t):
                s = pc.sum(ch).as_py() or 0
                if name == "i64":
                    i64 = (i64 or 0) + s
                total += s
            elif pa.types.is_timestamp(t):
                total += pc.sum(ch.view(pa.int64())).as_py() or 0
            elif pa.types.is_dictionary(t):
                total += pc.sum(ch.indices).as_py() or 0
                for b in ch.dictionary.buffers():
                    total += touch(b) & 0xFF
                total += touch(ch.buffers()[0]) & 0xFF
            else:
                for b in ch.buffers():
                    total += touch(b) & 0xFF
    return {"i64": float(i64) if i64 is not None else None, "all": round(total, 3)}


# ---------------------------------------------------------------------------------------------
# the worker (a fresh interpreter driven over stdin/stdout)


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def worker(reader, cpath, fpath):
    import numpy as np
    import polars as pl
    import pyarrow as pa
    import pyarrow.compute  # noqa: F401
    import pyarrow.ipc  # noqa: F401

    import dafstore

    # warm-up, identical for every reader: polars' thread pool and pyarrow's IPC reader on a tiny
    # table, so the libraries' own footprint is in the baseline
    small = pl.DataFrame({"a": np.arange(10_000.0), "s": ["x" * 20] * 10_000})
    scan(small)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, small.to_arrow().schema) as w:
        w.write_table(small.to_arrow())
    scan(pl.from_arrow(pa.ipc.open_file(sink.getvalue()).read_all()))
    del small, sink, w
    gc.collect()
    send({"ready": True, "pid": os.getpid(), "package": package_fingerprint()["sha256"]})
    keep = {}
    for line in sys.stdin:
        cmd = line.strip()
        try:
            if cmd == "open":
                out = {}
                c = None
                t0 = time.perf_counter()
                if reader.startswith("dafstore"):
                    a0 = proc_mem()["rss_anon"]
                    c = dafstore.open(cpath)
                    out["container_s"] = time.perf_counter() - t0
                    out["container_rss_anon"] = proc_mem()["rss_anon"] - a0
                t1 = time.perf_counter()
                keep["obj"] = open_reader(reader, c, cpath, fpath)
                out["open_s"] = time.perf_counter() - t1
                keep["c"] = c
                gc.collect()
                send(out)
            elif cmd == "scan":
                t0 = time.perf_counter()
                r = scan(keep["obj"])
                dt = time.perf_counter() - t0
                gc.collect()
                send({"scan_s": dt, "check": r})
            elif cmd == "quit":
                return
            else:
                send({"error": f"unknown command {cmd!r}"})
        except BaseException as e:  # noqa: BLE001 (polars raises pyo3's PanicException)
            send({"error": f"{type(e).__name__}: {e}"[:400]})


# ---------------------------------------------------------------------------------------------
# the data


def build_frame(rows, seed=17):
    """The mixed polars DataFrame (one chunk per column)."""
    import numpy as np
    import polars as pl
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    f64 = rng.standard_normal(rows)
    i64 = rng.integers(-(10**12), 10**12, rows, dtype=np.int64)
    i64_valid = rng.random(rows) >= 0.10
    ts = np.int64(1_600_000_000_000_000) + rng.integers(0, 200 * 86_400 * 10**6, rows, dtype=np.int64)
    ts_tz = np.int64(1_700_000_000_000_000) + rng.integers(0, 200 * 86_400 * 10**6, rows, dtype=np.int64)
    # strings of 0..48 letters (mean 24: about 3 in 4 longer than a view's 12 inline bytes)
    lengths = rng.integers(0, 49, rows, dtype=np.int64)
    offsets = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    letters = rng.integers(97, 123, int(offsets[-1]), dtype=np.uint8)
    valid = rng.random(rows) >= 0.05
    s = pa.LargeStringArray.from_buffers(rows, pa.py_buffer(offsets), pa.py_buffer(letters),
                                         pa.py_buffer(np.packbits(valid, bitorder="little")))
    del letters, offsets, lengths
    cats = [f"category-{k:04d}-" + "abcdefghij"[: k % 11] for k in range(N_CATEGORIES)]
    codes = rng.integers(0, N_CATEGORIES, rows, dtype=np.uint32)
    cat = pa.DictionaryArray.from_arrays(pa.array(codes, pa.uint32()), pa.array(cats, pa.string()))
    df = pl.DataFrame([
        pl.Series("f64", f64),
        pl.from_arrow(pa.array(i64, mask=~i64_valid)).alias("i64"),
        pl.Series("ts", ts).cast(pl.Datetime("us")),
        pl.Series("ts_tz", ts_tz).cast(pl.Datetime("us")).dt.replace_time_zone("UTC").dt.convert_time_zone(TZ),
        pl.from_arrow(s.cast(pa.string_view())).alias("s"),
        pl.from_arrow(cat).alias(CAT),
    ])
    return df


def rows_for(size):
    """Rows for an Arrow file of ~size bytes (as polars writes it), from a 100k-row sample."""
    import io

    n = 100_000
    df = build_frame(n, seed=1)
    b = io.BytesIO()
    df.write_ipc(b, compression="uncompressed")
    per_row = len(b.getvalue()) / n
    return max(10_000, int(size / per_row)), per_row


# ---------------------------------------------------------------------------------------------
# phase 1: memory with N processes


class Workers:
    def __init__(self, reader, n, cpath, fpath):
        self.reader, self.procs = reader, []
        for _ in range(n):
            self.procs.append(subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--worker", reader, cpath, fpath],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                bufsize=1))

    def ask(self, p, cmd):
        if cmd is not None:
            p.stdin.write(cmd + "\n")
            p.stdin.flush()
        while True:
            line = p.stdout.readline()
            if not line:
                p.wait(timeout=30)
                raise RuntimeError(f"worker {p.pid} ({self.reader}) died (rc {p.returncode}): "
                                   f"{p.stderr.read()[-600:]}")
            if line.startswith("{"):
                r = json.loads(line)
                if "error" in r:
                    raise RuntimeError(f"worker {p.pid} ({self.reader}): {r['error']}")
                return r

    def close(self):
        for p in self.procs:
            try:
                if p.poll() is None:
                    p.stdin.write("quit\n")
                    p.stdin.flush()
            except (BrokenPipeError, OSError):
                pass
        for p in self.procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()  # only our own worker, by its Popen handle
                p.wait()


def mem_case(reader, n, cpath, fpath, data_file, file_bytes, rows):
    """Runs `n` workers of `reader`; returns per-worker and total growths."""
    ws = Workers(reader, n, cpath, fpath)
    try:
        readies = [ws.ask(p, None) for p in ws.procs]  # ready
        time.sleep(0.2)
        base = [proc_mem(p.pid) for p in ws.procs]
        opens = [ws.ask(p, "open") for p in ws.procs]
        opened = [proc_mem(p.pid) for p in ws.procs]
        opened_map = [mapping_mem(p.pid, data_file) for p in ws.procs]
        scans = [ws.ask(p, "scan") for p in ws.procs]
        time.sleep(0.2)
        scanned = [proc_mem(p.pid) for p in ws.procs]
        scanned_map = [mapping_mem(p.pid, data_file) for p in ws.procs]
    finally:
        ws.close()

    def grow(after):
        per = [{k: a[k] - b[k] for k in b} for a, b in zip(after, base)]
        tot = {k: sum(x[k] for x in per) for k in per[0]}
        return per, tot

    per_o, tot_o = grow(opened)
    per_s, tot_s = grow(scanned)
    checks = {s["check"]["i64"] for s in scans}  # the float sums depend on chunking: not compared
    res = {
        "reader": reader, "workers": n, "file_bytes": file_bytes, "rows": rows,
        "opened": {"per_worker": per_o, "total": tot_o, "maps": opened_map},
        "scanned": {"per_worker": per_s, "total": tot_s, "maps": scanned_map},
        "ratio_after_open": {k: v / file_bytes for k, v in tot_o.items()},
        "ratio_after_scan": {k: v / file_bytes for k, v in tot_s.items()},
        "map_rss_after_scan_over_file": statistics.median(m["map_rss"] for m in scanned_map) / file_bytes,
        "map_pss_total_after_scan_over_file": sum(m["map_pss"] for m in scanned_map) / file_bytes,
        "anon_per_worker_median_bytes": statistics.median(x["anonymous"] for x in per_s),
        "anon_per_worker_per_row": statistics.median(x["anonymous"] for x in per_s) / rows,
        "first_open_s": [o["open_s"] for o in opens],
        "container_open_s": [o.get("container_s") for o in opens],
        "container_rss_anon": [o.get("container_rss_anon") for o in opens],
        "first_scan_s": [s["scan_s"] for s in scans],
        "check": scans[0]["check"], "checks_agree": len(checks) == 1,
        "packages": sorted({r["package"] for r in readies}),
    }
    return res


def column_case(col, cpath, rows):
    """One fresh process: `c.open_polars` of the one-column table of `col`, then a full scan."""
    data_file = os.path.join(cpath, COL_PREFIX + col + ".arrow")
    fb = os.path.getsize(data_file)
    ws = Workers(f"dafstore_col:{col}", 1, cpath, "-")
    p = ws.procs[0]
    try:
        ws.ask(p, None)
        time.sleep(0.1)
        b = proc_mem(p.pid)
        o_rep = ws.ask(p, "open")
        o, om = proc_mem(p.pid), mapping_mem(p.pid, data_file)
        s_rep = ws.ask(p, "scan")
        time.sleep(0.1)
        s, sm = proc_mem(p.pid), mapping_mem(p.pid, data_file)
    finally:
        ws.close()
    return {"column": col, "file_bytes": fb, "anon_after_open": o["anonymous"] - b["anonymous"],
            "anon_after_scan": s["anonymous"] - b["anonymous"],
            "bytes_per_row_after_open": (o["anonymous"] - b["anonymous"]) / rows,
            "bytes_per_row_after_scan": (s["anonymous"] - b["anonymous"]) / rows,
            "map_rss_after_open_over_file": om["map_rss"] / fb, "map_rss_after_scan_over_file": sm["map_rss"] / fb,
            "first_open_s": o_rep["open_s"], "first_scan_s": s_rep["scan_s"]}


# ---------------------------------------------------------------------------------------------
# phase 2: open latency in this process


def latency_phase(cpath, fpath, rounds, reps, columns, log):
    import dafstore

    samples = {r: {"open": [], "scan": []} for r in LATENCY_READERS}
    samples["container_open"] = {"open": [], "scan": []}
    extra = ["dafstore_engine"] + [f"engine_col:{col}" for col in columns]
    for r in extra:
        samples[r] = {"open": [], "scan": []}
    per_round = []
    for rnd in range(rounds):
        c = dafstore.open(cpath)
        order = list(LATENCY_READERS[rnd % len(LATENCY_READERS):] + LATENCY_READERS[:rnd % len(LATENCY_READERS)])
        rr = {}
        for r in order:
            op, sc = [], []
            for _ in range(reps):
                t0 = time.perf_counter()
                obj = open_reader(r, c, cpath, fpath)
                del obj
                op.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            obj = open_reader(r, c, cpath, fpath)
            scan(obj)
            del obj
            sc.append(time.perf_counter() - t0)
            gc.collect()
            if dafstore.cache_stats()[0] != 0:
                raise RuntimeError(f"{r}: a map stayed live after the drop: {dafstore.cache_stats()}")
            samples[r]["open"] += op
            samples[r]["scan"] += sc
            rr[r] = {"open": statistics.median(op), "scan": sc[0]}
        co = []
        for _ in range(reps):
            t0 = time.perf_counter()
            c2 = dafstore.open(cpath)
            c2.close()
            del c2
            co.append(time.perf_counter() - t0)
        samples["container_open"]["open"] += co
        rr["container_open"] = {"open": statistics.median(co), "scan": None}
        # the engine's own open (map + decode + arrow-rs validation, no pyarrow/polars), whole
        # table and each one-column table
        for r in extra:
            ts = []
            for _ in range(reps if r == "dafstore_engine" else 1):
                t0 = time.perf_counter()
                obj = open_reader(r, c, cpath, fpath)
                del obj
                ts.append(time.perf_counter() - t0)
            samples[r]["open"] += ts
            rr[r] = {"open": statistics.median(ts), "scan": None}
        c.close()
        per_round.append(rr)
        log(f"  latency round {rnd + 1}/{rounds}: " + ", ".join(
            f"{r} {rr[r]['open'] * 1e3:.1f}/{rr[r]['scan'] * 1e3:.0f} ms" for r in LATENCY_READERS))
    med = {r: {k: (statistics.median(v) if v else None) for k, v in s.items()} for r, s in samples.items()}
    ratios = {}
    for ours in DAFSTORE_READERS:
        for peer in ("pa_mmap", "pa_mmap_polars", "pl_read_ipc"):
            for k in ("open", "scan"):
                ratios[f"{ours}/{peer}/{k}"] = statistics.median(
                    x[ours][k] / x[peer][k] for x in per_round)
    return {"samples": samples, "per_round": per_round, "median": med, "ratios": ratios,
            "rounds": rounds, "reps_open_per_round": reps}


# ---------------------------------------------------------------------------------------------
# phase 3: publish time


def publish_phase(df, shm_dir, disk_dir, rounds, with_disk, log):
    import numpy as np
    import polars as pl
    import pyarrow as pa
    import pyarrow.ipc  # noqa: F401

    import dafstore

    tbl = df.to_arrow(compat_level=pl.CompatLevel.newest())
    locs = {"shm": Path(shm_dir)}
    if with_disk:
        locs["disk"] = Path(disk_dir)
    conts = {}
    for loc, d in locs.items():
        d.mkdir(parents=True, exist_ok=True)
        conts[loc] = dafstore.create(str(d / "pub-container"))

    def dafstore_write(loc):
        c = conts[loc]
        if "pub" in c:
            c.remove("pub")
        t0 = time.perf_counter()
        c.write_table("pub", df)
        return time.perf_counter() - t0, {}

    def polars_write(loc):
        p = locs[loc] / "pub_polars.arrow"
        p.unlink(missing_ok=True)
        t0 = time.perf_counter()
        df.write_ipc(p, compression="uncompressed")
        t1 = time.perf_counter()
        fsync_path(p)
        t2 = time.perf_counter()
        return t2 - t0, {"write": t1 - t0, "fsync": t2 - t1, "bytes": p.stat().st_size}

    def pyarrow_write(loc):
        p = locs[loc] / "pub_pyarrow.arrow"
        p.unlink(missing_ok=True)
        t0 = time.perf_counter()
        with pa.OSFile(str(p), "wb") as sink:
            with pa.ipc.new_file(sink, tbl.schema) as w:
                w.write_table(tbl)
        t1 = time.perf_counter()
        fsync_path(p)
        t2 = time.perf_counter()
        return t2 - t0, {"write": t1 - t0, "fsync": t2 - t1, "bytes": p.stat().st_size}

    def prep_only(loc):
        # the Python side of c.write_table alone, as the installed _container.py does it
        from dafstore import _container as dc

        t0 = time.perf_counter()
        if hasattr(dc, "_as_arrow_stream"):  # write_table_stream: a C stream of one batch
            reader = dc._as_arrow_stream(df)
            t1 = time.perf_counter()
            del reader
            return t1 - t0, {"as_arrow_stream": t1 - t0}
        t = dc._as_arrow_table(df)  # the first version: an in-memory IPC stream
        t1 = time.perf_counter()
        t = dc.normalize_for_sharing(t)
        t2 = time.perf_counter()
        t = t.combine_chunks()
        t3 = time.perf_counter()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, t.schema) as w:
            w.write_table(t)
        stream = np.frombuffer(sink.getvalue(), dtype=np.uint8)
        t4 = time.perf_counter()
        n = stream.nbytes
        del stream, sink, t
        return t4 - t0, {"to_arrow": t1 - t0, "normalize": t2 - t1, "combine_chunks": t3 - t2,
                         "ipc_stream": t4 - t3, "stream_bytes": n}

    methods = [("dafstore_write_table", dafstore_write), ("polars_write_ipc_fsync", polars_write),
               ("pyarrow_new_file_fsync", pyarrow_write)]
    cases = [(loc, name, f) for loc in locs for name, f in methods] + [("shm", "dafstore_prep_only", prep_only)]
    samples = {f"{loc}/{name}": [] for loc, name, _ in cases}
    details = {k: [] for k in samples}
    per_round = []
    try:
        for rnd in range(rounds):
            order = cases[rnd % len(cases):] + cases[:rnd % len(cases)]
            rr = {}
            for loc, name, f in order:
                gc.collect()
                dt, det = f(loc)
                samples[f"{loc}/{name}"].append(dt)
                details[f"{loc}/{name}"].append(det)
                rr[f"{loc}/{name}"] = dt
            per_round.append(rr)
            log(f"  publish round {rnd + 1}/{rounds}: " + ", ".join(f"{k} {v:.2f} s" for k, v in rr.items()))
        sizes = {loc: conts[loc].info("pub").bytes for loc in locs}
    finally:
        for loc, d in locs.items():
            try:
                conts[loc].close()
            except Exception:  # noqa: BLE001
                pass
            shutil.rmtree(d, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in samples.items()}
    ratios = {}
    for loc in locs:
        for peer in ("polars_write_ipc_fsync", "pyarrow_new_file_fsync"):
            ratios[f"{loc}/dafstore_write_table/{peer}"] = statistics.median(
                x[f"{loc}/dafstore_write_table"] / x[f"{loc}/{peer}"] for x in per_round)
        ratios[f"{loc}/dafstore_prep_only/dafstore_write_table"] = statistics.median(
            x["shm/dafstore_prep_only"] / x[f"{loc}/dafstore_write_table"] for x in per_round)
    return {"samples": samples, "details": details, "per_round": per_round, "median": med,
            "ratios": ratios, "dafstore_file_bytes": sizes, "rounds": rounds}


# ---------------------------------------------------------------------------------------------
# machine, rendering


def package_fingerprint():
    """Where dafstore is imported from and a hash of its extension and Python layer (the installed
    package may be replaced while a run goes on: the workers report theirs, compared at the end)."""
    import hashlib

    import dafstore

    d = os.path.dirname(dafstore.__file__)
    h = hashlib.sha256()
    for f in sorted(os.listdir(d)):
        if f.endswith((".so", ".py")):
            with open(os.path.join(d, f), "rb") as fh:
                h.update(f.encode() + fh.read())
    return {"path": d, "sha256": h.hexdigest()[:16],
            "write_table": "C stream (write_table_stream)" if hasattr(dafstore._container, "_as_arrow_stream")
            else "in-memory IPC stream (write_table_ipc)"}


def machine_info(load_start, size_bytes):
    import numpy
    import polars
    import pyarrow

    import dafstore

    return {"date": utc_now(), "cpus": os.cpu_count(), "cpu": cpu_model(), "kernel": platform.release(),
            "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
            "mem_available_at_start": None, "python": platform.python_version(),
            "versions": {"numpy": numpy.__version__, "pyarrow": pyarrow.__version__,
                         "polars": polars.__version__, "dafstore": getattr(dafstore, "__version__", "?")},
            "dafstore_package": package_fingerprint(),
            "loadavg_at_start": load_start, "size_target_bytes": size_bytes}


def render(res):
    m = res["machine"]
    v = m["versions"]
    L = [f"**Machine:** {m['date']}; {m['cpus']} CPUs ({m['cpu']}), {m['memory_bytes'] / GIB:.1f} GiB RAM, "
         f"Linux {m['kernel']}; Python {m['python']}, dafstore {v['dafstore']}, polars {v['polars']}, "
         f"pyarrow {v['pyarrow']}, numpy {v['numpy']}; dafstore package `{m['dafstore_package']['path']}` "
         f"(sha256 {m['dafstore_package']['sha256']}, write_table via {m['dafstore_package']['write_table']}"
         f"{'' if m.get('package_consistent', True) else '; **the workers imported another build**'}); 1-minute load {m['loadavg_at_start'][0]:.2f} at start, "
         f"{m['loadavg_at_end'][0]:.2f} at end; {m['seconds_total']:.0f} s in all. Command: `{m['command']}`.", ""]
    d = res["data"]
    L += [f"**Data:** {d['rows']:,} rows; columns {', '.join(f'`{k}` {t}' for k, t in d['stored_types'].items())}. "
          f"dafstore file {d['container_file_bytes'] / MIB:.1f} MiB (1 record batch), Feather (polars "
          f"`write_ipc`, uncompressed) {d['feather_bytes'] / MIB:.1f} MiB ({d['feather_batches']} record "
          f"batch{'es' if d['feather_batches'] != 1 else ''}).", ""]
    mem = res.get("memory")
    if mem:
        L += [f"### 1. Memory: {mem['workers']} processes hold the table (sums over the processes of the "
              "growth over each one's baseline, ÷ the file's size; medians over "
              f"{mem['rounds']} rounds)", "",
              "| reader | file | total PSS ÷ file, after open | total Anonymous ÷ file, after open | "
              "**total PSS ÷ file, after scan** | of which the file's maps | **total Anonymous ÷ file, after scan** | total RssAnon ÷ file | "
              "Anonymous per process, MiB | file pages touched per process by the open / after the scan (map Rss ÷ file) | "
              "first open in a fresh process, ms (median) | first full scan, ms (median) | ≤ 1.1× ? |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r, x in mem["readers"].items():
            if "error" in x:
                L.append(f"| {READERS[r][0]} | {READERS[r][1]} | {x['error']} ||||||||||||")
                continue
            ok = x["pss_scan"] <= 1.1 and x["anon_scan"] <= 1.1
            L.append(f"| {READERS[r][0]} | {READERS[r][1]} ({x['file_bytes'] / MIB:.0f} MiB) | "
                     f"{x['pss_open']:.2f} | {x['anon_open']:.2f} | **{x['pss_scan']:.2f}** | {x['map_pss_scan']:.2f} | "
                     f"**{x['anon_scan']:.2f}** | {x['rss_anon_scan']:.2f} | {x['anon_per_worker_mib']:.1f} | "
                     f"{x['map_touch_open']:.2f} / {x['map_touch']:.2f} | {x['first_open_ms']:.1f} | {x['first_scan_ms']:.0f} | "
                     f"{'yes' if ok else '**no**'} |")
        for r in mem.get("skipped", {}):
            L.append(f"| {READERS[r][0]} | – | not run: {mem['skipped'][r]} ||||||||||||")
        sums = {x.get("i64_sum") for x in mem["readers"].values() if "error" not in x}
        L += ["", f"Every reader read the same data: the sum of the `i64` column is "
              f"{'the same for every reader' if len(sums) == 1 else '**not** the same: ' + str(sums)}."]
        cat = mem.get("categorical")
        if cat:
            L += ["", f"The Categorical column: polars converts it into its own categories on every open. "
                  f"Expected copy 4 B × {d['rows']:,} rows = {cat['expected_per_process_mib']:.1f} MiB a process, "
                  f"{cat['expected_total_over_file']:.2f}× the file over {mem['workers']} processes; measured "
                  f"(Anonymous, `c.open_polars` minus the same without that column): "
                  f"{cat['measured_total_over_file']:.2f}× the file ({cat['measured_per_process_mib']:.1f} MiB a process)."]
        cols = mem.get("columns")
        if cols:
            lat = res.get("latency", {}).get("median", {})
            L += ["", "Per column: each column also written as its own one-column table; one fresh process "
                  "per column opens it with `c.open_polars` and scans it (Anonymous growth), and the warm "
                  "process times the engine's own open of it (`_native` `open_table_file`: map + decode + "
                  "arrow-rs validation, no pyarrow or polars).", "",
                  "| column | stored type | file MiB | Anonymous after open, B/row | after scan, B/row | after scan, MiB | "
                  "file pages touched by the open | engine open, warm, ms | `open_polars` in a fresh process, ms |",
                  "|---|---|---|---|---|---|---|---|---|"]
            for x in cols:
                eo = lat.get(f"engine_col:{x['column']}", {}).get("open")
                L.append(f"| `{x['column']}` | {d['column_tables'][x['column']]} | {x['file_bytes'] / MIB:.1f} | "
                         f"{x['bytes_per_row_after_open']:.2f} | {x['bytes_per_row_after_scan']:.2f} | "
                         f"{x['anon_after_scan'] / MIB:.1f} | {x['map_rss_after_open_over_file']:.2f} | "
                         f"{'–' if eo is None else f'{eo * 1e3:.2f}'} | {x['first_open_s'] * 1e3:.1f} |")
    lat = res.get("latency")
    if lat:
        L += ["", f"### 2. Open latency, warm process ({lat['rounds']} interleaved rounds; open: "
              f"{lat['reps_open_per_round']} a round per reader, medians)", "",
              "`open` = open + drop (for the mapping readers nothing is read but the metadata; "
              "`pl.read_ipc` reads and copies everything); `open + scan` = open, read every column "
              "fully, drop (the mapping readers then fault in every page).", "",
              "| reader | open, ms | open + full scan, ms |", "|---|---|---|"]
        names = {**{r: READERS[r][0] for r in LATENCY_READERS}, "container_open": "`dafstore.open(path)` + close (container handle alone)",
                 "dafstore_engine": "dafstore engine's open alone (map + decode + validation; `_native` `open_table_file`)"}
        for r, x in lat["median"].items():
            if r.startswith("engine_col:"):
                continue
            sc = "–" if x["scan"] is None else f"{x['scan'] * 1e3:.0f}"
            L.append(f"| {names[r]} | {x['open'] * 1e3:.2f} | {sc} |")
        L += ["", "Ratios (dafstore ÷ peer, median of the per-round ratios; < 1 = dafstore faster):", "",
              "| dafstore reader | peer | open | open + full scan |", "|---|---|---|---|"]
        for ours in DAFSTORE_READERS:
            for peer in ("pa_mmap", "pa_mmap_polars", "pl_read_ipc"):
                L.append(f"| {READERS[ours][0]} | {READERS[peer][0]} | {lat['ratios'][f'{ours}/{peer}/open']:.2f} | "
                         f"{lat['ratios'][f'{ours}/{peer}/scan']:.2f} |")
    pub = res.get("publish")
    if pub:
        L += ["", f"### 3. Publish time ({pub['rounds']} interleaved rounds; median, and min–max over the rounds)", "",
              "| where | `c.write_table(name, df)`, s | polars `write_ipc` + fsync, s | pyarrow `ipc.new_file` + fsync, s | "
              "ratio vs polars: median of per-round ratios / ratio of medians | ratio vs pyarrow: the same |",
              "|---|---|---|---|---|---|"]

        def cell(k):
            v = pub["samples"][k]
            return f"{pub['median'][k]:.2f} ({min(v):.2f}–{max(v):.2f})"

        for loc in ("shm", "disk"):
            k = f"{loc}/dafstore_write_table"
            if k not in pub["median"]:
                continue
            kp, ka = f"{loc}/polars_write_ipc_fsync", f"{loc}/pyarrow_new_file_fsync"
            L.append(f"| {loc} | {cell(k)} | {cell(kp)} | {cell(ka)} | "
                     f"{pub['ratios'][f'{loc}/dafstore_write_table/polars_write_ipc_fsync']:.2f} / "
                     f"{pub['median'][k] / pub['median'][kp]:.2f} | "
                     f"{pub['ratios'][f'{loc}/dafstore_write_table/pyarrow_new_file_fsync']:.2f} / "
                     f"{pub['median'][k] / pub['median'][ka]:.2f} |")
        br = pub["details"].get("shm/dafstore_prep_only")
        if br:
            keys = [k for k in br[0] if k != "stream_bytes"]
            meds = {k: statistics.median(x[k] for x in br) for k in keys}
            L += ["", f"Where `write_table`'s time goes (shm): the Python side alone (`{pub['median']['shm/dafstore_prep_only']:.2f}` s, "
                  f"{pub['ratios']['shm/dafstore_prep_only/dafstore_write_table']:.2f} of the whole): "
                  + ", ".join(f"{k} {meds[k]:.3f} s" for k in keys)
                  + "; the rest is the engine (reading the batches, writing the file with its CRC-32C, "
                  "fsync, publish)."]
        for loc in ("shm", "disk"):
            k = f"{loc}/polars_write_ipc_fsync"
            if k in pub["details"]:
                fs = statistics.median(x["fsync"] for x in pub["details"][k])
                fs2 = statistics.median(x["fsync"] for x in pub["details"][f"{loc}/pyarrow_new_file_fsync"])
                L.append(f"\nfsync alone ({loc}): polars file {fs:.3f} s, pyarrow file {fs2:.3f} s.")
    return "\n".join(L) + "\n"


# ---------------------------------------------------------------------------------------------
# the driver


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def on_term(signum, frame):
    raise SystemExit(128 + signum)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-gib", type=float, default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--mem-rounds", type=int, default=2)
    ap.add_argument("--open-rounds", type=int, default=None)
    ap.add_argument("--publish-rounds", type=int, default=5)
    ap.add_argument("--no-publish", action="store_true")
    ap.add_argument("--phases", default="publish,latency,memory",
                    help="comma-separated subset of publish,latency,memory (default: all three)")
    ap.add_argument("--no-disk", action="store_true")
    ap.add_argument("--out-prefix", default=str(ROOT / "bench" / "results" / "tables_share"))
    ap.add_argument("--worker", nargs=3, metavar=("READER", "CONTAINER", "FEATHER"))
    a = ap.parse_args()
    if a.worker:
        return worker(*a.worker)
    signal.signal(signal.SIGTERM, on_term)

    size = int((a.size_gib if a.size_gib is not None else (1 / 16 if a.quick else 1.0)) * GIB)
    open_rounds = a.open_rounds or (5 if a.quick else 7)
    started, load_start = time.time(), os.getloadavg()
    import numpy as np  # noqa: F401
    import polars as pl
    import pyarrow as pa
    import pyarrow.ipc  # noqa: F401

    import dafstore

    meta = machine_info(load_start, size)
    meta["mem_available_at_start"] = mem_available()
    # the whole run's peak: the two files + the frame and write_table's stream in this process +
    # N polars copies (the pl.read_ipc case); scale down if that does not fit
    need = lambda s: s * (3.5 + 2 + a.workers * 1.15) + 2 * GIB  # noqa: E731
    avail, shm_free = mem_available(), shutil.disk_usage("/dev/shm").free
    if need(size) > avail or 4 * size > shm_free:  # /dev/shm: 3.5 files + publish outputs
        new = int(min((avail - 2 * GIB) / (5.5 + a.workers * 1.15), shm_free / 4))
        log(f"NOTE: {size / GIB:.2f} GiB does not fit (MemAvailable {avail / GIB:.1f} GiB, /dev/shm free "
            f"{shm_free / GIB:.1f} GiB, need ~{need(size) / GIB:.1f} GiB): scaled down to {new / GIB:.2f} GiB")
        size = new
        meta["scaled_down_to_bytes"] = size
    shm_dir = tempfile.mkdtemp(prefix="dafstore-bench-share-", dir="/dev/shm")
    disk_dir = ROOT / "target" / "bench-tables"
    res = {"machine": meta}
    try:
        # ---- data
        rows, per_row = rows_for(size)
        log(f"building {rows:,} rows (~{per_row:.1f} B a row as polars writes it) ...")
        t0 = time.time()
        df = build_frame(rows)
        log(f"  built in {time.time() - t0:.1f} s; schema {df.schema}")
        cpath = os.path.join(shm_dir, "container")
        fpath = os.path.join(shm_dir, "table.feather")
        c = dafstore.create(cpath)
        t0 = time.time()
        c.write_table(TABLE, df)
        log(f"  c.write_table: {time.time() - t0:.1f} s")
        for col in df.columns:  # one-column tables: where open time and copies come from
            c.write_table(COL_PREFIX + col, df.select(col))
        # the string column again as binary (binary_view): the same bytes without UTF-8 checks
        c.write_table(COL_PREFIX + "s_binary", df.select(pl.col("s").cast(pl.Binary).alias("s_binary")))
        t0 = time.time()
        df.write_ipc(fpath, compression="uncompressed")
        log(f"  df.write_ipc: {time.time() - t0:.1f} s")
        data_file = os.path.join(cpath, TABLE + ".arrow")
        cbytes, fbytes = os.path.getsize(data_file), os.path.getsize(fpath)
        with pa.memory_map(fpath) as src:
            rdr = pa.ipc.open_file(src)
            fbatches, fschema = rdr.num_record_batches, rdr.schema
        t = c.open_table(TABLE)
        res["data"] = {"rows": rows, "bytes_per_row_estimate": per_row, "container_file_bytes": cbytes,
                       "feather_bytes": fbytes, "feather_batches": fbatches,
                       "container_batches": t.column(0).num_chunks,
                       "stored_types": {f.name: str(f.type) for f in t.schema},
                       "feather_types": {f.name: str(f.type) for f in fschema},
                       "column_buffer_bytes": {n: t.column(n).nbytes for n in t.column_names}}
        res["data"]["column_tables"] = {col: str(c.open_table(COL_PREFIX + col).schema.field(0).type)
                                        for col in list(res["data"]["stored_types"]) + ["s_binary"]}
        del t, rdr
        log(f"  files: dafstore {cbytes / MIB:.1f} MiB, Feather {fbytes / MIB:.1f} MiB ({fbatches} batches)")

        # ---- 3. publish (needs the frame in memory)
        phases = set(a.phases.split(","))
        if "publish" in phases and not a.no_publish:
            log("publish ...")
            res["publish"] = publish_phase(df, os.path.join(shm_dir, "publish"), disk_dir, a.publish_rounds,
                                           not a.no_disk, log)
        del df
        gc.collect()

        # ---- 2. open latency
        if "latency" in phases:
            log("open latency ...")
            res["latency"] = latency_phase(cpath, fpath, open_rounds, 3, list(res["data"]["column_tables"]), log)
        gc.collect()

        # ---- 1. memory
        if "memory" in phases:
            memory_phase(a, res, meta, cpath, fpath, data_file, cbytes, fbytes, rows)
        c.close()
    finally:
        shutil.rmtree(shm_dir, ignore_errors=True)
        shutil.rmtree(disk_dir, ignore_errors=True)
    meta["loadavg_at_end"] = os.getloadavg()
    meta["seconds_total"] = round(time.time() - started, 1)
    meta["command"] = " ".join([sys.executable] + sys.argv)
    out = Path(a.out_prefix)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    md = render(res)
    out.with_suffix(".md").write_text(md)
    print(md)


def memory_phase(a, res, meta, cpath, fpath, data_file, cbytes, fbytes, rows):
    import polars as pl

    has_mmap_arg = "memory_map" in inspect.signature(pl.read_ipc).parameters
    readers = [r for r in READERS if r != "pl_read_ipc_mmap" or has_mmap_arg]
    skipped = {} if has_mmap_arg else {"pl_read_ipc_mmap": f"polars {pl.__version__}'s `read_ipc` has no `memory_map` argument"}
    runs = {r: [] for r in readers}
    for rnd in range(a.mem_rounds):
        order = readers[rnd % len(readers):] + readers[:rnd % len(readers)]
        for r in order:
            src = READERS[r][1]
            dfile, fb = (data_file, cbytes) if src == "container" else (fpath, fbytes)
            n = a.workers
            if r.startswith("pl_read_ipc"):
                avail = mem_available()
                fit = int((avail - 1.5 * GIB) // (fb * 1.15))
                if fit < n:
                    log(f"NOTE: {r}: MemAvailable {avail / GIB:.1f} GiB holds only {fit} copies of "
                        f"{fb / GIB:.2f} GiB (+1.5 GiB margin): running {max(fit, 1)} workers, not {n}")
                    n = max(fit, 1)
            t0 = time.time()
            try:
                x = mem_case(r, n, cpath, fpath, dfile, fb, rows)
            except RuntimeError as e:
                log(f"  {r}: ERROR {e}")
                runs[r].append({"error": str(e)[:500]})
                continue
            runs[r].append(x)
            log(f"  memory round {rnd + 1}/{a.mem_rounds} {r:24s} x{n}: PSS/file {x['ratio_after_scan']['pss']:.2f}, "
                f"Anonymous/file {x['ratio_after_scan']['anonymous']:.2f} (after open {x['ratio_after_open']['pss']:.2f}/"
                f"{x['ratio_after_open']['anonymous']:.2f}), map touched {x['map_rss_after_scan_over_file']:.2f}, "
                f"check {x['check']} ({time.time() - t0:.0f} s)")
    summary = {}
    for r, xs in runs.items():
        ok = [x for x in xs if "error" not in x]
        if not ok:
            summary[r] = {"error": (xs[0]["error"] if xs else "not run")[:200]}
            continue
        md = lambda f: statistics.median(f(x) for x in ok)  # noqa: E731
        summary[r] = {
            "workers": ok[0]["workers"], "file_bytes": ok[0]["file_bytes"],
            "pss_open": md(lambda x: x["ratio_after_open"]["pss"]),
            "anon_open": md(lambda x: x["ratio_after_open"]["anonymous"]),
            "pss_scan": md(lambda x: x["ratio_after_scan"]["pss"]),
            "anon_scan": md(lambda x: x["ratio_after_scan"]["anonymous"]),
            "rss_anon_scan": md(lambda x: x["ratio_after_scan"]["rss_anon"]),
            "anon_per_worker_mib": md(lambda x: x["anon_per_worker_median_bytes"]) / MIB,
            "map_touch": md(lambda x: x["map_rss_after_scan_over_file"]),
            "map_pss_scan": md(lambda x: x["map_pss_total_after_scan_over_file"]),
            "map_touch_open": md(lambda x: statistics.median(m["map_rss"] for m in x["opened"]["maps"]) / x["file_bytes"]),
            "first_open_ms": statistics.median(v for x in ok for v in x["first_open_s"]) * 1e3,
            "first_scan_ms": statistics.median(v for x in ok for v in x["first_scan_s"]) * 1e3,
            "checks_agree": all(x["checks_agree"] for x in ok), "rounds_ok": len(ok),
            "i64_sum": ok[0]["check"]["i64"],
        }
        if r.startswith("dafstore"):
            summary[r]["container_open_ms"] = statistics.median(
                v for x in ok for v in x["container_open_s"]) * 1e3
            summary[r]["container_rss_anon_mib"] = statistics.median(
                v for x in ok for v in x["container_rss_anon"]) / MIB
    mem = {"workers": a.workers, "rounds": a.mem_rounds, "readers": summary, "skipped": skipped, "runs": runs}
    seen = {p for xs in runs.values() for x in xs for p in x.get("packages", [])}
    meta["workers_package_sha256"] = sorted(seen)
    meta["package_consistent"] = seen <= {meta["dafstore_package"]["sha256"]}
    if "error" not in summary.get("dafstore_polars", {"error": 1}) and "error" not in summary.get(
            "dafstore_polars_nocat", {"error": 1}):
        p, q = summary["dafstore_polars"], summary["dafstore_polars_nocat"]
        mem["categorical"] = {
            "expected_per_process_mib": 4 * rows / MIB,
            "expected_total_over_file": a.workers * 4 * rows / cbytes,
            "measured_total_over_file": p["anon_scan"] - q["anon_scan"],
            "measured_per_process_mib": (p["anon_scan"] - q["anon_scan"]) * cbytes / a.workers / MIB,
        }
    log("per-column processes ...")
    mem["columns"] = [column_case(col, cpath, rows) for col in res["data"]["column_tables"]]
    for x in mem["columns"]:
        log(f"  column {x['column']}: {x['bytes_per_row_after_open']:.2f} B/row after open, "
            f"{x['bytes_per_row_after_scan']:.2f} after scan")
    res["memory"] = mem


if __name__ == "__main__":
    main()
