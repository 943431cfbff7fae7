//! `dafctl holders DIR [--json]` (formerly `refs`): the sessions registered in the catalog and
//! what they hold and are loading (the engine's [`dafstore::Holder`]s).

use std::path::Path;

use dafstore::Container;

use super::common::{out, print_json, print_table};
use super::Result;

pub fn run(dir: &Path, json: bool) -> Result<u8> {
    // Read-only: a read-write open would reap the dead holders this command is meant to show.
    let c = Container::options().read_only(true).open(dir)?;
    let holders = c.holders()?;
    if json {
        print_json(&holders)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = holders
        .iter()
        .map(|h| {
            let mut held: Vec<String> = h
                .arrays
                .iter()
                .map(|a| format!("{} ({})", a.name, a.count))
                .collect();
            held.extend(h.loading.iter().map(|n| format!("{n} (loading)")));
            let arrays = if held.is_empty() {
                "(none)".to_string()
            } else {
                held.join(", ")
            };
            vec![
                h.pid.map_or("?".into(), |p| p.to_string()),
                if h.alive { "alive" } else { "dead" }.to_string(),
                h.session.clone(),
                arrays,
            ]
        })
        .collect();
    print_table(&["PID", "STATUS", "SESSION", "ARRAYS"], &rows)?;
    if holders.is_empty() {
        out!("(no sessions)");
    } else if holders.iter().any(|h| !h.alive) {
        out!(
            "dead sessions are reaped by `dafctl gc {}` (their references are released)",
            dir.display()
        );
    }
    Ok(0)
}
