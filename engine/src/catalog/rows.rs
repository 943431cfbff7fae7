//! The catalog's rows as the engine sees them: an array's state ([`ArrayState`]), its data files
//! ([`FileRecord`]) and its description ([`ArrayInfo`]), and their mapping to and from the
//! columns of `arrays` (any schema version).

use std::path::Path;

use rusqlite::Connection;

use super::sql::to_i64;
use crate::error::CatalogError;
use crate::format::dtype::DType;
use crate::format::lifecycle::Lifecycle;
use crate::format::meta::{ArrayMeta, DenseMeta, Layout, SparseMeta, TableMeta};

/// State of an array row (SPEC [W3], [W8]). Serializes as its catalog spelling
/// ([`ArrayState::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArrayState {
    /// A publish is in progress or was interrupted (rolled forward by recovery).
    Publishing,
    /// Published and visible.
    Live,
    /// Removal deferred while referenced: gone for new holders, kept for current ones ([W8]).
    Deleting,
    /// A remove is in progress or was interrupted (rolled forward by recovery).
    Removing,
}

impl ArrayState {
    /// The spelling stored in the catalog.
    pub fn name(self) -> &'static str {
        match self {
            ArrayState::Publishing => "publishing",
            ArrayState::Live => "live",
            ArrayState::Deleting => "deleting",
            ArrayState::Removing => "removing",
        }
    }

    /// The state spelled `name` in the catalog ([`ArrayState::name`]), if any.
    pub(crate) fn from_name(name: &str) -> Option<ArrayState> {
        [
            ArrayState::Publishing,
            ArrayState::Live,
            ArrayState::Deleting,
            ArrayState::Removing,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

impl std::fmt::Display for ArrayState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One data file of an array as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileRecord {
    /// `array`, `data`, `indices` or `indptr`.
    pub suffix: String,
    /// Exact byte length.
    pub size: u64,
    /// CRC-32C of the contents, `None` if unknown.
    pub crc32c: Option<u32>,
}

impl FileRecord {
    /// The data files `meta` implies, with the checksums `crcs` has for them.
    pub(crate) fn of(
        meta: &ArrayMeta,
        crcs: &std::collections::BTreeMap<String, u32>,
    ) -> Vec<Self> {
        meta.files()
            .into_iter()
            .map(|(suffix, size)| FileRecord {
                suffix: suffix.to_string(),
                size,
                crc32c: crcs.get(suffix).copied(),
            })
            .collect()
    }
}

/// One array's description: its catalog row ([`crate::Container::info`],
/// [`crate::Container::info_all`]; `dafctl info`, `dafctl ls --json`; Python's `c.info(name)`).
///
/// Serializes as one flat object: `name`, the metadata keys of [`ArrayMeta`] (`kind`, `dtype`,
/// `data_dtype`, `indices_dtype`, `indptr_dtype`, `layout`, `shape`, `nnz`: the other kind's are
/// `null`), then the fields below in order.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ArrayInfo {
    /// The name.
    pub name: String,
    /// Metadata.
    #[serde(flatten)]
    pub meta: ArrayMeta,
    /// State.
    pub state: ArrayState,
    /// Incremented by every publish of this name.
    pub generation: u64,
    /// Total bytes of its data files (the sum of `files`' sizes).
    pub bytes: u64,
    /// Data files.
    pub files: Vec<FileRecord>,
    /// Whether the checksums are stale (in-place writers are or were active).
    pub checksum_stale: bool,
    /// What happens after its last release: kept, removed, or kept but evictable (SPEC 9.7).
    pub lifecycle: Lifecycle,
    /// Removed automatically after its last reference is released ([P6]): `lifecycle` is
    /// [`Lifecycle::Scratch`] (kept for older readers of this report).
    pub scratch: bool,
    /// When a process last released it (or it was published), ms since the epoch; `None` in
    /// a catalog older than schema 3. Eviction takes the least recent first.
    pub released_at: Option<i64>,
    /// Whether it has ever been referenced.
    pub ever_held: bool,
    /// Staging location (`<session>/<stem>`) of an in-flight publish.
    pub staging: Option<String>,
    /// Live processes holding it. Counted by [`crate::Container::info`] and
    /// [`crate::Container::info_all`]; 0 in the rows the catalog reads for the engine itself.
    pub holders: usize,
    /// References this process holds on it ([`crate::Container::local_refs`]), as of
    /// [`crate::Container::info`] / [`crate::Container::info_all`] (0 elsewhere).
    pub local_refs: u64,
}

pub(super) type MetaColumns = (
    &'static str,
    Option<&'static str>,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<i64>,
);

/// A table's rows, columns and types as stored in `tab`.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct TableColumns {
    rows: u64,
    columns: Vec<String>,
    types: Vec<String>,
}

