"""The cache (issue 18): lifecycles (persistent, scratch, cached) on every write and on
open_or_load, a container's capacity and free space floor, usage, eviction of the least recently
released cached entries nobody holds (never held or persistent ones), CapacityError naming who
holds what, writes that wait for room, and processes loading under a small capacity."""

from __future__ import annotations

import errno
import gc
import math
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
ENTRY = 800  # bytes of one test entry: 100 float64


def entry(v: float) -> np.ndarray:
    return np.full(100, v, dtype=np.float64)


def tick() -> None:
    """Lets the clock move on: release times are in milliseconds."""
    time.sleep(0.02)


def test_every_write_takes_a_lifecycle_and_info_shows_it(container: dafstore.Container) -> None:
    c = container
    before = time.time() * 1000
    c.write("d", np.zeros(4))
    c.write("d_cached", np.zeros(4), lifecycle="cached")
    c.write("d_persistent", np.zeros(4), lifecycle="persistent")
    c.write("d_scratch", np.zeros(4), scratch=True)  # the older spelling
    c.write("d_scratch2", np.zeros(4), lifecycle="scratch", scratch=True)  # both agree
    c.write_sparse("s_cached", sp.eye(3, format="csr"), lifecycle="cached")
    c.write_sparse("s_scratch", sp.eye(3, format="csc"), scratch=True)
    c.write_sparse("s", sp.eye(3, format="csr"))
    c.write_table("t_cached", pa.table({"x": [1, 2]}), lifecycle="cached")
    c.write_table("t_scratch", pa.table({"x": [1, 2]}), scratch=True)
    c.write_table("t", pa.table({"x": [1, 2]}))
    with c.create("w_cached", (3,), lifecycle="cached") as w:
        w[:] = 1
    with c.create("w", (3,)) as w:
        w[:] = 1
    expected = {
        "d": "persistent", "d_cached": "cached", "d_persistent": "persistent",
        "d_scratch": "scratch", "d_scratch2": "scratch", "s_cached": "cached",
        "s_scratch": "scratch", "s": "persistent", "t_cached": "cached", "t_scratch": "scratch",
        "t": "persistent", "w_cached": "cached", "w": "persistent",
    }
    after = time.time() * 1000
    assert c.ls() == sorted(expected)  # scratch entries never held are kept
    for name, lifecycle in expected.items():
        info = c.info(name)
        assert (info.lifecycle, info.scratch) == (lifecycle, lifecycle == "scratch"), name
        # Published now: the release time starts at the publish.
        assert before - 5 <= info.released_at <= after + 5, name
    assert dafstore.LIFECYCLES == ("persistent", "scratch", "cached")

    c.set_lifecycle("d", "cached")
    assert c.info("d").lifecycle == "cached"
    c.set_scratch("d", False)
    assert c.info("d").lifecycle == "persistent"
    c.set_lifecycle("d", "scratch")
    assert c.info("d").scratch
    with c.hold("d"):
        pass  # held, then released: a scratch entry goes
    assert "d" not in c
    with pytest.raises(dafstore.ArrayNotFoundError):
        c.set_lifecycle("d", "cached")


def test_a_bad_lifecycle_is_a_value_error_and_writes_nothing(
    container: dafstore.Container,
) -> None:
    c = container
    c.write("x", np.zeros(2))
    for write in (
        lambda **k: c.write("n", np.zeros(2), **k),
        lambda **k: c.write_sparse("n", sp.eye(2, format="csr"), **k),
        lambda **k: c.write_table("n", pa.table({"x": [1]}), **k),
        lambda **k: c.create("n", (2,), **k),
        lambda **k: c.open_or_load("n", lambda: np.zeros(2), **k),
    ):
        with pytest.raises(ValueError, match="lifecycle 'temporary': use 'persistent'"):
            write(lifecycle="temporary")
        with pytest.raises(ValueError, match="lifecycle 1: use"):
            write(lifecycle=1)
        with pytest.raises(ValueError, match="scratch=True and lifecycle='cached' disagree"):
            write(lifecycle="cached", scratch=True)
    with pytest.raises(ValueError, match="lifecycle 'Cached'"):
        c.set_lifecycle("x", "Cached")
    with pytest.raises(ValueError, match="lifecycle None"):
        c.set_lifecycle("x", None)  # type: ignore[arg-type]
    # The native layer checks too, with the engine's names.
    with pytest.raises(ValueError, match='lifecycle "bogus": use "persistent"'):
        c._c.write_dense("n", np.zeros(2), "float64", [2], False, True, "bogus")
    with pytest.raises(ValueError, match='lifecycle "bogus"'):
        c._c.set_lifecycle("x", "bogus")
    assert c.ls() == ["x"] and c.info("x").lifecycle == "persistent"


