//! The SQLite catalog (SPEC 9.1): one row per array with its validated metadata, file sizes,
//! checksums and state, plus sessions and in-place writers. Every read-modify-write runs in a
//! short `BEGIN IMMEDIATE` transaction with a busy timeout and a bounded retry loop, so
//! concurrent processes never lose an update and never see SQLITE_BUSY.
//! This module owns all SQL; nothing else in the workspace writes SQL. Here: the connection, its
//! transactions and the queries of publish, state, sessions and in-place writers; `sql` the
//! SQLite errors and retries, `schema` the schema and its version, `rows` the rows and their
//! columns, `holders` holding and removal, `budget` the cache, `batch` a batch publish.

use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use rusqlite::{
    params, Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};

use crate::error::CatalogError;
use crate::failpoint::hit_sql;
use crate::format::meta::ArrayMeta;

mod batch;
mod budget;
mod holders;
mod rows;
mod schema;
mod sql;
pub use crate::format::lifecycle::Lifecycle;
pub(crate) use batch::IntentRow;
pub use budget::Usage;
pub(crate) use budget::{HeldByKey, Holds, Reserve};
pub use holders::HolderRow;
pub(crate) use holders::{Reaped, RemoveStart};
use rows::{all_raw, get_raw, meta_columns, shape_json, table_json};
pub use rows::{ArrayInfo, ArrayState, FileRecord};
pub use schema::SCHEMA_VERSION;
use schema::{
    check_schema_version, ARRAYS_INDEXES, ARRAYS_INDEX_NAMES, ARRAYS_V1_COLUMNS, ARRAYS_V2,
    ARRAYS_V3_ALL_COLUMNS, ARRAYS_V3_COLUMNS, IN_LIST, SCHEMA, SCHEMA_V3, SCHEMA_V4,
};
pub(crate) use sql::now_ms;
use sql::{busy_retry, container_of, damaged, is_busy, is_full, sqlite_error, to_i64, uri_escape};

/// How to open the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Create the schema (new container).
    Create,
    /// Read and write.
    ReadWrite,
    /// Read only; other processes may write.
    ReadOnly,
    /// Read only on media nobody can write (SQLite `immutable=1`).
    Immutable,
}

/// A connection to a container's catalog.
pub struct Catalog {
    /// `None` only while being dropped in a forked child (see `Drop`).
    conn: Option<Connection>,
    path: PathBuf,
    pid: u32,
    /// Whether `synchronous=FULL` is set (publish, remove) or NORMAL (references).
    sync_full: bool,
    /// Why there is no connection (a forked child that could not start its session).
    unusable: Option<String>,
    /// For an `immutable=1` read-only connection: the catalog file as it was when opened (SPEC
    /// [Q1]); every read is checked against it.
    snapshot: Option<Fingerprint>,
    /// The schema version found (read-only connections read version 1 as it is).
    schema: i64,
    /// Whether this connection migrated the catalog to [`SCHEMA_VERSION`] (the caller then
    /// stamps the lock stripes, [W6]).
    migrated: bool,
}

/// The catalog file's identity and last change, taken only while its write-ahead log is empty
/// or absent: then the file alone is the committed state (SPEC [Q1]). Any writer appends to the
/// log before anything else, and a checkpoint changes the file's times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

fn fingerprint(path: &Path) -> Option<Fingerprint> {
    use std::os::unix::fs::MetadataExt;
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    match std::fs::metadata(&wal) {
        Ok(m) if m.len() > 0 => return None,
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(_) => return None,
    }
    let m = std::fs::metadata(path).ok()?;
    Some(Fingerprint {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
    })
}

impl Drop for Catalog {
    fn drop(&mut self) {
        // A connection must not cross fork() (SQLite's rule): neither used nor closed in the
        // child (closing could checkpoint). Its files are discarded instead (SPEC [P2]).
        self.discard_inherited();
    }
}

/// Rows a listing could not interpret: (name, why).
pub(crate) type CorruptRows = Vec<(String, CatalogError)>;