pub(super) fn table_json(meta: &ArrayMeta) -> Option<String> {
    match meta {
        ArrayMeta::Table(t) => serde_json::to_string(&TableColumns {
            rows: t.rows,
            columns: t.columns.clone(),
            types: t.types.clone(),
        })
        .ok(),
        _ => None,
    }
}

pub(super) fn meta_columns(meta: &ArrayMeta) -> MetaColumns {
    match meta {
        ArrayMeta::Dense(d) => ("dense", None, d.dtype.name(), None, None, None),
        ArrayMeta::Table(_) => ("table", None, "", None, None, None),
        ArrayMeta::Sparse(s) => (
            "sparse",
            Some(s.layout.name()),
            s.data_dtype.name(),
            Some(s.indices_dtype.name()),
            Some(s.indptr_dtype.name()),
            Some(to_i64(s.nnz)),
        ),
    }
}

pub(super) fn shape_json(shape: &[u64]) -> String {
    format!(
        "[{}]",
        shape
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    )
}

pub(super) struct RawRow {
    name: String,
    /// The metadata columns decoded as the row is read (no allocation for the spellings the
    /// engine knows), or what is wrong with them.
    meta: Result<PendingMeta, String>,
    state: Result<ArrayState, String>,
    generation: i64,
    checksum_stale: i64,
    scratch: i64,
    ever_held: i64,
    staging: Option<String>,
    cached: i64,
    released_at: Option<i64>,
    files: Vec<FileRecord>,
    /// The first file size below zero, if any (a damaged catalog): the row is corrupt.
    negative_size: Option<i64>,
}

/// An array's metadata as its row's columns give it; a table's also needs its files (the size
/// of its Arrow file), known once the files are read.
enum PendingMeta {
    Ready(ArrayMeta),
    Table(TableColumns),
}

/// The columns of an `arrays` row as [`raw_row`] reads them, in a catalog of schema `schema`
/// (read-only connections read older catalogs as they are: the missing columns are NULL).
pub(super) fn row_columns(schema: i64) -> &'static str {
    match schema {
        ..=1 => {
            "name, kind, layout, dtype, indices_dtype, indptr_dtype, shape, nnz, state, generation,
                 checksum_stale, staging, scratch, ever_held, NULL, 0, NULL"
        }
        2 => {
            "name, kind, layout, dtype, indices_dtype, indptr_dtype, shape, nnz, state, generation,
              checksum_stale, staging, scratch, ever_held, tab, 0, NULL"
        }
        _ => {
            "name, kind, layout, dtype, indices_dtype, indptr_dtype, shape, nnz, state, generation,
              checksum_stale, staging, scratch, ever_held, tab, cached, released_at"
        }
    }
}

/// The row of `name` in a catalog of schema version `schema`.
pub(super) fn get_raw(
    conn: &Connection,
    name: &str,
    schema: i64,
) -> rusqlite::Result<Option<RawRow>> {
    // One statement (one snapshot, no BEGIN/COMMIT around it): the row, then its files in
    // rowid order as columns 17-19, NULL when it has none.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT r.*, f.suffix, f.size, f.crc32c
           FROM (SELECT {} FROM arrays WHERE name = ?1) AS r
           LEFT JOIN array_files AS f ON f.name = ?1
          ORDER BY f.rowid",
        row_columns(schema)
    ))?;
    let mut rows = stmt.query([name])?;
    let mut out: Option<RawRow> = None;
    while let Some(r) = rows.next()? {
        if out.is_none() {
            out = Some(raw_row(r)?);
        }
        if let (Some(row), Some(suffix)) = (out.as_mut(), r.get::<_, Option<String>>(17)?) {
            row.push_file(suffix, r.get(18)?, r.get(19)?);
        }
    }
    Ok(out)
}

