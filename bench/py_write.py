#!/usr/bin/env python3
"""Python `c.write(name, array)` against writing the same bytes with numpy (issue 20: "publishing
at the speed of the disk"), on /dev/shm and on the repository's disk.

    /work/main/.venv/bin/python bench/py_write.py            # 1 MiB, 64 MiB, 256 MiB; 7 rounds

Each round, in rotated order: `c.write(name, a)` (replace of the same name: stage, copy and
checksum through write(2), fsync, publish), `a.tofile(f)` + `os.fsync`, `np.save(f, a)` +
`os.fsync`. The previous output is removed before each write (not timed). Medians; ratios are
medians of per-round ratios (time of c.write / time of the peer). Writes
bench/results/py_write.md.
"""
import os, shutil, statistics, sys, time
from pathlib import Path
import numpy as np
import dafstore

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import fsync_path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SIZES = [1 << 20, 64 << 20, 256 << 20]
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 7


def run(where: Path):
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    c = dafstore.create(where / "c")
    rows = []
    for size in SIZES:
        a = np.random.default_rng(0).random(size // 8)
        times = {"c.write": [], "tofile+fsync": [], "np.save+fsync": []}

        def w_dafstore():
            c.write("x", a)

        def w_tofile():
            p = where / "x.bin"
            with open(p, "wb") as f:
                a.tofile(f)
                f.flush()
                os.fsync(f.fileno())

        def w_save():
            p = where / "x.npy"
            np.save(p, a)
            fsync_path(p)

        def clean(k):
            if k == "tofile+fsync":
                (where / "x.bin").unlink(missing_ok=True)
            elif k == "np.save+fsync":
                (where / "x.npy").unlink(missing_ok=True)

        fns = [("c.write", w_dafstore), ("tofile+fsync", w_tofile), ("np.save+fsync", w_save)]
        for r in range(ROUNDS):
            for k, fn in fns[r % 3:] + fns[: r % 3]:
                clean(k)
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        ratio = {
            k: statistics.median(d / p for d, p in zip(times["c.write"], times[k]))
            for k in ("tofile+fsync", "np.save+fsync")
        }
        rows.append((size, med, ratio))
    c.close()
    shutil.rmtree(where, ignore_errors=True)
    return rows


def main():
    out = [f"Python c.write vs numpy, {ROUNDS} rounds, medians (ms); ratio = c.write time / peer time "
           "(median of per-round ratios; <= 1.25 means >= 0.8x the peer's throughput)", ""]
    out.append("| file system | size | c.write ms | tofile+fsync ms | np.save+fsync ms | ratio to tofile | ratio to np.save |")
    out.append("|---|---|---|---|---|---|---|")
    for label, where in [("/dev/shm", Path("/dev/shm") / f"dafstore-pywrite-{os.getpid()}"),
                         ("disk", REPO / "target" / "bench-pywrite")]:
        for size, med, ratio in run(where):
            out.append(f"| {label} | {size >> 20} MiB | {med['c.write']*1e3:.1f} | {med['tofile+fsync']*1e3:.1f} "
                       f"| {med['np.save+fsync']*1e3:.1f} | {ratio['tofile+fsync']:.2f} | {ratio['np.save+fsync']:.2f} |")
    text = "\n".join(out)
    print(text)
    (REPO / "bench" / "results" / "py_write.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
