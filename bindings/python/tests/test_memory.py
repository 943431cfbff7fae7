"""Memory: processes mapping the same array share its pages (4 processes mapping a 256 MiB array
add about 256 MiB of PSS in total, not 1 GiB), and the seed 001 loop — 10,000 open/use/drop
cycles — leaves RSS and open file descriptors flat (no map, reference or descriptor leaks)."""

from __future__ import annotations

import gc
import multiprocessing as mp
import os

import numpy as np
import polars as pl
import scipy.sparse as sp

import dafstore

import _workers

WORKERS = 4
# The figure; DAFSTORE_PSS_MIB makes it smaller on a machine without the room.
PSS_MIB = int(os.environ.get("DAFSTORE_PSS_MIB", "256"))
CYCLES = 10_000


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_four_processes_share_one_copy(container: dafstore.Container) -> None:
    n = PSS_MIB << 20 >> 3
    with container.create("big", (n,), "float64") as a:
        a[:] = 1.0
    del a
    gc.collect()
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_workers.map_and_measure, args=(container.path, "big", barrier, out))
        for _ in range(WORKERS)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert all(r[0] is not None for r in results), results
    assert all(r[1] == float(n) for r in results)  # every worker read every element
    added_mib = sum(r[0] for r in results) / 1024
    print(f"\nPSS added by {WORKERS} processes mapping {PSS_MIB} MiB: {added_mib:.1f} MiB "
          f"(per process: {[round(r[0] / 1024, 1) for r in results]})")
    # One copy in total (plus a little per process for the open itself), not one per process.
    assert 0.9 * PSS_MIB <= added_mib <= 1.25 * PSS_MIB, added_mib


def test_seed_001_loop_has_flat_rss_and_fds(container: dafstore.Container) -> None:
    rng = np.random.default_rng(0)
    container.write("x", rng.random((256, 512)))  # 1 MiB
    container.write_sparse("m", sp.random(512, 512, density=0.02, format="csr", random_state=0))
    v = rng.random(512)

    def cycle(i: int) -> float:
        a = container.open("x")  # open, use, drop: map and reference released each time
        total = float(a[i % 256].sum())
        del a
        if i % 10 == 0:
            m = container.open_sparse("m")
            total += float((m @ v).sum())
            del m
        if i % 10 == 5:
            s = pl.from_arrow(container.open_arrow("x").flatten())
            total += float(s[i])
            del s
        return total

    for i in range(200):  # warm up: imports, caches, allocator arenas
        cycle(i)
    gc.collect()
    rss0, fds0, maps0 = rss_kib(), open_fds(), dafstore.cache_stats()
    for i in range(CYCLES):
        cycle(i)
    gc.collect()
    rss1, fds1, maps1 = rss_kib(), open_fds(), dafstore.cache_stats()
    print(f"\n{CYCLES} cycles: RSS {rss0} -> {rss1} KiB ({rss1 - rss0:+d}), "
          f"open fds {fds0} -> {fds1}, maps made {maps1[1] - maps0[1]}, live {maps1[0]}")
    assert fds1 == fds0
    assert maps1[0] == maps0[0] == 0  # every map released
    assert maps1[1] - maps0[1] >= CYCLES  # each cycle really mapped and unmapped
    assert container.local_refs("x") == container.local_refs("m") == 0
    assert rss1 - rss0 < 8 * 1024, (rss0, rss1)  # flat: well under one map per 1,000 cycles
