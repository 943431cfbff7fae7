#!/usr/bin/env bash
# Fuzz smoke run: builds every cargo-fuzz target of this directory once (AddressSanitizer, on a
# stable toolchain through RUSTC_BOOTSTRAP=1), then runs each for FUZZ_SECONDS on a scratch copy
# of its committed corpus (fuzz/corpus/<target>/, which therefore never grows in a CI run) plus
# its saved reproducers (fuzz/regressions/<target>/, replayed first). Fails if any target crashes,
# leaks, times out on an input or runs out of memory, printing the reproducer's path and the log.
#
# Usage: fuzz/run-smoke.sh [TARGET...]        (from any directory; default: every target)
#
# Environment:
#   FUZZ_SECONDS       seconds per target (default 60)
#   FUZZ_JOBS          targets fuzzed at the same time (default: number of CPUs)
#   CARGO_FUZZ_VERSION cargo-fuzz installed when `cargo fuzz` is missing (default 0.13.2); it is
#                      installed under fuzz/target/cargo-fuzz (no root, no global state)
#
# Output: one line per target: target, runs executed, coverage (libFuzzer's cov/ft), corpus size,
# result. Logs and corpus copies: fuzz/target/smoke/; reproducers: fuzz/artifacts/<target>/.
set -euo pipefail

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$FUZZ_DIR"
SECS="${FUZZ_SECONDS:-60}"
JOBS="${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}"
CARGO_FUZZ_VERSION="${CARGO_FUZZ_VERSION:-0.13.2}"
export RUSTC_BOOTSTRAP=1
# Its own target dir (fuzz/target), whatever the caller's CARGO_TARGET_DIR: the binaries are
# looked up there, and sanitizer builds must not mix with the workspace's.
unset CARGO_TARGET_DIR
exec </dev/null

start=$(date +%s)

# --- cargo-fuzz ----------------------------------------------------------------------------------
if cargo fuzz --version >/dev/null 2>&1; then
    cargo_fuzz=(cargo fuzz)
else
    root="$FUZZ_DIR/target/cargo-fuzz"
    if [[ ! -x "$root/bin/cargo-fuzz" ]]; then
        echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION into $root"
        cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION" --root "$root"
    fi
    cargo_fuzz=("$root/bin/cargo-fuzz" fuzz)
fi
echo "== $("${cargo_fuzz[@]}" --version), $(rustc --version)"

