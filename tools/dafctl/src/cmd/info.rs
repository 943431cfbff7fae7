//! `dafctl info DIR NAME [--json]`: one array's description (lifecycle and last release too) (the engine's [`ArrayInfo`]). Also
//! formats the columns `ls` prints.

use std::path::Path;

use dafstore::{ArrayInfo, ArrayMeta, Container};

use super::common::{print_json, print_table, shape_text};
use super::Result;

/// The element type column: `float32`, or `float64 (indices int32, indptr int64)`, or a table's
/// `a: double, b: string`.
pub fn dtype_text(info: &ArrayInfo) -> String {
    match &info.meta {
        ArrayMeta::Dense(d) => d.dtype.to_string(),
        ArrayMeta::Table(t) => t
            .columns
            .iter()
            .zip(&t.types)
            .map(|(c, ty)| format!("{}: {ty}", dafstore::escape_for_display(c)))
            .collect::<Vec<_>>()
            .join(", "),
        ArrayMeta::Sparse(s) => format!(
            "{} (indices {}, indptr {})",
            s.data_dtype, s.indices_dtype, s.indptr_dtype
        ),
    }
}

/// The kind column: `dense`, `sparse rows` or `sparse columns`.
pub fn kind_text(info: &ArrayInfo) -> String {
    match &info.meta {
        ArrayMeta::Dense(_) | ArrayMeta::Table(_) => info.meta.kind().to_string(),
        ArrayMeta::Sparse(s) => format!("{} {}", info.meta.kind(), s.layout),
    }
}

/// The number of stored entries of a sparse array.
pub fn nnz(info: &ArrayInfo) -> Option<u64> {
    match &info.meta {
        ArrayMeta::Dense(_) | ArrayMeta::Table(_) => None,
        ArrayMeta::Sparse(s) => Some(s.nnz),
    }
}

pub fn run(dir: &Path, name: &str, json: bool) -> Result<u8> {
    let c = Container::options().read_only(true).open(dir)?;
    // Any state (a `deleting` array too): `info_all`, not `info`, which shows live arrays only.
    let info = c
        .info_all()?
        .into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| {
            format!(
                "{}: no array named {name:?}; `dafctl ls {}` lists the arrays",
                c.root().display(),
                dir.display()
            )
        })?;
    if json {
        print_json(&info)?;
        return Ok(0);
    }
    let mut rows = vec![
        vec!["name".into(), info.name.clone()],
        vec!["kind".into(), info.meta.kind().to_string()],
    ];
    match &info.meta {
        ArrayMeta::Dense(d) => rows.push(vec!["dtype".into(), d.dtype.to_string()]),
        ArrayMeta::Table(t) => {
            rows.push(vec!["rows".into(), t.rows.to_string()]);
            for (c, ty) in t.columns.iter().zip(&t.types) {
                rows.push(vec![
                    format!("column {}", dafstore::escape_for_display(c)),
                    ty.clone(),
                ]);
            }
        }
        ArrayMeta::Sparse(s) => {
            for (k, v) in [
                ("data_dtype", s.data_dtype.to_string()),
                ("indices_dtype", s.indices_dtype.to_string()),
                ("indptr_dtype", s.indptr_dtype.to_string()),
                ("layout", s.layout.to_string()),
            ] {
                rows.push(vec![k.into(), v]);
            }
        }
    }
    rows.push(vec!["shape".into(), shape_text(&info.meta.shape())]);
    if let Some(nnz) = nnz(&info) {
        rows.push(vec!["nnz".into(), nnz.to_string()]);
    }
    rows.push(vec!["bytes".into(), info.bytes.to_string()]);
    for f in &info.files {
        let crc = f
            .crc32c
            .map_or("unknown".to_string(), |c| format!("{c:08x}"));
        rows.push(vec![
            format!("file .{}", f.suffix),
            format!("{} bytes, crc32c {crc}", f.size),
        ]);
    }
    rows.push(vec!["holders".into(), info.holders.to_string()]);
    rows.push(vec!["state".into(), info.state.to_string()]);
    rows.push(vec!["lifecycle".into(), info.lifecycle.to_string()]);
    rows.push(vec![
        "released_at".into(),
        info.released_at
            .map_or("unknown".to_string(), super::common::time_text),
    ]);
    print_table(&["FIELD", "VALUE"], &rows)?;
    Ok(0)
}
