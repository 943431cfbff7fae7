//! Interoperability with the array formats of the Python data stack: Arrow in memory (zero-copy
//! views of mapped arrays), numpy's `.npy` and `.npz` files (including `scipy.sparse.save_npz`),
//! Feather v2 / Arrow IPC files and Parquet files.
//!
//! This module owns [`Container::import`] and [`Container::export`] and the conversions between
//! dafstore's arrays and those formats. It must never panic on any input file (files are untrusted:
//! every size is checked, every read is bounded by the file's real length) and never produce silently
//! wrong values: whatever it cannot represent exactly (strings, nested types, nulls without a fill
//! value, complex numbers, scipy formats other than csr/csc) is refused with an [`InteropError`]
//! that names the file, what is wrong and what to do.
//!
//! | format | import | export |
//! |---|---|---|
//! | `.npy` (numpy 1.0, 2.0, 3.0 headers) | one dense array; big-endian is byte-swapped and Fortran order is transposed to row-major while streaming | a dense array, v1.0 header (v2.0 when too long), data 64-byte aligned, byte-identical to `numpy.save` |
//! | `.npz` from `scipy.sparse.save_npz` (csr, csc; compressed or not) | one sparse array | a sparse array, uncompressed, loadable by `scipy.sparse.load_npz` |
//! | `.npz` of plain arrays (`numpy.savez[_compressed]`) | each `<key>.npy` as dense array `NAME/<key>` | — |
//! | Feather v2 / Arrow IPC file (`.feather`, `.arrow`, `.ipc`), uncompressed, LZ4 or ZSTD | one fixed-width column as a 1-d dense array; several columns as a table | a dense array as one column, uncompressed, 64-byte aligned; a table |
//! | Parquet (`.parquet`, `.pq`), uncompressed, snappy, gzip, LZ4, ZSTD or brotli | a table, streamed 64k rows at a time; dictionaries of the row groups unified | a table, ZSTD, the Arrow schema embedded; a dense array as one column |
//!
//! Every import publishes through the normal writer (SPEC [W3]): nothing is visible until the array
//! is complete; an import under an existing name replaces it. Every export writes a temporary file
//! beside the target and renames it into place, so a process that maps the old target file (as
//! `numpy.load(mmap_mode=...)` does) never sees it truncated.

mod arrow;
mod feather;
mod npy;
mod npz;
#[cfg(feature = "parquet")]
mod parquet;
/// Without the `parquet` feature: every Parquet import and export is [`InteropError::NotBuilt`].
#[cfg(not(feature = "parquet"))]
mod parquet {
    use std::fs::File;
    use std::path::Path;

    use super::{Format, ImportedArray, InteropError, Progress};

    fn not_built(path: &Path) -> InteropError {
        InteropError::NotBuilt {
            path: path.to_path_buf(),
            format: Format::Parquet,
            feature: "parquet",
        }
    }

    pub(crate) fn import_table(
        _: &crate::container::Container,
        _: &str,
        path: &Path,
        _: File,
        _: &mut Progress<'_, '_>,
    ) -> Result<ImportedArray, InteropError> {
        Err(not_built(path))
    }

    pub(crate) fn export(_: &crate::array::DenseArray, path: &Path) -> Result<(), InteropError> {
        Err(not_built(path))
    }

    pub(crate) fn export_table(_: &crate::Table, path: &Path) -> Result<(), InteropError> {
        Err(not_built(path))
    }
}

use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub use self::arrow::{arrow_data_type, ArrowSparse};

use crate::container::Container;
use crate::error::{OpenError, WriteError, SPEC};
use crate::format::dtype::DType;
use crate::format::meta::{ArrayMeta, Kind};

/// A file format that [`Container::import`] and [`Container::export`] understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// numpy's `.npy`: one dense array.
    Npy,
    /// numpy's `.npz` (a zip of `.npy` files): a `scipy.sparse.save_npz` matrix or plain arrays.
    Npz,
    /// Feather v2, which is the Arrow IPC file format (`.feather`, `.arrow`, `.ipc`).
    Feather,
    /// Apache Parquet (`.parquet`, `.pq`): imported as a table.
    Parquet,
}

impl Format {
    /// The format named by a path's extension (see [`Format::from_extension`]), `None` for any
    /// other.
    pub fn from_path(path: &Path) -> Option<Format> {
        Format::from_extension(path.extension()?.to_str()?)
    }

