//! Feather v2 files, which are Arrow IPC files (`ARROW1` magic, record batches, a flatbuffer
//! footer): what `pyarrow.feather.write_feather` and polars' `write_ipc` write.
//!
//! Import reads one column of a fixed-width type (integers, floats including float16, bool) into a
//! new 1-d dense array. The footer and each record batch's metadata are read first (a few bytes per
//! batch) to learn the total row count, so the array is created at its final size with its space
//! reserved. Then, batch by batch:
//! - uncompressed, no nulls in the batch, and every column before ours of a fixed layout (numbers,
//!   bools, strings, binary, dictionaries — which covers what pyarrow and polars write for
//!   numeric tables): the column's values buffer is read from the file straight into the array's
//!   map, the one and only copy, whatever the buffer's alignment;
//! - otherwise (LZ4 or ZSTD compression — pyarrow's default is LZ4 —, nulls, bools, nested columns
//!   before ours): the batch is read once into a 64-byte aligned buffer and decoded by arrow-ipc
//!   (zero-copy over that buffer when uncompressed, decompressed otherwise), and the column is
//!   copied into the map. Only one batch is in memory at a time.
//!
//! Refused with a clear error: Feather v1 files, Arrow IPC *stream* files, strings and binary
//! (including dictionary-encoded and view types), nested types (lists, structs, maps), other
//! types (dates, timestamps, decimals…), and columns with nulls unless a fill value is given
//! (then each null is replaced by the fill value, which must be exactly representable).
//! arrow-ipc is third-party code that reads untrusted bytes: a panic inside it is caught and
//! reported as a malformed file rather than taking the process down.
//!
//! Export writes one column, named by the last component of the array's name, with arrow-ipc's
//! `FileWriter` and default options: uncompressed, 64-byte aligned buffers, metadata version V5,
//! readable by pyarrow and polars. The column is the zero-copy Arrow view of the map
//! ([`DenseArray::to_arrow`]; n-d arrays are nested fixed-size lists), written in record batches of
//! at most 8 MiB so the writer's buffering stays small.

use std::fs::File;
use std::io::BufWriter;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    ArrowPrimitiveType, Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef};
use arrow_buffer::{Buffer, MutableBuffer};
use arrow_ipc::reader::FileDecoder;
use arrow_ipc::writer::FileWriter;
use arrow_schema::{DataType, Schema};

use super::{Format, ImportedArray, InteropError, Output, Progress};
use crate::array::DenseArray;
use crate::container::Container;
use crate::format::dtype::DType;
use crate::format::meta::{ArrayMeta, DenseMeta};
use crate::writer::CreateOptions;

const MAGIC: &[u8; 6] = b"ARROW1";
/// Bytes at the end of a file: footer length (4) and magic (6).
const TRAILER: u64 = 10;
/// Largest batch written at export.
const BATCH_BYTES: u64 = 8 << 20;

fn malformed(path: &Path, detail: impl Into<String>) -> InteropError {
    InteropError::malformed(path, Format::Feather, detail)
}

fn read_at(file: &File, path: &Path, offset: u64, len: u64) -> Result<Vec<u8>, InteropError> {
    let len = usize::try_from(len).map_err(|_| malformed(path, "a block is too large"))?;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            malformed(path, "the file ends inside a block (truncated?)")
        } else {
            InteropError::io(path, "read")(e)
        }
    })?;
    Ok(buf)
}

