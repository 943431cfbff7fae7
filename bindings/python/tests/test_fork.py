"""fork: the default start method of multiprocessing on Linux before Python 3.14. A container opened
at module level is inherited by every worker; each worker must hold what it opens under its own
session (SPEC [P2]), so the parent can remove an array no worker holds any more, and a view
inherited through fork is held again by the child that keeps it."""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

import dafstore

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="fork semantics tested on Linux")

# The handle the pool's workers inherit, as in a script that opens its container at import time.
_SHARED: Optional[dafstore.Container] = None


def _own(c: dafstore.Container) -> dafstore.Holder:
    return next(h for h in c.holders() if h.this_process)


def _use_in_worker(name: str) -> tuple:
    assert _SHARED is not None
    a = _SHARED.open(name)
    total = float(a.sum())
    me = _own(_SHARED)
    held = sorted(x.name for x in me.arrays)
    del a
    gc.collect()
    after = sorted(x.name for x in _own(_SHARED).arrays)
    return total, os.getpid(), me.pid, me.session, held, after


def test_a_fork_pool_over_a_module_level_container_holds_under_each_workers_own_session(
    container: dafstore.Container,
) -> None:
    global _SHARED
    _SHARED = container
    values = np.arange(1000, dtype=np.float64)
    container.write("b", values)
    parent_session = _own(container).session
    try:
        with mp.get_context("fork").Pool(2) as pool:
            results = pool.map(_use_in_worker, ["b"] * 6)
            # The workers are alive and idle: none holds b any more, so it goes now (before the
            # fix every worker's reference sat under the parent's live session: deferred forever).
            removal = container.remove("b")
            assert not removal.deferred, removal
            assert not Path(container.path, "b.array").exists()
    finally:
        _SHARED = None
    for total, pid, recorded_pid, session, held, after in results:
        assert total == float(values.sum())
        assert recorded_pid == pid, "the worker's session records the worker's pid"
        assert session != parent_session
        assert held == ["b"]
        assert after == []
    assert [h for h in container.holders() if h.arrays] == []


def test_a_view_inherited_through_fork_is_held_by_the_child_until_it_drops_it(
    container: dafstore.Container,
) -> None:
    container.write("held", np.ones(100))
    view = container.open("held")
    to_parent_r, to_parent_w = os.pipe()
    to_child_r, to_child_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status (no pytest machinery here)
        status = 1
        try:
            me = _own(container)  # first use: its own session, the inherited view held again
            ok = [x.name for x in me.arrays] == ["held"] and me.pid == os.getpid()
            os.write(to_parent_w, b"1")
            os.read(to_child_r, 1)  # the parent has dropped its view and removed "held"
            still_there = Path(container.path, "held.array").exists()
            assert float(view.sum()) == 100.0  # the inherited map still reads
            del me
            del view
            gc.collect()  # the child's last reference: the deferred removal runs here
            gone = not Path(container.path, "held.array").exists()
            status = 0 if (ok and still_there and gone) else 2
        finally:
            os._exit(status)
    os.read(to_parent_r, 1)
    del view
    gc.collect()
    removal = container.remove("held")
    assert removal.deferred and removal.holders == 1, removal
    os.write(to_child_w, b"1")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert not Path(container.path, "held.array").exists()
    assert [h for h in container.holders() if h.arrays] == []