    /// The format named `ext`, an extension or short name without the dot: `npy`, `npz`,
    /// `feather`, `arrow`, `ipc` (all three Feather v2 / Arrow IPC), or `parquet`, `pq` (both
    /// Parquet); case-insensitive. `None`
    /// for any other. The one list of names: file extensions, `dafctl --format` and Python's
    /// `format=` all parse through it ([`str::parse`] gives the error naming the valid names).
    pub fn from_extension(ext: &str) -> Option<Format> {
        match ext.to_ascii_lowercase().as_str() {
            "npy" => Some(Format::Npy),
            "npz" => Some(Format::Npz),
            "feather" | "arrow" | "ipc" => Some(Format::Feather),
            "parquet" | "pq" => Some(Format::Parquet),
            _ => None,
        }
    }

    /// A short name: `npy`, `npz`, `feather` or `parquet`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Npy => "npy",
            Format::Npz => "npz",
            Format::Feather => "feather",
            Format::Parquet => "parquet",
        }
    }

    fn resolve(given: Option<Format>, path: &Path) -> Result<Format, InteropError> {
        given
            .or_else(|| Format::from_path(path))
            .ok_or_else(|| InteropError::UnknownFormat {
                path: path.to_path_buf(),
            })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses a format name as [`Format::from_extension`] does; anything else is
/// [`InteropError::UnknownFormatName`].
impl std::str::FromStr for Format {
    type Err = InteropError;

    fn from_str(s: &str) -> Result<Format, InteropError> {
        Format::from_extension(s).ok_or_else(|| InteropError::UnknownFormatName {
            given: s.to_string(),
        })
    }
}

/// Serializes as its short name ([`Format::name`]).
impl serde::Serialize for Format {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// Options of [`Container::import`].
#[derive(Default)]
pub struct ImportOptions<'a> {
    /// The file's format; `None` to take it from the extension ([`Format::from_path`]).
    pub format: Option<Format>,
    /// Feather/Arrow: the column to import; `None` when the file has exactly one column.
    pub column: Option<String>,
    /// Feather/Arrow: the value that replaces nulls. Without it a column with nulls is refused.
    /// It must be exactly representable in the column's dtype (an integer in range for integer
    /// columns, 0 or 1 for bool; any value for floats, rounded to the nearest float).
    pub fill: Option<f64>,
    /// Called as `progress(done, total)` in bytes of the input file while it is read.
    pub progress: Option<&'a mut dyn FnMut(u64, u64)>,
    /// Feather/Arrow: import the file as a table even if it has one column (a multi-column file
    /// is one anyway; a Parquet file always is). Not with `column` or `fill`, nor for `.npy` or
    /// `.npz`.
    pub table: bool,
}

impl fmt::Debug for ImportOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportOptions")
            .field("format", &self.format)
            .field("column", &self.column)
            .field("fill", &self.fill)
            .field("progress", &self.progress.is_some())
            .field("table", &self.table)
            .finish()
    }
}

/// One array created by an import. Serializes as one object: `name`, the keys of its metadata
/// (see [`ArrayMeta`]: `kind`, `dtype`, `data_dtype`, …, `shape`, `nnz`) and `conversions`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportedArray {
    /// Its name in the container.
    pub name: String,
    /// Its metadata as published (kind, dtypes, shape).
    #[serde(flatten)]
    pub meta: ArrayMeta,
    /// Conversions made on the way in, e.g. `"byte-swapped from big-endian"`,
    /// `"transposed from Fortran order"`, `"decompressed (LZ4_FRAME)"`, `"3 nulls filled"`.
    pub conversions: Vec<String>,
}

/// What [`Container::import`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    /// The format read.
    pub format: Format,
    /// The arrays published, in order.
    pub arrays: Vec<ImportedArray>,
    /// Bytes of the input file processed: its whole length once an import succeeds (the last
    /// `progress` call reports the same).
    pub bytes_read: u64,
}