/// The dtype a column of `data_type` imports as, or why it cannot.
fn column_dtype(data_type: &DataType) -> Result<DType, &'static str> {
    Ok(match data_type {
        DataType::Boolean => DType::Bool,
        DataType::Int8 => DType::Int8,
        DataType::Int16 => DType::Int16,
        DataType::Int32 => DType::Int32,
        DataType::Int64 => DType::Int64,
        DataType::UInt8 => DType::UInt8,
        DataType::UInt16 => DType::UInt16,
        DataType::UInt32 => DType::UInt32,
        DataType::UInt64 => DType::UInt64,
        DataType::Float16 => DType::Float16,
        DataType::Float32 => DType::Float32,
        DataType::Float64 => DType::Float64,
        DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_)
        | DataType::Dictionary(_, _) => {
            return Err("strings, binary and dictionary-encoded columns are not numeric arrays; import a numeric column, or encode the strings as integer codes first")
        }
        DataType::List(_)
        | DataType::LargeList(_)
        | DataType::ListView(_)
        | DataType::LargeListView(_)
        | DataType::FixedSizeList(_, _)
        | DataType::Struct(_)
        | DataType::Union(_, _)
        | DataType::Map(_, _)
        | DataType::RunEndEncoded(_, _) => {
            return Err("nested types are not supported; import one numeric column (flatten lists or structs first)")
        }
        _ => {
            return Err("only integer, float (16/32/64-bit) and bool columns can be imported; cast the column first (e.g. dates to int64)")
        }
    })
}

/// A record batch block of the footer: where it is, how many rows it has, and where the column's
/// values lie when they can be read straight from the file.
struct BatchBlock {
    block: arrow_ipc::Block,
    rows: u64,
    compression: Option<String>,
    direct: Option<Direct>,
    /// Compressed batches: (offset in the body, length) of the column's buffers that the decoder
    /// will decompress, whose declared uncompressed lengths are checked first.
    compressed: Vec<(u64, u64)>,
}

/// The column's values buffer in an uncompressed batch, when the column has no nulls.
#[derive(Clone, Copy)]
struct Direct {
    /// Offset of the values in the batch's body.
    offset: u64,
    /// Length of the values buffer (it may include padding).
    len: u64,
}

/// The number of field nodes and buffers a top-level field of this type takes in a record batch,
/// for the types that have no children and a fixed buffer count (`None` for the others).
fn flat_layout(data_type: &DataType) -> Option<(usize, usize)> {
    match data_type {
        DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Date32
        | DataType::Date64
        | DataType::Time32(_)
        | DataType::Time64(_)
        | DataType::Timestamp(_, _)
        | DataType::Duration(_)
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _)
        | DataType::FixedSizeBinary(_)
        | DataType::Dictionary(_, _) => Some((1, 2)),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Binary | DataType::LargeBinary => {
            Some((1, 3))
        }
        _ => None,
    }
}

/// Where column `index`'s field node and values buffer are in each record batch, if every field
/// before it has a fixed layout: `(node index, values buffer index)`.
fn direct_position(schema: &Schema, index: usize) -> Option<(usize, usize)> {
    let (mut nodes, mut buffers) = (0usize, 0usize);
    for field in schema.fields().iter().take(index) {
        let (n, b) = flat_layout(field.data_type())?;
        nodes += n;
        buffers += b;
    }
    // The column's own buffers: validity, then values.
    Some((nodes, buffers + 1))
}

/// What [`batch_info`] reads from a record batch's metadata.
struct BatchInfo {
    rows: u64,
    compression: Option<String>,
    direct: Option<Direct>,
    compressed: Vec<(u64, u64)>,
}

/// The message in a block's metadata (`[0xFFFFFFFF] len flatbuffer`, the prefix being absent
/// before Arrow 0.15); `whose` names the block in errors.
fn message_of<'a>(
    path: &Path,
    meta: &'a [u8],
    whose: &str,
) -> Result<arrow_ipc::Message<'a>, InteropError> {
    let word = |at: usize| -> Option<u32> {
        meta.get(at..at.checked_add(4)?)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes)
    };
    let (start, len) = match word(0) {
        Some(0xFFFF_FFFF) => (8usize, word(4)),
        other => (4usize, other),
    };
    let body = len
        .and_then(|l| usize::try_from(l).ok())
        .and_then(|l| meta.get(start..start.checked_add(l)?))
        .ok_or_else(|| malformed(path, format!("{whose} metadata is truncated")))?;
    arrow_ipc::root_as_message(body)
        .map_err(|e| malformed(path, format!("{whose} metadata is invalid: {e}")))
}