def test_sizes_limits_and_usage(container: dafstore.Container, workdir: Path) -> None:
    c = container
    assert c.limits() == dafstore.Limits(capacity=None, min_free=None)
    assert c.usage() == dafstore.Usage(entries=0, reserved=0, evictable=0)
    for size, n in [
        ("400G", 400 * 2**30), ("1.5GiB", 3 * 2**29), ("512M", 512 * 2**20), ("64k", 65536),
        ("2 TB", 2 * 2**40), ("100", 100), ("100B", 100), (".5K", 512), ("1.3K", 1331),
        (12345, 12345), (np.int64(7), 7), (0, 0), (2**63 - 1, 2**63 - 1), ("7E", 7 * 2**60),
    ]:
        c.set_capacity(size)
        assert c.limits().capacity == n, size
    c.set_min_free("1G")
    assert c.limits() == dafstore.Limits(capacity=7 * 2**60, min_free=2**30)
    c.set_capacity(None)
    assert c.limits() == dafstore.Limits(capacity=None, min_free=2**30)
    for bad in ["-1G", "1.5X", "G", "", "1e3", "1,5G", -1, 1.5, True, 2**63, "8E", [1]]:
        with pytest.raises(ValueError, match="capacity"):
            c.set_capacity(bad)
        with pytest.raises(ValueError, match="min_free"):
            c.set_min_free(bad)
    assert c.limits() == dafstore.Limits(capacity=None, min_free=2**30)  # unchanged
    c.set_min_free(None)
    assert c.limits() == dafstore.Limits(None, None)

    c.write("p", entry(1))
    c.write("k", entry(2), lifecycle="cached")
    assert c.usage() == dafstore.Usage(entries=2 * ENTRY, reserved=0, evictable=ENTRY)
    with c.hold("k"):
        assert c.usage().evictable == 0  # held: not evictable
    assert c.usage().evictable == ENTRY

    # Recorded in the container: every handle and process sees it.
    c.set_capacity("1M")
    assert dafstore.open(c.path).limits().capacity == 2**20
    assert dafstore.open(c.path, read_only=True).limits().capacity == 2**20
    with pytest.raises(dafstore.ReadOnlyError):
        dafstore.open(c.path, read_only=True).set_capacity("2M")

    d = dafstore.create(workdir / "sized", capacity="8M", min_free=1024)
    assert d.limits() == dafstore.Limits(8 * 2**20, 1024)
    with pytest.raises(ValueError, match="capacity '8Q'"):
        dafstore.create(workdir / "bad", capacity="8Q")
    assert not (workdir / "bad").exists()  # checked before anything is made


