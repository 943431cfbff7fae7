//! `dafctl adopt DIR`: register the arrays of a daf directory in a (new) catalog. daf's own files
//! (`__daf__.yaml`, 0-d items, `.csv` files: SPEC [A1]) are listed and left alone, not refused.

use std::path::Path;

use dafstore::Container;

use super::common::{out, shown, Progress};
use super::Result;

pub fn run(dir: &Path) -> Result<u8> {
    let progress = Progress::spinner("adopting: checking and checksumming array files");
    let (c, report) = Container::adopt(dir)?;
    progress.finish();
    out!("container: {}", c.root().display());
    for name in &report.adopted {
        out!("adopted {}", shown(name));
    }
    for name in &report.already {
        out!("already registered {}", shown(name));
    }
    for r in &report.refused {
        out!(
            "refused {}: {}",
            shown(&r.path.display().to_string()),
            shown(&r.reason)
        );
    }
    for f in &report.daf_files {
        out!(
            "daf file {}: {} (not an array; left alone)",
            shown(&f.path.display().to_string()),
            f.kind.describe()
        );
    }
    out!(
        "{} adopted, {} already registered, {} refused, {} daf file{} left alone",
        report.adopted.len(),
        report.already.len(),
        report.refused.len(),
        report.daf_files.len(),
        if report.daf_files.len() == 1 { "" } else { "s" }
    );
    if report.refused.is_empty() {
        Ok(0)
    } else {
        eprintln!(
            "dafctl: {} file(s) refused (listed above); fix them and run `dafctl adopt {}` again",
            report.refused.len(),
            dir.display()
        );
        Ok(1)
    }
}
