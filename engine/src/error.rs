//! Typed errors, one enum per operation (as redb does), so a caller matches only what the call can
//! return. Every variant names the path or array it concerns, what is wrong, and what to do; the
//! spec rule it enforces is cited as `[tag]` (see `format-spec/SPEC.md`).

use std::io;
use std::path::PathBuf;

use crate::format::dtype::DType;

/// Where the format is specified; cited by every error about on-disk content.
pub const SPEC: &str = "format-spec/SPEC.md";

/// An array name was refused (SPEC section 3). Nothing was touched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid array name {name:?}: {reason} (names: SPEC.md [{rule}]); choose another name")]
pub struct NameError {
    /// The name as given (lossy if it was not UTF-8).
    pub name: String,
    /// What is wrong with it.
    pub reason: String,
    /// The spec rule it breaks (`N1`..`N7`).
    pub rule: &'static str,
}

/// Metadata (`<name>.yaml`, `.dafstore/container.yaml`, or values given to a writer) is invalid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetaError {
    /// The YAML does not parse or has the wrong structure.
    #[error(
        "{path}: invalid metadata: {detail} (see {SPEC} [{rule}]); fix or regenerate the file"
    )]
    Invalid {
        /// The metadata file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
        /// The spec rule.
        rule: &'static str,
    },
    /// The major version is not the one supported.
    #[error("{path}: unsupported format version {found_major}.{found_minor}; this dafstore reads major version {supported} (see {SPEC} [Y2]/[C2]); upgrade dafstore")]
    UnsupportedVersion {
        /// The metadata file.
        path: PathBuf,
        /// Major version found.
        found_major: u64,
        /// Minor version found.
        found_minor: u64,
        /// The supported major version.
        supported: u64,
    },
    /// A dtype is not one of the spec's spellings.
    #[error("{path}: unknown dtype {found:?}; valid dtypes are {valid} (see {SPEC} [T1])")]
    UnknownDtype {
        /// The file, or `<argument>` for values given in code.
        path: PathBuf,
        /// The spelling found.
        found: String,
        /// The valid spellings.
        valid: String,
    },
    /// The shape's element count or byte size overflows.
    #[error("{path}: shape {shape:?} of {dtype} is too large: its byte size overflows 64 bits (see {SPEC} [D2])")]
    ShapeOverflow {
        /// The file, or `<argument>`.
        path: PathBuf,
        /// The shape.
        shape: Vec<u64>,
        /// The element type.
        dtype: DType,
    },
}

/// A sparse array breaks an invariant of SPEC [S3]–[S5]. Reported before anything is published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SparseError {
    /// `indptr` does not have `major + 1` entries.
    #[error("indptr has {actual} entries, expected {expected} (major dimension + 1) [S3]")]
    IndptrLength {
        /// Expected entries.
        expected: u64,
        /// Actual entries.
        actual: u64,
    },
    /// `data` or `indices` does not have `nnz` entries.
    #[error("{what} has {actual} entries, expected nnz = {expected} [S3]")]
    NnzMismatch {
        /// `data` or `indices`.
        what: &'static str,
        /// nnz.
        expected: u64,
        /// Actual entries.
        actual: u64,
    },
    /// `indptr[0]` is not 0.
    #[error("indptr[0] is {found}, must be 0 [S4]")]
    IndptrStart {
        /// The value found.
        found: String,
    },
    /// `indptr` decreases.
    #[error("indptr decreases at position {at}: {before} then {after} [S4]")]
    IndptrDecreasing {
        /// Position of the smaller value.
        at: u64,
        /// Value at `at - 1`.
        before: String,
        /// Value at `at`.
        after: String,
    },
    /// `indptr[major]` is not nnz.
    #[error("indptr ends at {found}, must end at nnz = {nnz} [S4]")]
    IndptrEnd {
        /// The last value.
        found: String,
        /// nnz.
        nnz: u64,
    },
    /// An index is negative or not below the minor dimension.
    #[error("indices[{at}] = {index} is out of range 0..{bound} [S4]")]
    IndexOutOfRange {
        /// Position in `indices`.
        at: u64,
        /// The index.
        index: String,
        /// The minor dimension.
        bound: u64,
    },
    /// nnz or the minor dimension does not fit the index dtypes.
    #[error("{what} = {value} does not fit {dtype} [S5]; use a wider index dtype (int64)")]
    IndexDtypeTooSmall {
        /// `nnz` or `minor dimension - 1`.
        what: &'static str,
        /// The value.
        value: u64,
        /// The dtype.
        dtype: DType,
    },
}

