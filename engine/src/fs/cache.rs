//! The process-wide map cache: one map per file per process. Keyed by (device, inode), not by
//! path, so a file reached by another path or another container handle reuses the live map, and a
//! file replaced under its name (a new inode) gets a fresh map while old handles keep the old one.
//! Entries are weak: a map lives exactly as long as some handle uses it.
//!
//! Because a live map pins its inode, the inode number of a cached file cannot be reused by another
//! file while the entry is alive; that is what makes (device, inode) a sound key.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};

use crate::fs::sys::SharedMap;

/// Identity of a file: (device, inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FileKey {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

impl FileKey {
    pub(crate) fn of(meta: &std::fs::Metadata) -> FileKey {
        FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// A cached whole-file map.
pub(crate) struct FileMap {
    key: FileKey,
    pub(crate) map: SharedMap,
}

static FILES: LazyLock<Mutex<HashMap<FileKey, Weak<FileMap>>>> = LazyLock::new(Default::default);
static MAPS_CREATED: AtomicU64 = AtomicU64::new(0);

fn files() -> MutexGuard<'static, HashMap<FileKey, Weak<FileMap>>> {
    // The map holds only weak pointers; a panic elsewhere cannot leave it inconsistent.
    FILES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Returns the live map of the file `key`, or maps `file` (`len` bytes, > 0). A writable map
/// serves read-only requests; a writable request over a read-only entry makes a writable map and
/// makes it the entry (the read-only map lives on for its current users).
pub(crate) fn map_file(
    file: &File,
    key: FileKey,
    len: usize,
    writable: bool,
) -> io::Result<Arc<FileMap>> {
    let mut files = files();
    if let Some(live) = files.get(&key).and_then(Weak::upgrade) {
        if (live.map.writable() || !writable) && live.map.len() == len {
            return Ok(live);
        }
    }
    let fm = Arc::new(FileMap {
        key,
        map: SharedMap::new(file, len, writable)?,
    });
    MAPS_CREATED.fetch_add(1, Ordering::Relaxed);
    files.insert(key, Arc::downgrade(&fm));
    Ok(fm)
}

impl Drop for FileMap {
    fn drop(&mut self) {
        let mut files = files();
        // Remove the entry only if it is ours and dead (a newer map may have replaced it).
        if files.get(&self.key).is_some_and(|w| w.strong_count() == 0) {
            files.remove(&self.key);
        }
    }
}

/// Counters of the process-wide map cache, for tests, benchmarks and leak checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Files currently mapped by this process through dafstore.
    pub live_maps: usize,
    /// Maps made since the process started.
    pub maps_created: u64,
}

/// Current counters of the process-wide map cache.
pub fn cache_stats() -> CacheStats {
    let files = files();
    CacheStats {
        live_maps: files.values().filter(|w| w.strong_count() > 0).count(),
        maps_created: MAPS_CREATED.load(Ordering::Relaxed),
    }
}