impl Catalog {
    pub(crate) fn open(path: &Path, access: Access) -> Result<Catalog, CatalogError> {
        if access != Access::Create {
            // A missing or empty file would be created (or initialised) by SQLite as an empty
            // catalog, silently hiding every array: it is a catalog to rebuild (SPEC [Q2]).
            match std::fs::metadata(path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(CatalogError::Missing {
                        path: path.to_path_buf(),
                        container: container_of(path),
                    })
                }
                Ok(m) if m.len() == 0 => {
                    return Err(damaged(path, "the file is empty".into()));
                }
                _ => {}
            }
        }
        match access {
            Access::ReadOnly => Catalog::open_read_only(path),
            Access::ReadWrite => {
                // On a read-only file system or without write permission, SQLite would open the
                // database read-only without a word and fail at the first write with "attempt to
                // write a readonly database": say what is wrong instead.
                let dir = path.parent().unwrap_or(Path::new("."));
                for p in [dir, path] {
                    crate::fs::sys::write_access(p).map_err(|source| {
                        CatalogError::NotWritable {
                            path: path.to_path_buf(),
                            source,
                        }
                    })?;
                }
                Catalog::open_conn(path, access)
            }
            _ => Catalog::open_conn(path, access),
        }
    }

    /// A read-only open that sees committed state (SPEC [Q1]): a normal read-only connection
    /// (SQLite reads the write-ahead log through `-shm`, read-only if need be); if SQLite cannot
    /// set that up (it would have to create or size `-shm`: no write permission, full file
    /// system), an `immutable=1` connection, valid only while the log is empty and the database
    /// file unchanged, checked around every read.
    fn open_read_only(path: &Path) -> Result<Catalog, CatalogError> {
        let err = match Catalog::open_conn(path, Access::ReadOnly) {
            Ok(c) => return Ok(c),
            Err(e @ (CatalogError::SchemaTooNew { .. } | CatalogError::Damaged { .. })) => {
                return Err(e)
            }
            Err(e) => e,
        };
        let unreadable = |detail: String| CatalogError::Unreadable {
            path: path.to_path_buf(),
            detail,
        };
        let Some(fp) = fingerprint(path) else {
            return Err(unreadable(err.to_string()));
        };
        let mut cat = Catalog::open_conn(path, Access::Immutable)
            .map_err(|e| unreadable(format!("{err}; then, immutable: {e}")))?;
        cat.snapshot = Some(fp);
        Ok(cat)
    }

    fn open_conn(path: &Path, access: Access) -> Result<Catalog, CatalogError> {
        let err = |context: &str| {
            let path = path.to_path_buf();
            let context = context.to_string();
            move |source| sqlite_error(&path, &context, source)
        };
        let flags = match access {
            Access::Create => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            Access::ReadWrite => OpenFlags::SQLITE_OPEN_READ_WRITE,
            Access::ReadOnly | Access::Immutable => OpenFlags::SQLITE_OPEN_READ_ONLY,
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = if access == Access::Immutable {
            let uri = format!("file:{}?immutable=1", uri_escape(path));
            Connection::open_with_flags(uri, flags)
        } else {
            Connection::open_with_flags(path, flags)
        }
        .map_err(err("open"))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(err("set busy timeout"))?;
        // Room for every statement the engine prepares once per connection (about 40; rusqlite
        // keeps 16 by default, least recently used out): a workload mixing publishes, opens,
        // removes and gc would otherwise parse some of them again and again.
        conn.set_prepared_statement_cache_capacity(64);
        // The version read here is the version, unless the catalog is created or migrated
        // below: read once (each statement is parsed again on every fresh connection).
        let mut opened = None;
        if access != Access::Create {
            // Before anything writes: a database that is not a dafstore catalog stays untouched.
            let version: i64 =
                busy_retry(|| conn.query_row("PRAGMA user_version", [], |r| r.get(0)))
                    .map_err(err("read schema version"))?;
            check_schema_version(path, version)?;
            opened = Some(version);
        }
        if matches!(access, Access::Create | Access::ReadWrite) {
            if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
                return Err(CatalogError::NotWritable {
                    path: path.to_path_buf(),
                    source: std::io::Error::from_raw_os_error(libc::EACCES),
                });
            }
            busy_retry(|| {
                conn.execute_batch(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON",
                )
            })
            .map_err(err("enable WAL, synchronous and foreign keys"))?;
        } else {
            conn.pragma_update(None, "foreign_keys", "ON")
                .map_err(err("enable foreign keys"))?;
        }
        // Stable plans: without it, a statement whose plan could depend on a bound value (a
        // partial index, STAT4) is prepared again at every new binding; the open path's row
        // lookup paid a full re-prepare per call. Every partial index's condition is a literal in
        // the queries that use it.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )
        .map_err(err("enable the query planner stability guarantee"))?;
        let mut cat = Catalog {
            conn: Some(conn),
            path: path.to_path_buf(),
            pid: std::process::id(),
            sync_full: true,
            unusable: None,
            snapshot: None,
            schema: SCHEMA_VERSION,
            migrated: false,
        };
        if access == Access::Create {
            cat.immediate("create schema", |tx| {
                let v: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
                if v == 0 {
                    tx.execute_batch(&ARRAYS_V2.replace("{name}", "arrays"))?;
                    tx.execute_batch(&ARRAYS_V3_COLUMNS.replace("{name}", "arrays"))?;
                    tx.execute_batch(SCHEMA)?;
                    tx.execute_batch(SCHEMA_V3)?;
                    tx.execute_batch(ARRAYS_INDEXES)?;
                    tx.execute_batch(SCHEMA_V4)?;
                    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
                }
                Ok(())
            })?;
        }
        let found = match opened {
            // Another process may have migrated an older catalog meanwhile: read it again.
            Some(version) if version >= SCHEMA_VERSION => version,
            _ => {
                let conn = cat.conn()?;
                busy_retry(|| conn.query_row("PRAGMA user_version", [], |r| r.get(0)))
                    .map_err(err("read schema version"))?
            }
        };
        cat.schema = found;
        if found < SCHEMA_VERSION && matches!(access, Access::Create | Access::ReadWrite) {
            cat.migrate()?;
        }
        if access == Access::Create {
            let conn = cat.conn()?;
            let version: i64 =
                busy_retry(|| conn.query_row("PRAGMA user_version", [], |r| r.get(0)))
                    .map_err(err("read schema version"))?;
            check_schema_version(path, version)?;
        }
        if matches!(access, Access::Create | Access::ReadWrite) {
            // Best effort: without the rewrite a publish builds temporary b-trees, without the
            // indexes gc's queries scan every row, nothing worse; on a full file system this
            // must not fail the open.
            let _ = cat.ensure_schema_form();
        }
        Ok(cat)
    }

    /// Brings `arrays` to this engine's form, best effort, at a read-write open: its constraints
    /// without `IN` lists ([`IN_LIST`]: rewritten in one transaction the first time), and the
    /// partial indexes of the rows that are not `live` and of the held scratch rows (made if
    /// missing): gc at every read-write open lists unfinished, deferred and due rows, which would
    /// otherwise scan every row. Older engines of schema 2 maintain both like any table and index.
    fn ensure_schema_form(&mut self) -> Result<(), CatalogError> {
        // One read of the schema (its SQL and its indexes) per read-write open.
        let (table_sql, names) = self.read_one("look up the catalog's schema", |tx| {
            let mut sql = None;
            let mut names = Vec::new();
            let mut stmt = tx.prepare_cached(
                "SELECT type = 'table', name, sql FROM sqlite_master WHERE tbl_name = 'arrays'",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                if r.get(0)? {
                    sql = r.get::<_, Option<String>>(2)?;
                } else {
                    names.push(r.get::<_, String>(1)?);
                }
            }
            Ok((sql, names))
        })?;
        // Rewritten, the table has its indexes; otherwise (not rewritten: busy, unknown columns,
        // a failure) they are made as for any catalog.
        if table_sql.is_some_and(|sql| sql.contains(IN_LIST))
            && self.rewrite_constraints().unwrap_or(false)
        {
            return Ok(());
        }
        let present = ARRAYS_INDEX_NAMES
            .iter()
            .all(|want| names.iter().any(|n| n == want));
        if !present {
            self.immediate_growing("create the catalog's indexes", |tx| {
                tx.execute_batch(ARRAYS_INDEXES)
            })?;
        }
        Ok(())
    }

    /// Rebuilds `arrays` with the constraints of [`ARRAYS_V2`] (the same meaning, without `IN`
    /// lists): whether it did. On a connection of its own, so this one's foreign keys are never
    /// turned off, in one `BEGIN IMMEDIATE` transaction tried once (another process writing: a
    /// later open does it). See [`rewrite_tx`].
    fn rewrite_constraints(&self) -> Result<bool, CatalogError> {
        let path = self.path.clone();
        let err = |e| sqlite_error(&path, "rewrite the catalog's constraints", e);
        let mut conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(err)?;
        (|| {
            conn.busy_timeout(Duration::from_millis(100))?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.pragma_update(None, "foreign_keys", "OFF")?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let done = rewrite_tx(&tx)?;
            tx.commit()?;
            Ok(done)
        })()
        .map_err(err)
    }

    /// Migrates an older catalog to the current schema in one transaction: from version 1,
    /// `arrays` is rebuilt ([`rebuild_arrays`], foreign keys off so `array_files` rows are kept)
    /// with the new `kind` constraint and the columns of versions 2 and 3; from version 2 the
    /// cache's columns are added; then the tables of version 3 and the indexes.
    fn migrate(&mut self) -> Result<(), CatalogError> {
        let path = self.path.clone();
        // Schema 3 → 4 moves references out of the catalog: a live process of an older engine
        // would keep recording them in the dropped table, unseen ([P3]); schema 4 → 5 makes
        // writers stamp the lock stripes, which an older engine would not do, leaving other
        // processes' kept rows stale ([W6]). Refuse while one lives.
        if self.schema < SCHEMA_VERSION {
            let sessions = self.sessions()?;
            let root = path
                .parent()
                .and_then(Path::parent)
                .unwrap_or(Path::new("."));
            if let Ok(dir) = crate::fs::beneath::reserved(root, "sessions") {
                // The registered sessions, and every session file: a process of an older engine
                // locks its file before it registers, so one between the two is seen too (one
                // still between its version check and its session file is not: a window of a
                // few system calls that this side cannot close).
                let mut ids: Vec<(String, String, u32)> = sessions
                    .into_iter()
                    .map(|(id, pid)| (format!("{id}.lock"), id, pid))
                    .collect();
                for leaf in dir.names().unwrap_or_default() {
                    let leaf = leaf.to_string_lossy().into_owned();
                    let id = leaf
                        .strip_suffix(".lock")
                        .or_else(|| leaf.strip_prefix(".tmp-"))
                        .filter(|id| crate::format::is_session_id(id))
                        .map(str::to_string);
                    if let Some(id) = id {
                        if !ids.iter().any(|(l, _, _)| *l == leaf) {
                            ids.push((leaf, id, 0));
                        }
                    }
                }
                for (leaf, id, pid) in ids {
                    let leaf = std::ffi::OsString::from(leaf);
                    if let Ok(Some((f, _))) = dir.open_file(&leaf, false) {
                        if matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)) {
                            return Err(CatalogError::InUseByOlderEngine {
                                path,
                                found: self.schema,
                                supported: SCHEMA_VERSION,
                                session: id,
                                pid: i64::from(pid),
                            });
                        }
                    }
                }
            }
        }
        let fk = |conn: &Connection, on: bool| {
            conn.pragma_update(None, "foreign_keys", if on { "ON" } else { "OFF" })
                .map_err(|e| sqlite_error(&path, "migrate the catalog", e))
        };
        fk(self.conn()?, false)?;
        let r = self.immediate("migrate the catalog", |tx| {
            let v: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if v >= SCHEMA_VERSION {
                return Ok(());
            }
            if v == 1 {
                // Rebuilt with the columns of schemas 2 and 3 (`tab` NULL, `cached` 0,
                // `released_at` NULL, as adding them would leave them).
                rebuild_arrays(tx, ARRAYS_V1_COLUMNS)?;
            } else if v == 2 {
                tx.execute_batch(&ARRAYS_V3_COLUMNS.replace("{name}", "arrays"))?;
            }
            if v < 3 {
                tx.execute_batch(SCHEMA_V3)?;
            }
            // The indexes of a rebuilt (version 1) or cache-less (version 2) `arrays`.
            tx.execute_batch(ARRAYS_INDEXES)?;
            tx.execute_batch(SCHEMA_V4)?;
            let broken: Option<String> = tx
                .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
                .optional()?;
            if broken.is_some() {
                return Err(rusqlite::Error::InvalidQuery);
            }
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            Ok(())
        });
        let on = fk(self.conn()?, true);
        r?;
        on?;
        self.schema = SCHEMA_VERSION;
        self.migrated = true;
        Ok(())
    }

    /// A catalog without a connection: every use returns `why` (SPEC [P2]).
    pub(crate) fn unusable(path: &Path, why: String) -> Catalog {
        Catalog {
            conn: None,
            path: path.to_path_buf(),
            pid: std::process::id(),
            sync_full: true,
            unusable: Some(why),
            snapshot: None,
            schema: SCHEMA_VERSION,
            migrated: false,
        }
    }

    /// In a process forked from the one that opened this connection: drops it without SQLite's
    /// close (no checkpoint, no unlock of locks the child does not hold), closing its database
    /// and log files at the VFS level so that a new connection of this process does not share
    /// their lock bookkeeping (SQLite tracks POSIX locks per process and file; SPEC [P2]).
    pub(crate) fn discard_inherited(&mut self) {
        if self.pid != std::process::id() {
            if let Some(conn) = self.conn.take() {
                crate::fs::sys::discard_sqlite_connection(conn);
            }
        }
    }

    /// Replaces the reason this catalog has no connection.
    pub(crate) fn set_unusable(&mut self, why: String) {
        if self.conn.is_none() {
            self.unusable = Some(why);
        }
    }

    /// Whether this connection migrated the catalog (from an older schema) when it opened.
    pub(crate) fn migrated(&self) -> bool {
        self.migrated
    }

    /// Whether rows may be kept against the stripes' change stamps ([W6]): schema 5 or newer,
    /// whose writers all stamp.
    pub(crate) fn stamped(&self) -> bool {
        self.schema >= 5
    }

    /// `Ok` if this catalog has a connection.
    pub(crate) fn usable(&mut self) -> Result<(), CatalogError> {
        self.conn().map(|_| ())
    }

    /// [`Catalog::open`] read-write on a file system that may be full: opening in WAL mode may
    /// have to create the WAL index (`-shm`), which needs space. When it fails with an I/O or
    /// disk-full error while the file system has less free space than the reserve's size, the
    /// space reserve is given up and the open retried once (SPEC [Q3]); if it still fails for
    /// lack of space, the error is [`CatalogError::NoSpace`].
    pub(crate) fn open_read_write(path: &Path) -> Result<Catalog, CatalogError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let full = || {
            crate::fs::sys::fs_space(dir)
                .is_ok_and(|(free, total)| free < crate::fs::reserve::size_for(total))
        };
        let space_error = |e: &CatalogError| {
            matches!(e, CatalogError::Sqlite { source, .. }
                if matches!(source.sqlite_error_code(),
                    Some(ErrorCode::DiskFull | ErrorCode::SystemIoFailure)))
        };
        match Catalog::open(path, Access::ReadWrite) {
            Err(e) if space_error(&e) && full() => {
                if crate::fs::reserve::release(dir) {
                    if let r @ Ok(_) = Catalog::open(path, Access::ReadWrite) {
                        return r;
                    }
                }
                match e {
                    CatalogError::Sqlite {
                        path,
                        context,
                        source,
                    } => Err(CatalogError::NoSpace {
                        path,
                        context,
                        source,
                    }),
                    e => Err(e),
                }
            }
            r => r,
        }
    }

    /// Replaces an `immutable=1` connection whose snapshot went out of date (SPEC [Q1]).
    fn reopen_read_only(&mut self) -> Result<(), CatalogError> {
        let mut fresh = Catalog::open_read_only(&self.path)?;
        self.conn = fresh.conn.take();
        self.snapshot = fresh.snapshot;
        self.schema = fresh.schema;
        Ok(())
    }

    /// Whether the `immutable=1` snapshot (if this is one) still is the committed state.
    fn snapshot_current(&self) -> bool {
        self.snapshot
            .is_none_or(|fp| fingerprint(&self.path) == Some(fp))
    }

    fn conn(&mut self) -> Result<&mut Connection, CatalogError> {
        let path = self.path.clone();
        if let Some(why) = &self.unusable {
            return Err(CatalogError::ForkedSession {
                path,
                detail: why.clone(),
            });
        }
        self.conn.as_mut().ok_or(CatalogError::Sqlite {
            path,
            context: "use the catalog".into(),
            source: rusqlite::Error::InvalidQuery,
        })
    }

    /// `synchronous=FULL` for publishes and removes (survive power loss), NORMAL for references
    /// (SPEC 9.1).
    pub(crate) fn set_sync(&mut self, full: bool) -> Result<(), CatalogError> {
        if self.sync_full != full {
            let v = if full { "FULL" } else { "NORMAL" };
            let path = self.path.clone();
            self.conn()?
                .pragma_update(None, "synchronous", v)
                .map_err(|source| CatalogError::Sqlite {
                    path,
                    context: "set synchronous".into(),
                    source,
                })?;
            self.sync_full = full;
        }
        Ok(())
    }

    fn sqlite_err(&self, context: &str, source: rusqlite::Error) -> CatalogError {
        sqlite_error(&self.path, context, source)
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction, retrying when the database is busy. When the
    /// file system is full, the space reserve is given up and the transaction retried once (SPEC
    /// [Q3]): this is for transactions that free space or finish committed work.
    pub(crate) fn immediate<T>(
        &mut self,
        context: &str,
        f: impl FnMut(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, CatalogError> {
        self.immediate_with(context, true, f)
    }

    /// [`Catalog::immediate`] without the space reserve: for transactions that grow the container
    /// (a publish intent), which fail with [`CatalogError::NoSpace`] on a full file system.
    pub(crate) fn immediate_growing<T>(
        &mut self,
        context: &str,
        f: impl FnMut(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, CatalogError> {
        self.immediate_with(context, false, f)
    }

    fn immediate_with<T>(
        &mut self,
        context: &str,
        use_reserve: bool,
        mut f: impl FnMut(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, CatalogError> {
        let mut attempt = 0u32;
        let mut reserve_used = false;
        loop {
            let conn = self.conn()?;
            let result = (|| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let v = f(&tx)?;
                tx.commit()?;
                Ok(v)
            })();
            let errno = if result.is_err() {
                crate::fs::sys::sqlite_system_errno(conn)
            } else {
                0
            };
            match result {
                Ok(v) => return Ok(v),
                Err(e) if is_busy(&e) && attempt < 100 => {
                    attempt += 1;
                    sleep(Duration::from_millis(u64::from(attempt.min(20))));
                }
                Err(e) if is_full(&e, errno) => {
                    if use_reserve && !reserve_used && self.release_reserve() {
                        reserve_used = true;
                        continue;
                    }
                    return Err(self.no_space_err(context, e));
                }
                Err(e) => return Err(self.sqlite_err(context, e)),
            }
        }
    }

    /// Deletes the space reserve next to the catalog ([Q3]); whether there was one.
    fn release_reserve(&self) -> bool {
        self.path.parent().is_some_and(crate::fs::reserve::release)
    }

    fn no_space_err(&self, context: &str, source: rusqlite::Error) -> CatalogError {
        CatalogError::NoSpace {
            path: self.path.clone(),
            context: context.to_string(),
            source,
        }
    }

    /// Runs read-only `f` in a deferred transaction (a consistent snapshot), retrying when busy.
    pub(crate) fn read<T>(
        &mut self,
        context: &str,
        f: impl FnMut(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, CatalogError> {
        self.read_with(context, true, f)
    }

    /// [`Catalog::read`] of one statement, which SQLite runs in its own read transaction (one
    /// snapshot): no `BEGIN` and `COMMIT` around it.
    pub(crate) fn read_one<T>(
        &mut self,
        context: &str,
        f: impl FnMut(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, CatalogError> {
        self.read_with(context, false, f)
    }

    fn read_with<T>(
        &mut self,
        context: &str,
        in_tx: bool,
        mut f: impl FnMut(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, CatalogError> {
        let mut attempt = 0u32;
        let mut reserve_used = false;
        loop {
            if !self.snapshot_current() {
                self.reopen_read_only()?;
            }
            let conn = self.conn()?;
            let result = if in_tx {
                (|| {
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
                    let v = f(&tx)?;
                    tx.finish()?;
                    Ok(v)
                })()
            } else {
                f(conn)
            };
            let errno = if result.is_err() {
                crate::fs::sys::sqlite_system_errno(conn)
            } else {
                0
            };
            match result {
                // What an immutable connection read is committed state only if nothing changed
                // meanwhile (SPEC [Q1]); otherwise read again.
                Ok(_) if !self.snapshot_current() && attempt < 100 => {
                    attempt += 1;
                }
                Ok(_) if !self.snapshot_current() => {
                    return Err(CatalogError::Unreadable {
                        path: self.path.clone(),
                        detail: "the catalog kept changing under an immutable read".into(),
                    })
                }
                Ok(v) => return Ok(v),
                Err(e) if is_busy(&e) && attempt < 100 => {
                    attempt += 1;
                    sleep(Duration::from_millis(u64::from(attempt.min(20))));
                }
                // A read in WAL mode may need to grow the shared-memory index file.
                Err(e) if is_full(&e, errno) => {
                    if !reserve_used && self.release_reserve() {
                        reserve_used = true;
                        continue;
                    }
                    return Err(self.no_space_err(context, e));
                }
                Err(e) => return Err(self.sqlite_err(context, e)),
            }
        }
    }

    /// The row of `name`, if any.
    pub fn get(&mut self, name: &str) -> Result<Option<ArrayInfo>, CatalogError> {
        let path = self.path.clone();
        let schema = self.schema;
        let raw = self.read_one("read array", |conn| get_raw(conn, name, schema))?;
        raw.map(|r| r.into_record(&path)).transpose()
    }

    /// Every row, sorted by name.
    pub fn list(&mut self) -> Result<Vec<ArrayInfo>, CatalogError> {
        let (records, corrupt) = self.list_lenient()?;
        match corrupt.into_iter().next() {
            Some((_, e)) => Err(e),
            None => Ok(records),
        }
    }

    /// The fingerprint (device, inode, size, change time) of table `name`'s file recorded when
    /// its generation `generation` was fully validated ([B8]), if any. The `validated` table is
    /// optional (made by the first record; older engines ignore it).
    pub(crate) fn validated(
        &mut self,
        name: &str,
        generation: u64,
    ) -> Result<Option<String>, CatalogError> {
        let generation = i64::try_from(generation).unwrap_or(i64::MAX);
        self.read("look up a table's validation", |tx| {
            let exists: bool = tx
                .prepare_cached(
                    "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table'
                       AND name = 'validated')",
                )?
                .query_row([], |r| r.get(0))?;
            if !exists {
                return Ok(None);
            }
            tx.prepare_cached(
                "SELECT fingerprint FROM validated WHERE name = ?1 AND generation = ?2",
            )?
            .query_row(rusqlite::params![name, generation], |r| r.get(0))
            .optional()
        })
    }

    /// Records that table `name`'s generation `generation`, whose file has `fingerprint`, passed
    /// full validation ([B8]). Not durable-critical (a lost record costs one more validation).
    pub(crate) fn set_validated(
        &mut self,
        name: &str,
        generation: u64,
        fingerprint: &str,
    ) -> Result<(), CatalogError> {
        let generation = i64::try_from(generation).unwrap_or(i64::MAX);
        self.set_sync(false)?;
        self.immediate("record a table's validation", |tx| {
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS validated(
                   name TEXT PRIMARY KEY NOT NULL,
                   generation INTEGER NOT NULL,
                   fingerprint TEXT NOT NULL
                 ) STRICT;",
            )?;
            tx.prepare_cached(
                "INSERT INTO validated(name, generation, fingerprint) VALUES (?1, ?2, ?3)
                   ON CONFLICT(name) DO UPDATE SET generation = excluded.generation,
                   fingerprint = excluded.fingerprint",
            )?
            .execute(rusqlite::params![name, generation, fingerprint])?;
            Ok(())
        })
    }

    /// The names of every row, in any state (to name the keys of reference records, [P3]).
    pub(crate) fn all_names(&mut self) -> Result<Vec<String>, CatalogError> {
        self.read("list names", |tx| {
            tx.prepare_cached("SELECT name FROM arrays")?
                .query_map([], |r| r.get(0))?
                .collect()
        })
    }

    /// The names of the live arrays, sorted: one query (a listing needs no row's metadata).
    pub(crate) fn live_names(&mut self) -> Result<Vec<String>, CatalogError> {
        self.read("list arrays", |tx| {
            tx.prepare_cached("SELECT name FROM arrays WHERE state = 'live' ORDER BY name")?
                .query_map([], |r| r.get(0))?
                .collect()
        })
    }

    /// Whether an unfinished publish (`publishing` row) has its staged files under `prefix`
    /// (`<session>/`): one query instead of reading every row.
    pub(crate) fn staging_in_use(&mut self, prefix: &str) -> Result<bool, CatalogError> {
        self.read_one("look up unfinished publishes", |tx| {
            tx.prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM arrays WHERE state <> 'live'
                   AND state = 'publishing' AND substr(staging, 1, length(?1)) = ?1)",
            )?
            .query_row([prefix], |r| r.get::<_, bool>(0))
        })
    }

    /// Every row, with the rows this version cannot interpret set apart (name, error) instead of
    /// failing the whole listing (fsck reports them).
    pub(crate) fn list_lenient(&mut self) -> Result<(Vec<ArrayInfo>, CorruptRows), CatalogError> {
        let path = self.path.clone();
        let schema = self.schema;
        let raws = self.read("list arrays", |tx| all_raw(tx, schema))?;
        let (mut good, mut bad) = (Vec::with_capacity(raws.len()), Vec::new());
        for r in raws {
            match r.into_record(&path) {
                Ok(rec) => good.push(rec),
                Err(e) => {
                    let name = match &e {
                        CatalogError::CorruptRow { name, .. } => name.clone(),
                        _ => String::new(),
                    };
                    bad.push((name, e));
                }
            }
        }
        Ok((good, bad))
    }

    /// Names of removals deferred while live processes hold the array (`deleting`, [W8]).
    pub(crate) fn deferred(&mut self) -> Result<Vec<String>, CatalogError> {
        self.read("list deferred removals", |tx| {
            tx.prepare(
                "SELECT name FROM arrays WHERE state <> 'live' AND state = 'deleting' ORDER BY name",
            )?
                .query_map([], |r| r.get(0))?
                .collect()
        })
    }

    /// Records the intent to publish (SPEC [W3] step 1): upserts the row in state `publishing`.
    pub(crate) fn begin_publish(
        &mut self,
        name: &str,
        meta: &ArrayMeta,
        files: &[FileRecord],
        staging: &str,
        lifecycle: Lifecycle,
    ) -> Result<u64, CatalogError> {
        self.set_sync(true)?;
        // The intent is the publish's commit point ([W3] step 1): it never uses the reserve.
        self.immediate_growing("record publish intent", |tx| {
            intent_tx(tx, name, meta, files, staging, lifecycle, true)
        })
    }

    /// Registers an array whose files are already in place (adopt), state `live`.
    pub(crate) fn insert_live(
        &mut self,
        name: &str,
        meta: &ArrayMeta,
        files: &[FileRecord],
    ) -> Result<(), CatalogError> {
        self.begin_publish(name, meta, files, "", Lifecycle::Persistent)?;
        self.set_state(name, ArrayState::Live)
    }

    /// Sets the state (clearing the staging location when `live`).
    pub(crate) fn set_state(&mut self, name: &str, state: ArrayState) -> Result<(), CatalogError> {
        self.set_state_holding(name, state, None)
    }

    /// [`Catalog::set_state`]; with `hold`, the same transaction records that session `hold`
    /// holds the array (a loader's publish, SPEC 9.7: no eviction between its publish and its
    /// open).
    pub(crate) fn set_state_holding(
        &mut self,
        name: &str,
        state: ArrayState,
        hold: Option<&str>,
    ) -> Result<(), CatalogError> {
        self.set_sync(true)?;
        self.immediate("update array state", |tx| {
            if hold.is_some() {
                // The loader's reference is already in its session file ([P3], [E6]).
                tx.prepare_cached("UPDATE arrays SET ever_held = 1 WHERE name = ?1")?
                    .execute([name])?;
            }
            if state == ArrayState::Live {
                // The publish is finished: its files are counted as the entry's (SPEC 9.7).
                tx.prepare_cached(
                    "DELETE FROM reservations
                     WHERE staging = (SELECT staging FROM arrays WHERE name = ?1)",
                )?
                .execute([name])?;
            }
            tx.prepare_cached(
                "UPDATE arrays SET state = ?2, staging = CASE WHEN ?2 = 'live' THEN NULL ELSE staging END,
                        updated_at = ?3 WHERE name = ?1",
            )?
            .execute(params![name, state.name(), now_ms()])?;
            Ok(())
        })
    }

    /// Deletes the row (end of a remove).
    pub(crate) fn delete(&mut self, name: &str) -> Result<(), CatalogError> {
        self.set_sync(true)?;
        self.immediate("delete array", |tx| {
            for sql in [
                "DELETE FROM array_files WHERE name = ?1",
                "DELETE FROM inplace_writers WHERE name = ?1",
                "DELETE FROM arrays WHERE name = ?1",
            ] {
                tx.prepare_cached(sql)?.execute([name])?;
            }
            Ok(())
        })
    }

    /// Adds an in-place writer of `name` for `session`; returns whether the checksum was valid
    /// until now (so the caller must strip it from the YAML).
    pub(crate) fn add_inplace_writer(
        &mut self,
        session: &str,
        name: &str,
    ) -> Result<bool, CatalogError> {
        // Synced like a publish: the stale mark must survive power loss with the writes it
        // covers. (It ran with whatever the last write set; a gc at open with nothing to reap no
        // longer sets FULL.)
        self.set_sync(true)?;
        self.immediate("register in-place writer", |tx| {
            tx.execute(
                "INSERT INTO inplace_writers(session, name, count) VALUES (?1, ?2, 1)
                 ON CONFLICT(session, name) DO UPDATE SET count = count + 1",
                params![session, name],
            )?;
            let was_stale: i64 = tx.query_row(
                "SELECT checksum_stale FROM arrays WHERE name = ?1",
                [name],
                |r| r.get(0),
            )?;
            tx.execute(
                "UPDATE arrays SET checksum_stale = 1, updated_at = ?2 WHERE name = ?1",
                params![name, now_ms()],
            )?;
            Ok(was_stale == 0)
        })
    }

    /// Removes one in-place writer registration; returns how many remain for `name` (all sessions).
    pub(crate) fn remove_inplace_writer(
        &mut self,
        session: &str,
        name: &str,
    ) -> Result<u64, CatalogError> {
        self.set_sync(true)?; // as its registration
        self.immediate("unregister in-place writer", |tx| {
            tx.execute(
                "UPDATE inplace_writers SET count = count - 1 WHERE session = ?1 AND name = ?2",
                params![session, name],
            )?;
            tx.execute("DELETE FROM inplace_writers WHERE count <= 0", [])?;
            let n: i64 = tx.query_row(
                "SELECT COALESCE(SUM(count), 0) FROM inplace_writers WHERE name = ?1",
                [name],
                |r| r.get(0),
            )?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    /// Records fresh checksums and clears the stale mark, unless in-place writers are registered.
    /// Returns whether it did.
    pub(crate) fn set_checksums(
        &mut self,
        name: &str,
        crcs: &[(String, u32)],
    ) -> Result<bool, CatalogError> {
        self.set_sync(true)?; // as a publish's checksums
        self.immediate("record checksums", |tx| {
            let writers: i64 = tx.query_row(
                "SELECT COALESCE(SUM(count), 0) FROM inplace_writers WHERE name = ?1",
                [name],
                |r| r.get(0),
            )?;
            if writers > 0 {
                return Ok(false);
            }
            for (suffix, crc) in crcs {
                tx.execute(
                    "UPDATE array_files SET crc32c = ?3 WHERE name = ?1 AND suffix = ?2",
                    params![name, suffix, i64::from(*crc)],
                )?;
            }
            tx.execute(
                "UPDATE arrays SET checksum_stale = 0, updated_at = ?2 WHERE name = ?1",
                params![name, now_ms()],
            )?;
            Ok(true)
        })
    }

    /// Registers a session (SPEC [P1]).
    pub(crate) fn add_session(&mut self, id: &str, pid: u32) -> Result<(), CatalogError> {
        // A session dies with its process, and power loss ends every process: its row needs no
        // sync of its own (a later full commit syncs it with the log), as for references.
        self.set_sync(false)?;
        self.immediate("register session", |tx| {
            tx.execute(
                "INSERT OR REPLACE INTO sessions(id, pid, started_at) VALUES (?1, ?2, ?3)",
                params![id, i64::from(pid), now_ms()],
            )?;
            Ok(())
        })
    }

    /// Forgets a session and its in-place writer rows; returns the names whose writers dropped
    /// to zero (their checksums need recomputing).
    pub(crate) fn remove_session(&mut self, id: &str) -> Result<Vec<String>, CatalogError> {
        // Lost at power loss, the row is a dead session's, reaped by the next gc.
        self.set_sync(false)?;
        self.immediate("remove session", |tx| end_session_tx(tx, id))
    }

    /// Every registered session id with its pid.
    pub fn sessions(&mut self) -> Result<Vec<(String, u32)>, CatalogError> {
        self.read("list sessions", |tx| {
            tx.prepare("SELECT id, pid FROM sessions ORDER BY id")?
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        u32::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    ))
                })?
                .collect()
        })
    }
}

/// Rebuilds `arrays` in this engine's form ([`ARRAYS_V2`] and [`ARRAYS_V3_COLUMNS`]) by SQLite's
/// procedure for changing a table, inside `tx` on a connection whose foreign keys are off (else
/// dropping the old table would delete every `array_files` row): a new table, `columns` of every
/// row copied with its rowid, the old table dropped, the new one renamed. Its indexes are gone
/// with the old table: the caller makes them. Returns the number of rows copied.
fn rebuild_arrays(tx: &Transaction<'_>, columns: &str) -> rusqlite::Result<usize> {
    tx.execute_batch(&ARRAYS_V2.replace("{name}", "arrays_new"))?;
    tx.execute_batch(&ARRAYS_V3_COLUMNS.replace("{name}", "arrays_new"))?;
    let copied = tx.execute(
        &format!("INSERT INTO arrays_new(rowid, {columns}) SELECT rowid, {columns} FROM arrays"),
        [],
    )?;
    tx.execute_batch("DROP TABLE arrays; ALTER TABLE arrays_new RENAME TO arrays;")?;
    Ok(copied)
}

/// The rewrite of `arrays` ([`Catalog::rewrite_constraints`]) inside `tx`, on a connection whose
/// foreign keys are off: [`rebuild_arrays`] with every column, then its indexes. Nothing is
/// done (false) when the table has no `IN` list any more (another process rewrote it) or has
/// other columns than the ones this engine copies (a newer engine's would be lost). The counts of
/// rows and of files are checked: with foreign keys on, dropping the table would have deleted
/// every file row without leaving a violation to find.
fn rewrite_tx(tx: &Transaction<'_>) -> rusqlite::Result<bool> {
    let sql: Option<String> = tx
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'arrays'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if !sql.is_some_and(|sql| sql.contains(IN_LIST)) {
        return Ok(false);
    }
    let columns: Vec<String> = tx
        .prepare("SELECT name FROM pragma_table_info('arrays') ORDER BY cid")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if columns.join(", ") != ARRAYS_V3_ALL_COLUMNS {
        return Ok(false);
    }
    let refuse = |why: String| {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
            Some(why),
        )
    };
    let count = |table: &str| -> rusqlite::Result<i64> {
        tx.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
    };
    if tx.query_row("PRAGMA foreign_keys", [], |r| r.get::<_, i64>(0))? != 0 {
        return Err(refuse("foreign keys are on".into()));
    }
    let (rows, files) = (count("arrays")?, count("array_files")?);
    let copied = rebuild_arrays(tx, ARRAYS_V3_ALL_COLUMNS)?;
    if i64::try_from(copied).ok() != Some(rows) {
        return Err(refuse(format!("{copied} of {rows} rows copied")));
    }
    tx.execute_batch(ARRAYS_INDEXES)?;
    hit_sql("catalog.rewrite_mid_tx")?;
    if count("array_files")? != files || count("arrays")? != rows {
        return Err(refuse("rows lost".into()));
    }
    Ok(true)
}

/// One publish intent's rows ([W3] step 1) inside the caller's transaction: upserts `name`'s row
/// in state `publishing` with its staging location, replaces its `array_files` rows, and sets the
/// reservation of `staging` (if any) to the bytes of the generation it replaces ([E3]). Returns
/// the new generation. Shared by a single publish and a batch ([W11]), whose entries have no
/// reservation of their own (`own_reservation` false: the batch sets its one reservation).
pub(crate) fn intent_tx(
    tx: &Transaction<'_>,
    name: &str,
    meta: &ArrayMeta,
    files: &[FileRecord],
    staging: &str,
    lifecycle: Lifecycle,
    own_reservation: bool,
) -> rusqlite::Result<u64> {
    let (scratch, cached) = lifecycle.columns();
    let old: Option<(i64, i64)> = tx
        .prepare_cached("SELECT generation, created_at FROM arrays WHERE name = ?1")?
        .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let generation = old.map_or(1, |(g, _)| g + 1);
    let created = old.map_or_else(now_ms, |(_, c)| c);
    // From here the row's files count the new generation's bytes; a replace leaves the
    // old generation's files in place until step 3 renames over them: the reservation
    // now counts exactly those until the `live` flip (SPEC [E3]), so the capacity holds
    // in between and nothing is counted twice.
    if own_reservation {
        tx.prepare_cached(
            "UPDATE reservations
               SET bytes = (SELECT COALESCE(SUM(size), 0) FROM array_files WHERE name = ?2)
             WHERE staging = ?1",
        )?
        .execute(params![staging, name])?;
    }
    if old.is_some() {
        // A name without a row has no files rows (a foreign key with ON DELETE CASCADE).
        tx.prepare_cached("DELETE FROM array_files WHERE name = ?1")?
            .execute([name])?;
    }
    let (kind, layout, dtype, idx, ptr, nnz) = meta_columns(meta);
    tx.prepare_cached(
        "INSERT INTO arrays(name, kind, layout, dtype, indices_dtype, indptr_dtype, shape, nnz, state,
                            generation, checksum_stale, staging, created_at, updated_at, scratch, tab,
                            cached, released_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'publishing', ?9, 0, ?10, ?11, ?12, ?13, ?14, ?15, ?12)
         ON CONFLICT(name) DO UPDATE SET kind = excluded.kind, layout = excluded.layout, tab = excluded.tab,
           dtype = excluded.dtype, indices_dtype = excluded.indices_dtype,
           indptr_dtype = excluded.indptr_dtype, shape = excluded.shape, nnz = excluded.nnz,
           state = 'publishing', generation = excluded.generation, checksum_stale = 0,
           staging = excluded.staging, updated_at = excluded.updated_at,
           scratch = excluded.scratch, cached = excluded.cached,
           released_at = excluded.released_at",
    )?
    .execute(params![
            name,
            kind,
            layout,
            dtype,
            idx,
            ptr,
            shape_json(&meta.shape()),
            nnz,
            generation,
            staging,
            created,
            now_ms(),
            scratch,
            table_json(meta),
            cached
    ])?;
    hit_sql("publish.intent_mid_tx")?;
    for f in files {
        tx.prepare_cached(
            "INSERT INTO array_files(name, suffix, size, crc32c) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            name,
            f.suffix,
            to_i64(f.size),
            f.crc32c.map(i64::from)
        ])?;
    }
    Ok(u64::try_from(generation).unwrap_or(0))
}

impl Catalog {
    /// `PRAGMA integrity_check`: empty when the database is sound, else SQLite's findings.
    pub(crate) fn integrity_problems(&mut self) -> Result<Vec<String>, CatalogError> {
        let rows: Vec<String> = self.read("check integrity", |tx| {
            tx.prepare("PRAGMA integrity_check")?
                .query_map([], |r| r.get(0))?
                .collect()
        })?;
        Ok(rows.into_iter().filter(|r| r != "ok").collect())
    }

    /// Sessions registered as in-place writers of `name`.
    pub(crate) fn inplace_writer_sessions(
        &mut self,
        name: &str,
    ) -> Result<Vec<String>, CatalogError> {
        self.read("list in-place writers", |tx| {
            tx.prepare("SELECT session FROM inplace_writers WHERE name = ?1")?
                .query_map([name], |r| r.get(0))?
                .collect()
        })
    }
}

/// Deletes every row of a session, ended or dead (SPEC [P5]: its references were in its session
/// file and died with it); returns the names whose last in-place writer it was (their checksums
/// need recomputing).
fn end_session_tx(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<Vec<String>> {
    let written: Vec<String> = tx
        .prepare("SELECT name FROM inplace_writers WHERE session = ?1")?
        .query_map([id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    tx.execute("DELETE FROM inplace_writers WHERE session = ?1", [id])?;
    tx.execute("DELETE FROM sessions WHERE id = ?1", [id])?;
    let mut last = Vec::new();
    for n in written {
        let left: i64 = tx.query_row(
            "SELECT COALESCE(SUM(count), 0) FROM inplace_writers WHERE name = ?1",
            [&n],
            |r| r.get(0),
        )?;
        if left == 0 {
            last.push(n);
        }
    }
    Ok(last)
}
