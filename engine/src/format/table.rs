//! Tables (`kind: table`): the Arrow type grammar of the metadata file's `types` (exactly
//! pyarrow's `str(type)`), and reading an Arrow IPC file that is already in memory (a map) into
//! record batches whose buffers are slices of it, with the rules of a table file checked first:
//! magic at both ends, metadata version V5, little-endian, no body compression, every block and
//! every buffer inside the file and 8-byte aligned, one dictionary batch per dictionary id and no
//! deltas; then arrow-ipc's decoder with validation on. Pure: bytes in, typed values out.

use std::path::Path;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::FileDecoder;
use arrow_schema::{DataType, Field, SchemaRef, TimeUnit};

use crate::error::OpenError;
use crate::format::meta::TableMeta;

/// Magic at the start of an Arrow IPC file (`ARROW1` and two bytes of padding).
pub const FILE_START: &[u8; 8] = b"ARROW1\0\0";
/// Magic at the end of an Arrow IPC file.
pub const FILE_END: &[u8; 6] = b"ARROW1";
/// Alignment of buffers that writers use.
pub const WRITE_ALIGNMENT: usize = 64;
/// Alignment of buffers that readers require.
pub const READ_ALIGNMENT: u64 = 8;

fn unit(u: &TimeUnit) -> &'static str {
    match u {
        TimeUnit::Second => "s",
        TimeUnit::Millisecond => "ms",
        TimeUnit::Microsecond => "us",
        TimeUnit::Nanosecond => "ns",
    }
}

/// A child field in a nested type: `NAME: T`, with ` not null` when it is not nullable.
fn child(f: &Field) -> Result<String, String> {
    Ok(format!(
        "{}: {}{}",
        f.name(),
        field_type_name(f)?,
        if f.is_nullable() { "" } else { " not null" }
    ))
}

/// The type of `field` in the grammar of the metadata file (what pyarrow's `str(type)` prints):
/// `Err` says why the type cannot be stored in a table (types whose buffers cannot be mapped, or
/// that the grammar does not name: maps, unions, list views, run-end encoded, intervals,
/// decimal32/64).
pub fn field_type_name(field: &Field) -> Result<String, String> {
    match field.data_type() {
        DataType::Dictionary(k, v) => Ok(format!(
            "dictionary<values={}, indices={}, ordered={}>",
            data_type_name(v)?,
            data_type_name(k)?,
            u8::from(field.dict_is_ordered().unwrap_or(false))
        )),
        dt => data_type_name(dt),
    }
}

/// [`field_type_name`] of a type without its field (a dictionary is unordered).
pub fn data_type_name(dt: &DataType) -> Result<String, String> {
    Ok(match dt {
        DataType::Null => "null".into(),
        DataType::Boolean => "bool".into(),
        DataType::Int8 => "int8".into(),
        DataType::Int16 => "int16".into(),
        DataType::Int32 => "int32".into(),
        DataType::Int64 => "int64".into(),
        DataType::UInt8 => "uint8".into(),
        DataType::UInt16 => "uint16".into(),
        DataType::UInt32 => "uint32".into(),
        DataType::UInt64 => "uint64".into(),
        DataType::Float16 => "halffloat".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Decimal128(p, s) => format!("decimal128({p}, {s})"),
        DataType::Decimal256(p, s) => format!("decimal256({p}, {s})"),
        DataType::Date32 => "date32[day]".into(),
        DataType::Date64 => "date64[ms]".into(),
        DataType::Time32(u) => format!("time32[{}]", unit(u)),
        DataType::Time64(u) => format!("time64[{}]", unit(u)),
        DataType::Timestamp(u, None) => format!("timestamp[{}]", unit(u)),
        DataType::Timestamp(u, Some(tz)) => format!("timestamp[{}, tz={tz}]", unit(u)),
        DataType::Duration(u) => format!("duration[{}]", unit(u)),
        DataType::Utf8 => "string".into(),
        DataType::LargeUtf8 => "large_string".into(),
        DataType::Utf8View => "string_view".into(),
        DataType::Binary => "binary".into(),
        DataType::LargeBinary => "large_binary".into(),
        DataType::BinaryView => "binary_view".into(),
        DataType::FixedSizeBinary(n) => format!("fixed_size_binary[{n}]"),
        DataType::Dictionary(k, v) => format!(
            "dictionary<values={}, indices={}, ordered=0>",
            data_type_name(v)?,
            data_type_name(k)?
        ),
        DataType::List(f) => format!("list<{}>", child(f)?),
        DataType::LargeList(f) => format!("large_list<{}>", child(f)?),
        DataType::FixedSizeList(f, n) => format!("fixed_size_list<{}>[{n}]", child(f)?),
        DataType::Struct(fields) => format!(
            "struct<{}>",
            fields
                .iter()
                .map(|f| child(f))
                .collect::<Result<Vec<_>, _>>()?
                .join(", ")
        ),
        other => {
            return Err(format!(
                "{other} is not a table column type (the types are those whose buffers can be mapped: \
                 numbers, bool, decimal128/256, dates, times, timestamps, durations, strings, binary, \
                 dictionaries, lists, fixed-size lists and structs); cast the column first"
            ))
        }
    })
}