/// Parses a message's metadata (`[0xFFFFFFFF] len flatbuffer`, the prefix being absent before
/// Arrow 0.15): the record batch's row count and compression codec, and where the column's values
/// are if they can be read directly (`position` from [`direct_position`]).
fn batch_info(
    path: &Path,
    meta: &[u8],
    position: Option<(usize, usize)>,
) -> Result<BatchInfo, InteropError> {
    let message = message_of(path, meta, "a record batch's")?;
    let batch = message
        .header_as_record_batch()
        .ok_or_else(|| malformed(path, "a record batch block holds another kind of message"))?;
    let rows = u64::try_from(batch.length())
        .map_err(|_| malformed(path, "a record batch has a negative length"))?;
    let compression = batch.compression().map(|c| format!("{:?}", c.codec()));
    let direct = match (position, &compression) {
        (Some((node, buffer)), None) => {
            let node = batch
                .nodes()
                .filter(|n| node < n.len())
                .map(|n| n.get(node));
            let buffer = batch
                .buffers()
                .filter(|b| buffer < b.len())
                .map(|b| b.get(buffer));
            match (node, buffer) {
                (Some(n), Some(b))
                    if n.null_count() == 0 && u64::try_from(n.length()) == Ok(rows) =>
                {
                    match (u64::try_from(b.offset()), u64::try_from(b.length())) {
                        (Ok(offset), Ok(len)) => Some(Direct { offset, len }),
                        _ => None,
                    }
                }
                _ => None,
            }
        }
        _ => None,
    };
    // A compressed buffer starts with its uncompressed length, which arrow-ipc allocates before
    // decompressing: the column's validity and values buffers (the only ones the projection
    // decodes) are located here and their lengths checked before decoding.
    let mut compressed = Vec::new();
    if compression.is_some() {
        let Some((_, values)) = position else {
            return Err(malformed(
                path,
                "the file is compressed and a nested column comes before the one to import, so its buffers cannot be checked safely; write the file uncompressed or put the column first",
            ));
        };
        for i in [values - 1, values] {
            let b = batch
                .buffers()
                .filter(|b| i < b.len())
                .map(|b| b.get(i))
                .ok_or_else(|| malformed(path, "a record batch lacks the column's buffers"))?;
            match (u64::try_from(b.offset()), u64::try_from(b.length())) {
                (Ok(offset), Ok(len)) => compressed.push((offset, len)),
                _ => return Err(malformed(path, "a buffer has a negative offset or length")),
            }
        }
    }
    Ok(BatchInfo {
        rows,
        compression,
        direct,
        compressed,
    })
}

/// What to make of a Feather file ([`super::ImportOptions`]'s `column`, `fill` and `table`).
pub(crate) struct Choice<'a> {
    pub(crate) column: Option<&'a str>,
    pub(crate) fill: Option<f64>,
    pub(crate) table: bool,
}

