//! `dafctl info DIR NAME [--json]`: one array's description. Also builds the rows `ls` prints.

use std::collections::BTreeMap;
use std::path::Path;

use dafstore::{ArrayMeta, ArrayRecord, Container, Holder};
use serde::Serialize;

use super::common::{print_json, print_table, shape_text};
use super::Result;

/// One array as `ls --json` and `info --json` print it. Dense arrays have `dtype`; sparse ones
/// `data_dtype`, `indices_dtype`, `indptr_dtype`, `layout` and `nnz`.
#[derive(Serialize)]
pub struct ArrayInfo {
    pub name: String,
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dtype: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dtype: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indices_dtype: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indptr_dtype: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<&'static str>,
    pub shape: Vec<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nnz: Option<u64>,
    /// Total bytes of its data files.
    pub bytes: u64,
    /// Live processes holding it.
    pub refs: usize,
    /// Catalog state (`live`, `deleting`, `publishing`, `removing`).
    pub state: &'static str,
}

/// Live holders by array name.
pub fn live_refs(holders: &[Holder]) -> BTreeMap<String, usize> {
    let mut refs = BTreeMap::new();
    for h in holders.iter().filter(|h| h.alive) {
        for (name, _, _) in &h.arrays {
            *refs.entry(name.clone()).or_insert(0) += 1;
        }
    }
    refs
}

impl ArrayInfo {
    pub fn new(rec: &ArrayRecord, refs: &BTreeMap<String, usize>) -> ArrayInfo {
        let mut info = ArrayInfo {
            name: rec.name.clone(),
            kind: rec.meta.kind(),
            dtype: None,
            data_dtype: None,
            indices_dtype: None,
            indptr_dtype: None,
            layout: None,
            shape: rec.meta.shape(),
            nnz: None,
            bytes: rec.files.iter().map(|f| f.size).sum(),
            refs: refs.get(&rec.name).copied().unwrap_or(0),
            state: rec.state.name(),
        };
        match &rec.meta {
            ArrayMeta::Dense(d) => info.dtype = Some(d.dtype.name()),
            ArrayMeta::Sparse(s) => {
                info.data_dtype = Some(s.data_dtype.name());
                info.indices_dtype = Some(s.indices_dtype.name());
                info.indptr_dtype = Some(s.indptr_dtype.name());
                info.layout = Some(s.layout.name());
                info.nnz = Some(s.nnz);
            }
        }
        info
    }

    /// The element type column: `float32`, or `float64 (indices int32, indptr int64)`.
    pub fn dtype_text(&self) -> String {
        match (self.dtype, self.data_dtype) {
            (Some(d), _) => d.to_string(),
            (None, Some(d)) => format!(
                "{d} (indices {}, indptr {})",
                self.indices_dtype.unwrap_or("?"),
                self.indptr_dtype.unwrap_or("?")
            ),
            (None, None) => "?".into(),
        }
    }

    /// The kind column: `dense`, `sparse rows` or `sparse columns`.
    pub fn kind_text(&self) -> String {
        match self.layout {
            Some(l) => format!("{} {l}", self.kind),
            None => self.kind.to_string(),
        }
    }
}

pub fn run(dir: &Path, name: &str, json: bool) -> Result<u8> {
    let c = Container::options().read_only(true).open(dir)?;
    let rec = c
        .records()?
        .into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| {
            format!(
                "{}: no array named {name:?}; `dafctl ls {}` lists the arrays",
                c.root().display(),
                dir.display()
            )
        })?;
    let info = ArrayInfo::new(&rec, &live_refs(&c.holders()?));
    if json {
        print_json(&info)?;
        return Ok(0);
    }
    let mut rows = vec![
        vec!["name".into(), info.name.clone()],
        vec!["kind".into(), info.kind.to_string()],
    ];
    match info.dtype {
        Some(d) => rows.push(vec!["dtype".into(), d.to_string()]),
        None => {
            for (k, v) in [
                ("data_dtype", info.data_dtype),
                ("indices_dtype", info.indices_dtype),
                ("indptr_dtype", info.indptr_dtype),
                ("layout", info.layout),
            ] {
                rows.push(vec![k.into(), v.unwrap_or("?").to_string()]);
            }
        }
    }
    rows.push(vec!["shape".into(), shape_text(&info.shape)]);
    if let Some(nnz) = info.nnz {
        rows.push(vec!["nnz".into(), nnz.to_string()]);
    }
    rows.push(vec!["bytes".into(), info.bytes.to_string()]);
    for f in &rec.files {
        let crc = f
            .crc32c
            .map_or("unknown".to_string(), |c| format!("{c:08x}"));
        rows.push(vec![
            format!("file .{}", f.suffix),
            format!("{} bytes, crc32c {crc}", f.size),
        ]);
    }
    rows.push(vec!["refs".into(), info.refs.to_string()]);
    rows.push(vec!["state".into(), info.state.to_string()]);
    print_table(&["FIELD", "VALUE"], &rows)?;
    Ok(0)
}
