//! Parquet files, read and written with arrow-rs's `parquet` crate (the reference Rust
//! implementation; its Arrow reader and writer).
//!
//! Import: a Parquet file becomes a **table** (SPEC 5.6), streamed: the footer is checked first
//! (magic at both ends, a metadata length inside the file and at most [`MAX_FOOTER`]), then the
//! Arrow reader decodes the file [`BATCH_ROWS`] rows at a time and each record batch is pushed to a
//! [`crate::TableWriter`], so one batch (and the row group's compressed pages) is in memory at a
//! time; nothing is visible before the publish, and a failure discards the staging file. Column
//! types are what the Parquet → Arrow reader gives (the Arrow schema that pyarrow, polars and
//! arrow-rs embed in the file is honoured: large strings, string views, dictionaries, time zones…),
//! then:
//! - **dictionary columns** (pandas/pyarrow categoricals, polars Categorical/Enum): a Parquet
//!   dictionary belongs to one column chunk, so each row group decodes with its own dictionary,
//!   and an Arrow IPC file (a table) holds one dictionary per column. The column is kept a
//!   dictionary: a first pass reads only the dictionary columns and builds, per column, the union
//!   of the values the keys use, each once, in the order first met; the second pass maps every
//!   batch's keys onto it. Values whose type has no byte form here (not strings, binary or
//!   fixed-width) and unions too large for the key type are decoded to plain values instead (the
//!   report says so); dictionaries inside lists or structs are refused;
//! - **maps** (top level) are stored as what they are laid out as, `list<entries: struct<key,
//!   value>>` (the report says so);
//! - any other type a table cannot store (intervals, decimal32/64, maps inside other types…) is
//!   [`InteropError::UnsupportedColumn`] naming the column.
//!
//! The `parquet` crate reads untrusted bytes: every read it asks for is checked against the file's
//! length before anything is allocated (a byte range claimed by damaged metadata is an error, not
//! an allocation), the metadata is bounded ([`MAX_FOOTER`]; the crate itself bounds every list
//! count by the bytes left), and a panic inside it is caught and reported as a malformed file.
//!
//! Export: a table as Parquet with `ArrowWriter` (the table's Arrow schema embedded, so polars and
//! this import read back the same types; pyarrow too, except that it gives dictionaries plain
//! `string` values), ZSTD level 3 (what polars writes by default;
//! smaller than snappy at a similar decoding speed, and read by every current Parquet reader),
//! row groups of at most [`ROW_GROUP_ROWS`] rows. A dense array is written as one column as for
//! Feather (n-d: nested fixed-size lists); importing that file gives a table.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    ArrowDictionaryKeyType, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use arrow_array::{
    Array, ArrayRef, DictionaryArray, ListArray, PrimitiveArray, RecordBatch, UInt32Array,
};
use arrow_buffer::ArrowNativeType;
use arrow_schema::{DataType, Field, FieldRef, Schema, SchemaRef};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{ChunkReader, Length};

use super::{Format, ImportedArray, InteropError, Output, Progress};
use crate::array::DenseArray;
use crate::container::Container;
use crate::writer::CreateOptions;

/// Rows per record batch read (and pushed to the table): bounds the memory of an import.
pub(crate) const BATCH_ROWS: usize = 64 * 1024;
/// Most rows in one row group of an export (pyarrow's default too).
pub(crate) const ROW_GROUP_ROWS: usize = 1024 * 1024;
/// The largest footer (file metadata) accepted. Real files have a few kB to a few MB; the limit
/// keeps damaged metadata from being decoded into gigabytes (pyarrow's Thrift limit is 100 MB).
pub(crate) const MAX_FOOTER: u64 = 128 << 20;
/// Parquet's magic, at the start and at the end of a file.
const MAGIC: &[u8; 4] = b"PAR1";
/// The magic of a file whose footer is encrypted.
const MAGIC_ENCRYPTED: &[u8; 4] = b"PARE";
/// ZSTD level of exports.
const ZSTD_LEVEL: i32 = 3;

