"""The seed 000 workflow end to end: a parent and 4 worker processes (multiprocessing, spawn) share
large arrays through one container; intermediate scratch arrays vanish after the last worker
releases them; results equal numpy's; a worker killed with SIGKILL leaks no reference and blocks
no deletion."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from pathlib import Path

import numpy as np
import scipy.sparse as sp

import dafstore

import _workers

WORKERS = 4
ROWS, COLS = 2048, 2048  # 32 MiB of float64, shared by every worker
TIMEOUT = 120


def spawn() -> mp.context.SpawnContext:
    return mp.get_context("spawn")


def run(ctx, target, args_of) -> list:
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args_of(i), out)) for i in range(WORKERS)]
    for p in procs:
        p.start()
    results = sorted(out.get(timeout=TIMEOUT) for _ in procs)
    for p in procs:
        p.join(TIMEOUT)
        assert p.exitcode == 0
    assert [r[1] for r in results] == ["ok"] * WORKERS, results
    return results


def array_files(root: str, prefix: str) -> list[Path]:
    return sorted(p for p in Path(root, prefix).glob("*") if p.is_file())


def test_seed_000_workflow(container: dafstore.Container) -> None:
    ctx = spawn()
    rng = np.random.default_rng(0)
    path = container.path
    with container.create("input/X", (ROWS, COLS), "float64") as x:
        x[:] = rng.random((ROWS, COLS))
    m = sp.random(ROWS, COLS, density=0.01, format="csr", random_state=1)
    container.write_sparse("input/M", m)
    v = rng.random(COLS)
    container.write("input/v", v)

    # Stage 1: partial results as scratch arrays.
    run(ctx, _workers.partial_sums, lambda i: (path, i, WORKERS))
    tmp = [f"tmp/colsum_{i}" for i in range(WORKERS)] + [f"tmp/spmv_{i}" for i in range(WORKERS)]
    assert all(container.info(n).scratch for n in tmp)
    assert len(array_files(path, "tmp")) == 2 * len(tmp)  # .array + .yaml each

    # Stage 2: every worker holds every partial at once, then releases them.
    barrier = ctx.Barrier(WORKERS + 1)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_workers.normalise, args=(path, i, WORKERS, barrier, out))
        for i in range(WORKERS)
    ]
    for p in procs:
        p.start()
    barrier.wait(TIMEOUT)
    holders = [h for h in container.holders() if not h.this_process]
    assert len(holders) == WORKERS and all(h.alive for h in holders)
    for h in holders:
        assert set(tmp) <= {a.name for a in h.arrays}
    assert set(tmp) <= set(container.ls())  # held: still there
    barrier.wait(TIMEOUT)
    results = sorted(out.get(timeout=TIMEOUT) for _ in procs)
    for p in procs:
        p.join(TIMEOUT)
        assert p.exitcode == 0
    assert [r[1] for r in results] == ["ok"] * WORKERS, results

    # The scratch partials vanished with the last worker's release: rows and files.
    assert not [n for n in container.ls() if n.startswith("tmp/")]
    assert array_files(path, "tmp") == []
    assert all(not h.arrays for h in container.holders() if not h.this_process)

    # Values equal numpy's.
    xs = container.open("input/X")
    parts = [xs[_workers.chunk(i, WORKERS, ROWS)].sum(axis=0) for i in range(WORKERS)]
    total = _workers.ordered_sum(parts)
    got = np.concatenate([container.open(f"result/normalised_{i}") for i in range(WORKERS)])
    np.testing.assert_array_equal(got, xs / total)
    np.testing.assert_allclose(got, xs / xs.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(container.open("result/spmv"), m @ v, rtol=1e-12)
    assert container.fsck(deep=True).clean


def test_killed_worker_leaks_no_reference_and_blocks_no_deletion(
    container: dafstore.Container,
) -> None:
    ctx = spawn()
    container.write("input/X", np.arange(1 << 20, dtype=np.float64))
    container.write("input/victim", np.ones(1 << 16))
    container.write("tmp/scratch", np.ones(1 << 16), scratch=True)
    ready = ctx.Event()
    p = ctx.Process(
        target=_workers.hold_until_killed,
        args=(container.path, ["input/X", "input/victim", "tmp/scratch"], ready),
    )
    p.start()
    try:
        assert ready.wait(TIMEOUT)
        (worker,) = [h for h in container.holders() if not h.this_process]
        assert worker.alive and worker.pid == p.pid
        assert {a.name for a in worker.arrays} == {"input/X", "input/victim", "tmp/scratch"}
        assert container.remove("input/victim") == dafstore.Removal(deferred=True, holders=1)
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.join(TIMEOUT)
    assert p.exitcode == -signal.SIGKILL

    # A dead holder blocks nothing: removing what it held is immediate, with no gc first (a dead
    # session's records count for nothing, SPEC [P5]); it is shown as dead until gc.
    (dead,) = [h for h in container.holders() if not h.this_process]
    assert not dead.alive
    assert container.remove("input/X") == dafstore.Removal(deferred=False, holders=0)
    assert [h.alive for h in container.holders() if not h.this_process] == [False]
    # gc (which also runs at every open) runs the deletions the dead worker was blocking.
    report = container.gc()
    assert set(report.deleted) == {"input/victim", "tmp/scratch"}
    assert container.ls() == []
    assert [h for h in container.holders() if not h.this_process] == []
    assert array_files(container.path, "input") == array_files(container.path, "tmp") == []
    assert container.fsck().clean


def test_gc_alone_reaps_a_killed_worker_and_runs_its_deferred_deletions(
    container: dafstore.Container,
) -> None:
    ctx = spawn()
    container.write("victim", np.ones(1 << 16))
    container.write("scratch", np.ones(1 << 16), scratch=True)
    ready = ctx.Event()
    p = ctx.Process(
        target=_workers.hold_until_killed,
        args=(container.path, ["victim", "scratch"], ready),
    )
    p.start()
    try:
        assert ready.wait(TIMEOUT)
        assert container.remove("victim").deferred
        (worker,) = [h for h in container.holders() if not h.this_process]
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.join(TIMEOUT)
    report = container.gc()
    assert report.reaped_sessions == (worker.session,)
    assert set(report.deleted) == {"victim", "scratch"}
    assert container.ls() == [] and container.holders()[0].this_process
