//! `dafctl gc DIR [--evict] [--json]`: reap dead holders, run the deletions they blocked, roll
//! forward interrupted publishes and removes, and remove dead sessions' staging files; with
//! `--evict`, then evict unreferenced `cached` entries until the container is within its limits
//! (SPEC 9.7).
//! The container is opened without the gc every read-write open runs, so the report is the
//! engine's own account of this gc.

use std::path::Path;

use dafstore::{Container, Evicted, GcReport};
use serde::Serialize;

use super::common::{out, print_json, shown, Progress};
use super::Result;

/// `gc --json`: the engine's [`GcReport`] and the engine's [`Evicted`] entries of `--evict`
/// (empty without it).
#[derive(Serialize)]
struct Report {
    #[serde(flatten)]
    gc: GcReport,
    evicted: Vec<Evicted>,
}

/// Opens without the automatic gc of a read-write open, so the report is exactly what this
/// `gc` did; then evicts if asked.
fn collect(dir: &Path, evict: bool) -> Result<Report> {
    let c = Container::options().gc(false).open(dir)?;
    let gc = c.gc()?;
    let evicted = if evict { c.evict()? } else { Vec::new() };
    Ok(Report { gc, evicted })
}

pub fn run(dir: &Path, evict: bool, json: bool) -> Result<u8> {
    let progress = Progress::spinner(if evict {
        "gc: reaping dead holders, running due deletions and evicting"
    } else {
        "gc: reaping dead holders and running due deletions"
    });
    let full = collect(dir, evict)?;
    progress.finish();
    let code = u8::from(!full.gc.failed.is_empty());
    if json {
        print_json(&full)?;
        return Ok(code);
    }
    let Report {
        gc: report,
        evicted,
    } = full;
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    out!(
        "reaped {}",
        plural(
            report.reaped_sessions.len(),
            "dead session",
            "dead sessions"
        )
    );
    for s in &report.reaped_sessions {
        out!("  session {s}");
    }
    out!(
        "deleted {}",
        plural(
            report.deleted.len(),
            "array whose deletion was due",
            "arrays whose deletion was due"
        )
    );
    for n in &report.deleted {
        out!("  {}", shown(n));
    }
    out!(
        "recovered {}",
        plural(
            report.recovered,
            "interrupted publish or remove",
            "interrupted publishes or removes"
        )
    );
    out!(
        "removed {}",
        plural(
            report.staging_removed,
            "stale staging directory",
            "stale staging directories"
        )
    );
    out!(
        "{} still held by live processes",
        plural(
            report.deferred.len(),
            "deferred removal",
            "deferred removals"
        )
    );
    for n in &report.deferred {
        out!("  {}", shown(n));
    }
    if evict {
        let total: u64 = evicted.iter().map(|e| e.bytes).sum();
        out!(
            "evicted {} ({total} bytes)",
            plural(
                evicted.len(),
                "unreferenced cached entry",
                "unreferenced cached entries"
            )
        );
        for e in &evicted {
            out!("  {} ({} bytes)", shown(&e.name), e.bytes);
        }
    }
    for f in &report.failed {
        eprintln!(
            "dafctl: error: recovering {:?} failed: {}",
            shown(&f.name),
            shown(&f.error)
        );
    }
    Ok(code)
}