/// The rendered types of every field of `schema`, or `(column, why)` for the first that cannot
/// be stored.
pub fn schema_types(schema: &arrow_schema::Schema) -> Result<Vec<String>, (String, String)> {
    schema
        .fields()
        .iter()
        .map(|f| field_type_name(f).map_err(|why| (f.name().clone(), why)))
        .collect()
}

/// Whether `t` is a type of the grammar, written exactly as pyarrow prints it ([G1]): the
/// canonical spelling only (no other spacing, no numpy names), precision of decimal128 1–38 and
/// of decimal256 1–76, integer dictionary indices.
pub fn is_type_name(t: &str) -> bool {
    let mut p = TypeParser { s: t, i: 0 };
    p.ty().is_some() && p.i == t.len()
}

struct TypeParser<'a> {
    s: &'a str,
    i: usize,
}

impl TypeParser<'_> {
    fn rest(&self) -> &str {
        &self.s[self.i..]
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.rest().starts_with(lit) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn need(&mut self, lit: &str) -> Option<()> {
        self.eat(lit).then_some(())
    }

    /// A decimal integer without sign or leading zero.
    fn uint(&mut self) -> Option<u64> {
        let digits = self.rest().bytes().take_while(u8::is_ascii_digit).count();
        let d = &self.rest()[..digits];
        if d.is_empty() || (d.len() > 1 && d.starts_with('0')) {
            return None;
        }
        let v = d.parse().ok()?;
        self.i += digits;
        Some(v)
    }

    fn int(&mut self) -> Option<i64> {
        let neg = self.eat("-");
        let v = i64::try_from(self.uint()?).ok()?;
        Some(if neg { -v } else { v })
    }

    fn unit(&mut self, units: &[&str]) -> Option<()> {
        // Longest first: `ms` before `s`.
        let mut sorted = units.to_vec();
        sorted.sort_by_key(|u| std::cmp::Reverse(u.len()));
        sorted.into_iter().find(|u| self.eat(u)).map(|_| ())
    }

    /// A child field: `NAME: T` with an optional ` not null`.
    fn field(&mut self) -> Option<()> {
        let end = self.rest().find(": ")?;
        self.i += end + 2;
        self.ty()?;
        self.eat(" not null");
        Some(())
    }

    /// Returns whether the type is an integer (for dictionary indices).
    fn ty(&mut self) -> Option<bool> {
        const INTS: [&str; 8] = [
            "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
        ];
        const SIMPLE: [&str; 14] = [
            "null",
            "bool",
            "halffloat",
            "float",
            "double",
            "date32[day]",
            "date64[ms]",
            "large_string",
            "string_view",
            "string",
            "large_binary",
            "binary_view",
            "binary",
            "decimal",
        ];
        for prefix in ["decimal128(", "decimal256("] {
            if self.eat(prefix) {
                let max = if prefix == "decimal128(" { 38 } else { 76 };
                let p = self.uint()?;
                self.need(", ")?;
                let sc = self.int()?;
                self.need(")")?;
                return ((1..=max).contains(&p) && sc.unsigned_abs() <= p).then_some(false);
            }
        }
        if self.eat("time32[") {
            self.unit(&["s", "ms"])?;
            self.need("]")?;
            return Some(false);
        }
        if self.eat("time64[") {
            self.unit(&["us", "ns"])?;
            self.need("]")?;
            return Some(false);
        }
        if self.eat("timestamp[") {
            self.unit(&["s", "ms", "us", "ns"])?;
            if self.eat(", tz=") {
                let end = self.rest().find(']')?;
                if end == 0 {
                    return None;
                }
                self.i += end;
            }
            self.need("]")?;
            return Some(false);
        }
        if self.eat("duration[") {
            self.unit(&["s", "ms", "us", "ns"])?;
            self.need("]")?;
            return Some(false);
        }
        if self.eat("fixed_size_binary[") {
            i32::try_from(self.uint()?).ok()?;
            self.need("]")?;
            return Some(false);
        }
        if self.eat("dictionary<values=") {
            self.ty()?;
            self.need(", indices=")?;
            if !self.ty()? {
                return None;
            }
            self.need(", ordered=")?;
            if !(self.eat("0") || self.eat("1")) {
                return None;
            }
            self.need(">")?;
            return Some(false);
        }
        for prefix in ["list<", "large_list<"] {
            if self.eat(prefix) {
                self.field()?;
                self.need(">")?;
                return Some(false);
            }
        }
        if self.eat("fixed_size_list<") {
            self.field()?;
            self.need(">[")?;
            i32::try_from(self.uint()?).ok()?;
            self.need("]")?;
            return Some(false);
        }
        if self.eat("struct<") {
            if self.eat(">") {
                return Some(false);
            }
            loop {
                self.field()?;
                if self.eat(">") {
                    return Some(false);
                }
                self.need(", ")?;
            }
        }
        // Integers: the longest name that matches and ends the token (`int8` is not `int80`).
        for name in INTS {
            if self.rest().starts_with(name) {
                let after = &self.rest()[name.len()..];
                if !after.starts_with(|c: char| c.is_ascii_alphanumeric()) {
                    self.i += name.len();
                    return Some(true);
                }
            }
        }
        for name in SIMPLE.iter().filter(|n| **n != "decimal") {
            if self.rest().starts_with(name) {
                let after = &self.rest()[name.len()..];
                if !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '[') {
                    self.i += name.len();
                    return Some(false);
                }
            }
        }
        None
    }
}