def test_over_capacity_a_write_evicts_the_least_recently_released_cached_entries(
    container: dafstore.Container,
) -> None:
    c = container
    c.set_capacity(6 * ENTRY)
    for n in "abc":
        c.write(n, entry(ord(n)), lifecycle="cached")
        tick()
    c.write("p", entry(0))  # persistent
    c.write("h", entry(0), lifecycle="cached")
    tick()
    held = c.hold("h")  # held: never evicted
    # Released in this order: c (published first of the three, never used), then b, then a.
    b = c.open("b")
    float(b.sum())
    del b  # the release
    tick()
    with c.hold("a"):
        pass
    tick()
    order = sorted("abc", key=lambda n: c.info(n).released_at)
    assert order == ["c", "b", "a"]
    assert c.usage() == dafstore.Usage(entries=5 * ENTRY, reserved=0, evictable=3 * ENTRY)

    c.write("x", entry(10), lifecycle="cached")  # fits: 6 entries
    tick()
    assert c.ls() == ["a", "b", "c", "h", "p", "x"]
    c.write("y", entry(11), lifecycle="cached")
    assert c.ls() == ["a", "b", "h", "p", "x", "y"]  # c: the least recently released
    tick()
    c.write("z", entry(12))  # a persistent write evicts cached entries too
    assert c.ls() == ["a", "h", "p", "x", "y", "z"]
    tick()
    c.write_sparse("s", sp.csr_matrix(np.eye(10)), lifecycle="cached")  # 80 + 40 + 44 bytes
    assert c.ls() == ["h", "p", "s", "x", "y", "z"]
    tick()
    c.write("big", np.zeros(200))  # 1600 bytes: the next two (x, then y)
    assert c.ls() == ["big", "h", "p", "s", "z"]
    np.testing.assert_array_equal(c.open("h"), entry(0))
    assert c.usage().entries <= 6 * ENTRY
    held.release()


def test_a_write_that_cannot_fit_raises_capacity_error_naming_the_holder(
    container: dafstore.Container,
) -> None:
    c = container
    c.set_capacity(2000)
    c.write("p", entry(1))
    c.write("h", entry(2), lifecycle="cached")
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    p = ctx.Process(target=_workers.hold_until_killed, args=(c.path, ["h"], ready))
    p.start()
    try:
        assert ready.wait(TIMEOUT)
        with pytest.raises(dafstore.CapacityError) as e:
            c.write("x", entry(3), lifecycle="cached")
        err = e.value
        assert isinstance(err, dafstore.NoSpaceError) and isinstance(err, OSError)
        assert err.errno == errno.ENOSPC
        assert (err.name, err.needed, err.capacity, err.min_free) == ("x", ENTRY, 2000, None)
        assert (err.used, err.reserved, err.evictable) == (2 * ENTRY, 0, 0)
        assert [(o.name, o.bytes, o.lifecycle) for o in err.largest] == [
            ("h", ENTRY, "cached"), ("p", ENTRY, "persistent")]
        assert [pid for _, pid in err.largest[0].holders] == [p.pid]
        assert err.largest[1].holders == ()
        message = str(err)
        assert f'"h" 800 bytes (cached, held by pid {p.pid})' in message
        assert '"p" 800 bytes (persistent)' in message
        assert "nothing was published" in message
        assert err.remedy == "make_room"
        assert message.endswith(
            "`c.holders()` shows who holds what; `c.set_capacity(size)` raises the capacity; "
            "`c.wait_for_room(seconds)` makes this process's writes wait for room")
        # Every kind of write, before any byte is staged; nothing is published or reserved.
        with pytest.raises(dafstore.CapacityError):
            c.create("x", (100,))
        with pytest.raises(dafstore.CapacityError):
            c.write_sparse("x", sp.csr_matrix(np.eye(50)))  # 804 bytes
        with pytest.raises(dafstore.CapacityError):
            c.write_table("x", pa.table({"v": np.zeros(1000)}))
        with pytest.raises(dafstore.CapacityError):
            c.open_or_load("x", lambda: entry(3))
        assert c.ls() == ["h", "p"]
        assert c.usage() == dafstore.Usage(entries=2 * ENTRY, reserved=0, evictable=0)
        assert c.loads() == []
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.join(TIMEOUT)
    # The holder died: the next write collects its session, then evicts what it held.
    c.write("x", entry(3), lifecycle="cached")
    assert c.ls() == ["p", "x"]