/// An import or export failed, or an array could not be viewed as Arrow. An import that fails
/// publishes nothing (a plain `.npz` import removes the arrays it had already published).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InteropError {
    /// A file system call failed.
    #[error(transparent)]
    Io(#[from] crate::error::IoError),
    /// The format could not be told from the extension.
    #[error("{path}: cannot tell the file format from its extension; use .npy, .npz, .feather, .arrow, .ipc, .parquet or .pq, or pass the format explicitly")]
    UnknownFormat {
        /// The path.
        path: PathBuf,
    },
    /// A format name that is not one of [`Format::from_extension`]'s.
    #[error("unknown format {given:?}; the formats are npy, npz, feather and parquet (arrow and ipc also name feather, pq names parquet)")]
    UnknownFormatName {
        /// The name given.
        given: String,
    },
    /// The file is not a valid file of its format (truncated, corrupt, or not that format).
    #[error("{path}: not a valid {format} file: {detail}")]
    Malformed {
        /// The path.
        path: PathBuf,
        /// The format expected.
        format: Format,
        /// What is wrong.
        detail: String,
    },
    /// A numpy dtype dafstore does not store (complex, strings, objects, structured…).
    #[error("{path}: numpy dtype {descr} is not supported{context}; dafstore stores {valid} (see {SPEC} [T1]); convert it first (e.g. arr.astype('float64'))")]
    UnsupportedDtype {
        /// The file.
        path: PathBuf,
        /// The dtype as written in the file (`'<c8'`, `'<U3'`…).
        descr: String,
        /// Where (for `.npz`: `" in entry 'x.npy'"`), or empty.
        context: String,
        /// The dtypes dafstore stores.
        valid: String,
    },
    /// A Feather/Arrow/Parquet column whose type dafstore cannot store.
    #[error(
        "{path}: column {column:?} has Arrow type {data_type}, which dafstore cannot store: {hint}"
    )]
    UnsupportedColumn {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// Its Arrow type.
        data_type: String,
        /// Why, and what to do.
        hint: &'static str,
    },
    /// A Feather/Arrow column holds nulls and no fill value was given.
    #[error("{path}: column {column:?} has {count} null values and dafstore arrays have no nulls; pass a fill value to replace them")]
    Nulls {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// How many nulls.
        count: u64,
    },
    /// The fill value cannot be stored exactly in the column's dtype.
    #[error("{path}: fill value {fill} cannot be stored as {dtype}: {detail}; pass a value the column's type can hold")]
    BadFill {
        /// The file.
        path: PathBuf,
        /// The fill value given.
        fill: f64,
        /// The column's dtype.
        dtype: DType,
        /// Why.
        detail: &'static str,
    },
    /// The named column does not exist.
    #[error("{path}: no column named {column:?}; the columns are {available:?}")]
    NoSuchColumn {
        /// The file.
        path: PathBuf,
        /// The column asked for.
        column: String,
        /// The columns of the file.
        available: Vec<String>,
    },
    /// The file has several columns and none was named.
    #[error("{path}: the file has {} columns ({available:?}); name the column to import", available.len())]
    ColumnNeeded {
        /// The file.
        path: PathBuf,
        /// The columns of the file.
        available: Vec<String>,
    },
    /// A `scipy.sparse` format other than csr/csc.
    #[error("{path}: scipy sparse format {format:?} is not stored by dafstore; save a CSR or CSC matrix instead (scipy.sparse.save_npz(path, m.tocsr()))")]
    SparseFormat {
        /// The file.
        path: PathBuf,
        /// The format found (`coo`, `bsr`, `dia`…).
        format: String,
    },
    /// The array cannot be exported in that format.
    #[error("array {name:?} is {kind}: it cannot be exported as {format}; {hint}")]
    CannotExport {
        /// The array.
        name: String,
        /// Its kind.
        kind: Kind,
        /// The format asked for.
        format: Format,
        /// What to do instead.
        hint: &'static str,
    },
    /// The array cannot be viewed as Arrow (e.g. a dimension larger than Arrow's `i32` list size).
    #[error("array {name:?}: cannot be viewed as Arrow: {detail}")]
    ToArrow {
        /// The array.
        name: String,
        /// Why.
        detail: String,
    },
    /// Opening the array to export failed.
    #[error("exporting to {path}: {source}")]
    Open {
        /// The file being written.
        path: PathBuf,
        /// What failed.
        source: Box<OpenError>,
    },
    /// Creating or publishing the imported array failed (nothing was published).
    #[error("importing {path}: {source}")]
    Write {
        /// The file being imported.
        path: PathBuf,
        /// What failed.
        source: Box<WriteError>,
    },
    /// arrow-ipc refused the file or the data.
    #[error("{path}: Arrow IPC: {source}")]
    Arrow {
        /// The file.
        path: PathBuf,
        /// arrow's error.
        source: arrow_schema::ArrowError,
    },
    /// An import option that the format, or the other options, do not take (a Parquet file is
    /// always a whole table: no `column`, no `fill`; only Feather and Parquet files become
    /// tables; a table takes every column).
    #[error(
        "{path}: {option} does not apply to a {format} import ({why}); import the file without it"
    )]
    OptionNotApplicable {
        /// The file.
        path: PathBuf,
        /// The option given (`column`, `fill`, `table`).
        option: &'static str,
        /// The format of the file.
        format: Format,
        /// Why.
        why: &'static str,
    },
    /// Support for the format was not compiled into this build of dafstore (a cargo feature of
    /// the engine is off).
    #[error("{path}: this build of dafstore has no {format} support: build it with the cargo feature `{feature}`")]
    NotBuilt {
        /// The file.
        path: PathBuf,
        /// The format.
        format: Format,
        /// The cargo feature that brings it.
        feature: &'static str,
    },
    /// The `parquet` crate refused the file or the data (feature `parquet`).
    #[cfg(feature = "parquet")]
    #[error("{path}: Parquet: {source}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The parquet crate's error.
        source: ::parquet::errors::ParquetError,
    },
    /// The zip layer of an `.npz` failed.
    #[error("{path}: .npz (zip): {source}")]
    Zip {
        /// The file.
        path: PathBuf,
        /// zip's error.
        source: zip::result::ZipError,
    },
}