/// Imports one column of a Feather v2 / Arrow IPC file as a 1-d dense array, or the whole file
/// as a table (several columns and none chosen, or `table`).
pub(crate) fn import(
    c: &Container,
    name: &str,
    path: &Path,
    file: File,
    choice: Choice<'_>,
    progress: &mut Progress<'_, '_>,
) -> Result<ImportedArray, InteropError> {
    let Choice {
        column,
        fill,
        table,
    } = choice;
    let file_len = progress.total;
    let head = read_at(&file, path, 0, file_len.min(8))?;
    if head.starts_with(b"FEA1") {
        return Err(malformed(path, "this is a Feather v1 file; rewrite it as Feather v2 (pyarrow.feather.write_feather(pyarrow.feather.read_table(path), path))"));
    }
    if head.starts_with(&[0xFF, 0xFF, 0xFF, 0xFF]) {
        return Err(malformed(path, "this is an Arrow IPC stream, not an IPC file; write it as a file (pyarrow.ipc.new_file or feather.write_feather)"));
    }
    if !head.starts_with(MAGIC) || file_len < TRAILER + 8 {
        return Err(malformed(
            path,
            "it does not start with the Arrow magic ARROW1",
        ));
    }
    let trailer = read_at(&file, path, file_len - TRAILER, TRAILER)?;
    let trailer: [u8; 10] = trailer
        .as_slice()
        .try_into()
        .map_err(|_| malformed(path, "no footer"))?;
    let footer_len = arrow_ipc::reader::read_footer_length(trailer)
        .map_err(|e| malformed(path, format!("bad footer: {e}")))?;
    let footer_len = u64::try_from(footer_len).map_err(|_| malformed(path, "bad footer length"))?;
    let footer_start = file_len
        .checked_sub(TRAILER)
        .and_then(|n| n.checked_sub(footer_len))
        .filter(|&s| s >= 8)
        .ok_or_else(|| malformed(path, "the footer length exceeds the file"))?;
    let footer_bytes = read_at(&file, path, footer_start, footer_len)?;
    let footer = arrow_ipc::root_as_footer(&footer_bytes)
        .map_err(|e| malformed(path, format!("the footer is invalid: {e}")))?;
    let fb_schema = footer
        .schema()
        .ok_or_else(|| malformed(path, "the footer has no schema"))?;
    let schema = match std::panic::catch_unwind(|| arrow_ipc::convert::try_fb_to_schema(fb_schema))
    {
        Ok(Ok(schema)) => schema,
        Ok(Err(source)) => {
            return Err(InteropError::Arrow {
                path: path.to_path_buf(),
                source,
            })
        }
        Err(_) => return Err(malformed(path, "arrow-ipc could not read the schema")),
    };
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let index = match column {
        Some(col) => {
            names
                .iter()
                .position(|n| n == col)
                .ok_or_else(|| InteropError::NoSuchColumn {
                    path: path.to_path_buf(),
                    column: col.to_string(),
                    available: names.clone(),
                })?
        }
        None if names.len() == 1 && !table => 0,
        // Several columns and none chosen, or a table asked for: the file is a table.
        None => {
            check_declared_lengths(path, &file, &footer, footer_start)?;
            return import_table(c, name, path, file, progress);
        }
    };
    let field = schema
        .fields()
        .get(index)
        .ok_or_else(|| malformed(path, "column index out of range"))?
        .clone();
    let column_name = field.name().clone();
    let dtype =
        column_dtype(field.data_type()).map_err(|hint| InteropError::UnsupportedColumn {
            path: path.to_path_buf(),
            column: column_name.clone(),
            data_type: field.data_type().to_string(),
            hint,
        })?;
    let fill_bytes = match fill {
        Some(v) => Some(
            fill_value(v, dtype).map_err(|detail| InteropError::BadFill {
                path: path.to_path_buf(),
                fill: v,
                dtype,
                detail,
            })?,
        ),
        None => None,
    };

    if fb_schema.endianness() != arrow_ipc::Endianness::Little {
        return Err(malformed(
            path,
            "the file is big-endian; rewrite it on a little-endian machine",
        ));
    }
    // Where the column's buffers are. bool is bit-packed in Arrow: always decoded (never
    // `direct`); other types may be read straight into the map.
    let buffers_position = direct_position(&schema, index);

    // Pass 1: the row count of every batch, from its metadata alone.
    let mut batches = Vec::new();
    let mut rows: u64 = 0;
    for block in footer.recordBatches().into_iter().flatten() {
        let offset = u64::try_from(block.offset()).ok();
        let meta_len = u64::try_from(block.metaDataLength()).ok();
        let body_len = u64::try_from(block.bodyLength()).ok();
        let (Some(offset), Some(meta_len), Some(body_len)) = (offset, meta_len, body_len) else {
            return Err(malformed(
                path,
                "a record batch block has a negative offset or length",
            ));
        };
        let end = offset
            .checked_add(meta_len)
            .and_then(|n| n.checked_add(body_len));
        if end.is_none_or(|e| e > footer_start) {
            return Err(malformed(
                path,
                "a record batch block lies outside the file's data",
            ));
        }
        let meta = read_at(&file, path, offset, meta_len)?;
        let info = batch_info(path, &meta, buffers_position)?;
        rows = rows
            .checked_add(info.rows)
            .ok_or_else(|| malformed(path, "the row count overflows"))?;
        batches.push(BatchBlock {
            block: *block,
            rows: info.rows,
            compression: info.compression,
            direct: if dtype == DType::Bool {
                None
            } else {
                info.direct
            },
            compressed: info.compressed,
        });
    }
    progress.advance(footer_len + TRAILER);

    // Pass 2: decode each batch's column and copy it into the new array's map.
    let decoder = FileDecoder::new(Arc::new(schema), footer.version()).with_projection(vec![index]);
    let mut writer = c
        .create_dense_with(name, dtype, &[rows], CreateOptions::default())
        .map_err(InteropError::write(path))?;
    let itemsize = dtype.itemsize();
    let dst = writer.as_bytes_mut();
    let mut at: usize = 0;
    let mut nulls_filled: u64 = 0;
    for b in &batches {
        let block = &b.block;
        let len = u64::try_from(block.metaDataLength())
            .ok()
            .zip(u64::try_from(block.bodyLength()).ok())
            .and_then(|(m, body)| m.checked_add(body))
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| malformed(path, "a record batch block is too large"))?;
        let offset = u64::try_from(block.offset()).unwrap_or(0);
        if let Some(direct) = b.direct {
            // Uncompressed and without nulls: read the values from the file straight into the
            // map, the only copy.
            let bytes = b.rows.checked_mul(itemsize as u64);
            let body_len = u64::try_from(block.bodyLength()).unwrap_or(0);
            let inside = bytes.is_some_and(|n| {
                n <= direct.len && direct.offset.checked_add(n).is_some_and(|e| e <= body_len)
            });
            let from = offset
                .checked_add(u64::try_from(block.metaDataLength()).unwrap_or(u64::MAX))
                .and_then(|o| o.checked_add(direct.offset));
            let target = bytes
                .and_then(|n| usize::try_from(n).ok())
                .and_then(|n| Some((n, at.checked_add(n)?)))
                .and_then(|(n, end)| Some((n, dst.get_mut(at..end)?)));
            if let (true, Some(from), Some((n, target))) = (inside, from, target) {
                file.read_exact_at(target, from)
                    .map_err(InteropError::io(path, "read"))?;
                at += n;
                progress.advance(len as u64);
                continue;
            }
        }
        let mut data = MutableBuffer::from_len_zeroed(len);
        file.read_exact_at(data.as_slice_mut(), offset)
            .map_err(InteropError::io(path, "read"))?;
        // Each compressed buffer declares its uncompressed length in its first 8 bytes; a fixed-
        // width column of `rows` values needs at most 16 bytes per row (plus padding).
        let most = b.rows.saturating_mul(16).saturating_add(64);
        let body = u64::try_from(block.metaDataLength()).unwrap_or(u64::MAX);
        for &(off, blen) in &b.compressed {
            if blen < 8 {
                continue;
            }
            let at = body
                .checked_add(off)
                .and_then(|a| usize::try_from(a).ok())
                .and_then(|a| data.as_slice().get(a..a.checked_add(8)?))
                .and_then(|w| <[u8; 8]>::try_from(w).ok())
                .ok_or_else(|| malformed(path, "a compressed buffer lies outside its batch"))?;
            let declared = i64::from_le_bytes(at);
            if declared > 0 && declared as u64 > most {
                return Err(malformed(
                    path,
                    format!(
                        "a compressed buffer declares {declared} bytes uncompressed, more than {} rows can hold; the file is damaged",
                        b.rows
                    ),
                ));
            }
        }
        let data: Buffer = data.into();
        let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            decoder.read_record_batch(block, &data)
        }));
        let batch = match decoded {
            Ok(Ok(Some(batch))) => batch,
            Ok(Ok(None)) => return Err(malformed(path, "a record batch block is empty")),
            Ok(Err(source)) => {
                return Err(InteropError::Arrow {
                    path: path.to_path_buf(),
                    source,
                })
            }
            Err(_) => return Err(malformed(path, "arrow-ipc could not decode a record batch")),
        };
        let col = batch
            .columns()
            .first()
            .ok_or_else(|| malformed(path, "a record batch has no column"))?;
        if col.len() as u64 != b.rows {
            return Err(malformed(
                path,
                "a record batch's column length differs from its row count",
            ));
        }
        let nulls = col.logical_null_count() as u64;
        if nulls > 0 && fill_bytes.is_none() {
            return Err(InteropError::Nulls {
                path: path.to_path_buf(),
                column: column_name.clone(),
                count: nulls,
            });
        }
        let bytes = col
            .len()
            .checked_mul(itemsize)
            .ok_or_else(|| malformed(path, "a record batch is too large"))?;
        let out = at
            .checked_add(bytes)
            .and_then(|end| dst.get_mut(at..end))
            .ok_or_else(|| {
                malformed(
                    path,
                    "the record batches hold more rows than their metadata says",
                )
            })?;
        copy_column(col, dtype, out).ok_or_else(|| {
            malformed(
                path,
                format!("column {column_name:?} does not decode as {dtype}"),
            )
        })?;
        if let (Some(fill), Some(validity)) = (&fill_bytes, col.logical_nulls()) {
            for (i, valid) in validity.iter().enumerate() {
                if !valid {
                    let start = i.saturating_mul(itemsize);
                    if let Some(slot) = out.get_mut(start..start.saturating_add(itemsize)) {
                        slot.copy_from_slice(fill);
                    }
                    nulls_filled += 1;
                }
            }
        }
        at += bytes;
        progress.advance(len as u64);
    }
    if at != dst.len() {
        return Err(malformed(
            path,
            "the record batches hold fewer rows than their metadata says",
        ));
    }
    writer.publish().map_err(InteropError::write(path))?;
    let mut conversions = Vec::new();
    let mut codecs: Vec<String> = batches
        .iter()
        .filter_map(|b| b.compression.clone())
        .collect();
    codecs.dedup();
    if !codecs.is_empty() {
        conversions.push(format!("decompressed ({})", codecs.join(", ")));
    }
    if dtype == DType::Bool {
        conversions.push("unpacked bits to one byte per bool".to_string());
    }
    if nulls_filled > 0 {
        conversions.push(format!("{nulls_filled} nulls replaced by the fill value"));
    }
    // Cannot fail: the writer was created with this dtype and shape.
    let meta = DenseMeta::new(dtype, vec![rows]).map_err(InteropError::write_meta(path))?;
    Ok(ImportedArray {
        name: name.to_string(),
        meta: ArrayMeta::Dense(meta),
        conversions,
    })
}

