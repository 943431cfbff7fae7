//! `dafctl fsck DIR [--repair] [--deep] [--json]`: check a container (and repair what can be
//! repaired without losing committed data). Exit codes: 0 clean, 1 problems found and all fixed,
//! 4 problems left, 8 operational error (cannot open, usage).

use std::path::Path;

use dafstore::{Container, FsckOptions};

use super::common::{out, print_json, Progress};
use super::Result;

/// Exit code of an operational error (cannot open, usage).
pub const EXIT_OPERATIONAL: u8 = 8;

pub fn run(dir: &Path, repair: bool, deep: bool, json: bool) -> Result<u8> {
    let progress = Progress::counter(if deep {
        "fsck --deep: checking arrays (reading every byte)"
    } else {
        "fsck: checking arrays"
    });
    let report = Container::fsck_dir(dir, FsckOptions { deep, repair }, &mut |done, total| {
        progress.update(done, total)
    })?;
    progress.finish();
    let code = report.exit_code();
    if json {
        print_json(&report)?;
        return Ok(code);
    }
    for p in &report.problems {
        let status = if p.fixed {
            "fixed"
        } else if repair {
            "NOT FIXED"
        } else {
            "found"
        };
        out!(
            "{status}: {}: {}",
            p.kind.name(),
            super::common::shown(&p.message)
        );
    }
    if !report.daf_files.is_empty() {
        out!(
            "{} daf file{} (daf's own: its __daf__.yaml marker, 0-d items, CSV files; SPEC [A1]) left alone, not problems",
            report.daf_files.len(),
            if report.daf_files.len() == 1 { "" } else { "s" }
        );
    }
    let fixed = report.problems.iter().filter(|p| p.fixed).count();
    let left = report.problems.len() - fixed;
    out!(
        "{} arrays checked{}: {} problem{}, {fixed} fixed, {left} left",
        report.arrays_checked,
        if deep { " (deep)" } else { "" },
        report.problems.len(),
        if report.problems.len() == 1 { "" } else { "s" },
    );
    if left > 0 && !repair {
        out!(
            "run `dafctl fsck {} --repair` to fix what can be fixed without losing data",
            dir.display()
        );
    }
    Ok(code)
}