/// Every row with its files, in name order: two queries whatever the number of rows (not one
/// pair per row).
pub(super) fn all_raw(tx: &Connection, schema: i64) -> rusqlite::Result<Vec<RawRow>> {
    let mut rows: Vec<RawRow> = tx
        .prepare_cached(&format!(
            "SELECT {} FROM arrays ORDER BY name",
            row_columns(schema)
        ))?
        .query_map([], raw_row)?
        .collect::<Result<_, _>>()?;
    // The files, joined to their rows by name without allocating the name of each file: rows
    // are sorted by name, so a file's row is found by binary search on the borrowed name. Files
    // stay in insertion (rowid) order within their row.
    // The binary search needs the rows in byte order, which `ORDER BY name` gives in a UTF-8
    // catalog with a sound index; otherwise (another encoding, a damaged index) a map is used.
    let by_name: Option<std::collections::HashMap<String, usize>> =
        (!rows.windows(2).all(|w| w[0].name < w[1].name)).then(|| {
            rows.iter()
                .enumerate()
                .map(|(i, r)| (r.name.clone(), i))
                .collect()
        });
    let mut stmt =
        tx.prepare_cached("SELECT name, suffix, size, crc32c FROM array_files ORDER BY rowid")?;
    let mut q = stmt.query([])?;
    let mut last = usize::MAX;
    while let Some(r) = q.next()? {
        let name = r.get_ref(0)?.as_str()?;
        // Files are usually in the rows' order (written in name order, or several files of one
        // row in a row): try the last row found and the next before searching.
        let near = [last, last.wrapping_add(1)]
            .into_iter()
            .find(|&i| rows.get(i).is_some_and(|row| row.name == name));
        let at = near.or_else(|| match &by_name {
            Some(map) => map.get(name).copied(),
            None => rows
                .binary_search_by(|row| row.name.as_str().cmp(name))
                .ok(),
        });
        if let Some(at) = at {
            rows[at].push_file(r.get(1)?, r.get(2)?, r.get(3)?);
            last = at;
        }
    }
    Ok(rows)
}

pub(super) fn raw_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        name: r.get(0)?,
        meta: pending_meta(r)?,
        state: {
            let s = r.get_ref(8)?.as_str()?;
            ArrayState::from_name(s).ok_or_else(|| format!("unknown state {s:?}"))
        },
        generation: r.get(9)?,
        checksum_stale: r.get(10)?,
        staging: r.get(11)?,
        scratch: r.get(12)?,
        ever_held: r.get(13)?,
        cached: r.get(15)?,
        released_at: r.get(16)?,
        files: Vec::new(),
        negative_size: None,
    })
}