/// Copies the values of `col` (of `dtype`'s Arrow type) into `out`, which has exactly the room.
fn copy_column(col: &ArrayRef, dtype: DType, out: &mut [u8]) -> Option<()> {
    fn values<T: ArrowPrimitiveType>(col: &ArrayRef) -> Option<&[u8]> {
        Some(col.as_primitive_opt::<T>()?.values().inner().as_slice())
    }
    let src = match dtype {
        DType::Bool => {
            let b = col.as_boolean_opt()?;
            if b.len() != out.len() {
                return None;
            }
            for (slot, v) in out.iter_mut().zip(b.values().iter()) {
                *slot = u8::from(v);
            }
            return Some(());
        }
        DType::Int8 => values::<Int8Type>(col)?,
        DType::Int16 => values::<Int16Type>(col)?,
        DType::Int32 => values::<Int32Type>(col)?,
        DType::Int64 => values::<Int64Type>(col)?,
        DType::UInt8 => values::<UInt8Type>(col)?,
        DType::UInt16 => values::<UInt16Type>(col)?,
        DType::UInt32 => values::<UInt32Type>(col)?,
        DType::UInt64 => values::<UInt64Type>(col)?,
        DType::Float16 => values::<Float16Type>(col)?,
        DType::Float32 => values::<Float32Type>(col)?,
        DType::Float64 => values::<Float64Type>(col)?,
    };
    (src.len() == out.len()).then(|| out.copy_from_slice(src))
}

