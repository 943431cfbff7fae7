#!/usr/bin/env python3
"""Seed 000's workload scaled to this machine (issue 18): dated inputs read from compressed files
on disk, each task needing inputs d and d+1, a pool of workers, a bound on /dev/shm.

    /work/main/.venv/bin/python bench/cache_seed.py            # 40 inputs of 64 MiB, 5 rounds
    /work/main/.venv/bin/python bench/cache_seed.py --quick    # 12 inputs of 8 MiB, 1 round
    options: --inputs N --mib S --workers W --capacity-mib C --rounds R --schemes a,b,c

Needs dafstore, pyarrow, numpy and joblib (the repository's `.venv`; `pip install joblib`).

Inputs: N Feather files (zstd) in target/bench-cache/inputs, one float64 column of S MiB each (a
rounded random walk, which compresses about 2x, like prices); made once and reused. Every scheme
runs the same N-1 tasks in date order on W spawned worker processes (pool started and warmed
before the clock starts); task d reads inputs d and d+1 and returns the sum of both columns
(touching every page). Schemes:

- `dafstore`: a container on /dev/shm with a capacity of C MiB; each input is
  `c.open_or_load(name, loader)` (the loader reads the compressed file with pyarrow and returns
  the table: it is published `cached`, then mapped by every worker); entries stay after their
  last release while they fit and are evicted least recently released first. `write_table`
  combines an in-memory table's chunks into one record batch (one copy) so readers get
  contiguous columns.
- `dafstore_stream`: the same, but the loader returns `table.to_reader()`: a stream is written
  batch by batch as it comes (the input's 64k-row batches, no combining copy), the layout
  `write_feather` also writes.
- `handrolled`: seed 000's scheme done carefully: uncompressed Feather files in /dev/shm, a
  refcount text file (JSON) under a global `flock`, a per-input `flock` so that one process loads
  an absent input while the others wait; a reader maps the file with pyarrow (polars 2 no longer
  maps Feather); the file is deleted when its count drops to 0.
- `joblib`: `joblib.Parallel(n_jobs=W, max_nbytes="1M", temp_folder=/dev/shm/...)`: the parent
  reads the inputs (keeping the last two, so each is read once) and passes numpy arrays, which
  joblib dumps to memmaps in the temp folder for the workers.

Measured per scheme and round: wall time of the N-1 tasks, loads per input (loader calls / N),
the peak bytes of the scheme's files in /dev/shm (a thread samples them every 5 ms), and the
parent's peak RssAnon (joblib holds the inputs in the parent). Ratios against dafstore are the
medians of the per-round ratios; rounds rotate the order of the schemes.

Writes bench/results/cache_seed.json and bench/results/cache_seed.md (also printed).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import status_bytes, tree_size_bytes  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
INPUTS = REPO / "target" / "bench-cache" / "inputs"


def input_path(d: int, mib: int) -> Path:
    return INPUTS / f"{mib}mib" / f"in{d:04}.feather"


def make_inputs(n: int, mib: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.feather as feather

    rows = mib * (1 << 20) // 8
    for d in range(n):
        p = input_path(d, mib)
        if p.exists():
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(d)
        walk = np.round(100 + np.cumsum(rng.normal(0, 0.01, rows)), 2)
        tmp = p.with_suffix(".tmp")
        feather.write_feather(pa.table({"price": walk}), tmp, compression="zstd")
        os.replace(tmp, p)


def read_input(d: int, mib: int):
    """The slow part of a load: read and decompress the input."""
    import pyarrow.feather as feather

    return feather.read_table(input_path(d, mib), memory_map=False)


def log_load(log: str, d: int) -> None:
    with open(log, "a") as f:
        f.write(f"{d}\n")


# ---------------------------------------------------------------- worker side (spawned processes)

_state: dict = {}


def init_worker(scheme: str, root: str, log: str, mib: int) -> None:
    import numpy  # noqa: F401  (imported before the clock: every scheme's workers pay it once)
    import pyarrow  # noqa: F401

    _state.update(scheme=scheme, root=root, log=log, mib=mib)
    if scheme.startswith("dafstore"):
        import dafstore

        _state["c"] = dafstore.open(root)


def warm(_: int) -> int:
    return os.getpid()


def column_sum(table) -> float:
    import pyarrow.compute as pc

    return pc.sum(table.column(0)).as_py()


def task_dafstore(d: int) -> float:
    c, mib, log = _state["c"], _state["mib"], _state["log"]
    stream = _state["scheme"] == "dafstore_stream"
    total = 0.0
    for k in (d, d + 1):

        def loader(k=k):
            log_load(log, k)
            t = read_input(k, mib)
            return t.to_reader() if stream else t

        t = c.open_or_load(f"in/{k:04}", loader)
        total += column_sum(t)
        del t
    return total


class HandRolled:
    """Seed 000's refcount text file, done carefully (a global lock for the counts, one lock per
    input for its load)."""

    def __init__(self, root: str):
        self.root = Path(root)

    def _locked(self, name: str):
        f = open(self.root / name, "a+")
        fcntl.flock(f, fcntl.LOCK_EX)
        return f

    def _counts(self) -> dict:
        p = self.root / "refcount.json"
        return json.loads(p.read_text()) if p.exists() else {}

    def _save(self, counts: dict) -> None:
        tmp = self.root / "refcount.json.tmp"
        tmp.write_text(json.dumps(counts))
        os.replace(tmp, self.root / "refcount.json")

    def acquire(self, k: int, load) -> Path:
        path = self.root / f"in{k:04}.feather"
        with self._locked(f"load{k:04}.lock"):
            with self._locked("refcount.lock"):
                counts = self._counts()
                present = path.exists()
                counts[str(k)] = counts.get(str(k), 0) + 1
                self._save(counts)
            if not present:
                import pyarrow.feather as feather

                tmp = path.with_suffix(".tmp")
                feather.write_feather(load(), tmp, compression="uncompressed")
                os.replace(tmp, path)
        return path

    def release(self, k: int) -> None:
        with self._locked("refcount.lock"):
            counts = self._counts()
            counts[str(k)] -= 1
            if counts[str(k)] == 0:
                del counts[str(k)]
                (self.root / f"in{k:04}.feather").unlink(missing_ok=True)
            self._save(counts)


def task_handrolled(d: int) -> float:
    import pyarrow as pa

    h, mib, log = HandRolled(_state["root"]), _state["mib"], _state["log"]
    total = 0.0
    for k in (d, d + 1):

        def load(k=k):
            log_load(log, k)
            return read_input(k, mib)

        path = h.acquire(k, load)
        try:
            with pa.memory_map(str(path)) as m:
                t = pa.ipc.open_file(m).read_all()
                total += column_sum(t)
                del t
        finally:
            h.release(k)
    return total


def task_joblib(a, b) -> float:
    return float(a.sum()) + float(b.sum())


# ---------------------------------------------------------------- parent side


def data_bytes(root: Path, scheme: str) -> int:
    """Bytes (apparent size) of the scheme's files under `root` (dafstore: the data files, staged
    ones too)."""
    keep = (lambda name: name.endswith(".arrow")) if scheme.startswith("dafstore") else None
    return tree_size_bytes(root, keep)


class Monitor(threading.Thread):
    def __init__(self, root: Path, scheme: str):
        super().__init__(daemon=True)
        self.root, self.scheme = root, scheme
        self.peak_files = 0
        self.peak_parent_anon = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak_files = max(self.peak_files, data_bytes(self.root, self.scheme))
            self.peak_parent_anon = max(self.peak_parent_anon, status_bytes(os.getpid(), "RssAnon"))
            time.sleep(0.005)


def run_scheme(scheme: str, args, scratch: Path) -> dict:
    import numpy as np

    root = scratch / scheme
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    log = scratch / f"{scheme}.loads"
    log.write_text("")
    n, mib = args.inputs, args.mib
    if scheme.startswith("dafstore"):
        import dafstore

        c = dafstore.create(root / "c")
        c.set_capacity(args.capacity_mib << 20)
        del c
        target = root / "c"
    else:
        target = root
    ctx = mp.get_context("spawn")
    monitor = Monitor(target, scheme)  # dafstore*: the data files only
    base_anon = status_bytes(os.getpid(), "RssAnon")
    if scheme == "joblib":
        import joblib

        temp = root / "joblib"
        temp.mkdir()
        monitor.root = temp
        cache: dict = {}

        def load_np(k: int):
            if k not in cache:
                log_load(str(log), k)
                cache[k] = read_input(k, mib).column(0).to_numpy()
                for old in [j for j in cache if j < k - 1]:
                    del cache[old]
            return cache[k]

        with joblib.Parallel(
            n_jobs=args.workers, max_nbytes="1M", temp_folder=str(temp), backend="loky"
        ) as par:
            par(joblib.delayed(warm)(i) for i in range(args.workers * 2))
            monitor.start()
            t0 = time.perf_counter()
            sums = par(
                joblib.delayed(task_joblib)(load_np(d), load_np(d + 1)) for d in range(n - 1)
            )
            wall = time.perf_counter() - t0
        cache.clear()
    else:
        task = task_dafstore if scheme.startswith("dafstore") else task_handrolled
        with ctx.Pool(
            args.workers, initializer=init_worker, initargs=(scheme, str(target), str(log), mib)
        ) as pool:
            pool.map(warm, range(args.workers * 2))
            monitor.start()
            t0 = time.perf_counter()
            sums = list(pool.imap(task, range(n - 1)))
            wall = time.perf_counter() - t0
    monitor.stop.set()
    monitor.join()
    loads = [int(x) for x in log.read_text().split()]
    shutil.rmtree(root, ignore_errors=True)
    return {
        "wall_s": wall,
        "loads": len(loads),
        "loads_per_input": len(loads) / n,
        "max_loads_of_one_input": max((loads.count(k) for k in set(loads)), default=0),
        "peak_shm_bytes": monitor.peak_files,
        "peak_parent_anon_growth_bytes": max(0, monitor.peak_parent_anon - base_anon),
        "checksum": float(np.sum(sums)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inputs", type=int, default=40)
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--capacity-mib", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--schemes", default="dafstore,dafstore_stream,handrolled,joblib")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.inputs, args.mib, args.capacity_mib, args.rounds = 12, 8, 64, 1
    schemes = args.schemes.split(",")
    make_inputs(args.inputs, args.mib)
    scratch = Path("/dev/shm") / f"dafstore-bench-cache-{os.getpid()}"
    scratch.mkdir()
    results: dict = {s: [] for s in schemes}
    try:
        for r in range(args.rounds):
            order = schemes[r % len(schemes):] + schemes[: r % len(schemes)]
            for s in order:
                res = run_scheme(s, args, scratch)
                results[s].append(res)
                print(f"round {r + 1} {s}: {json.dumps(res)}", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    sums = [x["checksum"] for v in results.values() for x in v]
    # Summation orders differ (pyarrow, numpy): equal to 1e-9 relative.
    assert max(sums) - min(sums) <= 1e-9 * abs(max(sums)), f"the schemes disagree: {sums}"

    def med(s: str, key: str) -> float:
        return statistics.median(x[key] for x in results[s])

    lines = [
        f"Seed 000's workload: {args.inputs} inputs of {args.mib} MiB (Feather zstd on disk), "
        f"{args.inputs - 1} tasks each reading inputs d and d+1, {args.workers} workers, "
        f"dafstore capacity {args.capacity_mib} MiB, {args.rounds} rounds (medians; ratios are "
        "medians of per-round ratios to dafstore).",
        "",
        "| scheme | wall s | × dafstore | loads per input | most loads of one input | peak /dev/shm MiB "
        "| parent anon growth MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in schemes:
        ratio = (
            statistics.median(
                x["wall_s"] / d["wall_s"] for x, d in zip(results[s], results["dafstore"])
            )
            if "dafstore" in results
            else float("nan")
        )
        lines.append(
            f"| {s} | {med(s, 'wall_s'):.2f} | {ratio:.2f} | {med(s, 'loads_per_input'):.2f} "
            f"| {med(s, 'max_loads_of_one_input'):.0f} | {med(s, 'peak_shm_bytes') / 2**20:.0f} "
            f"| {med(s, 'peak_parent_anon_growth_bytes') / 2**20:.0f} |"
        )
    text = "\n".join(lines)
    print(text)
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "cache_seed.json").write_text(
        json.dumps({"args": vars(args), "results": results}, indent=1)
    )
    (out / "cache_seed.md").write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