def test_open_or_load_makes_cached_entries_kept_after_release_and_evicted_for_room(
    container: dafstore.Container,
) -> None:
    c = container
    c.set_capacity(3 * ENTRY)
    calls: list[str] = []

    def load(name: str, v: float):
        def loader() -> np.ndarray:
            calls.append(name)
            return entry(v)
        return loader

    a = c.open_or_load("in/a", load("in/a", 1))
    info = c.info("in/a")
    assert (info.lifecycle, info.holders, info.local_refs) == ("cached", 1, 1)  # held by a
    del a
    info = c.info("in/a")
    assert (info.lifecycle, info.holders) == ("cached", 0)  # released, kept
    assert c.usage().evictable == ENTRY
    b = c.open_or_load("in/a", load("in/a", 99))  # published: opened, not loaded
    np.testing.assert_array_equal(b, entry(1))
    del b
    assert calls == ["in/a"]

    tick()
    c.write("p1", entry(2))
    c.write("p2", entry(3))  # full now
    c.write("p3", entry(4))  # needs room: in/a goes
    assert "in/a" not in c and c.ls() == ["p1", "p2", "p3"]
    c.remove("p3")
    np.testing.assert_array_equal(c.open_or_load("in/a", load("in/a", 5)), entry(5))
    assert calls == ["in/a", "in/a"]  # loaded again

    # Other lifecycles; a loader that publishes the name itself gets the load's lifecycle.
    c.set_capacity(None)
    assert c.open_or_load("keep", lambda: entry(6), lifecycle="persistent").sum() == 600
    assert c.info("keep").lifecycle == "persistent"
    assert c.open_or_load("tmp", lambda: entry(7), scratch=True).sum() == 700
    gc.collect()
    assert "tmp" not in c  # scratch: removed at its last release

    def fill() -> None:
        with c.create("filled", (4,), "int32") as w:
            w[:] = 7

    assert c.open_or_load("filled", fill).tolist() == [7] * 4
    assert c.info("filled").lifecycle == "cached"
    assert c.open_or_load("filled2", fill_with(c, "filled2"), lifecycle="scratch").sum() == 8
    gc.collect()
    assert "filled2" not in c

    def persistent_inside() -> None:
        c.write("own", entry(8), lifecycle="persistent")  # an explicit lifecycle wins

    c.open_or_load("own", persistent_inside)
    assert c.info("own").lifecycle == "persistent"
    # Every kind the loader returns.
    c.open_or_load("s", lambda: sp.eye(3, format="csr"))
    c.open_or_load("t", lambda: pa.table({"x": [1, 2]}))
    assert (c.info("s").lifecycle, c.info("t").lifecycle) == ("cached", "cached")
    assert c.loads() == []


def fill_with(c: dafstore.Container, name: str):
    def fill() -> None:
        with c.create(name, (2,), "int32") as w:
            w[:] = 4
    return fill


def test_evict_trims_after_the_capacity_is_lowered(container: dafstore.Container) -> None:
    c = container
    for n in "abcd":
        c.write(n, entry(ord(n)), lifecycle="cached")
        tick()
    c.write("p", entry(0))
    assert c.evict() == []  # no limit: nothing to do
    c.set_capacity(3 * ENTRY)
    assert c.ls() == ["a", "b", "c", "d", "p"]  # lowering evicts nothing by itself
    with c.hold("a"):
        evicted = c.evict()
        assert evicted == [dafstore.Evicted("b", ENTRY), dafstore.Evicted("c", ENTRY)]
        name, size = evicted[0]  # unpacks as a pair
        assert (name, size) == ("b", ENTRY)
        assert c.ls() == ["a", "d", "p"]
        assert c.evict() == []  # within the capacity
        c.set_capacity(ENTRY)
        assert c.evict() == [dafstore.Evicted("d", ENTRY)]  # a is held, p persistent
        assert c.ls() == ["a", "p"]
        assert c.evict() == []  # still over, but nothing evictable
    tick()
    assert c.evict() == [dafstore.Evicted("a", ENTRY)]
    assert c.ls() == ["p"] and c.usage() == dafstore.Usage(ENTRY, 0, 0)
    with pytest.raises(dafstore.ReadOnlyError):
        dafstore.open(c.path, read_only=True).evict()