fn malformed(path: &Path, detail: impl Into<String>) -> InteropError {
    InteropError::malformed(path, Format::Parquet, detail)
}

fn parquet_err(path: &Path) -> impl Fn(ParquetError) -> InteropError + '_ {
    move |source| InteropError::Parquet {
        path: path.to_path_buf(),
        source,
    }
}

/// Runs `f`, third-party code decoding untrusted bytes: a panic is a malformed file.
fn guarded<T>(
    path: &Path,
    what: &str,
    f: impl FnOnce() -> Result<T, ParquetError>,
) -> Result<T, InteropError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(parquet_err(path)),
        Err(_) => Err(malformed(
            path,
            format!("the parquet reader could not {what} (it panicked)"),
        )),
    }
}

/// The input file as the `parquet` crate reads it: every byte range is checked against the length
/// measured at open before any buffer is allocated for it.
struct Input {
    file: Arc<File>,
    len: u64,
}

/// A reader of `file` from `pos` to `end`, with positional reads (no shared file offset).
struct ReadAt {
    file: Arc<File>,
    pos: u64,
    end: u64,
}

impl Read for ReadAt {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.end.saturating_sub(self.pos)).unwrap_or(usize::MAX);
        let n = buf.len().min(left);
        if n == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..n], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Length for Input {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for Input {
    type T = io::BufReader<ReadAt>;

    fn get_read(&self, start: u64) -> Result<Self::T, ParquetError> {
        if start > self.len {
            return Err(ParquetError::EOF(format!(
                "a read at offset {start} is past the end of the file ({} bytes)",
                self.len
            )));
        }
        Ok(io::BufReader::new(ReadAt {
            file: Arc::clone(&self.file),
            pos: start,
            end: self.len,
        }))
    }

    fn get_bytes(&self, start: u64, length: usize) -> Result<bytes::Bytes, ParquetError> {
        let inside = u64::try_from(length)
            .ok()
            .and_then(|l| start.checked_add(l))
            .is_some_and(|end| end <= self.len);
        if !inside {
            return Err(ParquetError::EOF(format!(
                "{length} bytes at offset {start} lie past the end of the file ({} bytes): the metadata is damaged or the file truncated",
                self.len
            )));
        }
        let mut buf = vec![0u8; length];
        self.file
            .read_exact_at(&mut buf, start)
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        Ok(buf.into())
    }
}

/// Checks the magic at both ends and the footer length, so that what the `parquet` crate then
/// reads is at least shaped like a Parquet file.
fn check_framing(file: &File, path: &Path, len: u64) -> Result<(), InteropError> {
    let read = |offset: u64, buf: &mut [u8]| {
        file.read_exact_at(buf, offset).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                malformed(path, "the file is shorter than its header and footer")
            } else {
                InteropError::io(path, "read")(e)
            }
        })
    };
    if len < 12 {
        return Err(malformed(
            path,
            format!(
                "{len} bytes is too short for a Parquet file (magic, footer and magic take 12)"
            ),
        ));
    }
    let mut head = [0u8; 4];
    read(0, &mut head)?;
    let mut tail = [0u8; 8];
    read(len - 8, &mut tail)?;
    if &tail[4..] == MAGIC_ENCRYPTED {
        return Err(malformed(
            path,
            "the file's footer is encrypted (Parquet modular encryption), which is not supported; write it unencrypted",
        ));
    }
    if &head != MAGIC {
        return Err(malformed(
            path,
            "it does not start with the Parquet magic PAR1",
        ));
    }
    if &tail[4..] != MAGIC {
        return Err(malformed(
            path,
            "it does not end with the Parquet magic PAR1 (truncated, or still being written?)",
        ));
    }
    let footer = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    if footer > len - 12 {
        return Err(malformed(
            path,
            format!("the footer claims {footer} bytes, more than the file's {len}"),
        ));
    }
    if footer > MAX_FOOTER {
        return Err(malformed(
            path,
            format!(
                "the footer claims {footer} bytes of metadata, more than the {MAX_FOOTER} accepted"
            ),
        ));
    }
    Ok(())
}