/// The little-endian bytes of `v` as `dtype`, if exactly representable (floats round).
fn fill_value(v: f64, dtype: DType) -> Result<Vec<u8>, &'static str> {
    fn int<T: TryFrom<i128> + bytemuck::Pod>(v: f64) -> Result<Vec<u8>, &'static str> {
        if !v.is_finite() || v.fract() != 0.0 {
            return Err("an integer column needs an integer fill value");
        }
        // |v| < 2^127 here or the conversion saturates and is refused by the range check.
        let i = v as i128;
        let t = T::try_from(i).map_err(|_| "out of the column type's range")?;
        Ok(bytemuck::bytes_of(&t).to_vec())
    }
    match dtype {
        DType::Bool => match v {
            0.0 => Ok(vec![0]),
            1.0 => Ok(vec![1]),
            _ => Err("a bool column needs 0 or 1"),
        },
        DType::Int8 => int::<i8>(v),
        DType::Int16 => int::<i16>(v),
        DType::Int32 => int::<i32>(v),
        DType::Int64 => int::<i64>(v),
        DType::UInt8 => int::<u8>(v),
        DType::UInt16 => int::<u16>(v),
        DType::UInt32 => int::<u32>(v),
        DType::UInt64 => int::<u64>(v),
        DType::Float16 => Ok(half::f16::from_f64(v).to_le_bytes().to_vec()),
        DType::Float32 => Ok((v as f32).to_le_bytes().to_vec()),
        DType::Float64 => Ok(v.to_le_bytes().to_vec()),
    }
}

