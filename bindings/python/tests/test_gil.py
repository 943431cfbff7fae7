"""The GIL is released around every blocking engine call.

The proof needs no clock. Each call below is made to block on a lock the test holds: the array's
lock stripe (an ``flock``), exactly as a writer in another process holds it. The main thread then
watches the calling thread until the kernel reports it blocked in ``flock(2)`` — only the engine
takes flocks, so that thread is inside the engine call — and keeps running Python code while it
stays there. Were the GIL held across the call, the main thread could not run any Python code from
then on: the script would hang, and the test fail by its timeout, instead of printing ``ok``.

Each call's lock waits, catalog transactions, fsyncs and checksums run inside the one GIL-free
section of the binding's method, so the calls that block here (``write``, ``publish`` of a create
block, the release that deletes, the drop of an in-place view that recomputes checksums...) prove
it for their fsyncs and checksums too. The second test shows it directly for a long checksum:
another thread counts on while ``fsck(deep=True)`` checksums a large array.

Both run in a subprocess so that a regression hangs only that process, which the timeout ends.
"""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import dafstore

# flock(2)'s syscall number, as /proc/<pid>/task/<tid>/syscall reports it.
FLOCK = {"x86_64": 73, "aarch64": 32}.get(platform.machine())

BLOCKED_CALLS = textwrap.dedent(
    """
    import fcntl, sys, threading, time
    from pathlib import Path
    import numpy as np
    import scipy.sparse as sp
    import dafstore

    FLOCK = sys.argv[2]
    c = dafstore.open(sys.argv[1])
    for n in ("r", "rplus", "c", "arrow", "gone", "scratch", "released", "held", "dropped",
              "inplace"):
        c.write(n, np.arange(1000.0))
    c.write_sparse("sparse", sp.random(50, 40, density=0.1, format="csr", random_state=0))
    np.save(Path(sys.argv[1]).parent / "in.npy", np.arange(6, dtype=np.int32))
    kept = {}  # what the calls return, and what a call drops, kept out of the blocked sections

    def prepare_publish():
        kept["writer"] = c.create("published", (1 << 16,), "float64")
        kept["writer"].array[:] = 2.0

    def prepare_scratch():
        c.open("scratch")  # held once and released: marking it scratch now deletes it

    def prepare_release():
        c.retain("released")
        assert c.remove("released").deferred  # the release below deletes it, under its stripe

    def prepare_hold():
        kept["hold"] = c.hold("held")
        assert c.remove("held").deferred

    def prepare_drop():
        kept["view"] = c.open("dropped")
        assert c.remove("dropped").deferred  # dropping the last view deletes it

    def prepare_in_place():
        kept["inplace"] = c.open("inplace", "r+")
        kept["inplace"][0] = 42.0  # dropping it recomputes the checksums, under the stripe

    calls = [  # name, prepare (unlocked), call (made to block)
        ("write", None, lambda: c.write("new", np.zeros(1 << 16))),
        ("write_sparse", None, lambda: c.write_sparse("new_sparse", sp.eye(30, format="csr"))),
        ("ArrayWriter.publish (fsync, checksum)", prepare_publish,
         lambda: kept.pop("writer").publish()),
        ("open r", None, lambda: kept.__setitem__("r", c.open("r"))),
        ("open r+", None, lambda: kept.__setitem__("rplus", c.open("rplus", "r+"))),
        ("open c", None, lambda: kept.__setitem__("c", c.open("c", "c"))),
        ("open_sparse", None, lambda: kept.__setitem__("sparse", c.open_sparse("sparse"))),
        ("open_arrow", None, lambda: kept.__setitem__("arrow", c.open_arrow("arrow"))),
        ("remove", None, lambda: c.remove("gone")),
        ("set_scratch (deletes)", prepare_scratch, lambda: c.set_scratch("scratch")),
        ("import_file", None,
         lambda: c.import_file("imported", Path(sys.argv[1]).parent / "in.npy")),
        ("release (deferred deletion)", prepare_release, lambda: c.release("released")),
        ("Hold.release (deferred deletion)", prepare_hold, lambda: kept.pop("hold").release()),
        ("drop of the last view (deferred deletion)", prepare_drop, lambda: kept.pop("view")),
        ("drop of an r+ view (checksums)", prepare_in_place, lambda: kept.pop("inplace")),
    ]

    def syscall(tid):
        try:
            with open(f"/proc/self/task/{tid}/syscall") as f:
                return f.read().split()[0]
        except OSError:
            return "gone"

    stripes = sorted(Path(c.path, ".dafstore", "locks").glob("*.lock"))
    for name, prepare, call in calls:
        if prepare:
            prepare()
        # Every stripe, exclusively, on file descriptions the engine does not own.
        locks = [open(p, "rb") for p in stripes]
        for f in locks:
            fcntl.flock(f, fcntl.LOCK_EX)
        done, failed = [], []

        def run():
            try:
                call()
                done.append(name)
            except BaseException as e:
                failed.append(repr(e))

        t = threading.Thread(target=run)
        t.start()
        # From here on, every line this thread runs is Python code run while `t` is in the engine.
        while syscall(t.native_id) != FLOCK:
            assert t.is_alive() and not done, f"{name}: finished without blocking ({failed})"
            time.sleep(0.001)
        squares = sum(i * i for i in range(100_000))  # bytecode, with `t` blocked in the engine
        assert syscall(t.native_id) == FLOCK and not done, name
        for f in locks:
            f.close()
        t.join(60)
        assert done == [name] and not failed, (name, failed)
        print("released the GIL:", name, squares > 0)

    for gone in ("released", "held", "dropped", "gone", "scratch"):
        assert gone not in c, gone
    assert c.open("published")[0] == 2.0
    kept.clear()
    assert not c.info("inplace").checksum_stale and c.open("inplace")[0] == 42.0
    assert c.fsck(deep=True).clean
    print("ok", len(calls))
    """
)

