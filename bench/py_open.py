#!/usr/bin/env python3
"""First open of an array from Python, including its reference, against `np.memmap` of the same
file (issue 20: "first open including the reference <= 1.0x np.memmap"), on /dev/shm.

    /work/main/.venv/bin/python bench/py_open.py [ROUNDS]     # default 7 rounds

A container holds `x` (1 GiB of f64 by default; `DAFSTORE_PY_OPEN_MIB` changes it). Each round,
in alternating order, times N = 500 single operations of each kind and keeps their median:

- `c.open("x")` with no other handle alive (reference 0->1: a record in the session file and a
  catalog read; open, fstat, mmap), then `del` (release 1->0) timed apart;
- `np.memmap(path, dtype=float64, mode="r", shape=...)`, then `del`;
- a read-only handle's `r.open("x")` (no reference) and `del`, against safetensors'
  `safe_open(file, framework="numpy")` of the same array saved as `.safetensors` (it maps the file
  and parses the header; `get_tensor` would then copy) and `del`, if safetensors is installed
  (bench-only: `pip install safetensors`).

Ratios are medians of per-round ratios (ours / np.memmap). Writes bench/results/py_open.md and
.json.
"""
import gc
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import dafstore

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import median_ns  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 7
N = 500
MIB = int(os.environ.get("DAFSTORE_PY_OPEN_MIB", "1024"))


def main():
    where = Path("/dev/shm/dafstore-bench-py-open")
    shutil.rmtree(where, ignore_errors=True)
    c = dafstore.create(where / "c")
    elements = MIB * (1 << 20) // 8
    w = c.create("x", (elements,), "float64")
    w.array[:] = 1.0
    w.publish()
    path = str(where / "c" / "x.array")
    ro = dafstore.open(where / "c", read_only=True)
    try:
        from safetensors import safe_open
        from safetensors.numpy import save_file

        st = str(where / "x.safetensors")
        save_file({"x": np.ones(elements, dtype=np.float64)}, st)
    except ImportError:
        safe_open = None
        print("safetensors is not installed: its case is skipped", file=sys.stderr)
    gc.disable()
    rounds = []
    for r in range(ROUNDS):
        row = {}

        def ours():
            a = c.open("x")
            del a

        def peer():
            m = np.memmap(path, dtype=np.float64, mode="r", shape=(elements,))
            del m

        def ours_ro():
            a = ro.open("x")
            del a

        def st_open():
            f = safe_open(st, framework="numpy")
            del f

        order = [("dafstore", ours), ("np.memmap", peer), ("dafstore read-only", ours_ro)]
        if safe_open is not None:
            order.append(("safetensors.safe_open", st_open))
        if r % 2:
            order.reverse()
        for k, f in order:
            row[k] = median_ns(f, N)
        # The open alone (its release timed apart).
        opens, drops = [], []
        for _ in range(N):
            s = time.perf_counter_ns()
            a = c.open("x")
            opens.append(time.perf_counter_ns() - s)
            s = time.perf_counter_ns()
            del a
            drops.append(time.perf_counter_ns() - s)
        row["dafstore open only"] = statistics.median(opens)
        row["dafstore release only"] = statistics.median(drops)
        rounds.append(row)
        print(r, {k: round(v / 1000, 2) for k, v in row.items()}, file=sys.stderr)
    gc.enable()
    ratio = statistics.median(x["dafstore"] / x["np.memmap"] for x in rounds)
    ratio_open = statistics.median(x["dafstore open only"] / x["np.memmap"] for x in rounds)
    ratio_ro = (
        statistics.median(x["dafstore read-only"] / x["safetensors.safe_open"] for x in rounds)
        if safe_open is not None
        else None
    )
    med = {k: statistics.median(x[k] for x in rounds) for k in rounds[0]}
    out = {
        "mib": MIB,
        "rounds": rounds,
        "median_ns": med,
        "ratio_open_and_release_vs_np_memmap": ratio,
        "ratio_open_only_vs_np_memmap": ratio_open,
        "ratio_read_only_vs_safetensors_safe_open": ratio_ro,
    }
    res = REPO / "bench" / "results"
    res.mkdir(parents=True, exist_ok=True)
    (res / "py_open.json").write_text(json.dumps(out, indent=1) + "\n")
    lines = [
        "# Python first open incl. reference vs np.memmap, read-only open vs safetensors (bench/py_open.py)",
        "",
        f"{MIB} MiB of float64 on /dev/shm; {ROUNDS} rounds, alternating order, median of {N} "
        "per round; ratios are medians of per-round ratios.",
        "",
        "| what | median µs |",
        "|---|---|",
    ]
    for k, v in med.items():
        lines.append(f"| {k} | {v / 1000:.2f} |")
    lines += [
        "",
        f"- `c.open` + `del` / `np.memmap` + `del`: **{ratio:.2f}×**",
        f"- `c.open` alone / `np.memmap` + `del`: **{ratio_open:.2f}×**",
    ]
    if ratio_ro is not None:
        lines.append(
            f"- read-only `r.open` + `del` / `safetensors.safe_open` + `del`: **{ratio_ro:.2f}×**"
        )
    lines.append("")
    (res / "py_open.md").write_text("\n".join(lines))
    print("\n".join(lines))
    shutil.rmtree(where, ignore_errors=True)


if __name__ == "__main__":
    main()
