//! Tables (`kind: table`): reading an Arrow IPC file that is already in memory (a map) into
//! record batches whose buffers are slices of it, with the rules of a table file checked first:
//! magic at both ends, metadata version V5, little-endian, no body compression, every block and
//! every buffer inside the file and 8-byte aligned, one dictionary batch per dictionary id and no
//! deltas; then arrow-ipc's decoder with validation on. Pure: bytes in, typed values out.

use std::path::Path;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::FileDecoder;
use arrow_schema::SchemaRef;

use crate::error::OpenError;
use crate::format::arrow_type::field_type_name;
use crate::format::meta::TableMeta;

/// Magic at the start of an Arrow IPC file (`ARROW1` and two bytes of padding).
pub const FILE_START: &[u8; 8] = b"ARROW1\0\0";
/// Magic at the end of an Arrow IPC file.
pub const FILE_END: &[u8; 6] = b"ARROW1";
/// Alignment of buffers that writers use.
pub const WRITE_ALIGNMENT: usize = 64;
/// Alignment of buffers that readers require.
pub const READ_ALIGNMENT: u64 = 8;

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
