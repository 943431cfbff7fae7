#!/usr/bin/env python3
"""A reduction over one big float64 array with Dask process workers (issue 19): peak memory and
wall time of ``dafstore.dask.from_container`` and ``dafstore.dask.share`` against
``client.scatter(x, broadcast=True)`` and ``da.from_array(np.memmap(...))``, in the same run.

    /work/main/.venv/bin/python bench/dask_reduce.py            # 2 GiB, 4 workers, 3 rounds
    /work/main/.venv/bin/python bench/dask_reduce.py --quick    # 128 MiB, 1 round (smoke run)
    options: --gib X  --workers N  --rounds R  --chunk-mib M  --cols C  --schemes a,b,...
             --timeout S  --dir /dev/shm  --sample-ms MS  --min-available-gib G  --out PREFIX

Needs dafstore, numpy, dask and distributed (the repository's `.venv`).

The data: ``x = np.random.default_rng(0).random((rows, cols))`` (``--gib`` GiB, ``--cols`` 1024
columns), made once in this (the client's) process and kept for the whole run; written once with
``c.write("x", x)`` into a container and once with ``x.tofile`` as a raw file for ``np.memmap``,
both on ``--dir`` (/dev/shm). The reduction is the sum of every element, done as the sum of row
blocks of ``--chunk-mib`` MiB (128: 16 blocks at 2 GiB); every scheme's result must equal numpy's
``x.sum()`` within a relative 1e-9 (checked; a wrong or missing result is reported as such).

Schemes, each on a fresh ``distributed.LocalCluster(n_workers=N, processes=True,
threads_per_worker=1)`` (one per scheme and round, default worker memory limits; before
anything is measured its workers import numpy, dask.array and dafstore.dask and run a tiny
dask-array reduction and 8 tiny tasks, the same for every scheme):

1. ``from_container``: ``ddask.from_container(path, "x", chunks=(rows_per_block, cols))`` then
   ``.sum()`` computed on the cluster (``client.compute(...).result()``).
2. ``share``: ``h = ddask.share(x, path)`` (publishes a copy of ``x`` as a scratch entry), then one
   task per row block, ``h.get()[a:b].sum()``; the partial sums are gathered and added here.
3. ``scatter``: ``f = client.scatter(x, broadcast=True)``, then the same tasks over ``f``, with
   the Active Memory Manager off (``distributed.scheduler.active-memory-manager.start: False``),
   as distributed's ``scatter`` docstring requires for ``broadcast=True``: its ReduceReplicas
   policy (on by default) drops, every 2 s, the replicas ``replicate()`` makes (dask/dask#11148),
   and a 2 GiB broadcast to 4 workers never completes here.
4. ``memmap``: ``da.from_array(np.memmap(file, mode="r", ...), chunks=(rows_per_block, cols))``
   then ``.sum()``, as written: dask puts the memmap in the graph as one value, which distributed
   serializes with its bytes.
5. ``memmap_per_task`` (not in the issue; the way to use a memmap with distributed without
   shipping it): one ``dask.delayed`` task per block opens ``np.memmap`` in the worker and
   returns its rows, ``da.concatenate`` of ``da.from_delayed`` blocks, then ``.sum()``.
6. ``scatter_amm_on`` (first round only, ``--once``; stopped after ``--timeout-amm-on`` 300 s):
   scheme 3 with distributed's defaults, to show what happens without the setting.

Schemes 1, 2, 4 and 5 run with distributed's defaults (the AMM on).

Measured per scheme and round:
- wall time, from the first call that makes the data available to the workers (``share``,
  ``scatter``, ``from_container`` / ``np.memmap`` + ``da.from_array`` graph building) to the
  result in this process; and its compute part, from the return of that call to the result (for
  ``memmap`` the shipping of the array happens inside the compute and cannot be separated).
- memory, sampled by a separate small process every ``--sample-ms`` (20) ms or more (see
  below): each worker's ``Pss`` and ``Anonymous`` from ``/proc/<pid>/smaps_rollup``, summed over
  the workers, and this process's ``RssAnon`` from ``/proc/<pid>/status`` (the client;
  LocalCluster's scheduler and nannies live in it too; smaps_rollup's Anonymous equals RssAnon,
  and status costs nothing to read), each as the growth over its value just before the clock
  starts, and the allocated bytes
  of the files in the scratch directory (what ``share`` publishes to /dev/shm). **Peak total
  (PSS)** = the largest sum, in one sample, of the workers' PSS growth and the client's
  anonymous growth (the issue's measure). **Peak RAM added** = the largest sum of the workers'
  and the client's anonymous growth and the growth of the scratch files: tmpfs pages are RAM
  whether or not a process maps them, and a reduction's tasks map their block only while they
  run, so PSS alone misses most of ``share``'s published copy. The container and the raw file
  that schemes 1, 4 and 5 read were written before and count only as the workers map them (in
  PSS), as ``x`` (in this process all along) counts for no scheme. Also the peaks of each part
  and the lowest MemAvailable; and, independent of the sampling, each process's peak RSS over
  the scheme (``VmHWM``, reset with ``clear_refs`` 5 just before the clock) less its RSS then,
  summed over the workers (an upper bound of the workers' RSS at any one moment: shared pages
  count in every worker, peaks need not coincide).
- a memory guard (this machine is shared): if MemAvailable falls below
  ``--min-available-gib`` (1.5) during a scheme, the sampler kills that cluster's workers and
  interrupts the wait; the round is reported as aborted by the guard. The same for a scheme not
  done after ``--timeout`` (900 s) seconds (``scatter`` takes no overall timeout).
- the sampler is a process, not a thread of the client: a thread shares the GIL with the
  scheduler and the client's event loops (its samples came ~40 ms late and it slowed them). It
  sleeps at least 3× what a sample took, so it uses at most ~25 % of a core (reading
  smaps_rollup walks VMAs and page tables: 1.5-3 ms per worker process here, more under load);
  the interval it achieved (50-130 ms in the smoke runs on this loaded 2-core machine, not 20)
  is reported.

Rounds (``--rounds``) rotate the order of the schemes. Reported: medians over the rounds, and
ratios as medians of the per-round ratios against ``from_container`` (and from_container / share
against the others). Writes bench/results/dask_reduce.json (every round, samples thinned to 300
per measurement) and bench/results/dask_reduce.md (the tables, also printed). Scratch: a
directory under ``--dir``, removed at the end, also on failure.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _common import (  # noqa: E402
    cpu_model, mem_available, rollup_pss_anon, status_bytes, tree_allocated_bytes, utc_now,
)

REPO = Path(__file__).resolve().parent.parent
MIB = 1 << 20
SCHEMES = ("from_container", "share", "scatter", "memmap", "memmap_per_task", "scatter_amm_on")
LABELS = {
    "from_container": "`from_container(path, name, chunks)` + `.sum()`",
    "share": "`share(x, path)` + tasks `h.get()[rows].sum()`",
    "scatter": "`client.scatter(x, broadcast=True)` + the same tasks",
    "memmap": "`da.from_array(np.memmap(...), chunks)` + `.sum()`",
    "memmap_per_task": "(extra) `np.memmap` opened in each block's task + `.sum()`",
    "scatter_amm_on": "`client.scatter(x, broadcast=True)` with distributed's defaults (AMM on)",
}


# ---------------------------------------------------------------- worker side (defined in
# __main__: cloudpickle sends them by value)


def warm() -> int:
    import dafstore.dask  # noqa: F401
    import dask.array  # noqa: F401
    import numpy  # noqa: F401

    return os.getpid()


def block_sum_shared(h, a: int, b: int) -> float:  # noqa: ANN001
    return float(h.get()[a:b].sum())


def block_sum(x: np.ndarray, a: int, b: int) -> float:
    return float(x[a:b].sum())


def memmap_rows(path: str, shape: tuple[int, int], a: int, b: int) -> np.ndarray:
    return np.memmap(path, dtype=np.float64, mode="r", shape=shape)[a:b]


# ---------------------------------------------------------------- measurement


# The sampler runs as its own small process (stdlib only), not as a thread of the client: a
# thread would share the GIL with the scheduler and the client's event loops, which made samples
# ~40 ms late on 2 cores and slowed the scheduler. It writes one line per sample to a file; the
# client closes its stdin to stop it. Guard and deadline: it kills the workers (their pids) and
# sends SIGINT to the client (whose wait in distributed's sync wakes within 10 s).
SAMPLER_CODE = r"""
import os, select, signal, sys, time
pids = [int(p) for p in sys.argv[1].split(",")]
client, scratch, out = int(sys.argv[2]), sys.argv[3], sys.argv[4]
interval, guard, deadline = float(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
sys.path.insert(0, sys.argv[8])  # bench/, for _common
from _common import mem_available, rollup_pss_anon, status_bytes, tree_allocated_bytes

tripped = None
t0 = time.perf_counter()
with open(out, "w", buffering=1) as f:  # line-buffered: the client reads it while it runs
    done = False
    while True:
        t = time.perf_counter()
        wpss = wanon = 0
        lost = []
        for pid in pids:
            r = rollup_pss_anon(pid)
            if r is None:
                lost.append(pid)
                continue
            wpss += r[0]
            wanon += r[1]
        c = status_bytes(client, "RssAnon")  # O(1), unlike smaps_rollup (the client maps 2 GiB)
        avail = mem_available()
        files = tree_allocated_bytes(scratch)
        spent = time.perf_counter() - t
        f.write(f"{t - t0:.4f} {wpss} {wanon} {c} {files} {avail} {spent:.5f} "
                f"{','.join(map(str, lost)) or '-'}\n")
        if done:
            break
        why = "memory" if avail < guard else "timeout" if t - t0 > deadline else None
        if why and tripped is None:
            tripped = why
            f.write(f"TRIPPED {why}\n")
            f.flush()
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            os.kill(client, signal.SIGINT)
        # At most ~25 % of a core: reading smaps_rollup walks the page tables of gigabytes.
        ready, _, _ = select.select([sys.stdin], [], [], max(interval - spent, 3 * spent))
        if ready and not sys.stdin.buffer.read1(1 << 16):
            done = True  # stdin closed: one last sample, then exit
"""


class Sampler:
    """Samples the workers' Pss/Anonymous, the client's Anonymous, the scratch bytes and
    MemAvailable from a separate process (see SAMPLER_CODE)."""

    def __init__(self, pids: list[int], scratch: Path, interval: float, guard_bytes: int,
                 deadline_s: float):
        self.pids, self.scratch, self.interval = pids, scratch, interval
        self.guard_bytes, self.deadline_s = guard_bytes, deadline_s
        self.samples: list[tuple[float, int, int, int, int]] = []  # t, wpss, wanon, canon, files
        self.costs: list[float] = []
        self.lost_workers: set[int] = set()
        self.min_available = None
        self.tripped = None  # why the sampler stopped the scheme: "memory" or "timeout"
        self.proc = None

    def sample(self) -> tuple[int, int, int, int]:
        wpss = wanon = 0
        for pid in self.pids:
            r = rollup_pss_anon(pid)
            if r is not None:
                wpss += r[0]
                wanon += r[1]
        return (wpss, wanon, status_bytes(os.getpid(), "RssAnon"),
                tree_allocated_bytes(self.scratch))

    def take_baseline(self, n: int = 5) -> None:
        rows = []
        for _ in range(n):
            rows.append(self.sample())
            time.sleep(self.interval)
        self.base = tuple(int(statistics.median(r[i] for r in rows)) for i in range(4))
        # Peak RSS of each process over the scheme, independent of the sampling: reset VmHWM
        # (clear_refs 5) now, read it at the end.
        self.rss_base = {}
        for pid in self.pids + [os.getpid()]:
            try:
                with open(f"/proc/{pid}/clear_refs", "w") as f:
                    f.write("5")
                self.rss_base[pid] = status_bytes(pid, "VmRSS")
            except OSError:
                pass

    def hwm_growth(self) -> dict:
        out = {}
        for pid, base in self.rss_base.items():
            hwm = status_bytes(pid, "VmHWM", None)
            out[pid] = None if hwm is None else hwm - base
        return out

    def start(self) -> None:
        fd, self.out = tempfile.mkstemp(prefix="dask-reduce-samples-", suffix=".txt")
        os.close(fd)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SAMPLER_CODE, ",".join(map(str, self.pids)), str(os.getpid()),
             str(self.scratch), self.out, str(self.interval), str(self.guard_bytes),
             str(self.deadline_s), HERE],
            stdin=subprocess.PIPE,
        )
        # The first sample is the clock's start: wait until the process has taken it.
        while os.path.getsize(self.out) == 0 and self.proc.poll() is None:
            time.sleep(0.002)

    def poll_tripped(self) -> str | None:
        try:
            with open(self.out) as f:
                for line in f:
                    if line.startswith("TRIPPED"):
                        self.tripped = line.split()[1]
        except OSError:
            pass
        return self.tripped

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with open(self.out) as f:
            for line in f:
                parts = line.split()
                if parts[0] == "TRIPPED":
                    self.tripped = parts[1]
                    continue
                t, wpss, wanon, canon, files, avail = (float(parts[0]), *map(int, parts[1:6]))
                self.samples.append((t, wpss, wanon, canon, files))
                self.costs.append(float(parts[6]))
                if parts[7] != "-":
                    self.lost_workers.update(int(p) for p in parts[7].split(","))
                if self.min_available is None or avail < self.min_available:
                    self.min_available = avail
        os.unlink(self.out)

    def summary(self) -> dict:
        b = self.base
        g = [(t, w - b[0], a - b[1], c - b[2], f - b[3]) for t, w, a, c, f in self.samples]
        step = max(1, len(g) // 300)
        span = g[-1][0] - g[0][0] if len(g) > 1 else 0.0
        return {
            "peak_total_bytes": max(x[1] + x[3] for x in g),
            "peak_ram_added_bytes": max(x[2] + x[3] + x[4] for x in g),
            "min_mem_available_bytes": self.min_available,
            "stopped_by_sampler": self.tripped,
            "peak_workers_pss_bytes": max(x[1] for x in g),
            "peak_workers_anon_bytes": max(x[2] for x in g),
            "peak_client_anon_bytes": max(x[3] for x in g),
            "peak_scratch_files_bytes": max(x[4] for x in g),
            "end_workers_pss_bytes": g[-1][1],
            "end_client_anon_bytes": g[-1][3],
            "baseline": {"workers_pss_bytes": b[0], "workers_anon_bytes": b[1],
                         "client_anon_bytes": b[2], "scratch_files_bytes": b[3]},
            "samples": len(g),
            "mean_sample_interval_ms": 1000 * span / max(1, len(g) - 1),
            "median_sample_cost_ms": 1000 * statistics.median(self.costs) if self.costs else None,
            "lost_workers": sorted(self.lost_workers),
            "series_growth_bytes": {"cols": ["t_s", "workers_pss", "workers_anon", "client_anon",
                                             "scratch_files"], "rows": g[::step]},
        }


class LogCapture(logging.Handler):
    """Keeps distributed's warnings (a nanny restarting a worker over its memory limit, a task
    failed after its workers died) for the report; addresses and pids are blanked so repeats
    can be counted."""

    LOGGERS = {"distributed.nanny.memory": logging.WARNING, "distributed.nanny": logging.WARNING,
               "distributed.scheduler": logging.ERROR}

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = re.sub(r"tcp://[\d.]+:\d+", "tcp://…", record.getMessage())
        msg = re.sub(r"pid=\d+", "pid=…", msg)
        msg = re.sub(r"'[a-z-]+-[0-9a-f]{32}'", "'…'", msg)
        self.lines.append(f"{record.name} {record.levelname}: {' '.join(msg.split())[:300]}")

    def __enter__(self) -> "LogCapture":
        self.saved = {}
        for name, level in self.LOGGERS.items():
            lg = logging.getLogger(name)
            self.saved[name] = lg.level
            lg.setLevel(level)
            lg.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in self.LOGGERS:
            lg = logging.getLogger(name)
            lg.removeHandler(self)
            lg.setLevel(self.saved[name])


class Stopped(KeyboardInterrupt):
    """Raised in the main thread when the sampler stops a scheme (a KeyboardInterrupt, so that
    distributed's ``sync`` cancels what it was waiting for)."""


def blocks(rows: int, per: int) -> list[tuple[int, int]]:
    return [(a, min(a + per, rows)) for a in range(0, rows, per)]


def run_scheme(scheme: str, x: np.ndarray, cfg: dict, rnd: int) -> dict:
    import dask
    import dask.array as da
    import distributed

    import dafstore
    import dafstore.dask as ddask

    rows, cols = x.shape
    per = cfg["rows_per_block"]
    bl = blocks(rows, per)
    scratch = Path(cfg["scratch"])
    share_path = scratch / f"share-{rnd}-{scheme}"
    out: dict = {"scheme": scheme, "round": rnd, "loadavg_at_start": os.getloadavg()}
    t_cluster = time.perf_counter()
    # scatter(broadcast=True) is documented as incompatible with the Active Memory Manager's
    # ReduceReplicas policy (on by default): the AMM drops the replicas that replicate() makes,
    # every 2 s, and a 2 GiB broadcast never completes. The "scatter" scheme therefore runs with
    # the AMM off, as distributed's documentation says; "scatter_amm_on" keeps the defaults.
    amm = {"distributed.scheduler.active-memory-manager.start": scheme != "scatter"}
    out["amm_on"] = amm["distributed.scheduler.active-memory-manager.start"]
    timeout = cfg["timeout_amm_on"] if scheme == "scatter_amm_on" else cfg["timeout"]
    out["timeout_s"] = timeout
    capture = LogCapture()
    with dask.config.set(amm), distributed.LocalCluster(
        n_workers=cfg["workers"], threads_per_worker=1, processes=True, dashboard_address=None,
        silence_logs=logging.ERROR, memory_limit=cfg["memory_limit"],
    ) as cluster, distributed.Client(cluster) as client, capture:
        pids = sorted(client.run(warm).values())
        # The same warm-up for every scheme: a tiny dask-array reduction and tiny tasks, so that
        # no scheme pays the workers' first imports and code paths in its time or memory.
        client.compute(da.ones(64, chunks=8).sum()).result()
        client.gather(client.map(block_sum, [np.ones((8, 2))] * 8, range(8), range(1, 9),
                                 pure=False))
        out["cluster_start_s"] = time.perf_counter() - t_cluster
        out["worker_pids"] = pids
        sampler = Sampler(pids, scratch, cfg["sample_ms"] / 1000, cfg["guard_bytes"], timeout)
        sampler.take_baseline()
        h = f = a = futs = None
        total = None
        t0 = t1 = t2 = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            running = [True]

            def on_sigint(signum, frame):  # noqa: ANN001
                # The sampler's SIGINT (guard or deadline) counts only while the scheme runs.
                if running[0]:
                    raise Stopped("stopped by the sampler")

            old_handler = signal.signal(signal.SIGINT, on_sigint)
            sampler.start()
            t0 = time.perf_counter()
            try:
                if scheme == "from_container":
                    a = ddask.from_container(cfg["container"], "x", chunks=(per, cols))
                    t1 = time.perf_counter()
                    total = float(client.compute(a.sum()).result(timeout=timeout))
                elif scheme == "share":
                    h = ddask.share(x, share_path)
                    t1 = time.perf_counter()
                    futs = [client.submit(block_sum_shared, h, lo, hi, pure=False) for lo, hi in bl]
                    distributed.wait(futs, timeout=timeout)
                    total = sum(client.gather(futs))
                elif scheme in ("scatter", "scatter_amm_on"):
                    f = client.scatter(x, broadcast=True)
                    t1 = time.perf_counter()
                    futs = [client.submit(block_sum, f, lo, hi, pure=False) for lo, hi in bl]
                    distributed.wait(futs, timeout=timeout)
                    total = sum(client.gather(futs))
                elif scheme == "memmap":
                    mm = np.memmap(cfg["raw"], dtype=np.float64, mode="r", shape=(rows, cols))
                    a = da.from_array(mm, chunks=(per, cols))
                    t1 = time.perf_counter()
                    total = float(client.compute(a.sum()).result(timeout=timeout))
                elif scheme == "memmap_per_task":
                    parts = [
                        da.from_delayed(
                            dask.delayed(memmap_rows, pure=True)(cfg["raw"], (rows, cols), lo, hi),
                            shape=(hi - lo, cols), dtype=np.float64,
                        )
                        for lo, hi in bl
                    ]
                    a = da.concatenate(parts, axis=0)
                    t1 = time.perf_counter()
                    total = float(client.compute(a.sum()).result(timeout=timeout))
                else:
                    raise ValueError(scheme)
                t2 = time.perf_counter()
            except BaseException as e:  # noqa: BLE001 - a failure is a result
                t2 = time.perf_counter()
                out["error"] = f"{type(e).__name__}: {e}"[:2000]
                out["traceback"] = traceback.format_exc()[-4000:]
                if isinstance(e, KeyboardInterrupt) and not sampler.poll_tripped():
                    raise
            finally:
                running[0] = False
                sampler.stop()
                hwm = sampler.hwm_growth()
                signal.signal(signal.SIGINT, old_handler)
            if sampler.tripped == "memory":
                total = None
                out["error"] = (
                    f"aborted by the memory guard: MemAvailable fell below "
                    f"{cfg['guard_bytes'] / 2**30:.1f} GiB after {t2 - t0:.1f} s (workers killed)")
            elif sampler.tripped == "timeout":
                total = None
                out["error"] = f"not done after {timeout:.0f} s: stopped (workers killed)"
        out["warnings"] = sorted({f"{w.category.__name__}: {' '.join(str(w.message).split())[:300]}"
                                  for w in caught})
        out["log_warnings"] = list(capture.lines)
        out["wall_s"] = t2 - t0
        out["compute_s"] = (t2 - t1) if t1 is not None else None
        out["setup_s"] = (t1 - t0) if t1 is not None else None
        out["result"] = total
        exp = cfg["expected"]
        out["ok"] = total is not None and abs(total - exp) <= 1e-9 * abs(exp)
        if total is not None and not out["ok"] and "error" not in out:
            out["error"] = f"wrong result: {total!r}, numpy says {exp!r}"
        out.update(sampler.summary())
        workers_hwm = [hwm.get(pid) for pid in pids]
        out["peak_rss_growth_by_worker_bytes"] = workers_hwm
        # Unknown if a worker died (its VmHWM went with it).
        out["peak_rss_workers_sum_bytes"] = (
            None if any(v is None for v in workers_hwm) else sum(workers_hwm))
        out["peak_rss_client_bytes"] = hwm.get(os.getpid())
        try:
            out["worker_memory_limit_bytes"] = min(
                w["memory_limit"] for w in client.scheduler_info()["workers"].values())
        except Exception:  # noqa: BLE001
            pass
        del futs, f, a
        if h is not None:
            h.close()
    # The share entry is a scratch entry: gone once the owner's hold and the workers' maps are.
    if scheme == "share" and share_path.exists():
        try:
            c = dafstore.open(share_path)
            c.gc()
            out["share_entries_left"] = c.ls()
            c.close()
        except Exception as e:  # noqa: BLE001
            out["share_entries_left"] = f"{type(e).__name__}: {e}"
        ddask._close(share_path)
        shutil.rmtree(share_path, ignore_errors=True)
    out["loadavg_at_end"] = os.getloadavg()
    return out


# ---------------------------------------------------------------- report


def machine_info() -> dict:
    import dask
    import distributed

    import dafstore

    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "?"
    return {
        "date": utc_now(), "cpus": os.cpu_count(), "cpu": cpu_model(), "kernel": platform.release(),
        "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "mem_available_at_start_bytes": mem_available(), "python": platform.python_version(),
        "versions": {"numpy": np.__version__, "dask": dask.__version__,
                     "distributed": distributed.__version__,
                     "dafstore": getattr(dafstore, "__version__", "?")},
        "dafstore_package": os.path.dirname(dafstore.__file__),
        "repo_commit": commit,
        "command": " ".join([sys.executable, "bench/dask_reduce.py", *sys.argv[1:]]),
    }


def fmt(v: float | None, nd: int = 2) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{nd}f}"