def test_a_write_waits_for_room_until_another_thread_releases(
    container: dafstore.Container,
) -> None:
    c = container
    c.set_capacity(2 * ENTRY)
    c.write("a", entry(1), lifecycle="cached")
    tick()
    c.write("b", entry(2), lifecycle="cached")
    hold_a, hold_b = c.hold("a"), c.hold("b")
    t0 = time.monotonic()
    with pytest.raises(dafstore.CapacityError):
        c.write("x", entry(3))  # by default: at once
    assert time.monotonic() - t0 < 5
    c.wait_for_room(0.2)
    t0 = time.monotonic()
    with pytest.raises(dafstore.CapacityError):
        c.write("x", entry(3))
    assert time.monotonic() - t0 >= 0.2

    c.wait_for_room(60)
    releaser = threading.Timer(0.3, hold_a.release)  # runs while the write waits without the GIL
    t0 = time.monotonic()
    releaser.start()
    c.write("x", entry(3), lifecycle="cached")
    waited = time.monotonic() - t0
    releaser.join()
    assert 0.3 <= waited < 30
    assert c.ls() == ["b", "x"]  # a, released; b is still held
    np.testing.assert_array_equal(c.open("x"), entry(3))
    hold_b.release()

    c.wait_for_room(None)
    c.wait_for_room(math.inf)  # as long as it takes
    c.wait_for_room(0)
    c.wait_for_room(10**400)  # too large for a float: as long as it takes
    c.wait_for_room(-1)  # no wait
    for bad in ("1s", True, [1]):
        with pytest.raises(ValueError, match="wait_for_room"):
            c.wait_for_room(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NaN"):
        c.wait_for_room(math.nan)


def test_a_write_waits_for_room_until_another_process_releases(
    container: dafstore.Container,
) -> None:
    c = container
    c.set_capacity(2 * ENTRY)
    c.write("a", entry(1), lifecycle="cached")
    tick()
    c.write("b", entry(2), lifecycle="cached")
    ctx = mp.get_context("spawn")
    ready, go, released = ctx.Event(), ctx.Event(), ctx.Event()
    p = ctx.Process(target=_workers.hold_until_told, args=(c.path, ["a", "b"], ready, go, released))
    p.start()
    try:
        assert ready.wait(TIMEOUT)
        with pytest.raises(dafstore.CapacityError, match=f"held by pid {p.pid}"):
            c.write("x", entry(3))
        c.wait_for_room(TIMEOUT)
        t0 = time.monotonic()
        threading.Timer(0.3, go.set).start()
        c.write("x", entry(3), lifecycle="cached")
        assert time.monotonic() - t0 >= 0.3
        assert released.wait(TIMEOUT) and p.is_alive()  # released, not dead
        assert "x" in c and len(c.ls()) == 2
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.join(TIMEOUT)


def test_four_processes_loading_random_names_under_a_small_capacity(
    container: dafstore.Container,
) -> None:
    c = container
    names, capacity = 16, 9 * ENTRY  # each process holds at most two entries at a time
    c.set_capacity(capacity)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_workers.open_or_load_loop, args=(c.path, seed, 60, names, out))
             for seed in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=TIMEOUT * 2) for _ in procs]
    for p in procs:
        p.join(TIMEOUT)
        assert p.exitcode == 0
    assert sorted(r[:2] for r in results) == [(s, "ok") for s in range(4)], results
    assert all(r[3] == [] for r in results), results  # every value right
    loads = sum(r[2] for r in results)
    live = c.ls()
    assert loads > names  # evicted entries were loaded again
    assert len(live) <= 9 and c.usage().entries <= capacity
    assert c.usage().reserved == 0 and c.loads() == []
    for name in live:
        info = c.info(name)
        assert (info.lifecycle, info.holders) == ("cached", 0)
        np.testing.assert_array_equal(c.open(name), _workers.cache_value(int(name[2:])))