impl InteropError {
    fn io(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> InteropError {
        let path = path.to_path_buf();
        move |source| InteropError::Io(crate::error::IoError { path, op, source })
    }

    fn malformed(path: &Path, format: Format, detail: impl Into<String>) -> InteropError {
        InteropError::Malformed {
            path: path.to_path_buf(),
            format,
            detail: detail.into(),
        }
    }

    fn write(path: &Path) -> impl FnOnce(WriteError) -> InteropError {
        let path = path.to_path_buf();
        move |source| InteropError::Write {
            path,
            source: Box::new(source),
        }
    }

    fn write_meta(path: &Path) -> impl FnOnce(crate::error::MetaError) -> InteropError {
        let write = InteropError::write(path);
        move |e| write(WriteError::from(e))
    }

    fn open(path: &Path) -> impl FnOnce(OpenError) -> InteropError {
        let path = path.to_path_buf();
        move |source| InteropError::Open {
            path,
            source: Box::new(source),
        }
    }
}

/// Reports progress in bytes of the input file.
pub(crate) struct Progress<'a, 'b> {
    callback: Option<&'a mut (dyn FnMut(u64, u64) + 'b)>,
    done: u64,
    total: u64,
}

impl Progress<'_, '_> {
    fn advance(&mut self, bytes: u64) {
        self.done = self.done.saturating_add(bytes).min(self.total);
        if let Some(cb) = self.callback.as_mut() {
            cb(self.done, self.total);
        }
    }
}

impl Container {
    /// Imports the file at `path` as array `name` (for a plain `.npz`: as `name/<key>` for each of
    /// its arrays). The format comes from `opts.format` or the extension. See the module
    /// documentation of `dafstore::interop` for what each format supports and converts.
    ///
    /// Large `.npy` files (and the entries of a plain `.npz`) stream into the new array's map in
    /// chunks, with its space reserved first, so no second full copy is held in memory; Feather
    /// files are read one record batch at a time, Parquet files 64k rows at a time (a Parquet file
    /// is always imported as a table). A sparse `.npz` is read into memory (its three
    /// components) and written with [`Container::write_sparse`], which validates it.
    pub fn import(
        &self,
        name: &str,
        path: impl AsRef<Path>,
        opts: ImportOptions<'_>,
    ) -> Result<ImportReport, InteropError> {
        let path = path.as_ref();
        let format = Format::resolve(opts.format, path)?;
        // Non-blocking and checked before any read: a FIFO given as the input is refused, not
        // waited on (SPEC [N9]). A link to the input is fine: it is the user's file, outside.
        let file = crate::fs::beneath::open_input(path).map_err(InteropError::io(path, "open"))?;
        let total = file
            .metadata()
            .map_err(InteropError::io(path, "stat"))?
            .len();
        let mut progress = Progress {
            callback: opts.progress,
            done: 0,
            total,
        };
        let not_applicable = |option, why| InteropError::OptionNotApplicable {
            path: path.to_path_buf(),
            option,
            format,
            why,
        };
        if opts.table && matches!(format, Format::Npy | Format::Npz) {
            return Err(not_applicable(
                "table",
                "only Feather/Arrow IPC and Parquet files become tables",
            ));
        }
        if opts.table && format == Format::Feather {
            for (option, given) in [
                ("column", opts.column.is_some()),
                ("fill", opts.fill.is_some()),
            ] {
                if given {
                    return Err(not_applicable(
                        option,
                        "a table takes every column as it is, nulls included",
                    ));
                }
            }
        }
        let arrays = match format {
            Format::Npy => vec![npy::import_file(self, name, path, file, &mut progress)?],
            Format::Npz => npz::import(self, name, path, file, &mut progress)?,
            Format::Feather => vec![feather::import(
                self,
                name,
                path,
                file,
                feather::Choice {
                    column: opts.column.as_deref(),
                    fill: opts.fill,
                    table: opts.table,
                },
                &mut progress,
            )?],
            Format::Parquet => {
                for (option, given) in [
                    ("column", opts.column.is_some()),
                    ("fill", opts.fill.is_some()),
                ] {
                    if given {
                        return Err(InteropError::OptionNotApplicable {
                            path: path.to_path_buf(),
                            option,
                            format,
                            why: "the file becomes a table, every column as it is",
                        });
                    }
                }
                vec![parquet::import_table(
                    self,
                    name,
                    path,
                    file,
                    &mut progress,
                )?]
            }
        };
        progress.advance(progress.total.saturating_sub(progress.done));
        Ok(ImportReport {
            format,
            arrays,
            bytes_read: progress.done,
        })
    }

