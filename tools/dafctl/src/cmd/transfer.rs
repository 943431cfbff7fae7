//! `dafctl import DIR NAME FILE` and `dafctl export DIR NAME FILE`: .npy, .npz and Feather/Arrow
//! IPC through the engine's interop API, with a progress bar (bytes) on a terminal.

use std::path::Path;

use dafstore::{Container, Format, ImportOptions};

use super::common::{out, Progress};
use super::Result;

fn format(name: Option<&str>) -> Option<Format> {
    match name? {
        "npy" => Some(Format::Npy),
        "npz" => Some(Format::Npz),
        "feather" => Some(Format::Feather),
        _ => None, // clap restricts the values
    }
}

pub fn import(
    dir: &Path,
    name: &str,
    file: &Path,
    fmt: Option<&str>,
    column: Option<String>,
    fill: Option<f64>,
) -> Result<u8> {
    let c = Container::open(dir)?;
    let progress = Progress::counter(&format!("importing {}", file.display()));
    let mut report_progress = |done: u64, total: u64| progress.update(done, total);
    let opts = ImportOptions {
        format: format(fmt),
        column,
        fill,
        progress: Some(&mut report_progress),
    };
    let report = c.import(name, file, opts)?;
    progress.finish();
    for a in &report.arrays {
        let conversions = if a.conversions.is_empty() {
            String::new()
        } else {
            format!(" ({})", a.conversions.join(", "))
        };
        out!(
            "imported {} from {}: {} {} {:?}{conversions}",
            a.name,
            file.display(),
            a.kind,
            a.dtype,
            a.shape
        );
    }
    Ok(0)
}

pub fn export(dir: &Path, name: &str, file: &Path, fmt: Option<&str>) -> Result<u8> {
    // Reading needs no write access: works on read-only media and full file systems.
    let c = Container::options().read_only(true).open(dir)?;
    let progress = Progress::spinner(&format!("exporting {name}"));
    c.export(name, file, format(fmt))?;
    progress.finish();
    out!("exported {name} to {}", file.display());
    Ok(0)
}