/// What the import does with one column.
enum Plan {
    /// Stored as read.
    Keep,
    /// A dictionary column: keys mapped onto the union of the file's dictionaries.
    Unify(Box<Union>),
    /// A dictionary column stored as its plain values (why, for the report).
    Decode(&'static str),
    /// A map stored as a list of its entries.
    MapAsList(FieldRef),
}

/// The union of one dictionary column's dictionaries over the whole file: the values its keys
/// use, each once, in the order first met.
#[derive(Default)]
struct Union {
    /// Position of each value (its bytes) in the union.
    index: HashMap<Vec<u8>, u32>,
    /// The values of the union, in order, in pieces (one per dictionary that added any).
    parts: Vec<ArrayRef>,
    /// The union, once complete.
    values: Option<ArrayRef>,
    /// The last dictionary met and where each of its values is in the union (`None`: not used
    /// by a key yet): the reader reuses one dictionary for the batches of a column chunk.
    last: Option<(ArrayRef, Vec<Option<u32>>)>,
}

/// Each value of `values` as bytes (`None` for a null), or `None` for a type without one here.
fn value_bytes(values: &ArrayRef) -> Option<Vec<Option<Vec<u8>>>> {
    let own = |v: Option<&[u8]>| v.map(<[u8]>::to_vec);
    Some(match values.data_type() {
        DataType::Utf8 => values
            .as_string::<i32>()
            .iter()
            .map(|v| own(v.map(str::as_bytes)))
            .collect(),
        DataType::LargeUtf8 => values
            .as_string::<i64>()
            .iter()
            .map(|v| own(v.map(str::as_bytes)))
            .collect(),
        DataType::Utf8View => values
            .as_string_view()
            .iter()
            .map(|v| own(v.map(str::as_bytes)))
            .collect(),
        DataType::Binary => values.as_binary::<i32>().iter().map(own).collect(),
        DataType::LargeBinary => values.as_binary::<i64>().iter().map(own).collect(),
        DataType::BinaryView => values.as_binary_view().iter().map(own).collect(),
        DataType::FixedSizeBinary(_) => values.as_fixed_size_binary().iter().map(own).collect(),
        dt if dt.is_primitive() => {
            let width = dt.primitive_width()?;
            let data = values.to_data();
            let buf = data.buffers().first()?.as_slice();
            (0..data.len())
                .map(|i| {
                    if data.is_null(i) {
                        return Some(None);
                    }
                    let at = data.offset().checked_add(i)?.checked_mul(width)?;
                    buf.get(at..at.checked_add(width)?)
                        .map(|b| Some(b.to_vec()))
                })
                .collect::<Option<Vec<_>>>()?
        }
        _ => return None,
    })
}

/// Whether values of this type have a byte form for [`value_bytes`].
fn unifiable(values: &DataType) -> bool {
    matches!(
        values,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_)
    ) || values.is_primitive()
}

/// How many values a dictionary with keys of this type can index.
fn key_capacity(key: &DataType) -> u64 {
    match key {
        DataType::Int8 => i8::MAX as u64 + 1,
        DataType::Int16 => i16::MAX as u64 + 1,
        DataType::Int32 => i32::MAX as u64 + 1,
        DataType::UInt8 => u8::MAX as u64 + 1,
        DataType::UInt16 => u16::MAX as u64 + 1,
        // The union's positions are u32.
        DataType::UInt32 | DataType::Int64 | DataType::UInt64 => u32::MAX as u64,
        _ => 0,
    }
}

