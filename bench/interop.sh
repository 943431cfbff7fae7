#!/usr/bin/env bash
# Interop benchmark: Feather import/export of a large f64 column vs `cp` of the same bytes and vs
# pyarrow reading the same file, in one run, on one file system.
#   bench/interop.sh [DIR] [ELEMENTS] [RUNS]   default DIR /dev/shm/dafstore-bench-interop,
#                                              ELEMENTS 134217728 (1 GiB of f64), RUNS 3
# Prints a table and writes bench/results/interop.json.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/dev/shm/dafstore-bench-interop}
elements=${2:-134217728}
runs=${3:-3}
venv=bench/.venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import numpy, pyarrow" 2>/dev/null || "$venv/bin/pip" install --quiet numpy pyarrow
cargo build --release --quiet -p dafstore-bench
rm -rf "$dir" && mkdir -p "$dir"
"$venv/bin/python" - "$dir/in.feather" "$elements" <<'PY'
import sys, numpy as np, pyarrow as pa, pyarrow.feather as feather
n = int(sys.argv[2])
feather.write_feather(pa.table({"x": np.arange(n, dtype=np.float64)}), sys.argv[1], compression="uncompressed")
PY
ours=$(./target/release/interop_bench "$dir/c" "$dir/in.feather" "$dir/out.feather" "$runs")
peer=$("$venv/bin/python" - "$dir" "$runs" <<'PY'
import json, os, statistics, subprocess, sys, time
import pyarrow.feather as feather
d, runs = sys.argv[1], int(sys.argv[2])
def med(f):
    t = []
    for _ in range(runs):
        s = time.perf_counter_ns(); f(); t.append(time.perf_counter_ns() - s)
    return statistics.median(t)
src, dst = os.path.join(d, "in.feather"), os.path.join(d, "cp.feather")
cp = med(lambda: subprocess.run(["cp", src, dst], check=True))
read = med(lambda: feather.read_table(src, memory_map=False).column(0).to_numpy().sum())
read_mm = med(lambda: feather.read_table(src, memory_map=True).column(0).to_numpy().sum())
print(json.dumps({"cp_ns": cp, "pyarrow_read_ns": read, "pyarrow_read_mmap_sum_ns": read_mm}))
PY
)
rm -rf "$dir"
mkdir -p bench/results
python3 - "$ours" "$peer" <<'PY'
import json, os, platform, sys
ours, peer = json.loads(sys.argv[1]), json.loads(sys.argv[2])
r = dict(ours, **peer, machine=f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
json.dump(r, open("bench/results/interop.json", "w"), indent=1)
gib = ours["bytes"] / 2**30
ms = lambda ns: f"{ns/1e6:.0f} ms"
print(f"Feather interop, {gib:.2f} GiB f64 column ({r['machine']})")
print("| case | dafstore | peer | ratio (ours/peer) |")
print("|---|---|---|---|")
print(f"| import (Feather -> published array) | {ms(ours['import_ns'])} | cp of the file {ms(peer['cp_ns'])} | {ours['import_ns']/peer['cp_ns']:.2f} |")
print(f"| import | {ms(ours['import_ns'])} | pyarrow read_table (into RAM) + sum {ms(peer['pyarrow_read_ns'])} | {ours['import_ns']/peer['pyarrow_read_ns']:.2f} |")
print(f"| export (array -> Feather) | {ms(ours['export_ns'])} | cp of the file {ms(peer['cp_ns'])} | {ours['export_ns']/peer['cp_ns']:.2f} |")
print(f"| (reference) pyarrow memory-mapped read + sum | | {ms(peer['pyarrow_read_mmap_sum_ns'])} | |")
PY
