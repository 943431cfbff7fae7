#!/usr/bin/env bash
# The benchmark suite: dafstore against the tools users would pick instead (numpy, pyarrow, polars,
# safetensors, scipy), same run, same files, on /dev/shm and on the working directory's disk.
#
#   bench/run.sh [--quick] [--big] [--sparse-full] [--no-criterion] [--only-shm] [--with-python]
#
#   (no option)     1 MiB, 64 MiB and 1 GiB arrays, scale to 100k arrays (about 11 minutes on 2 cores)
#   --quick         1 MiB and 64 MiB only, fewer cycles and arrays (about 3 minutes)
#   --big           add 8 GiB arrays where the file system has room (checked per file system)
#   --sparse-full   the sparse case at 1e6 x 3e4 with 1e8 nonzeros (default 1e5 x 3e4, 1e7)
#   --no-criterion  skip the criterion microbenchmarks (bench/benches/micro.rs)
#   --only-shm      skip the disk runs
#   --with-python   pip install ./bindings/python into the venv first (adds Python c.open rows)
#
# Prints the table (also saved as bench/results/suite.md) and writes bench/results/suite.json;
# bench/README.md says what each case measures. Scratch space: /dev/shm/dafstore-bench-suite and
# target/bench-disk, both removed at the end. Then redraws bench/results/plots/*.png (bench/plots.py)
# when matplotlib is importable from bench/.venv or python3, and says so when it is not.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0 criterion=1 with_python=0
suite_args=()
for a in "$@"; do
    case "$a" in
        --quick) quick=1; suite_args+=("$a") ;;
        --big | --sparse-full | --only-shm) suite_args+=("$a") ;;
        --no-criterion) criterion=0 ;;
        --with-python) with_python=1 ;;
        -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "unknown option $a (see --help)" >&2; exit 2 ;;
    esac
done

shm=/dev/shm/dafstore-bench-suite
disk=target/bench-disk
cleanup() { rm -rf "$shm" "$disk" /dev/shm/dafstore-criterion-*; }
trap cleanup EXIT
cleanup

start=$(date +%s) given="$*"
echo "== build (release)" >&2
cargo build --release --quiet -p dafstore-bench --bins

echo "== venv bench/.venv" >&2
venv=bench/.venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import numpy, pyarrow, polars, safetensors, scipy" 2>/dev/null ||
    "$venv/bin/pip" install --quiet numpy pyarrow polars safetensors scipy
# polars 2 dropped read_ipc(memory_map=True) (it copies); polars 1.x still maps, so the memory case
# runs both. A venv of its own because one venv holds one polars.
venv1=bench/.venv-polars1
[ -x "$venv1/bin/python" ] || python3 -m venv "$venv1"
"$venv1/bin/python" -c "import polars" 2>/dev/null || "$venv1/bin/pip" install --quiet "polars<2"
if [ "$with_python" = 1 ]; then
    echo "== pip install ./bindings/python (builds the extension; a few minutes)" >&2
    if "$venv/bin/pip" install --quiet ./bindings/python; then
        suite_args+=(--with-python)
    else
        echo "warning: pip install ./bindings/python failed; the Python rows are left out" >&2
    fi
fi

since=$(date +%s)
export CRITERION_HOME="$PWD/target/criterion"
if [ "$criterion" = 1 ]; then
    echo "== criterion microbenchmarks (cargo bench -p dafstore-bench)" >&2
    if [ "$quick" = 1 ]; then set -- --warm-up-time 0.5 --measurement-time 1; else set -- --warm-up-time 1 --measurement-time 2; fi
    cargo bench --quiet -p dafstore-bench --bench micro -- "$@" >&2
fi

echo "== suite" >&2
mkdir -p bench/results
"$venv/bin/python" bench/suite.py --shm-dir "$shm" --disk-dir "$disk" --criterion-since "$since" \
    --polars1-python "$venv1/bin/python" \
    ${suite_args[@]+"${suite_args[@]}"} | tee bench/results/suite.md

# The figures: matplotlib is a bench-only dependency, not installed here; a failure to draw does not
# fail the run (the results are written by then).
plot_py=
for py in "$venv/bin/python" python3; do
    if "$py" -c "import matplotlib" 2>/dev/null; then plot_py=$py; break; fi
done
if [ -n "$plot_py" ]; then
    echo "== plots (bench/plots.py with $plot_py)" >&2
    "$plot_py" bench/plots.py >&2 || echo "warning: bench/plots.py failed; bench/results/plots/ not redrawn" >&2
else
    echo "== plots skipped: matplotlib is not importable (\"$venv/bin/pip\" install matplotlib," \
        "then $venv/bin/python bench/plots.py)" >&2
fi
echo "== bench/run.sh $given: $(($(date +%s) - start)) s in all (build, venv, criterion, suite, plots)" >&2