def render(res: dict) -> str:
    m, cfg, runs = res["machine"], res["config"], res["runs"]
    v = m["versions"]
    size = cfg["array_bytes"]
    schemes = cfg["schemes"]
    limits = [r["worker_memory_limit_bytes"] for r in runs if r.get("worker_memory_limit_bytes")]
    limit = min(limits) if limits else float("nan")
    loads = [r["loadavg_at_start"][0] for r in runs] + [r["loadavg_at_end"][0] for r in runs]
    L = [
        f"**Machine:** {m['date']}; {m['cpus']} CPUs ({m['cpu']}), {m['memory_bytes'] / 2**30:.1f} GiB "
        f"RAM ({m['mem_available_at_start_bytes'] / 2**30:.1f} GiB available at start), Linux "
        f"{m['kernel']}; Python {m['python']}, numpy {v['numpy']}, dask {v['dask']}, distributed "
        f"{v['distributed']}, dafstore {v['dafstore']} (`{m['dafstore_package']}`; script at "
        f"{m['repo_commit']}); 1-minute load {min(loads):.1f}–{max(loads):.1f} during the "
        f"measurements; {res['seconds_total']:.0f} s in all. Command: `{m['command']}`.",
        "",
        f"**Data:** one float64 array of {cfg['shape'][0]:,} × {cfg['shape'][1]:,} "
        f"({size / MIB:,.0f} MiB), written once to a container (`c.write`: {res['setup']['write_container_s']:.2f} s) "
        f"and once as a raw file (`x.tofile`: {res['setup']['write_raw_s']:.2f} s) on {cfg['dir']}, not "
        f"timed below. Reduction: the sum of all elements, as {cfg['blocks']} row blocks of "
        f"{cfg['rows_per_block']:,} rows ({cfg['rows_per_block'] * cfg['shape'][1] * 8 / MIB:.0f} MiB); "
        f"{cfg['workers']} worker processes (`LocalCluster(processes=True, threads_per_worker=1)`, "
        f"memory limit {limit / 2**30:.1f} GiB a worker"
        f"{' (the default: RAM ÷ workers)' if cfg.get('memory_limit', 'auto') == 'auto' else ''}, "
        f"fresh for each scheme and round; the Active Memory Manager off for `scatter` only, as "
        "`scatter(broadcast=True)` requires), "
        f"{cfg['rounds']} round{'s' if cfg['rounds'] != 1 else ''}, the order of the schemes rotated "
        f"each round{' (' + ', '.join(cfg.get('once', [])) + ': first round only)' if cfg.get('once') else ''}; "
        f"memory sampled every ≥ {cfg['sample_ms']:.0f} ms by a separate process (at most ~25 % "
        "of a core; the interval achieved is in the parts table).",
        "",
    ]

    def of(s: str, ok_only: bool) -> list[dict]:
        return [r for r in runs if r["scheme"] == s and (r["ok"] or not ok_only)]

    def med(s: str, key: str, scale: float = 1.0, ok_only: bool = True) -> float | None:
        vals = [r[key] for r in of(s, ok_only) if r.get(key) is not None]
        return statistics.median(vals) / scale if vals else None

    def failed_in(s: str) -> bool:
        return any(not r["ok"] for r in of(s, False))

    def ratio(s: str, ref: str, key: str, ok_only: bool = True) -> float | None:
        by_round = {r["round"]: r for r in of(ref, ok_only) if r.get(key)}
        vals = [r[key] / by_round[r["round"]][key] for r in of(s, ok_only)
                if r["round"] in by_round and r.get(key) is not None]
        return statistics.median(vals) if vals else None

    for r in runs:  # results written before the rule above: a dead worker's peak is unknown
        if None in r.get("peak_rss_growth_by_worker_bytes", []):
            r["peak_rss_workers_sum_bytes"] = None

    def mib(s: str, key: str) -> str:
        # Memory: every round, failed ones included (their peak up to the failure), marked †.
        v = med(s, key, MIB, ok_only=False)
        return fmt(v, 0) + ("†" if v is not None and failed_in(s) else "")

    def per_array(s: str, key: str) -> str:
        v = med(s, key, ok_only=False)
        return fmt(v / size if v is not None else None) + ("†" if v is not None and failed_in(s) else "")

    ref = "from_container" if "from_container" in schemes else schemes[0]
    any_failed = any(failed_in(s) for s in schemes)
    L += [
        f"Medians over the rounds; wall times of the rounds that succeeded only; × {ref}: median "
        "of the per-round ratios. Memory in MiB, growth over the value just before the clock "
        f"started; ÷ array: ÷ {size / MIB:,.0f} MiB. **Peak total (PSS)** = the largest sum, in "
        "one sample, of the workers' PSS and the client's anonymous memory. **Peak RAM added** = "
        "the largest sum of the workers' and the client's anonymous memory and the new files in "
        "/dev/shm (share's published copy: tmpfs pages are RAM whether mapped or not, and count in "
        "PSS only while a worker maps them); the container and the raw file the other schemes "
        "read were there before, as `x` was in the client."
        + (" †: includes rounds that failed (the peak until the failure; workers that their nanny "
           "restarted are not sampled: new pids), a lower bound of what the scheme needs."
           if any_failed else ""),
        "",
        f"| scheme | wall s | × {ref} | compute part s | **peak total (PSS)** | ÷ array | "
        "**peak RAM added** | ÷ array | failed rounds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in schemes:
        fails = [r for r in of(s, False) if not r["ok"]]
        wall = fmt(med(s, "wall_s"))
        if not of(s, True) and fails:
            ws = [r["wall_s"] for r in fails]
            wall = (f"failed after {min(ws):.0f}" + (f"–{max(ws):.0f}" if len(ws) > 1 else "") + " s")
        L.append(
            f"| {LABELS[s]} | {wall} | {fmt(ratio(s, ref, 'wall_s'))} | "
            f"{fmt(med(s, 'compute_s'))}{' (incl. shipping)' if s == 'memmap' and of(s, True) else ''} | "
            f"**{mib(s, 'peak_total_bytes')}** | {per_array(s, 'peak_total_bytes')} | "
            f"**{mib(s, 'peak_ram_added_bytes')}** | {per_array(s, 'peak_ram_added_bytes')} | "
            f"{len(fails)} of {len(of(s, False))}"
            + (f": {fails[0].get('error', '?').split(':')[0]}" if fails else "")
            + (" (its nanny restarted each worker over 95 % of its memory limit)"
               if any("exceeded 95% memory budget" in w for r in fails for w in r.get("log_warnings", []))
               else "") + " |"
        )
    L += [
        "",
        "The parts (MiB, medians, sampled unless said): each alone at its own peak; Σ workers' peak "
        "RSS = each worker's peak RSS over the scheme (VmHWM, reset just before the clock, not "
        "sampled) less its RSS then, summed: shared pages count in full in every worker and the "
        "peaks need not coincide, so it bounds the workers' RSS at any one moment from above (it "
        "is not what they touched over the run: a task's pages leave the RSS when its map goes).",
        "",
        "| scheme | workers' PSS | workers' anonymous | client anonymous | new /dev/shm | "
        "Σ workers' peak RSS (VmHWM) | client peak RSS (VmHWM) | lowest MemAvailable GiB | "
        "samples, interval ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in schemes:
        lows = [r["min_mem_available_bytes"] for r in of(s, False)
                if r.get("min_mem_available_bytes") is not None]
        L.append(
            f"| {s} | {mib(s, 'peak_workers_pss_bytes')} | {mib(s, 'peak_workers_anon_bytes')} | "
            f"{mib(s, 'peak_client_anon_bytes')} | {mib(s, 'peak_scratch_files_bytes')} | "
            f"{mib(s, 'peak_rss_workers_sum_bytes')} | {mib(s, 'peak_rss_client_bytes')} | "
            f"{fmt(min(lows) / 2**30 if lows else None, 1)} | "
            f"{fmt(med(s, 'samples', ok_only=False), 0)}, {fmt(med(s, 'mean_sample_interval_ms', ok_only=False), 0)} |"
        )
    ours = [s for s in ("from_container", "share") if s in schemes]
    others = [s for s in ("scatter", "memmap", "memmap_per_task") if s in schemes]
    if ours and others:
        L += ["", "Ours ÷ theirs (medians of the per-round ratios; < 1: ours is faster / smaller; "
              "≤: theirs failed in every round, the ratio is to their peak until the failure, "
              "so the true ratio is at most this):", "",
              "| ours | against | wall time | peak total (PSS) | peak RAM added |", "|---|---|---|---|---|"]
        for o in ours:
            for t in others:
                bound = "≤ " if not of(t, True) and of(t, False) else ""

                def mem_ratio(key: str) -> str:
                    v = ratio(o, t, key, ok_only=not bound)
                    if v is not None and v < 0.001:
                        return "< 0.001"
                    return (bound if v is not None else "") + fmt(v, 3 if v is not None and v < 0.01 else 2)

                L.append(f"| {o} | {t} | {fmt(ratio(o, t, 'wall_s'))} | "
                         f"{mem_ratio('peak_total_bytes')} | {mem_ratio('peak_ram_added_bytes')} |")
    L += ["", "Every round (wall s / peak total (PSS) MiB / peak RAM added MiB; `FAILED` with the error):", "",
          "| round | " + " | ".join(schemes) + " | order |", "|---|" + "---|" * (len(schemes) + 1)]
    for rnd in sorted({r["round"] for r in runs}):
        cells = []
        for s in schemes:
            r = next((r for r in runs if r["round"] == rnd and r["scheme"] == s), None)
            if r is None:
                cells.append("—")
            elif not r["ok"]:
                cells.append(f"FAILED after {r['wall_s']:.1f} s (peaks {r['peak_total_bytes'] / MIB:.0f} / "
                             f"{r['peak_ram_added_bytes'] / MIB:.0f}): {r.get('error', '?')[:130]}")
            else:
                cells.append(f"{r['wall_s']:.2f} / {r['peak_total_bytes'] / MIB:.0f} / "
                             f"{r['peak_ram_added_bytes'] / MIB:.0f}")
        order = " → ".join(r["scheme"] for r in runs if r["round"] == rnd)
        L.append(f"| {rnd + 1} | " + " | ".join(cells) + f" | {order} |")
    notes = []
    for r in runs:
        for w in r.get("warnings", []):
            notes.append(f"round {r['round'] + 1} {r['scheme']}: {w}")
        for w in sorted(set(r.get("log_warnings", []))):
            n = r["log_warnings"].count(w)
            notes.append(f"round {r['round'] + 1} {r['scheme']}: distributed logged{f' ({n}×)' if n > 1 else ''}: {w}")
        if r.get("lost_workers"):
            notes.append(f"round {r['round'] + 1} {r['scheme']}: workers gone during the sampling: {r['lost_workers']}")
        if r.get("share_entries_left"):
            notes.append(f"round {r['round'] + 1} share: entries left after the cluster closed: {r['share_entries_left']}")
    if notes:
        L += ["", "Warnings and notes from the runs:", ""] + [f"- {n}" for n in notes]
    return "\n".join(L)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gib", type=float, default=2.0)
    p.add_argument("--cols", type=int, default=1024)
    p.add_argument("--chunk-mib", type=int, default=128)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--schemes", default=",".join(SCHEMES))
    p.add_argument("--sample-ms", type=float, default=20.0)
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per scheme and round")
    p.add_argument("--timeout-amm-on", type=float, default=300.0,
                   help="seconds for scatter_amm_on (which does not finish at 2 GiB here)")
    p.add_argument("--once", default="scatter_amm_on",
                   help="schemes run in the first round only (comma-separated)")
    p.add_argument("--dir", default="/dev/shm")
    p.add_argument("--memory-limit", default="auto",
                   help="LocalCluster's memory_limit per worker (default: RAM ÷ workers)")
    p.add_argument("--render", metavar="JSON",
                   help="only write the .md (and print it) again from a results JSON")
    p.add_argument("--min-available-gib", type=float, default=1.5,
                   help="memory guard: abort a scheme (kill its workers) below this MemAvailable")
    p.add_argument("--quick", action="store_true", help="128 MiB, 8 MiB blocks, 1 round")
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "dask_reduce"),
                   help="output prefix (.json and .md are added)")
    a = p.parse_args()
    if a.render:
        res = json.loads(Path(a.render).read_text())
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        text = render(res) + (
            f"\n\n(Tables rendered again from `{os.path.basename(a.render)}` by `bench/dask_reduce.py "
            f"--render` at {commit or '?'}: the measurements are those of the run described above.)")
        print(text)
        Path(a.render).with_suffix(".md").write_text(text + "\n")
        return 0
    if a.quick:
        a.gib, a.chunk_mib, a.rounds = 0.125, 8, 1
    schemes = [s for s in a.schemes.split(",") if s]
    once = [s for s in a.once.split(",") if s]
    for s in schemes:
        if s not in SCHEMES:
            p.error(f"unknown scheme {s!r}; known: {', '.join(SCHEMES)}")
    logging.getLogger("distributed").setLevel(logging.CRITICAL)  # shutdown noise
    started = time.time()

    import dafstore

    n = int(a.gib * 2**30) // 8
    rows = n // a.cols
    rows_per_block = max(1, (a.chunk_mib * MIB) // (8 * a.cols))
    root = Path(tempfile.mkdtemp(prefix="dafstore-bench-dask-reduce-", dir=a.dir))
    machine = machine_info()
    runs: list[dict] = []
    try:
        x = np.random.default_rng(0).random((rows, a.cols))
        expected = float(x.sum())
        t = time.perf_counter()
        c = dafstore.create(root / "src")
        c.write("x", x)
        c.close()
        write_container_s = time.perf_counter() - t
        t = time.perf_counter()
        x.tofile(root / "x.f64")
        write_raw_s = time.perf_counter() - t
        cfg = {
            "shape": [rows, a.cols], "array_bytes": x.nbytes, "rows_per_block": rows_per_block,
            "blocks": len(blocks(rows, rows_per_block)), "workers": a.workers, "rounds": a.rounds,
            "schemes": schemes, "sample_ms": a.sample_ms, "timeout": a.timeout, "dir": a.dir,
            "scratch": str(root), "container": str(root / "src"), "raw": str(root / "x.f64"),
            "expected": expected, "quick": a.quick,
            "guard_bytes": int(a.min_available_gib * 2**30),
            "timeout_amm_on": a.timeout_amm_on, "once": once,
            "memory_limit": None if a.memory_limit == "none" else a.memory_limit,
        }
        print(f"{x.nbytes / MIB:,.0f} MiB array, {cfg['blocks']} blocks, {a.workers} workers, "
              f"{a.rounds} rounds; numpy sum {expected!r}", flush=True)
        for rnd in range(a.rounds):
            order = schemes[rnd % len(schemes):] + schemes[: rnd % len(schemes)]
            for s in order:
                if rnd > 0 and s in once:
                    continue
                r = run_scheme(s, x, cfg, rnd)
                runs.append(r)
                print(f"round {rnd + 1} {s}: wall {r['wall_s']:.2f} s, compute "
                      f"{fmt(r['compute_s'])} s, peak total {r['peak_total_bytes'] / MIB:.0f} MiB "
                      f"(workers PSS {r['peak_workers_pss_bytes'] / MIB:.0f}, anon "
                      f"{r['peak_workers_anon_bytes'] / MIB:.0f}; client anon "
                      f"{r['peak_client_anon_bytes'] / MIB:.0f}; new shm "
                      f"{r['peak_scratch_files_bytes'] / MIB:.0f}; RAM added {r['peak_ram_added_bytes'] / MIB:.0f}), "
                      f"{r['samples']} samples, lowest MemAvailable {r['min_mem_available_bytes'] / 2**30:.1f} GiB"
                      + ("" if r["ok"] else f"; FAILED: {r.get('error')}"), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    res = {"machine": machine, "config": {**cfg, "scratch": None}, "runs": runs,
           "setup": {"write_container_s": write_container_s, "write_raw_s": write_raw_s},
           "seconds_total": time.time() - started, "args": vars(a)}
    text = render(res)
    print()
    print(text)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    out.with_suffix(".md").write_text(text + "\n")
    bad = [f"round {r['round'] + 1} {r['scheme']}" for r in runs if not r["ok"]]
    if bad:
        print(f"\nfailed or wrong: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