/// The SQLite catalog failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// SQLite reported an error.
    #[error("catalog {path}: {context}: {source}; if it persists, check the container (fsck)")]
    Sqlite {
        /// The catalog file.
        path: PathBuf,
        /// What was being done.
        context: String,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The catalog was written by a newer dafstore.
    #[error("catalog {path}: schema version {found} is newer than this dafstore supports ({supported}); upgrade dafstore")]
    SchemaTooNew {
        /// The catalog file.
        path: PathBuf,
        /// Schema version found.
        found: i64,
        /// Supported schema version.
        supported: i64,
    },
    /// The catalog must be migrated to this dafstore's schema, but a live process of an older
    /// dafstore uses the container: migrating under it would lose its references (SPEC 9.1,
    /// schema 4).
    #[error("catalog {path}: schema version {found} must be migrated to {supported} by this dafstore, but a process of an older dafstore (pid {pid}, session {session}) uses the container; end it (or wait for it to end), then open again")]
    InUseByOlderEngine {
        /// The catalog file.
        path: PathBuf,
        /// Schema version found.
        found: i64,
        /// This dafstore's schema version.
        supported: i64,
        /// The live session.
        session: String,
        /// Its pid (display only).
        pid: i64,
    },
    /// The file system holding the catalog is full (SQLITE_FULL, or an I/O error whose OS error
    /// is ENOSPC, EDQUOT or EFBIG). The transaction was rolled back: nothing changed.
    #[error("catalog {path}: {context}: no space left on its file system ({source}); nothing was changed; free space (remove arrays, or other files) and retry")]
    NoSpace {
        /// The catalog file.
        path: PathBuf,
        /// What was being done.
        context: String,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A row holds a value this version cannot interpret.
    #[error("catalog {path}: row for {name:?} is corrupt: {detail}; repair the container (fsck with repair)")]
    CorruptRow {
        /// The catalog file.
        path: PathBuf,
        /// The array name.
        name: String,
        /// What is wrong.
        detail: String,
    },
    /// A process forked from the one that opened the container could not start its own session
    /// (SPEC [P2]), so it cannot use the handles it inherited.
    #[error("catalog {path}: this process was forked from the one that opened the container and could not start its own session: {detail}; the next use tries again")]
    ForkedSession {
        /// The catalog file.
        path: PathBuf,
        /// Why the session could not start.
        detail: String,
    },
    /// The catalog file is missing (SPEC 9.1 rebuild).
    #[error("catalog {path} is missing; the array files are the data: repair the container {container} (fsck with repair) to rebuild the catalog from them (see {SPEC} [Q2])")]
    Missing {
        /// The catalog file.
        path: PathBuf,
        /// The container directory.
        container: PathBuf,
    },
    /// The catalog file is not a usable SQLite catalog: empty, not SQLite, corrupt, or without
    /// schema (SPEC 9.1 rebuild).
    #[error("catalog {path} is damaged: {detail}; the array files are intact: repair the container {container} (fsck with repair) to rebuild the catalog from them (the damaged one is kept aside, see {SPEC} [Q2])")]
    Damaged {
        /// The catalog file.
        path: PathBuf,
        /// The container directory.
        container: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A read-write open of a catalog this process cannot write (read-only file system, no
    /// write permission).
    #[error("catalog {path}: cannot open for writing: {source}; open the container read-only, or get write access")]
    NotWritable {
        /// The catalog file.
        path: PathBuf,
        /// EROFS or EACCES.
        source: io::Error,
    },
    /// The session files that record references (SPEC [P3]) could not be read.
    #[error("{path}: cannot read the references recorded there: {source}; check that the directory is readable by this user (see {SPEC} [P3])")]
    References {
        /// The sessions directory (or the session file).
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A read-only open cannot see the committed state (SPEC [Q1]): SQLite needs to create or
    /// update `catalog.sqlite-shm` and this process cannot, while committed changes wait in the
    /// write-ahead log.
    #[error("catalog {path}: cannot be read consistently without writing: {detail}; SQLite needs catalog.sqlite-shm next to it and this process cannot create or update it (no write permission, read-only or full file system) while changes wait in catalog.sqlite-wal; open it once read-write as a user who can write it (that checkpoints the log), or free space (see {SPEC} [Q1])")]
    Unreadable {
        /// The catalog file.
        path: PathBuf,
        /// SQLite's error.
        detail: String,
    },
}

impl CatalogError {
    /// Whether the catalog file itself is missing or damaged, so that a repair (fsck)
    /// rebuilds it from the array files (SPEC 9.1).
    pub fn needs_rebuild(&self) -> bool {
        matches!(
            self,
            CatalogError::Missing { .. } | CatalogError::Damaged { .. }
        )
    }
}

/// Creating or opening a container failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerError {
    /// A file system call failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The directory has no `.dafstore/`.
    #[error("{path} is not a dafstore container (no .dafstore/container.yaml); create one, or adopt a daf directory")]
    NotAContainer {
        /// The directory.
        path: PathBuf,
    },
    /// `create` on a directory that is already a container.
    #[error("{path} is already a dafstore container; open it instead")]
    AlreadyExists {
        /// The directory.
        path: PathBuf,
    },
    /// The version file is invalid or from an unsupported major version.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// The catalog failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A catalog rebuild (SPEC [Q2]) was refused because processes still have the container open.
    #[error("{path}: cannot rebuild the catalog while {} process(es) have the container open (live sessions: {}); stop them, then repair it again (see {SPEC} [Q2])", sessions.len(), sessions.join(", "))]
    LiveSessions {
        /// The container directory.
        path: PathBuf,
        /// The live session ids.
        sessions: Vec<String>,
    },
    /// The container is on a network file system.
    #[error("{path} is on a network file system ({fs}); dafstore needs a local file system because SQLite WAL and flock are unreliable there (see {SPEC} [F1]); use a local disk or /dev/shm")]
    NetworkFileSystem {
        /// The directory.
        path: PathBuf,
        /// The file system type.
        fs: &'static str,
    },
    /// A path under the container crosses a link, a nested container or a non-regular file, is
    /// too long, or the container was removed (SPEC [N7], [N9], [N10], [C4], [C5]).
    #[error(transparent)]
    Path(#[from] crate::error::PathError),
}

/// Opening an array failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The name is invalid.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A staged array's token ([`crate::DenseWriter::token`]) cannot be opened.
    #[error("{container}: cannot fill the staged array of token {token:?}: {why}; ask its writer for a fresh token (a token is valid while its writer lives)")]
    Staged {
        /// The container directory.
        container: PathBuf,
        /// The token (at most 200 characters of it).
        token: String,
        /// Why.
        why: String,
    },
    /// No array of that name.
    #[error("{container}: no array named {name:?}")]
    NotFound {
        /// The container directory.
        container: PathBuf,
        /// The name.
        name: String,
    },
    /// The array is not of the kind asked for.
    #[error("{container}: array {name:?} is {actual}, not {requested}")]
    KindMismatch {
        /// The container directory.
        container: PathBuf,
        /// The name.
        name: String,
        /// The kind it has.
        actual: &'static str,
        /// The kind asked for.
        requested: &'static str,
    },
    /// A typed view was asked with the wrong element type.
    #[error("array {name:?} holds {recorded}, not {requested}; open it with the recorded dtype or use the untyped open")]
    DtypeMismatch {
        /// The name.
        name: String,
        /// Its dtype.
        recorded: DType,
        /// The dtype asked for.
        requested: DType,
    },
    /// A file's length does not match its metadata.
    #[error("{path}: file is {actual} bytes, its metadata promises {expected}; the file was truncated or changed outside dafstore; check the container (fsck)")]
    SizeMismatch {
        /// The file.
        path: PathBuf,
        /// Expected bytes.
        expected: u64,
        /// Actual bytes.
        actual: u64,
    },
    /// A file is not a regular file (a symbolic link, a directory…).
    #[error("{path}: not a regular file; array files must be regular files inside the container (see {SPEC} [N7])")]
    NotRegularFile {
        /// The path.
        path: PathBuf,
    },
    /// A file system call failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// Metadata is invalid.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// The catalog failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Recovering an interrupted publish or remove failed.
    #[error("recovering array {name:?}: {source}")]
    Recovery {
        /// The name.
        name: String,
        /// What failed.
        #[source]
        source: Box<WriteError>,
    },
    /// In-place writing asked on a read-only container.
    #[error("{container} was opened read-only; open it read-write to write in place")]
    ReadOnly {
        /// The container directory.
        container: PathBuf,
    },
    /// A path under the container crosses a link, a nested container or a non-regular file, is
    /// too long, or the container was removed (SPEC [N7], [N9], [N10], [C4], [C5]).
    #[error(transparent)]
    Path(#[from] crate::error::PathError),
    /// A table's `.arrow` file is not a valid Arrow IPC file that can be mapped: truncated or
    /// corrupted, a block or buffer outside the file or misaligned, more than one dictionary batch
    /// for an id, a decoder failure.
    #[error("{path}: not a valid table file: {detail}; the file was changed outside dafstore or written by another tool; check the container (fsck)")]
    InvalidTable {
        /// The `.arrow` file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A table's `.arrow` file has compressed buffers, which cannot be mapped.
    #[error("{path}: the table file has compressed buffers; tables are stored uncompressed so that they can be mapped (import the file, which decompresses it)")]
    CompressedTable {
        /// The `.arrow` file.
        path: PathBuf,
    },
    /// A table's `.arrow` file disagrees with its metadata file (columns, types or rows).
    #[error(
        "{path}: the table file disagrees with its metadata: {detail}; check the container (fsck)"
    )]
    TableMismatch {
        /// The `.arrow` file.
        path: PathBuf,
        /// What differs.
        detail: String,
    },
}

/// An entry that eviction may not take, as a [`Shortfall`] reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Occupant {
    /// The entry.
    pub name: String,
    /// Bytes of its data files.
    pub bytes: u64,
    /// Its lifecycle.
    pub lifecycle: crate::format::lifecycle::Lifecycle,
    /// Sessions holding it with their process ids (display only), empty when nobody holds it.
    pub holders: Vec<HoldingSession>,
}

/// A session holding an [`Occupant`], with its process id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct HoldingSession {
    /// The session id.
    pub session: String,
    /// Its process id (display only; `None` when the catalog does not record it).
    pub pid: Option<u32>,
}

/// Why a write does not fit ([`crate::WriteError::Capacity`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Shortfall {
    /// Bytes the write needed on top of what it had reserved.
    pub needed: u64,
    /// The limits.
    pub limits: crate::format::lifecycle::Limits,
    /// Bytes counted against the capacity: entries and reservations.
    pub used: u64,
    /// Of `used`: reserved by writes in flight.
    pub reserved: u64,
    /// What evicting every unreferenced `cached` entry would free.
    pub evictable: u64,
    /// Free bytes on the file system when measured (with a `min_free`).
    pub fs_free: Option<u64>,
    /// The largest entries that cannot be evicted (held, persistent, scratch), largest first (at
    /// most 10).
    pub largest: Vec<Occupant>,
}

