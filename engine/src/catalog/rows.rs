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
    kind: String,
    layout: Option<String>,
    dtype: String,
    indices_dtype: Option<String>,
    indptr_dtype: Option<String>,
    shape: String,
    nnz: Option<i64>,
    state: String,
    generation: i64,
    checksum_stale: i64,
    scratch: i64,
    ever_held: i64,
    staging: Option<String>,
    tab: Option<String>,
    cached: i64,
    released_at: Option<i64>,
    files: Vec<(String, i64, Option<i64>)>,
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
            row.files.push((suffix, r.get(18)?, r.get(19)?));
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
    let mut files: Vec<Vec<(String, i64, Option<i64>)>> = vec![Vec::new(); rows.len()];
    // The binary search needs the rows in byte order, which `ORDER BY name` gives in a UTF-8
    // catalog with a sound index; otherwise (another encoding, a damaged index) a map is used.
    let by_name: Option<std::collections::HashMap<&str, usize>> =
        (!rows.windows(2).all(|w| w[0].name < w[1].name)).then(|| {
            rows.iter()
                .enumerate()
                .map(|(i, r)| (r.name.as_str(), i))
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
            files[at].push((r.get(1)?, r.get(2)?, r.get(3)?));
            last = at;
        }
    }
    for (row, f) in rows.iter_mut().zip(files) {
        row.files = f;
    }
    Ok(rows)
}

pub(super) fn raw_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        name: r.get(0)?,
        kind: r.get(1)?,
        layout: r.get(2)?,
        dtype: r.get(3)?,
        indices_dtype: r.get(4)?,
        indptr_dtype: r.get(5)?,
        shape: r.get(6)?,
        nnz: r.get(7)?,
        state: r.get(8)?,
        generation: r.get(9)?,
        checksum_stale: r.get(10)?,
        staging: r.get(11)?,
        scratch: r.get(12)?,
        ever_held: r.get(13)?,
        tab: r.get(14)?,
        cached: r.get(15)?,
        released_at: r.get(16)?,
        files: Vec::new(),
    })
}

impl RawRow {
    pub(super) fn into_record(self, path: &Path) -> Result<ArrayInfo, CatalogError> {
        let corrupt = |detail: String| CatalogError::CorruptRow {
            path: path.to_path_buf(),
            name: self.name.clone(),
            detail,
        };
        let dtype =
            |s: &str| DType::from_name(s).ok_or_else(|| corrupt(format!("unknown dtype {s:?}")));
        let shape: Vec<u64> = serde_json::from_str(&self.shape)
            .map_err(|e| corrupt(format!("shape {:?}: {e}", self.shape)))?;
        let meta = match self.kind.as_str() {
            "dense" => ArrayMeta::Dense(
                DenseMeta::new(dtype(&self.dtype)?, shape).map_err(|e| corrupt(e.to_string()))?,
            ),
            "sparse" => {
                let shape: [u64; 2] = shape
                    .as_slice()
                    .try_into()
                    .map_err(|_| corrupt("sparse shape must have 2 dimensions".into()))?;
                let layout = self
                    .layout
                    .as_deref()
                    .and_then(Layout::from_name)
                    .ok_or_else(|| corrupt("bad layout".into()))?;
                let nnz = self
                    .nnz
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| corrupt("bad nnz".into()))?;
                ArrayMeta::Sparse(
                    SparseMeta::new(
                        dtype(&self.dtype)?,
                        dtype(self.indices_dtype.as_deref().unwrap_or(""))?,
                        dtype(self.indptr_dtype.as_deref().unwrap_or(""))?,
                        shape,
                        nnz,
                        layout,
                    )
                    .map_err(|e| corrupt(e.to_string()))?,
                )
            }
            "table" => {
                let t: TableColumns = serde_json::from_str(self.tab.as_deref().unwrap_or(""))
                    .map_err(|e| corrupt(format!("table columns {:?}: {e}", self.tab)))?;
                let bytes = self
                    .files
                    .iter()
                    .find(|f| f.0 == "arrow")
                    .and_then(|f| u64::try_from(f.1).ok())
                    .ok_or_else(|| corrupt("a table without its arrow file".into()))?;
                ArrayMeta::Table(
                    TableMeta::new(t.rows, t.columns, t.types, bytes)
                        .map_err(|e| corrupt(e.to_string()))?,
                )
            }
            k => return Err(corrupt(format!("unknown kind {k:?}"))),
        };
        let state = match self.state.as_str() {
            "publishing" => ArrayState::Publishing,
            "live" => ArrayState::Live,
            "deleting" => ArrayState::Deleting,
            "removing" => ArrayState::Removing,
            s => return Err(corrupt(format!("unknown state {s:?}"))),
        };
        let files = self
            .files
            .into_iter()
            .map(|(suffix, size, crc)| {
                Ok(FileRecord {
                    suffix,
                    size: u64::try_from(size)
                        .map_err(|_| corrupt(format!("negative size {size}")))?,
                    crc32c: crc.and_then(|c| u32::try_from(c).ok()),
                })
            })
            .collect::<Result<Vec<_>, CatalogError>>()?;
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