impl Union {
    /// Where each value of `dict`'s dictionary that its keys use is in the union (`None` for the
    /// others), adding the new ones (`grow`, the first pass) or refusing them (the second pass:
    /// the file changed in between).
    fn map(&mut self, dict: &ArrayRef, grow: bool) -> Result<&[Option<u32>], String> {
        let any = dict
            .as_any_dictionary_opt()
            .ok_or("a dictionary column decoded as another type")?;
        let values = any.values();
        let keys = any.keys();
        // The values a valid key points to (keys out of range are caught by `remap`).
        let mut used = vec![false; values.len()];
        for (i, k) in any.normalized_keys().into_iter().enumerate() {
            if keys.is_valid(i) {
                if let Some(u) = used.get_mut(k) {
                    *u = true;
                }
            }
        }
        let same = matches!(&self.last, Some((last, _)) if Arc::ptr_eq(last, values));
        if !same {
            self.last = Some((Arc::clone(values), vec![None; values.len()]));
        }
        let Some((_, map)) = self.last.as_mut() else {
            return Err("no dictionary".into());
        };
        let missing: Vec<usize> = (0..used.len())
            .filter(|&i| used[i] && map.get(i).is_some_and(Option::is_none))
            .collect();
        if !missing.is_empty() {
            let bytes = value_bytes(values).ok_or("dictionary values of an unexpected type")?;
            let mut new = Vec::new();
            for i in missing {
                // A null value used by a key: the key stays, the value is null.
                let Some(Some(v)) = bytes.get(i) else {
                    continue;
                };
                let at = match self.index.get(v) {
                    Some(&at) => at,
                    None if grow => {
                        let next = u32::try_from(self.index.len())
                            .map_err(|_| "too many distinct values")?;
                        self.index.insert(v.clone(), next);
                        new.push(u32::try_from(i).map_err(|_| "too many distinct values")?);
                        next
                    }
                    None => return Err("a value is not in the first pass's dictionary: the file changed while it was read".into()),
                };
                map[i] = Some(at);
            }
            if !new.is_empty() {
                let piece =
                    arrow_select::take::take(values.as_ref(), &UInt32Array::from(new), None)
                        .map_err(|e| e.to_string())?;
                self.parts.push(piece);
            }
        }
        Ok(map.as_slice())
    }

    /// Ends the first pass: the union as one array of `value_type`.
    fn finish(&mut self, value_type: &DataType) -> Result<(), String> {
        let values = if self.parts.is_empty() {
            arrow_array::new_empty_array(value_type)
        } else {
            let parts: Vec<&dyn Array> = self.parts.iter().map(|a| a.as_ref()).collect();
            arrow_select::concat::concat(&parts).map_err(|e| e.to_string())?
        };
        self.parts.clear();
        self.last = None;
        self.values = Some(values);
        Ok(())
    }
}

/// `dict`'s keys mapped through `map` onto the dictionary `values`.
fn remap<K: ArrowDictionaryKeyType>(
    dict: &ArrayRef,
    map: &[Option<u32>],
    values: &ArrayRef,
) -> Result<ArrayRef, String> {
    let d = dict
        .as_dictionary_opt::<K>()
        .ok_or("a dictionary column decoded with another key type")?;
    let mut keys: Vec<Option<K::Native>> = Vec::with_capacity(d.len());
    for k in d.keys().iter() {
        let Some(k) = k else {
            keys.push(None);
            continue;
        };
        let slot = k
            .to_usize()
            .and_then(|k| map.get(k))
            .ok_or("a dictionary key is out of range")?;
        keys.push(match slot {
            // A null value: a null key, the same logical value.
            None => None,
            Some(at) => Some(
                usize::try_from(*at)
                    .ok()
                    .and_then(K::Native::from_usize)
                    .ok_or("a key does not fit the key type")?,
            ),
        });
    }
    let keys: PrimitiveArray<K> = keys.into_iter().collect();
    DictionaryArray::<K>::try_new(keys, Arc::clone(values))
        .map(|a| Arc::new(a) as ArrayRef)
        .map_err(|e| e.to_string())
}

