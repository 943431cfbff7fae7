"""open_or_load (SPEC 9.6): of the processes that ask for an absent entry at the same moment,
exactly one runs its loader; the others wait without the GIL and map what it published; a loader
that raises or dies is taken over by a waiter; a timeout names the loading process."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp

import dafstore

import _workers

TIMEOUT = 120


def test_four_processes_asking_at_once_load_once_and_all_map_it(
    container: dafstore.Container, workdir: Path
) -> None:
    ctx = mp.get_context("spawn")
    log = workdir / "loads.log"
    log.write_text("")
    start, out = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_workers.open_or_load_counting,
                         args=(container.path, "in/x", str(log), start, out)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=TIMEOUT) for _ in procs]
    for p in procs:
        p.join(TIMEOUT)
        assert p.exitcode == 0
    assert [r[1] for r in results] == [float(np.arange(1000).sum())] * 4, results
    assert len(log.read_text().splitlines()) == 1  # one load for the host
    assert container.loads() == []


def test_every_kind_a_loader_returns_is_published_and_opened_by_its_kind(
    container: dafstore.Container,
) -> None:
    a = container.open_or_load("d", lambda: np.arange(6.0).reshape(2, 3))
    assert isinstance(a, np.ndarray) and a.shape == (2, 3)
    m = container.open_or_load("s", lambda: sp.eye(3, format="csr"))
    assert sp.issparse(m) and m.nnz == 3
    t = container.open_or_load("t", lambda: pa.table({"x": [1, 2], "y": ["a", "b"]}))
    assert isinstance(t, pa.Table) and t.column("y").to_pylist() == ["a", "b"]

    def fill() -> None:  # a loader that publishes the name itself
        with container.create("w", (4,), "int32") as w:
            w[:] = 7

    assert container.open_or_load("w", fill).tolist() == [7] * 4
    # Published: opened, the loader is not called.
    assert container.open_or_load("d", lambda: pytest.fail("called")).shape == (2, 3)
    with pytest.raises(dafstore.DafstoreError, match="is not live"):
        container.open_or_load("nothing", lambda: None)


def test_a_loader_that_raises_is_reported_and_the_next_waiter_loads(
    container: dafstore.Container,
) -> None:
    calls: list[str] = []
    start = threading.Barrier(3)
    results: dict[str, object] = {}

    def worker(tag: str) -> None:
        c = dafstore.open(container.path)  # its own handle: a separate lock description
        start.wait()

        def loader() -> np.ndarray:
            calls.append(tag)
            if len(calls) == 1:
                time.sleep(0.2)
                raise ConnectionError("the source is unreachable")
            return np.ones(3)

        try:
            results[tag] = float(c.open_or_load("x", loader).sum())
        except ConnectionError as e:
            results[tag] = str(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in "abc"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert sorted(map(str, results.values())) == ["3.0", "3.0", "the source is unreachable"]
    assert len(calls) == 2  # the failure, then one load


def test_a_killed_loader_is_taken_over_and_a_timeout_names_it(
    container: dafstore.Container,
) -> None:
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    p = ctx.Process(target=_workers.hold_load_lock_until_killed,
                    args=(container.path, "big", ready))
    p.start()
    try:
        assert ready.wait(TIMEOUT)
        (loader,) = container.loads()
        assert (loader.pid, loader.name) == (p.pid, "big")
        t0 = time.monotonic()
        with pytest.raises(dafstore.LoadTimeoutError, match=f"process {p.pid} .*\"big\""):
            container.open_or_load("big", lambda: pytest.fail("called"), timeout=0.2)
        assert time.monotonic() - t0 >= 0.2

        # A waiter blocked without the GIL: this thread keeps running meanwhile.
        got: list[float] = []
        waiter = threading.Thread(
            target=lambda: got.append(float(container.open_or_load("big", lambda: np.ones(5)).sum())))
        waiter.start()
        ticks = 0
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            ticks += 1
        assert waiter.is_alive() and ticks > 1000
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.join(TIMEOUT)
    waiter.join(TIMEOUT)  # taken over at once: the dead loader's lock is free
    assert got == [5.0]
    assert container.loads() == []
