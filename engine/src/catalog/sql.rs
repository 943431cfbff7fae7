//! SQLite plumbing shared by the catalog's files: the catalog's errors (a damaged catalog, an
//! SQLite failure), busy retries, full-disk detection, the URI of a catalog file, and the
//! conversions of times and sizes to SQLite integers. No SQL of the schema's, no `Catalog`.

use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::ErrorCode;

use crate::error::CatalogError;

/// The container directory of a catalog at `<container>/.dafstore/catalog.sqlite`.
pub(super) fn container_of(path: &Path) -> PathBuf {
    path.parent()
        .and_then(Path::parent)
        .unwrap_or(path)
        .to_path_buf()
}

pub(super) fn damaged(path: &Path, detail: String) -> CatalogError {
    CatalogError::Damaged {
        path: path.to_path_buf(),
        container: container_of(path),
        detail,
    }
}

/// An SQLite failure; a file that is not a database or is corrupt is a catalog to rebuild
/// (SPEC [Q2]).
pub(super) fn sqlite_error(path: &Path, context: &str, source: rusqlite::Error) -> CatalogError {
    match source.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            damaged(path, format!("{context}: {source}"))
        }
        _ => CatalogError::Sqlite {
            path: path.to_path_buf(),
            context: context.to_string(),
            source,
        },
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(super) fn to_i64(v: u64) -> i64 {
    // Sizes and counts were validated to fit isize when the metadata was built.
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Whether SQLite failed because the file system is full: SQLITE_FULL, or an I/O error whose OS
/// error (`errno`, from `sqlite3_system_errno`) is ENOSPC, EDQUOT or EFBIG (growing the WAL index,
/// syncing). The transaction was rolled back.
pub(super) fn is_full(e: &rusqlite::Error, errno: i32) -> bool {
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => true,
        Some(ErrorCode::SystemIoFailure) => {
            crate::error::is_no_space(&std::io::Error::from_raw_os_error(errno))
        }
        _ => false,
    }
}

/// Runs `f` again while SQLite answers busy, for up to 5 s (beyond what the busy handler waits
/// inside each attempt). Some of its busy answers come without waiting on the busy handler: while
/// another connection converts a new database to WAL, runs WAL recovery, or cleans up at its last
/// close, all short. The setup statements of an open meet them when many processes open one
/// container at once.
pub(super) fn busy_retry<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let start = std::time::Instant::now();
    let mut attempt = 0u64;
    loop {
        match f() {
            Err(e) if is_busy(&e) && start.elapsed() < Duration::from_secs(5) => {
                attempt += 1;
                sleep(Duration::from_millis(attempt.min(20)));
            }
            r => return r,
        }
    }
}

pub(super) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

pub(super) fn uri_escape(path: &Path) -> String {
    let mut out = String::new();
    for b in path.as_os_str().as_encoded_bytes() {
        match b {
            b'?' | b'#' | b'%' => out.push_str(&format!("%{b:02X}")),
            _ => out.push(char::from(*b)),
        }
    }
    out
}
