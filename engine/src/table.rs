//! Tables (`kind: table`): named Arrow columns of equal length in one Arrow IPC file
//! `<name>.arrow` beside `<name>.yaml`.
//!
//! Writing: [`Container::create_table`] gives a [`TableWriter`] that streams record batches
//! through arrow-ipc's `FileWriter` (64-byte aligned buffers, no compression) into a staging file,
//! computing the CRC-32C as the bytes go by; [`TableWriter::publish`] syncs it and hands it to the
//! publish protocol of arrays (SPEC [W3]): nothing is visible before, a replace never touches the
//! old file. [`Container::write_table`] does it for batches in memory.
//!
//! Opening: [`Container::open_table`] maps the file once per process (the shared map cache) and
//! decodes it into record batches whose buffers are slices of that map (no copy), after checking
//! the file's size against the metadata before mapping, the rules of a table file, and that its
//! schema and row count are those of the metadata. The batches keep the map and the reference
//! alive.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_ipc::writer::{FileWriter, IpcWriteOptions};
use arrow_schema::SchemaRef;

use crate::array::ArrayInner;
use crate::container::Container;
use crate::error::{OpenError, WriteError};
use crate::format::meta::{ArrayMeta, TableMeta};
use crate::format::name::ArrayName;
use crate::writer::{CreateOptions, Staged};

/// A mapped generation of a table, decoded. The batches' buffers own `array` (the map and the
/// reference), so they stay valid however long they are kept, even after this is dropped.
pub(crate) struct TableInner {
    pub(crate) array: Arc<ArrayInner>,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    meta: TableMeta,
}

impl TableInner {
    /// Decodes the mapped `.arrow` file of `array` and checks it against its metadata.
    pub(crate) fn decode(array: Arc<ArrayInner>) -> Result<TableInner, OpenError> {
        let ArrayMeta::Table(meta) = &array.meta else {
            return Err(OpenError::KindMismatch {
                container: array.container.shared.root.clone(),
                name: array.name.to_string(),
                actual: array.meta.kind().name(),
                requested: "table",
            });
        };
        let meta = meta.clone();
        let path = array.name.file_path(&array.container.shared.root, "arrow");
        let buf = crate::fs::sys::arrow_buffer_over_map(array.clone(), |a| a.file_map(0))
            .ok_or_else(|| OpenError::InvalidTable {
                path: path.clone(),
                detail: "the file is empty".into(),
            })?;
        // [B8]: the data is validated fully once per generation for the whole host; a process
        // that finds the same file (device, inode, size, change time) recorded as validated
        // skips the data validation (the structure checks run always).
        let shared = &array.container.shared;
        let fingerprint = array.primary_fingerprint.as_deref();
        let trusted = match fingerprint {
            Some(fp) => shared
                .catalog()
                .validated(array.name.as_str(), array.generation)
                .ok()
                .flatten()
                .is_some_and(|v| v == fp),
            None => false,
        };
        let decoded = if trusted {
            crate::format::table::read_file_with(
                &buf,
                &path,
                Some(&meta),
                &crate::fs::sys::ipc_decoder_trusting,
            )?
        } else {
            let decoded = crate::format::table::read_file(&buf, &path, Some(&meta))?;
            if let (Some(fp), false) = (fingerprint, shared.readonly) {
                // Best effort: a failed record costs the next opener a validation, nothing more.
                let _ = shared
                    .catalog()
                    .set_validated(array.name.as_str(), array.generation, fp);
            }
            decoded
        };
        Ok(TableInner {
            array,
            schema: decoded.schema,
            batches: decoded.batches,
            meta,
        })
    }
}

/// A table open read-only: its schema and record batches, whose buffers are slices of the one
/// map of `<name>.arrow` in this process. Cloning is cheap; the map and the reference live as
/// long as this handle or any batch (or array) taken from it.
#[derive(Clone)]
pub struct Table {
    pub(crate) inner: Arc<TableInner>,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("name", &self.name())
            .field("rows", &self.num_rows())
            .field("columns", &self.inner.meta.columns)
            .field("generation", &self.generation())
            .finish()
    }
}

impl Table {
    /// The table's name.
    pub fn name(&self) -> &str {
        self.inner.array.name.as_str()
    }

    /// The Arrow schema.
    pub fn schema(&self) -> SchemaRef {
        self.inner.schema.clone()
    }

    /// The record batches, in file order.
    pub fn batches(&self) -> &[RecordBatch] {
        &self.inner.batches
    }

    /// Number of rows (the sum of the batches' lengths).
    pub fn num_rows(&self) -> u64 {
        self.inner.meta.rows
    }

    /// The metadata (rows, columns, types, bytes).
    pub fn meta(&self) -> &TableMeta {
        &self.inner.meta
    }

    /// Generation (incremented by each publish of this name).
    pub fn generation(&self) -> u64 {
        self.inner.array.generation
    }