/// Creating, writing, publishing or removing an array failed. Nothing was published.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The name is invalid.
    #[error(transparent)]
    Name(#[from] NameError),
    /// Invalid metadata (dtype, shape).
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// The sparse array breaks an invariant.
    #[error("sparse array {name:?}: {source}; nothing was written")]
    Sparse {
        /// The name.
        name: String,
        /// The invariant.
        source: SparseError,
    },
    /// The element count of the given data does not match the shape.
    #[error("array {name:?}: {actual} elements given, shape {shape:?} needs {expected}")]
    LengthMismatch {
        /// The name.
        name: String,
        /// The shape.
        shape: Vec<u64>,
        /// Elements needed.
        expected: u64,
        /// Elements given.
        actual: u64,
    },
    /// A bool array holds a byte other than 0 or 1.
    #[error("array {name:?}: bool element {at} is byte {byte}, must be 0 or 1 (see {SPEC} [T2])")]
    InvalidBool {
        /// The name.
        name: String,
        /// Position.
        at: u64,
        /// The byte.
        byte: u8,
    },
    /// A table cannot be written as given: a column type that cannot be stored, a batch whose
    /// schema is not the table's, or Arrow's writer failed.
    #[error("table {name:?}: {detail}; nothing was written")]
    InvalidTable {
        /// The name.
        name: String,
        /// What is wrong.
        detail: String,
    },
    /// The file system ran out of space (ENOSPC, EDQUOT, EFBIG, or SQLite's SQLITE_FULL) before
    /// the publish's commit point (SPEC 7.2): nothing was published, staging files are removed.
    #[error("{path}: no space left{}; nothing was published; free space (remove arrays, or other files) and retry{}", no_space_need(*bytes), no_space_hint(*bytes))]
    NoSpace {
        /// The file that could not be written (a staging file, the catalog).
        path: PathBuf,
        /// Bytes needed, when known (0: unknown, e.g. the catalog's journal could not grow).
        bytes: u64,
    },
    /// The write does not fit under the container's capacity (or its free space floor) even
    /// after evicting every unreferenced `cached` entry (SPEC 9.7): nothing was published, its
    /// staging files are removed.
    #[error("{container}: {name:?} does not fit: {}; nothing was published; release or remove entries, raise the capacity, or wait for room", capacity_detail(shortfall))]
    Capacity {
        /// The container directory.
        container: PathBuf,
        /// The entry being written.
        name: String,
        /// The numbers, and the largest entries that could not be evicted.
        shortfall: Box<Shortfall>,
    },
    /// The name collides with an existing file or directory.
    #[error("{path}: array name {name:?} collides with an existing file or directory; choose another name")]
    NameConflict {
        /// The colliding path.
        path: PathBuf,
        /// The name.
        name: String,
    },
    /// A batch publish names an entry twice (SPEC [W11]); refused before anything of that entry
    /// is written.
    #[error("array {name:?} is already in this batch; a batch publishes each name once: write it once, or publish the first batch before writing it again")]
    DuplicateInBatch {
        /// The name.
        name: String,
    },
    /// No array of that name (remove).
    #[error("{container}: no array named {name:?}")]
    NotFound {
        /// The container directory.
        container: PathBuf,
        /// The name.
        name: String,
    },
    /// A writer made before `fork()` used in the child (SPEC [P2]).
    #[error("the writer of {name:?} was created by the parent process before fork(); create it in the process that publishes it")]
    ForkedWriter {
        /// The array name.
        name: String,
    },
    /// `release` of an array this process holds no reference on.
    #[error("array {name:?}: this process holds no reference to release")]
    NotHeld {
        /// The name.
        name: String,
    },
    /// The container was opened read-only.
    #[error("{container} was opened read-only; open it read-write to change it")]
    ReadOnly {
        /// The container directory.
        container: PathBuf,
    },
    /// A file system call failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The catalog failed.
    #[error(transparent)]
    Catalog(CatalogError),
    /// A path under the container crosses a link, a nested container or a non-regular file, is
    /// too long, or the container was removed (SPEC [N7], [N9], [N10], [C4], [C5]).
    #[error(transparent)]
    Path(#[from] crate::error::PathError),
}

fn capacity_detail(s: &Shortfall) -> String {
    let mut out = format!("{} more bytes needed", s.needed);
    if let Some(c) = s.limits.capacity {
        out.push_str(&format!(
            ", capacity {c}, {} in use (of which {} reserved by writes in flight), {} evictable",
            s.used, s.reserved, s.evictable
        ));
    }
    if let (Some(m), Some(f)) = (s.limits.min_free, s.fs_free) {
        out.push_str(&format!(
            ", {f} free on the file system, {m} to be kept free"
        ));
    }
    let shown: Vec<String> = s
        .largest
        .iter()
        .take(5)
        .map(|o| {
            let who = if o.holders.is_empty() {
                o.lifecycle.name().to_string()
            } else {
                let pids: Vec<String> = o
                    .holders
                    .iter()
                    .map(|h| match h.pid {
                        Some(p) => format!("pid {p}"),
                        None => format!("session {}", h.session),
                    })
                    .collect();
                format!("{}, held by {}", o.lifecycle.name(), pids.join(", "))
            };
            format!("{:?} {} bytes ({who})", o.name, o.bytes)
        })
        .collect();
    if !shown.is_empty() {
        out.push_str(&format!(
            "; largest that cannot be evicted: {}",
            shown.join("; ")
        ));
    }
    out
}

fn no_space_need(bytes: u64) -> String {
    if bytes == 0 {
        " on its file system".to_string()
    } else {
        format!(" to reserve {bytes} bytes")
    }
}

fn no_space_hint(bytes: u64) -> &'static str {
    if bytes == 0 {
        ""
    } else {
        ", or create with holes (risk: SIGBUS while filling if the file system fills up)"
    }
}

