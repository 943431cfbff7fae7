"""Seed 000's workflow with tables, end to end (issue 17): a parent publishes one polars frame per
date (floats, ints, zoned timestamps, strings, a categorical); spawned tasks each map two
consecutive dates as polars frames, compute and release; the parent removes each date as soon as
every task that needs it holds it, so each date is deleted by the last task that releases it, and
exactly then; a task killed with SIGKILL leaks no reference and no file."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from pathlib import Path

import pytest

import dafstore

import _workers

pl = pytest.importorskip("polars")

DATES = 5  # tasks 0..3 each map dates t and t+1
ROWS = 20_000
TIMEOUT = 120


def date_files(root: str) -> dict[int, list[str]]:
    """The files of each date's entry on disk (a table is `<name>.arrow` + `<name>.yaml`)."""
    found: dict[int, list[str]] = {}
    for p in sorted(Path(root, "date").glob("*")):
        found.setdefault(int(p.name.split(".")[0]), []).append(p.suffix)
    return found


def test_each_date_is_deleted_by_the_last_task_that_releases_it(
    container: dafstore.Container,
) -> None:
    ctx = mp.get_context("spawn")
    frames = {d: _workers.date_frame(d, ROWS) for d in range(DATES)}
    for d, f in frames.items():
        container.write_table(f"date/{d}", f)
    assert date_files(container.path) == {d: [".arrow", ".yaml"] for d in range(DATES)}

    tasks = range(DATES - 1)
    opened, out = ctx.Queue(), ctx.Queue()
    go = {t: ctx.Event() for t in tasks}
    procs = {
        t: ctx.Process(target=_workers.map_two_dates,
                       args=(container.path, t, opened, go[t], out))
        for t in tasks
    }
    for p in procs.values():
        p.start()
    try:
        assert sorted(opened.get(timeout=TIMEOUT) for _ in tasks) == list(tasks)
        # Every date is held by the tasks that need it: 0 and 4 by one task, the others by two.
        held = {d: 0 for d in range(DATES)}
        for h in container.holders():
            if not h.this_process:
                assert h.alive
                for a in h.arrays:
                    held[int(a.name.split("/")[1])] += 1
        assert held == {0: 1, 1: 2, 2: 2, 3: 2, 4: 1}
        # Remove them all now: every removal is deferred, the names are gone, the files stay.
        for d in range(DATES):
            assert container.remove(f"date/{d}") == dafstore.Removal(
                deferred=True, holders=held[d])
        assert container.ls() == []
        assert sorted(date_files(container.path)) == list(range(DATES))

        # Let the tasks finish one at a time, in order: once task t is done, a date is gone
        # exactly when every task that held it is done (date d is held by tasks d-1 and d).
        def holders_of(d: int) -> set[int]:
            return {d - 1, d} & set(tasks)

        results = {}
        for t in tasks:
            go[t].set()
            t_done, status, result = out.get(timeout=TIMEOUT)
            assert (t_done, status) == (t, "ok")
            results[t] = result
            procs[t].join(TIMEOUT)
            assert procs[t].exitcode == 0
            remaining = sorted(date_files(container.path))
            expected = [d for d in range(DATES) if not holders_of(d) <= set(range(t + 1))]
            assert remaining == expected, (t, remaining)
    finally:
        for e in go.values():
            e.set()
        for p in procs.values():
            p.join(TIMEOUT)
            if p.is_alive():
                p.kill()

    # Each task saw exactly its two dates: its result equals the same computation on the
    # parent's original frames.
    for t in tasks:
        assert results[t] == _workers.two_day_stats(frames[t], frames[t + 1]), t
    assert date_files(container.path) == {}
    assert [h for h in container.holders() if not h.this_process] == []
    assert container.fsck(deep=True).clean


def test_a_killed_task_leaks_no_reference_and_no_file(container: dafstore.Container) -> None:
    ctx = mp.get_context("spawn")
    for d in range(2):
        container.write_table(f"date/{d}", _workers.date_frame(d, ROWS))
    ready = ctx.Event()
    p = ctx.Process(target=_workers.map_dates_until_killed,
                    args=(container.path, ["date/0", "date/1"], ready))
    p.start()
    try:
        assert ready.wait(TIMEOUT)
        (task,) = [h for h in container.holders() if not h.this_process]
        assert task.alive and {a.name for a in task.arrays} == {"date/0", "date/1"}
        for d in range(2):
            assert container.remove(f"date/{d}") == dafstore.Removal(deferred=True, holders=1)
        assert sorted(date_files(container.path)) == [0, 1]
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.join(TIMEOUT)
    assert p.exitcode == -signal.SIGKILL

    # The dead task's session is reaped and the deletions it was blocking run: nothing is left,
    # with no timeout to wait for.
    report = container.gc()
    assert report.reaped_sessions == (task.session,)
    assert set(report.deleted) == {"date/0", "date/1"}
    assert date_files(container.path) == {}
    assert [h for h in container.holders() if not h.this_process] == []
    assert container.fsck(deep=True).clean
