"""Memory of Dask worker processes that all use one array: ``dafstore.dask.share`` against
``client.scatter(x, broadcast=True)`` (issue 19).

Each mode gets a fresh ``distributed.LocalCluster`` of N worker processes (1 thread each). Every
worker runs one task that gets the array, reads all of it, and returns it, so the array stays in
the worker's memory as the task's result (for ``share``: a view of the map). The script reads
``/proc/<pid>/smaps_rollup`` of every worker (through ``client.run``) before and after, and prints
the increase summed over the workers: PSS (pages shared by k processes count 1/k in each) and
anonymous memory (private copies).

    python bench/dask_share.py [--mib 512] [--workers 4] [--dir /dev/shm]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import smaps_rollup  # noqa: E402

KEYS = ("Rss", "Pss", "Pss_Anon", "Pss_Shmem", "Anonymous")


def smaps() -> dict[str, int]:
    """This process's smaps_rollup figures (KEYS), in KiB."""
    return {k: v >> 10 for k, v in smaps_rollup("self").items() if k in KEYS}


def use_shared(h):  # noqa: ANN001, ANN201 - runs in the worker
    v = h.get()
    float(v.sum())
    return v


def use_scattered(v):  # noqa: ANN001, ANN201
    float(v.sum())
    return v


def total(per_worker: dict[str, dict[str, int]], key: str) -> int:
    return sum(d[key] for d in per_worker.values())


def run(mode: str, x: np.ndarray, workers: int, path: str) -> dict[str, float]:
    import distributed

    import dafstore.dask as ddask

    with distributed.LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
        silence_logs=logging.ERROR,
    ) as cluster, distributed.Client(cluster) as client:
        addrs = list(client.run(os.getpid))
        before = client.run(smaps)
        t0 = time.perf_counter()
        if mode == "share":
            h = ddask.share(x, path)
            futs = [client.submit(use_shared, h, workers=[a], pure=False) for a in addrs]
        else:
            h = None
            f = client.scatter(x, broadcast=True)
            futs = [client.submit(use_scattered, f, workers=[a], pure=False) for a in addrs]
        distributed.wait(futs)
        seconds = time.perf_counter() - t0
        after = client.run(smaps)
        del futs
        if h is not None:
            h.close()
    mib = lambda kib: kib / 1024  # noqa: E731
    return {
        "seconds": seconds,
        **{k: mib(total(after, k) - total(before, k)) for k in KEYS},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mib", type=int, default=512)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--dir", default="/dev/shm")
    a = p.parse_args()
    logging.getLogger("distributed").setLevel(logging.CRITICAL)  # shutdown noise
    x = np.random.default_rng(0).random(a.mib << 20 >> 3)
    root = tempfile.mkdtemp(prefix="dafstore-bench-dask-", dir=a.dir)
    rows = {m: run(m, x, a.workers, os.path.join(root, "c")) for m in ("share", "scatter")}
    print(f"{a.workers} worker processes, one {a.mib} MiB float64 array each task reads whole;"
          " increase summed over the workers (MiB)")
    print("| mode | PSS | Pss_Anon | Pss_Shmem | Anonymous | PSS / array | time to get it (s) |")
    print("|---|---|---|---|---|---|---|")
    for m, r in rows.items():
        label = "`share(x)` + `h.get()`" if m == "share" else "`client.scatter(x, broadcast=True)`"
        print(f"| {label} | {r['Pss']:.0f} | {r['Pss_Anon']:.0f} | {r['Pss_Shmem']:.0f} | "
              f"{r['Anonymous']:.0f} | {r['Pss'] / a.mib:.2f} | {r['seconds']:.2f} |")
    import shutil

    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