/// [`remap`] for the key type of `dict`.
fn remap_any(
    key: &DataType,
    dict: &ArrayRef,
    map: &[Option<u32>],
    values: &ArrayRef,
) -> Result<ArrayRef, String> {
    match key {
        DataType::Int8 => remap::<Int8Type>(dict, map, values),
        DataType::Int16 => remap::<Int16Type>(dict, map, values),
        DataType::Int32 => remap::<Int32Type>(dict, map, values),
        DataType::Int64 => remap::<Int64Type>(dict, map, values),
        DataType::UInt8 => remap::<UInt8Type>(dict, map, values),
        DataType::UInt16 => remap::<UInt16Type>(dict, map, values),
        DataType::UInt32 => remap::<UInt32Type>(dict, map, values),
        DataType::UInt64 => remap::<UInt64Type>(dict, map, values),
        other => Err(format!("dictionary keys of type {other}")),
    }
}

/// A dictionary column's plain values (`take` of its values by its keys; null keys are nulls).
fn decode(dict: &ArrayRef) -> Result<ArrayRef, String> {
    let d = dict
        .as_any_dictionary_opt()
        .ok_or("a dictionary column decoded as another type")?;
    arrow_select::take::take(d.values().as_ref(), d.keys(), None).map_err(|e| e.to_string())
}

/// Whether a dictionary type occurs inside `dt` (below its top level).
fn nested_dictionary(dt: &DataType) -> bool {
    match dt {
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::FixedSizeList(f, _)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::Map(f, _) => {
            matches!(f.data_type(), DataType::Dictionary(_, _)) || nested_dictionary(f.data_type())
        }
        DataType::Struct(fields) => fields.iter().any(|f| {
            matches!(f.data_type(), DataType::Dictionary(_, _)) || nested_dictionary(f.data_type())
        }),
        DataType::Dictionary(_, v) => {
            matches!(v.as_ref(), DataType::Dictionary(_, _)) || nested_dictionary(v)
        }
        _ => false,
    }
}

/// The plan of every column and the schema of the table, or the first column it cannot store.
fn plan(path: &Path, schema: &Schema) -> Result<(Vec<Plan>, SchemaRef), InteropError> {
    let unsupported = |f: &Field, hint: &'static str| InteropError::UnsupportedColumn {
        path: path.to_path_buf(),
        column: f.name().clone(),
        data_type: f.data_type().to_string(),
        hint,
    };
    let mut plans = Vec::with_capacity(schema.fields().len());
    let mut fields = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        if nested_dictionary(f.data_type()) {
            return Err(unsupported(
                f,
                "dictionary-encoded values inside lists, structs or maps are not supported; write the file with them decoded (e.g. cast the categorical to string)",
            ));
        }
        let (p, field) = match f.data_type() {
            DataType::Dictionary(key, value) => {
                if key_capacity(key) == 0 {
                    return Err(unsupported(f, "dictionary keys must be integers"));
                }
                if unifiable(value) {
                    (Plan::Unify(Box::default()), Arc::clone(f))
                } else {
                    (
                        Plan::Decode("its dictionary values have no comparable form"),
                        Arc::new(f.as_ref().clone().with_data_type(value.as_ref().clone())),
                    )
                }
            }
            DataType::Map(entries, _) => (
                Plan::MapAsList(Arc::clone(entries)),
                Arc::new(
                    f.as_ref()
                        .clone()
                        .with_data_type(DataType::List(Arc::clone(entries))),
                ),
            ),
            _ => (Plan::Keep, Arc::clone(f)),
        };
        if crate::format::arrow_type::field_type_name(&field).is_err() {
            return Err(unsupported(
                f,
                "a table stores numbers, bool, decimal128/256, dates, times, timestamps, durations, strings, binary, dictionaries, lists, fixed-size lists and structs; cast the column to one of those before writing the file",
            ));
        }
        plans.push(p);
        fields.push(field);
    }
    let schema = Schema::new(fields).with_metadata(schema.metadata().clone());
    Ok((plans, Arc::new(schema)))
}

