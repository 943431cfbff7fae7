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

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
// Every unsafe block lives in `sys` (which allows it); the compiler refuses it anywhere else.
#![deny(unsafe_code)]

mod adopt;
mod array;
mod beneath;
mod cache;
mod catalog;
pub mod checksum;
mod container;
mod dtype;
pub mod error;
mod failpoint;
mod fsck;
pub mod inspect;
pub mod interop;
pub mod meta;
mod meta_yaml;
mod name;
mod rebuild;
mod refs;
mod reserve;
pub mod sparse;
mod sys;
mod writer;

pub use adopt::AdoptReport;
pub use array::{Array, Dense, DenseArray, DenseMut, DensePrivate, SparseArray};
pub use beneath::PathError;
pub use cache::{cache_stats, CacheStats};
pub use catalog::{ArrayRecord, ArrayState, FileRecord, SCHEMA_VERSION};
pub use container::{
    Container, GcReport, Removal, CONTAINER_MAJOR, CONTAINER_MINOR, LOCK_STRIPES, RESERVED_DIR,
};
pub use dtype::{Bool8, DType, Element, IndexElement, IndexSlice};
pub use error::{
    CatalogError, ContainerError, MetaError, NameError, OpenError, SparseError, WriteError,
};
pub use fsck::{FsckOptions, FsckReport, Problem, ProblemKind};
pub use interop::{ArrowSparse, Format, ImportOptions, ImportReport, ImportedArray, InteropError};
pub use meta::{ArrayMeta, DenseMeta, Layout, SparseMeta};
pub use name::{escape_for_display, is_forbidden_char, ArrayName};
pub use rebuild::RebuildReport;
pub use refs::{Holder, Ref};
pub use writer::{Allocation, CreateOptions, DenseWriter};
/// The arrow-rs crates whose types [`DenseArray::to_arrow`] and [`SparseArray::to_arrow_buffers`]
/// return, re-exported so callers use the same versions.
pub use {arrow_array, arrow_buffer, arrow_schema};