    /// The bytes of the mapped `.arrow` file (the whole Arrow IPC file).
    pub fn file_bytes(&self) -> &[u8] {
        self.inner.array.bytes(0)
    }
}

/// Counts and checksums what goes to the staging file: the CRC-32C in the same pass as the write.
struct Crc<W: Write> {
    inner: W,
    crc: u32,
    len: u64,
}

/// The most one `write(2)` of a table file carries: a column's buffer of hundreds of MB in one
/// call wrote at a fifth of the speed of 1 MiB pieces on this project's disk (bench/README.md,
/// "Sharing one table among 8 processes"), and the checksum then reads each piece while cached.
const WRITE_CHUNK: usize = 1 << 20;

impl<W: Write> Write for Crc<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(&buf[..buf.len().min(WRITE_CHUNK)])?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A table being written: push record batches, then [`TableWriter::publish`]. Nothing is visible
/// before; dropping it (or [`TableWriter::discard`]) removes the staging file.
pub struct TableWriter {
    name: ArrayName,
    types: Vec<String>,
    staged: Staged,
    path: PathBuf,
    writer: FileWriter<Crc<BufWriter<File>>>,
    rows: u64,
    /// Record batches pushed (each adds a block to the footer).
    batches: u64,
}

/// At most the bytes an IPC message of a record batch adds to the file: every buffer (its
/// capacity bounds its written length, a slice's too) padded to the alignment, and a bound of
/// the message's metadata per array (SPEC 9.7 reserves before writing).
fn batch_bound(batch: &RecordBatch) -> u64 {
    fn data_bound(d: &arrow_data::ArrayData) -> u64 {
        let align = crate::format::table::WRITE_ALIGNMENT as u64;
        let buffers: u64 = d
            .buffers()
            .iter()
            .map(|b| b.capacity() as u64 + align)
            .sum();
        let nulls = d
            .nulls()
            .map_or(0, |n| n.buffer().capacity() as u64 + align);
        let children: u64 = d.child_data().iter().map(data_bound).sum();
        // Field node and buffer descriptors, and a dictionary's values.
        buffers + nulls + children + 256
    }
    let columns: u64 = batch
        .columns()
        .iter()
        .map(|c| data_bound(&c.to_data()))
        .sum();
    columns + 4096
}

/// At most the bytes of a file's header, schema message and footer for `fields` columns,
/// besides the footer's 64 bytes per block.
fn metadata_bound(fields: usize) -> u64 {
    64 * 1024 + 2048 * fields as u64
}

impl TableWriter {
    /// The table's name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The schema every batch must have.
    pub fn schema(&self) -> SchemaRef {
        self.writer.schema().clone()
    }

    /// Rows pushed so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn arrow_err(&self, e: arrow_schema::ArrowError) -> WriteError {
        match e {
            arrow_schema::ArrowError::IoError(_, e) => {
                crate::writer::no_space(&self.path, 0, e, "write")
            }
            arrow_schema::ArrowError::InvalidArgumentError(m)
                if m.contains("Dictionary replacement") =>
            {
                let dictionaries: Vec<&str> = self
                    .writer
                    .schema()
                    .fields()
                    .iter()
                    .filter(|f| matches!(f.data_type(), arrow_schema::DataType::Dictionary(..)))
                    .map(|f| f.name().as_str())
                    .collect();
                WriteError::InvalidTable {
                    name: self.name.to_string(),
                    detail: format!(
                        "a batch's dictionary differs from an earlier batch's for a dictionary \
                         column ({}); an Arrow IPC file holds one dictionary per column: give \
                         every batch the same dictionary (pyarrow: Table.unify_dictionaries(), or \
                         write an in-memory table) or store the column decoded",
                        dictionaries.join(", ")
                    ),
                }
            }
            e => WriteError::InvalidTable {
                name: self.name.to_string(),
                detail: e.to_string(),
            },
        }
    }

    /// Appends a record batch (written to the staging file now; only the footer waits).
    pub fn push(&mut self, batch: &RecordBatch) -> Result<(), WriteError> {
        if batch.schema().fields() != self.writer.schema().fields() {
            return Err(WriteError::InvalidTable {
                name: self.name.to_string(),
                detail: format!(
                    "a batch's schema {} is not the table's {}",
                    batch.schema(),
                    self.writer.schema()
                ),
            });
        }
        // A record batch's length is a signed 64-bit count in the file ([B3]): a batch without
        // columns can claim any row count (arrow-ipc's reader takes a negative length as a huge
        // one), which no reader could decode back. Refused before anything is written.
        let rows = i64::try_from(batch.num_rows())
            .ok()
            .and_then(|n| i64::try_from(self.rows).ok()?.checked_add(n))
            .ok_or_else(|| WriteError::InvalidTable {
                name: self.name.to_string(),
                detail: format!(
                    "a record batch of {} rows after {} rows: a table holds at most {} rows",
                    batch.num_rows(),
                    self.rows,
                    i64::MAX
                ),
            })?;
        crate::failpoint::hit("stage.write")
            .map_err(|e| crate::writer::no_space(&self.path, 0, e, "write"))?;
        // Room for the batch before any of it is written (SPEC 9.7), and for the footer.
        let bound = self.writer.get_ref().len
            + batch_bound(batch)
            + metadata_bound(batch.num_columns())
            + 64 * (self.batches + 1);
        self.staged.reserve(&self.name, bound)?;
        self.writer.write(batch).map_err(|e| self.arrow_err(e))?;
        self.batches += 1;
        self.rows = rows as u64; // checked above: 0 ≤ rows ≤ i64::MAX
        Ok(())
    }

    /// Writes the footer, syncs the file, records its size and checksum, and publishes
    /// atomically (SPEC [W3]).
    pub fn publish(mut self) -> Result<(), WriteError> {
        self.writer.finish().map_err(|e| self.arrow_err(e))?;
        let TableWriter {
            name,
            types,
            staged,
            path,
            writer,
            rows,
            batches: _,
        } = self;
        let columns = writer
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let crc = writer
            .into_inner()
            .map_err(|e| WriteError::io(path.clone(), "write", io::Error::other(e)))?;
        let Crc { inner, crc, len } = crc;
        let file = inner
            .into_inner()
            .map_err(|e| crate::writer::no_space(&path, len, e.into_error(), "write"))?;
        file.sync_data()
            .map_err(|e| crate::writer::no_space(&path, len, e, "sync"))?;
        drop(file);
        let meta = TableMeta::new(rows, columns, types, len)?;
        staged.publish(&name, &ArrayMeta::Table(meta), vec![("arrow".into(), crc)])
    }

    /// Discards the table (same as dropping it).
    pub fn discard(self) {}
}

