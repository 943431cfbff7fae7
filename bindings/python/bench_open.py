#!/usr/bin/env python3
"""Open latency from Python: ``c.open(name)`` vs ``np.memmap`` and ``np.load(mmap_mode="r")`` of the
same bytes, in the same run (the Python-level rows of the benchmark table).

    python bindings/python/bench_open.py [DIR] [--elements N] [--runs R] [--json FILE]

DIR (default: a fresh directory in /dev/shm) gets a container holding one float64 array of N
elements (default 2**27, 1 GiB) and a .npy export of it. Cases, each the median of R runs:

- ``c.open`` first: the map is made and the reference taken (one catalog transaction); the array
  is dropped before the next run, which unmaps it and releases the reference;
- ``c.open`` cached: another ``c.open`` while one array is alive (the process-wide map is reused);
- ``np.memmap`` of the container's ``.array`` file (the same bytes), dropped after each run;
- ``np.load(mmap_mode="r")`` of the ``.npy`` export, dropped after each run.

Each open also reads one element, so every case really maps the file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import dafstore


def median_ns(f, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        f()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dir", nargs="?", help="where to make the container (default: in /dev/shm)")
    p.add_argument("--elements", type=int, default=1 << 27)
    p.add_argument("--runs", type=int, default=2000)
    p.add_argument("--json", type=Path, help="also write the results there")
    args = p.parse_args()

    base = Path(args.dir or tempfile.mkdtemp(prefix="dafstore-bench-", dir="/dev/shm"))
    base.mkdir(parents=True, exist_ok=True)
    c = dafstore.create(base / "c")
    with c.create("x", (args.elements,), "float64") as a:
        a[:] = 1.0
    del a
    npy = base / "x.npy"
    c.export("x", npy)
    raw = Path(c.path, "x.array")
    n = args.elements

    def first() -> None:
        assert c.open("x")[n - 1] == 1.0  # made, read, dropped: unmapped and released

    keep = c.open("x")

    def cached() -> None:
        assert c.open("x")[n - 1] == 1.0

    def memmap() -> None:
        assert np.memmap(raw, dtype="<f8", mode="r", shape=(n,))[n - 1] == 1.0

    def load() -> None:
        assert np.load(npy, mmap_mode="r")[n - 1] == 1.0

    for f in (cached, memmap, load):  # warm up: imports, page tables, allocator
        median_ns(f, 50)
    results = {"cached": median_ns(cached, args.runs)}
    del keep
    median_ns(first, 50)
    results["first"] = median_ns(first, args.runs)
    results["np.memmap"] = median_ns(memmap, args.runs)
    results["np.load(mmap_mode='r')"] = median_ns(load, args.runs)

    peer = results["np.memmap"]
    print(f"open latency from Python, {n * 8 / 2**20:.0f} MiB float64 in {base}, "
          f"median of {args.runs} runs")
    print("| case | median | / np.memmap |")
    print("|---|---|---|")
    for case, label in (("first", "`c.open(name)` first (map + reference)"),
                        ("cached", "`c.open(name)` cached (map alive)"),
                        ("np.memmap", "`np.memmap` of the same file"),
                        ("np.load(mmap_mode='r')", "`np.load(mmap_mode=\"r\")` of the .npy")):
        print(f"| {label} | {results[case] / 1e3:.2f} µs | {results[case] / peer:.2f} |")
    if args.json:
        args.json.write_text(json.dumps({
            "elements": n, "runs": args.runs, "dir": str(base), "median_ns": results,
            "python": sys.version.split()[0], "numpy": np.__version__,
            "dafstore": dafstore.__version__, "machine": platform.machine(),
            "cpus": os.cpu_count(),
        }, indent=2) + "\n")
    c.close()
    if args.dir is None:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