/// Exports a dense array as a one-column Feather v2 file.
pub(crate) fn export(d: &DenseArray, path: &Path) -> Result<(), InteropError> {
    let arrow_err = |source| InteropError::Arrow {
        path: path.to_path_buf(),
        source,
    };
    let (column, schema) = super::one_column(d)?;
    let row_bytes = d
        .shape()
        .iter()
        .skip(1)
        .product::<u64>()
        .saturating_mul(d.dtype().itemsize() as u64)
        .max(1);
    let per_batch = usize::try_from((BATCH_BYTES / row_bytes).max(1)).unwrap_or(usize::MAX);
    let (out, file) = Output::create(path)?;
    let mut writer = FileWriter::try_new(BufWriter::new(file), &schema).map_err(arrow_err)?;
    for batch in super::column_batches(Arc::clone(&schema), column, per_batch) {
        writer
            .write(&batch.map_err(arrow_err)?)
            .map_err(arrow_err)?;
    }
    writer.finish().map_err(arrow_err)?;
    let file = writer
        .into_inner()
        .map_err(arrow_err)?
        .into_inner()
        .map_err(|e| InteropError::io(path, "write")(e.into_error()))?;
    out.commit(file)
}

/// The most a compressed buffer may expand to (LZ4's own limit is about 255×); beyond it the
/// declared uncompressed length is taken for damage rather than allocated.
const MAX_EXPANSION: u64 = 1024;