/// Imports a Parquet file as table `name`.
pub(crate) fn import_table(
    c: &Container,
    name: &str,
    path: &Path,
    file: File,
    progress: &mut Progress<'_, '_>,
) -> Result<ImportedArray, InteropError> {
    let len = progress.total;
    check_framing(&file, path, len)?;
    let input = Input {
        file: Arc::new(file),
        len,
    };
    let metadata = guarded(path, "read the metadata", || {
        ArrowReaderMetadata::load(&input, ArrowReaderOptions::new())
    })?;
    // Every column chunk inside the file (the reader would find out chunk by chunk).
    let total_rows = {
        let meta = metadata.metadata();
        let mut rows = 0u64;
        for rg in meta.row_groups() {
            rows = rows.saturating_add(u64::try_from(rg.num_rows()).unwrap_or(0));
            for col in rg.columns() {
                // `byte_range` panics on negative values: computed here with checks.
                let start = col
                    .dictionary_page_offset()
                    .unwrap_or(col.data_page_offset());
                let (start, size) = match (u64::try_from(start), u64::try_from(col.compressed_size())) {
                    (Ok(start), Ok(size)) => (start, size),
                    _ => return Err(malformed(path, format!(
                        "column {:?} of a row group has a negative offset or size: the metadata is damaged",
                        col.column_path().string()
                    ))),
                };
                if start.checked_add(size).is_none_or(|end| end > len) {
                    return Err(malformed(
                        path,
                        format!(
                            "column {:?} of a row group claims bytes {start}..{} of a {len}-byte file: the metadata is damaged or the file truncated",
                            col.column_path().string(),
                            start.saturating_add(size)
                        ),
                    ));
                }
            }
        }
        rows
    };
    let (mut plans, schema) = plan(path, metadata.schema())?;
    let mut conversions = Vec::new();

    // First pass: the union of each dictionary column's dictionaries.
    let unify: Vec<usize> = plans
        .iter()
        .enumerate()
        .filter_map(|(i, p)| matches!(p, Plan::Unify(_)).then_some(i))
        .collect();
    if !unify.is_empty() {
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(
            Input {
                file: Arc::clone(&input.file),
                len,
            },
            metadata.clone(),
        );
        let mask = ProjectionMask::roots(builder.parquet_schema(), unify.iter().copied());
        let mut reader = guarded(path, "start reading", || {
            builder
                .with_projection(mask)
                .with_batch_size(BATCH_ROWS)
                .build()
        })?;
        loop {
            let Some(batch) = next_batch(path, &mut reader)? else {
                break;
            };
            for (col, &i) in batch.columns().iter().zip(&unify) {
                if let Some(Plan::Unify(u)) = plans.get_mut(i) {
                    u.map(col, true).map_err(|e| malformed(path, e))?;
                }
            }
        }
        for &i in &unify {
            let field = schema.field(i);
            let DataType::Dictionary(key, value) = field.data_type() else {
                continue;
            };
            let Some(Plan::Unify(u)) = plans.get_mut(i) else {
                continue;
            };
            if u.index.len() as u64 > key_capacity(key) {
                conversions.push(format!(
                    "column {:?}: the file's dictionaries hold {} distinct values, more than {key} keys index; stored decoded",
                    field.name(),
                    u.index.len()
                ));
                plans[i] = Plan::Decode("");
                continue;
            }
            u.finish(value).map_err(|e| malformed(path, e))?;
            conversions.push(format!(
                "column {:?}: dictionaries of the row groups unified ({} values)",
                field.name(),
                u.index.len()
            ));
        }
    }
    // A column decoded after the first pass changes the schema.
    let schema = Arc::new(Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .zip(&plans)
            .map(|(f, p)| match (p, f.data_type()) {
                (Plan::Decode(_), DataType::Dictionary(_, v)) => {
                    Arc::new(f.as_ref().clone().with_data_type(v.as_ref().clone()))
                }
                _ => Arc::clone(f),
            })
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    ));
    for (f, p) in metadata.schema().fields().iter().zip(&plans) {
        match p {
            Plan::Decode(why) if !why.is_empty() => conversions.push(format!(
                "column {:?}: dictionary decoded to plain values ({why})",
                f.name()
            )),
            Plan::MapAsList(_) => conversions.push(format!(
                "column {:?}: map stored as a list of key/value structs",
                f.name()
            )),
            _ => {}
        }
    }

    // Second pass: every column, converted, into the table.
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(input, metadata);
    let mut reader = guarded(path, "start reading", || {
        builder.with_batch_size(BATCH_ROWS).build()
    })?;
    let mut w = c
        .create_table(name, Arc::clone(&schema), &CreateOptions::default())
        .map_err(InteropError::write(path))?;
    let mut rows = 0u64;
    let mut reported = 0u64;
    let result = (|| {
        while let Some(batch) = next_batch(path, &mut reader)? {
            let batch = convert(path, &schema, &mut plans, batch)?;
            rows += batch.num_rows() as u64;
            w.push(&batch).map_err(InteropError::write(path))?;
            // Progress in bytes, in proportion to the rows read.
            let done = if total_rows == 0 {
                0
            } else {
                (u128::from(len) * u128::from(rows.min(total_rows)) / u128::from(total_rows)) as u64
            };
            progress.advance(done.saturating_sub(reported));
            reported = reported.max(done);
        }
        Ok(())
    })();
    if let Err(e) = result {
        w.discard();
        return Err(e);
    }
    if rows != total_rows {
        w.discard();
        return Err(malformed(
            path,
            format!("the row groups hold {rows} rows, not the {total_rows} the metadata says"),
        ));
    }
    w.publish().map_err(InteropError::write(path))?;
    progress.advance(len);
    let meta = c.info(name).map_err(InteropError::open(path))?.meta;
    Ok(ImportedArray {
        name: name.to_string(),
        meta,
        conversions,
    })
}

