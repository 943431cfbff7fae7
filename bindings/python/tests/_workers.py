"""Worker processes of the multi-process tests (started with multiprocessing's spawn method, so
this module is imported fresh in each: nothing is inherited but the arguments)."""

from __future__ import annotations

import gc
import os
import time
from typing import Any

import numpy as np

import dafstore


def chunk(i: int, n: int, rows: int) -> slice:
    return slice(i * rows // n, (i + 1) * rows // n)


def ordered_sum(parts: list[np.ndarray]) -> np.ndarray:
    """Sums in a fixed order, so the parent can reproduce the exact same floating-point values."""
    total = np.array(parts[0], copy=True)
    for p in parts[1:]:
        total += p
    return total


def pss_kib(pid: str = "self") -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise RuntimeError("no Pss in smaps_rollup")


def partial_sums(path: str, i: int, n: int, out: Any) -> None:
    """Stage 1 of the seed 000 workflow: each worker reduces its rows of the shared input and
    publishes the partial results as scratch arrays (deleted once they have been used)."""
    try:
        c = dafstore.open(path)
        x = c.open("input/X")
        rows = chunk(i, n, x.shape[0])
        c.write(f"tmp/colsum_{i}", x[rows].sum(axis=0), scratch=True)
        m = c.open_sparse("input/M")
        v = c.open("input/v")
        c.write(f"tmp/spmv_{i}", np.asarray(m[rows] @ v), scratch=True)
        out.put((i, "ok", os.getpid()))
    except BaseException as e:  # report to the parent instead of dying silently
        out.put((i, f"{type(e).__name__}: {e}", os.getpid()))


def normalise(path: str, i: int, n: int, barrier: Any, out: Any) -> None:
    """Stage 2: every worker holds every scratch partial at once (the barrier), combines them,
    writes its share of the result, and releases them: the last release deletes them."""
    try:
        c = dafstore.open(path)
        parts = [c.open(f"tmp/colsum_{j}") for j in range(n)]
        spmv = [c.open(f"tmp/spmv_{j}") for j in range(n)]
        barrier.wait(60)  # every worker now holds every partial
        barrier.wait(60)  # the parent has looked at the holders
        total = ordered_sum(parts)
        x = c.open("input/X")
        rows = chunk(i, n, x.shape[0])
        c.write(f"result/normalised_{i}", x[rows] / total)
        if i == 0:
            c.write("result/spmv", np.concatenate(spmv))
        del parts, spmv, x
        gc.collect()
        out.put((i, "ok", os.getpid()))
    except BaseException as e:
        out.put((i, f"{type(e).__name__}: {e}", os.getpid()))


def hold_until_killed(path: str, names: list[str], ready: Any) -> None:
    """Opens arrays (holding their references) and waits to be killed."""
    c = dafstore.open(path)
    views = [c.open(n) for n in names]
    for v in views:
        float(v.sum())
    ready.set()
    time.sleep(300)


def map_and_measure(path: str, name: str, barrier: Any, out: Any) -> None:
    """PSS before mapping, then after every worker has mapped and read the whole array."""
    try:
        c = dafstore.open(path)
        before = pss_kib()
        a = c.open(name)
        total = float(a.sum())  # touches every page
        barrier.wait(60)  # every worker maps it now
        after = pss_kib()
        barrier.wait(60)  # keep it mapped until every worker has measured
        out.put((after - before, total, os.getpid()))
    except BaseException as e:
        out.put((None, f"{type(e).__name__}: {e}", os.getpid()))


def date_frame(day: int, rows: int) -> Any:
    """Seed 000's input: one frame per date with floats, ints, zoned timestamps, strings (some
    null) and a categorical; its values depend on the date, so a task's result names its inputs."""
    import datetime as dt

    import polars as pl

    k = np.arange(rows, dtype=np.int64)
    start = dt.datetime(2026, 1, 1) + dt.timedelta(days=day)
    return pl.DataFrame(
        {
            "price": (k % 97).astype(np.float64) / 4 + day,
            "qty": k % 13 + day,
            "at": pl.datetime_range(start, start + dt.timedelta(seconds=rows - 1), "1s",
                                    time_zone="Europe/Paris", eager=True),
            "ticker": [f"T{(i * 7 + day) % 50:03d}" if i % 11 else None for i in range(rows)],
            "venue": pl.Series([("XPAR", "XLON", "XNYS")[(i + day) % 3] for i in range(rows)],
                               dtype=pl.Categorical),
        }
    )


def two_day_stats(a: Any, b: Any) -> list[tuple]:
    """A task of the workflow: per venue over two consecutive dates, the notional, the rows, the
    distinct tickers and the time span. Sorted, plain Python values (comparable across processes)."""
    import polars as pl

    both = pl.concat([a, b])
    stats = (
        both.group_by(pl.col("venue").cast(pl.String))
        .agg(
            (pl.col("price") * pl.col("qty")).sum().alias("notional"),
            pl.len().alias("rows"),
            pl.col("ticker").n_unique().alias("tickers"),
            (pl.col("at").max() - pl.col("at").min()).alias("span"),
        )
        .sort("venue")
    )
    return [tuple(r) for r in stats.rows()]


def map_two_dates(path: str, t: int, opened: Any, go: Any, out: Any) -> None:
    """Task t of the dated-frames workflow: maps dates t and t+1 as polars frames (zero-copy over
    the container's files, each a reference), reports that it holds them, waits for the parent's
    go, computes, then releases both (drops the frames and closes the container)."""
    try:
        c = dafstore.open(path)
        a = c.open_polars(f"date/{t}")
        b = c.open_polars(f"date/{t + 1}")
        opened.put(t)
        if not go.wait(120):
            raise TimeoutError("no go from the parent")
        result = two_day_stats(a, b)
        del a, b
        gc.collect()
        c.close()
        out.put((t, "ok", result))
    except BaseException as e:
        out.put((t, f"{type(e).__name__}: {e}", None))


def map_dates_until_killed(path: str, names: list[str], ready: Any) -> None:
    """Maps tables as polars frames, reads every column, and waits to be killed."""
    c = dafstore.open(path)
    frames = [c.open_polars(n) for n in names]
    for f in frames:
        f.select(pl_all_len())
    ready.set()
    time.sleep(300)


def pl_all_len() -> Any:
    import polars as pl

    return pl.all().len()


def open_or_load_counting(path: str, name: str, log: str, start: Any, out: Any) -> None:
    """``open_or_load`` of ``name`` whose loader appends a line to ``log`` (one line per load)
    and takes a while; reports the sum of what it opened."""
    try:
        c = dafstore.open(path)
        start.wait(60)

        def loader() -> np.ndarray:
            with open(log, "a") as f:
                f.write(f"{os.getpid()}\n")
            time.sleep(0.3)
            return np.arange(1000, dtype=np.float64)

        a = c.open_or_load(name, loader)
        out.put((os.getpid(), float(a.sum())))
    except BaseException as e:
        out.put((os.getpid(), f"{type(e).__name__}: {e}"))


def hold_load_lock_until_killed(path: str, name: str, ready: Any) -> None:
    """Takes ``name``'s load lock as a loader would, then waits to be killed mid-load."""
    c = dafstore.open(path)
    lock = c._c.lock_load(name, None)
    ready.set()
    time.sleep(300)
    del lock


def hold_until_told(path: str, names: list[str], ready: Any, go: Any, released: Any) -> None:
    """Opens arrays (holding them), says so, waits for the parent's go, then drops them (the
    releases) and says so; stays alive until the parent is done (its releases, not its death,
    free the entries)."""
    c = dafstore.open(path)
    views = [c.open(n) for n in names]
    ready.set()
    go.wait(120)
    del views
    gc.collect()
    released.set()
    time.sleep(120)


def cache_value(k: int) -> np.ndarray:
    """What the loader of ``e/<k>`` returns (100 float64: 800 bytes)."""
    return np.arange(100, dtype=np.float64) + 1000.0 * k


def open_or_load_loop(path: str, seed: int, rounds: int, names: int, out: Any) -> None:
    """``open_or_load`` of random names ``e/<k>`` under the container's capacity, keeping the
    previous entry open across the next one (two held at a time); checks every value. Reports
    ``(seed, "ok", loads, wrong)``."""
    try:
        c = dafstore.open(path)
        c.wait_for_room(60)  # another process's held entries leave room when released
        rng = np.random.default_rng(seed)
        loads = 0
        wrong: list[int] = []
        previous = None
        for _ in range(rounds):
            k = int(rng.integers(names))

            def loader(k: int = k) -> np.ndarray:
                nonlocal loads
                loads += 1
                return cache_value(k)

            a = c.open_or_load(f"e/{k}", loader)
            if not np.array_equal(a, cache_value(k)):
                wrong.append(k)
            previous = a  # the one before is released here
            time.sleep(float(rng.random()) * 0.005)
        del previous
        out.put((seed, "ok", loads, wrong))
    except BaseException as e:
        out.put((seed, f"{type(e).__name__}: {e}", 0, []))