/// Before arrow-ipc decodes a compressed file (it allocates each buffer's declared uncompressed
/// length first): every compressed buffer of every record and dictionary batch must declare at
/// most [`MAX_EXPANSION`] times its compressed length.
fn check_declared_lengths(
    path: &Path,
    file: &File,
    footer: &arrow_ipc::Footer<'_>,
    footer_start: u64,
) -> Result<(), InteropError> {
    let blocks = footer
        .recordBatches()
        .into_iter()
        .flatten()
        .chain(footer.dictionaries().into_iter().flatten());
    for block in blocks {
        let (Ok(offset), Ok(meta_len), Ok(body_len)) = (
            u64::try_from(block.offset()),
            u64::try_from(block.metaDataLength()),
            u64::try_from(block.bodyLength()),
        ) else {
            return Err(malformed(path, "a block has a negative offset or length"));
        };
        let body_start = offset
            .checked_add(meta_len)
            .filter(|&b| b.checked_add(body_len).is_some_and(|e| e <= footer_start))
            .ok_or_else(|| malformed(path, "a block lies outside the file's data"))?;
        let meta = read_at(file, path, offset, meta_len)?;
        let message = message_of(path, &meta, "a block's")?;
        let batch = match (
            message.header_as_record_batch(),
            message.header_as_dictionary_batch(),
        ) {
            (Some(b), _) => Some(b),
            (None, Some(d)) => d.data(),
            (None, None) => None,
        };
        let Some(batch) = batch else { continue };
        if batch.compression().is_none() {
            continue;
        }
        for b in batch.buffers().into_iter().flatten() {
            let (Ok(off), Ok(blen)) = (u64::try_from(b.offset()), u64::try_from(b.length())) else {
                return Err(malformed(path, "a buffer has a negative offset or length"));
            };
            if blen < 8 {
                continue;
            }
            if off.checked_add(blen).is_none_or(|e| e > body_len) {
                return Err(malformed(path, "a buffer lies outside its block"));
            }
            let head = read_at(file, path, body_start + off, 8)?;
            let declared = <[u8; 8]>::try_from(head.as_slice())
                .map(i64::from_le_bytes)
                .map_err(|_| malformed(path, "a compressed buffer is truncated"))?;
            if declared > 0 && declared as u64 > blen.saturating_mul(MAX_EXPANSION) {
                return Err(malformed(
                    path,
                    format!(
                        "a compressed buffer of {blen} bytes declares {declared} bytes uncompressed (more than {MAX_EXPANSION}×): taken for damage; if the file is right, write it uncompressed"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Imports the whole file as a table: every batch read by arrow-ipc's reader (decompressed when
/// compressed) and pushed to a [`crate::TableWriter`], one batch in memory at a time. Published
/// uncompressed with 64-byte aligned buffers.
pub(crate) fn import_table(
    c: &Container,
    name: &str,
    path: &Path,
    file: File,
    progress: &mut Progress<'_, '_>,
) -> Result<ImportedArray, InteropError> {
    let caught = |what: &str| malformed(path, format!("arrow-ipc could not {what} (it panicked)"));
    let arrow_err = |source| InteropError::Arrow {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        arrow_ipc::reader::FileReader::try_new(std::io::BufReader::new(file), None)
    }))
    .map_err(|_| caught("read the footer"))?
    .map_err(arrow_err)?;
    let schema = reader.schema();
    let mut w = c
        .create_table(name, schema, &CreateOptions::default())
        .map_err(InteropError::write(path))?;
    loop {
        let batch = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.next()))
            .map_err(|_| caught("decode a record batch"))?;
        let Some(batch) = batch else { break };
        w.push(&batch.map_err(arrow_err)?)
            .map_err(InteropError::write(path))?;
    }
    w.publish().map_err(InteropError::write(path))?;
    progress.advance(progress.total);
    let meta = c.info(name).map_err(InteropError::open(path))?.meta;
    Ok(ImportedArray {
        name: name.to_string(),
        meta,
        conversions: Vec::new(),
    })
}

/// Exports a table as an uncompressed Arrow IPC file (Feather v2), batch by batch as stored.
pub(crate) fn export_table(t: &crate::Table, path: &Path) -> Result<(), InteropError> {
    let arrow_err = |source| InteropError::Arrow {
        path: path.to_path_buf(),
        source,
    };
    let (out, file) = Output::create(path)?;
    let mut writer = FileWriter::try_new(BufWriter::new(file), &t.schema()).map_err(arrow_err)?;
    for b in t.batches() {
        writer.write(b).map_err(arrow_err)?;
    }
    writer.finish().map_err(arrow_err)?;
    let file = writer
        .into_inner()
        .map_err(arrow_err)?
        .into_inner()
        .map_err(|e| InteropError::io(path, "write")(e.into_error()))?;
    out.commit(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_values_must_fit() {
        assert_eq!(fill_value(-1.0, DType::Int8).unwrap(), vec![0xff]);
        assert!(fill_value(0.5, DType::Int32).is_err());
        assert!(fill_value(f64::NAN, DType::Int64).is_err());
        assert!(fill_value(256.0, DType::UInt8).is_err());
        assert!(fill_value(-1.0, DType::UInt64).is_err());
        assert!(fill_value(1e300, DType::Int64).is_err());
        assert!(fill_value(2.0, DType::Bool).is_err());
        assert_eq!(fill_value(1.0, DType::Bool).unwrap(), vec![1]);
        assert_eq!(fill_value(f64::NAN, DType::Float64).unwrap().len(), 8);
    }
}
