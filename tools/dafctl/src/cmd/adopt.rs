//! `dafctl adopt DIR`: register the arrays of a daf directory in a (new) catalog.

use std::path::Path;

use dafstore::Container;

use super::common::{shown, Progress};
use super::Result;

pub fn run(dir: &Path) -> Result<u8> {
    let progress = Progress::spinner("adopting: checking and checksumming array files");
    let (c, report) = Container::adopt(dir)?;
    progress.finish();
    println!("container: {}", c.root().display());
    for name in &report.adopted {
        println!("adopted {}", shown(name));
    }
    for name in &report.already {
        println!("already registered {}", shown(name));
    }
    for (path, reason) in &report.refused {
        println!(
            "refused {}: {}",
            shown(&path.display().to_string()),
            shown(reason)
        );
    }
    println!(
        "{} adopted, {} already registered, {} refused",
        report.adopted.len(),
        report.already.len(),
        report.refused.len()
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