fn bad(path: &Path, detail: impl Into<String>) -> OpenError {
    OpenError::InvalidTable {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

/// One block of the footer, checked to lie inside the file's body region and to be aligned.
struct Block {
    offset: usize,
    meta_len: usize,
    body_len: usize,
    raw: arrow_ipc::Block,
}

fn check_block(
    path: &Path,
    what: &str,
    b: &arrow_ipc::Block,
    end: usize,
) -> Result<Block, OpenError> {
    let offset = usize::try_from(b.offset()).ok();
    let meta_len = usize::try_from(b.metaDataLength()).ok();
    let body_len = usize::try_from(b.bodyLength()).ok();
    let (Some(offset), Some(meta_len), Some(body_len)) = (offset, meta_len, body_len) else {
        return Err(bad(
            path,
            format!("a {what} block has a negative offset or length"),
        ));
    };
    let inside = offset >= FILE_START.len()
        && meta_len >= 8
        && offset
            .checked_add(meta_len)
            .and_then(|v| v.checked_add(body_len))
            .is_some_and(|e| e <= end);
    if !inside {
        return Err(bad(
            path,
            format!(
                "a {what} block (offset {offset}, {meta_len} + {body_len} bytes) lies outside the file's {end} bytes of blocks"
            ),
        ));
    }
    if !(offset as u64).is_multiple_of(READ_ALIGNMENT)
        || !((offset + meta_len) as u64).is_multiple_of(READ_ALIGNMENT)
    {
        return Err(bad(
            path,
            format!("a {what} block at offset {offset} is not {READ_ALIGNMENT}-byte aligned"),
        ));
    }
    Ok(Block {
        offset,
        meta_len,
        body_len,
        raw: *b,
    })
}

/// The message of a block (after the optional continuation marker and the length).
fn message<'a>(
    path: &Path,
    data: &'a [u8],
    b: &Block,
) -> Result<arrow_ipc::Message<'a>, OpenError> {
    let meta = &data[b.offset..b.offset + b.meta_len];
    let start = if meta[..4] == [0xff; 4] { 8 } else { 4 };
    let fb = meta.get(start..).unwrap_or(&[]);
    arrow_ipc::root_as_message(fb)
        .map_err(|e| bad(path, format!("a block's message is not valid: {e}")))
}

