//! `dafctl fsck DIR [--repair] [--deep] [--json]`: check a container (and repair what can be
//! repaired without losing committed data). Exit codes: 0 clean, 1 problems found and all fixed,
//! 4 problems left, 8 operational error (cannot open, usage).

use std::path::Path;

use dafstore::{Container, FsckOptions};
use serde::Serialize;

use super::common::{out, print_json, Progress};
use super::Result;

/// Exit code of an operational error (cannot open, usage).
pub const EXIT_OPERATIONAL: u8 = 8;

#[derive(Serialize)]
struct FsckJson {
    arrays_checked: usize,
    problems: Vec<ProblemJson>,
    daf_files: Vec<DafFileJson>,
    exit_code: u8,
}

/// One of daf's own files (SPEC [A1]): not an array, not a problem.
#[derive(Serialize)]
struct DafFileJson {
    path: String,
    kind: &'static str,
}

#[derive(Serialize)]
struct ProblemJson {
    kind: &'static str,
    path: String,
    name: Option<String>,
    message: String,
    fixed: bool,
}

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
        print_json(&FsckJson {
            arrays_checked: report.arrays_checked,
            problems: report
                .problems
                .iter()
                .map(|p| ProblemJson {
                    kind: p.kind.name(),
                    path: p.path.to_string_lossy().into_owned(),
                    name: p.name.clone(),
                    message: p.message.clone(),
                    fixed: p.fixed,
                })
                .collect(),
            daf_files: report
                .daf_files
                .iter()
                .map(|(path, kind)| DafFileJson {
                    path: path.to_string_lossy().into_owned(),
                    kind: kind.name(),
                })
                .collect(),
            exit_code: code,
        })?;
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