/// The next record batch of `reader`, with decoding errors and panics as typed errors.
fn next_batch(
    path: &Path,
    reader: &mut parquet::arrow::arrow_reader::ParquetRecordBatchReader,
) -> Result<Option<RecordBatch>, InteropError> {
    guarded(path, "decode a record batch", || {
        reader
            .next()
            .transpose()
            .map_err(|e| ParquetError::ArrowError(e.to_string()))
    })
}

/// A batch as read, converted to the table's schema by the plans.
fn convert(
    path: &Path,
    schema: &SchemaRef,
    plans: &mut [Plan],
    batch: RecordBatch,
) -> Result<RecordBatch, InteropError> {
    let mut columns = Vec::with_capacity(batch.num_columns());
    for ((col, plan), field) in batch
        .columns()
        .iter()
        .zip(plans.iter_mut())
        .zip(schema.fields())
    {
        let bad = |e: String| malformed(path, format!("column {:?}: {e}", field.name()));
        let col = match plan {
            Plan::Keep => Arc::clone(col),
            Plan::Decode(_) => decode(col).map_err(bad)?,
            Plan::Unify(u) => {
                let DataType::Dictionary(key, _) = field.data_type() else {
                    return Err(bad("not a dictionary".into()));
                };
                let values = u
                    .values
                    .clone()
                    .ok_or_else(|| bad("no dictionary".into()))?;
                let map = u.map(col, false).map_err(bad)?;
                remap_any(key, col, map, &values).map_err(bad)?
            }
            Plan::MapAsList(entries) => {
                let m = col
                    .as_map_opt()
                    .ok_or_else(|| bad("a map column decoded as another type".into()))?;
                let list = ListArray::try_new(
                    Arc::clone(entries),
                    m.offsets().clone(),
                    Arc::new(m.entries().clone()),
                    m.nulls().cloned(),
                )
                .map_err(|e| bad(e.to_string()))?;
                Arc::new(list) as ArrayRef
            }
        };
        columns.push(col);
    }
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| malformed(path, e.to_string()))
}

