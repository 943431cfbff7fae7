//! # dafstore
//!
//! An embedded storage engine for memory-mapped dense and sparse numeric arrays shared by many
//! processes on one Linux host. A [`Container`] is a directory of arrays in daf's layout
//! (`<name>.array` + `<name>.yaml`; `<name>.data`/`.indices`/`.indptr` + `<name>.yaml`) with a
//! SQLite catalog in `.dafstore/`. The on-disk format is specified in `format-spec/SPEC.md`.
//!
//! ```
//! use dafstore::{Container, Layout};
//! let dir = tempfile::tempdir()?;
//! let c = Container::create(dir.path().join("c"))?;
//! c.write_dense::<f64>("x", &[2, 3], &[1., 2., 3., 4., 5., 6.])?;
//! let x = c.open_dense::<f64>("x")?;
//! assert_eq!(x.shape(), &[2, 3]);
//! assert_eq!(x[4], 5.0);
//! c.write_sparse::<f32, i32, i64>("m", Layout::Rows, [2, 3], &[1., 2.], &[0, 2], &[0, 1, 2])?;
//! let m = c.open_sparse("m")?;
//! assert_eq!(m.data::<f32>()?, &[1., 2.]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Guarantees: a published array is visible only complete; a replace never truncates or rewrites
//! the old files (old maps keep reading the old bytes); a file is mapped once per process;
//! running out of space is an error at create, never a SIGBUS while filling (unless holes are
//! asked for); bad input is a typed error naming the path, never a panic.
//!
//! ## Module map
//!
//! The crate reads bottom-up: no file uses one of a higher layer, and no files use each other in
//! a cycle except inside the two modules named below (both checked by the tests in
//! `layering.rs`, which lists those two cycles; a file uses another when it names a path into
//! it, through grouped imports, `super::` and re-exports).
//!
//! - `protocol/`: [`Container`]'s shared state is one struct, `Shared` (with `Proc`, what belongs
//!   to one process), in `shared.rs`, whose methods live in per-concern files that own their
//!   part of it: `session.rs` the session (`Session`: its lock file, starting and ending it),
//!   `refs.rs` the reference counts (`Counts`), `slots.rs` the reference records in the session
//!   file (`Slots`), `stripes.rs` the lock stripes and their change stamps, `clock.rs` the removal
//!   counter and the release clock, `fork.rs` a forked child's heir (`Inherited`), `budget.rs`
//!   room for writes, eviction and the names this process is loading (`Loading`). `shared.rs`
//!   names their types in its fields and calls their helpers; they name `Shared` back in their
//!   `impl Shared` blocks (`clock.rs`: in functions of a `&Shared`).
//!   `load.rs`, `publish.rs`, `batch.rs`, `remove.rs` and `recovery.rs` also implement methods of
//!   `Shared`, but nothing in `shared.rs` names them: no cycle.
//! - `interop/`: `mod.rs` is the vocabulary (`Format`, [`InteropError`], [`ImportedArray`], the
//!   output and progress helpers) and the dispatch by format to `npy.rs`, `npz.rs`, `feather.rs`
//!   and `parquet.rs`, which use that vocabulary.
//!
//! At run time one cycle is inherent: a container hands out handles that hold it.
//!
//! | layer | files | owns |
//! |---|---|---|
//! | 0 vocabulary | `error.rs`, `failpoint.rs`, `sync.rs`, `format/dtype.rs`, `format/lifecycle.rs` | every error type and its [`Remedy`]; crash points (feature `failpoints`); poison-tolerant locking; element types; lifecycles and limits (the cache's values) |
//! | 1 format | `format/{name,meta,yaml,sparse,arrow_type,table,checksum}.rs`, `format/mod.rs` | SPEC sections 2–6 as pure functions: names, metadata documents (a YAML subset parser), sparse invariants, the Arrow type grammar of a table's `types` (`arrow_type`, used by `meta` and `table`), table files (reading an IPC file in memory), CRC-32C, container constants. Bytes in, typed values out, no I/O |
//! | 2 file system | `fs/{sys,beneath,cache,reserve,local,read,inspect}.rs` | every system call and all `unsafe` (`sys`); paths under a container without following links (`beneath`); one map per file per process (`cache`); the space reserve; local-fs check and directory syncs; reading metadata and checksums; reading an array from its files alone (`inspect`) |
//! | 3 catalog | `catalog/{mod,sql,schema,rows,holders,budget,batch}.rs` | the SQLite catalog: the connection, transactions and the queries of publish, state, sessions and in-place writers (`mod`); SQLite errors and retries (`sql`); the schema, its version check and the SQL migrations run (`schema`); rows and their columns (`rows`: `ArrayInfo`, `ArrayState`, `FileRecord`); holding and removal rows: first holder, due removals, eviction marks, lifecycles, reaping dead sessions, the holders listing (`holders`); the cache's limits, reservations and choice of evictions (`budget`); a batch's two transactions (`batch`) |
//! | 4 protocol | `protocol/{shared,session,fork,stripes,slots,clock,load,budget,refs,publish,batch,remove,recovery}.rs` | the state a process shares across handles (`Shared`), sessions, fork, lock stripes (a held stripe is a `NameLock`, which every function that changes a name takes), load locks (open or load), room for writes and eviction (`budget`), reference counts, publish (single and batch), removal, recovery and gc |
//! | 5 handles | `container.rs`, `array.rs`, `table.rs`, `open.rs`, `writer.rs`, `batch.rs`, `hold.rs`, `load.rs`, `budget.rs`, `interop/`, `umbrella.rs` | the public API: [`Container`] and [`OpenOptions`], mapped dense and sparse arrays (`array`), tables (`table`), opening by name as any kind ([`Array`], `open`: over both), writers and batches, [`Ref`]s, open or load, the cache's limits, import/export, the umbrella [`Error`] |
//! | 6 maintenance | `fsck.rs`, `adopt.rs`, `rebuild.rs` | whole-container checks and repairs, adopting daf directories, rebuilding the catalog |
//!
//! The internals that tests and fuzzers drive directly (metadata parse/render, sparse validation,
//! checksums, inspection) are `dafstore::internals`, behind the `internals` feature.

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
// Every unsafe block lives in `sys` (which allows it); the compiler refuses it anywhere else.
#![deny(unsafe_code)]

