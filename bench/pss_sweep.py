#!/usr/bin/env python3
"""PSS against the number of processes: N = 1, 2, 4, 8 readers of one 1 GiB float64 array.

    python bench/pss_sweep.py [--dir /dev/shm/dafstore-pss-sweep] [--procs 1,2,4,8] [--size-mib 1024]

Run it with a Python that has numpy, pyarrow and polars (and the dafstore package for the
"dafstore (Python)" reader; without it that reader is skipped), e.g. the repository's .venv.
It needs target/release/suite_bench (`cargo build --release -p dafstore-bench --bins`, or
--suite-bench PATH).

The data: a container holding `x` made exactly as bench/suite.py makes it (`suite_bench write`:
values 0..n-1), and the same column as an uncompressed Arrow IPC (Feather v2) file with one record
batch (suite.py's `peer_files`). Every reader maps (or loads) the whole array, sums it, checks the
sum n(n-1)/2, reports and holds it until its stdin closes; while all N hold it, the driver sums
their `Pss`, `Pss_Anon`, `Pss_File`, `Pss_Shmem` and `Rss` from /proc/PID/smaps_rollup and the PSS
of their mappings of the data file (/proc/PID/smaps). Readers, each in N fresh processes:

  dafstore (Rust)     suite_bench pss-worker: Container::open + open_dense::<f64>("x") + sum
  dafstore (Python)   dafstore.open(c).open("x").sum()
  np.memmap           np.memmap of the container's data file (suite.py --peer pss numpy)
  pyarrow             ipc.open_file(pa.memory_map(x.arrow)) (suite.py --peer pss pyarrow)
  polars              pl.read_ipc(x.arrow) (suite.py --peer pss polars; polars 2.x has no
                      memory_map argument, so each process holds its own copy)

Each (reader, N) is measured once (PSS does not depend on timing). A case whose expected memory
(polars: N copies of the array) would leave less than --headroom-gib of MemAvailable is skipped
and recorded as such. Writes bench/results/pss_sweep.json and pss_sweep.md; removes --dir after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(os.path.abspath(__file__)).parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import suite  # noqa: E402  (bench/suite.py: peer workers, peer_files, fmt_bytes, fs_type, log)
from _common import cpu_model, holders_memory, mem_available, module_versions, utc_now  # noqa: E402

MIB, GIB = suite.MIB, suite.GIB
READERS = ("dafstore (Rust)", "dafstore (Python)", "np.memmap", "pyarrow", "polars")
PSS_KEYS = ("Pss", "Pss_Anon", "Pss_File", "Pss_Shmem", "Rss")


def py_worker(container, n):
    """The dafstore Python reader: open, sum all of it, report, hold until stdin closes."""
    import dafstore

    c = dafstore.open(container)
    a = c.open("x")
    s = float(a.sum())
    print(json.dumps({"sum": s, "how": f"dafstore.open(c).open('x').sum() (dafstore {dafstore.__version__})"}),
          flush=True)
    sys.stdin.read()
    del a
    del c


def measure(cmd, nprocs, n, data_file, how=None):
    how, rolls, files = holders_memory(cmd, nprocs, n, data_file, how)
    tot = {k: sum(x.get(k, 0) for x in rolls) for k in PSS_KEYS}
    return dict(tot, how=how, data_file_pss=sum(files),
                per_process_pss=[x.get("Pss", 0) for x in rolls])


def machine(d):
    return {
        "date": utc_now(), "cpus": os.cpu_count(), "cpu": cpu_model(), "kernel": platform.release(),
        "memory": suite.fmt_bytes(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")),
        "python": platform.python_version(), "versions": module_versions(("numpy", "pyarrow", "polars", "dafstore")),
        "file_system": dict(suite.fs_type(d), path=str(d)),
        "loadavg_at_start": os.getloadavg(),
    }


def markdown(out):
    m, size = out["machine"], out["size"]
    procs = out["procs"]
    lines = [
        "# PSS against the number of processes",
        "",
        f"`bench/pss_sweep.py`, {m['date']}: {m['cpus']} CPUs ({m['cpu']}), {m['memory']} RAM, "
        f"Linux {m['kernel']}, data on {m['file_system'].get('path')} ({m['file_system'].get('fstype')}).",
        "",
        f"N processes each map (or load) and sum all of one {suite.fmt_size(size)} float64 array "
        "and hold it; the sum of their `Pss` (and `Pss_Anon`) from `/proc/PID/smaps_rollup` "
        "÷ the array's size, measured once per cell. Each cell: total PSS / anonymous part.",
        "",
        "| reader | " + " | ".join(f"N = {p}" for p in procs) + " |",
        "|---|" + "---:|" * len(procs),
    ]
    for name, by_n in out["results"].items():
        cells = []
        for p in procs:
            r = by_n.get(str(p))
            if r is None or "skipped" in r:
                cells.append("skipped" + (f" ({r['skipped']})" if r else ""))
            else:
                cells.append(f"{r['Pss'] / size:.3f}× / {r['Pss_Anon'] / size:.3f}×")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Data file's mappings (PSS summed over the N processes) ÷ the array's size:", "",
              "| reader | " + " | ".join(f"N = {p}" for p in procs) + " |",
              "|---|" + "---:|" * len(procs)]
    for name, by_n in out["results"].items():
        cells = []
        for p in procs:
            r = by_n.get(str(p))
            cells.append("–" if r is None or "skipped" in r else f"{r['data_file_pss'] / size:.3f}×")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "How each reader read:", ""]
    for name, by_n in out["results"].items():
        hows = {r.get("how") for r in by_n.values() if "how" in r}
        lines.append(f"- {name}: {'; '.join(sorted(h for h in hows if h)) or '–'}")
    if out["notes"]:
        lines += ["", "Notes:", ""] + [f"- {x}" for x in out["notes"]]
    return "\n".join(lines) + "\n"


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        py_worker(sys.argv[2], int(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default="/dev/shm/dafstore-pss-sweep")
    ap.add_argument("--procs", default="1,2,4,8")
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--headroom-gib", type=float, default=2.0)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    ap.add_argument("--suite-bench", default=str(target / "release" / "suite_bench"))
    ap.add_argument("--json", default=str(HERE / "results" / "pss_sweep.json"))
    ap.add_argument("--md", default=str(HERE / "results" / "pss_sweep.md"))
    a = ap.parse_args()
    procs = [int(x) for x in a.procs.split(",")]
    size = a.size_mib * MIB
    n = size // 8
    d = Path(a.dir)
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    notes = []
    try:
        c = d / "c"
        suite.log(f"making {c} (suite_bench write) and the Arrow file")
        made = subprocess.run([a.suite_bench, "write", str(c), str(n), "1"], capture_output=True, text=True)
        if made.returncode != 0:
            raise SystemExit(f"suite_bench write failed:\n{made.stderr}")
        suite.Suite.peer_files(None, d, n, False)  # x.npy and x.arrow; only x.arrow is used here
        (d / "x.npy").unlink()
        arrow, array = d / "x.arrow", c / "x.array"
        peer = [sys.executable, suite.__file__, "--peer", "pss"]
        readers = {
            "dafstore (Rust)": (array, [a.suite_bench, "pss-worker", str(c)], 0),  # reports a bare sum
            "dafstore (Python)": (array, [sys.executable, __file__, "--worker", str(c), str(n)], 0),
            "np.memmap": (array, [*peer, "numpy", str(array), str(n)], 0),
            "pyarrow": (arrow, [*peer, "pyarrow", str(arrow), str(n)], 0),
            "polars": (arrow, [*peer, "polars", str(arrow), str(n)], 1),  # a copy per process
        }
        try:
            import dafstore  # noqa: F401
        except ImportError:
            del readers["dafstore (Python)"]
            notes.append("dafstore (Python) skipped: the dafstore package is not installed in this Python")
        out = {"machine": machine(d), "size": size, "n": n, "procs": procs, "results": {}, "notes": notes}
        for name, (data_file, cmd, copies) in readers.items():
            res = out["results"][name] = {}
            for p in procs:
                os.sync()
                need = copies * p * size + a.headroom_gib * GIB
                avail = mem_available()
                if avail < need:
                    why = (f"MemAvailable {suite.fmt_bytes(avail)} < {suite.fmt_bytes(need)} "
                           f"({p} copies + {a.headroom_gib:g} GiB headroom)")
                    res[str(p)] = {"skipped": why}
                    notes.append(f"{name} at N = {p} skipped: {why}")
                    suite.log(f"{name} N={p}: skipped, {why}")
                    continue
                r = res[str(p)] = measure(cmd, p, n, data_file,
                                         "Container::open + open_dense::<f64>(\"x\") + sum (Rust)")
                r["mem_available_before"] = avail
                suite.log(f"{name} N={p}: PSS {r['Pss'] / size:.3f}x, anon {r['Pss_Anon'] / size:.3f}x, "
                          f"data file {r['data_file_pss'] / size:.3f}x")
        out["machine"]["loadavg_at_end"] = os.getloadavg()
    finally:
        shutil.rmtree(d, ignore_errors=True)
    Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    Path(a.md).write_text(markdown(out))
    print(markdown(out))


if __name__ == "__main__":
    main()