/// Checks a record batch header (of a record batch or a dictionary): no compression, every
/// buffer inside the block's body and 8-byte aligned, a length that is not negative.
fn check_batch_header(
    path: &Path,
    rb: &arrow_ipc::RecordBatch<'_>,
    body_len: usize,
) -> Result<u64, OpenError> {
    if rb.compression().is_some() {
        return Err(OpenError::CompressedTable {
            path: path.to_path_buf(),
        });
    }
    let rows = u64::try_from(rb.length())
        .map_err(|_| bad(path, format!("a record batch has {} rows", rb.length())))?;
    for (i, buf) in rb.buffers().into_iter().flatten().enumerate() {
        let (off, len) = (buf.offset(), buf.length());
        let inside = off >= 0
            && len >= 0
            && off
                .checked_add(len)
                .is_some_and(|e| u64::try_from(e).is_ok_and(|e| e <= body_len as u64));
        if !inside {
            return Err(bad(
                path,
                format!(
                    "buffer {i} of a record batch (offset {off}, {len} bytes) lies outside its body of {body_len} bytes"
                ),
            ));
        }
        if !(off as u64).is_multiple_of(READ_ALIGNMENT) {
            return Err(bad(
                path,
                format!("buffer {i} of a record batch at offset {off} is not {READ_ALIGNMENT}-byte aligned"),
            ));
        }
    }
    for n in rb.nodes().into_iter().flatten() {
        if n.length() < 0 || n.null_count() < 0 {
            return Err(bad(
                path,
                "a field node has a negative length or null count",
            ));
        }
    }
    Ok(rows)
}

/// What [`read_file`] found: the schema and the record batches (buffers are slices of the file's
/// buffer), and the total row count.
pub struct Decoded {
    /// The schema of the file.
    pub schema: SchemaRef,
    /// The record batches, in file order.
    pub batches: Vec<RecordBatch>,
    /// Sum of the batches' lengths.
    pub rows: u64,
}

/// Reads the Arrow IPC file whose bytes are `file` (the whole file, e.g. a map) into record
/// batches that are slices of it (no copy: misaligned buffers are refused, not realigned, and
/// compressed ones refused, not decompressed). `path` names the file in errors. Never panics: a
/// panic inside arrow-ipc (third-party code reading untrusted bytes) is caught and reported as
/// an invalid file.
///
/// With `expect`, the file's schema and row count must agree with that metadata; this is checked
/// after every block's frame and before any data is decoded (the order of SPEC section 11).
pub fn read_file(
    file: &Buffer,
    path: &Path,
    expect: Option<&TableMeta>,
) -> Result<Decoded, OpenError> {
    read_file_with(file, path, expect, &|d| d)
}

/// [`read_file`] with the decoder set up by `decoder` first (the engine passes one that skips
/// data validation for a file it validated before, SPEC [B8]); the structure checks run whatever
/// it does.
pub(crate) fn read_file_with(
    file: &Buffer,
    path: &Path,
    expect: Option<&TableMeta>,
    decoder: &dyn Fn(FileDecoder) -> FileDecoder,
) -> Result<Decoded, OpenError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        read_file_inner(file, path, expect, decoder)
    })) {
        Ok(r) => r,
        Err(_) => Err(bad(
            path,
            "arrow-ipc could not decode the file (it panicked)",
        )),
    }
}