/// The metadata columns (1-7 and 14) of row `r`, read without copying them: `Err` says what is
/// wrong with them (the row is corrupt), in the order the checks have always run.
fn pending_meta(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<PendingMeta, String>> {
    let shape_text = r.get_ref(6)?.as_str()?;
    let shape = match parse_shape(shape_text) {
        Ok(shape) => shape,
        Err(e) => return Ok(Err(format!("shape {shape_text:?}: {e}"))),
    };
    let kind = r.get_ref(1)?.as_str()?;
    Ok(match kind {
        "dense" => dtype(r.get_ref(3)?.as_str()?).and_then(|dtype| {
            DenseMeta::new(dtype, shape)
                .map(|d| PendingMeta::Ready(ArrayMeta::Dense(d)))
                .map_err(|e| e.to_string())
        }),
        "sparse" => sparse_meta(r, shape)?,
        "table" => {
            let tab = r.get_ref(14)?.as_str_or_null()?;
            serde_json::from_str::<TableColumns>(tab.unwrap_or(""))
                .map(PendingMeta::Table)
                .map_err(|e| format!("table columns {:?}: {e}", tab.map(str::to_string)))
        }
        k => Err(format!("unknown kind {k:?}")),
    })
}

/// The dtype spelled `s` in a row, or what is wrong.
fn dtype(s: &str) -> Result<DType, String> {
    DType::from_name(s).ok_or_else(|| format!("unknown dtype {s:?}"))
}

/// A sparse row's metadata from its columns (shape already read), checked in the order the
/// checks have always run.
fn sparse_meta(
    r: &rusqlite::Row<'_>,
    shape: Vec<u64>,
) -> rusqlite::Result<Result<PendingMeta, String>> {
    let Ok(shape) = <[u64; 2]>::try_from(shape.as_slice()) else {
        return Ok(Err("sparse shape must have 2 dimensions".into()));
    };
    let Some(layout) = r.get_ref(2)?.as_str_or_null()?.and_then(Layout::from_name) else {
        return Ok(Err("bad layout".into()));
    };
    let nnz: Option<i64> = r.get(7)?;
    let Some(nnz) = nnz.and_then(|n| u64::try_from(n).ok()) else {
        return Ok(Err("bad nnz".into()));
    };
    let data = r.get_ref(3)?.as_str()?;
    let indices = r.get_ref(4)?.as_str_or_null()?.unwrap_or("");
    let indptr = r.get_ref(5)?.as_str_or_null()?.unwrap_or("");
    Ok((|| {
        SparseMeta::new(
            dtype(data)?,
            dtype(indices)?,
            dtype(indptr)?,
            shape,
            nnz,
            layout,
        )
        .map(|s| PendingMeta::Ready(ArrayMeta::Sparse(s)))
        .map_err(|e| e.to_string())
    })())
}

/// A `shape` column (a JSON array of non-negative integers). The usual `[3,4]` is read directly;
/// anything else (spaces, leading zeros, numbers past 2^64) goes through the JSON parser, which
/// accepts or refuses it as it always has.
fn parse_shape(text: &str) -> Result<Vec<u64>, serde_json::Error> {
    fn direct(text: &str) -> Option<Vec<u64>> {
        let inner = text.strip_prefix('[')?.strip_suffix(']')?;
        if inner.is_empty() {
            return Some(Vec::new());
        }
        inner
            .split(',')
            .map(|d| {
                let leading_zero = d.len() > 1 && d.starts_with('0');
                (!leading_zero && !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| d.parse::<u64>().ok())
                    .flatten()
            })
            .collect()
    }
    match direct(text) {
        Some(shape) => Ok(shape),
        None => serde_json::from_str(text),
    }
}

impl RawRow {
    fn push_file(&mut self, suffix: String, size: i64, crc32c: Option<i64>) {
        match u64::try_from(size) {
            Ok(size) => self.files.push(FileRecord {
                suffix,
                size,
                crc32c: crc32c.and_then(|c| u32::try_from(c).ok()),
            }),
            Err(_) => {
                self.negative_size.get_or_insert(size);
            }
        }
    }

    pub(super) fn into_record(self, path: &Path) -> Result<ArrayInfo, CatalogError> {
        let corrupt = |detail: String| CatalogError::CorruptRow {
            path: path.to_path_buf(),
            name: self.name.clone(),
            detail,
        };
        let meta = match self.meta {
            Err(detail) => return Err(corrupt(detail)),
            Ok(PendingMeta::Ready(meta)) => meta,
            Ok(PendingMeta::Table(t)) => {
                let bytes = self
                    .files
                    .iter()
                    .find(|f| f.suffix == "arrow")
                    .map(|f| f.size)
                    .ok_or_else(|| corrupt("a table without its arrow file".into()))?;
                ArrayMeta::Table(
                    TableMeta::new(t.rows, t.columns, t.types, bytes)
                        .map_err(|e| corrupt(e.to_string()))?,
                )
            }
        };
        let state = self.state.map_err(&corrupt)?;
        if let Some(size) = self.negative_size {
            return Err(corrupt(format!("negative size {size}")));
        }
        let files = self.files;
        if let Some(s) = self.staging.as_deref().filter(|s| !s.is_empty()) {
            // [W3]/9.1: `<session>/<n>`, so recovery never touches a path outside staging/.
            let ok = s.split_once('/').is_some_and(|(id, n)| {
                crate::format::is_session_id(id)
                    && !n.is_empty()
                    && n.len() <= 20
                    && n.bytes().all(|b| b.is_ascii_digit())
            });
            if !ok {
                return Err(corrupt(format!(
                    "staging location {s:?} is not <session>/<number> under .dafstore/staging"
                )));
            }
        }
        // Sizes come from the file; a damaged catalog can hold sizes whose sum overflows.
        let bytes = files
            .iter()
            .try_fold(0u64, |sum, f| sum.checked_add(f.size))
            .ok_or_else(|| corrupt("file sizes add up to more than 2^64 bytes".to_string()))?;
        Ok(ArrayInfo {
            name: self.name,
            meta,
            state,
            generation: u64::try_from(self.generation).unwrap_or(0),
            bytes,
            files,
            checksum_stale: self.checksum_stale != 0,
            lifecycle: Lifecycle::of_columns(self.scratch, self.cached),
            scratch: self.scratch != 0,
            released_at: self.released_at,
            ever_held: self.ever_held != 0,
            staging: self.staging,
            holders: 0,
            local_refs: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse_shape;

    #[test]
    fn a_shape_is_read_exactly_as_the_json_parser_reads_it() {
        for text in [
            "[]",
            "[0]",
            "[3]",
            "[3,4]",
            "[1,2,3,4,5]",
            "[00]",
            "[01]",
            "[1, 2]",
            " [1]",
            "[1] ",
            "[18446744073709551615]",
            "[18446744073709551616]",
            "[-1]",
            "[1,]",
            "[,1]",
            "[1,,2]",
            "[1.0]",
            "[1e3]",
            "",
            "[",
            "]",
            "[ ]",
            "[+1]",
            "[1]x",
            "[\"1\"]",
            "[null]",
            "{}",
        ] {
            assert_eq!(
                parse_shape(text).ok(),
                serde_json::from_str::<Vec<u64>>(text).ok(),
                "{text:?}"
            );
        }
    }
}
