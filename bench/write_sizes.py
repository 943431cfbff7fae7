#!/usr/bin/env python3
"""Does the size of write(2) calls change how fast 1 GiB reaches the disk? (A side experiment of
bench/tables_share.py: strace showed dafstore's table writer passing whole Arrow buffers, up to
348 MB, to one write each, and those writes being slow on the disk.)

    python bench/write_sizes.py      # ~2 min; writes 18 x 1 GiB under target/bench-wsize (removed)

The same 1 GiB numpy buffer is written to a new file on the repository's disk in 6 large writes
(116-348 MiB, the sizes dafstore's writer issued for the 1 GiB table), in 8 MiB writes and in 256 KiB
writes, each followed by fdatasync; 6 rounds, order rotated; medians printed at the end.
"""
import os, time, numpy as np, statistics
d = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "target", "bench-wsize"); os.makedirs(d, exist_ok=True)
buf = np.random.default_rng(0).integers(0, 255, 1 << 30, dtype=np.uint8)
mv = memoryview(buf)
sizes = [116 << 20, 116 << 20, 116 << 20, 116 << 20, 232 << 20, 348 << 20]
def big(f):
    off = 0
    for s in sizes:
        s = min(s, len(mv) - off)
        off += os.write(f, mv[off:off + s])
    while off < len(mv): off += os.write(f, mv[off:])
def small(f, chunk=256 << 10):
    for off in range(0, len(mv), chunk): os.write(f, mv[off:off + chunk])
def mid(f): small(f, 8 << 20)
res = {k: [] for k in ("big", "8MiB", "256KiB")}
try:
    for rnd in range(6):
        order = [("big", big), ("8MiB", mid), ("256KiB", small)]
        order = order[rnd % 3:] + order[:rnd % 3]
        for name, fn in order:
            p = f"{d}/{name}.bin"
            if os.path.exists(p): os.unlink(p)
            time.sleep(1)
            f = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            t0 = time.perf_counter(); fn(f); t1 = time.perf_counter(); os.fdatasync(f); t2 = time.perf_counter(); os.close(f)
            res[name].append((t1 - t0, t2 - t1))
            print(rnd, name, f"write {t1-t0:.2f} s, fdatasync {t2-t1:.2f} s", flush=True)
finally:
    import shutil; shutil.rmtree(d, ignore_errors=True)
for k, v in res.items():
    print(k, "median write", round(statistics.median(x[0] for x in v), 2), "sync", round(statistics.median(x[1] for x in v), 2), "total", round(statistics.median(x[0]+x[1] for x in v), 2))