fn read_file_inner(
    file: &Buffer,
    path: &Path,
    expect: Option<&TableMeta>,
    setup: &dyn Fn(FileDecoder) -> FileDecoder,
) -> Result<Decoded, OpenError> {
    let data: &[u8] = file.as_slice();
    let len = data.len();
    if len < FILE_START.len() + 10 || &data[..FILE_START.len()] != FILE_START {
        return Err(bad(
            path,
            "not an Arrow IPC file (no ARROW1 magic at the start; a stream or Feather v1 file is not a table file)",
        ));
    }
    let trailer: [u8; 10] = data[len - 10..].try_into().unwrap_or([0; 10]);
    if &trailer[4..] != FILE_END {
        return Err(bad(
            path,
            "no ARROW1 magic at the end: the file is truncated or not an Arrow IPC file",
        ));
    }
    let footer_len = i32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let footer_len = usize::try_from(footer_len)
        .ok()
        .filter(|&f| f <= len - 10 - FILE_START.len())
        .ok_or_else(|| {
            bad(
                path,
                format!("footer length {footer_len} does not fit the file"),
            )
        })?;
    let blocks_end = len - 10 - footer_len;
    let footer = arrow_ipc::root_as_footer(&data[blocks_end..len - 10])
        .map_err(|e| bad(path, format!("the footer is not valid: {e}")))?;
    if footer.version() != arrow_ipc::MetadataVersion::V5 {
        return Err(bad(
            path,
            format!("metadata version {:?}, tables are V5", footer.version()),
        ));
    }
    let fb_schema = footer
        .schema()
        .ok_or_else(|| bad(path, "the footer has no schema"))?;
    if fb_schema.endianness() != arrow_ipc::Endianness::Little {
        return Err(bad(
            path,
            "the file is big-endian; tables are little-endian",
        ));
    }
    let schema = arrow_ipc::convert::try_fb_to_schema(fb_schema)
        .map_err(|e| bad(path, format!("the schema is not valid: {e}")))?;
    let schema = Arc::new(schema);
    // Pass 1 ([B5], [B6]): every block's frame and header, dictionaries first.
    let mut seen = std::collections::BTreeSet::new();
    let mut dicts = Vec::new();
    for b in footer.dictionaries().into_iter().flatten() {
        let b = check_block(path, "dictionary", b, blocks_end)?;
        let msg = message(path, data, &b)?;
        let dict = msg
            .header_as_dictionary_batch()
            .ok_or_else(|| bad(path, "a dictionary block does not hold a dictionary batch"))?;
        let rb = dict
            .data()
            .ok_or_else(|| bad(path, "a dictionary batch has no data"))?;
        check_batch_header(path, &rb, b.body_len)?;
        if dict.isDelta() {
            return Err(bad(
                path,
                format!(
                    "dictionary {} is a delta; tables have one dictionary batch per id",
                    dict.id()
                ),
            ));
        }
        if !seen.insert(dict.id()) {
            return Err(bad(
                path,
                format!(
                    "dictionary {} appears more than once; tables have one dictionary batch per id",
                    dict.id()
                ),
            ));
        }
        dicts.push((b, dict.id()));
    }
    let mut blocks = Vec::new();
    let mut rows = 0u64;
    for (i, b) in footer.recordBatches().into_iter().flatten().enumerate() {
        let b = check_block(path, "record batch", b, blocks_end)?;
        let msg = message(path, data, &b)?;
        let rb = msg
            .header_as_record_batch()
            .ok_or_else(|| bad(path, format!("block {i} does not hold a record batch")))?;
        let n = check_batch_header(path, &rb, b.body_len)?;
        rows = rows
            .checked_add(n)
            .ok_or_else(|| bad(path, "the row count overflows"))?;
        blocks.push((b, n));
    }
    // The agreement with the metadata ([B7]) before any data is decoded ([B8]).
    if let Some(meta) = expect {
        check_agreement(meta, &schema, rows, path)?;
    }
    // Pass 2 ([B8]): decode, arrow-ipc validating the data. Buffers were checked to be 8-aligned
    // above; the few types arrow-rs wants 16-aligned (decimal128/256, view types) are realigned
    // by copying when a file (not ours: we write 64-aligned buffers) has them only 8-aligned.
    let mut decoder =
        setup(FileDecoder::new(schema.clone(), footer.version()).with_require_alignment(false));
    for (b, id) in &dicts {
        let slice = file.slice_with_length(b.offset, b.meta_len + b.body_len);
        decoder
            .read_dictionary(&b.raw, &slice)
            .map_err(|e| bad(path, format!("dictionary {id}: {e}")))?;
    }
    let mut batches = Vec::new();
    for (i, (b, n)) in blocks.iter().enumerate() {
        let slice = file.slice_with_length(b.offset, b.meta_len + b.body_len);
        let batch = decoder
            .read_record_batch(&b.raw, &slice)
            .map_err(|e| bad(path, format!("record batch {i}: {e}")))?
            .ok_or_else(|| bad(path, format!("block {i} holds no record batch")))?;
        if batch.num_rows() as u64 != *n {
            return Err(bad(path, format!("record batch {i} is inconsistent")));
        }
        batches.push(batch);
    }
    Ok(Decoded {
        schema,
        batches,
        rows,
    })
}