impl Container {
    /// Creates a table of `schema` to fill with [`TableWriter::push`]; nothing is visible until
    /// [`TableWriter::publish`]. Every column type must be one a table can store
    /// ([`crate::arrow_type_name`]); the file is an uncompressed Arrow IPC file with 64-byte
    /// aligned buffers.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use dafstore::arrow_array::{Int64Array, RecordBatch, StringArray};
    /// # let dir = tempfile::tempdir()?;
    /// let c = dafstore::Container::create(dir.path().join("c"))?;
    /// let batch = RecordBatch::try_from_iter([
    ///     ("id", Arc::new(Int64Array::from(vec![1, 2])) as _),
    ///     ("who", Arc::new(StringArray::from(vec!["a", "b"])) as _),
    /// ])?;
    /// let mut w = c.create_table("t", batch.schema(), &Default::default())?;
    /// w.push(&batch)?;
    /// w.push(&batch)?;
    /// w.publish()?; // visible only now, complete
    /// assert_eq!(c.open_table("t")?.num_rows(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_table(
        &self,
        name: &str,
        schema: SchemaRef,
        opts: &CreateOptions,
    ) -> Result<TableWriter, WriteError> {
        let name = ArrayName::new(name)?;
        crate::fs::beneath::check_path_length(&self.shared.root, &name)?;
        let types = crate::format::arrow_type::schema_types(&schema).map_err(|(column, why)| {
            WriteError::InvalidTable {
                name: name.to_string(),
                detail: format!("column {column:?}: {why}"),
            }
        })?;
        let mut staged = Staged::new(self)?;
        staged.lifecycle = opts.effective_lifecycle();
        // The file's header and schema message are written at once (SPEC 9.7: room first).
        staged.reserve(&name, metadata_bound(schema.fields().len()))?;
        let (path, file) = staged.create("arrow")?;
        let options = IpcWriteOptions::try_new(
            crate::format::table::WRITE_ALIGNMENT,
            false,
            arrow_ipc::MetadataVersion::V5,
        )
        .map_err(|e| WriteError::InvalidTable {
            name: name.to_string(),
            detail: e.to_string(),
        })?;
        let sink = Crc {
            inner: BufWriter::with_capacity(1 << 20, file),
            crc: 0,
            len: 0,
        };
        let writer = FileWriter::try_new_with_options(sink, &schema, options).map_err(|e| {
            WriteError::InvalidTable {
                name: name.to_string(),
                detail: e.to_string(),
            }
        })?;
        Ok(TableWriter {
            name,
            types,
            staged,
            path,
            writer,
            rows: 0,
            batches: 0,
        })
    }

    /// Writes a table from record batches in memory (each of `schema`) and publishes it.
    pub fn write_table(
        &self,
        name: &str,
        schema: SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<(), WriteError> {
        self.write_table_with(name, schema, batches, &CreateOptions::default())
    }

    /// [`Container::write_table`] with options (the lifecycle).
    pub fn write_table_with(
        &self,
        name: &str,
        schema: SchemaRef,
        batches: &[RecordBatch],
        opts: &CreateOptions,
    ) -> Result<(), WriteError> {
        let mut w = self.create_table(name, schema, opts)?;
        for b in batches {
            w.push(b)?;
        }
        w.publish()
    }
}
