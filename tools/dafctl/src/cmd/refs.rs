//! `dafctl refs DIR [--json]`: the sessions registered in the catalog and what they hold.

use std::collections::BTreeMap;
use std::path::Path;

use dafstore::Container;
use serde::Serialize;

use super::common::{out, print_json, print_table};
use super::Result;

#[derive(Serialize)]
struct HolderInfo {
    session: String,
    pid: Option<u32>,
    alive: bool,
    /// Array name → references (the catalog records one per process and array).
    arrays: BTreeMap<String, u64>,
}

pub fn run(dir: &Path, json: bool) -> Result<u8> {
    // Read-only: a read-write open would reap the dead holders this command is meant to show.
    let c = Container::options().read_only(true).open(dir)?;
    let holders: Vec<HolderInfo> = c
        .holders()?
        .into_iter()
        .map(|h| HolderInfo {
            session: h.session,
            pid: h.pid,
            alive: h.alive,
            arrays: h
                .arrays
                .into_iter()
                .map(|(n, _, count)| (n, count))
                .collect(),
        })
        .collect();
    if json {
        print_json(&holders)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = holders
        .iter()
        .map(|h| {
            let arrays = if h.arrays.is_empty() {
                "(none)".to_string()
            } else {
                h.arrays
                    .iter()
                    .map(|(n, c)| format!("{n} ({c})"))
                    .collect::<Vec<_>>()
                    .join(", ")
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