    /// Exports array `name` to the file at `path`, in `format` or the format of the extension:
    /// a dense array as `.npy`, Feather or Parquet (one column), a sparse array as a scipy
    /// `.npz`, a table as Feather or Parquet. The file is written
    /// under a temporary name beside `path` and renamed into place (an existing file is replaced,
    /// never truncated).
    pub fn export(
        &self,
        name: &str,
        path: impl AsRef<Path>,
        format: Option<Format>,
    ) -> Result<(), InteropError> {
        let path = path.as_ref();
        let format = Format::resolve(format, path)?;
        let array = self.open_array(name).map_err(InteropError::open(path))?;
        let cannot = |hint| InteropError::CannotExport {
            name: name.to_string(),
            kind: array.kind(),
            format,
            hint,
        };
        match (format, &array) {
            (Format::Npy, crate::Array::Dense(d)) => npy::export(d, path),
            (Format::Feather, crate::Array::Dense(d)) => feather::export(d, path),
            (Format::Parquet, crate::Array::Dense(d)) => parquet::export(d, path),
            (Format::Npz, crate::Array::Sparse(s)) => npz::export(s, path),
            (Format::Npz, crate::Array::Dense(_)) => {
                Err(cannot("export dense arrays as .npy, .feather or .parquet"))
            }
            (_, crate::Array::Sparse(_)) => Err(cannot(
                "export sparse arrays as .npz (scipy.sparse.load_npz reads it)",
            )),
            (Format::Feather, crate::Array::Table(t)) => feather::export_table(t, path),
            (Format::Parquet, crate::Array::Table(t)) => parquet::export_table(t, path),
            (_, crate::Array::Table(_)) => Err(cannot(
                "export tables as .parquet, .feather or .arrow (pyarrow and polars read them)",
            )),
        }
    }
}

/// A file written under a temporary name in the target's directory and renamed onto the target
/// by [`Output::commit`]; removed if dropped uncommitted.
struct Output {
    target: PathBuf,
    temp: PathBuf,
    committed: bool,
}

static OUTPUT_SEQ: AtomicU64 = AtomicU64::new(0);

