#!/usr/bin/env python3
"""Many small entries (issue 20): the batch publish against one `c.write` per array, and the
single small `c.write` against `np.save` + fsync of the same array, on /dev/shm and on disk.

    .venv/bin/python bench/small_writes.py [ROUNDS] [N] [N_DISK]
    # defaults: 5 rounds, N = 100,000 on /dev/shm, N_DISK = N on disk

Measured, each on /dev/shm (tmpfs) and on a directory of the disk holding /tmp:

- **batch**: `c.write_many({name: a})` of N float64 arrays of 4 elements (32 bytes), new names
  in a fresh container each round (the arrays are made before the clock starts); entries per
  second, median of the rounds. Goal: >= 20,000/s.
- **loop**: one `c.write(name, a)` per array for 2,000 such arrays (200 on disk, where each
  costs several fsyncs), same rounds; entries per second (the rate without a batch).
- **single**: `c.write("x", a)` (a replace of one name: the whole [W3] publish, every fsync)
  against `np.save(p, a)` + `os.fsync` of the .npy, for a 32-byte and a 4 KiB float64 array.
  Each round runs K operations of each in rotated order and takes the mean time per
  operation; the ratio is the median of the per-round ratios (c.write / np.save). Goal: <= 1.5.

Writes bench/results/small_writes.json and .md.
"""
import os

# numpy's BLAS threads spin on the 2 cores otherwise; nothing here uses BLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import json
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import dafstore

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import fsync_path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
N = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
N_PLACE = {"/dev/shm": N, "disk": int(sys.argv[3]) if len(sys.argv) > 3 else N}
LOOP_N = {"/dev/shm": 2_000, "disk": 200}
SINGLE_K = {"/dev/shm": 400, "disk": 60}
PLACES = {
    "/dev/shm": Path("/dev/shm/dafstore-small-writes"),
    "disk": Path("/tmp/dafstore-small-writes"),
}


def fresh(where: Path, name: str) -> dafstore.Container:
    d = where / name
    shutil.rmtree(d, ignore_errors=True)
    return dafstore.create(d)


def batch_rate(where: Path, n: int) -> float:
    arrays = {f"v{i}": np.full(4, float(i)) for i in range(n)}
    c = fresh(where, "batch")
    t = time.perf_counter()
    c.write_many(arrays)
    dt = time.perf_counter() - t
    assert len(c.ls()) == n
    c.close()
    return n / dt


def loop_rate(where: Path, n: int) -> float:
    arrays = [(f"v{i}", np.full(4, float(i))) for i in range(n)]
    c = fresh(where, "loop")
    t = time.perf_counter()
    for name, a in arrays:
        c.write(name, a)
    dt = time.perf_counter() - t
    c.close()
    return n / dt


def single(where: Path, nbytes: int, k: int, rounds: int) -> dict:
    a = np.random.default_rng(0).random(nbytes // 8)
    c = fresh(where, "single")
    npy = where / "x.npy"

    def w_dafstore():
        c.write("x", a)

    def w_save():
        np.save(npy, a)
        fsync_path(npy)

    peers = {"c.write": w_dafstore, "np.save+fsync": w_save}
    per_op = {p: [] for p in peers}
    ratios = []
    for r in range(rounds):
        order = list(peers)
        if r % 2:
            order.reverse()
        this = {}
        for p in order:
            f = peers[p]
            f()  # warm (not timed)
            t = time.perf_counter()
            for _ in range(k):
                f()
            this[p] = (time.perf_counter() - t) / k
            per_op[p].append(this[p])
        ratios.append(this["c.write"] / this["np.save+fsync"])
    c.close()
    return {
        "bytes": nbytes,
        "ops_per_round": k,
        "us_per_op": {p: statistics.median(v) * 1e6 for p, v in per_op.items()},
        "ratio_median": statistics.median(ratios),
        "ratios": ratios,
    }


def main() -> None:
    results = {
        "rounds": ROUNDS,
        "n": N_PLACE,
        "loop_n": LOOP_N,
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "load_average_at_start": os.getloadavg(),
        },
        "dafstore": dafstore.__version__,
        "places": {},
    }
    for place, where in PLACES.items():
        shutil.rmtree(where, ignore_errors=True)
        where.mkdir(parents=True)
        batch = []
        loop = []
        for r in range(ROUNDS):
            # Rotated order: the two rates see the same machine state on average.
            if r % 2:
                loop.append(loop_rate(where, LOOP_N[place]))
                batch.append(batch_rate(where, N_PLACE[place]))
            else:
                batch.append(batch_rate(where, N_PLACE[place]))
                loop.append(loop_rate(where, LOOP_N[place]))
            print(f"{place} round {r}: batch {batch[-1]:,.0f}/s, loop {loop[-1]:,.0f}/s", flush=True)
        singles = [single(where, b, SINGLE_K[place], ROUNDS) for b in (32, 4096)]
        for s in singles:
            print(f"{place} single {s['bytes']} B: {s['us_per_op']} ratio {s['ratio_median']:.2f}", flush=True)
        results["places"][place] = {
            "batch_per_s": batch,
            "batch_per_s_median": statistics.median(batch),
            "loop_per_s": loop,
            "loop_per_s_median": statistics.median(loop),
            "single": singles,
        }
        shutil.rmtree(where, ignore_errors=True)
    results["host"]["load_average_at_end"] = os.getloadavg()
    out = REPO / "bench" / "results"
    (out / "small_writes.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Small writes (bench/small_writes.py)",
        "",
        f"{ROUNDS} rounds; batch: float64 arrays of 4 elements (32 bytes) through "
        "`c.write_many` (N per place below); loop: such arrays, one `c.write` each; single: K "
        "replaces of one name against K `np.save` + fsync, per-op means, ratio = median of "
        "per-round ratios. Goals: batch >= 20,000 entries/s, single <= 1.5x. Load average "
        f"{results['host']['load_average_at_start'][0]:.1f} at start, "
        f"{results['host']['load_average_at_end'][0]:.1f} at end (2 CPUs).",
        "",
        "| where | N | batch entries/s (median) | per round | loop entries/s (median) | batch / loop |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for place, r in results["places"].items():
        lines.append(
            f"| {place} | {N_PLACE[place]:,} | {r['batch_per_s_median']:,.0f} | "
            f"{', '.join(f'{x:,.0f}' for x in r['batch_per_s'])} | "
            f"{r['loop_per_s_median']:,.0f} | "
            f"{r['batch_per_s_median'] / r['loop_per_s_median']:.1f}x |"
        )
    lines += [
        "",
        "| where | array | c.write us/op | np.save+fsync us/op | ratio (median) | per-round ratios |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for place, r in results["places"].items():
        for s in r["single"]:
            u = s["us_per_op"]
            lines.append(
                f"| {place} | {s['bytes']} B | {u['c.write']:.0f} | {u['np.save+fsync']:.0f} | "
                f"{s['ratio_median']:.2f}x | {', '.join(f'{x:.2f}' for x in s['ratios'])} |"
            )
    (out / "small_writes.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