fn writer_properties() -> Result<WriterProperties, ParquetError> {
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build())
}

/// Writes `batches` of `schema` as a Parquet file at `path` (temporary name, then renamed).
fn write<'a>(
    path: &Path,
    schema: SchemaRef,
    batches: impl Iterator<Item = Result<RecordBatch, InteropError>> + 'a,
) -> Result<(), InteropError> {
    let err = parquet_err(path);
    let (out, file) = Output::create(path)?;
    let props = writer_properties().map_err(&err)?;
    let mut writer =
        ArrowWriter::try_new(BufWriter::new(file), schema, Some(props)).map_err(&err)?;
    for batch in batches {
        writer.write(&batch?).map_err(&err)?;
    }
    let file = writer
        .into_inner()
        .map_err(&err)?
        .into_inner()
        .map_err(|e| InteropError::io(path, "write")(e.into_error()))?;
    out.commit(file)
}

/// Exports a table as Parquet, batch by batch as stored.
pub(crate) fn export_table(t: &crate::Table, path: &Path) -> Result<(), InteropError> {
    write(path, t.schema(), t.batches().iter().cloned().map(Ok))
}

/// Exports a dense array as a one-column Parquet file (the column named by the last component of
/// the array's name; n-d arrays as nested fixed-size lists, as [`DenseArray::to_arrow`] gives).
pub(crate) fn export(d: &DenseArray, path: &Path) -> Result<(), InteropError> {
    let (column, schema) = super::one_column(d)?;
    let batches = super::column_batches(Arc::clone(&schema), column, ROW_GROUP_ROWS).map(|b| {
        b.map_err(|source| InteropError::Arrow {
            path: path.to_path_buf(),
            source,
        })
    });
    write(path, schema, batches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::StringArray;

    fn dict(keys: &[Option<i8>], values: &[&str]) -> ArrayRef {
        let values: ArrayRef = Arc::new(StringArray::from(values.to_vec()));
        let keys = PrimitiveArray::<Int8Type>::from(keys.to_vec());
        Arc::new(DictionaryArray::<Int8Type>::try_new(keys, values).unwrap())
    }

    #[test]
    fn dictionaries_of_row_groups_unify_in_first_seen_order() {
        // "unused" is in a dictionary but no key points to it: not in the union.
        let a = dict(&[Some(0), Some(1), None], &["x", "y", "unused"]);
        let b = dict(&[Some(1), Some(0)], &["z", "x"]);
        let mut u = Union::default();
        u.map(&a, true).unwrap();
        u.map(&b, true).unwrap();
        u.finish(&DataType::Utf8).unwrap();
        let values = u.values.clone().unwrap();
        assert_eq!(
            values
                .as_string::<i32>()
                .iter()
                .flatten()
                .collect::<Vec<_>>(),
            ["x", "y", "z"]
        );
        let map = u.map(&b, false).unwrap().to_vec();
        let out = remap_any(&DataType::Int8, &b, &map, &values).unwrap();
        let decoded = decode(&out).unwrap();
        assert_eq!(
            decoded
                .as_string::<i32>()
                .iter()
                .flatten()
                .collect::<Vec<_>>(),
            ["x", "z"]
        );
        // A value the first pass did not see: the file changed.
        let c = dict(&[Some(0)], &["new"]);
        assert!(u.map(&c, false).is_err());
    }

    #[test]
    fn reads_past_the_end_are_refused_before_allocating() {
        let f = tempfile::tempfile().unwrap();
        f.write_all_at(b"PAR1", 0).unwrap();
        let input = Input {
            file: Arc::new(f),
            len: 4,
        };
        assert!(input.get_bytes(0, usize::MAX).is_err());
        assert!(input.get_bytes(u64::MAX, 1).is_err());
        assert!(input.get_bytes(1, 4).is_err());
        assert_eq!(&input.get_bytes(0, 4).unwrap()[..], b"PAR1");
        assert!(input.get_read(5).is_err());
    }
}
