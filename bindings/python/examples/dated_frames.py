"""Seed 000 with dafstore: one polars frame per date, shared by a pool of worker processes.

Each task needs two consecutive dates. The parent publishes every date once into a container on
/dev/shm; each task maps its two dates as polars frames (zero-copy: every worker shares the same
pages) and computes. The parent removes a date as soon as every task that needs it has started
(holds it): dafstore keeps the files until the last task releases them, then deletes them. No
refcount file, no cleanup at exit, and a worker that crashes leaks nothing (its references are
reaped by the next open or gc).

Run: python dated_frames.py
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import multiprocessing as mp
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

import dafstore

DATES = 6  # tasks 0..4 each need dates t and t+1
ROWS = 200_000

_container: dafstore.Container | None = None  # one per worker process, opened on first use


def load_date(day: int) -> pl.DataFrame:
    """Stands for reading one date's compressed input from slow storage."""
    k = np.arange(ROWS, dtype=np.int64)
    start = dt.datetime(2026, 1, 1) + dt.timedelta(days=day)
    return pl.DataFrame(
        {
            "price": (k % 97).astype(np.float64) / 4 + day,
            "qty": k % 13,
            "at": pl.datetime_range(start, start + dt.timedelta(seconds=ROWS - 1), "1s",
                                    time_zone="Europe/Paris", eager=True),
            "ticker": [f"T{i % 50:03d}" for i in range(ROWS)],
            "venue": pl.Series([("XPAR", "XLON", "XNYS")[i % 3] for i in range(ROWS)],
                               dtype=pl.Categorical),
        }
    )


def task(path: str, t: int, started: Any) -> tuple[int, float]:
    """Runs in a worker: maps dates t and t+1, says so, computes. The frames are released when
    the function returns (their buffers hold the references)."""
    global _container
    if _container is None:
        _container = dafstore.open(path)
    a = _container.open_polars(f"date/{t}")
    b = _container.open_polars(f"date/{t + 1}")
    started.put(t)
    both = pl.concat([a, b])
    vwap = both.select((pl.col("price") * pl.col("qty")).sum() / pl.col("qty").sum()).item()
    return t, vwap


def main() -> None:
    root = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        c = dafstore.create(root / "frames")
        for d in range(DATES):
            c.write_table(f"date/{d}", load_date(d))
        print(f"published {DATES} dates: {c.info('date/0').bytes / 2**20:.1f} MiB each")

        tasks = range(DATES - 1)
        needs = {d: {d - 1, d} & set(tasks) for d in range(DATES)}  # date -> tasks needing it
        with mp.Manager() as manager, cf.ProcessPoolExecutor(
            max_workers=3, mp_context=mp.get_context("spawn")
        ) as pool:
            started = manager.Queue()
            futures = [pool.submit(task, c.path, t, started) for t in tasks]
            running: set[int] = set()
            while needs:
                running.add(started.get(timeout=120))
                for d in [d for d, ts in needs.items() if ts <= running]:
                    c.remove(f"date/{d}")  # deferred while a task still holds it
                    del needs[d]
            for f in futures:
                t, vwap = f.result()
                print(f"task {t}: dates {t} and {t + 1}: vwap {vwap:.4f}")
            # Each date went at its last release; the pool's workers hold nothing now.
            print(f"entries left: {c.ls()}")
            print(f"files left: {sorted(p.name for p in (root / 'frames').rglob('*.arrow'))}")
        c.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
