//! `dafctl gc DIR [--json]`: reap dead holders, run the deletions they blocked, roll forward
//! interrupted publishes and removes, and remove dead sessions' staging files.
//! The container is opened without the gc every read-write open runs, so the report is the
//! engine's own account of this gc.

use std::path::Path;

use dafstore::{Container, GcReport};

use super::common::{out, print_json, Progress};
use super::Result;

/// Opens without the automatic gc of a read-write open, so the report is exactly what this
/// `gc` did.
fn collect(dir: &Path) -> Result<GcReport> {
    Ok(Container::options().gc(false).open(dir)?.gc()?)
}

pub fn run(dir: &Path, json: bool) -> Result<u8> {
    let progress = Progress::spinner("gc: reaping dead holders and running due deletions");
    let report = collect(dir)?;
    progress.finish();
    let code = u8::from(!report.failed.is_empty());
    if json {
        print_json(&report)?;
        return Ok(code);
    }
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
        out!("  {}", super::common::shown(n));
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
        out!("  {n}");
    }
    for f in &report.failed {
        eprintln!(
            "dafctl: error: recovering {:?} failed: {}",
            super::common::shown(&f.name),
            super::common::shown(&f.error)
        );
    }
    Ok(code)
}
