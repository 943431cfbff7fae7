//! `dafctl ls DIR [--json]`: every array of the catalog (any state), sorted by name.

use std::path::Path;

use dafstore::Container;

use super::common::{out, print_json, print_table, shape_text};
use super::info::{dtype_text, kind_text, nnz};
use super::Result;

pub fn run(dir: &Path, json: bool) -> Result<u8> {
    let c = Container::options().read_only(true).open(dir)?;
    let infos = c.info_all()?;
    if json {
        print_json(&infos)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = infos
        .iter()
        .map(|i| {
            vec![
                i.name.clone(),
                kind_text(i),
                dtype_text(i),
                shape_text(&i.meta.shape()),
                nnz(i).map_or("-".into(), |n| n.to_string()),
                i.bytes.to_string(),
                i.holders.to_string(),
                i.state.to_string(),
                i.lifecycle.to_string(),
            ]
        })
        .collect();
    print_table(
        &[
            "NAME",
            "KIND",
            "DTYPE",
            "SHAPE",
            "NNZ",
            "BYTES",
            "HOLDERS",
            "STATE",
            "LIFECYCLE",
        ],
        &rows,
    )?;
    if infos.is_empty() {
        out!("(no arrays)");
    }
    Ok(0)
}
