//! Helpers shared by the benchmark binaries (`src/bin/*`) and the criterion benches
//! (`benches/*`): the one summation loop every scan case uses, medians, and readings of
//! `/proc/self` for the memory and leak cases.

use std::path::Path;

/// Sums `x` with eight independent accumulators, so the loop is limited by memory bandwidth
/// rather than by the latency of one floating-point add chain. Every scan in the suite (over a
/// map, over a `Vec`) uses this same function, so the ratios compare memory, not code.
pub fn sum_f64(x: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    let mut s: f64 = acc.iter().sum();
    for v in rest {
        s += v;
    }
    s
}

/// The median of `v` (the upper one for an even count); 0 for an empty vector.
pub fn median(mut v: Vec<u128>) -> u128 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[v.len() / 2]
}

/// A `kB` field of a `/proc` status-like file (`VmRSS`, `Pss`, ...), in bytes.
pub fn proc_kb(path: impl AsRef<Path>, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = rest.split_whitespace().next()?.parse().ok()?;
        Some(kb * 1024)
    })
}

/// This process's resident set size (`VmRSS` of `/proc/self/status`), in bytes.
pub fn rss_bytes() -> u64 {
    proc_kb("/proc/self/status", "VmRSS").unwrap_or(0)
}

/// The number of open file descriptors of this process (entries of `/proc/self/fd`).
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Minor page faults of this process so far (field 10 of `/proc/self/stat`).
pub fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(7)?.parse().ok())
        .unwrap_or(0)
}
