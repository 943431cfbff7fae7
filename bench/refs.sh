#!/usr/bin/env bash
# Reference-count benchmark: dafstore vs numpy, same file, same run, same file system.
#   bench/refs.sh [DIR] [ELEMENTS]    default DIR: /dev/shm/dafstore-bench-refs, ELEMENTS 134217728 (1 GiB of f64)
# Prints a table and writes bench/results/refs.json.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/dev/shm/dafstore-bench-refs}
elements=${2:-134217728}
venv=bench/.venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import numpy" 2>/dev/null || "$venv/bin/pip" install --quiet numpy
cargo build --release --quiet -p dafstore-bench
rm -rf "$dir"
ours=$(./target/release/refs_bench "$dir" "$elements")
peer=$("$venv/bin/python" - "$dir/big.array" "$elements" <<'PY'
import json, statistics, sys, time
import numpy as np
path, n = sys.argv[1], int(sys.argv[2])
t = []
for _ in range(200):
    s = time.perf_counter_ns()
    a = np.memmap(path, dtype=np.float64, mode="r", shape=(n,))
    t.append(time.perf_counter_ns() - s)
    del a
print(json.dumps({"np_memmap_open_ns": statistics.median(t)}))
PY
)
rm -rf "$dir"
mkdir -p bench/results
python3 - "$ours" "$peer" <<'PY'
import json, sys, platform, os
ours, peer = json.loads(sys.argv[1]), json.loads(sys.argv[2])
r = dict(ours, **peer)
r["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}"
json.dump(r, open("bench/results/refs.json", "w"), indent=1)
gib = ours["bytes"] / 2**30
print(f"reference counts on a {gib:.2f} GiB f64 array ({r['machine']})")
print(f"| case | dafstore | peer | ratio (ours/peer) | goal |")
print(f"|---|---|---|---|---|")
print(f"| first open incl. reference | {ours['first_open_ns']/1e3:.1f} µs | np.memmap {peer['np_memmap_open_ns']/1e3:.1f} µs | {ours['first_open_ns']/peer['np_memmap_open_ns']:.2f} | ≤ 1 |")
print(f"| drop of the last handle (munmap + release) | {ours['drop_ns']/1e3:.1f} µs | | | |")
print(f"| cached re-open | {ours['cached_open_ns']/1e3:.2f} µs | | | about 1 µs, no catalog |")
for p, ops in ours["retain_release_ops_per_s"].items():
    print(f"| retain+release, {p} process(es) | {ops:,.0f} ops/s | | | ≥ 20,000 at 8 |")
PY