# --- build ---------------------------------------------------------------------------------------
if (($# > 0)); then
    targets=("$@")
else
    mapfile -t targets < <("${cargo_fuzz[@]}" list)
fi
echo "== building ${#targets[@]} targets"
"${cargo_fuzz[@]}" build
build_done=$(date +%s)
echo "== built in $((build_done - start)) s"

triple="$(rustc -vV | sed -n 's/^host: //p')"
bin_dir="$FUZZ_DIR/target/$triple/release"
smoke="$FUZZ_DIR/target/smoke"
rm -rf "$smoke"
mkdir -p "$smoke"
# Scratch directories of the targets (fuzz/src/lib.rs): one base per run, removed at the end even
# when a target crashed and could not remove its own.
if [[ -d /dev/shm ]]; then scratch_base="/dev/shm/dafstore-fuzz-smoke.$$"; else scratch_base="${TMPDIR:-/tmp}/dafstore-fuzz-smoke.$$"; fi
export DAFSTORE_FUZZ_SCRATCH="$scratch_base"
trap 'rm -rf "$scratch_base"' EXIT
# cargo-fuzz's ASan default: no ODR check (Rust's duplicate symbols across crates are not bugs).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_odr_violation=0"

# --- one target ----------------------------------------------------------------------------------
# Writes "$smoke/<t>.result": target runs coverage corpus result [artifact].
fuzz_one() {
    local t="$1" bin="$bin_dir/$1" work="$smoke/$1" log="$smoke/$1.log"
    local artifacts="$FUZZ_DIR/artifacts/$t/"
    mkdir -p "$work/corpus" "$artifacts"
    if [[ -d "corpus/$t" ]]; then cp -R "corpus/$t/." "$work/corpus/"; fi
    local dirs=("$work/corpus")
    if [[ -d "regressions/$t" ]]; then dirs+=("$FUZZ_DIR/regressions/$t"); fi
    local before
    before=$(ls -A "$artifacts" | sort)
    local rc=0
    # libFuzzer stops itself after -max_total_time; the outer timeout only catches a hang that
    # libFuzzer's own per-input -timeout could not report.
    timeout --signal=KILL $((SECS + 300)) "$bin" "${dirs[@]}" \
        -max_total_time="$SECS" -timeout=60 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts" >"$log" 2>&1 || rc=$?
    local runs cov ft corp result artifact=""
    # (grep finds nothing in the log of a target that crashed while loading its corpus)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [[ -z "$runs" ]]; then runs=$( (grep -o '^#[0-9]*' "$log" || true) | tail -1 | tr -d '#'); fi
    cov=$( (grep -o 'cov: [0-9]*' "$log" || true) | tail -1 | cut -d' ' -f2)
    ft=$( (grep -o 'ft: [0-9]*' "$log" || true) | tail -1 | cut -d' ' -f2)
    corp=$( (grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" || true) | tail -1 | cut -d' ' -f2)
    if ((rc == 0)); then
        result=ok
    else
        if ((rc == 137)); then result=HUNG
        elif grep -q 'ERROR: libFuzzer: timeout' "$log"; then result=TIMEOUT
        elif grep -q 'ERROR: libFuzzer: out-of-memory' "$log"; then result=OUT-OF-MEMORY
        elif grep -q 'ERROR: LeakSanitizer' "$log"; then result=LEAK
        elif grep -q 'ERROR: AddressSanitizer' "$log"; then result=ASAN-ERROR
        elif grep -q "panicked at\|deadly signal" "$log"; then result=CRASH
        else result="FAILED(exit=$rc)"
        fi
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        if [[ -z "$artifact" ]]; then
            artifact=$(comm -13 <(echo "$before") <(ls -A "$artifacts" | sort) | head -1)
            [[ -n "$artifact" ]] && artifact="$artifacts$artifact"
        fi
    fi
    echo "$t ${runs:-0} ${cov:-?} ${ft:-?} ${corp:-?} $result ${artifact:-}" >"$smoke/$t.result"
}

# --- run, FUZZ_JOBS at a time --------------------------------------------------------------------
echo "== fuzzing each target for $SECS s, $JOBS at a time"
for t in "${targets[@]}"; do
    if [[ ! -x "$bin_dir/$t" ]]; then
        echo "no fuzz target $t (have: $("${cargo_fuzz[@]}" list | tr '\n' ' '))" >&2
        exit 2
    fi
    while (($(jobs -rp | wc -l) >= JOBS)); do wait -n || true; done
    fuzz_one "$t" &
done
wait || true

failed=0
summary() {
    printf '%-18s %12s %8s %8s %12s  %s\n' target runs cov ft corpus result
    for t in "${targets[@]}"; do
        read -r name runs cov ft corp result artifact <"$smoke/$t.result" ||
            { name=$t runs=0 cov=? ft=? corp=? result="FAILED(no-result)" artifact=""; }
        printf '%-18s %12s %8s %8s %12s  %s\n' "$name" "$runs" "$cov" "$ft" "$corp" "$result"
    done
}
for t in "${targets[@]}"; do
    read -r name runs cov ft corp result artifact <"$smoke/$t.result" ||
        { result="FAILED(no-result)" artifact=""; }
    if [[ "$result" != ok ]]; then
        failed=1
        {
            local_log="$smoke/$t.log"
            first=$(grep -n -m1 -E 'panicked at|ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)' \
                "$local_log" | cut -d: -f1 || true)
            echo "---- $t: $result; log $local_log (from the first error, 80 lines):"
            if [[ -n "$first" ]]; then sed -n "${first},$((first + 80))p" "$local_log"; else tail -n 60 "$local_log"; fi
            if [[ -n "$artifact" ]]; then
                echo "---- $t: $result: reproducer $artifact"
                echo "     replay: (cd $FUZZ_DIR && RUSTC_BOOTSTRAP=1 cargo fuzz run $t $artifact)"
            fi
        } >&2
    fi
done
summary
end=$(date +%s)
echo "== fuzz smoke: $((end - start)) s in all (build $((build_done - start)) s)"
if ((failed)); then
    echo "== fuzz smoke FAILED" >&2
    exit 1
fi
echo "== fuzz smoke passed"