impl Output {
    fn create(target: &Path) -> Result<(Output, File), InteropError> {
        let file_name = target.file_name().ok_or_else(|| {
            InteropError::Io(crate::error::IoError {
                path: target.to_path_buf(),
                op: "write",
                source: io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"),
            })
        })?;
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(file_name);
        temp_name.push(format!(
            ".dafstore-tmp-{}-{}",
            std::process::id(),
            OUTPUT_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let temp = target.with_file_name(temp_name);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .open(&temp)
            .map_err(InteropError::io(&temp, "create"))?;
        Ok((
            Output {
                target: target.to_path_buf(),
                temp,
                committed: false,
            },
            file,
        ))
    }

    fn commit(mut self, file: File) -> Result<(), InteropError> {
        file.sync_all()
            .map_err(InteropError::io(&self.temp, "sync"))?;
        drop(file);
        std::fs::rename(&self.temp, &self.target)
            .map_err(InteropError::io(&self.target, "rename onto"))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// The dtypes dafstore stores, for error messages.
fn valid_dtypes() -> String {
    DType::valid_names()
}

/// A dense array as one Arrow column (`DenseArray::to_arrow`, zero-copy) named by the last
/// component of the array's name, and its one-field schema: what the Feather and Parquet exports
/// of a dense array write.
pub(super) fn one_column(
    d: &crate::array::DenseArray,
) -> Result<(arrow_array::ArrayRef, arrow_schema::SchemaRef), InteropError> {
    let column = d.to_arrow()?;
    let name = d.name().rsplit('/').next().unwrap_or(d.name());
    let field = arrow_schema::Field::new(name, column.data_type().clone(), false);
    let schema = std::sync::Arc::new(arrow_schema::Schema::new(vec![field]));
    Ok((column, schema))
}

/// `column` cut into record batches of at most `per_batch` rows (at least one batch, empty for
/// an empty column), each a zero-copy slice.
pub(super) fn column_batches(
    schema: arrow_schema::SchemaRef,
    column: arrow_array::ArrayRef,
    per_batch: usize,
) -> impl Iterator<Item = Result<arrow_array::RecordBatch, arrow_schema::ArrowError>> {
    let rows = column.len();
    let per_batch = per_batch.max(1);
    (0..rows.div_ceil(per_batch).max(1)).map(move |k| {
        let start = k * per_batch;
        let n = per_batch.min(rows - start);
        arrow_array::RecordBatch::try_new(schema.clone(), vec![column.slice(start, n)])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "parquet"))]
    #[test]
    fn without_the_parquet_feature_parquet_files_are_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let c = Container::create(dir.path().join("c")).unwrap();
        let file = dir.path().join("t.parquet");
        std::fs::write(&file, b"PAR1").unwrap();
        let e = c.import("t", &file, ImportOptions::default()).unwrap_err();
        assert!(
            matches!(
                e,
                InteropError::NotBuilt {
                    format: Format::Parquet,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("`parquet`"), "{e}");
        c.write_dense::<f64>("x", &[1], &[1.0]).unwrap();
        let e = c.export("x", &file, None).unwrap_err();
        assert!(matches!(e, InteropError::NotBuilt { .. }), "{e:?}");
    }

    #[test]
    fn format_from_extension() {
        assert_eq!(Format::from_path(Path::new("a/b.npy")), Some(Format::Npy));
        assert_eq!(Format::from_path(Path::new("b.NPZ")), Some(Format::Npz));
        for f in ["x.feather", "x.arrow", "x.ipc"] {
            assert_eq!(Format::from_path(Path::new(f)), Some(Format::Feather));
        }
        for f in ["x.parquet", "x.PQ", "dir.d/x.Parquet"] {
            assert_eq!(Format::from_path(Path::new(f)), Some(Format::Parquet));
        }
        assert_eq!(Format::from_path(Path::new("x.csv")), None);
        assert_eq!(Format::from_path(Path::new("npy")), None);
    }

    #[test]
    fn format_names_parse_as_the_extensions_do_and_nothing_else() {
        for (name, format) in [
            ("npy", Format::Npy),
            ("NPZ", Format::Npz),
            ("feather", Format::Feather),
            ("arrow", Format::Feather),
            ("Ipc", Format::Feather),
            ("parquet", Format::Parquet),
            ("PQ", Format::Parquet),
        ] {
            assert_eq!(name.parse::<Format>().ok(), Some(format), "{name}");
            assert_eq!(Format::from_extension(name), Some(format), "{name}");
            let path = format!("x.{name}");
            assert_eq!(Format::from_path(Path::new(&path)), Some(format), "{path}");
            // Every format's own name parses back to it.
            assert_eq!(format.name().parse::<Format>().ok(), Some(format));
        }
        for bad in ["csv", "", ".npy", "parq", "npy ", ".parquet"] {
            let e = bad.parse::<Format>().expect_err(bad);
            assert!(matches!(e, InteropError::UnknownFormatName { .. }), "{bad}");
            assert_eq!(
                e.to_string(),
                format!("unknown format {bad:?}; the formats are npy, npz, feather and parquet (arrow and ipc also name feather, pq names parquet)")
            );
        }
    }
}