// Layer 0: the vocabulary every layer uses.
mod error;
mod failpoint;
mod sync;
// Layer 1: the format (no I/O).
mod format;
// Layer 2: the file system.
mod fs;
// Layer 3: the catalog.
mod catalog;
// Layer 4: the protocol.
mod protocol;
// Layer 5: the public handles.
mod array;
mod batch;
mod budget;
mod container;
mod hold;
mod interop;
mod load;
mod open;
mod table;
mod umbrella;
mod writer;
// Layer 6: maintenance over whole containers.
mod adopt;
mod fsck;
mod rebuild;

#[cfg(test)]
mod layering;

pub use adopt::AdoptReport;
pub use array::{Dense, DenseArray, DenseMut, DensePrivate, SparseArray};
pub use batch::Batch;
pub use budget::Evicted;
pub use catalog::{ArrayInfo, ArrayState, FileRecord, Usage};
/// The former name of [`ArrayInfo`].
#[deprecated(note = "use `ArrayInfo`")]
pub type ArrayRecord = ArrayInfo;
pub use container::{Container, OpenOptions};
pub use error::{
    CatalogError, ContainerError, HoldingSession, IoError, LoadError, MetaError, NameError,
    Occupant, OpenError, PathError, Remedy, Shortfall, SparseError, WriteError,
};
pub use format::arrow_type::{data_type_name, field_type_name as arrow_type_name};
pub use format::dtype::{Bool8, DType, Element, IndexElement, IndexSlice};
pub use format::lifecycle::{Lifecycle, Limits};
pub use format::meta::{ArrayMeta, DenseMeta, Kind, Layout, SparseMeta, TableMeta};
pub use format::name::{escape_for_display, ArrayName};
pub use format::RESERVED_DIR;
pub use fs::cache::{cache_stats, CacheStats};
pub use fs::inspect::{DafFile, DafFileKind, Refused};
pub use fsck::{FsckOptions, FsckReport, Problem, ProblemKind};
pub use hold::{HeldArray, Holder, Ref};
pub use interop::{
    arrow_data_type, ArrowSparse, Format, ImportOptions, ImportReport, ImportedArray, InteropError,
};
pub use load::{LoadLock, LoadOptions, Loader};
pub use open::Array;
pub use protocol::{GcFailure, GcReport, RecoveryFailure, RecoveryReport, Removal};
pub use rebuild::RebuildReport;
pub use table::{Table, TableWriter};
pub use umbrella::{Error, Result};
pub use writer::{Allocation, CreateOptions, DenseWriter, StagedFill};

/// Internals that the tests, the conformance fixtures and the fuzzers drive directly: the
/// metadata parser and renderer, sparse validation, checksums, file inspection and the format constants. Not part of
/// the stable API; enabled by the `internals` feature.
#[cfg(feature = "internals")]
pub mod internals {
    pub use crate::catalog::SCHEMA_VERSION;
    pub use crate::format::name::is_forbidden_char;
    pub use crate::format::{arrow_type, checksum, meta, sparse, table};
    pub use crate::format::{CONTAINER_MAJOR, CONTAINER_MINOR, LOCK_STRIPES};
    pub use crate::fs::inspect;
}

/// The arrow-rs crates whose types [`DenseArray::to_arrow`] and [`SparseArray::to_arrow_buffers`]
/// return, re-exported so callers use the same versions.
pub use {arrow_array, arrow_buffer, arrow_schema};
