//! `dafctl import DIR NAME FILE` and `dafctl export DIR NAME FILE`: .npy, .npz, Feather/Arrow
//! IPC and Parquet through the engine's interop API, with a progress bar (bytes) on a terminal.

use std::path::Path;

use dafstore::{Container, Format, ImportOptions};

use super::common::{out, Progress};
use super::Result;

/// `--format`: parsed by the engine ([`Format::from_extension`]), so dafctl and Python accept
/// the same names with the same error message.
pub fn parse_format(name: &str) -> std::result::Result<Format, String> {
    name.parse::<Format>().map_err(|e| e.to_string())
}

pub fn import(
    dir: &Path,
    name: &str,
    file: &Path,
    format: Option<Format>,
    column: Option<String>,
    fill: Option<f64>,
    table: bool,
) -> Result<u8> {
    let c = Container::open(dir)?;
    let progress = Progress::counter(&format!("importing {}", file.display()));
    let mut report_progress = |done: u64, total: u64| progress.update(done, total);
    let opts = ImportOptions {
        format,
        column,
        fill,
        progress: Some(&mut report_progress),
        table,
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
            a.meta.kind(),
            a.meta
                .dtype()
                .map_or_else(|| "(columns)".to_string(), |d| d.to_string()),
            a.meta.shape()
        );
    }
    Ok(0)
}

pub fn export(dir: &Path, name: &str, file: &Path, format: Option<Format>) -> Result<u8> {
    // Reading needs no write access: works on read-only media and full file systems.
    let c = Container::options().read_only(true).open(dir)?;
    let progress = Progress::spinner(&format!("exporting {name}"));
    c.export(name, file, format)?;
    progress.finish();
    out!("exported {name} to {}", file.display());
    Ok(0)
}