CHECKSUM = textwrap.dedent(
    """
    import sys, threading, time
    import dafstore

    c = dafstore.open(sys.argv[1])
    with c.create("big", (int(sys.argv[2]) << 17,), "float64") as a:  # sys.argv[2] MiB
        a[:] = 1.0
    del a
    native = c._c  # dafstore._native.Container
    ticks = [0]
    progress = []
    done = threading.Event()

    def check():
        try:
            for _ in range(3):
                before = ticks[0]
                # The extension's method itself (Container.fsck is a thin wrapper): no Python
                # code runs in this thread between the two reads of the counter but the call.
                report = native.fsck(True, False)  # reads and checksums every byte of "big"
                progress.append(ticks[0] - before)
                assert report["problems"] == [] and report["arrays_checked"] == 1
        finally:
            done.set()

    t = threading.Thread(target=check)
    t.start()
    while not done.is_set():
        ticks[0] += 1
        time.sleep(0)  # lets the other thread take the GIL whenever it wants it
    t.join()
    # Had fsck held the GIL, this thread could have counted at most once or twice around each
    # call (before the call took the GIL, after it gave it back), never during it.
    print("ok", progress)
    assert len(progress) == 3 and max(progress) >= 100, progress
    """
)


def run_script(workdir: Path, source: str, *args: str) -> str:
    script = workdir / "script.py"
    script.write_text(source)
    r = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, timeout=180,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@pytest.mark.skipif(
    FLOCK is None or not Path("/proc/self/task").is_dir(),
    reason="needs Linux on x86_64 or aarch64 (flock's syscall number, /proc/<pid>/task)",
)
def test_every_blocked_engine_call_lets_other_threads_run(
    container: dafstore.Container, workdir: Path
) -> None:
    out = run_script(workdir, BLOCKED_CALLS, container.path, str(FLOCK))
    assert out.splitlines()[-1] == "ok 15", out


def test_other_threads_run_during_a_long_checksum(
    container: dafstore.Container, workdir: Path
) -> None:
    out = run_script(workdir, CHECKSUM, container.path, "512")
    print(f"\nthe other thread counted {out.split(maxsplit=1)[1].strip()} during the 3 checksums")
    assert out.startswith("ok"), out