/// Whether an OS error means the file system (or the process's file size limit) has no room.
pub(crate) fn is_no_space(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG)
    )
}

/// A catalog that ran out of space is a [`WriteError::NoSpace`] naming the catalog file (SPEC
/// 7.2: every out-of-space failure before the commit point is `NoSpace`).
impl From<CatalogError> for WriteError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::NoSpace { path, .. } => WriteError::NoSpace { path, bytes: 0 },
            e => WriteError::Catalog(e),
        }
    }
}

/// Open or load ([`crate::Container::open_or_load`], SPEC 9.6) failed before or after the loader
/// ran (the loader's own error is returned as it is).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The name is invalid.
    #[error(transparent)]
    Name(#[from] NameError),
    /// Opening the entry failed (other than its absence).
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The load lock could not be opened or taken.
    #[error(transparent)]
    Path(#[from] PathError),
    /// A read-only handle cannot load (it cannot publish).
    #[error("{container}: cannot load {name:?} through a read-only handle; open the container read-write to load it")]
    ReadOnly {
        /// The container directory.
        container: PathBuf,
        /// The name.
        name: String,
    },
    /// The caller's timeout passed while another process held the load lock.
    #[error("{path}: gave up after {waited:?} waiting for {name:?}, which {loader} holds the load lock of; wait longer, or look at that process")]
    Timeout {
        /// The name.
        name: String,
        /// The load lock file.
        path: PathBuf,
        /// How long the caller waited.
        waited: std::time::Duration,
        /// Who held the lock, as its line says ("process 123 (session …) loading \"x\"", or
        /// "an unknown process").
        loader: String,
    },
    /// The loader returned success but the name is not live: it published nothing, or another
    /// process removed it between the publish and the open (as a plain open after a remove
    /// finds nothing).
    #[error("{container}: the loader of {name:?} returned, but {name:?} is not live: the loader must publish the name it is given (write_dense, write_sparse, write_table, or a writer's publish), or another process removed it right after")]
    NotPublished {
        /// The container directory.
        container: PathBuf,
        /// The name.
        name: String,
    },
}

impl LoadError {
    /// What to do about it, if anything.
    pub fn remedy(&self) -> Option<Remedy> {
        match self {
            LoadError::Open(e) => e.remedy(),
            LoadError::ReadOnly { .. } => None,
            _ => None,
        }
    }
}

/// Builds a closure that wraps an `io::Error` with a path and operation, for any of the enums above.
pub(crate) fn io_at<E>(
    path: impl Into<PathBuf>,
    op: &'static str,
    make: fn(PathBuf, &'static str, io::Error) -> E,
) -> impl FnOnce(io::Error) -> E {
    let path = path.into();
    move |source| make(path, op, source)
}

/// A file system call failed: the one shape of every I/O error of the engine (the `Io` variant
/// of each error enum holds one).
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot {op}: {source}")]
pub struct IoError {
    /// The path.
    pub path: PathBuf,
    /// What was attempted ("open", "map", "rename staged file into place", …).
    pub op: &'static str,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

impl IoError {
    /// An I/O error at `path` while doing `op`.
    pub fn new(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> IoError {
        IoError {
            path: path.into(),
            op,
            source,
        }
    }
}

impl ContainerError {
    pub(crate) fn io(path: PathBuf, op: &'static str, source: io::Error) -> Self {
        ContainerError::Io(IoError { path, op, source })
    }
}

impl OpenError {
    pub(crate) fn io(path: PathBuf, op: &'static str, source: io::Error) -> Self {
        OpenError::Io(IoError { path, op, source })
    }
}

impl PathError {
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Self {
        PathError::Io(IoError::new(path, op, source))
    }
}

impl WriteError {
    /// A failed file system call; out of space (ENOSPC, EDQUOT, EFBIG) is [`WriteError::NoSpace`].
    pub(crate) fn io(path: PathBuf, op: &'static str, source: io::Error) -> Self {
        if is_no_space(&source) {
            return WriteError::NoSpace { path, bytes: 0 };
        }
        WriteError::Io(IoError { path, op, source })
    }
}

/// A path under a container that cannot be used as it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// A component of the path is a symbolic link.
    #[error("{path}: is a symbolic link; dafstore never follows a link inside a container (see {SPEC} [N7]); replace the link by the directory or file itself (or remove it)")]
    Link {
        /// The link.
        path: PathBuf,
    },
    /// An entry is not of the type the path needs (a FIFO where a file should be, a file where a
    /// directory should be, …).
    #[error("{path}: is a {found}, not a {expected}; array files and their directories must be regular files and directories (see {SPEC} [N9]); remove or rename it")]
    WrongType {
        /// The entry.
        path: PathBuf,
        /// What it is.
        found: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// A directory on the path holds `.dafstore`: it is (or was) another container.
    #[error("{path} holds another container (.dafstore); containers never nest (see {SPEC} [C4]); use it as a container of its own, or move it out of this one")]
    NestedContainer {
        /// The directory holding `.dafstore`.
        path: PathBuf,
    },
    /// A container directory is inside another container, or holds one below it.
    #[error("{path}: cannot create a container here: {other} is a container and containers never nest (see {SPEC} [C4]); choose a directory outside it")]
    WouldNest {
        /// The directory to be made a container.
        path: PathBuf,
        /// The existing container (an ancestor or a descendant).
        other: PathBuf,
    },
    /// The container's reserved directory is gone.
    #[error("{path} is missing: the container was removed while this process had it open (see {SPEC} [C5]); open or create the container again")]
    ContainerRemoved {
        /// The missing `.dafstore` directory (or the part of it that is missing).
        path: PathBuf,
    },
    /// The path of a file of the array would exceed `PATH_MAX`.
    #[error("{path}: the path of {len} bytes is longer than the {max} bytes Linux allows (see {SPEC} [N10]); nothing was written; choose a shorter name, or a container with a shorter path")]
    TooLong {
        /// The longest file path the name would produce.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
        /// The longest allowed (`PATH_MAX` - 1).
        max: usize,
    },
    /// A file system call failed.
    #[error(transparent)]
    Io(#[from] IoError),
}

/// What to do about an error. The engine's messages name it in neutral words ("repair the
/// container (fsck with repair)"); each front end (this API, dafctl, the Python package) words it
/// as its own call: [`Remedy::api`] here, `dafctl` and Python in theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Remedy {
    /// Check the container for damage.
    Check,
    /// Repair the container; rebuilds a missing or damaged catalog from the array files.
    Repair,
    /// Free space on the container's file system (remove arrays, or other files).
    FreeSpace,
    /// List the arrays to see which exist.
    List,
    /// Make the directory a container: create one, or adopt a daf directory.
    CreateOrAdopt,
    /// Open the container read-only (or get write access).
    OpenReadOnly,
}

impl Remedy {
    /// The remedy as calls of this crate's API.
    pub fn api(self) -> &'static str {
        match self {
            Remedy::Check => "check it with `Container::fsck_dir`",
            Remedy::Repair => {
                "repair it with `Container::fsck_dir` and `FsckOptions { repair: true, .. }` (a missing or damaged catalog: `Container::rebuild_catalog`)"
            }
            Remedy::FreeSpace => "free space with `Container::remove`",
            Remedy::List => "`Container::ls` lists the arrays",
            Remedy::CreateOrAdopt => "`Container::create` makes one, `Container::adopt` adopts a daf directory",
            Remedy::OpenReadOnly => "open it with `Container::options().read_only(true)`",
        }
    }
}

impl CatalogError {
    /// What to do about it, if anything.
    pub fn remedy(&self) -> Option<Remedy> {
        Some(match self {
            CatalogError::Sqlite { .. } => Remedy::Check,
            CatalogError::NoSpace { .. } => Remedy::FreeSpace,
            CatalogError::CorruptRow { .. }
            | CatalogError::Missing { .. }
            | CatalogError::Damaged { .. } => Remedy::Repair,
            CatalogError::NotWritable { .. } => Remedy::OpenReadOnly,
            _ => return None,
        })
    }
}

impl ContainerError {
    /// What to do about it, if anything.
    pub fn remedy(&self) -> Option<Remedy> {
        match self {
            ContainerError::NotAContainer { .. } => Some(Remedy::CreateOrAdopt),
            ContainerError::LiveSessions { .. } => Some(Remedy::Repair),
            ContainerError::Catalog(e) => e.remedy(),
            _ => None,
        }
    }
}

impl OpenError {
    /// What to do about it, if anything.
    pub fn remedy(&self) -> Option<Remedy> {
        match self {
            OpenError::NotFound { .. } => Some(Remedy::List),
            OpenError::SizeMismatch { .. }
            | OpenError::InvalidTable { .. }
            | OpenError::TableMismatch { .. } => Some(Remedy::Check),
            OpenError::Catalog(e) => e.remedy(),
            OpenError::Recovery { source, .. } => source.remedy(),
            _ => None,
        }
    }
}

impl WriteError {
    /// What to do about it, if anything.
    pub fn remedy(&self) -> Option<Remedy> {
        match self {
            WriteError::NoSpace { .. } => Some(Remedy::FreeSpace),
            WriteError::NotFound { .. } => Some(Remedy::List),
            WriteError::Catalog(e) => e.remedy(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_occupants_holders_serialize_as_session_and_pid_objects() {
        let o = Occupant {
            name: "x".into(),
            bytes: 8,
            lifecycle: crate::format::lifecycle::Lifecycle::Cached,
            holders: vec![
                HoldingSession {
                    session: "s1".into(),
                    pid: Some(7),
                },
                HoldingSession {
                    session: "s2".into(),
                    pid: None,
                },
            ],
        };
        assert_eq!(
            serde_json::to_value(&o).unwrap(),
            serde_json::json!({"name": "x", "bytes": 8, "lifecycle": "cached", "holders": [
                {"session": "s1", "pid": 7}, {"session": "s2", "pid": null}]})
        );
    }
}