/// Checks that the file's schema (names, order, rendered types) and row count are those of the
/// metadata file, as a reader must ([B7]).
fn check_agreement(
    meta: &TableMeta,
    schema: &arrow_schema::Schema,
    rows: u64,
    path: &Path,
) -> Result<(), OpenError> {
    let mismatch = |detail: String| OpenError::TableMismatch {
        path: path.to_path_buf(),
        detail,
    };
    let names: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
    if names.len() != meta.columns.len() || names.iter().zip(&meta.columns).any(|(a, b)| *a != b) {
        return Err(mismatch(format!(
            "the file's columns are {names:?}, its metadata says {:?}",
            meta.columns
        )));
    }
    for (f, t) in schema.fields().iter().zip(&meta.types) {
        let rendered =
            field_type_name(f).map_err(|why| mismatch(format!("column {:?}: {why}", f.name())))?;
        if &rendered != t {
            return Err(mismatch(format!(
                "column {:?} is {rendered} in the file, {t} in its metadata",
                f.name()
            )));
        }
    }
    if rows != meta.rows {
        return Err(mismatch(format!(
            "the file holds {} rows, its metadata says {}",
            rows, meta.rows
        )));
    }
    Ok(())
}

/// Validates every column of every batch fully (offsets in range, UTF-8, dictionary keys,
/// nested children): what `fsck` checks beyond what the decoder did.
pub fn validate_full(decoded: &Decoded, path: &Path) -> Result<(), OpenError> {
    use arrow_array::Array;
    for (i, batch) in decoded.batches.iter().enumerate() {
        for (c, col) in batch.columns().iter().enumerate() {
            let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                col.to_data().validate_full()
            }));
            match checked {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    return Err(bad(
                        path,
                        format!(
                            "record batch {i}, column {:?}: {e}",
                            decoded.schema.field(c).name()
                        ),
                    ))
                }
                Err(_) => {
                    return Err(bad(
                        path,
                        format!("record batch {i}, column {c}: validation panicked"),
                    ))
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_render_as_pyarrow_prints_them() {
        use arrow_schema::Fields;
        let f = |dt: DataType| data_type_name(&dt).unwrap();
        assert_eq!(f(DataType::Float16), "halffloat");
        assert_eq!(
            f(DataType::Timestamp(
                TimeUnit::Nanosecond,
                Some("UTC".into())
            )),
            "timestamp[ns, tz=UTC]"
        );
        assert_eq!(f(DataType::Decimal128(10, 2)), "decimal128(10, 2)");
        let item = Arc::new(Field::new("item", DataType::Int32, false));
        assert_eq!(
            f(DataType::List(item.clone())),
            "list<item: int32 not null>"
        );
        assert_eq!(
            f(DataType::FixedSizeList(item, 3)),
            "fixed_size_list<item: int32 not null>[3]"
        );
        let st = DataType::Struct(Fields::from(vec![
            Field::new("a", DataType::Int32, true),
            Field::new("b", DataType::Utf8, true),
        ]));
        assert_eq!(f(st), "struct<a: int32, b: string>");
        let dict = Field::new(
            "d",
            DataType::Dictionary(Box::new(DataType::UInt8), Box::new(DataType::Utf8)),
            true,
        )
        .with_dict_is_ordered(true);
        assert_eq!(
            field_type_name(&dict).unwrap(),
            "dictionary<values=string, indices=uint8, ordered=1>"
        );
        assert!(data_type_name(&DataType::Interval(arrow_schema::IntervalUnit::DayTime)).is_err());
        for ok in [
            "double",
            "timestamp[ns, tz=UTC]",
            "decimal128(38, 2)",
            "dictionary<values=string, indices=uint8, ordered=1>",
            "list<item: int32 not null>",
            "fixed_size_list<item: int8>[3]",
            "struct<a: int32, b: list<item: string>>",
            "struct<>",
            "date32[day]",
            "time32[ms]",
        ] {
            assert!(is_type_name(ok), "{ok}");
        }
        for no in [
            "float64",
            "timestamp[us,tz=UTC]",
            "decimal128(39, 2)",
            "map<string, int32>",
            "dictionary<values=string, indices=double, ordered=0>",
            "int80",
            "list<item: int32",
            "time32[us]",
            "",
        ] {
            assert!(!is_type_name(no), "{no}");
        }
    }
}
